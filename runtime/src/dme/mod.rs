//! Direct message exchange: processes send each other messages with no
//! middleware between them.
//!
//! - **Asymmetric** ([`Server`], [`Client`]): a server waits for requests
//!   and answers each; a client sends a request and waits for the answer.
//!   Many requests may be in flight on one connection.
//! - **Symmetric** ([`Peer`]): no process is special; every peer listens
//!   and connects, sends and receives. A super-peer relays between peers
//!   that have no direct connection.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> farcall_runtime::Result<()> {
//! use farcall_runtime::dme::{Client, Server};
//!
//! let server = Server::listen("mem://doc-echo", |n: u64| async move { n * 2 }).await?;
//! let client: Client<u64, u64> = Client::connect(server.local_addr()).await?;
//! assert_eq!(client.request(21).await?, 42);
//! # Ok(()) }
//! ```

mod client;
mod peer;
mod server;

pub use client::Client;
pub use peer::{Incoming, Peer, PeerBuilder, PeerId};
pub use server::Server;

/// Method number of a request in the `ObjectId::DME` protocol.
pub(crate) const REQUEST: u64 = 0;
