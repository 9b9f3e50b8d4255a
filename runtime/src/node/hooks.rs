//! What a node attaches to each of its connections: its object table, its
//! leases and the connection's streams, behind the connection's
//! `Hooks` seam.

use std::any::Any;
use std::sync::{Arc, Weak};

use super::{Node, NodeInner};
use crate::auth::{Authorizer, Principal, Request};
use crate::connection::{Connection, Hooks, Refused, Served};
use crate::id::{NodeId, ObjectId};
use crate::observe::Interceptors;
use crate::rmi::find_interface;
use crate::rmi::stream::Streams;
use crate::service::Objects;
use crate::sync::lock;
use crate::wire::{Fault, Frame};

/// The node's side of one connection.
pub(crate) struct NodeHooks {
    pub(super) node: Weak<NodeInner>,
    pub(super) objects: Arc<Objects>,
    /// The connection's key in the node's table.
    pub(super) serial: u64,
    /// The node at the other end.
    pub(super) peer: NodeId,
    /// The node's authorizer, decided on before any argument is decoded.
    pub(super) authorizer: Option<Arc<dyn Authorizer>>,
    /// The node's interceptors of the calls it serves.
    pub(super) interceptors: Interceptors,
    /// The streams on this connection (`remote::stream`).
    pub(crate) streams: Streams,
}

impl NodeHooks {
    fn node(&self) -> Option<Node> {
        self.node.upgrade().map(|inner| Node { inner })
    }
}

impl Hooks for NodeHooks {
    fn service(
        &self,
        id: ObjectId,
        method: u64,
        principal: Option<&Principal>,
    ) -> Result<Served, Refused> {
        let entry = self.objects.entry(id).ok_or((Fault::NoSuchObject, None))?;
        let served = Served {
            service: entry.service,
            interface: entry.interface,
            interceptors: self.interceptors.clone(),
        };
        let Some(authorizer) = &self.authorizer else {
            return Ok(served);
        };
        // The probe of `connect_service` only tells which interface the
        // object serves, which the caller names already.
        if method == crate::rmi::PROBE {
            return Ok(served);
        }
        let method_descriptor = entry.interface.and_then(|served| {
            crate::rmi::lineage(served.id)
                .into_iter()
                .filter_map(find_interface)
                .find_map(|d| d.methods.iter().find(|m| m.word() == method))
        });
        let request = Request {
            principal,
            object: id,
            interface: entry.interface,
            method: method_descriptor,
            method_word: method,
        };
        authorizer
            .authorize(&request)
            .map_err(|why| (Fault::Unauthorized(why), entry.interface))?;
        Ok(served)
    }

    fn on_frame(&self, frame: Frame) -> Result<(), String> {
        self.streams.on_frame(frame)
    }

    fn on_lease(&self, renew: bool, objects: &[ObjectId]) {
        let Some(node) = self.node() else { return };
        if renew {
            node.leases().renew(&node, self.peer, objects);
        } else {
            node.leases().release(&node, self.peer, objects);
        }
    }

    fn on_dead(&self, reason: &str) {
        self.streams.fail(reason);
        let Some(node) = self.node() else { return };
        lock(&node.inner.conns).remove(&self.serial);
        // The peer's leases end with its last connection.
        if node.connection_to(self.peer).is_none() {
            node.leases().holder_gone(&node, self.peer);
        }
    }

    fn is_idle(&self) -> bool {
        self.streams.is_empty()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What the node and the remote-object layer know of a connection.
impl Connection {
    fn node_hooks(&self) -> &NodeHooks {
        self.hooks()
            .as_any()
            .downcast_ref::<NodeHooks>()
            .expect("every connection is registered by a node, with the node's hooks")
    }

    /// The node at this end, if it still exists.
    pub fn node(&self) -> Option<Node> {
        self.node_hooks().node()
    }

    /// The streams on this connection.
    pub(crate) fn streams(&self) -> &Streams {
        &self.node_hooks().streams
    }
}
