//! Installing interceptors on a node (see [`crate::observe::Interceptor`]).

use std::sync::Arc;

use super::{Node, NodeBuilder};
use crate::observe::{Interceptor, Interceptors};

impl NodeBuilder {
    /// Runs `i` around every call this node serves for another node over
    /// a connection, after the authorizer and before any argument is
    /// decoded. Interceptors run in the order they
    /// were installed; the first that rejects a call ends it.
    pub fn intercept(mut self, i: impl Interceptor) -> Self {
        self.interceptors.push(Arc::new(i));
        self
    }

    /// Runs `i` around every call this node makes through a stub (remote
    /// references, services, late-bound and mediated stubs), before the
    /// call is sent: it may add metadata, or reject the call, which then
    /// fails with that fault and is never sent.
    pub fn intercept_outgoing(mut self, i: impl Interceptor) -> Self {
        self.outgoing.push(Arc::new(i));
        self
    }
}

impl Node {
    pub(crate) fn outgoing_interceptors(&self) -> &Interceptors {
        &self.inner.outgoing
    }
}
