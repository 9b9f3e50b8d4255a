//! The runtime's error type.

use std::io;
use std::time::Duration;

use crate::address::{Address, AddressError};
use crate::codec::DecodeError;
use crate::id::NodeId;
use crate::wire::frame::EncodeError;
use crate::wire::{Fault, FrameError, HandshakeError};

/// Everything that can go wrong while exchanging messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address did not parse or names a backend this build lacks.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The node could not listen on an address (in use, not permitted,
    /// no such interface, ...).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: Address,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The node could not open a connection to an address (refused,
    /// unreachable, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialed.
        addr: Address,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The socket failed while the handshake with a peer was under way.
    #[error("handshake with {peer} failed: {source}")]
    HandshakeIo {
        /// Who we were talking to.
        peer: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The handshake with a peer failed.
    #[error("handshake with {peer} failed: {source}")]
    Handshake {
        /// Who we were talking to.
        peer: String,
        /// Why it failed.
        #[source]
        source: HandshakeError,
    },
    /// The handshake did not complete within the time-out.
    #[error("handshake with {peer} timed out after {after:?}")]
    HandshakeTimeout {
        /// Who we were talking to.
        peer: String,
        /// The time-out that passed.
        after: Duration,
    },
    /// The connection broke or was closed before the answer came.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The connection is closing or closed and takes no new requests.
    #[error("the connection is closed")]
    Closed,
    /// The deadline passed before the answer came.
    #[error("deadline of {0:?} exceeded")]
    DeadlineExceeded(Duration),
    /// A frame was over the size limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Call metadata was refused (a bad key, or over the limits).
    #[error(transparent)]
    Metadata(#[from] crate::metadata::MetadataError),
    /// A value could not be encoded.
    #[error("could not encode the message: {0}")]
    Encode(#[source] postcard::Error),
    /// A value could not be decoded.
    #[error("could not decode the message: {0}")]
    Decode(#[source] DecodeError),
    /// The other side answered with a runtime fault.
    #[error("the remote side reports: {0}")]
    Remote(#[from] Fault),
    /// No connection to this peer exists, directly or through a super-peer.
    #[error("no route to peer {0}")]
    NoRoute(NodeId),
    /// The node has shut down.
    #[error("the node has shut down")]
    Shutdown,
    /// A server was asked to answer on a node that listens nowhere.
    #[error(
        "the node listens on no address (build it with `listen`, or call `add_listener` first)"
    )]
    NotListening,
}

/// A frame that could not be written: over the limit, or a payload that
/// did not encode (the encoder's error kept as the source).
impl From<EncodeError<postcard::Error>> for Error {
    fn from(e: EncodeError<postcard::Error>) -> Self {
        match e {
            EncodeError::Frame(f) => Error::Frame(f),
            EncodeError::Payload(p) => Error::Encode(p),
        }
    }
}

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
