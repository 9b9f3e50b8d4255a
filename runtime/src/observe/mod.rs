//! What a running node shows of itself, and the hooks it offers around
//! every call.
//!
//! - **Spans** (feature `telemetry`, with the `tracing` crate): one per
//!   call on each side, named `farcall.call`, with OpenTelemetry's RPC
//!   field names (`rpc.system = "farcall"`, `rpc.service`, `rpc.method`,
//!   `otel.kind`, `otel.name = "Service/method"`, `otel.status_code`) and
//!   farcall's own (`farcall.peer`, `farcall.object`, `farcall.outcome`,
//!   `farcall.duration_us`). The handler runs inside the server's span, so
//!   the calls it makes are its children.
//! - **Trace context** (feature `otel`): the client's span context is
//!   written to the call's metadata as W3C `traceparent` / `tracestate`
//!   and the server's span takes it as its parent, so one trace follows a
//!   request across processes, callbacks, mediated RPC and NATS.
//! - **Metrics** (feature `telemetry`, through the `metrics` facade; the
//!   program installs a recorder, farcall none): see [`names`].
//! - **Interceptors**: [`Interceptor`]s installed on a node see every call
//!   it serves ([`NodeBuilder::intercept`]) or makes through its stubs
//!   ([`NodeBuilder::intercept_outgoing`]): they may reject it, add
//!   metadata, or time it.
//!
//! [`NodeBuilder::intercept`]: crate::NodeBuilder::intercept
//! [`NodeBuilder::intercept_outgoing`]: crate::NodeBuilder::intercept_outgoing
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use farcall_runtime::observe::{CallInfo, InterceptFuture, Interceptor};
//! use farcall_runtime::Fault;
//!
//! /// Lets at most `left` calls through, then refuses.
//! struct Budget { left: AtomicU64 }
//!
//! impl Interceptor for Budget {
//!     fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
//!         Box::pin(async move {
//!             let was = self.left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
//!             match was {
//!                 Ok(_) => Ok(()),
//!                 Err(_) => Err(Fault::Rejected(format!("no budget left for {}", call.method))),
//!             }
//!         })
//!     }
//! }
//!
//! let node = farcall_runtime::Node::builder()
//!     .intercept(Budget { left: AtomicU64::new(100) })
//!     .build();
//! # drop(node);
//! ```

mod call;
pub mod names;
#[cfg(feature = "otel")]
pub(crate) mod otel;
pub mod record;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use call::{Observed, method_names};

use crate::auth::Principal;
use crate::id::{NodeId, ObjectId};
use crate::metadata::Metadata;
use crate::wire::Fault;

/// Which end of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller: a stub's call.
    Client,
    /// The callee: a call this node serves.
    Server,
}

impl Side {
    /// `"client"` or `"server"`, as spans and metrics name it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What an [`Interceptor`] sees of a call.
#[derive(Clone, Debug)]
pub struct CallInfo {
    /// Which end this node is.
    pub side: Side,
    /// The interface called, as its trait is named (`"unknown"` for an
    /// object served by hand).
    pub interface: &'static str,
    /// The method called (`"unknown"` when its interface is not linked
    /// into this binary).
    pub method: &'static str,
    /// The object called.
    pub object: ObjectId,
    /// The node at the other end, when known (always on the server's side).
    pub peer: Option<NodeId>,
    /// Who the caller is, as this node's authenticator named it (server
    /// side only).
    pub principal: Option<Principal>,
    /// The call's metadata: the interceptor may read, add and remove
    /// entries; the handler (server side) or the wire (client side) gets
    /// what it leaves.
    pub metadata: Metadata,
    /// Whether it is a one-way message.
    pub one_way: bool,
}

/// The future [`Interceptor::intercept`] returns.
pub type InterceptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Fault>> + Send + 'a>>;

/// A hook around every call a node serves or makes. It is async (it may
/// ask a rate limiter or a token service), sees the interface, method,
/// metadata and principal, and may:
///
/// - reject the call with a [`Fault`] (the caller gets it as its error;
///   `Fault::Unauthorized` and `Fault::Rejected` are the usual ones), in
///   which case the handler never runs;
/// - add or change metadata;
/// - time the call, with [`Interceptor::finished`].
///
/// farcall's own trait rather than a `tower::Layer`: a call's future is
/// already boxed by the dispatcher, so a tower service stack would add a
/// box and a clone of the service per call and a readiness protocol that
/// calls do not use; this trait costs one boxed future per interceptor,
/// and nothing at all when none is installed.
pub trait Interceptor: Send + Sync + 'static {
    /// Runs before the call: `Err` rejects it.
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a>;

    /// Runs once the call is over, with its outcome (`Ok` for any answer
    /// of the handler, the application's errors included) and how long it
    /// took since `intercept` let it through. Not called for a one-way
    /// message, whose outcome nobody learns.
    fn finished(&self, call: &CallInfo, outcome: Result<(), &Fault>, elapsed: Duration) {
        let _ = (call, outcome, elapsed);
    }
}

/// The interceptors of one side of a node, in the order installed.
#[derive(Clone, Default)]
pub(crate) struct Interceptors(pub(crate) Option<Arc<[Arc<dyn Interceptor>]>>);

impl fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptors", self.0.as_ref().map_or(0, |v| v.len()))
    }
}

impl Interceptors {
    pub(crate) fn push(&mut self, i: Arc<dyn Interceptor>) {
        let mut all: Vec<_> = self.0.as_deref().unwrap_or_default().to_vec();
        all.push(i);
        self.0 = Some(all.into());
    }

    /// Runs every interceptor on `info`, in order; the first refusal wins.
    pub(crate) async fn run(
        list: &[Arc<dyn Interceptor>],
        info: &mut CallInfo,
    ) -> Result<(), Fault> {
        for i in list {
            i.intercept(info).await?;
        }
        Ok(())
    }

    /// Tells every interceptor the call is over.
    pub(crate) fn finished(
        list: &[Arc<dyn Interceptor>],
        info: &CallInfo,
        outcome: Result<(), &Fault>,
        elapsed: Duration,
    ) {
        for i in list {
            i.finished(info, outcome, elapsed);
        }
    }
}
