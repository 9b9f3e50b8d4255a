//! What the bucket holds: one key per name, whose value is the group
//! bound there (each member with the time its binder last confirmed it),
//! and the changes between two values of a key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use farcall_runtime::rmi::WireRef;
use farcall_runtime::{NodeId, ObjectId, RemoteError};
use serde::{Deserialize, Serialize};

use crate::DirectoryError;
use crate::protocol::Change;

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn key_of(name: &str) -> String {
    name.replace('.', "=2E")
}

pub(super) fn name_of(key: &str) -> String {
    key.replace("=2E", ".")
}

/// One member as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) wire: WireRef,
    /// When its binder last confirmed it (ms since the Unix epoch).
    pub(super) beat_ms: u64,
    /// Which write (bind, rebind or add) put it there: watchers see an
    /// object rebound in place leave and arrive again, as on a node's
    /// directory.
    pub(super) tag: u64,
}

impl Stored {
    pub(super) fn same(&self, owner: NodeId, object: ObjectId) -> bool {
        self.wire.owner == owner && self.wire.object == object
    }

    /// The same member put there by the same write.
    fn same_binding(&self, other: &Stored) -> bool {
        self.same(other.wire.owner, other.wire.object) && self.tag == other.tag
    }
}

/// The members confirmed within `lease`.
pub(super) fn fresh(group: Vec<Stored>, lease: Duration) -> Vec<Stored> {
    let floor = now_ms().saturating_sub(lease.as_millis() as u64);
    group.into_iter().filter(|m| m.beat_ms >= floor).collect()
}

pub(super) fn decode(value: &[u8]) -> Vec<Stored> {
    farcall_runtime::codec::decode(value).unwrap_or_default()
}

pub(super) fn encode(group: &[Stored]) -> Result<Bytes, DirectoryError> {
    postcard::to_stdvec(group)
        .map(Bytes::from)
        .map_err(|e| DirectoryError::Remote(RemoteError::Encode(e.to_string())))
}

pub(super) fn changes(name: &str, old: &[Stored], new: &[Stored], out: &mut Vec<Change>) {
    for m in old {
        if !new.iter().any(|n| n.same_binding(m)) {
            out.push(Change::Unbound {
                name: name.to_owned(),
                owner: m.wire.owner,
                object: m.wire.object,
            });
        }
    }
    for m in new {
        if !old.iter().any(|o| o.same_binding(m)) {
            out.push(Change::Bound {
                name: name.to_owned(),
                owner: m.wire.owner,
                object: m.wire.object,
                interface: m.wire.interface,
            });
        }
    }
}
