//! The writer thread of a log (`farcall-log`): it batches commands, writes
//! them with one `write` call, syncs per [`Fsync`], confirms appends and
//! reclaims acknowledged segments.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::record::{BODY_PREFIX_LEN, KIND_ACK, KIND_ATTEMPTS, KIND_MESSAGE, encode};
use super::segment::{Segment, create_segment, reclaim, segment_of, segment_path};
use super::{Command, Fsync, LogConfig, LogError, Reply, SharedStats, file_error};

/// The writer stops gathering commands for a batch past this many bytes.
const BATCH_BYTES: usize = 4 << 20;
/// A write buffer grown past this is given back after the batch.
const KEEP_BUFFER: usize = 8 << 20;
/// Under [`Fsync::Always`], how long written acks may wait for a sync.
const ACK_SYNC_DELAY: Duration = Duration::from_millis(50);

/// The commands of one batch still to be answered.
#[derive(Default)]
struct Batch {
    appends: Vec<(u64, Reply<u64>)>,
    flushes: Vec<Reply<()>>,
}

/// The writer thread's state.
pub(super) struct Writer {
    dir: PathBuf,
    fsync: Fsync,
    segment_bytes: u64,
    max_record: u32,
    /// Oldest first, never empty: the last is the active one.
    segments: VecDeque<Segment>,
    /// The active segment, open for appending.
    file: File,
    /// The sequence number of the next message.
    next_seq: u64,
    /// Records of the batch not written yet.
    buf: Vec<u8>,
    /// Whether the active segment has writes not synced.
    dirty: bool,
    /// When the writes not synced must be.
    sync_deadline: Option<Instant>,
    /// Why the writer failed, if it did: it takes no more writes.
    failed: Option<String>,
    stats: Arc<SharedStats>,
}

impl Writer {
    /// The writer of the log in `dir`, appending to `file`, the last of
    /// `segments`.
    pub(super) fn new(
        dir: &Path,
        config: &LogConfig,
        segments: VecDeque<Segment>,
        file: File,
        next_seq: u64,
        stats: Arc<SharedStats>,
    ) -> Writer {
        Writer {
            dir: dir.to_owned(),
            fsync: config.fsync,
            segment_bytes: config.segment_bytes,
            max_record: config.max_record,
            segments,
            file,
            next_seq,
            buf: Vec::new(),
            dirty: false,
            sync_deadline: None,
            failed: None,
            stats: stats.clone(),
        }
    }
    pub(super) fn run(mut self, commands: Receiver<Command>) {
        loop {
            let first = match self.sync_deadline {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match commands.recv_timeout(wait) {
                        Ok(command) => Some(command),
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(e) = self.sync() {
                                self.fail(e, &mut Batch::default());
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
                None => commands.recv().ok(),
            };
            let Some(first) = first else { break };
            let mut batch = Batch::default();
            self.take(first, &mut batch);
            while self.buf.len() < BATCH_BYTES {
                match commands.try_recv() {
                    Ok(command) => self.take(command, &mut batch),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit(batch);
        }
        // Every handle is gone: finish what was written.
        if self.failed.is_none()
            && let Err(e) = self.write_out().and_then(|()| self.sync())
        {
            tracing::error!(error = %e, "the log could not write its last records");
        }
    }

    /// Adds one command to the batch.
    fn take(&mut self, command: Command, batch: &mut Batch) {
        match command {
            Command::Flush(reply) => batch.flushes.push(reply),
            Command::Attempts(seq, n) => {
                if self.failed.is_some() {
                    return;
                }
                if segment_of(&mut self.segments, seq).is_some_and(|s| s.live.contains(&seq)) {
                    let size = encode(&mut self.buf, KIND_ATTEMPTS, seq, &n.to_le_bytes());
                    self.active().bytes += size;
                }
            }
            Command::Ack(seq) => {
                if self.failed.is_some() {
                    return;
                }
                if let Some(segment) = segment_of(&mut self.segments, seq)
                    && segment.live.remove(&seq)
                {
                    let size = encode(&mut self.buf, KIND_ACK, seq, &[]);
                    self.active().bytes += size;
                }
            }
            Command::Append(payload, reply) => {
                if let Some(reason) = &self.failed {
                    let _ = reply.send(Err(LogError::Failed(reason.clone())));
                    return;
                }
                let limit = u64::from(self.max_record).saturating_sub(BODY_PREFIX_LEN as u64);
                if payload.len() as u64 > limit {
                    let _ = reply.send(Err(LogError::TooLarge {
                        size: payload.len() as u64,
                        limit,
                    }));
                    return;
                }
                if self.next_seq == u64::MAX {
                    let _ = reply.send(Err(LogError::Failed(
                        "sequence numbers are exhausted".to_owned(),
                    )));
                    return;
                }
                let (bytes, first_seq) = {
                    let active = self.active();
                    (active.bytes, active.first_seq)
                };
                if bytes >= self.segment_bytes
                    && self.next_seq > first_seq
                    && let Err(e) = self.roll()
                {
                    self.fail(e, batch);
                    let reason = self.failed.clone().unwrap_or_default();
                    let _ = reply.send(Err(LogError::Failed(reason)));
                    return;
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let size = encode(&mut self.buf, KIND_MESSAGE, seq, &payload);
                let active = self.active();
                active.bytes += size;
                active.live.insert(seq);
                batch.appends.push((seq, reply));
            }
        }
    }

    /// Writes the batch, syncs per policy, reclaims, answers.
    fn commit(&mut self, mut batch: Batch) {
        if self.failed.is_none()
            && let Err(e) = self.write_out()
        {
            self.fail(e, &mut batch);
        }
        if self.failed.is_none() {
            if matches!(self.fsync, Fsync::Every(_)) {
                // Written to the OS: that is the promise.
                for (seq, reply) in batch.appends.drain(..) {
                    let _ = reply.send(Ok(seq));
                }
            }
            let sync_now = !batch.flushes.is_empty()
                || !batch.appends.is_empty()
                || self
                    .sync_deadline
                    .is_some_and(|deadline| Instant::now() >= deadline);
            if sync_now && let Err(e) = self.sync() {
                self.fail(e, &mut batch);
            }
        }
        if self.failed.is_none() {
            reclaim(&mut self.segments);
        }
        self.publish_stats();
        match &self.failed {
            // Appends were answered when the failure was seen.
            Some(reason) => {
                for reply in batch.flushes {
                    let _ = reply.send(Err(LogError::Failed(reason.clone())));
                }
            }
            None => {
                for (seq, reply) in batch.appends {
                    let _ = reply.send(Ok(seq));
                }
                for reply in batch.flushes {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
    }

    /// Marks the writer failed and answers everything in `batch` with it.
    fn fail(&mut self, error: LogError, batch: &mut Batch) {
        tracing::error!(dir = %self.dir.display(), error = %error, "the log failed and takes no more writes");
        let reason = error.to_string();
        for (_, reply) in batch.appends.drain(..) {
            let _ = reply.send(Err(LogError::Failed(reason.clone())));
        }
        for reply in batch.flushes.drain(..) {
            let _ = reply.send(Err(LogError::Failed(reason.clone())));
        }
        self.failed = Some(reason);
        self.buf.clear();
        self.dirty = false;
        self.sync_deadline = None;
    }

    /// The active segment.
    fn active(&mut self) -> &mut Segment {
        // `segments` is never empty; the fallback only keeps this total.
        if self.segments.is_empty() {
            self.segments.push_back(Segment {
                first_seq: self.next_seq,
                path: segment_path(&self.dir, self.next_seq),
                bytes: 0,
                live: HashSet::new(),
            });
        }
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Writes the buffered records to the active segment.
    fn write_out(&mut self) -> Result<(), LogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buf);
        self.buf.clear();
        if let Err(e) = result {
            let path = self.active().path.clone();
            return Err(file_error("could not write to", &path, e));
        }
        self.dirty = true;
        if self.sync_deadline.is_none() {
            let delay = match self.fsync {
                Fsync::Every(interval) => interval,
                Fsync::Always => ACK_SYNC_DELAY,
            };
            // A delay too long to count is no timer: syncs then come with
            // flushes, new segments and the end.
            self.sync_deadline = Instant::now().checked_add(delay);
        }
        Ok(())
    }

    /// Syncs the active segment if it has writes not synced.
    fn sync(&mut self) -> Result<(), LogError> {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                let path = self.active().path.clone();
                return Err(file_error("could not sync", &path, e));
            }
            self.dirty = false;
        }
        self.sync_deadline = None;
        Ok(())
    }

    /// Closes the active segment (written and synced) and starts a new one
    /// at the next sequence number.
    fn roll(&mut self) -> Result<(), LogError> {
        self.write_out()?;
        self.sync()?;
        let (file, segment) = create_segment(&self.dir, self.next_seq)?;
        self.file = file;
        self.segments.push_back(segment);
        Ok(())
    }

    /// Publishes the segment count and size.
    pub(super) fn publish_stats(&self) {
        let segments = u32::try_from(self.segments.len()).unwrap_or(u32::MAX);
        let bytes = self.segments.iter().map(|segment| segment.bytes).sum();
        self.stats.segments.store(segments, Ordering::Relaxed);
        self.stats.bytes.store(bytes, Ordering::Relaxed);
    }
}
