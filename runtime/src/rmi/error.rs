//! The error of remote calls.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wire::Fault;

/// Why a remote call failed in the runtime (application errors travel as
/// the method's own error type, which converts from this one).
///
/// It is serde-serialisable, so a method may use it directly as its error
/// type: `async fn area(&self) -> Result<f64, RemoteError>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The connection broke before the answer came.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The connection is closing and takes no new calls.
    #[error("the connection is closed")]
    Closed,
    /// The call's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// No object with this id is served there (never was, or unexported).
    #[error("no such object")]
    NoSuchObject,
    /// The object has no method of this name.
    #[error("no such method: {0}")]
    NoSuchMethod(String),
    /// The method exists there with another signature.
    #[error("interface mismatch: {0}")]
    InterfaceMismatch(String),
    /// A message did not decode.
    #[error("could not decode: {0}")]
    Decode(String),
    /// A message did not encode.
    #[error("could not encode: {0}")]
    Encode(String),
    /// The server refused the call.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The server's policy does not allow this caller this call.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A relay has no route to the destination.
    #[error("no route to the destination")]
    NoRoute,
    /// The server is at its limit of calls in flight.
    #[error("the server is overloaded")]
    Overloaded,
    /// The remote handler panicked (the server goes on).
    #[error("the remote handler panicked")]
    Panicked,
    /// Connecting failed.
    #[error("i/o: {0}")]
    Io(String),
}

impl From<Fault> for RemoteError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::NoSuchObject => RemoteError::NoSuchObject,
            Fault::NoSuchMethod => RemoteError::NoSuchMethod(String::new()),
            Fault::Decode(s) => RemoteError::Decode(s),
            Fault::DeadlineExceeded => RemoteError::DeadlineExceeded,
            Fault::Overloaded => RemoteError::Overloaded,
            Fault::Panicked => RemoteError::Panicked,
            Fault::Rejected(s) => RemoteError::Rejected(s),
            Fault::Closing => RemoteError::Closed,
            Fault::NoRoute => RemoteError::NoRoute,
            Fault::InterfaceMismatch(s) => RemoteError::InterfaceMismatch(s),
            Fault::Unauthorized(s) => RemoteError::Unauthorized(s),
        }
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        match e {
            Error::Disconnected(s) => RemoteError::Disconnected(s),
            Error::Closed | Error::Shutdown => RemoteError::Closed,
            Error::DeadlineExceeded(_) => RemoteError::DeadlineExceeded,
            Error::Remote(f) => f.into(),
            Error::Encode(e) => RemoteError::Encode(e.to_string()),
            Error::Decode(e) => RemoteError::Decode(e.to_string()),
            Error::Frame(f) => RemoteError::Rejected(f.to_string()),
            other => RemoteError::Io(other.to_string()),
        }
    }
}
