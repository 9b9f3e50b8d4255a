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
//! every payload it decodes ([`decode_in`]).

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::codec;
use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::node::Node;
use crate::remote::error::RemoteError;

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

/// Where the bytes being decoded came from.
pub(crate) struct Scope {
    pub(crate) node: Option<Node>,
    pub(crate) connection: Option<Connection>,
    /// A failure a `Deserialize` impl wants reported as itself rather
    /// than as a generic decode error.
    pub(crate) failure: Option<RemoteError>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the innermost decode scope, if there is one.
pub(crate) fn with_scope<R>(f: impl FnOnce(Option<&mut Scope>) -> R) -> R {
    SCOPES.with(|s| f(s.borrow_mut().last_mut()))
}

/// Decodes `bytes` as `T`, with references in it bound to `node` and to
/// the connection they arrived on.
pub fn decode_in<T: DeserializeOwned>(
    node: Option<&Node>,
    connection: Option<&Connection>,
    bytes: &[u8],
) -> Result<T, RemoteError> {
    /// Pops the scope even if a `Deserialize` panics, so that a later
    /// decode on this thread never sees a stale scope.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPES.with(|s| s.borrow_mut().pop());
        }
    }
    SCOPES.with(|s| {
        s.borrow_mut().push(Scope {
            node: node.cloned(),
            connection: connection.cloned(),
            failure: None,
        })
    });
    let pop = Pop;
    let r = codec::decode::<T>(bytes);
    let failure = with_scope(|s| s.and_then(|s| s.failure.take()));
    drop(pop);
    match r {
        Ok(v) => Ok(v),
        Err(e) => Err(failure.unwrap_or_else(|| RemoteError::Decode(e.to_string()))),
    }
}
