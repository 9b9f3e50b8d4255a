//! The segment files of a log: their names, creating, listing and
//! deleting them, and what the writer knows of each.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{LogError, file_error};

/// How a segment's file name ends.
const SEGMENT_SUFFIX: &str = ".seg";
/// Digits of the sequence number in a segment's file name.
const SEGMENT_DIGITS: usize = 20;

/// One segment file, as the writer knows it.
#[derive(Debug)]
pub(super) struct Segment {
    /// Its name: no message in it has a lower number.
    pub(super) first_seq: u64,
    pub(super) path: PathBuf,
    /// Its size, counting what is buffered for it.
    pub(super) bytes: u64,
    /// Its messages not acknowledged yet.
    pub(super) live: HashSet<u64>,
}

/// The segment that would hold message `seq`, if it is still there.
pub(super) fn segment_of(segments: &mut VecDeque<Segment>, seq: u64) -> Option<&mut Segment> {
    let after = segments.partition_point(|segment| segment.first_seq <= seq);
    let index = after.checked_sub(1)?;
    segments.get_mut(index)
}

/// Deletes segments from the head while all their messages are acknowledged,
/// never the last (active) one.
pub(super) fn reclaim(segments: &mut VecDeque<Segment>) {
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
pub(super) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
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
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of the segment starting at `first_seq`.
pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!(
        "{first_seq:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_DIGITS
    ))
}

/// Creates a new, empty segment starting at `first_seq`, durably.
pub(super) fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, Segment), LogError> {
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
