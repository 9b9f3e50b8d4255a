//! Identities: nodes and objects are named by random 128-bit ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fills a buffer from the operating system's secure random source.
pub(crate) fn random_u128() -> u128 {
    let mut b = [0u8; 16];
    // The OS random source failing is not recoverable in any useful way.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    u128::from_le_bytes(b)
}

/// The identity of a node (a participant: a process may run several).
///
/// Chosen at random when the node starts and sent in the handshake; in
/// symmetric exchange ([`crate::dme::Peer`]) it is the peer's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u128);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        NodeId(random_u128())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form: the first 8 hex digits identify a node in logs.
        write!(f, "{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:032x})", self.0)
    }
}

/// The identity of an object that a node serves.
///
/// Ids below 2^32 are well known (the same on every node: the message
/// handler of direct exchange, the peer relay, later the directory);
/// exported objects get random, unguessable ids, so holding an id is the
/// authority to call the object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub u128);

impl ObjectId {
    /// The handler of `dme::Server` / `dme::Client` request-response traffic.
    pub const DME: ObjectId = ObjectId(1);
    /// The symmetric-exchange endpoint of `dme::Peer` (delivery and relay).
    pub const PEER: ObjectId = ObjectId(2);

    /// A fresh random id, outside the well-known range.
    pub fn random() -> Self {
        loop {
            let v = random_u128();
            if v >= 1 << 32 {
                return ObjectId(v);
            }
        }
    }

    /// Whether this id is in the well-known range.
    pub fn is_well_known(self) -> bool {
        self.0 < 1 << 32
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({:032x})", self.0)
    }
}
