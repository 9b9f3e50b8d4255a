//! What a node serves: objects that answer calls, addressed by id.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;

use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
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
}

tokio::task_local! {
    static CONTEXT: CallContext;
}

impl CallContext {
    /// The context of the call the current task is serving, if any.
    ///
    /// Inside a `#[remote]` method implementation this tells who called
    /// and until when they wait.
    pub fn current() -> Option<CallContext> {
        CONTEXT.try_with(|c| c.clone()).ok()
    }

    /// Runs `fut` with `self` as its [`CallContext::current`].
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CONTEXT.scope(self, fut)
    }
}

/// An object a node serves: it decodes the arguments, runs, and encodes
/// the result. Generated stubs and the `dme` module implement it.
pub trait Service: Send + Sync + 'static {
    /// Serves one call of `method` with the encoded `payload`.
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture;
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
    /// The id of the remote interface it was exported as.
    pub(crate) interface: Option<u64>,
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
    pub(crate) fn get(&self, id: ObjectId) -> Option<Arc<dyn Service>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|e| e.service.clone())
    }

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
