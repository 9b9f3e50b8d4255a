//! What a node serves: objects that answer calls, addressed by id.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::metadata::Metadata;
use crate::wire::Fault;

/// The outcome of a call as the runtime carries it: encoded result bytes,
/// or a runtime fault.
pub type Outcome = Result<Bytes, Fault>;

/// The future a service returns for one call.
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// What a handler knows about the call it serves.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// The node that made the call.
    pub caller: NodeId,
    /// When the caller stops waiting, if it said.
    pub deadline: Option<Instant>,
    /// The connection the call came on (callbacks may use it); `None` for
    /// a call from this node to one of its own objects.
    pub connection: Option<Connection>,
    /// The serving node, for a call from this node to one of its own
    /// objects (otherwise the connection knows it).
    pub node: Option<crate::node::Node>,
    /// Whether this is a one-way message (its result is dropped).
    pub one_way: bool,
    /// Whether the call came through a broker (mediated RPC): its result
    /// travels as a plain value, and a reference or a stream in it is
    /// refused.
    pub carried: bool,
    /// What the caller sent beside the arguments (see [`Metadata`]).
    pub metadata: Metadata,
}

tokio::task_local! {
    static CONTEXT: CallContext;
    static INHERITED: Inherited;
}

/// What calls made under [`CallContext::propagate`] take from the call
/// being served.
#[derive(Clone, Debug)]
pub(crate) struct Inherited {
    pub(crate) metadata: Metadata,
    pub(crate) deadline: Option<Instant>,
}

impl Inherited {
    /// What the current task's calls inherit, if it runs under
    /// [`CallContext::propagate`].
    pub(crate) fn current() -> Option<Inherited> {
        INHERITED.try_with(Inherited::clone).ok()
    }

    /// The time left until the inherited deadline, if there is one: at
    /// most `own`.
    pub(crate) fn bound(deadline: Option<Instant>, own: Duration) -> Duration {
        match deadline {
            Some(d) => own.min(d.saturating_duration_since(Instant::now())),
            None => own,
        }
    }
}

impl CallContext {
    /// The context of the call the current task is serving, if any.
    ///
    /// Inside a `#[remote]` method implementation this tells who called
    /// and until when they wait.
    pub fn current() -> Option<CallContext> {
        CONTEXT.try_with(|c| c.clone()).ok()
    }

    /// Who called, from the certificate the caller presented over TLS
    /// (see [`Connection::peer_identity`]); `None` for a call that came
    /// without one, or from this node.
    #[cfg(feature = "tls")]
    pub fn peer_identity(&self) -> Option<crate::tls::PeerIdentity> {
        self.connection.as_ref().and_then(Connection::peer_identity)
    }

    /// Who called, as the serving node's authenticator named the caller
    /// (see [`crate::auth`]); `None` without an authenticator, and for a
    /// call from this node.
    pub fn principal(&self) -> Option<&crate::auth::Principal> {
        self.connection.as_ref().and_then(Connection::principal)
    }

    /// Runs `fut` with `self` as its [`CallContext::current`].
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CONTEXT.scope(self, fut)
    }

    /// What the caller sent beside the arguments.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Runs `fut` so that every call it makes through a stub carries this
    /// call's metadata (a stub's own metadata wins for a key both have)
    /// and waits at most until this call's deadline: the caller's
    /// remaining time flows on to the calls the handler makes.
    ///
    /// ```no_run
    /// # use farcall_runtime::{CallContext, Metadata};
    /// # async fn downstream() {}
    /// async fn handler() {
    ///     if let Some(cx) = CallContext::current() {
    ///         // Calls in here carry the caller's metadata and deadline.
    ///         cx.propagate(downstream()).await;
    ///     }
    /// }
    /// ```
    pub fn propagate<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        let inherited = Inherited {
            metadata: self.metadata.clone(),
            deadline: if self.one_way { None } else { self.deadline },
        };
        INHERITED.scope(inherited, fut)
    }
}

/// Runs `fut` under [`CallContext::propagate`] of the call the current
/// task serves; outside a call, runs it as it is.
pub async fn propagate<F: Future>(fut: F) -> F::Output {
    match CallContext::current() {
        Some(cx) => cx.propagate(fut).await,
        None => fut.await,
    }
}

/// An object a node serves: it decodes the arguments, runs, and encodes
/// the result. Generated stubs and the `dme` module implement it.
pub trait Service: Send + Sync + 'static {
    /// Serves one call of `method` with the encoded `payload`.
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture;

    /// The remote interface it serves, if it is a `#[remote]` dispatcher:
    /// spans, metrics and policies name its methods from it.
    fn interface(&self) -> Option<&'static crate::rmi::InterfaceDescriptor> {
        None
    }
}

/// Calls `service` with a panic guard around both halves of the call:
/// building the future (generated dispatchers decode the arguments there,
/// so a user's `Deserialize` runs inside it) and every poll of it. A panic
/// in either becomes [`Fault::Panicked`]; the caller's connection and
/// every other call on it go on.
pub fn call_guarded(
    service: &dyn Service,
    cx: CallContext,
    method: u64,
    payload: Bytes,
) -> GuardedCall {
    GuardedCall(
        std::panic::catch_unwind(AssertUnwindSafe(|| service.call(cx, method, payload))).ok(),
    )
}

/// A call under [`call_guarded`]'s panic guard: its outcome is
/// [`Fault::Panicked`] if building or polling the handler panicked.
#[must_use = "a call does nothing unless polled"]
pub struct GuardedCall(Option<OutcomeFuture>);

impl fmt::Debug for GuardedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedCall")
            .field("panicked", &self.0.is_none())
            .finish()
    }
}

impl Future for GuardedCall {
    type Output = Outcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(fut) = &mut self.0 else {
            return Poll::Ready(Err(Fault::Panicked));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(_) => {
                // Never poll a future that panicked again.
                self.0 = None;
                Poll::Ready(Err(Fault::Panicked))
            }
        }
    }
}

/// Gives the served object as `Arc<dyn J>` (boxed as `Any`) for the id of
/// `J`: its own interface or any of its supertraits.
pub(crate) type Upcaster = Arc<dyn Fn(u64) -> Option<Box<dyn Any + Send + Sync>> + Send + Sync>;

/// A served object: its dispatcher, and the object itself (type-erased
/// `Arc<dyn Trait>`) so that callers on the same node can skip encoding.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) service: Arc<dyn Service>,
    pub(crate) local: Option<Upcaster>,
    /// The remote interface it was exported as.
    pub(crate) interface: Option<&'static crate::rmi::InterfaceDescriptor>,
}

/// The objects a node serves, by id. Shared by the node and its connections.
#[derive(Default)]
pub(crate) struct Objects {
    map: RwLock<HashMap<ObjectId, Entry>>,
}

impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.map.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Objects").field("count", &n).finish()
    }
}

impl Objects {
    pub(crate) fn entry(&self, id: ObjectId) -> Option<Entry> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, id: ObjectId, e: Entry) -> Option<Entry> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, e)
    }

    pub(crate) fn remove(&self, id: ObjectId) -> Option<Entry> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }
}
