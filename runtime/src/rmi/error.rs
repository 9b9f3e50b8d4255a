//! The error of remote calls.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wire::Fault;

/// Why a remote call failed in the runtime (application errors travel as
/// the method's own error type, which converts from this one).
///
/// It is serde-serialisable, so a method may use it directly as its error
/// type: `async fn area(&self) -> Result<f64, RemoteError>`.
///
/// # The server's faults
///
/// Every [`Fault`] a server answers with has exactly one variant here, and
/// nothing of it is lost: [`RemoteError::fault`] gives it back as it came.
///
/// | [`Fault`] | `RemoteError` |
/// | --- | --- |
/// | `NoSuchObject` | [`NoSuchObject`](RemoteError::NoSuchObject) |
/// | `NoSuchMethod` | [`NoSuchMethod`](RemoteError::NoSuchMethod), with the method's name, which the stub adds (the server only has its number) |
/// | `Decode` | [`Decode`](RemoteError::Decode) |
/// | `DeadlineExceeded` | [`DeadlineExceeded`](RemoteError::DeadlineExceeded) |
/// | `Overloaded` | [`Overloaded`](RemoteError::Overloaded) |
/// | `Panicked` | [`Panicked`](RemoteError::Panicked) |
/// | `Rejected` | [`Rejected`](RemoteError::Rejected) |
/// | `Closing` | [`Closed`](RemoteError::Closed) |
/// | `NoRoute` | [`NoRoute`](RemoteError::NoRoute) |
/// | `InterfaceMismatch` | [`InterfaceMismatch`](RemoteError::InterfaceMismatch) |
/// | `Unauthorized` | [`Unauthorized`](RemoteError::Unauthorized) |
///
/// A fault becomes a `RemoteError` where the call's method is known:
/// [`RemoteError::from_fault`], in the stub. The variants that no server
/// answers with ([`Disconnected`](RemoteError::Disconnected),
/// [`Encode`](RemoteError::Encode), [`Io`](RemoteError::Io),
/// [`NoSuchService`](RemoteError::NoSuchService),
/// [`NotBound`](RemoteError::NotBound)) arise on the
/// caller's side; so may `Closed`, `DeadlineExceeded` and `Decode`, with
/// the same meaning.
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
    /// The object has no method of this name. The name is the one the
    /// caller's stub knows; a call that named its method by number only
    /// (a raw [`Connection::call`](crate::Connection::call) whose error
    /// became a `RemoteError`) has none, and the string is empty.
    #[error("no such method{}", method_suffix(.0))]
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
    /// No route to the destination: a relay has none, or this node has no
    /// connection that leads there.
    #[error("no route to the destination")]
    NoRoute,
    /// The server is at its limit of calls in flight. A farcall caller
    /// never causes it: the limit is announced in the handshake and a
    /// caller past it waits for a free slot (back-pressure); only a peer
    /// that ignores the announcement is answered so.
    #[error("the server is overloaded")]
    Overloaded,
    /// The remote handler panicked (the server goes on).
    #[error("the remote handler panicked")]
    Panicked,
    /// Connecting failed (the address, the socket or the handshake).
    #[error("{0}")]
    Io(String),
    /// The node reached serves nothing under this name
    /// ([`Node::connect_service`](crate::Node::connect_service)).
    #[error("no service named `{0}` is served there")]
    NoSuchService(String),
    /// A late-bound call found nothing bound under the name its stub
    /// resolves (the name is empty for a resolver that names none).
    #[error("{}", not_bound(.0))]
    NotBound(String),
}

/// The message of [`RemoteError::NotBound`].
fn not_bound(name: &str) -> String {
    if name.is_empty() {
        "the late-bound stub's resolver offers no object to call".to_owned()
    } else {
        format!("nothing is bound under {name:?}: bind an object there before calling it")
    }
}

/// `: name`, or nothing for a method called by number only.
fn method_suffix(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(": {name}")
    }
}

impl RemoteError {
    /// The error of a call of `method` that the server answered with
    /// `fault`.
    pub fn from_fault(fault: Fault, method: &str) -> Self {
        match fault {
            Fault::NoSuchObject => RemoteError::NoSuchObject,
            Fault::NoSuchMethod => RemoteError::NoSuchMethod(method.to_owned()),
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

    /// The error of a call of `method` that failed in the runtime: a
    /// fault keeps the method's name ([`RemoteError::from_fault`]).
    pub fn from_call(e: Error, method: &str) -> Self {
        match e {
            Error::Remote(f) => RemoteError::from_fault(f, method),
            other => other.into(),
        }
    }

    /// The fault that carries this error on the wire: the one it came as
    /// (see the table above), `None` for the errors of the caller's side
    /// alone (`Disconnected`, `Encode`, `Io`, `NoSuchService`, `NotBound`).
    pub fn fault(&self) -> Option<Fault> {
        Some(match self {
            RemoteError::NoSuchObject => Fault::NoSuchObject,
            RemoteError::NoSuchMethod(_) => Fault::NoSuchMethod,
            RemoteError::Decode(s) => Fault::Decode(s.clone()),
            RemoteError::DeadlineExceeded => Fault::DeadlineExceeded,
            RemoteError::Overloaded => Fault::Overloaded,
            RemoteError::Panicked => Fault::Panicked,
            RemoteError::Rejected(s) => Fault::Rejected(s.clone()),
            RemoteError::Closed => Fault::Closing,
            RemoteError::NoRoute => Fault::NoRoute,
            RemoteError::InterfaceMismatch(s) => Fault::InterfaceMismatch(s.clone()),
            RemoteError::Unauthorized(s) => Fault::Unauthorized(s.clone()),
            RemoteError::Disconnected(_)
            | RemoteError::Encode(_)
            | RemoteError::Io(_)
            | RemoteError::NoSuchService(_)
            | RemoteError::NotBound(_) => {
                return None;
            }
        })
    }
}

/// A runtime error where no method is at hand (connecting, a raw call by
/// method number): a `NoSuchMethod` fault names no method.
impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        match e {
            Error::Disconnected(s) => RemoteError::Disconnected(s),
            Error::Closed | Error::Shutdown => RemoteError::Closed,
            Error::DeadlineExceeded(_) => RemoteError::DeadlineExceeded,
            Error::Remote(f) => RemoteError::from_fault(f, ""),
            Error::Encode(e) => RemoteError::Encode(e.to_string()),
            Error::Decode(e) => RemoteError::Decode(e.to_string()),
            Error::Frame(f) => RemoteError::Rejected(f.to_string()),
            Error::NoRoute(_) => RemoteError::NoRoute,
            other => RemoteError::Io(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_fault() -> Vec<Fault> {
        vec![
            Fault::NoSuchObject,
            Fault::NoSuchMethod,
            Fault::Decode("bad varint".into()),
            Fault::DeadlineExceeded,
            Fault::Overloaded,
            Fault::Panicked,
            Fault::Rejected("no".into()),
            Fault::Closing,
            Fault::NoRoute,
            Fault::InterfaceMismatch("Shape::area".into()),
            Fault::Unauthorized("not from here".into()),
        ]
    }

    #[test]
    fn every_fault_comes_back_as_it_came() {
        for f in every_fault() {
            let e = RemoteError::from_fault(f.clone(), "area");
            assert_eq!(e.fault(), Some(f.clone()), "{e:?}");
            let via_runtime = RemoteError::from_call(Error::Remote(f.clone()), "area");
            assert_eq!(via_runtime, e);
        }
    }

    #[test]
    fn the_stub_names_the_missing_method() {
        let e = RemoteError::from_fault(Fault::NoSuchMethod, "radius");
        assert_eq!(e, RemoteError::NoSuchMethod("radius".into()));
        assert_eq!(e.to_string(), "no such method: radius");
        let by_number = RemoteError::from(Error::Remote(Fault::NoSuchMethod));
        assert_eq!(by_number.to_string(), "no such method");
    }

    #[test]
    fn no_route_stays_typed() {
        let e = RemoteError::from(Error::NoRoute(crate::NodeId(7)));
        assert_eq!(e, RemoteError::NoRoute);
        assert_eq!(e.fault(), Some(Fault::NoRoute));
    }

    #[test]
    fn errors_of_the_callers_side_are_no_fault() {
        for e in [
            RemoteError::Disconnected("gone".into()),
            RemoteError::Encode("too deep".into()),
            RemoteError::Io("refused".into()),
        ] {
            assert_eq!(e.fault(), None, "{e}");
        }
    }

    #[test]
    fn a_runtime_error_crosses_with_question_mark() {
        fn call() -> Result<(), RemoteError> {
            Err(Error::Closed)?
        }
        assert_eq!(call(), Err(RemoteError::Closed));
    }
}
