//! Calls carried by something other than a connection to the object's
//! owner: a broker queue (mediated RPC).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::{Answer, Expect};
use crate::metadata::Metadata;
use crate::node::Node;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::encode_carried;
use crate::wire::Fault;

/// One call or message through `carrier`. Arguments travel as plain
/// values: references and streams in them are bound to no connection.
pub(super) async fn invoke<A>(
    carrier: &dyn Carrier,
    deadline: Duration,
    metadata: &Metadata,
    method: u64,
    name: &'static str,
    expect: Expect,
    args: &A,
) -> Result<Answer, RemoteError>
where
    A: Serialize + ?Sized,
{
    let payload = encode_carried(args)?;
    match expect {
        Expect::Reply { idempotent } => {
            let bytes = carrier
                .call(method, metadata, payload, deadline, idempotent)
                .await?
                .map_err(|fault| RemoteError::from_fault(fault, name))?;
            Ok(Answer {
                bytes,
                node: carrier.node(),
                conn: None,
            })
        }
        Expect::Nothing => {
            carrier.send(method, metadata, payload).await?;
            Ok(Answer::none())
        }
    }
}

/// The future a [`Carrier`] returns.
pub type CarrierFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, RemoteError>> + Send + 'a>>;

/// Carries a stub's calls by some other way than a connection to the
/// object's owner: a broker queue, say (mediated RPC). The stub encodes
/// the arguments and decodes the result; the carrier moves the bytes.
///
/// Arguments and results that travel through a carrier are plain values:
/// references ([`Remote`](crate::Remote)) and streams inside them are
/// bound to no connection and cannot be used on the other side.
pub trait Carrier: Send + Sync + fmt::Debug + 'static {
    /// Carries one call of `method` with the encoded `payload` and returns
    /// the server's answer as it came: the encoded result, or the fault it
    /// answered with (the stub names the method in the error it makes of
    /// it). It fails itself when no answer comes: with `DeadlineExceeded`
    /// once `deadline` passes, `Disconnected` if the way to the server
    /// breaks. `idempotent` says the method may safely run twice.
    /// `metadata` travels with the call, for the server's
    /// [`CallContext::metadata`](crate::CallContext::metadata).
    fn call(
        &self,
        method: u64,
        metadata: &Metadata,
        payload: Bytes,
        deadline: Duration,
        idempotent: bool,
    ) -> CarrierFuture<'_, Result<Bytes, Fault>>;

    /// Carries a one-way message; returns once it is handed over.
    fn send(&self, method: u64, metadata: &Metadata, payload: Bytes) -> CarrierFuture<'_, ()>;

    /// The node whose limits (the default deadline) apply, if any.
    fn node(&self) -> Option<Node> {
        None
    }
}
