//! The scopes around every payload the runtime encodes or decodes.
//!
//! serde gives `Serialize` and `Deserialize` no context, yet a reference
//! or a stream inside a payload must know the connection it travels on:
//! a reference decoded from the peer's bytes calls back on the same
//! connection, a stream encoded for a call is numbered on the connection
//! the call goes out on. So the runtime pushes a thread-local scope
//! around each encode ([`encode_in`]) and decode ([`decode_in`]); both pop
//! it even when a user's `Serialize` or `Deserialize` panics, so a later
//! payload on the same thread never sees a stale scope.

use std::cell::RefCell;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::connection::Connection;
use crate::node::Node;
use crate::rmi::error::RemoteError;

// ------------------------------------------------------------- decoding

/// Where the bytes being decoded came from.
pub(crate) struct Scope {
    pub(crate) node: Option<Node>,
    pub(crate) connection: Option<Connection>,
    /// A failure a `Deserialize` impl wants reported as itself rather
    /// than as a generic decode error.
    pub(crate) failure: Option<RemoteError>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the innermost decode scope, if there is one.
pub(crate) fn with_scope<R>(f: impl FnOnce(Option<&mut Scope>) -> R) -> R {
    SCOPES.with(|s| f(s.borrow_mut().last_mut()))
}

/// Decodes `bytes` as `T`, with references in it bound to `node` and to
/// the connection they arrived on.
pub fn decode_in<T: DeserializeOwned>(
    node: Option<&Node>,
    connection: Option<&Connection>,
    bytes: &[u8],
) -> Result<T, RemoteError> {
    /// Pops the scope even if a `Deserialize` panics, so that a later
    /// decode on this thread never sees a stale scope.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPES.with(|s| s.borrow_mut().pop());
        }
    }
    SCOPES.with(|s| {
        s.borrow_mut().push(Scope {
            node: node.cloned(),
            connection: connection.cloned(),
            failure: None,
        })
    });
    let pop = Pop;
    let r = codec::decode::<T>(bytes);
    let failure = with_scope(|s| s.and_then(|s| s.failure.take()));
    drop(pop);
    match r {
        Ok(v) => Ok(v),
        Err(e) => Err(failure.unwrap_or_else(|| RemoteError::Decode(e.to_string()))),
    }
}

// ------------------------------------------------------------- encoding

/// Where the bytes being encoded go.
pub(crate) struct EncodeScope {
    /// `None`: to an object of this very node, without a connection.
    connection: Option<Connection>,
    /// A failure a `Serialize` impl wants reported as itself.
    failure: Option<RemoteError>,
    /// The payload travels through a broker: references and streams, which
    /// are bound to a connection, are refused.
    carried: bool,
}

thread_local! {
    static ENCODING: RefCell<Vec<EncodeScope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f`, which encodes a payload that goes out on `connection` (or,
/// for `None`, to an object of this node): streams in it are sent there.
/// Returns `f`'s result and the failure of a stream in it, if one failed.
pub(crate) fn encode_in<R>(
    connection: Option<Connection>,
    f: impl FnOnce() -> R,
) -> (R, Option<RemoteError>) {
    encode_scoped(connection, false, f)
}

/// [`encode_in`], `carried` saying whether the payload travels through a
/// broker (no connection to bind references or streams to).
fn encode_scoped<R>(
    connection: Option<Connection>,
    carried: bool,
    f: impl FnOnce() -> R,
) -> (R, Option<RemoteError>) {
    /// Pops the scope even if `f` panics.
    struct Pop(bool);
    impl Drop for Pop {
        fn drop(&mut self) {
            if self.0 {
                ENCODING.with(|s| s.borrow_mut().pop());
            }
        }
    }
    ENCODING.with(|s| {
        s.borrow_mut().push(EncodeScope {
            connection,
            failure: None,
            carried,
        })
    });
    let mut pop = Pop(true);
    let r = f();
    pop.0 = false;
    let scope = ENCODING.with(|s| s.borrow_mut().pop());
    (r, scope.and_then(|s| s.failure))
}

/// Encodes a payload that travels through a broker: a reference or a
/// stream in it is refused with an error that says so.
pub(crate) fn encode_carried<A: Serialize + ?Sized>(v: &A) -> Result<Bytes, RemoteError> {
    let (r, w) = encode_scoped(None, true, || codec::encode(v));
    r.map_err(|e| w.unwrap_or_else(|| RemoteError::Encode(e.to_string())))
}

/// Refuses `what` (a reference, a stream) when the payload being encoded
/// travels through a broker.
pub(crate) fn refuse_if_carried<E: serde::ser::Error>(what: &str) -> Result<(), E> {
    let carried = ENCODING.with(|s| s.borrow().last().is_some_and(|s| s.carried));
    if !carried {
        return Ok(());
    }
    Err(encode_failure(RemoteError::Encode(format!(
        "{what} cannot travel through a broker: a mediated call carries plain values \
         (call the object directly, or pass a name or an id)"
    ))))
}

/// The innermost encode scope's target: `None` outside any scope.
pub(crate) fn encode_target() -> Option<Option<Connection>> {
    ENCODING.with(|s| s.borrow().last().map(|s| s.connection.clone()))
}

pub(crate) fn encode_failure<E: serde::ser::Error>(e: RemoteError) -> E {
    let msg = e.to_string();
    ENCODING.with(|s| {
        if let Some(scope) = s.borrow_mut().last_mut() {
            scope.failure.get_or_insert(e);
        }
    });
    E::custom(msg)
}

/// Encodes the arguments of a call that goes out on `conn` (`None`: to an
/// object of this node) into `b`. A stream among them that could not be
/// sent leaves the reason in `why`.
pub(crate) fn encode_args_into<A: Serialize + ?Sized>(
    conn: Option<&Connection>,
    args: &A,
    b: &mut bytes::BytesMut,
    why: &mut Option<RemoteError>,
) -> Result<(), postcard::Error> {
    let (r, w) = encode_in(conn.cloned(), || codec::encode_into(args, b));
    if w.is_some() {
        *why = w;
    }
    r
}

/// Encodes a payload that goes out on `conn` (`None`: to an object of
/// this node) into fresh bytes.
pub(crate) fn encode_for<A: Serialize + ?Sized>(
    conn: Option<Connection>,
    v: &A,
) -> Result<Bytes, RemoteError> {
    let (r, w) = encode_in(conn, || codec::encode(v));
    r.map_err(|e| w.unwrap_or_else(|| RemoteError::Encode(e.to_string())))
}
