//! Identities: nodes and objects are named by random 128-bit ids.

use std::fmt;
use std::str::FromStr;

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

impl NodeId {
    /// The first 8 of its 32 hex digits: enough to tell nodes apart in a
    /// log line or a table, not to name one (two nodes may share it).
    pub fn short(&self) -> String {
        format!("{:08x}", (self.0 >> 96) as u32)
    }
}

/// The full id: 32 lowercase hex digits, the form [`FromStr`] reads.
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Reads the form [`Display`](fmt::Display) prints: 32 hex digits.
impl FromStr for NodeId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_hex_id(s, "node").map(NodeId)
    }
}

/// Reads the form [`Display`](fmt::Display) prints: 32 hex digits.
impl FromStr for ObjectId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, ParseIdError> {
        parse_hex_id(s, "object").map(ObjectId)
    }
}

/// A node or object id that did not parse: ids are 32 hex digits, as
/// their `Display` prints them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {kind} id: an id is 32 hex digits, as farcall prints it")]
pub struct ParseIdError {
    text: String,
    kind: &'static str,
}

fn parse_hex_id(s: &str, kind: &'static str) -> Result<u128, ParseIdError> {
    let bad = || ParseIdError {
        text: s.to_owned(),
        kind,
    };
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u128::from_str_radix(s, 16).map_err(|_| bad())
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
    /// The directory every node embeds (late binding; see farcall-registry).
    pub const DIRECTORY: ObjectId = ObjectId(3);
    /// The broker a standalone `farcall broker serve` runs (see
    /// farcall-broker).
    pub const BROKER: ObjectId = ObjectId(4);

    /// A fresh random id, outside the well-known range.
    pub fn random() -> Self {
        loop {
            let v = random_u128();
            if v >= 1 << 32 {
                return ObjectId(v);
            }
        }
    }

    /// The id of the service published under `name` (see
    /// `Node::serve`): the same on every node, derived from the name.
    pub fn for_service(name: &str) -> Self {
        let lo = fnv1a64(0xcbf2_9ce4_8422_2325, name.as_bytes());
        let hi = fnv1a64(0x8422_2325_cbf2_9ce4, name.as_bytes()) | 1 << 63;
        ObjectId((hi as u128) << 64 | lo as u128)
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

/// FNV-1a, 64 bits: a stable hash for names (not for secrets).
pub const fn fnv1a64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_what_they_print() {
        for _ in 0..100 {
            let n = NodeId::random();
            assert_eq!(n.to_string().parse::<NodeId>(), Ok(n));
            assert_eq!(n.to_string().len(), 32);
            assert!(n.to_string().starts_with(&n.short()));
            let o = ObjectId::random();
            assert_eq!(o.to_string().parse::<ObjectId>(), Ok(o));
        }
        let small = NodeId(7);
        assert_eq!(small.to_string(), format!("{:032x}", 7));
        assert_eq!(small.to_string().parse::<NodeId>(), Ok(small));
    }

    #[test]
    fn a_short_or_malformed_id_is_refused_with_a_sentence() {
        let short = NodeId::random().short();
        let e = short.parse::<NodeId>().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("`{short}` is not a node id: an id is 32 hex digits, as farcall prints it")
        );
        for bad in [
            "",
            "+0000000000000000000000000000000",
            "g0000000000000000000000000000000",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad:?}");
        }
    }
}
