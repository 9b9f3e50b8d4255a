//! The directory on NATS (feature `nats`): a JetStream key-value bucket.
//!
//! [`DirectoryClient::connect`](crate::DirectoryClient::connect) with a
//! `nats://host:port` address gives a directory kept in the bucket
//! `farcall_directory` of that NATS server or cluster, with the same
//! operations and errors as a farcall node's directory:
//!
//! - one key per name (its `.` written `=2E`, as keys use `.` between
//!   tokens), whose value is the group bound there;
//! - `bind` creates the key (atomically: `AlreadyBound` if it exists),
//!   `rebind` puts it, `add` and `remove` update it against its revision
//!   (retried on a conflict), `unbind` deletes it;
//! - `watch` is a KV watch of the bucket, turned into [`Change`]s by
//!   comparing each group with the one before (a member rebound in place
//!   leaves and arrives again; one whose lease runs out leaves);
//! - leases are a heartbeat: every member carries the time its binder last
//!   confirmed it, the binding node re-confirms its members every third of
//!   a lease time, and a member not confirmed for a lease time
//!   ([`Limits::lease_time`](farcall_runtime::Limits::lease_time) of the
//!   reading node) is treated as gone. The binding node also holds the
//!   bound references, so bound objects stay exported while bound.
//!
//! The bucket is created with the replicas of the caller's
//! [`NatsOptions`] (`FARCALL_NATS_REPLICAS` for a `nats://` address given
//! to `connect`; 1 by default). Clocks of the nodes are compared for leases: keep them in sync
//! (NTP), as for any lease.
//!
//! What the bucket's keys and values hold is in `stored`.

use std::collections::{BTreeMap, HashMap};

use connect::connect_options;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use farcall_runtime::rmi::{AnyRemote, is_subinterface};
use farcall_runtime::{NatsOptions, Node, NodeId, ObjectId, RemoteError, Stream, WeakNode};
use futures_util::StreamExt;

use crate::DirectoryError;
use crate::backend::embedded::{MAX_GROUP, MAX_PAGE};
use crate::name::{validate_name, validate_prefix};
use crate::protocol::{Change, DirectoryApi, Entry, Found, InterfaceInfo, Page, interface_name};

mod connect;
mod stored;

use stored::{Stored, changes, decode, encode, fresh, key_of, name_of, now_ms};

/// The bucket that holds the directory.
pub(crate) const BUCKET: &str = "farcall_directory";
/// How long one call to the NATS server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of a read-modify-write before giving up on conflicts.
const CAS_ATTEMPTS: usize = 64;

fn backend(e: impl fmt::Display) -> DirectoryError {
    DirectoryError::Remote(RemoteError::Io(format!("nats: {e}")))
}

/// What the binding node keeps confirming: its members, and the
/// references that keep their objects exported.
type Held = HashMap<(String, NodeId, ObjectId), AnyRemote>;

/// A directory kept in a NATS key-value bucket.
pub(crate) struct KvDirectory {
    kv: kv::Store,
    /// The bucket's stream, read through its leader (read-your-writes).
    stream: jetstream::stream::Stream,
    js: jetstream::Context,
    node: WeakNode,
    lease: Duration,
    held: Arc<Mutex<Held>>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for KvDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvDirectory")
            .field("lease", &self.lease)
            .finish()
    }
}

impl Drop for KvDirectory {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KvDirectory {
    /// The directory in the bucket of the NATS server at `url`, used from
    /// `node` (its lease time, and the node references bind to).
    pub(crate) async fn connect(
        node: &Node,
        url: &str,
        options: &NatsOptions,
    ) -> Result<KvDirectory, DirectoryError> {
        // A call in flight when its server dies fails after this, rather
        // than after the client's default 10 s; the next call goes to
        // another server of the cluster.
        let addrs: Vec<async_nats::ServerAddr> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse().map_err(|e| {
                    DirectoryError::Config(format!("{u:?} is not a NATS server address: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let client = connect_options(options)
            .await
            .map_err(DirectoryError::Config)?
            .request_timeout(Some(CALL_TIMEOUT))
            .retain_servers_order()
            .connect(addrs)
            .await
            .map_err(|e| DirectoryError::Config(format!("cannot connect to {url}: {e}")))?;
        let mut js = jetstream::new(client);
        js.set_timeout(CALL_TIMEOUT);
        let replicas = options.replicas;
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(backend)?,
        };
        let lease = node.limits().lease_time;
        let held: Arc<Mutex<Held>> = Arc::new(Mutex::new(HashMap::new()));
        let heartbeat = tokio::spawn(beat(kv.clone(), Arc::downgrade(&held), lease));
        let stream = js
            .get_stream(format!("KV_{BUCKET}"))
            .await
            .map_err(backend)?;
        Ok(KvDirectory {
            kv,
            stream,
            js,
            node: node.downgrade(),
            lease,
            held,
            heartbeat,
        })
    }

    /// The group under `key` (fresh members only) and the key's revision.
    ///
    /// Read from the stream's leader, not with the bucket's direct get
    /// (which any replica may answer, one that lags behind the caller's own
    /// last write included).
    async fn read(&self, key: &str) -> Result<(Vec<Stored>, Option<u64>), DirectoryError> {
        let subject = format!("$KV.{BUCKET}.{key}");
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => {
                let deleted = m
                    .headers
                    .get("KV-Operation")
                    .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
                if deleted {
                    Ok((Vec::new(), Some(m.sequence)))
                } else {
                    Ok((fresh(decode(&m.payload), self.lease), Some(m.sequence)))
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::stream::LastRawMessageErrorKind::NoMessageFound
                ) =>
            {
                Ok((Vec::new(), None))
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// Reads the group under `name`, applies `f`, and writes the result
    /// against the revision read (again on a conflict). `f` returns `None`
    /// to write nothing.
    async fn modify<F>(&self, name: &str, mut f: F) -> Result<(), DirectoryError>
    where
        F: FnMut(Vec<Stored>) -> Result<Option<Vec<Stored>>, DirectoryError>,
    {
        let key = key_of(name);
        let mut last = None;
        for _ in 0..CAS_ATTEMPTS {
            let (group, rev) = self.read(&key).await?;
            let Some(new) = f(group)? else {
                return Ok(());
            };
            let r = if new.is_empty() {
                match rev {
                    Some(rev) => self
                        .kv
                        .delete_expect_revision(&key, Some(rev))
                        .await
                        .map_err(|e| e.to_string()),
                    None => Ok(()),
                }
            } else {
                let value = encode(&new)?;
                match rev {
                    Some(rev) => self
                        .kv
                        .update(&key, value, rev)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    None => self
                        .kv
                        .create(&key, value)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                }
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(backend(format!(
            "{name:?}: too many conflicting writes ({})",
            last.unwrap_or_default()
        )))
    }

    fn stored(r: &AnyRemote) -> Stored {
        Stored {
            wire: r.wire().clone(),
            beat_ms: now_ms(),
            tag: ObjectId::random().0 as u64,
        }
    }

    fn hold(&self, name: &str, r: &AnyRemote) {
        lock(&self.held).insert((name.to_owned(), r.owner(), r.id()), r.clone());
    }

    fn release(&self, name: &str, keep: &[Stored]) {
        lock(&self.held).retain(|(n, owner, object), _| {
            n != name || keep.iter().any(|m| m.same(*owner, *object))
        });
    }

    fn bind_all(&self, group: Vec<Stored>) -> Vec<AnyRemote> {
        let Some(node) = self.node.upgrade() else {
            return Vec::new();
        };
        group
            .into_iter()
            .map(|m| AnyRemote::bind(&node, m.wire, None))
            .collect()
    }

    /// Every name with its fresh group, sorted by name.
    async fn all(&self) -> Result<BTreeMap<String, Vec<Stored>>, DirectoryError> {
        let mut keys = self.kv.keys().await.map_err(backend)?;
        let mut out = BTreeMap::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(backend)?;
            let (group, _) = self.read(&k).await?;
            if !group.is_empty() {
                out.insert(name_of(&k), group);
            }
        }
        Ok(out)
    }
}

/// Re-confirms the members the binding node holds, every third of a lease.
async fn beat(kv: kv::Store, held: Weak<Mutex<Held>>, lease: Duration) {
    let period = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let Some(held) = held.upgrade() else { return };
        let mine: Vec<(String, NodeId, ObjectId)> = lock(&held).keys().cloned().collect();
        let mut names: Vec<String> = mine.iter().map(|(n, _, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let key = key_of(&name);
            let Ok(Some(e)) = kv.entry(&key).await else {
                continue;
            };
            if e.operation != kv::Operation::Put {
                continue;
            }
            let mut group = decode(&e.value);
            let now = now_ms();
            let mut touched = false;
            for m in group.iter_mut() {
                if mine.iter().any(|(n, o, id)| *n == name && m.same(*o, *id)) {
                    m.beat_ms = now;
                    touched = true;
                }
            }
            if touched && let Ok(v) = encode(&group) {
                // A conflict means someone wrote meanwhile: the next beat
                // confirms again.
                let _ = kv.update(&key, v, e.revision).await;
            }
        }
    }
}

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl DirectoryApi for KvDirectory {
    async fn bind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let m = Self::stored(&r);
        self.modify(&name, |group| {
            if !group.is_empty() {
                return Err(DirectoryError::AlreadyBound(name.clone()));
            }
            Ok(Some(vec![m.clone()]))
        })
        .await?;
        self.release(&name, std::slice::from_ref(&m));
        self.hold(&name, &r);
        Ok(())
    }

    async fn rebind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let m = Self::stored(&r);
        self.modify(&name, |_| Ok(Some(vec![m.clone()]))).await?;
        self.release(&name, std::slice::from_ref(&m));
        self.hold(&name, &r);
        Ok(())
    }

    async fn add(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let m = Self::stored(&r);
        self.modify(&name, |mut group| {
            if group.iter().any(|g| g.same(r.owner(), r.id())) {
                return Ok(None);
            }
            if group.len() >= MAX_GROUP as usize {
                return Err(DirectoryError::GroupFull {
                    name: name.clone(),
                    max: MAX_GROUP,
                });
            }
            group.push(m.clone());
            Ok(Some(group))
        })
        .await?;
        self.hold(&name, &r);
        Ok(())
    }

    async fn unbind(&self, name: String) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        self.modify(&name, |group| {
            if group.is_empty() {
                return Err(DirectoryError::NotBound(name.clone()));
            }
            Ok(Some(Vec::new()))
        })
        .await?;
        self.release(&name, &[]);
        Ok(())
    }

    async fn remove(
        &self,
        name: String,
        owner: NodeId,
        object: ObjectId,
    ) -> Result<(), DirectoryError> {
        validate_name(&name)?;
        let mut left = Vec::new();
        self.modify(&name, |mut group| {
            if group.is_empty() {
                return Err(DirectoryError::NotBound(name.clone()));
            }
            let Some(i) = group.iter().position(|m| m.same(owner, object)) else {
                return Err(DirectoryError::NoSuchMember {
                    name: name.clone(),
                    object,
                });
            };
            group.remove(i);
            left = group.clone();
            Ok(Some(group))
        })
        .await?;
        self.release(&name, &left);
        Ok(())
    }

    async fn lookup(&self, name: String) -> Result<Vec<AnyRemote>, DirectoryError> {
        validate_name(&name)?;
        let (group, _) = self.read(&key_of(&name)).await?;
        if group.is_empty() {
            return Err(DirectoryError::NotBound(name));
        }
        Ok(self.bind_all(group))
    }

    async fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page, DirectoryError> {
        validate_prefix(&prefix)?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let all = self.all().await?;
        let mut it = all
            .iter()
            .filter(|(n, _)| n.starts_with(prefix.as_str()))
            .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
            .peekable();
        let mut entries = Vec::new();
        while entries.len() < limit {
            let Some((name, group)) = it.next() else {
                break;
            };
            let mut ids: Vec<u64> = Vec::new();
            for m in group {
                if !ids.contains(&m.wire.interface) {
                    ids.push(m.wire.interface);
                }
            }
            entries.push(Entry {
                name: name.clone(),
                interfaces: ids.into_iter().map(interface_name).collect(),
                members: group.len() as u32,
            });
        }
        let next = it
            .peek()
            .and_then(|_| entries.last().map(|e| e.name.clone()));
        Ok(Page { entries, next })
    }

    async fn find(
        &self,
        interface: u64,
        after: Option<String>,
        limit: u32,
    ) -> Result<Found, DirectoryError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let all = self.all().await?;
        let mut matches = Vec::new();
        let mut last: Option<String> = None;
        let mut more = false;
        for (name, group) in all
            .into_iter()
            .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
        {
            let hits: Vec<Stored> = group
                .into_iter()
                .filter(|m| is_subinterface(m.wire.interface, interface))
                .collect();
            if hits.is_empty() {
                continue;
            }
            if !matches.is_empty() && matches.len() + hits.len() > limit {
                more = true;
                break;
            }
            for r in self.bind_all(hits) {
                matches.push((name.clone(), r));
            }
            last = Some(name);
        }
        Ok(Found {
            matches,
            next: if more { last } else { None },
        })
    }

    async fn watch(&self, prefix: String) -> Result<Stream<Change>, DirectoryError> {
        validate_prefix(&prefix)?;
        // Where the bucket is now, then what it holds, then every change
        // after that point: replayed changes compare equal and vanish.
        let last = {
            let mut s = self
                .js
                .get_stream(format!("KV_{BUCKET}"))
                .await
                .map_err(backend)?;
            s.info().await.map_err(backend)?.state.last_sequence
        };
        let mut state: HashMap<String, Vec<Stored>> = HashMap::new();
        for (name, group) in self.all().await? {
            if name.starts_with(&prefix) {
                state.insert(name, group);
            }
        }
        let mut watch = self
            .kv
            .watch_all_from_revision(last + 1)
            .await
            .map_err(backend)?;
        let (tx, stream) = Stream::channel(64);
        let lease = self.lease;
        tokio::spawn(async move {
            // Members whose binder stopped confirming them leave when their
            // lease runs out, without a write to the bucket.
            let mut expiry = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
            expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let e = tokio::select! {
                    e = watch.next() => e,
                    _ = tx.closed() => return,
                    _ = expiry.tick() => {
                        let mut out = Vec::new();
                        state.retain(|name, group| {
                            let live = fresh(group.clone(), lease);
                            changes(name, group, &live, &mut out);
                            *group = live;
                            !group.is_empty()
                        });
                        for c in out {
                            if tx.send(c).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                };
                let Some(Ok(e)) = e else {
                    tx.fail(RemoteError::Disconnected("the NATS watch ended".into()));
                    return;
                };
                let name = name_of(&e.key);
                if !name.starts_with(&prefix) {
                    continue;
                }
                let new = if e.operation == kv::Operation::Put {
                    fresh(decode(&e.value), lease)
                } else {
                    Vec::new()
                };
                let old = state.remove(&name).unwrap_or_default();
                let mut out = Vec::new();
                changes(&name, &old, &new, &mut out);
                if !new.is_empty() {
                    state.insert(name, new);
                }
                for c in out {
                    if tx.send(c).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(stream)
    }

    async fn describe(&self, name: String) -> Result<Vec<InterfaceInfo>, DirectoryError> {
        validate_name(&name)?;
        let (group, _) = self.read(&key_of(&name)).await?;
        if group.is_empty() {
            return Err(DirectoryError::NotBound(name));
        }
        let mut out: Vec<InterfaceInfo> = Vec::new();
        for m in group {
            for info in InterfaceInfo::with_supertraits(m.wire.interface) {
                if !out.iter().any(|i| i.id == info.id) {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }
}
