//! The handshake: the dialer sends a hello, the listener welcomes or refuses.
//!
//! ```text
//! hello:   magic(8) version(u16 BE) body_len(u16 BE) body = postcard(Hello)
//! answer:  magic(8) version(u16 BE) status(u8: 0 welcome, 1 refused)
//!          body_len(u16 BE) body = postcard(Welcome) | UTF-8 reason
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::id::NodeId;

/// The eight bytes that open every farcall connection.
pub const MAGIC: [u8; 8] = *b"FARCALL\0";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 2;
/// The largest handshake body accepted, in bytes.
pub const MAX_BODY: usize = 4096;
/// Bytes before the body of a hello.
pub const HELLO_PREFIX: usize = 12;
/// Bytes before the body of an answer.
pub const ANSWER_PREFIX: usize = 13;

/// What the dialing side announces.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The dialer's node id.
    pub node: NodeId,
    /// The largest frame the dialer accepts.
    pub max_frame_len: u32,
    /// How many requests the dialer serves at once for this connection.
    pub max_in_flight: u32,
    /// Reserved for authentication; empty today and ignored by listeners.
    pub credentials: Option<Bytes>,
}

/// The credentials are a secret: shown as present or not, never as
/// they are.
impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("node", &self.node)
            .field("max_frame_len", &self.max_frame_len)
            .field("max_in_flight", &self.max_in_flight)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// What the listening side answers when it accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The listener's node id.
    pub node: NodeId,
    /// The largest frame the listener accepts.
    pub max_frame_len: u32,
    /// How many requests the listener serves at once for this connection.
    pub max_in_flight: u32,
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first bytes are not farcall's magic.
    #[error("not a farcall peer (bad magic bytes)")]
    BadMagic,
    /// The peer speaks a protocol version this build does not.
    #[error("protocol version mismatch: this node speaks {ours}, the peer {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The body length is over [`MAX_BODY`].
    #[error("handshake body of {0} bytes exceeds the limit of {MAX_BODY}")]
    BodyTooLarge(usize),
    /// The body does not decode.
    #[error("malformed handshake body: {0}")]
    Malformed(String),
    /// The status byte of an answer is unknown.
    #[error("unknown handshake status {0}")]
    BadStatus(u8),
    /// The listener refused the connection; its reason follows.
    #[error("refused by the peer: {0}")]
    Refused(String),
}

/// Encodes a hello.
///
/// # Panics
/// If the body is over [`MAX_BODY`] (credentials of more than 4 KiB).
pub fn encode_hello(h: &Hello) -> Bytes {
    let body = postcard::to_stdvec(h).expect("a hello always encodes");
    assert!(
        body.len() <= MAX_BODY,
        "handshake credentials over {MAX_BODY} bytes"
    );
    let mut b = BytesMut::with_capacity(HELLO_PREFIX + body.len());
    b.put_slice(&MAGIC);
    b.put_u16(PROTOCOL_VERSION);
    b.put_u16(body.len() as u16);
    b.put_slice(&body);
    b.freeze()
}

/// Checks the fixed prefix of a hello and returns the body length to read.
///
/// Fails on bad magic, version mismatch or an oversized body; the caller
/// answers the failure with [`encode_refusal`].
pub fn decode_hello_prefix(p: &[u8; HELLO_PREFIX]) -> Result<usize, HandshakeError> {
    check_magic_version(p)?;
    let len = u16::from_be_bytes([p[10], p[11]]) as usize;
    if len > MAX_BODY {
        return Err(HandshakeError::BodyTooLarge(len));
    }
    Ok(len)
}

fn check_magic_version(p: &[u8]) -> Result<(), HandshakeError> {
    if p[..8] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    let theirs = u16::from_be_bytes([p[8], p[9]]);
    if theirs != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    Ok(())
}

/// Decodes a hello body.
pub fn decode_hello_body(body: &[u8]) -> Result<Hello, HandshakeError> {
    postcard::from_bytes(body).map_err(|e| HandshakeError::Malformed(e.to_string()))
}

/// Decodes a whole hello (prefix and body) from one buffer.
pub fn decode_hello(b: &[u8]) -> Result<Hello, HandshakeError> {
    let prefix: &[u8; HELLO_PREFIX] = b
        .get(..HELLO_PREFIX)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| HandshakeError::Malformed("truncated hello".into()))?;
    let len = decode_hello_prefix(prefix)?;
    let body = b
        .get(HELLO_PREFIX..HELLO_PREFIX + len)
        .ok_or_else(|| HandshakeError::Malformed("truncated hello body".into()))?;
    decode_hello_body(body)
}

/// Encodes a welcome.
pub fn encode_welcome(w: &Welcome) -> Bytes {
    let body = postcard::to_stdvec(w).expect("a welcome always encodes");
    answer(0, &body)
}

/// Encodes a refusal with a reason the dialer reports to its user.
pub fn encode_refusal(reason: &str) -> Bytes {
    let mut r = reason.as_bytes();
    if r.len() > MAX_BODY {
        r = &r[..MAX_BODY];
    }
    answer(1, r)
}

fn answer(status: u8, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(ANSWER_PREFIX + body.len());
    b.put_slice(&MAGIC);
    b.put_u16(PROTOCOL_VERSION);
    b.put_u8(status);
    b.put_u16(body.len() as u16);
    b.put_slice(body);
    b.freeze()
}

/// Checks the fixed prefix of an answer; returns the status and body length.
///
/// A version mismatch is not an error here: a listener of another version
/// refuses with a reason, and that reason is what the dialer should see.
pub fn decode_answer_prefix(p: &[u8; ANSWER_PREFIX]) -> Result<(u8, usize), HandshakeError> {
    if p[..8] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    let status = p[10];
    if status > 1 {
        return Err(HandshakeError::BadStatus(status));
    }
    let len = u16::from_be_bytes([p[11], p[12]]) as usize;
    if len > MAX_BODY {
        return Err(HandshakeError::BodyTooLarge(len));
    }
    let theirs = u16::from_be_bytes([p[8], p[9]]);
    if status == 0 && theirs != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    Ok((status, len))
}

/// Decodes an answer body given its status.
pub fn decode_answer_body(status: u8, body: &[u8]) -> Result<Welcome, HandshakeError> {
    match status {
        0 => postcard::from_bytes(body).map_err(|e| HandshakeError::Malformed(e.to_string())),
        _ => Err(HandshakeError::Refused(
            String::from_utf8_lossy(body).into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips() {
        let h = Hello {
            node: NodeId(7),
            max_frame_len: 1 << 20,
            max_in_flight: 9,
            credentials: Some(Bytes::from_static(b"tok")),
        };
        assert_eq!(decode_hello(&encode_hello(&h)).unwrap(), h);
    }

    #[test]
    fn version_mismatch_is_named() {
        let mut b = encode_hello(&Hello {
            node: NodeId(1),
            max_frame_len: 1,
            max_in_flight: 1,
            credentials: None,
        })
        .to_vec();
        b[9] = 9;
        let e = decode_hello(&b).unwrap_err();
        assert_eq!(e, HandshakeError::VersionMismatch { ours: 2, theirs: 9 });
    }

    #[test]
    fn refusal_carries_reason() {
        let b = encode_refusal("go away");
        let p: &[u8; ANSWER_PREFIX] = b[..ANSWER_PREFIX].try_into().unwrap();
        let (s, n) = decode_answer_prefix(p).unwrap();
        let e = decode_answer_body(s, &b[ANSWER_PREFIX..ANSWER_PREFIX + n]).unwrap_err();
        assert_eq!(e, HandshakeError::Refused("go away".into()));
    }
}
