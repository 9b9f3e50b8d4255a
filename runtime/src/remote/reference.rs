//! `Remote<dyn Trait>`: a reference to an object that may live anywhere.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::id::{NodeId, ObjectId};
use crate::remote::interface::Interface;
use crate::remote::stub::StubCore;

/// A reference to a remote object implementing `I` (a `dyn Trait`).
///
/// It dereferences to `I`, so methods are called directly on it; whether
/// the object is on this node or another is invisible to the caller.
/// Clones are cheap and refer to the same object; equality and hashing go
/// by object identity (owner node and object id).
pub struct Remote<I: ?Sized + Interface> {
    target: Arc<I>,
    core: Option<StubCore>,
    object: ObjectId,
    owner: NodeId,
}

impl<I: ?Sized + Interface> Remote<I> {
    /// A reference to an object of this node, called directly.
    pub fn local(object: Arc<I>, id: ObjectId, owner: NodeId) -> Self {
        Remote {
            target: object,
            core: None,
            object: id,
            owner,
        }
    }

    /// A reference through a stub.
    pub fn stub(core: StubCore, id: ObjectId, owner: NodeId) -> Self {
        Remote {
            target: I::stub(core.clone()),
            core: Some(core),
            object: id,
            owner,
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
            Some(core) => Remote::stub(core.with_deadline(deadline), self.object, self.owner),
            None => self.clone(),
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
            object: self.object,
            owner: self.owner,
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
