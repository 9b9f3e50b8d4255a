//! Leases: the distributed garbage collector, after Java RMI's.
//!
//! - **Holders.** A node that holds references to an object of another
//!   node holds one lease on it, shared by every clone of every reference
//!   ([`LeaseHandle`]). The lease is taken when the first reference
//!   arrives, renewed every half lease time while any clone lives, and
//!   released when the last one drops.
//! - **Owners.** An exported object stays in its node's table while a local
//!   handle (a `Remote` on the owner itself), a lease, or a pin (a service
//!   published by name) holds it. When the last goes, the object is
//!   unexported and dropped. A lease ends when released, when its holder's
//!   last connection dies, or when it is not renewed within the lease time
//!   (a holder that vanished without a word). A reference in transit (sent
//!   by the owner, not yet leased by its receiver) keeps the object for one
//!   lease time.

use crate::sync::lock;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::rmi::client::Link;
use crate::wire::Frame;

/// Most objects named in one lease frame.
const OBJECTS_PER_FRAME: usize = 1024;
/// How long a holder that sent a reference on waits before releasing its
/// own lease, so that the receiver's first renewal reaches the owner first.
const HANDOFF_GRACE: Duration = Duration::from_secs(2);
/// How long first renewals and releases wait to be sent together.
const RELEASE_BATCH: Duration = Duration::from_millis(10);

/// A release held back until `.0`: the owner, the link to it, the object.
type Delayed = (Instant, NodeId, Arc<Link>, ObjectId);

/// Lease frames waiting to be sent: by owner, the link to it and the objects.
type PendingReleases = HashMap<NodeId, (Arc<Link>, Vec<ObjectId>)>;

/// What keeps one exported object of this node alive.
struct Keep {
    holders: HashMap<NodeId, Instant>,
    local: Weak<LocalGuard>,
    transit_until: Option<Instant>,
    pinned: bool,
}

/// The lease state of a node, as owner and as holder.
#[derive(Default)]
pub(crate) struct Leases {
    /// Owner side: the exported objects subject to collection.
    keep: Mutex<HashMap<ObjectId, Keep>>,
    /// Holder side: one handle per (owner, object) while references live.
    held: Mutex<HashMap<(NodeId, ObjectId), Weak<LeaseHandle>>>,
    /// Holder side: first renewals waiting to be sent, by owner.
    renewals: Mutex<PendingReleases>,
    /// Holder side: releases waiting to be sent, by owner.
    releases: Mutex<PendingReleases>,
    /// Holder side: releases held back until a hand-off has settled.
    delayed: Mutex<Vec<Delayed>>,
    /// Shared with the lease task, which must not keep the node alive.
    wake: Arc<Notify>,
    task: AtomicBool,
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases")
            .field("kept", &lock(&self.keep).len())
            .field("held", &lock(&self.held).len())
            .finish()
    }
}

/// Dropped with the last local handle (`Remote` on the owner) of an object.
pub(crate) struct LocalGuard {
    node: WeakNode,
    object: ObjectId,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        if let Some(node) = self.node.upgrade() {
            node.leases().collect(&node, self.object);
        }
    }
}

/// A holder's lease on one object of another node, shared by every
/// reference to it; dropping the last one releases the lease.
pub(crate) struct LeaseHandle {
    node: WeakNode,
    owner: NodeId,
    object: ObjectId,
    link: Arc<Link>,
    /// When a reference under this lease was last sent to another node.
    sent_at: Mutex<Option<Instant>>,
}

impl LeaseHandle {
    /// A reference under this lease is being sent on (to a third party):
    /// releasing right after would race the receiver's first renewal.
    pub(crate) fn sending(&self) {
        *lock(&self.sent_at) = Some(Instant::now());
    }
}

impl Drop for LeaseHandle {
    fn drop(&mut self) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let leases = node.leases();
        {
            let mut held = lock(&leases.held);
            if held
                .get(&(self.owner, self.object))
                .is_some_and(|w| w.strong_count() == 0)
            {
                held.remove(&(self.owner, self.object));
            }
        }
        let sent = *lock(&self.sent_at);
        if let Some(at) = sent.filter(|at| at.elapsed() < HANDOFF_GRACE) {
            // Sent on lately: let the receiver's lease be taken first.
            lock(&leases.delayed).push((
                at + HANDOFF_GRACE,
                self.owner,
                self.link.clone(),
                self.object,
            ));
        } else {
            lock(&leases.releases)
                .entry(self.owner)
                .or_insert_with(|| (self.link.clone(), Vec::new()))
                .1
                .push(self.object);
        }
        leases.wake.notify_one();
    }
}

impl Leases {
    /// Registers an exported object; returns its local handle guard.
    pub(crate) fn exported(&self, node: &Node, object: ObjectId, pinned: bool) -> Arc<LocalGuard> {
        let guard = Arc::new(LocalGuard {
            node: node.downgrade(),
            object,
        });
        let replaced = lock(&self.keep).insert(
            object,
            Keep {
                holders: HashMap::new(),
                local: Arc::downgrade(&guard),
                transit_until: None,
                pinned,
            },
        );
        leases_held(-(replaced.map_or(0, |k| k.holders.len()) as f64));
        self.start(node);
        guard
    }

    /// A local handle guard for an object that is still exported.
    pub(crate) fn local_guard(&self, node: &Node, object: ObjectId) -> Option<Arc<LocalGuard>> {
        let mut keep = lock(&self.keep);
        let k = keep.get_mut(&object)?;
        if let Some(g) = k.local.upgrade() {
            return Some(g);
        }
        let g = Arc::new(LocalGuard {
            node: node.downgrade(),
            object,
        });
        k.local = Arc::downgrade(&g);
        Some(g)
    }

    /// A reference to `object` is being sent: keep it one lease time, so
    /// that its receiver can take a lease.
    pub(crate) fn in_transit(&self, node: &Node, object: ObjectId) {
        if let Some(k) = lock(&self.keep).get_mut(&object) {
            k.transit_until = Some(Instant::now() + node.limits().lease_time);
        }
    }

    /// Unexports `object` if nothing keeps it any more.
    pub(crate) fn collect(&self, node: &Node, object: ObjectId) {
        let now = Instant::now();
        let gone = {
            let mut keep = lock(&self.keep);
            let Some(k) = keep.get_mut(&object) else {
                return;
            };
            let before = k.holders.len();
            k.holders.retain(|_, until| *until > now);
            leases_held(k.holders.len() as f64 - before as f64);
            let kept = k.pinned
                || k.local.strong_count() > 0
                || !k.holders.is_empty()
                || k.transit_until.is_some_and(|t| t > now);
            if !kept {
                keep.remove(&object);
            }
            !kept
        };
        if gone {
            tracing::debug!(%object, "unexported: no local handle, lease or pin holds it");
            node.remove_object(object);
        }
    }

    /// A holder renews its leases.
    pub(crate) fn renew(&self, node: &Node, holder: NodeId, objects: &[ObjectId]) {
        let until = Instant::now() + node.limits().lease_time;
        let mut keep = lock(&self.keep);
        for o in objects {
            if let Some(k) = keep.get_mut(o) {
                if k.holders.insert(holder, until).is_none() {
                    leases_held(1.0);
                }
                k.transit_until = None;
            }
        }
    }

    /// A holder releases its leases.
    pub(crate) fn release(&self, node: &Node, holder: NodeId, objects: &[ObjectId]) {
        {
            let mut keep = lock(&self.keep);
            for o in objects {
                if let Some(k) = keep.get_mut(o)
                    && k.holders.remove(&holder).is_some()
                {
                    leases_held(-1.0);
                }
            }
        }
        for o in objects {
            self.collect(node, *o);
        }
    }

    /// A holder's last connection died: its leases end now.
    pub(crate) fn holder_gone(&self, node: &Node, holder: NodeId) {
        let objects: Vec<ObjectId> = {
            let mut keep = lock(&self.keep);
            keep.iter_mut()
                .filter_map(|(o, k)| k.holders.remove(&holder).map(|_| *o))
                .collect()
        };
        leases_held(-(objects.len() as f64));
        for o in objects {
            self.collect(node, o);
        }
    }

    /// The holder's lease on `object` of `owner`, shared by every reference
    /// to it; taking it sends the first renewal.
    pub(crate) fn hold(
        &self,
        node: &Node,
        owner: NodeId,
        object: ObjectId,
        link: Arc<Link>,
    ) -> Arc<LeaseHandle> {
        let mut held = lock(&self.held);
        if let Some(h) = held.get(&(owner, object)).and_then(Weak::upgrade) {
            return h;
        }
        let h = Arc::new(LeaseHandle {
            node: node.downgrade(),
            owner,
            object,
            link: link.clone(),
            sent_at: Mutex::new(None),
        });
        held.insert((owner, object), Arc::downgrade(&h));
        drop(held);
        self.start(node);
        // The first renewal goes out with the others taken in the same few
        // milliseconds; meanwhile the owner keeps the object in transit.
        lock(&self.renewals)
            .entry(owner)
            .or_insert_with(|| (link, Vec::new()))
            .1
            .push(object);
        self.wake.notify_one();
        h
    }

    fn start(&self, node: &Node) {
        if !self.task.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(node.downgrade(), self.wake.clone()));
        }
    }
}

fn send(conn: &Connection, renew: bool, objects: &[ObjectId]) {
    for chunk in objects.chunks(OBJECTS_PER_FRAME) {
        let objects = chunk.to_vec();
        let f = if renew {
            Frame::LeaseRenew { objects }
        } else {
            Frame::LeaseRelease { objects }
        };
        // Best effort: a lost renewal is made up by the next one.
        let _ = conn.send_control(&f);
    }
}

/// The node's lease task: sends releases in batches, renews held leases
/// every half lease time, and expires the leases of silent holders.
async fn run(node: WeakNode, wake: Arc<Notify>) {
    let period = match node.upgrade() {
        Some(n) => (n.limits().lease_time / 2).max(Duration::from_millis(10)),
        None => return,
    };
    let tick = tokio::time::sleep(period);
    tokio::pin!(tick);
    loop {
        // Only the weak handle is held while waiting: a dropped node ends
        // this task at its next wake-up.
        let woke = tokio::select! {
            () = wake.notified() => true,
            () = &mut tick => false,
        };
        let Some(n) = node.upgrade() else { return };
        if n.is_shut_down() {
            return;
        }
        if woke {
            drop(n);
            tokio::time::sleep(RELEASE_BATCH).await;
            let Some(n) = node.upgrade() else { return };
            let leases = n.leases();
            // Held-back releases that are due join this batch.
            let now = Instant::now();
            let due: Vec<(NodeId, Arc<Link>, ObjectId)> = {
                let mut d = lock(&leases.delayed);
                let (due, later): (Vec<_>, Vec<_>) = d.drain(..).partition(|x| x.0 <= now);
                *d = later;
                due.into_iter().map(|(_, o, l, obj)| (o, l, obj)).collect()
            };
            let mut releases = std::mem::take(&mut *lock(&leases.releases));
            for (owner, link, object) in due {
                releases
                    .entry(owner)
                    .or_insert_with(|| (link, Vec::new()))
                    .1
                    .push(object);
            }
            // A renewal is sent only for what is still held: an object taken
            // and dropped within one batch sends nothing at all.
            let renewals = std::mem::take(&mut *lock(&leases.renewals));
            for (owner, (link, objects)) in renewals {
                let objects: Vec<ObjectId> = {
                    let held = lock(&leases.held);
                    objects
                        .into_iter()
                        .filter(|o| held.get(&(owner, *o)).is_some_and(|w| w.strong_count() > 0))
                        .collect()
                };
                if let Some((_, released)) = releases.get_mut(&owner) {
                    released.retain(|o| !objects.contains(o));
                }
                if objects.is_empty() {
                    continue;
                }
                match link.open().or_else(|| n.connection_to(owner)) {
                    // In order with the releases sent below.
                    Some(c) => send(&c, true, &objects),
                    None => {
                        let deadline = Instant::now() + period;
                        tokio::spawn(async move {
                            if let Ok(c) = link.connection(deadline).await {
                                send(&c, true, &objects);
                            }
                        });
                    }
                }
            }
            for (owner, (link, objects)) in releases {
                if objects.is_empty() {
                    continue;
                }
                if let Some(c) = link.open().or_else(|| n.connection_to(owner)) {
                    send(&c, false, &objects);
                }
            }
            if !lock(&leases.delayed).is_empty() {
                // Come back when the held-back releases are due.
                let wake = leases.wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(HANDOFF_GRACE).await;
                    wake.notify_one();
                });
            }
            continue;
        }
        tick.as_mut().reset(tokio::time::Instant::now() + period);
        let leases = n.leases();
        // Renew, one batch per owner.
        let mut by_owner: HashMap<NodeId, (Arc<Link>, Vec<ObjectId>)> = HashMap::new();
        for h in lock(&leases.held).values().filter_map(Weak::upgrade) {
            by_owner
                .entry(h.owner)
                .or_insert_with(|| (h.link.clone(), Vec::new()))
                .1
                .push(h.object);
        }
        for (_, (link, objects)) in by_owner {
            let deadline = Instant::now() + period;
            tokio::spawn(async move {
                if let Ok(c) = link.connection(deadline).await {
                    send(&c, true, &objects);
                }
            });
        }
        // Expire silent holders.
        let objects: Vec<ObjectId> = lock(&leases.keep).keys().copied().collect();
        for o in objects {
            leases.collect(&n, o);
        }
    }
}

/// Moves the gauge of leases peers hold on this process's objects.
fn leases_held(delta: f64) {
    if delta != 0.0 {
        crate::observe::record::gauge_add(crate::observe::names::LEASES_HELD, &[], delta);
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        let held: usize = lock(&self.keep).values().map(|k| k.holders.len()).sum();
        leases_held(-(held as f64));
    }
}
