//! A batch of messages packed in one buffer, as batches travel between a
//! client and a broker: each message is `u16 LE subject length | subject |
//! u32 LE payload length | payload`. Unpacking checks every length against
//! what is left and every subject for UTF-8, and hands out the payloads as
//! slices of the one buffer (no copy, no allocation per message).

use bytes::{BufMut, Bytes, BytesMut};

/// Why a packed batch does not unpack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a packed batch is malformed at byte {at}: {why}")]
pub(crate) struct PackError {
    at: usize,
    why: &'static str,
}

/// Packs messages (subjects of at most 65,535 bytes; longer ones are cut,
/// and a valid subject is at most 255).
#[derive(Debug, Default)]
pub(crate) struct Packer {
    buf: BytesMut,
    count: usize,
}

impl Packer {
    pub(crate) fn push(&mut self, subject: &str, payload: &[u8]) {
        let subject = &subject.as_bytes()[..subject.len().min(u16::MAX as usize)];
        self.buf.reserve(6 + subject.len() + payload.len());
        self.buf.put_u16_le(subject.len() as u16);
        self.buf.put_slice(subject);
        self.buf
            .put_u32_le(payload.len().min(u32::MAX as usize) as u32);
        self.buf.put_slice(payload);
        self.count += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The packed batch; the packer starts again empty.
    pub(crate) fn take(&mut self) -> Bytes {
        self.count = 0;
        self.buf.split().freeze()
    }
}

/// The messages of a packed batch, in order: each subject and its payload
/// (a slice of `batch`).
pub(crate) fn unpack(batch: &Bytes) -> impl Iterator<Item = Result<(&str, Bytes), PackError>> {
    let mut at = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= batch.len() {
            return None;
        }
        let r = next(batch, &mut at);
        failed = r.is_err();
        Some(r)
    })
}

fn next<'a>(batch: &'a Bytes, at: &mut usize) -> Result<(&'a str, Bytes), PackError> {
    let err = |at: usize, why| Err(PackError { at, why });
    let b = &batch[..];
    let Some(len) = b.get(*at..*at + 2) else {
        return err(*at, "cut inside a subject's length");
    };
    let slen = u16::from_le_bytes([len[0], len[1]]) as usize;
    let s_start = *at + 2;
    let Some(subject) = b.get(s_start..s_start + slen) else {
        return err(s_start, "a subject longer than what is left");
    };
    let Ok(subject) = std::str::from_utf8(subject) else {
        return err(s_start, "a subject that is not UTF-8");
    };
    let p_len_at = s_start + slen;
    let Some(len) = b.get(p_len_at..p_len_at + 4) else {
        return err(p_len_at, "cut inside a payload's length");
    };
    let plen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let p_start = p_len_at + 4;
    if plen > b.len() - p_start {
        return err(p_start, "a payload longer than what is left");
    }
    *at = p_start + plen;
    Ok((subject, batch.slice(p_start..p_start + plen)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut p = Packer::default();
        p.push("a.b", b"one");
        p.push("c", b"");
        p.push("d.e.f", &[7; 300]);
        assert_eq!(p.len(), 3);
        let batch = p.take();
        assert!(p.is_empty());
        let got: Vec<(String, Bytes)> = unpack(&batch)
            .map(|r| r.map(|(s, b)| (s.to_owned(), b)))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got[0], ("a.b".into(), Bytes::from_static(b"one")));
        assert_eq!(got[1], ("c".into(), Bytes::new()));
        assert_eq!(got[2].1.len(), 300);
    }

    #[test]
    fn every_cut_is_an_error_never_a_panic() {
        let mut p = Packer::default();
        p.push("a.b", b"payload");
        p.push("c", b"x");
        let batch = p.take();
        for end in 0..batch.len() {
            let cut = batch.slice(..end);
            let all: Vec<_> = unpack(&cut).collect();
            if end == 0 || end == 3 + 2 + 4 + 7 {
                assert!(all.iter().all(Result::is_ok), "{end}");
            } else {
                assert!(all.last().is_some_and(Result::is_err), "{end}");
            }
        }
    }

    #[test]
    fn huge_lengths_are_refused_without_allocating() {
        let mut raw = vec![1, 0, b'a'];
        raw.extend_from_slice(&u32::MAX.to_le_bytes());
        let batch = Bytes::from(raw);
        assert!(unpack(&batch).next().unwrap().is_err());
        let bad_utf8 = Bytes::from(vec![1, 0, 0xff, 0, 0, 0, 0]);
        assert!(unpack(&bad_utf8).next().unwrap().is_err());
    }
}
