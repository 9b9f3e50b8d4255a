//! Opening a log: reading every segment back, oldest first, and cutting a
//! damaged tail (where a crash interrupted a write).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::OpenOptions;
use std::path::Path;

use bytes::Bytes;

use super::record::{SegmentReader, Step};
use super::segment::{Segment, list_segments, segment_of};
use super::{LogConfig, LogError, file_error};

/// What [`scan`] found in a log's directory.
pub(super) struct Recovered {
    /// The segments, oldest first (none in a new log).
    pub(super) segments: VecDeque<Segment>,
    /// Every message appended and never acked, by sequence number.
    pub(super) unacked: BTreeMap<u64, Bytes>,
    /// The deliveries recorded for those messages (the last record of each).
    pub(super) attempts: HashMap<u64, u32>,
    /// The sequence number of the next message.
    pub(super) next_seq: u64,
}

/// Reads the segments in `dir`: a damaged record in the last one is cut
/// off (the file truncated there), damage in an older one skips the rest
/// of it; both are warned about.
pub(super) fn scan(dir: &Path, config: &LogConfig) -> Result<Recovered, LogError> {
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
    Ok(Recovered {
        segments,
        unacked,
        attempts,
        next_seq,
    })
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
