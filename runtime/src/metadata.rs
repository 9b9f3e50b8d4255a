//! Call metadata: a small map of string keys to byte values that travels
//! with a call, a one-way message or a broker message, beside its
//! arguments. Trace context (`traceparent`, `tracestate`), a tenant, a
//! request id: whatever the callee should know that is not an argument.
//!
//! ```
//! use farcall_runtime::Metadata;
//!
//! let mut m = Metadata::new();
//! m.insert("tenant", "acme").unwrap();
//! m.insert("request-id", b"\x01\x02".as_slice()).unwrap();
//! assert_eq!(m.get_str("tenant"), Some("acme"));
//! assert_eq!(m.len(), 2);
//! // Keys are lower-case words: letters, digits, '-', '_' and '.'.
//! assert!(m.insert("Not Allowed", "x").is_err());
//! ```
//!
//! On the wire (PROTOCOL.md, "Metadata") a block is `count(varint)` then,
//! per entry, `key(varint length + UTF-8)` and `value(varint length +
//! bytes)`. A receiver checks the block's length and its entry count
//! against its [`MetadataLimits`] before it reads a single entry, and the
//! values it hands out are slices of the received frame (no copy).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 64;

/// Call metadata: keys (lower-case words) to byte values, at most one
/// value per key, in insertion order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Bytes)>,
}

/// Values may be secrets (a token, a signature): shown as their length
/// only.
impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.entries {
            m.entry(k, &format_args!("<{} bytes>", v.len()));
        }
        m.finish()
    }
}

/// How much metadata a node accepts on one call or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataLimits {
    /// The most entries.
    pub max_entries: u32,
    /// The most bytes of the encoded block (keys, values and their
    /// lengths).
    pub max_len: u32,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        MetadataLimits {
            max_entries: 32,
            max_len: 8 * 1024,
        }
    }
}

/// Why metadata was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A key is empty, too long, or has a character other than a
    /// lower-case letter, a digit, `-`, `_` or `.`.
    #[error(
        "the metadata key {0:?} is not a lower-case word of at most {MAX_KEY_LEN} letters, digits, '-', '_' or '.'"
    )]
    BadKey(String),
    /// More entries than the limit.
    #[error("{count} metadata entries exceed the limit of {max}")]
    TooManyEntries {
        /// Entries sent.
        count: u64,
        /// The limit.
        max: u32,
    },
    /// A block longer than the limit.
    #[error("{len} bytes of metadata exceed the limit of {max}")]
    TooLong {
        /// Bytes sent.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The block does not decode.
    #[error("the metadata is malformed: {0}")]
    Malformed(&'static str),
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY_LEN
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

impl Metadata {
    /// No metadata.
    pub const fn new() -> Self {
        Metadata {
            entries: Vec::new(),
        }
    }

    /// Sets `key` to `value`, replacing and returning any value it had.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Bytes>,
    ) -> Result<Option<Bytes>, MetadataError> {
        let key = key.into();
        if !valid_key(&key) {
            return Err(MetadataError::BadKey(key));
        }
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Ok(Some(std::mem::replace(v, value))),
            None => {
                self.entries.push((key, value));
                Ok(None)
            }
        }
    }

    /// The same metadata with `key` set to `value`.
    ///
    /// # Panics
    /// If `key` is not a valid key (see [`MetadataError::BadKey`]); use
    /// [`Metadata::insert`] for keys that are not literals.
    pub fn with(mut self, key: &str, value: impl Into<Bytes>) -> Self {
        if let Err(e) = self.insert(key, value) {
            panic!("{e}");
        }
        self
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, if it is UTF-8 text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// The entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds every entry of `other` whose key this metadata does not have.
    pub fn inherit(&mut self, other: &Metadata) {
        for (k, v) in &other.entries {
            if self.get(k).is_none() {
                self.entries.push((k.clone(), v.clone()));
            }
        }
    }

    /// Checks this metadata against `limits`, as its receiver will.
    pub fn check(&self, limits: &MetadataLimits) -> Result<(), MetadataError> {
        if self.entries.len() as u64 > limits.max_entries as u64 {
            return Err(MetadataError::TooManyEntries {
                count: self.entries.len() as u64,
                max: limits.max_entries,
            });
        }
        let len = self.encoded_len();
        if len as u64 > limits.max_len as u64 {
            return Err(MetadataError::TooLong {
                len: len as u64,
                max: limits.max_len,
            });
        }
        Ok(())
    }

    /// The length of the encoded block.
    pub fn encoded_len(&self) -> usize {
        varint_len(self.entries.len() as u64)
            + self
                .entries
                .iter()
                .map(|(k, v)| {
                    varint_len(k.len() as u64) + k.len() + varint_len(v.len() as u64) + v.len()
                })
                .sum::<usize>()
    }

    /// Appends the encoded block (see the module's documentation).
    pub fn encode_into(&self, buf: &mut BytesMut) {
        put_varint(buf, self.entries.len() as u64);
        for (k, v) in &self.entries {
            put_varint(buf, k.len() as u64);
            buf.put_slice(k.as_bytes());
            put_varint(buf, v.len() as u64);
            buf.put_slice(v);
        }
    }

    /// The encoded block.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut b);
        b.freeze()
    }

    /// Decodes a block within `limits`. The length and the entry count
    /// are checked before any entry is read; values are slices of
    /// `block`.
    pub fn decode(block: &Bytes, limits: &MetadataLimits) -> Result<Metadata, MetadataError> {
        if block.is_empty() {
            return Ok(Metadata::new());
        }
        if block.len() as u64 > limits.max_len as u64 {
            return Err(MetadataError::TooLong {
                len: block.len() as u64,
                max: limits.max_len,
            });
        }
        let mut at = 0;
        let count = take_varint(block, &mut at)?;
        if count > limits.max_entries as u64 {
            return Err(MetadataError::TooManyEntries {
                count,
                max: limits.max_entries,
            });
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let key = take_slice(block, &mut at)?;
            let key = std::str::from_utf8(&key)
                .map_err(|_| MetadataError::Malformed("a key is not UTF-8"))?;
            if !valid_key(key) {
                return Err(MetadataError::BadKey(
                    key.chars().take(MAX_KEY_LEN).collect(),
                ));
            }
            let value = take_slice(block, &mut at)?;
            if entries.iter().any(|(k, _): &(String, Bytes)| k == key) {
                return Err(MetadataError::Malformed("a key appears twice"));
            }
            entries.push((key.to_owned(), value));
        }
        if at != block.len() {
            return Err(MetadataError::Malformed("bytes follow the last entry"));
        }
        Ok(Metadata { entries })
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn take_varint(b: &[u8], at: &mut usize) -> Result<u64, MetadataError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*at)
            .ok_or(MetadataError::Malformed("the block ends inside a length"))?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(MetadataError::Malformed(
        "a length is longer than ten bytes",
    ))
}

fn take_slice(b: &Bytes, at: &mut usize) -> Result<Bytes, MetadataError> {
    let len = take_varint(b, at)?;
    let end = (*at as u64)
        .checked_add(len)
        .filter(|&e| e <= b.len() as u64)
        .ok_or(MetadataError::Malformed("an entry runs past the block"))? as usize;
    let s = b.slice(*at..end);
    *at = end;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MetadataLimits {
        MetadataLimits::default()
    }

    #[test]
    fn round_trips_and_keeps_order() {
        let m = Metadata::new()
            .with("traceparent", "00-abc-def-01")
            .with("bin", vec![0u8, 255, 7]);
        let block = m.encode();
        assert_eq!(block.len(), m.encoded_len());
        let back = Metadata::decode(&block, &limits()).unwrap();
        assert_eq!(back, m);
        let keys: Vec<_> = back.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["traceparent", "bin"]);
    }

    #[test]
    fn insert_replaces() {
        let mut m = Metadata::new();
        assert_eq!(m.insert("a", "1").unwrap(), None);
        assert_eq!(m.insert("a", "2").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove("a").as_deref(), Some(&b"2"[..]));
        assert!(m.is_empty());
    }

    #[test]
    fn bad_keys_are_refused() {
        for k in ["", "Upper", "with space", "é", &"k".repeat(65)] {
            assert!(matches!(
                Metadata::new().insert(k, "v"),
                Err(MetadataError::BadKey(_))
            ));
        }
    }

    #[test]
    fn an_entry_count_over_the_limit_is_refused_before_reading() {
        // A count of 2^40 entries in a block of six bytes.
        let mut b = BytesMut::new();
        put_varint(&mut b, 1 << 40);
        let e = Metadata::decode(&b.freeze(), &limits()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1099511627776 metadata entries exceed the limit of 32"
        );
    }

    #[test]
    fn a_long_block_is_refused() {
        let m = Metadata::new().with("big", vec![0u8; 9000]);
        let e = Metadata::decode(&m.encode(), &limits()).unwrap_err();
        assert!(matches!(e, MetadataError::TooLong { max: 8192, .. }));
        assert_eq!(m.check(&limits()), Err(e));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_malformed() {
        let block = Metadata::new().with("k", "value").encode();
        for cut in 1..block.len() {
            let e = Metadata::decode(&block.slice(..cut), &limits()).unwrap_err();
            assert!(matches!(e, MetadataError::Malformed(_)), "{cut}: {e}");
        }
        let mut longer = BytesMut::from(&block[..]);
        longer.put_u8(0);
        assert!(Metadata::decode(&longer.freeze(), &limits()).is_err());
        // A length that claims more than the block holds.
        let lie = Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(Metadata::decode(&lie, &limits()).is_err());
    }

    #[test]
    fn duplicate_keys_are_malformed() {
        let mut b = BytesMut::new();
        put_varint(&mut b, 2);
        for _ in 0..2 {
            put_varint(&mut b, 1);
            b.put_u8(b'k');
            put_varint(&mut b, 0);
        }
        assert_eq!(
            Metadata::decode(&b.freeze(), &limits()),
            Err(MetadataError::Malformed("a key appears twice"))
        );
    }

    #[test]
    fn debug_hides_values() {
        let m = Metadata::new().with("authorization", "secret-token");
        let shown = format!("{m:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("authorization"));
    }
}
