//! The server side of a remote object: the dispatcher a node serves for
//! each exported object, the argument decoding generated dispatchers call,
//! and the reply helpers they use.
//!
//! A call reaches [`Dispatcher::call`] through the node's object table
//! (`service.rs`'s `call_guarded` wraps it in the panic guard). The
//! generated `dispatch` matches the method word, decodes the arguments
//! with [`decode_args`] (in the decode scope, so references in them bind
//! to the caller's connection), runs the method and encodes its result
//! with [`reply`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::connection::Connection;
use crate::rmi::Interface;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::{decode_in, encode_for};
use crate::schema::Signature;
use crate::schema::mismatch::server_mismatch;
use crate::service::{CallContext, OutcomeFuture, Service};
use crate::wire::Fault;

/// Serves calls on an object through its interface's dispatch table.
pub struct Dispatcher<I: ?Sized + Interface> {
    object: Arc<I>,
}

impl<I: ?Sized + Interface> fmt::Debug for Dispatcher<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("interface", &I::descriptor().name)
            .finish()
    }
}

impl<I: ?Sized + Interface> Dispatcher<I> {
    /// A dispatcher for `object`.
    pub fn new(object: Arc<I>) -> Self {
        Dispatcher { object }
    }
}

/// The method word that asks a remote object which interfaces it serves
/// (PROTOCOL.md, "Probing a remote object"): no arguments; the reply is
/// the postcard encoding of the ids ([`InterfaceDescriptor::id`]) of its
/// interface and of every remote supertrait, its own first.
///
/// [`InterfaceDescriptor::id`]: crate::rmi::InterfaceDescriptor::id
pub const PROBE: u64 = u64::MAX;

impl<I: ?Sized + Interface> Service for Dispatcher<I> {
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        if method == PROBE {
            return ready(
                crate::codec::encode(&crate::rmi::interface::lineage(I::descriptor().id))
                    .map_err(|e| Fault::Rejected(format!("the probe reply does not encode: {e}"))),
            );
        }
        match I::dispatch(&self.object, cx, method, payload) {
            Some(f) => f,
            None => Box::pin(std::future::ready(Err(Fault::NoSuchMethod))),
        }
    }

    fn interface(&self) -> Option<&'static crate::rmi::InterfaceDescriptor> {
        Some(I::descriptor())
    }
}

/// Decodes a call's arguments, binding references in them to the caller.
pub fn decode_args<T: DeserializeOwned>(cx: &CallContext, payload: &[u8]) -> Result<T, Fault> {
    let node = cx
        .node
        .clone()
        .or_else(|| cx.connection.as_ref().and_then(Connection::node));
    decode_in(node.as_ref(), cx.connection.as_ref(), payload).map_err(|e| match e {
        RemoteError::InterfaceMismatch(s) => Fault::InterfaceMismatch(s),
        RemoteError::Decode(s) => Fault::Decode(s),
        other => Fault::Decode(other.to_string()),
    })
}

/// Maps a failed argument decode to its fault.
pub fn decode_fault(e: impl fmt::Display) -> Fault {
    Fault::Decode(e.to_string())
}

/// A ready outcome, boxed.
pub fn ready(outcome: Result<Bytes, Fault>) -> OutcomeFuture {
    Box::pin(::core::future::ready(outcome))
}

/// The reply to a method called with a signature this side does not have:
/// this side's signature is `sig`. Logged too (at debug level), since a
/// one-way call has no reply to carry it.
pub fn mismatch(interface: &str, method: &str, sig: &Signature) -> OutcomeFuture {
    tracing::debug!(
        interface,
        method,
        "refused a call with another signature: the caller was built from another version of the interface"
    );
    ready(Err(Fault::InterfaceMismatch(server_mismatch(
        interface, method, sig,
    ))))
}

/// Encodes a method's result as the reply payload. Streams in it are sent
/// on the connection the call came on (the current [`CallContext`]'s).
pub fn reply<T: ::serde::Serialize>(value: &T) -> Result<Bytes, Fault> {
    let encoded = match CallContext::current() {
        Some(cx) if cx.carried => crate::rmi::scope::encode_carried(value),
        Some(cx) => encode_for(cx.connection, value),
        None => crate::codec::encode(value).map_err(|e| RemoteError::Encode(e.to_string())),
    };
    encoded.map_err(|e| {
        let why = match e {
            RemoteError::Encode(why) => why,
            other => other.to_string(),
        };
        Fault::Rejected(format!("the result does not encode: {why}"))
    })
}
