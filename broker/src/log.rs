//! The durable queue log: append-only, segmented, one directory per queue.
//!
//! A durable queue keeps its messages in a [`Log`]. Appending a message
//! gives it a sequence number (1, 2, 3, ... never reused, also across
//! restarts); acknowledging it ([`Log::ack`]) records that it need not be
//! delivered again. [`Log::open`] returns every message appended and never
//! acknowledged, oldest first.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use farcall_broker::log::{Log, LogConfig};
//!
//! let dir = std::env::temp_dir().join(format!("farcall-log-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let (log, unacked) = Log::open(&dir, LogConfig::default())?;
//! assert!(unacked.is_empty());
//! let first = log.append(Bytes::from_static(b"hello")).await?;
//! let second = log.append(Bytes::from_static(b"world")).await?;
//! log.ack(first);
//! log.flush().await?;
//! drop(log);
//!
//! let (log, unacked) = Log::open(&dir, LogConfig::default())?;
//! assert_eq!(unacked, vec![(second, Bytes::from_static(b"world"))]);
//! # drop(log);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Files
//!
//! The directory holds segments named `<first seq>.seg`, the first sequence
//! number written as 20 decimal digits (`00000000000000000001.seg`): a
//! segment holds messages with that number and up, below the next segment's
//! name. Records are only ever appended to the last segment, the active one;
//! once it has reached [`LogConfig::segment_bytes`] the next message starts a
//! new segment, named with that message's sequence number. Other files in the
//! directory are ignored. One [`Log`] at a time may use a directory.
//!
//! A segment is a sequence of records:
//!
//! ```text
//! u32 LE body length | u32 LE CRC-32 of the body | body
//! body = u8 kind | u64 LE seq | payload
//! kind 1: a message, seq is its sequence number, payload its bytes
//! kind 2: an ack of message seq, no payload
//! kind 3: the deliveries of message seq so far, payload u32 LE (written
//!         when a delivered message goes back to its queue, so that a
//!         restart does not reset its attempts)
//! ```
//!
//! A body is at most [`LogConfig::max_record`] bytes; a longer length on disk
//! is damage, never an allocation. An ack may sit in a later segment than its
//! message.
//!
//! # Recovery
//!
//! On open, a damaged record (cut short, bad checksum, impossible length or
//! kind, out-of-order sequence number) in the last segment is where a crash
//! interrupted a write: the file is truncated there, with a warning. Damage
//! in an older segment is reported and the rest of that segment skipped.
//!
//! # Reclaiming space
//!
//! Segments are deleted from the oldest while every message in them is
//! acknowledged; the active segment is never deleted. Only the oldest can go:
//! a segment's acks may be about messages of older segments.
//!
//! # Writing
//!
//! One thread per log (`farcall-log`) writes: it takes every command
//! waiting, writes them with one `write` call, syncs per [`Fsync`], then
//! confirms the appends in sequence order. Acks are written with the next
//! batch and synced within [`Fsync::Every`]'s interval (50 ms under
//! [`Fsync::Always`]): an ack lost to a power cut means one more delivery,
//! never a lost message.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

/// Bytes before a record's body: its length and checksum.
const HEADER_LEN: usize = 8;
/// Bytes of a body before the payload: kind and sequence number.
const BODY_PREFIX_LEN: usize = 9;
/// The kind of a message record.
const KIND_MESSAGE: u8 = 1;
/// The kind of an ack record.
const KIND_ACK: u8 = 2;
/// The kind of a record of a message's deliveries so far.
const KIND_ATTEMPTS: u8 = 3;
/// How a segment's file name ends.
const SEGMENT_SUFFIX: &str = ".seg";
/// Digits of the sequence number in a segment's file name.
const SEGMENT_DIGITS: usize = 20;
/// The writer stops gathering commands for a batch past this many bytes.
const BATCH_BYTES: usize = 4 << 20;
/// A write buffer grown past this is given back after the batch.
const KEEP_BUFFER: usize = 8 << 20;
/// Under [`Fsync::Always`], how long written acks may wait for a sync.
const ACK_SYNC_DELAY: Duration = Duration::from_millis(50);
/// Read buffer when scanning a segment.
const READ_BUFFER: usize = 64 << 10;

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// fsync before an append is confirmed (group commit: one fsync for all
    /// appends waiting at that moment). Survives power loss.
    Always,
    /// Confirm once written to the OS (survives a crash of the broker
    /// process, kill -9), fsync at most this often (power loss may lose that
    /// much).
    Every(Duration),
}

impl Default for Fsync {
    /// `Every(50 ms)`: a crash of the process loses nothing, a power cut at
    /// most the last 50 ms of appends.
    fn default() -> Self {
        Fsync::Every(Duration::from_millis(50))
    }
}

/// How a [`Log`] writes.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// When appends reach the disk (default [`Fsync::Every`] 50 ms).
    pub fsync: Fsync,
    /// Size past which the next message starts a new segment (default
    /// 16 MiB). Space is reclaimed a whole segment at a time.
    pub segment_bytes: u64,
    /// Largest record body (payload + 9 bytes), default 64 MiB: a longer
    /// payload is refused, a longer length prefix on disk is damage, never
    /// an allocation.
    pub max_record: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            fsync: Fsync::default(),
            segment_bytes: 16 << 20,
            max_record: 64 << 20,
        }
    }
}

/// Segments on disk and their total size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Segment files.
    pub segments: u32,
    /// Their total bytes.
    pub bytes: u64,
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An I/O operation failed (starting the writer thread, ...).
    #[error("log I/O: {0}")]
    Io(#[from] io::Error),
    /// An I/O operation on one of the log's files failed.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done ("could not open", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The payload is over [`LogConfig::max_record`] allows.
    #[error("payload of {size} bytes is over the log's limit of {limit} bytes")]
    TooLarge {
        /// The payload's size.
        size: u64,
        /// The largest payload the log takes.
        limit: u64,
    },
    /// The writer failed earlier (a write or sync error) and takes no more
    /// writes; the log must be reopened.
    #[error("the log's writer failed and takes no more writes: {0}")]
    Failed(String),
    /// The log's writer is gone.
    #[error("the log is closed")]
    Closed,
}

/// A [`LogError::File`].
fn file_error(action: &'static str, path: &Path, source: io::Error) -> LogError {
    LogError::File {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Handle to one log; cheap to clone (Arc inside), Send + Sync.
///
/// Dropping the last handle stops the writer after it has written and
/// synced what it was given; the drop waits for that.
#[derive(Clone, Debug)]
pub struct Log {
    shared: Arc<Shared>,
}

/// What the handles share.
#[derive(Debug)]
struct Shared {
    /// Commands to the writer; `None` only while dropping.
    commands: Option<Sender<Command>>,
    /// The writer thread, joined on drop.
    writer: Option<JoinHandle<()>>,
    /// Published by the writer after each batch.
    stats: Arc<SharedStats>,
    /// Largest payload.
    max_payload: u64,
    /// The deliveries of the unacked messages found on open, until taken.
    recovered: std::sync::Mutex<HashMap<u64, u32>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the channel tells the writer to finish.
        self.commands = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }
}

/// [`LogStats`], shared with the writer.
#[derive(Debug, Default)]
struct SharedStats {
    segments: AtomicU32,
    bytes: AtomicU64,
}

/// A reply to a command.
type Reply<T> = oneshot::Sender<Result<T, LogError>>;

/// What the writer is asked.
enum Command {
    /// Append a message, reply with its sequence number once durable.
    Append(Bytes, Reply<u64>),
    /// Record an ack.
    Ack(u64),
    /// Record how many times a message was delivered.
    Attempts(u64, u32),
    /// Write and sync everything before, then reply.
    Flush(Reply<()>),
}

impl Log {
    /// Opens the log in `dir` (created if absent) and returns it with every
    /// message appended and never acked, oldest first, as (seq, payload).
    ///
    /// A torn or corrupt record at the tail of the last segment (a crash
    /// mid-write) is cut off (the file truncated there) and reported with
    /// `tracing::warn!`. Corruption inside an older segment: warned about,
    /// the rest of that segment skipped. Fully acknowledged segments at the
    /// head are deleted.
    ///
    /// This reads the whole log with blocking I/O: from async code, call it
    /// in `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`LogError::File`] when the directory or a segment cannot be created,
    /// read or truncated; [`LogError::Io`] when the writer thread cannot be
    /// started.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(Log, Vec<(u64, Bytes)>), LogError> {
        fs::create_dir_all(dir)
            .map_err(|e| file_error("could not create the log directory", dir, e))?;
        let names = list_segments(dir)?;

        let mut segments: VecDeque<Segment> = VecDeque::with_capacity(names.len());
        let mut unacked: BTreeMap<u64, Bytes> = BTreeMap::new();
        let mut attempts: HashMap<u64, u32> = HashMap::new();
        let mut last_seq = 0u64;
        for (index, (first_seq, path)) in names.iter().enumerate() {
            let is_last = index + 1 == names.len();
            let limit = names.get(index + 1).map(|(next, _)| *next);
            let mut segment = Segment {
                first_seq: *first_seq,
                path: path.clone(),
                bytes: 0,
                live: HashSet::new(),
            };
            let mut reader = SegmentReader::open(path, config.max_record)?;
            let damage = loop {
                match reader.next()? {
                    Step::End => break None,
                    Step::Damaged(reason) => break Some(reason),
                    Step::Message(seq, payload) => {
                        if seq <= last_seq
                            || seq < segment.first_seq
                            || limit.is_some_and(|limit| seq >= limit)
                        {
                            break Some(format!(
                                "message {seq} at offset {} is out of order",
                                reader.pos
                            ));
                        }
                        last_seq = seq;
                        segment.live.insert(seq);
                        unacked.insert(seq, payload);
                    }
                    Step::Attempts(seq, n) => {
                        if unacked.contains_key(&seq) {
                            attempts.insert(seq, n);
                        }
                    }
                    Step::Ack(seq) => {
                        attempts.remove(&seq);
                        if unacked.remove(&seq).is_some()
                            && !segment.live.remove(&seq)
                            && let Some(older) = segment_of(&mut segments, seq)
                        {
                            older.live.remove(&seq);
                        }
                    }
                }
            };
            segment.bytes = reader.len;
            if let Some(reason) = damage {
                if is_last {
                    tracing::warn!(
                        path = %path.display(),
                        offset = reader.pos,
                        cut = reader.len - reader.pos,
                        "log segment damaged at its tail ({reason}), likely by a crash mid-write: cutting it there"
                    );
                    truncate(path, reader.pos)?;
                    segment.bytes = reader.pos;
                } else {
                    tracing::warn!(
                        path = %path.display(),
                        offset = reader.pos,
                        "log segment damaged ({reason}): skipping the rest of it (the segment is deleted once the messages before the damage are acknowledged)"
                    );
                }
            }
            segments.push_back(segment);
        }

        let named = names.last().map_or(1, |(first_seq, _)| *first_seq);
        let next_seq = last_seq.saturating_add(1).max(named).max(1);
        reclaim(&mut segments);
        let file = match segments.back() {
            Some(active) => OpenOptions::new()
                .append(true)
                .open(&active.path)
                .map_err(|e| file_error("could not open", &active.path, e))?,
            None => {
                let (file, segment) = create_segment(dir, next_seq)?;
                segments.push_back(segment);
                file
            }
        };

        let stats = Arc::new(SharedStats::default());
        let writer = Writer {
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
        };
        writer.publish_stats();
        let (commands, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("farcall-log".to_owned())
            .spawn(move || writer.run(receiver))?;
        let log = Log {
            shared: Arc::new(Shared {
                commands: Some(commands),
                writer: Some(thread),
                stats,
                max_payload: u64::from(config.max_record).saturating_sub(BODY_PREFIX_LEN as u64),
                recovered: std::sync::Mutex::new(attempts),
            }),
        };
        Ok((log, unacked.into_iter().collect()))
    }

    /// Appends a message; resolves with its sequence number once it is
    /// durable under the fsync policy. Sequence numbers start at 1 and
    /// increase across restarts (never reused).
    ///
    /// Dropping the future does not take the message back: it may still be
    /// appended.
    ///
    /// # Errors
    ///
    /// [`LogError::TooLarge`] for a payload over the limit,
    /// [`LogError::Failed`] when the writer failed (this write or an earlier
    /// one: the message may or may not be in the log), [`LogError::Closed`]
    /// when the writer is gone.
    pub async fn append(&self, payload: Bytes) -> Result<u64, LogError> {
        let size = payload.len() as u64;
        if size > self.shared.max_payload {
            return Err(LogError::TooLarge {
                size,
                limit: self.shared.max_payload,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append(payload, reply))?;
        answer.await.map_err(|_| LogError::Closed)?
    }

    /// Records that message `seq` is acknowledged (no waiting; written in
    /// the background with the next batch). Acking twice or an unknown seq
    /// is harmless.
    pub fn ack(&self, seq: u64) {
        // A closed log has nothing left to ack.
        let _ = self.send(Command::Ack(seq));
    }

    /// Records that message `seq` has been delivered `attempts` times (no
    /// waiting, like [`Log::ack`]); [`Log::take_attempts`] gives it back
    /// after a restart. For an acked or unknown seq it writes nothing.
    pub fn attempts(&self, seq: u64, attempts: u32) {
        let _ = self.send(Command::Attempts(seq, attempts));
    }

    /// The deliveries recorded for the messages [`Log::open`] returned (the
    /// last record of each), once: later calls return nothing.
    pub fn take_attempts(&self) -> HashMap<u64, u32> {
        std::mem::take(
            &mut self
                .shared
                .recovered
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Segments on disk and their total bytes (for stats), as of the
    /// writer's last batch.
    pub fn stats(&self) -> LogStats {
        LogStats {
            segments: self.shared.stats.segments.load(Ordering::Relaxed),
            bytes: self.shared.stats.bytes.load(Ordering::Relaxed),
        }
    }

    /// Waits until everything sent to the writer so far is written and
    /// fsynced (used by shutdown and tests).
    ///
    /// # Errors
    ///
    /// [`LogError::Failed`] when the writer failed, [`LogError::Closed`]
    /// when it is gone.
    pub async fn flush(&self) -> Result<(), LogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Flush(reply))?;
        answer.await.map_err(|_| LogError::Closed)?
    }

    /// Sends a command to the writer.
    fn send(&self, command: Command) -> Result<(), LogError> {
        let commands = self.shared.commands.as_ref().ok_or(LogError::Closed)?;
        commands.send(command).map_err(|_| LogError::Closed)
    }
}

/// One segment file, as the writer knows it.
#[derive(Debug)]
struct Segment {
    /// Its name: no message in it has a lower number.
    first_seq: u64,
    path: PathBuf,
    /// Its size, counting what is buffered for it.
    bytes: u64,
    /// Its messages not acknowledged yet.
    live: HashSet<u64>,
}

/// The segment that would hold message `seq`, if it is still there.
fn segment_of(segments: &mut VecDeque<Segment>, seq: u64) -> Option<&mut Segment> {
    let after = segments.partition_point(|segment| segment.first_seq <= seq);
    let index = after.checked_sub(1)?;
    segments.get_mut(index)
}

/// Deletes segments from the head while all their messages are acknowledged,
/// never the last (active) one.
fn reclaim(segments: &mut VecDeque<Segment>) {
    while segments.len() > 1 && segments.front().is_some_and(|head| head.live.is_empty()) {
        let Some(head) = segments.front() else { break };
        match fs::remove_file(&head.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %head.path.display(), error = %e, "could not delete an acknowledged log segment");
                break;
            }
        }
        segments.pop_front();
    }
}

/// The segment files in `dir`, by first sequence number.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let entries =
        fs::read_dir(dir).map_err(|e| file_error("could not list the log directory", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error("could not list the log directory", dir, e))?;
        let name = entry.file_name();
        let Some(first_seq) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        found.push((first_seq, entry.path()));
    }
    found.sort_unstable_by_key(|(first_seq, _)| *first_seq);
    Ok(found)
}

/// The first sequence number a segment file name gives, if it is one.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of the segment starting at `first_seq`.
fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!(
        "{first_seq:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_DIGITS
    ))
}

/// Creates a new, empty segment starting at `first_seq`, durably.
fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, Segment), LogError> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| file_error("could not create", &path, e))?;
    sync_dir(dir).map_err(|e| file_error("could not sync the log directory", dir, e))?;
    let segment = Segment {
        first_seq,
        path,
        bytes: 0,
        live: HashSet::new(),
    };
    Ok((file, segment))
}

/// Makes the directory's entries (a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Cuts the file at `path` to `len` bytes, durably.
fn truncate(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| file_error("could not open", path, e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error("could not truncate", path, e))
}

/// What reading a segment found next.
enum Step {
    /// A message record.
    Message(u64, Bytes),
    /// An ack record.
    Ack(u64),
    /// A record of a message's deliveries so far.
    Attempts(u64, u32),
    /// The end of the file, after a whole record.
    End,
    /// Damage at [`SegmentReader::pos`], and what it is.
    Damaged(String),
}

/// Reads the records of one segment.
struct SegmentReader<'a> {
    path: &'a Path,
    reader: BufReader<File>,
    /// The file's size when opened.
    len: u64,
    /// Where the next record starts: the end of the last whole record.
    pos: u64,
    max_record: u32,
}

impl<'a> SegmentReader<'a> {
    fn open(path: &'a Path, max_record: u32) -> Result<Self, LogError> {
        let file = File::open(path).map_err(|e| file_error("could not open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| file_error("could not read the size of", path, e))?
            .len();
        Ok(SegmentReader {
            path,
            reader: BufReader::with_capacity(READ_BUFFER, file),
            len,
            pos: 0,
            max_record,
        })
    }

    /// Reads exactly `buf.len()` bytes; `false` if the file ended first.
    fn read(&mut self, buf: &mut [u8]) -> Result<bool, LogError> {
        match self.reader.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(file_error("could not read", self.path, e)),
        }
    }

    fn next(&mut self) -> Result<Step, LogError> {
        let at = self.pos;
        let remaining = self.len.saturating_sub(at);
        if remaining == 0 {
            return Ok(Step::End);
        }
        if remaining < HEADER_LEN as u64 {
            return Ok(Step::Damaged(format!(
                "{remaining} bytes left, fewer than a record header"
            )));
        }
        let mut header = [0u8; HEADER_LEN];
        if !self.read(&mut header)? {
            return Ok(Step::Damaged("the file ended early".to_owned()));
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > self.max_record {
            return Ok(Step::Damaged(format!(
                "a record claims {len} bytes, over the limit of {}",
                self.max_record
            )));
        }
        if (len as usize) < BODY_PREFIX_LEN {
            return Ok(Step::Damaged(format!(
                "a record claims {len} bytes, too few for one"
            )));
        }
        let available = remaining - HEADER_LEN as u64;
        if u64::from(len) > available {
            return Ok(Step::Damaged(format!(
                "a record claims {len} bytes, only {available} are left"
            )));
        }
        // Checked: at most max_record and at most what the file holds.
        let mut body = vec![0u8; len as usize];
        if !self.read(&mut body)? {
            return Ok(Step::Damaged("the file ended early".to_owned()));
        }
        if crc32fast::hash(&body) != crc {
            return Ok(Step::Damaged("checksum mismatch".to_owned()));
        }
        let kind = body[0];
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..BODY_PREFIX_LEN]);
        let seq = u64::from_le_bytes(seq);
        let step = match kind {
            KIND_MESSAGE => Step::Message(seq, Bytes::from(body).slice(BODY_PREFIX_LEN..)),
            KIND_ACK if body.len() == BODY_PREFIX_LEN => Step::Ack(seq),
            KIND_ACK => return Ok(Step::Damaged("an ack record with a payload".to_owned())),
            KIND_ATTEMPTS if body.len() == BODY_PREFIX_LEN + 4 => {
                let mut n = [0u8; 4];
                n.copy_from_slice(&body[BODY_PREFIX_LEN..]);
                Step::Attempts(seq, u32::from_le_bytes(n))
            }
            KIND_ATTEMPTS => {
                return Ok(Step::Damaged(
                    "an attempts record of the wrong length".to_owned(),
                ));
            }
            other => return Ok(Step::Damaged(format!("unknown record kind {other}"))),
        };
        self.pos = at + HEADER_LEN as u64 + u64::from(len);
        Ok(step)
    }
}

/// Appends a record to `buf`; its size in bytes.
///
/// `BODY_PREFIX_LEN + payload.len()` must fit a `u32` (checked against
/// `max_record` by the caller).
fn encode(buf: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) -> u64 {
    let start = buf.len();
    let body_len = BODY_PREFIX_LEN + payload.len();
    buf.reserve(HEADER_LEN + body_len);
    buf.extend_from_slice(&(body_len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.push(kind);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start + HEADER_LEN..]);
    buf[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    (HEADER_LEN + body_len) as u64
}

/// The commands of one batch still to be answered.
#[derive(Default)]
struct Batch {
    appends: Vec<(u64, Reply<u64>)>,
    flushes: Vec<Reply<()>>,
}

/// The writer thread's state.
struct Writer {
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
    fn run(mut self, commands: Receiver<Command>) {
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
    fn publish_stats(&self) {
        let segments = u32::try_from(self.segments.len()).unwrap_or(u32::MAX);
        let bytes = self.segments.iter().map(|segment| segment.bytes).sum();
        self.stats.segments.store(segments, Ordering::Relaxed);
        self.stats.bytes.store(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A fresh directory, deleted on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!(
                "farcall-log-test-{}-{name}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn config() -> LogConfig {
        LogConfig {
            fsync: Fsync::Every(Duration::from_millis(5)),
            ..LogConfig::default()
        }
    }

    fn payload(i: u64) -> Bytes {
        Bytes::from(format!("message {i}"))
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(_, path)| path)
            .collect()
    }

    fn last_segment(dir: &Path) -> PathBuf {
        segment_files(dir).pop().unwrap()
    }

    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn log_is_send_and_sync() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Log>();
        assert::<LogError>();
        assert::<LogStats>();
    }

    #[tokio::test]
    async fn reopen_returns_exactly_the_unacked() {
        let dir = TempDir::new("unacked");
        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert!(unacked.is_empty());
        for i in 1..=5 {
            assert_eq!(log.append(payload(i)).await.unwrap(), i);
        }
        log.ack(2);
        log.ack(4);
        log.ack(4); // twice: harmless
        log.ack(99); // unknown: harmless
        log.flush().await.unwrap();
        drop(log);

        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(
            unacked,
            vec![(1, payload(1)), (3, payload(3)), (5, payload(5))]
        );
        log.ack(1);
        drop(log); // drop writes what it has, without a flush
        let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked, vec![(3, payload(3)), (5, payload(5))]);
    }

    #[tokio::test]
    async fn seq_continues_after_reopen() {
        let dir = TempDir::new("seq");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        for i in 1..=3 {
            assert_eq!(log.append(payload(i)).await.unwrap(), i);
        }
        drop(log);
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(log.append(payload(4)).await.unwrap(), 4);
        drop(log);

        // Everything acked, the head segments reclaimed: the numbers still
        // go on.
        let small = LogConfig {
            segment_bytes: 1,
            ..config()
        };
        let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
        assert_eq!(unacked.len(), 4);
        for i in 5..=8 {
            assert_eq!(log.append(payload(i)).await.unwrap(), i);
        }
        for i in 1..=8 {
            log.ack(i);
        }
        log.flush().await.unwrap();
        drop(log);
        let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
        assert!(unacked.is_empty());
        assert_eq!(log.stats().segments, 1);
        assert_eq!(log.append(payload(9)).await.unwrap(), 9);
        log.ack(9);
        // The ack makes the active segment all acked; the next message opens
        // a new segment and the old one goes.
        assert_eq!(log.append(payload(10)).await.unwrap(), 10);
        log.ack(10);
        log.flush().await.unwrap();
        drop(log);
        let (log, unacked) = Log::open(&dir.0, small).unwrap();
        assert!(unacked.is_empty());
        assert_eq!(log.append(payload(11)).await.unwrap(), 11);
    }

    #[tokio::test]
    async fn seq_survives_an_empty_active_segment() {
        let dir = TempDir::new("empty-active");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        for i in 1..=3 {
            log.append(payload(i)).await.unwrap();
        }
        drop(log);
        // As if every segment had been reclaimed and a fresh one made.
        for path in segment_files(&dir.0) {
            fs::remove_file(path).unwrap();
        }
        File::create(segment_path(&dir.0, 4)).unwrap();
        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert!(unacked.is_empty());
        assert_eq!(log.append(payload(4)).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn torn_tail_garbage_is_cut() {
        let dir = TempDir::new("garbage");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        for i in 1..=3 {
            log.append(payload(i)).await.unwrap();
        }
        drop(log);
        let path = last_segment(&dir.0);
        let good_len = fs::metadata(&path).unwrap().len();
        append_raw(&path, &[0xde, 0xad, 0xbe, 0xef, 0x01]);

        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked.len(), 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(log.append(payload(4)).await.unwrap(), 4);
        drop(log);
        let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(
            unacked.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(unacked[3].1, payload(4));
    }

    #[tokio::test]
    async fn record_cut_mid_write_is_dropped() {
        let dir = TempDir::new("torn");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        for i in 1..=3 {
            log.append(payload(i)).await.unwrap();
        }
        drop(log);
        let path = last_segment(&dir.0);
        let len = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        drop(file);

        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked, vec![(1, payload(1)), (2, payload(2))]);
        // The cut message's number was never confirmed; it is given again.
        assert_eq!(log.append(payload(3)).await.unwrap(), 3);
        drop(log);
        let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked.len(), 3);
        assert_eq!(unacked[2], (3, payload(3)));
    }

    #[tokio::test]
    async fn huge_length_prefix_is_damage_not_an_allocation() {
        let dir = TempDir::new("huge");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        log.append(payload(1)).await.unwrap();
        drop(log);
        let path = last_segment(&dir.0);
        let good_len = fs::metadata(&path).unwrap().len();
        // Claims 4 GiB; followed by enough bytes to look like a start.
        let mut bad = u32::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0; 64]);
        append_raw(&path, &bad);

        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked, vec![(1, payload(1))]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        drop(log);

        // Within max_record but over what the file holds: also cut.
        let mut bad = 1_000_000u32.to_le_bytes().to_vec();
        bad.extend_from_slice(&[0; 64]);
        append_raw(&path, &bad);
        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked, vec![(1, payload(1))]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(log.append(payload(2)).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn max_record_bounds_appends_and_reads() {
        let dir = TempDir::new("max-record");
        let small = LogConfig {
            max_record: 12,
            ..config()
        };
        let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
        assert!(matches!(
            log.append(Bytes::from_static(b"four")).await,
            Err(LogError::TooLarge { size: 4, limit: 3 })
        ));
        assert_eq!(log.append(Bytes::from_static(b"abc")).await.unwrap(), 1);
        drop(log);
        let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
        assert_eq!(unacked, vec![(1, Bytes::from_static(b"abc"))]);
        drop(log);
        // A record over the limit on disk is damage: a 13-byte body.
        let mut record = Vec::new();
        encode(&mut record, KIND_MESSAGE, 2, b"abcd");
        append_raw(&last_segment(&dir.0), &record);
        let (log, unacked) = Log::open(&dir.0, small).unwrap();
        assert_eq!(unacked, vec![(1, Bytes::from_static(b"abc"))]);
        assert_eq!(log.append(Bytes::from_static(b"xyz")).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn bad_checksum_in_an_older_segment_skips_its_rest() {
        let dir = TempDir::new("older");
        let small = LogConfig {
            segment_bytes: 60,
            ..config()
        };
        let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
        for i in 1..=6 {
            log.append(payload(i)).await.unwrap();
        }
        drop(log);
        let files = segment_files(&dir.0);
        assert!(files.len() >= 2, "{files:?}");
        // Flip the last byte of the first segment's first record.
        let mut bytes = fs::read(&files[0]).unwrap();
        let first_len = HEADER_LEN + BODY_PREFIX_LEN + payload(1).len();
        bytes[first_len - 1] ^= 0xff;
        fs::write(&files[0], &bytes).unwrap();
        let in_first = (bytes.len() / first_len) as u64;

        let (log, unacked) = Log::open(&dir.0, small).unwrap();
        let seqs: Vec<u64> = unacked.iter().map(|(seq, _)| *seq).collect();
        let expected: Vec<u64> = (in_first + 1..=6).collect();
        assert_eq!(seqs, expected);
        // Nothing before the damage is unacknowledged: the segment goes.
        assert!(!files[0].exists());
        assert_eq!(log.append(payload(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn segments_roll_and_acked_head_segments_go() {
        let dir = TempDir::new("roll");
        let small = LogConfig {
            segment_bytes: 100,
            ..config()
        };
        let (log, _) = Log::open(&dir.0, small.clone()).unwrap();
        let big = Bytes::from(vec![7u8; 60]);
        for i in 1..=10 {
            assert_eq!(log.append(big.clone()).await.unwrap(), i);
        }
        log.flush().await.unwrap();
        let files = segment_files(&dir.0);
        // Each segment takes two 77-byte records before it is full.
        assert_eq!(files.len(), 5, "{files:?}");
        let stats = log.stats();
        assert_eq!(stats.segments, 5);
        assert_eq!(stats.bytes, 10 * 77);

        // All acked but message 3 (second segment): only the first goes.
        for i in (1..=10).filter(|&i| i != 3) {
            log.ack(i);
        }
        log.flush().await.unwrap();
        assert_eq!(segment_files(&dir.0), files[1..]);
        assert_eq!(log.stats().segments, 4);
        drop(log);
        let (log, unacked) = Log::open(&dir.0, small.clone()).unwrap();
        assert_eq!(unacked, vec![(3, big.clone())]);

        // Acking it frees all but the active segment.
        log.ack(3);
        log.flush().await.unwrap();
        assert_eq!(segment_files(&dir.0), files[4..]);
        assert_eq!(log.append(big.clone()).await.unwrap(), 11);
        drop(log);
        let (_log, unacked) = Log::open(&dir.0, small).unwrap();
        assert_eq!(unacked, vec![(11, big)]);
    }

    #[tokio::test]
    async fn fsync_always_and_every_both_work() {
        for fsync in [
            Fsync::Always,
            Fsync::Every(Duration::ZERO),
            Fsync::Every(Duration::from_millis(20)),
            Fsync::Every(Duration::MAX),
            Fsync::default(),
        ] {
            let dir = TempDir::new("fsync");
            let config = LogConfig {
                fsync,
                ..LogConfig::default()
            };
            let (log, _) = Log::open(&dir.0, config.clone()).unwrap();
            for i in 1..=20 {
                assert_eq!(log.append(payload(i)).await.unwrap(), i, "{fsync:?}");
            }
            log.ack(5);
            // Let the interval pass: the writer syncs on its own.
            tokio::time::sleep(Duration::from_millis(30)).await;
            log.flush().await.unwrap();
            drop(log);
            let (_log, unacked) = Log::open(&dir.0, config).unwrap();
            assert_eq!(unacked.len(), 19, "{fsync:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_concurrent_appends() {
        let dir = TempDir::new("concurrent");
        let (log, _) = Log::open(&dir.0, config()).unwrap();
        let mut tasks = Vec::new();
        for task in 0..100u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(100);
                for i in 0..100 {
                    seqs.push(log.append(payload(task * 100 + i)).await.unwrap());
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let seqs = task.await.unwrap();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            all.extend(seqs);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=10_000).collect::<Vec<_>>());
        drop(log);
        let (_log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(unacked.len(), 10_000);
        assert!(unacked.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    }

    #[tokio::test]
    async fn stray_files_and_names_are_ignored() {
        let dir = TempDir::new("stray");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.0.join("notes.txt"), b"hello").unwrap();
        fs::write(dir.0.join("123.seg"), b"garbage").unwrap();
        fs::write(dir.0.join("99999999999999999999.seg"), b"garbage").unwrap();
        let (log, unacked) = Log::open(&dir.0, config()).unwrap();
        assert!(unacked.is_empty());
        assert_eq!(log.append(payload(1)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn attempts_survive_a_reopen() {
        let dir = TempDir::new("attempts");
        {
            let (log, _) = Log::open(&dir.0, config()).unwrap();
            let a = log.append(payload(1)).await.unwrap();
            let b = log.append(payload(2)).await.unwrap();
            let c = log.append(payload(3)).await.unwrap();
            log.attempts(a, 1);
            log.attempts(a, 3);
            log.attempts(b, 2);
            log.ack(b);
            log.attempts(b, 9); // acked: not written
            log.attempts(c + 100, 4); // unknown: not written
            log.flush().await.unwrap();
        }
        let (log, pending) = Log::open(&dir.0, config()).unwrap();
        assert_eq!(pending.len(), 2);
        let attempts = log.take_attempts();
        assert_eq!(attempts.get(&pending[0].0), Some(&3));
        assert_eq!(attempts.len(), 1);
        assert!(log.take_attempts().is_empty());
    }

    #[test]
    fn segment_names() {
        assert_eq!(
            segment_path(Path::new("d"), 42),
            Path::new("d").join("00000000000000000042.seg")
        );
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("0000000000000000042.seg"), None);
        assert_eq!(parse_segment_name("+0000000000000000042.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.log"), None);
        assert_eq!(parse_segment_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn random_segment_content_never_panics() {
        let dir = TempDir::new("fuzz");
        fs::create_dir_all(&dir.0).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200u64 {
            // A valid record, then noise: some rounds with a plausible
            // header over the noise.
            let mut content = Vec::new();
            encode(&mut content, KIND_MESSAGE, 1, b"ok");
            let noise = (round % 50) as usize;
            for _ in 0..noise {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                content.push(state as u8);
            }
            if round % 3 == 0 && content.len() >= 27 {
                content[19..23].copy_from_slice(&(noise as u32).to_le_bytes());
            }
            let path = segment_path(&dir.0, 1);
            fs::write(&path, &content).unwrap();
            let (log, unacked) = Log::open(&dir.0, config()).unwrap();
            assert_eq!(unacked.first(), Some(&(1, Bytes::from_static(b"ok"))));
            drop(log);
        }
    }
}
