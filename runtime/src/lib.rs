//! The message-exchange runtime under [farcall](https://docs.rs/farcall).
//!
//! Everything in farcall rides on this crate: the wire protocol
//! ([`wire`]), the transports (`tcp://`, `unix://`, in-process `mem://`),
//! full-duplex multiplexed [`Connection`]s between [`Node`]s, and direct
//! message exchange for applications ([`dme`]).
//!
//! # A first exchange
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> farcall_runtime::Result<()> {
//! use farcall_runtime::dme::{Client, Server};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! enum Op { Add(i64, i64), Neg(i64) }
//!
//! let server = Server::listen("tcp://127.0.0.1:0", |op: Op| async move {
//!     match op { Op::Add(a, b) => a + b, Op::Neg(a) => -a }
//! })
//! .await?;
//! let client = Client::<Op, i64>::connect(server.local_addr()).await?;
//! assert_eq!(client.request(Op::Add(2, 3)).await?, 5);
//! assert_eq!(client.request(Op::Neg(4)).await?, -4);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! Every limit that protects a node from its peers lives in [`Limits`]:
//! frame length, requests in flight, handshake, idle and keepalive
//! time-outs. `docs/PROTOCOL.md` describes what crosses the wire.

#![warn(missing_docs)]

pub mod address;
pub mod auth;
pub mod codec;
pub mod config;
pub mod connection;
pub mod dme;
pub mod error;
pub mod id;
pub mod metadata;
pub mod node;
pub mod observe;
#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
mod private;
pub mod rmi;
pub mod schema;
pub mod service;
mod sync;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod wire;

pub use address::{Address, AddressError};
pub use config::{Limits, NatsAuth, NatsOptions, NatsTls, REPLICAS_ENV};
pub use connection::Connection;
pub use error::{Error, Result};
pub use id::{NodeId, ObjectId, ParseIdError};
pub use metadata::{Metadata, MetadataError, MetadataLimits};
pub use node::{Extensions, IntoAddress, Node, NodeBuilder, NodeExtension, WeakNode};
pub use rmi::{AnyRemote, LateBound, Policy, Remote, RemoteError, Resolve, Stream, StreamSender};
pub use schema::Schema;
pub use service::{CallContext, Outcome, OutcomeFuture, Service};
pub use wire::Fault;
