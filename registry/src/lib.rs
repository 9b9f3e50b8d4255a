//! The directory of farcall: late binding.
//!
//! A caller that does not know which object to invoke asks a directory at
//! run time, by name or by interface, and may get a different object each
//! time. Every node embeds one ([`DirectoryExt::directory`]), served to
//! its peers at the well-known [`ObjectId::DIRECTORY`](farcall_runtime::ObjectId::DIRECTORY);
//! any node's directory can be reached with [`DirectoryClient::connect`]
//! or through the `FARCALL_DIRECTORY` environment variable
//! ([`DirectoryClient::from_env`]). Through the `farcall` facade all of it
//! is `farcall::{DirectoryApi, DirectoryClient, DirectoryExt, ...}`.
//!
//! # What it does
//!
//! - **Names** are 1 to 255 bytes of `/`-separated segments of
//!   `A-Z a-z 0-9 . _ -` (`shop/cart`, `calc-2`); anything else is
//!   [`DirectoryError::InvalidName`] with the rule it breaks.
//! - **Bind, rebind, add, unbind, remove.** `bind` fails if the name is
//!   taken, `rebind` replaces, `add` adds a member to the group under a
//!   name (several objects under one name, in the order they were added),
//!   `unbind` removes the name, `remove` one member.
//! - **Lookup** by name, typed: [`DirectoryClient::lookup`] gives the first
//!   member that implements the interface asked for, `NotBound` if nothing
//!   is bound, `InterfaceMismatch` if nothing there implements it;
//!   [`DirectoryClient::lookup_all`] gives the whole group.
//! - **List** by prefix, sorted by name, in pages (never one frame over
//!   the limit, however many bindings); **find** by interface (a subtrait
//!   matches); **watch** a prefix for changes (a [`Stream`](farcall_runtime::Stream)
//!   of [`Change`]); **describe** a binding's interfaces, methods and
//!   argument types from the catalogue.
//! - **Leases.** The directory holds what is bound to it as a lease
//!   holder, so a bound object stays alive. A binding whose owner is
//!   another node is dropped within about a lease time
//!   ([`Limits::lease_time`](farcall_runtime::Limits::lease_time) of the
//!   directory's node) once that node cannot be reached (it died).
//! - **Authorisation.** Writes (bind, rebind, add, unbind, remove) are
//!   only accepted from the same host: the directory's trusted networks
//!   (by default loopback TCP, a unix socket, an in-process pipe), or the
//!   node itself. The check reads the connection's socket address and the
//!   method word only, before the payload is decoded ([`authorize_write`]);
//!   a refusal is a typed `Unauthorized` fault. Reads are open.
//!   [`set_trusted_networks`] widens or narrows "the same host";
//!   [`set_write_access`] with a [`WriteAccess`] token also admits
//!   writers from elsewhere that present it as handshake credentials.
//!
//! # Example
//!
//! ```
//! use farcall_registry::{DirectoryError, DirectoryExt, DirectoryClient};
//! use farcall_runtime::{Node, Remote, RemoteError};
//!
//! // In an application: `#[farcall::remote]`.
//! #[farcall_macros::remote(crate = "::farcall_runtime")]
//! pub trait Greeter {
//!     async fn greet(&self, name: String) -> Result<String, RemoteError>;
//! }
//!
//! struct English;
//!
//! #[farcall_macros::remote(crate = "::farcall_runtime")]
//! impl Greeter for English {
//!     async fn greet(&self, name: String) -> Result<String, RemoteError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server binds an object in its own directory.
//! let server = Node::listen("tcp://127.0.0.1:0").await?;
//! let greeter: Remote<dyn Greeter> = server.export(English);
//! server.directory().bind("greeters/en", &greeter).await?;
//!
//! // A client finds it by name, at run time.
//! let client = Node::new();
//! let dir = DirectoryClient::connect_on(&client, server.local_addr().unwrap()).await?;
//! let found: Remote<dyn Greeter> = dir.lookup("greeters/en").await?;
//! assert_eq!(found.greet("Ada".into()).await?, "hello, Ada");
//!
//! // Listing, by prefix.
//! let entries = dir.list("greeters/").await?;
//! assert_eq!(entries[0].name, "greeters/en");
//! assert_eq!(entries[0].interfaces, ["Greeter"]);
//!
//! // Nothing there, and a bad name.
//! assert!(matches!(dir.lookup::<dyn Greeter>("greeters/fr").await, Err(DirectoryError::NotBound(_))));
//! assert!(matches!(dir.unbind("no spaces").await, Err(DirectoryError::InvalidName { .. })));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod auth;
mod backend;
mod client;
mod error;
mod late;
mod name;
mod permissions;
#[allow(unreachable_pub, dead_code)]
// the generated `DirectoryApiClient` stub alias is not re-exported
mod protocol;
mod registered;
mod store;

use std::sync::Arc;

use farcall_runtime::rmi::Dispatcher;
use farcall_runtime::{Node, NodeExtension, ObjectId};

pub use auth::{
    WRITE_METHODS, WriteAccess, authorize_write, set_permissions, set_trusted_networks,
    set_write_access,
};
pub use backend::embedded::{MAX_GROUP, MAX_PAGE, WATCH_BACKLOG};
pub use client::{DIRECTORY_ENV, DirectoryClient, DirectoryExt};
pub use error::DirectoryError;
/// The options of the directory on NATS (the same type as the broker's).
pub use farcall_runtime::{NatsAuth, NatsOptions, NatsTls};
pub use name::{MAX_NAME_LEN, validate_name, validate_prefix};
pub use permissions::Permissions;
pub use protocol::{ArgInfo, Change, DirectoryApi, Entry, Found, InterfaceInfo, MethodInfo, Page};
pub use registered::ExportRegistered;
pub use store::{DirectoryStore, DirectoryStoreError, Kept, SavedBindings};

/// Serves an empty directory at [`ObjectId::DIRECTORY`] on `node`, behind
/// the write check. Every node gets one when it is built (a
/// [`NodeExtension`] registered by this crate); calling it again replaces
/// the node's directory with an empty one.
pub fn install(node: &Node) {
    let embedded: Arc<dyn DirectoryApi> = Arc::new(backend::embedded::Embedded::new(node));
    let guarded = Arc::new(auth::Guarded::new(node, Dispatcher::new(embedded)));
    node.serve_object(ObjectId::DIRECTORY, guarded);
}

inventory::submit!(NodeExtension {
    name: "directory",
    install,
});

#[cfg(test)]
mod tests {
    /// The write methods' ids, as the descriptor has them, are the
    /// FNV-1a-32 hashes of their names (what `#[remote]` computes).
    #[test]
    fn write_ids_are_name_hashes() {
        fn fnv1a32(bytes: &[u8]) -> u32 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &b in bytes {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h >> 32) as u32 ^ h as u32
        }
        let ids = crate::auth::write_method_ids();
        assert_eq!(ids.len(), crate::WRITE_METHODS.len());
        for name in crate::WRITE_METHODS {
            assert!(ids.contains(&fnv1a32(name.as_bytes())), "{name}");
        }
    }
}
