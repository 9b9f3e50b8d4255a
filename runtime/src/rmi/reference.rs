//! `Remote<dyn Trait>`: a reference to an object that may live anywhere.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::Address;
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::rmi::any::AnyRemote;
use crate::rmi::client::StubCore;
use crate::rmi::error::RemoteError;
use crate::rmi::interface::{Interface, Upcast, find_interface, is_subinterface};
use crate::rmi::lease::{LeaseHandle, LocalGuard};
use crate::rmi::scope::with_scope;
use crate::rmi::wire_ref::WireRef;
use crate::service::{Service, Upcaster};

/// What a reference to an object of this very node keeps: a way to get the
/// object as any interface it implements, and its dispatcher.
#[derive(Clone)]
pub(crate) struct LocalObject {
    pub(crate) up: Upcaster,
    pub(crate) service: Arc<dyn Service>,
    pub(crate) node: WeakNode,
    /// Keeps the object exported while local handles live.
    pub(crate) _guard: Option<Arc<LocalGuard>>,
}

/// A reference to a remote object implementing `I` (a `dyn Trait`).
///
/// It dereferences to `I`, so methods are called directly on it; whether
/// the object is on this node or another is invisible to the caller.
/// Clones are cheap and refer to the same object; equality and hashing go
/// by object identity (owner node and object id).
///
/// Clippy's `mutable_key_type` lint flags `HashSet<Remote<_>>` because a
/// stub holds a mutex; hashing and equality use only the owner and object
/// ids, which never change, so the lint can be allowed there.
///
/// A `Remote` is serde-serialisable: it may be an argument or a result of
/// any remote method, nested anywhere in a serde type. Passing a reference
/// to a local object lets the receiver call it; a reference received from
/// the node at the other end of a connection calls back over that same
/// connection; a reference to a third node's object dials that node.
pub struct Remote<I: ?Sized + Interface> {
    target: Arc<I>,
    core: Option<StubCore>,
    local: Option<LocalObject>,
    object: ObjectId,
    owner: NodeId,
    /// The object's most derived interface (it may be a subtrait of `I`).
    interface: u64,
    addrs: Arc<[Address]>,
    /// This node's lease on a remote owner's object.
    lease: Option<Arc<LeaseHandle>>,
}

impl<I: ?Sized + Interface> Remote<I> {
    pub(crate) fn with_lease(mut self, lease: Arc<LeaseHandle>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// A reference to an object of `node`, called directly.
    pub(crate) fn local(
        object: Arc<I>,
        local: LocalObject,
        id: ObjectId,
        node: &Node,
        interface: u64,
    ) -> Self {
        Remote {
            target: object,
            core: None,
            local: Some(local),
            object: id,
            owner: node.id(),
            interface,
            addrs: node.local_addrs().into(),
            lease: None,
        }
    }

    /// A reference through a stub.
    pub(crate) fn stub(
        core: StubCore,
        id: ObjectId,
        owner: NodeId,
        interface: u64,
        addrs: Arc<[Address]>,
    ) -> Self {
        Remote {
            target: I::stub(core.clone()),
            core: Some(core),
            local: None,
            object: id,
            owner,
            interface,
            addrs,
            lease: None,
        }
    }

    /// The same reference, untyped (what a directory stores).
    pub fn into_any(self) -> crate::rmi::AnyRemote {
        match self.node_for_any() {
            Some(node) => crate::rmi::AnyRemote::bind(
                &node,
                self.wire(),
                self.core.as_ref().and_then(StubCore::connection).as_ref(),
            ),
            None => {
                // No node to bind to: a reference on a node that is gone.
                crate::rmi::AnyRemote::detached(self.wire())
            }
        }
    }

    fn node_for_any(&self) -> Option<Node> {
        match (&self.local, &self.core) {
            (Some(l), _) => l.node.upgrade(),
            (None, Some(core)) => core.node(),
            (None, None) => None,
        }
    }

    /// The object's id on its owner.
    pub fn id(&self) -> ObjectId {
        self.object
    }

    /// The node that owns the object.
    pub fn owner(&self) -> NodeId {
        self.owner
    }

    /// The addresses the owner listens on, as this reference knows them.
    pub fn owner_addrs(&self) -> &[Address] {
        &self.addrs
    }

    /// The id of the object's most derived remote interface.
    pub fn interface_id(&self) -> u64 {
        self.interface
    }

    /// The name of the object's most derived remote interface, if that
    /// interface is linked into this binary.
    pub fn interface_name(&self) -> Option<&'static str> {
        find_interface(self.interface).map(|d| d.name)
    }

    /// Whether calls reach the object without a socket.
    pub fn is_local(&self) -> bool {
        self.core.is_none()
    }

    /// The reference as a plain `Arc<dyn Trait>` (a stub or the object).
    pub fn as_arc(&self) -> &Arc<I> {
        &self.target
    }

    /// The same reference whose calls wait at most `deadline`. A local
    /// object is returned unchanged.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        match &self.core {
            Some(core) => Remote {
                target: I::stub(core.with_deadline(deadline)),
                core: Some(core.with_deadline(deadline)),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// The same reference, sending `metadata` with each of its calls (the
    /// server reads it from [`CallContext::metadata`]). A reference to an
    /// object of this node then calls it through its dispatcher, as a
    /// remote caller would, so that the metadata reaches it.
    ///
    /// [`CallContext::metadata`]: crate::CallContext::metadata
    pub fn with_metadata(&self, metadata: crate::Metadata) -> Self {
        let core = match (&self.core, &self.local) {
            (Some(core), _) => core.with_metadata(metadata),
            (None, Some(local)) => match local.node.upgrade() {
                Some(node) => StubCore::local(local.service.clone(), node, self.object)
                    .with_metadata(metadata),
                None => return self.clone(),
            },
            (None, None) => return self.clone(),
        };
        Remote {
            target: I::stub(core.clone()),
            core: Some(core),
            ..self.clone()
        }
    }

    /// The same object seen through a supertrait (`Remote<dyn Circle>` to
    /// `Remote<dyn Shape>`). Always succeeds; `#[remote]` implements
    /// `Upcast` for each direct supertrait.
    pub fn upcast<J: ?Sized + Interface>(self) -> Remote<J>
    where
        I: Upcast<J>,
    {
        Remote {
            target: I::upcast(self.target),
            core: self.core,
            local: self.local,
            object: self.object,
            owner: self.owner,
            interface: self.interface,
            addrs: self.addrs,
            lease: self.lease,
        }
    }

    /// The same object seen through another interface `J`, if it
    /// implements it: exactly when its most derived interface is `J` or a
    /// subtrait of `J`, as the catalogue of linked interfaces says. This is
    /// how a late-bound caller gets from a general reference
    /// (`Remote<dyn Shape>`) to a specific one (`Remote<dyn Circle>`).
    pub fn narrow<J: ?Sized + Interface>(&self) -> Option<Remote<J>> {
        if !is_subinterface(self.interface, J::descriptor().id) {
            return None;
        }
        if let Some(core) = &self.core {
            let mut r = Remote::stub(
                core.clone(),
                self.object,
                self.owner,
                self.interface,
                self.addrs.clone(),
            );
            r.lease = self.lease.clone();
            return Some(r);
        }
        let local = self.local.as_ref()?;
        if let Some(arc) = (local.up)(J::descriptor().id).and_then(|b| b.downcast::<Arc<J>>().ok())
        {
            return Some(Remote {
                target: *arc,
                core: None,
                local: Some(local.clone()),
                object: self.object,
                owner: self.owner,
                interface: self.interface,
                addrs: self.addrs.clone(),
                lease: None,
            });
        }
        // Exported as another interface than `J`: go through its
        // dispatcher, still without a socket.
        let node = local.node.upgrade()?;
        Some(Remote::stub(
            StubCore::local(local.service.clone(), node, self.object),
            self.object,
            self.owner,
            self.interface,
            self.addrs.clone(),
        ))
    }

    fn wire(&self) -> WireRef {
        WireRef {
            owner: self.owner,
            addrs: self.addrs.to_vec(),
            object: self.object,
            interface: self.interface,
        }
    }
}

impl<I: ?Sized + Interface> Deref for Remote<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.target
    }
}

impl<I: ?Sized + Interface> Clone for Remote<I> {
    fn clone(&self) -> Self {
        Remote {
            target: self.target.clone(),
            core: self.core.clone(),
            local: self.local.clone(),
            object: self.object,
            owner: self.owner,
            interface: self.interface,
            addrs: self.addrs.clone(),
            lease: self.lease.clone(),
        }
    }
}

impl<I: ?Sized + Interface> PartialEq for Remote<I> {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object && self.owner == other.owner
    }
}

impl<I: ?Sized + Interface> Eq for Remote<I> {}

impl<I: ?Sized + Interface> Hash for Remote<I> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.object.hash(state);
        self.owner.hash(state);
    }
}

impl<I: ?Sized + Interface> fmt::Debug for Remote<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("interface", &I::descriptor().name)
            .field("object", &self.object)
            .field("owner", &self.owner)
            .field("local", &self.is_local())
            .finish()
    }
}

impl<I: ?Sized + Interface> Serialize for Remote<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::rmi::scope::refuse_if_carried("a reference to a remote object")?;
        if let Some(node) = self.local.as_ref().and_then(|l| l.node.upgrade()) {
            // Kept for its receiver until that one takes a lease.
            node.leases().in_transit(&node, self.object);
        }
        if let Some(lease) = &self.lease {
            lease.sending();
        }
        self.wire().serialize(s)
    }
}

impl<'de, I: ?Sized + Interface> Deserialize<'de> for Remote<I> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WireRef::deserialize(d)?;
        with_scope(|scope| {
            let Some(scope) = scope else {
                return Err(serde::de::Error::custom(
                    "a remote reference can only be decoded by farcall's runtime",
                ));
            };
            match from_wire::<I>(wire, scope.node.as_ref(), scope.connection.as_ref()) {
                Ok(r) => Ok(r),
                Err(e) => {
                    let msg = e.to_string();
                    scope.failure = Some(e);
                    Err(serde::de::Error::custom(msg))
                }
            }
        })
    }
}

/// Turns a decoded reference into a working one, checking its interface.
fn from_wire<I: ?Sized + Interface>(
    w: WireRef,
    node: Option<&Node>,
    conn: Option<&crate::connection::Connection>,
) -> Result<Remote<I>, RemoteError> {
    let want = I::descriptor();
    if !is_subinterface(w.interface, want.id) {
        let theirs = find_interface(w.interface).map_or_else(
            || format!("interface {:#x}, unknown to this binary", w.interface),
            |d| d.name.to_owned(),
        );
        return Err(RemoteError::InterfaceMismatch(format!(
            "the reference is to a {theirs} object, which does not implement {}",
            want.name
        )));
    }
    let node =
        node.ok_or_else(|| RemoteError::Decode("no node to bind the reference to".into()))?;
    // Bound as any reference is (own object, the connection it came on, or
    // the owner dialed anew), then seen as `I`, which the check above allows.
    AnyRemote::bind(node, w, conn)
        .narrow::<I>()
        .ok_or_else(|| RemoteError::Decode("the reference's node is gone".into()))
}
