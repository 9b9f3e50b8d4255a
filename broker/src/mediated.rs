//! The caller's side of mediated RPC: a stub whose calls travel as
//! messages through a broker queue.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use farcall_runtime::rmi::{Interface, StubCore};

/// A stub of interface `I` whose calls go to a broker queue and are served
/// by whoever serves it (made by [`Broker::stub`](crate::Broker::stub)).
/// It dereferences to `I`, so its methods are called as on a local
/// object; cheap to clone.
///
/// Each call has a deadline: the stub's (see
/// [`Mediated::with_deadline`]) or else the calling node's default (30 s
/// unless its limits say otherwise). A call whose deadline passes in the
/// queue is not served.
pub struct Mediated<I: ?Sized + Interface> {
    target: Arc<I>,
    core: StubCore,
    queue: Arc<str>,
}

impl<I: ?Sized + Interface> Mediated<I> {
    pub(crate) fn new(core: StubCore, queue: &str) -> Self {
        Mediated {
            target: I::stub(core.clone()),
            core,
            queue: queue.into(),
        }
    }

    /// The same stub whose calls wait at most `deadline` (from the moment
    /// they are sent to the answer), as `Remote::with_deadline` does for a
    /// direct stub.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Mediated::new(self.core.with_deadline(deadline), &self.queue)
    }

    /// The same stub, sending `metadata` with each call; the server reads
    /// it from `CallContext::metadata`.
    pub fn with_metadata(&self, metadata: farcall_runtime::Metadata) -> Self {
        Mediated::new(self.core.with_metadata(metadata), &self.queue)
    }

    /// The queue its calls go to.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The stub as a plain `Arc<dyn Trait>`, interchangeable with a local
    /// object of the trait.
    pub fn into_arc(self) -> Arc<I> {
        self.target
    }
}

impl<I: ?Sized + Interface> Deref for Mediated<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.target
    }
}

impl<I: ?Sized + Interface> Clone for Mediated<I> {
    fn clone(&self) -> Self {
        Mediated {
            target: self.target.clone(),
            core: self.core.clone(),
            queue: self.queue.clone(),
        }
    }
}

impl<I: ?Sized + Interface> fmt::Debug for Mediated<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mediated")
            .field("interface", &I::descriptor().name)
            .field("queue", &self.queue)
            .field("core", &self.core)
            .finish()
    }
}

impl<I: ?Sized + Interface> From<Mediated<I>> for Arc<I> {
    fn from(m: Mediated<I>) -> Arc<I> {
        m.into_arc()
    }
}
