//! `AnyRemote`: a reference to an object whatever its interface.
//!
//! What a directory stores: it holds the object (a lease on a remote
//! owner's object, a local handle on one of this node's own) and travels
//! like any reference, but its interface is only known at run time. A
//! caller turns it into a typed reference with [`AnyRemote::narrow`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::rmi::client::{Link, StubCore};
use crate::rmi::interface::{Interface, find_interface, is_subinterface};
use crate::rmi::lease::{LeaseHandle, LocalGuard};
use crate::rmi::reference::Remote;
use crate::rmi::scope::with_scope;
use crate::rmi::wire_ref::WireRef;

/// A reference to a remote object of any interface.
///
/// It holds what a `Remote` holds (a lease, or a local handle), so the
/// object stays exported while it lives; it serialises as the same
/// [`WireRef`], so it may be passed on; and [`AnyRemote::narrow`] gives a
/// typed reference when the object implements the interface asked for.
#[derive(Clone)]
pub struct AnyRemote {
    wire: WireRef,
    node: WeakNode,
    core: Option<StubCore>,
    lease: Option<Arc<LeaseHandle>>,
    _guard: Option<Arc<LocalGuard>>,
}

impl AnyRemote {
    /// Binds a reference on `node`, as decoding one does: to the node's own
    /// object, to `conn` if it leads to the owner, or to the owner dialed
    /// anew. Takes a lease on a remote owner's object.
    pub fn bind(node: &Node, wire: WireRef, conn: Option<&Connection>) -> AnyRemote {
        if wire.owner == node.id() {
            let guard = node.leases().local_guard(node, wire.object);
            return AnyRemote {
                wire,
                node: node.downgrade(),
                core: None,
                lease: None,
                _guard: guard,
            };
        }
        let conn = conn
            .filter(|c| c.peer_id() == wire.owner && c.is_open())
            .cloned()
            .or_else(|| node.connection_to(wire.owner));
        let link = Arc::new(Link::new(
            node.downgrade(),
            wire.owner,
            wire.addrs.clone(),
            conn,
        ));
        let lease = node
            .leases()
            .hold(node, wire.owner, wire.object, link.clone());
        AnyRemote {
            core: Some(StubCore::linked(link, wire.object)),
            wire,
            node: node.downgrade(),
            lease: Some(lease),
            _guard: None,
        }
    }

    /// A reference that could not be bound (its node is gone): it only
    /// describes the object; `narrow` gives `None`.
    pub(crate) fn detached(wire: WireRef) -> AnyRemote {
        AnyRemote {
            wire,
            node: WeakNode::default(),
            core: None,
            lease: None,
            _guard: None,
        }
    }

    /// The reference as it travels.
    pub fn wire(&self) -> &WireRef {
        &self.wire
    }

    /// The object's id on its owner.
    pub fn id(&self) -> ObjectId {
        self.wire.object
    }

    /// The node that owns the object.
    pub fn owner(&self) -> NodeId {
        self.wire.owner
    }

    /// The id of the object's most derived remote interface.
    pub fn interface_id(&self) -> u64 {
        self.wire.interface
    }

    /// The name of that interface, if it is linked into this binary.
    pub fn interface_name(&self) -> Option<&'static str> {
        find_interface(self.wire.interface).map(|d| d.name)
    }

    /// Whether the object implements `J` (its interface is `J` or a
    /// subtrait of `J`, as the catalogue of linked interfaces says).
    pub fn implements<J: ?Sized + Interface>(&self) -> bool {
        is_subinterface(self.wire.interface, J::descriptor().id)
    }

    /// Whether the object is one of this node's own.
    pub fn is_local(&self) -> bool {
        self.core.is_none()
    }

    /// Whether this node has an open connection to the owner (always true
    /// for a local object). A directory uses it to notice dead owners.
    pub fn owner_connected(&self) -> bool {
        match (self.core.as_ref(), self.node.upgrade()) {
            (None, _) => true,
            (Some(core), Some(node)) => {
                core.connection().is_some() || node.connection_to(self.wire.owner).is_some()
            }
            (Some(_), None) => false,
        }
    }

    /// A stub core that calls this object, whatever its interface.
    pub(crate) fn call_core(&self) -> Option<StubCore> {
        match &self.core {
            Some(core) => Some(core.clone()),
            None => {
                let node = self.node.upgrade()?;
                let service = node.object_entry(self.wire.object)?.service;
                Some(StubCore::local(service, node, self.wire.object))
            }
        }
    }

    /// A typed reference, if the object implements `J`.
    pub fn narrow<J: ?Sized + Interface>(&self) -> Option<Remote<J>> {
        if !self.implements::<J>() {
            return None;
        }
        match &self.core {
            None => {
                let node = self.node.upgrade()?;
                Some(node.local_reference::<J>(self.wire.object))
            }
            Some(core) => {
                let r = Remote::<J>::stub(
                    core.clone(),
                    self.wire.object,
                    self.wire.owner,
                    self.wire.interface,
                    self.wire.addrs.clone().into(),
                );
                Some(match &self.lease {
                    Some(l) => r.with_lease(l.clone()),
                    None => r,
                })
            }
        }
    }
}

impl<I: ?Sized + Interface> From<Remote<I>> for AnyRemote {
    fn from(r: Remote<I>) -> AnyRemote {
        r.into_any()
    }
}

impl PartialEq for AnyRemote {
    fn eq(&self, other: &Self) -> bool {
        self.wire.object == other.wire.object && self.wire.owner == other.wire.owner
    }
}

impl Eq for AnyRemote {}

impl Hash for AnyRemote {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.wire.object.hash(state);
        self.wire.owner.hash(state);
    }
}

impl fmt::Debug for AnyRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyRemote")
            .field("interface", &self.interface_name().unwrap_or("?"))
            .field("object", &self.wire.object)
            .field("owner", &self.wire.owner)
            .field("local", &self.is_local())
            .finish()
    }
}

impl Serialize for AnyRemote {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::rmi::scope::refuse_if_carried("a reference to a remote object")?;
        if let Some(node) = self.node.upgrade().filter(|_| self.is_local()) {
            node.leases().in_transit(&node, self.wire.object);
        }
        if let Some(lease) = &self.lease {
            lease.sending();
        }
        self.wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AnyRemote {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WireRef::deserialize(d)?;
        with_scope(|scope| {
            let node = scope.and_then(|s| s.node.clone().map(|n| (n, s.connection.clone())));
            match node {
                Some((node, conn)) => Ok(AnyRemote::bind(&node, wire, conn.as_ref())),
                None => Err(serde::de::Error::custom(
                    "a remote reference can only be decoded by farcall's runtime",
                )),
            }
        })
    }
}
