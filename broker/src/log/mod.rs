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

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

// The handle and its errors are here; the files are in `segment`, their
// records in `record`, opening in `recover`, the writer thread in `writer`.
mod record;
mod recover;
mod segment;
mod writer;

use record::BODY_PREFIX_LEN;
use recover::Recovered;
use segment::{create_segment, reclaim};
use writer::Writer;

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
        let Recovered {
            mut segments,
            unacked,
            attempts,
            next_seq,
        } = recover::scan(dir, &config)?;
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
        let writer = Writer::new(dir, &config, segments, file, next_seq, stats.clone());
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

#[cfg(test)]
mod tests;
