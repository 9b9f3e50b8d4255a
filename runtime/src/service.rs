//! What a node serves: objects that answer calls, addressed by id.

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
    /// The connection the call came on (callbacks may use it).
    pub connection: Connection,
    /// Whether this is a one-way message (its result is dropped).
    pub one_way: bool,
}

/// An object a node serves: it decodes the arguments, runs, and encodes
/// the result. Generated stubs and the `dme` module implement it.
pub trait Service: Send + Sync + 'static {
    /// Serves one call of `method` with the encoded `payload`.
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture;
}

/// The objects a node serves, by id. Shared by the node and its connections.
#[derive(Default)]
pub(crate) struct Objects {
    map: RwLock<HashMap<ObjectId, Arc<dyn Service>>>,
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
            .cloned()
    }

    pub(crate) fn insert(&self, id: ObjectId, s: Arc<dyn Service>) -> Option<Arc<dyn Service>> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, s)
    }

    pub(crate) fn remove(&self, id: ObjectId) -> Option<Arc<dyn Service>> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }
}
