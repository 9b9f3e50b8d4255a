//! Late binding: a stub whose object is chosen call by call.
//!
//! A [`LateBound<dyn Trait>`](LateBound) asks a [`Resolve`] (the directory,
//! in farcall-registry) for the objects that may serve a call, picks one by
//! its [`Policy`], and fails over to another when the one picked is gone:
//! always when the request never reached it (its owner could not be
//! reached, or the object no longer exists there), and also after the
//! request was sent when the method is `#[remote(idempotent)]`.

use crate::sync::lock;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Answer, Expect, StubCore};
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::rmi::any::AnyRemote;
use crate::rmi::error::RemoteError;
use crate::rmi::interface::Interface;

/// How long an object that failed is passed over before it is tried again.
const SHUN: Duration = Duration::from_secs(1);

/// The future a [`Resolve`] returns.
pub type Candidates<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<AnyRemote>, RemoteError>> + Send + 'a>>;

/// Where a late-bound stub finds the objects that may serve its calls:
/// every member of a directory binding, say. Called on every call, so it
/// should answer from a view it keeps fresh (the directory's watch) rather
/// than ask a remote node each time.
pub trait Resolve: Send + Sync + 'static {
    /// The objects that may serve a call now, in a stable order.
    fn candidates(&self) -> Candidates<'_>;

    /// The name this resolver resolves (a directory name, say), named by
    /// [`RemoteError::NotBound`] when it offers no candidate. `""` (the
    /// default) for a resolver that has no name.
    fn name(&self) -> &str {
        ""
    }
}

/// Which of the candidates a late-bound call goes to first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Each call goes to the next candidate in turn.
    #[default]
    RoundRobin,
    /// Each call goes to a candidate chosen at random.
    Random,
    /// Every call goes to the first candidate that has not failed lately.
    FirstHealthy,
}

/// The state of a late-bound stub: its resolver, policy, and the objects
/// that failed lately.
pub(crate) struct LateLink {
    node: WeakNode,
    resolver: Arc<dyn Resolve>,
    policy: Policy,
    turn: AtomicUsize,
    failed: Mutex<HashMap<(NodeId, ObjectId), Instant>>,
}

impl fmt::Debug for LateLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LateLink")
            .field("policy", &self.policy)
            .finish()
    }
}

impl LateLink {
    pub(crate) fn node(&self) -> Option<Node> {
        self.node.upgrade()
    }

    fn key(r: &AnyRemote) -> (NodeId, ObjectId) {
        (r.owner(), r.id())
    }

    /// The order to try `n` candidates in: the policy's choice first,
    /// objects that failed within [`SHUN`] last.
    fn order(&self, cands: &[AnyRemote]) -> Vec<usize> {
        let n = cands.len();
        let start = match self.policy {
            Policy::RoundRobin => self.turn.fetch_add(1, Ordering::Relaxed) % n,
            Policy::Random => (crate::id::random_u128() % n as u128) as usize,
            Policy::FirstHealthy => 0,
        };
        let now = Instant::now();
        let failed = {
            let mut f = lock(&self.failed);
            f.retain(|_, at| now.duration_since(*at) < SHUN);
            cands
                .iter()
                .map(|c| f.contains_key(&Self::key(c)))
                .collect::<Vec<_>>()
        };
        let rotated = (0..n).map(|i| (start + i) % n);
        let (good, bad): (Vec<usize>, Vec<usize>) = rotated.partition(|&i| !failed[i]);
        good.into_iter().chain(bad).collect()
    }

    fn mark_failed(&self, r: &AnyRemote) {
        lock(&self.failed).insert(Self::key(r), Instant::now());
    }

    fn mark_healthy(&self, r: &AnyRemote) {
        let mut f = lock(&self.failed);
        if !f.is_empty() {
            f.remove(&Self::key(r));
        }
    }

    async fn candidates(&self) -> Result<Vec<AnyRemote>, RemoteError> {
        let cands = self.resolver.candidates().await?;
        if cands.is_empty() {
            return Err(RemoteError::NotBound(self.resolver.name().to_owned()));
        }
        Ok(cands)
    }

    /// One call or message to an object the resolver offers, failing
    /// over to the next while the one tried is gone: always when the
    /// request never reached it, and after it was sent when the method is
    /// idempotent.
    pub(crate) async fn invoke<A>(
        &self,
        outer: &StubCore,
        method: u64,
        name: &'static str,
        expect: Expect,
        args: &A,
    ) -> Result<Answer, RemoteError>
    where
        A: Serialize + ?Sized,
    {
        let idempotent = matches!(expect, Expect::Reply { idempotent: true });
        let cands = self.candidates().await?;
        let mut last = RemoteError::NoSuchObject;
        for i in self.order(&cands) {
            let Some(core) = cands[i].call_core() else {
                continue;
            };
            // Other candidates wait: one attempt to reach this one.
            let core = core.with_reconnect(Duration::ZERO).options_of(outer);
            match core.invoke_once(method, name, expect, args).await {
                Ok(answer) => {
                    if matches!(expect, Expect::Reply { .. }) {
                        self.mark_healthy(&cands[i]);
                    }
                    return Ok(answer);
                }
                Err(f) => {
                    let gone = matches!(
                        f.error,
                        RemoteError::Disconnected(_)
                            | RemoteError::Closed
                            | RemoteError::NoSuchObject
                    );
                    if !gone || (f.sent && !idempotent) {
                        return Err(f.error);
                    }
                    self.mark_failed(&cands[i]);
                    last = f.error;
                }
            }
        }
        Err(last)
    }
}

/// A late-bound reference: it dereferences to `I`, and each call goes to an
/// object its resolver offers, chosen by its policy, failing over to
/// another when the one chosen is gone.
pub struct LateBound<I: ?Sized + Interface> {
    target: Arc<I>,
    link: Arc<LateLink>,
    deadline: Option<Duration>,
}

impl<I: ?Sized + Interface> LateBound<I> {
    /// A late-bound stub on `node` whose calls go where `resolver` says.
    pub fn new(node: &Node, resolver: Arc<dyn Resolve>, policy: Policy) -> Self {
        let link = Arc::new(LateLink {
            node: node.downgrade(),
            resolver,
            policy,
            turn: AtomicUsize::new(0),
            failed: Mutex::new(HashMap::new()),
        });
        LateBound {
            target: I::stub(StubCore::late(link.clone())),
            link,
            deadline: None,
        }
    }

    /// The same stub whose calls wait at most `deadline` (each attempt).
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        LateBound {
            target: I::stub(StubCore::late(self.link.clone()).with_deadline(deadline)),
            link: self.link.clone(),
            deadline: Some(deadline),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.link.policy
    }
}

impl<I: ?Sized + Interface> Deref for LateBound<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.target
    }
}

impl<I: ?Sized + Interface> Clone for LateBound<I> {
    fn clone(&self) -> Self {
        LateBound {
            target: self.target.clone(),
            link: self.link.clone(),
            deadline: self.deadline,
        }
    }
}

impl<I: ?Sized + Interface> fmt::Debug for LateBound<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LateBound")
            .field("interface", &I::descriptor().name)
            .field("policy", &self.link.policy)
            .finish()
    }
}
