//! The embedded directory: the state behind [`DirectoryApi`] on every node.

use farcall_runtime::observe::{names, record};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use farcall_runtime::rmi::{AnyRemote, is_subinterface};
use farcall_runtime::{Node, NodeId, ObjectId, RemoteError, Stream, WeakNode};
use tokio::sync::mpsc;

use crate::DirectoryError;
use crate::name::{MAX_NAME_LEN, validate_name, validate_prefix};
use crate::protocol::{Change, DirectoryApi, Entry, Found, InterfaceInfo, Page, interface_name};

/// The most entries (`list`) or matches (`find`) in one page.
pub const MAX_PAGE: u32 = 1000;
/// The most objects bound under one name.
pub const MAX_GROUP: u32 = 1000;
/// How many changes a watcher may fall behind before its stream fails.
pub const WATCH_BACKLOG: usize = 4096;
/// The most bytes of entries in one page, whatever the frame limit (a
/// page is also kept under a quarter of the node's frame limit).
const PAGE_BYTES: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One object bound under a name.
struct Member {
    r: AnyRemote,
    /// Since when its owner has been unreachable, as the sweeper saw it.
    down_since: Option<Instant>,
}

impl Member {
    fn same(&self, owner: NodeId, object: ObjectId) -> bool {
        self.r.owner() == owner && self.r.id() == object
    }
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Change>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    names: BTreeMap<String, Vec<Member>>,
    watchers: Vec<Watcher>,
}

impl State {
    fn emit(&mut self, change: Change) {
        let delta = match change {
            Change::Bound { .. } => 1.0,
            Change::Unbound { .. } => -1.0,
        };
        record::gauge_add(names::DIRECTORY_BINDINGS, &[], delta);
        if self.watchers.is_empty() {
            return;
        }
        let before = self.watchers.len();
        self.watchers.retain(|w| {
            if !change.name().starts_with(&w.prefix) {
                return !w.tx.is_closed();
            }
            match w.tx.try_send(change.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.lagged.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        let gone = before - self.watchers.len();
        record::gauge_add(names::DIRECTORY_WATCHERS, &[], -(gone as f64));
    }
}

/// The gauges count what a dropped directory held no longer.
impl Drop for State {
    fn drop(&mut self) {
        let members: usize = self.names.values().map(Vec::len).sum();
        record::gauge_add(names::DIRECTORY_BINDINGS, &[], -(members as f64));
        record::gauge_add(
            names::DIRECTORY_WATCHERS,
            &[],
            -(self.watchers.len() as f64),
        );
    }
}

fn bound(name: &str, r: &AnyRemote) -> Change {
    Change::Bound {
        name: name.to_owned(),
        owner: r.owner(),
        object: r.id(),
        interface: r.interface_id(),
    }
}

fn unbound(name: &str, r: &AnyRemote) -> Change {
    Change::Unbound {
        name: name.to_owned(),
        owner: r.owner(),
        object: r.id(),
    }
}

/// The directory of one node.
pub(crate) struct Shared {
    node: WeakNode,
    state: Mutex<State>,
    sweeping: AtomicBool,
}

/// What the dispatcher serves: the directory of one node.
pub(crate) struct Embedded(pub(crate) Arc<Shared>);

/// Where a node keeps its embedded directory (in its extensions), for
/// `node.directory()` to call directly (no encoding: a bound object is
/// handed over as it is).
struct EmbeddedSlot(Weak<Shared>);

impl Embedded {
    /// A new, empty directory for `node`, known to [`Embedded::of`].
    pub(crate) fn new(node: &Node) -> Embedded {
        let shared = Arc::new(Shared {
            node: node.downgrade(),
            state: Mutex::new(State::default()),
            sweeping: AtomicBool::new(false),
        });
        node.extensions()
            .insert(EmbeddedSlot(Arc::downgrade(&shared)));
        Embedded(shared)
    }

    /// The directory `node` serves, if it is an embedded one.
    pub(crate) fn of(node: &Node) -> Option<Embedded> {
        let slot = node.extensions().get::<EmbeddedSlot>()?;
        slot.0.upgrade().map(Embedded)
    }
}

/// The byte budget of one page.
fn page_budget(shared: &Shared) -> usize {
    let frame = shared
        .node
        .upgrade()
        .map_or(16 << 20, |n| n.limits().max_frame_len as usize);
    PAGE_BYTES.min(frame / 4).max(256)
}

/// An upper estimate of a reference's encoded size.
fn ref_bytes(r: &AnyRemote) -> usize {
    48 + r
        .wire()
        .addrs
        .iter()
        .map(|a| a.to_string().len() + 4)
        .sum::<usize>()
}

fn check_after(after: &Option<String>) -> Result<(), DirectoryError> {
    match after {
        Some(a) if a.len() > MAX_NAME_LEN => Err(DirectoryError::InvalidName {
            name: a.chars().take(64).collect(),
            reason: format!("`after` is {} bytes long; at most {MAX_NAME_LEN}", a.len()),
        }),
        _ => Ok(()),
    }
}

/// Where a page starts: after `after`, or at the prefix.
fn start<'a>(prefix: &'a str, after: &'a Option<String>) -> (Bound<&'a str>, Bound<&'a str>) {
    match after.as_deref() {
        Some(a) if a >= prefix => (Bound::Excluded(a), Bound::Unbounded),
        _ => (Bound::Included(prefix), Bound::Unbounded),
    }
}

impl Shared {
    fn insert(
        self: &Arc<Self>,
        name: String,
        r: AnyRemote,
        how: Write,
    ) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let remote = !r.is_local();
        let mut replaced = Vec::new();
        {
            let mut st = lock(&self.state);
            let State { names, .. } = &mut *st;
            let mut changes = Vec::new();
            match how {
                Write::Bind => {
                    if names.contains_key(&name) {
                        return Err(DirectoryError::AlreadyBound(name));
                    }
                    changes.push(bound(&name, &r));
                    names.insert(
                        name,
                        vec![Member {
                            r,
                            down_since: None,
                        }],
                    );
                }
                Write::Rebind => {
                    let new = bound(&name, &r);
                    let old = names.insert(
                        name.clone(),
                        vec![Member {
                            r,
                            down_since: None,
                        }],
                    );
                    for m in old.into_iter().flatten() {
                        changes.push(unbound(&name, &m.r));
                        replaced.push(m);
                    }
                    changes.push(new);
                }
                Write::Add => {
                    let group = names.entry(name.clone()).or_default();
                    if group.iter().any(|m| m.same(r.owner(), r.id())) {
                        return Ok(());
                    }
                    if group.len() >= MAX_GROUP as usize {
                        return Err(DirectoryError::GroupFull {
                            name,
                            max: MAX_GROUP,
                        });
                    }
                    changes.push(bound(&name, &r));
                    group.push(Member {
                        r,
                        down_since: None,
                    });
                }
            }
            for c in changes {
                st.emit(c);
            }
        }
        // Releasing leases and local handles outside the lock.
        drop(replaced);
        if remote {
            self.ensure_sweeper();
        }
        Ok(())
    }

    fn unbind(&self, name: String) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let gone = {
            let mut st = lock(&self.state);
            let Some(gone) = st.names.remove(&name) else {
                return Err(DirectoryError::NotBound(name));
            };
            for m in &gone {
                st.emit(unbound(&name, &m.r));
            }
            gone
        };
        drop(gone);
        Ok(())
    }

    fn remove(&self, name: String, owner: NodeId, object: ObjectId) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let gone = {
            let mut st = lock(&self.state);
            let Some(group) = st.names.get_mut(&name) else {
                return Err(DirectoryError::NotBound(name));
            };
            let Some(i) = group.iter().position(|m| m.same(owner, object)) else {
                return Err(DirectoryError::NoSuchMember { name, object });
            };
            let gone = group.remove(i);
            if group.is_empty() {
                st.names.remove(&name);
            }
            st.emit(unbound(&name, &gone.r));
            gone
        };
        drop(gone);
        Ok(())
    }

    fn lookup(&self, name: String) -> Result<Vec<AnyRemote>, DirectoryError> {
        validate_name(&name)?;
        let st = lock(&self.state);
        match st.names.get(&name) {
            Some(group) => Ok(group.iter().map(|m| m.r.clone()).collect()),
            None => Err(DirectoryError::NotBound(name)),
        }
    }

    fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page, DirectoryError> {
        validate_prefix(&prefix)?;
        check_after(&after)?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let budget = page_budget(self);
        let st = lock(&self.state);
        let mut it = st
            .names
            .range::<str, _>(start(&prefix, &after))
            .take_while(|(n, _)| n.starts_with(prefix.as_str()))
            .peekable();
        let mut entries = Vec::new();
        let mut bytes = 0;
        while let Some((name, group)) = it.peek() {
            let mut ids: Vec<u64> = Vec::new();
            for m in group.iter() {
                if !ids.contains(&m.r.interface_id()) {
                    ids.push(m.r.interface_id());
                }
            }
            let interfaces: Vec<String> = ids.into_iter().map(interface_name).collect();
            let size = name.len() + 8 + interfaces.iter().map(|i| i.len() + 2).sum::<usize>();
            if entries.len() >= limit || (!entries.is_empty() && bytes + size > budget) {
                break;
            }
            bytes += size;
            entries.push(Entry {
                name: (*name).clone(),
                interfaces,
                members: group.len() as u32,
            });
            it.next();
        }
        let next = match it.peek() {
            Some(_) => entries.last().map(|e| e.name.clone()),
            None => None,
        };
        Ok(Page { entries, next })
    }

    fn find(
        &self,
        interface: u64,
        after: Option<String>,
        limit: u32,
    ) -> Result<Found, DirectoryError> {
        check_after(&after)?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let budget = page_budget(self);
        let st = lock(&self.state);
        let mut matches: Vec<(String, AnyRemote)> = Vec::new();
        let mut bytes = 0;
        let mut last: Option<&String> = None;
        let mut more = false;
        for (name, group) in st.names.range::<str, _>(start("", &after)) {
            let hits: Vec<&AnyRemote> = group
                .iter()
                .map(|m| &m.r)
                .filter(|r| is_subinterface(r.interface_id(), interface))
                .collect();
            if hits.is_empty() {
                continue;
            }
            let size: usize = hits.iter().map(|r| name.len() + 4 + ref_bytes(r)).sum();
            if !matches.is_empty() && (matches.len() + hits.len() > limit || bytes + size > budget)
            {
                more = true;
                break;
            }
            bytes += size;
            matches.extend(hits.into_iter().map(|r| (name.clone(), r.clone())));
            last = Some(name);
        }
        let next = if more { last.cloned() } else { None };
        Ok(Found { matches, next })
    }

    fn watch(&self, prefix: String) -> Result<Stream<Change>, DirectoryError> {
        validate_prefix(&prefix)?;
        let (itx, mut irx) = mpsc::channel(WATCH_BACKLOG);
        let lagged = Arc::new(AtomicBool::new(false));
        lock(&self.state).watchers.push(Watcher {
            prefix,
            tx: itx,
            lagged: lagged.clone(),
        });
        record::gauge_add(names::DIRECTORY_WATCHERS, &[], 1.0);
        let (tx, stream) = Stream::channel(64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    c = irx.recv() => match c {
                        Some(c) => {
                            if tx.send(c).await.is_err() {
                                return;
                            }
                        }
                        None => break,
                    },
                    _ = tx.closed() => return,
                }
            }
            if lagged.load(Ordering::Acquire) {
                tx.fail(RemoteError::Rejected(format!(
                    "the watcher fell more than {WATCH_BACKLOG} changes behind; watch again"
                )));
            }
        });
        Ok(stream)
    }

    fn describe(&self, name: String) -> Result<Vec<InterfaceInfo>, DirectoryError> {
        let ids: Vec<u64> = {
            let group = self.lookup(name)?;
            let mut ids = Vec::new();
            for r in &group {
                if !ids.contains(&r.interface_id()) {
                    ids.push(r.interface_id());
                }
            }
            ids
        };
        let mut out: Vec<InterfaceInfo> = Vec::new();
        for id in ids {
            for info in InterfaceInfo::with_supertraits(id) {
                if !out.iter().any(|i| i.id == info.id) {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    /// Starts the task that drops members whose owner stays unreachable
    /// (once, when the first member owned by another node arrives).
    fn ensure_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Shared> = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                let lease = {
                    let Some(shared) = weak.upgrade() else { return };
                    let Some(node) = shared.node.upgrade() else {
                        return;
                    };
                    if node.is_shut_down() {
                        return;
                    }
                    node.limits().lease_time
                };
                tokio::time::sleep((lease / 2).max(Duration::from_millis(10))).await;
                let Some(shared) = weak.upgrade() else { return };
                shared.sweep(lease);
            }
        });
    }

    /// Drops the members whose owner has been unreachable for `lease`.
    fn sweep(&self, lease: Duration) {
        let now = Instant::now();
        let mut gone: Vec<AnyRemote> = Vec::new();
        {
            let mut st = lock(&self.state);
            let mut changes = Vec::new();
            st.names.retain(|name, group| {
                group.retain_mut(|m| {
                    if m.r.is_local() || m.r.owner_connected() {
                        m.down_since = None;
                        return true;
                    }
                    let since = *m.down_since.get_or_insert(now);
                    if now.duration_since(since) < lease {
                        return true;
                    }
                    tracing::info!(
                        name = %name,
                        owner = %m.r.owner(),
                        "a binding's owner stayed unreachable for a lease time: removed"
                    );
                    changes.push(unbound(name, &m.r));
                    gone.push(m.r.clone());
                    false
                });
                !group.is_empty()
            });
            for c in changes {
                st.emit(c);
            }
        }
        drop(gone);
    }
}

#[derive(Clone, Copy)]
enum Write {
    Bind,
    Rebind,
    Add,
}

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl DirectoryApi for Embedded {
    async fn bind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        self.0.insert(name, r, Write::Bind)
    }
    async fn rebind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        self.0.insert(name, r, Write::Rebind)
    }
    async fn add(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        self.0.insert(name, r, Write::Add)
    }
    async fn unbind(&self, name: String) -> Result<(), DirectoryError> {
        self.0.unbind(name)
    }
    async fn remove(
        &self,
        name: String,
        owner: NodeId,
        object: ObjectId,
    ) -> Result<(), DirectoryError> {
        self.0.remove(name, owner, object)
    }
    async fn lookup(&self, name: String) -> Result<Vec<AnyRemote>, DirectoryError> {
        self.0.lookup(name)
    }
    async fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page, DirectoryError> {
        self.0.list(prefix, after, limit)
    }
    async fn find(
        &self,
        interface: u64,
        after: Option<String>,
        limit: u32,
    ) -> Result<Found, DirectoryError> {
        self.0.find(interface, after, limit)
    }
    async fn watch(&self, prefix: String) -> Result<Stream<Change>, DirectoryError> {
        self.0.watch(prefix)
    }
    async fn describe(&self, name: String) -> Result<Vec<InterfaceInfo>, DirectoryError> {
        self.0.describe(name)
    }
}
