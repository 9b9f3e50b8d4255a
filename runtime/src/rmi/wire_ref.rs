//! References on the wire: what a `Remote<dyn Trait>` becomes when it is
//! an argument or a result, and how the receiver turns it back into a
//! working reference.
//!
//! Decoding a reference needs to know where the bytes came from: a
//! reference to an object of the node at the other end of the connection
//! must use that same connection (so callbacks work where only one side can
//! dial), a reference to one of our own objects must find it in our table,
//! and a third-party reference dials its owner. serde's `Deserialize` has
//! no such context, so the runtime sets it in a thread-local scope around
//! every payload it decodes ([`decode_in`](crate::rmi::decode_in), in
//! `rmi/scope.rs`).

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::id::{NodeId, ObjectId};

/// A reference as it travels: who owns the object, where to reach the
/// owner, which object, and which interface it really implements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRef {
    /// The node that owns the object.
    pub owner: NodeId,
    /// Addresses the owner listens on (empty for a node that only dials:
    /// then only the connection the reference came on reaches it).
    pub addrs: Vec<Address>,
    /// The object.
    pub object: ObjectId,
    /// The id of the object's most derived remote interface.
    pub interface: u64,
}
