//! Late binding through the directory: a `LateBound<dyn T>` whose objects
//! are the members of a directory binding.
//!
//! The resolver keeps the binding's members in a view that it refreshes
//! when the directory's watch reports a change to the name, so a call costs
//! no directory round trip; a call that finds the view stale (or the watch
//! gone) looks the name up again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use farcall_runtime::rmi::{AnyRemote, Candidates, Interface};
use farcall_runtime::{LateBound, Node, Policy, Resolve};

use crate::DirectoryError;
use crate::client::DirectoryClient;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resolves a name to its members, kept fresh by a watch.
struct NameResolver {
    dir: DirectoryClient,
    name: String,
    view: Mutex<Option<Vec<AnyRemote>>>,
    /// Set by the watch when the name changed (or the watch ended).
    stale: AtomicBool,
    /// The watch is up: from then on a change cannot be missed, so the
    /// view may be kept. Until then every call looks the name up.
    watching: AtomicBool,
}

impl Resolve for NameResolver {
    fn candidates(&self) -> Candidates<'_> {
        Box::pin(async move {
            let fresh =
                self.watching.load(Ordering::Acquire) && !self.stale.load(Ordering::Acquire);
            if let Some(v) = lock(&self.view).clone().filter(|_| fresh) {
                return Ok(v);
            }
            self.stale.store(false, Ordering::Release);
            let members = match self.dir.lookup_any(&self.name).await {
                Ok(v) => v,
                Err(DirectoryError::NotBound(_)) => Vec::new(),
                Err(e) => {
                    self.stale.store(true, Ordering::Release);
                    return Err(e.into());
                }
            };
            *lock(&self.view) = Some(members.clone());
            Ok(members)
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Follows the directory's changes to the name; ends with the resolver.
async fn watch(resolver: Weak<NameResolver>) {
    let Some(r) = resolver.upgrade() else { return };
    let stream = r.dir.watch(&r.name).await;
    let name = r.name.clone();
    drop(r);
    let Ok(mut changes) = stream else {
        // No watch: every call looks the name up.
        if let Some(r) = resolver.upgrade() {
            r.stale.store(true, Ordering::Release);
        }
        return;
    };
    // A view looked up before the watch was up may have missed a change.
    if let Some(r) = resolver.upgrade() {
        r.stale.store(true, Ordering::Release);
        r.watching.store(true, Ordering::Release);
    }
    while let Some(change) = changes.next().await {
        let Some(r) = resolver.upgrade() else { return };
        match change {
            Ok(c) if c.name() == name => r.stale.store(true, Ordering::Release),
            Ok(_) => {}
            Err(_) => {
                r.stale.store(true, Ordering::Release);
                break;
            }
        }
    }
    // The watch ended: fall back to looking up on every call.
    if let Some(r) = resolver.upgrade() {
        r.stale.store(true, Ordering::Release);
        *lock(&r.view) = None;
    }
}

impl DirectoryClient {
    /// A late-bound reference to whatever is bound under `name`: each call
    /// goes to one of the binding's members, chosen by `policy`, and fails
    /// over to another member when the one chosen is gone (after sending,
    /// only for `#[remote(idempotent)]` methods). The view of the members
    /// follows the directory's changes.
    pub fn late_bound<I: ?Sized + Interface>(
        &self,
        node: &Node,
        name: &str,
        policy: Policy,
    ) -> LateBound<I> {
        let resolver = Arc::new(NameResolver {
            dir: self.clone(),
            name: name.to_owned(),
            view: Mutex::new(None),
            stale: AtomicBool::new(true),
            watching: AtomicBool::new(false),
        });
        tokio::spawn(watch(Arc::downgrade(&resolver)));
        LateBound::new(node, resolver, policy)
    }
}
