//! The records of a segment: their format on disk, encoding one and
//! reading them back with every check against damage.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use bytes::Bytes;

use super::{LogError, file_error};

/// Bytes before a record's body: its length and checksum.
pub(super) const HEADER_LEN: usize = 8;
/// Bytes of a body before the payload: kind and sequence number.
pub(super) const BODY_PREFIX_LEN: usize = 9;
/// The kind of a message record.
pub(super) const KIND_MESSAGE: u8 = 1;
/// The kind of an ack record.
pub(super) const KIND_ACK: u8 = 2;
/// The kind of a record of a message's deliveries so far.
pub(super) const KIND_ATTEMPTS: u8 = 3;
/// Read buffer when scanning a segment.
const READ_BUFFER: usize = 64 << 10;

/// What reading a segment found next.
pub(super) enum Step {
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
pub(super) struct SegmentReader<'a> {
    path: &'a Path,
    reader: BufReader<File>,
    /// The file's size when opened.
    pub(super) len: u64,
    /// Where the next record starts: the end of the last whole record.
    pub(super) pos: u64,
    max_record: u32,
}

impl<'a> SegmentReader<'a> {
    pub(super) fn open(path: &'a Path, max_record: u32) -> Result<Self, LogError> {
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

    pub(super) fn next(&mut self) -> Result<Step, LogError> {
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
pub(super) fn encode(buf: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) -> u64 {
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
