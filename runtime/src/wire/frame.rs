//! Frames: `length(u32 LE) kind(u8) header(postcard) payload(rest)`.
//!
//! `length` counts everything after itself. It is checked against the
//! receiver's limit before a single byte of the frame is buffered beyond
//! what has arrived, so a hostile length costs nothing.
//!
//! ```
//! use bytes::BytesMut;
//! use farcall_runtime::wire::{Frame, frame};
//!
//! let mut buf = BytesMut::new();
//! frame::encode(&mut buf, &Frame::Ping { nonce: 7 }, 1 << 20).unwrap();
//! let body = frame::split(&mut buf, 1 << 20).unwrap().unwrap();
//! assert_eq!(Frame::decode(body).unwrap(), Frame::Ping { nonce: 7 });
//! ```

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::id::ObjectId;

mod head;
pub use head::Head;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// The flag of a call or message header that says a metadata block
/// (`varint length + bytes`) follows the header.
pub const FLAG_METADATA: u32 = 1;

/// The kind byte of a frame. Receivers skip kinds they do not know, so new
/// kinds can be added without a protocol version change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A request expecting a reply.
    Call = 0,
    /// The answer to a call: ok, or a fault.
    Reply = 1,
    /// The caller gave up on a call.
    Cancel = 2,
    /// A one-way message: no reply.
    Message = 3,
    /// One item of a stream.
    StreamItem = 4,
    /// The end of a stream, normal or with a fault.
    StreamEnd = 5,
    /// Renew leases on remote references.
    LeaseRenew = 6,
    /// Release leases on remote references.
    LeaseRelease = 7,
    /// Liveness probe.
    Ping = 8,
    /// Answer to a ping.
    Pong = 9,
    /// The sender is closing: it sends no new calls.
    Close = 10,
    /// The consumer of a stream lets its producer send more items.
    StreamCredit = 11,
    /// The consumer of a stream drops it: the producer stops.
    StreamCancel = 12,
}

impl Kind {
    /// The kind's name as `docs/PROTOCOL.md` writes it (`Call`,
    /// `StreamEnd`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Call => "Call",
            Kind::Reply => "Reply",
            Kind::Cancel => "Cancel",
            Kind::Message => "Message",
            Kind::StreamItem => "StreamItem",
            Kind::StreamEnd => "StreamEnd",
            Kind::LeaseRenew => "LeaseRenew",
            Kind::LeaseRelease => "LeaseRelease",
            Kind::Ping => "Ping",
            Kind::Pong => "Pong",
            Kind::Close => "Close",
            Kind::StreamCredit => "StreamCredit",
            Kind::StreamCancel => "StreamCancel",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A runtime-level failure carried by a reply or a stream end. Application
/// errors travel inside the ok payload, as the application's own type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Fault {
    /// No object with the called id is served here.
    #[error("no such object")]
    NoSuchObject,
    /// The object does not have the called method.
    #[error("no such method")]
    NoSuchMethod,
    /// The request payload did not decode on the server.
    #[error("the server could not decode the request: {0}")]
    Decode(String),
    /// The deadline passed before the handler finished.
    #[error("deadline exceeded on the server")]
    DeadlineExceeded,
    /// The server already serves its maximum of requests for this connection.
    #[error("the server is at its limit of requests in flight")]
    Overloaded,
    /// The handler panicked; the server goes on.
    #[error("the handler panicked")]
    Panicked,
    /// The server refused the request; the reason follows.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The server is closing and takes no new requests.
    #[error("the server is shutting down")]
    Closing,
    /// A relay has no route to the destination.
    #[error("no route to the destination")]
    NoRoute,
    /// The method exists with another signature (client and server were
    /// built from different versions of the interface).
    #[error("interface mismatch: {0}")]
    InterfaceMismatch(String),
    /// The server's policy does not allow this caller this call; the
    /// reason follows. The connection goes on.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
}

/// A decoded frame. Payloads share the receive buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A request expecting a reply.
    Call {
        /// Unique among the sender's calls in flight on this connection.
        id: u64,
        /// Time the caller still waits, in microseconds; 0 = no deadline.
        timeout_us: u64,
        /// The object called.
        object: ObjectId,
        /// The method called, as the object's protocol numbers it.
        method: u64,
        /// Flags other than [`FLAG_METADATA`] (set on the wire when
        /// `metadata` is not empty); none is defined today.
        flags: u32,
        /// The encoded metadata block (empty: none); see
        /// [`crate::Metadata`].
        metadata: Bytes,
        /// The encoded arguments.
        payload: Bytes,
    },
    /// The answer to call `id`.
    Reply {
        /// The call answered.
        id: u64,
        /// The encoded result, or a runtime fault.
        result: Result<Bytes, Fault>,
    },
    /// The caller of `id` gave up; the handler is dropped.
    Cancel {
        /// The call abandoned.
        id: u64,
    },
    /// A one-way message.
    Message {
        /// The object addressed.
        object: ObjectId,
        /// The method addressed.
        method: u64,
        /// Flags other than [`FLAG_METADATA`], as for a call.
        flags: u32,
        /// The encoded metadata block (empty: none).
        metadata: Bytes,
        /// The encoded message.
        payload: Bytes,
    },
    /// One stream item.
    StreamItem {
        /// The stream.
        stream: u64,
        /// The encoded item.
        payload: Bytes,
    },
    /// The end of a stream.
    StreamEnd {
        /// The stream.
        stream: u64,
        /// Why it ended early, if it did.
        fault: Option<Fault>,
    },
    /// Renew leases.
    LeaseRenew {
        /// The objects whose leases are renewed.
        objects: Vec<ObjectId>,
    },
    /// Release leases.
    LeaseRelease {
        /// The objects released.
        objects: Vec<ObjectId>,
    },
    /// Liveness probe.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The sender closes gracefully.
    Close {
        /// Why, for the other side's logs and errors.
        reason: String,
    },
    /// The consumer of `stream` lets its producer send `items` more.
    StreamCredit {
        /// The stream (in the producer's numbering).
        stream: u64,
        /// How many more items the producer may send.
        items: u32,
    },
    /// The consumer of `stream` dropped it; the producer stops and answers
    /// with a `StreamEnd`.
    StreamCancel {
        /// The stream (in the producer's numbering).
        stream: u64,
    },
    /// A kind this build does not know; skipped.
    Unknown {
        /// The kind byte.
        kind: u8,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced (or encoded) length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The frame has no kind byte.
    #[error("empty frame")]
    Empty,
    /// The header does not decode.
    #[error("malformed {kind} header: {reason}")]
    BadHeader {
        /// The frame kind.
        kind: Kind,
        /// The decoder's message.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct CallHeader {
    id: u64,
    timeout_us: u64,
    object: ObjectId,
    method: u64,
    flags: u32,
}

#[derive(Serialize, Deserialize)]
struct ReplyHeader {
    id: u64,
    ok: bool,
}

#[derive(Serialize, Deserialize)]
struct MessageHeader {
    object: ObjectId,
    method: u64,
    flags: u32,
}

#[derive(Serialize, Deserialize)]
struct StreamEndHeader {
    stream: u64,
    fault: Option<Fault>,
}

#[derive(Serialize, Deserialize)]
struct StreamCreditHeader {
    stream: u64,
    items: u32,
}

/// Takes one whole frame body (after the length prefix) off the front of
/// `buf`, or returns `None` if more bytes are needed. Reserves room only
/// for bytes the frame has announced and the limit allows, at most 64 KiB
/// ahead of what has arrived.
pub fn split(buf: &mut BytesMut, max: u32) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < LEN_PREFIX {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let total = LEN_PREFIX + len as usize;
    if buf.len() < total {
        let missing = total - buf.len();
        buf.reserve(missing.min(64 * 1024));
        return Ok(None);
    }
    buf.advance(LEN_PREFIX);
    Ok(Some(buf.split_to(len as usize).freeze()))
}

fn header<'a, T: Deserialize<'a>>(kind: Kind, b: &'a [u8]) -> Result<(T, &'a [u8]), FrameError> {
    postcard::take_from_bytes(b).map_err(|e| FrameError::BadHeader {
        kind,
        reason: e.to_string(),
    })
}

/// The metadata block after a call or message header, if its flags say
/// there is one: a slice of the frame, parsed (within the receiver's
/// limits) only by whoever serves the call.
fn metadata_block<'a>(
    kind: Kind,
    flags: u32,
    rest: &'a [u8],
    slice: &dyn Fn(&[u8]) -> Bytes,
) -> Result<(Bytes, &'a [u8]), FrameError> {
    if flags & FLAG_METADATA == 0 {
        return Ok((Bytes::new(), rest));
    }
    let (block, after): (&[u8], _) = header(kind, rest)?;
    // The block's bytes end where the rest of the frame begins.
    let start = rest.len() - after.len() - block.len();
    Ok((slice(rest).slice(start..start + block.len()), after))
}

impl Frame {
    /// Decodes a frame body as returned by [`split`].
    pub fn decode(body: Bytes) -> Result<Frame, FrameError> {
        let (&k, rest) = body.split_first().ok_or(FrameError::Empty)?;
        let payload_at = |rest: &[u8]| body.slice(body.len() - rest.len()..);
        Ok(match k {
            0 => {
                let (h, rest): (CallHeader, _) = header(Kind::Call, rest)?;
                let (metadata, rest) = metadata_block(Kind::Call, h.flags, rest, &payload_at)?;
                Frame::Call {
                    id: h.id,
                    timeout_us: h.timeout_us,
                    object: h.object,
                    method: h.method,
                    flags: h.flags & !FLAG_METADATA,
                    metadata,
                    payload: payload_at(rest),
                }
            }
            1 => {
                let (h, rest): (ReplyHeader, _) = header(Kind::Reply, rest)?;
                let result = if h.ok {
                    Ok(payload_at(rest))
                } else {
                    Err(header::<Fault>(Kind::Reply, rest)?.0)
                };
                Frame::Reply { id: h.id, result }
            }
            2 => Frame::Cancel {
                id: header(Kind::Cancel, rest)?.0,
            },
            3 => {
                let (h, rest): (MessageHeader, _) = header(Kind::Message, rest)?;
                let (metadata, rest) = metadata_block(Kind::Message, h.flags, rest, &payload_at)?;
                Frame::Message {
                    object: h.object,
                    method: h.method,
                    flags: h.flags & !FLAG_METADATA,
                    metadata,
                    payload: payload_at(rest),
                }
            }
            4 => {
                let (stream, rest) = header(Kind::StreamItem, rest)?;
                Frame::StreamItem {
                    stream,
                    payload: payload_at(rest),
                }
            }
            5 => {
                let (h, _): (StreamEndHeader, _) = header(Kind::StreamEnd, rest)?;
                Frame::StreamEnd {
                    stream: h.stream,
                    fault: h.fault,
                }
            }
            6 => Frame::LeaseRenew {
                objects: header(Kind::LeaseRenew, rest)?.0,
            },
            7 => Frame::LeaseRelease {
                objects: header(Kind::LeaseRelease, rest)?.0,
            },
            8 => Frame::Ping {
                nonce: header(Kind::Ping, rest)?.0,
            },
            9 => Frame::Pong {
                nonce: header(Kind::Pong, rest)?.0,
            },
            10 => Frame::Close {
                reason: header(Kind::Close, rest)?.0,
            },
            11 => {
                let (h, _): (StreamCreditHeader, _) = header(Kind::StreamCredit, rest)?;
                Frame::StreamCredit {
                    stream: h.stream,
                    items: h.items,
                }
            }
            12 => Frame::StreamCancel {
                stream: header(Kind::StreamCancel, rest)?.0,
            },
            kind => Frame::Unknown { kind },
        })
    }

    /// The kind of this frame (`None` for an unknown kind).
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            Frame::Call { .. } => Kind::Call,
            Frame::Reply { .. } => Kind::Reply,
            Frame::Cancel { .. } => Kind::Cancel,
            Frame::Message { .. } => Kind::Message,
            Frame::StreamItem { .. } => Kind::StreamItem,
            Frame::StreamEnd { .. } => Kind::StreamEnd,
            Frame::LeaseRenew { .. } => Kind::LeaseRenew,
            Frame::LeaseRelease { .. } => Kind::LeaseRelease,
            Frame::Ping { .. } => Kind::Ping,
            Frame::Pong { .. } => Kind::Pong,
            Frame::Close { .. } => Kind::Close,
            Frame::StreamCredit { .. } => Kind::StreamCredit,
            Frame::StreamCancel { .. } => Kind::StreamCancel,
            Frame::Unknown { .. } => return None,
        })
    }
}

fn put<T: Serialize + ?Sized>(buf: &mut BytesMut, h: &T) {
    let mut tmp = [0u8; 64];
    match postcard::to_slice(h, &mut tmp) {
        Ok(used) => buf.put_slice(used),
        // Larger headers (lease lists, long reasons) take the slow path.
        Err(_) => buf.put_slice(&postcard::to_stdvec(h).expect("headers always encode")),
    }
}

/// Writes a frame whose payload is produced by `payload`, patching the
/// length afterwards. On any failure `buf` is left as it was.
pub fn encode_with<E>(
    buf: &mut BytesMut,
    kind: Kind,
    header: impl FnOnce(&mut BytesMut),
    payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    max: u32,
) -> Result<(), EncodeError<E>> {
    let start = buf.len();
    buf.put_u32_le(0);
    buf.put_u8(kind as u8);
    header(buf);
    if let Err(e) = payload(buf) {
        buf.truncate(start);
        return Err(EncodeError::Payload(e));
    }
    let len = buf.len() - start - LEN_PREFIX;
    if len > max as usize {
        buf.truncate(start);
        return Err(EncodeError::Frame(FrameError::TooLarge {
            len: len as u64,
            max,
        }));
    }
    buf[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Why a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError<E> {
    /// The payload encoder failed.
    #[error("the payload does not encode: {0}")]
    Payload(#[source] E),
    /// The frame is over the limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Writes a call frame with a payload encoder.
pub fn encode_call<E>(
    buf: &mut BytesMut,
    id: u64,
    timeout_us: u64,
    head: Head<'_>,
    payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    max: u32,
) -> Result<(), EncodeError<E>> {
    let h = CallHeader {
        id,
        timeout_us,
        object: head.object,
        method: head.method,
        flags: head.flags(),
    };
    encode_with(buf, Kind::Call, |b| head.write(b, &h), payload, max)
}

/// Writes a one-way message frame with a payload encoder.
pub fn encode_message<E>(
    buf: &mut BytesMut,
    head: Head<'_>,
    payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    max: u32,
) -> Result<(), EncodeError<E>> {
    let h = MessageHeader {
        object: head.object,
        method: head.method,
        flags: head.flags(),
    };
    encode_with(buf, Kind::Message, |b| head.write(b, &h), payload, max)
}

/// Writes a stream item frame with a payload encoder.
pub fn encode_stream_item<E>(
    buf: &mut BytesMut,
    stream: u64,
    payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    max: u32,
) -> Result<(), EncodeError<E>> {
    encode_with(buf, Kind::StreamItem, |b| put(b, &stream), payload, max)
}

/// Writes any frame whose payload is already in hand.
pub fn encode(buf: &mut BytesMut, f: &Frame, max: u32) -> Result<(), FrameError> {
    let bytes = |p: &Bytes| {
        let p = p.clone();
        move |b: &mut BytesMut| -> Result<(), ()> {
            b.put_slice(&p);
            Ok(())
        }
    };
    let none = |_: &mut BytesMut| -> Result<(), ()> { Ok(()) };
    let r = match f {
        Frame::Call {
            id,
            timeout_us,
            object,
            method,
            flags,
            metadata,
            payload,
        } => {
            let head = Head {
                object: *object,
                method: *method,
                flags: *flags,
                metadata,
            };
            encode_call(buf, *id, *timeout_us, head, bytes(payload), max)
        }
        Frame::Reply { id, result } => {
            let h = ReplyHeader {
                id: *id,
                ok: result.is_ok(),
            };
            match result {
                Ok(p) => encode_with(buf, Kind::Reply, |b| put(b, &h), bytes(p), max),
                Err(fault) => encode_with(
                    buf,
                    Kind::Reply,
                    |b| {
                        put(b, &h);
                        put(b, fault)
                    },
                    none,
                    max,
                ),
            }
        }
        Frame::Cancel { id } => encode_with(buf, Kind::Cancel, |b| put(b, id), none, max),
        Frame::Message {
            object,
            method,
            flags,
            metadata,
            payload,
        } => {
            let head = Head {
                object: *object,
                method: *method,
                flags: *flags,
                metadata,
            };
            encode_message(buf, head, bytes(payload), max)
        }
        Frame::StreamItem { stream, payload } => encode_with(
            buf,
            Kind::StreamItem,
            |b| put(b, stream),
            bytes(payload),
            max,
        ),
        Frame::StreamEnd { stream, fault } => {
            let h = StreamEndHeader {
                stream: *stream,
                fault: fault.clone(),
            };
            encode_with(buf, Kind::StreamEnd, |b| put(b, &h), none, max)
        }
        Frame::LeaseRenew { objects } => {
            encode_with(buf, Kind::LeaseRenew, |b| put(b, objects), none, max)
        }
        Frame::LeaseRelease { objects } => {
            encode_with(buf, Kind::LeaseRelease, |b| put(b, objects), none, max)
        }
        Frame::Ping { nonce } => encode_with(buf, Kind::Ping, |b| put(b, nonce), none, max),
        Frame::Pong { nonce } => encode_with(buf, Kind::Pong, |b| put(b, nonce), none, max),
        Frame::Close { reason } => {
            encode_with(buf, Kind::Close, |b| put(b, reason.as_str()), none, max)
        }
        Frame::StreamCredit { stream, items } => {
            let h = StreamCreditHeader {
                stream: *stream,
                items: *items,
            };
            encode_with(buf, Kind::StreamCredit, |b| put(b, &h), none, max)
        }
        Frame::StreamCancel { stream } => {
            encode_with(buf, Kind::StreamCancel, |b| put(b, stream), none, max)
        }
        Frame::Unknown { kind } => {
            buf.put_u32_le(1);
            buf.put_u8(*kind);
            Ok(())
        }
    };
    r.map_err(|e| match e {
        EncodeError::Frame(f) => f,
        EncodeError::Payload(()) => unreachable!("byte payloads cannot fail"),
    })
}

#[cfg(test)]
mod tests;
