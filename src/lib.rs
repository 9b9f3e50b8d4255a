//! farcall: remote procedures, remote objects and messaging for Rust.
//!
//! One toolkit for the five paradigms of distributed computing:
//!
//! | paradigm | where | status |
//! | --- | --- | --- |
//! | direct message exchange, asymmetric | [`dme::Server`], [`dme::Client`] | built |
//! | direct message exchange, symmetric | [`dme::Peer`] | built |
//! | remote procedure call | [`#[farcall::remote]`](macro@remote) traits served by name: [`Node::serve`], [`Node::connect_service`] | built |
//! | RMI, early binding | [`Remote<dyn Trait>`](Remote): [`Node::export`], [`Node::connect`] | built: references as arguments and results, callbacks, third-party references, `upcast`/`narrow`, reconnect, leases ([`Limits::lease_time`]), [`Stream`]s as results and arguments |
//! | RMI, late binding | [`DirectoryApi`], [`DirectoryClient`] ([`DirectoryExt::directory`] on every node), [`LateBound`] | built: an embedded directory (bind, groups, typed lookup, paged list, find by interface, watch, describe, leased bindings, writes from the same host or with a token), `LateBound<dyn Trait>` via `DirectoryClient::late_bound` |
//! | mediated message exchange | [`mme::Broker`], [`mme::Queue`], [`mme::Topic`] | built: an embedded or standalone broker (`farcall broker serve`), queues with ack/nack/ack-wait/dead-letter and durability on disk, topics with `*`/`>` wildcards, mediated RPC ([`mme::Broker::serve`], [`mme::Broker::stub`]); the same API on NATS with a `nats://` address (feature `nats`, on by default) |
//!
//! # Remote procedures and objects
//!
//! `#[farcall::remote]` turns a trait into a remote interface. An
//! implementation is an ordinary type with the same attribute on its
//! `impl`. A node serves it under a name ([`Node::serve`], plain RPC) or
//! exports it under an unguessable id ([`Node::export`], early binding);
//! a caller gets a [`Remote<dyn Trait>`](Remote) that dereferences to the
//! trait, so calling it reads like a local call.
//!
//! ```
//! use std::time::Duration;
//! use farcall::{Node, Remote, RemoteError};
//!
//! #[farcall::remote]
//! pub trait Greeter {
//!     /// Greets someone.
//!     async fn greet(&self, name: String) -> Result<String, RemoteError>;
//!     /// Fire and forget: no reply travels back.
//!     #[remote(oneway)]
//!     async fn wave(&self) -> Result<(), RemoteError>;
//! }
//!
//! struct English;
//!
//! #[farcall::remote]
//! impl Greeter for English {
//!     async fn greet(&self, name: String) -> Result<String, RemoteError> {
//!         Ok(format!("hello, {name}"))
//!     }
//!     async fn wave(&self) -> Result<(), RemoteError> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Node::listen("tcp://127.0.0.1:0").await?;
//! let _: Remote<dyn Greeter> = server.serve("greeter", English);
//!
//! let client = Node::new();
//! let greeter: Remote<dyn Greeter> = client
//!     .connect_service(server.local_addr().unwrap(), "greeter")
//!     .await?;
//! assert_eq!(greeter.greet("Ada".into()).await?, "hello, Ada");
//! greeter.with_deadline(Duration::from_secs(1)).wave().await?;
//! # Ok(()) }
//! ```
//!
//! ## The contract of `#[remote]`
//!
//! - Methods are `async fn(&self, arg: Type, ...) -> Result<T, E>`: every
//!   argument is owned and serde-serialisable (no references, no
//!   `impl Trait`), `T` and `E` are serde types, and
//!   `E: From<RemoteError>` so that a failed call (deadline, disconnection,
//!   ...) reaches the caller as the method's own error. [`RemoteError`]
//!   itself may be `E`. Anything else is a compile error pointing at the
//!   offending tokens.
//! - Accepted: type parameters on the trait (`trait Store<V>`), remote
//!   supertraits (`trait Circle: Shape`; their methods are callable through
//!   the subtrait), doc comments, `#[cfg]` on methods, default bodies.
//! - `#[remote(oneway)]` on a method returning `Result<(), E>`: no reply is
//!   sent; the call returns once the message is queued.
//!   `#[remote(idempotent)]` marks a method as safe to retry.
//! - Generated: the trait (its futures boxed, so `dyn Trait` works and an
//!   `Arc<dyn Trait>` may hold a stub or a local object), `TraitClient`
//!   (the stub), the dispatcher, and an interface descriptor in the
//!   link-time [`remote::catalogue`]. Generated code names only `::core`,
//!   `::std` and `::farcall::__private`; `#[remote(crate = "path")]`
//!   points it elsewhere. The interface is named (and its id hashed) after
//!   the trait; `#[remote(name = "Interface")]` names it otherwise, so a
//!   trait can be renamed in Rust and stay the same interface on the wire.
//! - Versions: a method's id is a hash of its name and it carries a hash of
//!   its signature. Adding or reordering methods breaks no client; calling
//!   a method the server lacks is [`RemoteError::NoSuchMethod`]; the same
//!   name with another signature is [`RemoteError::InterfaceMismatch`],
//!   never a wrong decode.
//! - Deadlines: every call has one (30 s unless the node's
//!   [`Limits::default_deadline`] says otherwise);
//!   [`Remote::with_deadline`] sets another for a reference's calls. When it
//!   passes the caller gets `DeadlineExceeded` and the server drops the
//!   handler's future; dropping a call's future cancels it on the server.
//! - Inside a method, [`CallContext::current`] tells who called and until
//!   when they wait.
//! - Calls to an object of the calling node run directly, without encoding
//!   or socket ([`Remote::is_local`]). One difference remains: a panic in a
//!   local call unwinds into the caller, where a remote one is
//!   `RemoteError::Panicked`.
//!
//! # Direct message exchange
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> farcall::Result<()> {
//! use farcall::dme::{Client, Server};
//!
//! let server = Server::bind("tcp://127.0.0.1:0", |s: String| async move { s.to_uppercase() }).await?;
//! let client = Client::<String, String>::connect(server.local_addr()).await?;
//! assert_eq!(client.request("hi".into()).await?, "HI");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub use farcall_macros::{export, remote};
pub use farcall_runtime::{
    Address, AddressError, CallContext, Connection, Error, Fault, IntoAddress, LateBound, Limits,
    Node, NodeBuilder, NodeId, ObjectId, Policy, Remote, RemoteError, Resolve, Result, Stream,
    StreamSender, dme,
};

pub use farcall_registry::{
    Change, DirectoryApi, DirectoryClient, DirectoryError, DirectoryExt, Entry, ExportRegistered,
    InterfaceInfo, Page,
};

#[doc(hidden)]
pub use farcall_runtime::__private;

// The README's Rust samples compile and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Interfaces, stubs and the catalogue of remote traits.
pub mod remote {
    pub use farcall_runtime::rmi::{
        AnyRemote, ArgDescriptor, Candidates, Carrier, CarrierFuture, Coerce, ExportRegistration,
        Interface, InterfaceDescriptor, MethodDescriptor, Stub, StubCore, Upcast, WireRef,
        catalogue, decode_in, find_interface, is_subinterface, registered_exports,
    };
}

/// The directory and late binding: everything of `farcall-registry`.
pub mod registry {
    pub use farcall_registry::*;
}

/// Mediated message exchange: a broker with queues (point to point) and
/// topics (publish/subscribe), and mediated RPC. Everything of
/// `farcall-broker`.
pub mod mme {
    pub use farcall_broker::*;
}

/// Lower layers, for those who build on the runtime directly.
pub mod runtime {
    pub use farcall_runtime::{codec, connection, service, transport, wire};
}
