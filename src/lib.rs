//! farcall: remote procedures, remote objects and messaging for Rust.
//!
//! One toolkit for the five paradigms of distributed computing:
//!
//! | paradigm | where | status |
//! | --- | --- | --- |
//! | direct message exchange, asymmetric | [`dme::Server`], [`dme::Client`] | built |
//! | direct message exchange, symmetric | [`dme::Peer`] | built |
//! | remote procedure call | [`#[farcall::remote]`](macro@remote) traits served by name: [`Node::serve`], [`Node::connect_service`] | built |
//! | RMI, early binding | [`Remote<dyn Trait>`](Remote): [`Node::export`], [`Node::connect`] | built: references as arguments and results, callbacks, third-party references, `upcast`/`narrow`, reconnect, leases ([`Limits::lease_time`](node::Limits::lease_time)), [`Stream`]s as results and arguments |
//! | RMI, late binding | [`directory::DirectoryClient`] ([`directory::DirectoryExt::directory`] on every node), [`directory::LateBound`] | built: an embedded directory (bind, groups, typed lookup, paged list, find by interface, watch, describe, leased bindings, writes from the same host or with a token), `LateBound<dyn Trait>` via `DirectoryClient::late_bound` |
//! | mediated message exchange | [`mme::Broker`], [`mme::Queue`], [`mme::Topic`] | built: an embedded or standalone broker (`farcall broker serve`), queues with ack/nack/ack-wait/dead-letter and durability on disk, topics with `*`/`>` wildcards, mediated RPC ([`mme::Broker::serve`], [`mme::Broker::stub`]); the same API on NATS with a `nats://` address (feature `nats`, off by default) |
//!
//! The modules follow the paradigms: [`dme`], [`rpc`], [`rmi`],
//! [`directory`] and [`mme`]; [`node`] holds what they share (addresses,
//! limits, ids, connections). The root has what every program names:
//! [`Node`], [`Remote`], [`Stream`], [`RemoteError`], [`Error`], the
//! [`remote`](macro@remote) attribute and the [`Schema`](trait@Schema)
//! its argument types derive ([`schema`]).
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
//! The whole contract of the attribute (what methods may look like, every
//! option, what is generated, the errors) is on [`remote`](macro@remote).
//!
//! # Direct message exchange
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> farcall::Result<()> {
//! use farcall::dme::{Client, Server};
//!
//! let server = Server::listen("tcp://127.0.0.1:0", |s: String| async move { s.to_uppercase() }).await?;
//! let client = Client::<String, String>::connect(server.local_addr()).await?;
//! assert_eq!(client.request("hi".into()).await?, "HI");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

/// Turns a trait into a remote interface, or an `impl` of one into an
/// implementation that can be served: see the crate's guide for a whole
/// program, and the rpc guide (`docs/guide/rpc.md`) for the details.
///
/// ```
/// use farcall::{Node, Remote, RemoteError};
///
/// #[farcall::remote]
/// pub trait Counter {
///     /// Adds `n`; the new total.
///     async fn add(&self, n: u64) -> Result<u64, RemoteError>;
///     /// Safe to run twice: a late-bound stub may retry it elsewhere.
///     #[remote(idempotent)]
///     async fn total(&self) -> Result<u64, RemoteError>;
///     /// For administrators (read by `farcall::auth::AccessRules`).
///     #[remote(role = "admin")]
///     async fn reset(&self) -> Result<(), RemoteError>;
/// }
///
/// struct Total(std::sync::atomic::AtomicU64);
///
/// #[farcall::remote]
/// impl Counter for Total {
///     async fn add(&self, n: u64) -> Result<u64, RemoteError> {
///         Ok(self.0.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n)
///     }
///     async fn total(&self) -> Result<u64, RemoteError> {
///         Ok(self.0.load(std::sync::atomic::Ordering::SeqCst))
///     }
///     async fn reset(&self) -> Result<(), RemoteError> {
///         self.0.store(0, std::sync::atomic::Ordering::SeqCst);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Node::listen("tcp://127.0.0.1:0").await?;
/// let _: Remote<dyn Counter> = server.serve("counter", Total(Default::default()));
/// let client = Node::new();
/// let counter: Remote<dyn Counter> = client
///     .connect_service(server.local_addr().unwrap(), "counter")
///     .await?;
/// assert_eq!(counter.add(2).await?, 2);
/// assert_eq!(counter.total().await?, 2);
/// # Ok(()) }
/// ```
///
/// # The contract
///
/// - Methods are `async fn(&self, arg: Type, ...) -> Result<T, E>`: every
///   argument is owned and serde-serialisable (no references, no
///   `impl Trait`), `T` and `E` are serde types, and
///   `E: From<RemoteError>` so that a failed call (deadline, disconnection,
///   ...) reaches the caller as the method's own error. [`RemoteError`]
///   itself may be `E`. Anything else is a compile error pointing at the
///   offending tokens.
/// - Accepted: type parameters on the trait (`trait Store<V>`), remote
///   supertraits (`trait Circle: Shape`; their methods are callable through
///   the subtrait), doc comments, `#[cfg]` on methods, default bodies.
/// - `#[remote(oneway)]` on a method returning `Result<(), E>`: no reply is
///   sent; the call returns once the message is queued.
///   `#[remote(idempotent)]` marks a method as safe to retry;
///   `#[remote(role = "admin")]` (any number) gives it roles that
///   authorization policies read ([`auth::AccessRules`]: `@admin`).
/// - Generated: the trait (its futures boxed, so `dyn Trait` works and an
///   `Arc<dyn Trait>` may hold a stub or a local object), `TraitClient`
///   (the stub), the dispatcher, and an interface descriptor in the
///   link-time [`rmi::catalogue`]. Generated code names only `::core`,
///   `::std` and `::farcall::__private`; `#[remote(crate = "path")]`
///   points it elsewhere. The interface is named (and its id hashed) after
///   the trait; `#[remote(name = "Interface")]` names it otherwise, so a
///   trait can be renamed in Rust and stay the same interface on the wire.
/// - Versions: a method's id is a hash of its name and it carries a hash of
///   its signature. Adding or reordering methods breaks no client; calling
///   a method the server lacks is [`RemoteError::NoSuchMethod`]; the same
///   name with another signature is [`RemoteError::InterfaceMismatch`],
///   never a wrong decode.
/// - Deadlines: every call has one (30 s unless the node's
///   [`Limits::default_deadline`](node::Limits::default_deadline) says otherwise);
///   [`Remote::with_deadline`] sets another for a reference's calls. When it
///   passes the caller gets `DeadlineExceeded` and the server drops the
///   handler's future; dropping a call's future cancels it on the server.
/// - Inside a method, [`CallContext::current`](rpc::CallContext::current) tells who called and until
///   when they wait.
/// - Calls to an object of the calling node run directly, without encoding
///   or socket ([`Remote::is_local`]). One difference remains: a panic in a
///   local call unwinds into the caller, where a remote one is
///   `RemoteError::Panicked`.
///
pub use farcall_macros::remote;
pub use farcall_macros::{Schema, export};
pub use farcall_runtime::{Error, Node, Remote, RemoteError, Result, Schema, Stream};

/// The node every program starts from: its addresses, limits, ids and
/// connections.
///
/// A [`Node`] listens ([`Node::listen`]) and dials; what it serves and
/// calls goes through the paradigm modules. [`Limits`](node::Limits)
/// bound what a peer may cost it (frame size, calls in flight, deadlines,
/// lease time).
///
/// ```
/// use farcall::node::{Address, Limits};
///
/// let addr: Address = "tcp://127.0.0.1:7400".parse().unwrap();
/// let mut limits = Limits::default();
/// limits.max_in_flight = 64;
/// let node = farcall::Node::builder().limits(limits).build();
/// # let _ = (addr, node);
/// ```
pub mod node {
    pub use farcall_runtime::{
        Address, AddressError, Connection, Extensions, IntoAddress, Limits, NodeBuilder, NodeId,
        ParseIdError, WeakNode,
    };
}

/// Transport security: TLS and mutual TLS on `tls://host:port` (the
/// `tls` feature, on by default). A [`TlsConfig`](tls::TlsConfig) given to
/// [`NodeBuilder::tls`](node::NodeBuilder::tls) holds the node's
/// certificate and key and the roots it trusts; handlers learn who called
/// from [`CallContext::peer_identity`](rpc::CallContext::peer_identity).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use farcall::tls::{ClientAuth, TlsConfig};
///
/// let tls = TlsConfig::builder()
///     .identity_files("server.crt", "server.key")
///     .trust_file("ca.crt")
///     .client_auth(ClientAuth::Required)
///     .build()?;
/// let node = farcall::Node::builder().tls(tls).listen("tls://127.0.0.1:7443").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub mod tls {
    pub use farcall_runtime::tls::*;
}

/// Who may connect and who may call what: an
/// [`Authenticator`](auth::Authenticator) names each dialer a
/// [`Principal`](auth::Principal) from its token or its certificate
/// ([`Tokens`](auth::Tokens), [`CertificateNames`](auth::CertificateNames)),
/// an [`Authorizer`](auth::Authorizer) decides each call before its
/// arguments are decoded ([`AccessRules`](auth::AccessRules)).
///
/// ```
/// use farcall::auth::{AccessRules, Tokens};
///
/// let node = farcall::Node::builder()
///     .authenticator(Tokens::new().allow("s3cret", "alice"))
///     .authorizer(AccessRules::new().allow("alice", "Calculator", "*"))
///     .build();
/// # drop(node);
/// ```
pub mod auth {
    pub use farcall_runtime::auth::*;
}

/// Direct message exchange: typed messages between two processes, with
/// no broker in between, client/server ([`Server`](dme::Server),
/// [`Client`](dme::Client)) or peer to peer ([`Peer`](dme::Peer)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> farcall::Result<()> {
/// use farcall::dme::{Client, Server};
///
/// let server = Server::listen("tcp://127.0.0.1:0", |s: String| async move { s.len() }).await?;
/// let client = Client::<String, usize>::connect(server.local_addr()).await?;
/// assert_eq!(client.request("four".into()).await?, 4);
/// # Ok(()) }
/// ```
pub mod dme {
    pub use farcall_runtime::dme::*;
}

/// Remote procedure calls: a `#[farcall::remote]` trait served under a
/// name ([`Node::serve`](crate::Node::serve)) and called through
/// [`Node::connect_service`](crate::Node::connect_service); inside a
/// handler, [`CallContext`](rpc::CallContext) tells who called and until
/// when they wait. A failed call is a [`RemoteError`];
/// [`Fault`](rpc::Fault) is the form it travels in.
pub mod rpc {
    pub use farcall_runtime::{CallContext, Fault};
}

/// What travels beside a call, and what a running system shows of itself:
/// call [`Metadata`](observe::Metadata) (set per stub with
/// `stub.with_metadata(..)`, read from
/// [`CallContext::metadata`](rpc::CallContext::metadata), passed on to
/// nested calls with [`propagate`](observe::propagate), deadlines too); a
/// span per call and metrics (feature `telemetry`, on by default; the
/// metric [`names`](observe::names)); W3C trace context across processes
/// (feature `otel`); [`Interceptor`](observe::Interceptor)s around the
/// calls a node serves and makes. The guide's chapter
/// `docs/guide/observability.md` shows them together.
///
/// ```
/// use farcall::observe::Metadata;
///
/// let m = Metadata::new().with("tenant", "acme");
/// assert_eq!(m.get_str("tenant"), Some("acme"));
/// ```
pub mod observe {
    pub use farcall_runtime::observe::{CallInfo, InterceptFuture, Interceptor, Side, names};
    pub use farcall_runtime::service::propagate;
    pub use farcall_runtime::{Metadata, MetadataError, MetadataLimits};
}

/// Remote objects, early binding: [`Remote<dyn Trait>`](crate::Remote)
/// references that the caller names by node and [`ObjectId`](rmi::ObjectId),
/// passed as arguments and results, narrowed and upcast; untyped
/// references ([`AnyRemote`](rmi::AnyRemote)); streams; and the link-time
/// catalogue of remote interfaces ([`catalogue`](rmi::catalogue)).
pub mod rmi {
    pub use farcall_registry::ExportRegistered;
    pub use farcall_runtime::ObjectId;
    pub use farcall_runtime::rmi::{
        AnyRemote, ArgDescriptor, ExportRegistration, Interface, InterfaceDescriptor,
        MethodDescriptor, StreamSender, Stub, catalogue, find_interface, is_subinterface,
        registered_exports,
    };
}

/// The structure of the types that cross the wire.
///
/// Every argument, result and error type of a `#[farcall::remote]` method
/// implements [`Schema`](trait@Schema): farcall does for the standard
/// types, `#[derive(farcall::Schema)]` beside serde's derives for yours.
/// The structure (field names and order, field types, variants and their
/// order, recursively) is hashed into the word every call carries, so a
/// client and a server built from different versions of a type get
/// [`RemoteError::InterfaceMismatch`] naming the method and the type, before
/// anything is decoded. The
/// derive reads serde's attributes; [`Types`](schema::Types) and
/// [`Shape`](schema::Shape) are for a type whose `Serialize` is written by
/// hand.
///
/// ```
/// use farcall::rmi::Interface;
/// use farcall::RemoteError;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, farcall::Schema)]
/// #[serde(rename_all = "camelCase")]
/// pub struct Parcel {
///     pub width_mm: u32,
///     #[serde(skip)]
///     pub cached_volume: Option<u64>,
///     pub label: Label,
/// }
///
/// /// Travels as a string: serde's `into` and `try_from` put a `String`
/// /// on the wire, and `#[schema(as)]` says so.
/// #[derive(Clone, Serialize, Deserialize, farcall::Schema)]
/// #[serde(into = "String", try_from = "String")]
/// #[schema(as = "String")]
/// pub struct Label(String);
/// # impl From<Label> for String { fn from(l: Label) -> String { l.0 } }
/// # impl TryFrom<String> for Label {
/// #     type Error = String;
/// #     fn try_from(s: String) -> Result<Label, String> { Ok(Label(s)) }
/// # }
///
/// #[farcall::remote]
/// pub trait Shipping {
///     async fn send(&self, parcel: Parcel) -> Result<u64, RemoteError>;
/// }
///
/// // The descriptor carries the structure, printable for `describe`.
/// let d = <dyn Shipping as Interface>::descriptor();
/// let types: Vec<String> = d.types().iter().map(|t| t.to_string()).collect();
/// assert_eq!(types, ["struct Parcel { widthMm: u32, label: String }"]);
/// ```
pub mod schema {
    pub use farcall_runtime::schema::*;
}

/// Remote objects, late binding: the directory (one embedded in every
/// node, [`DirectoryExt::directory`](directory::DirectoryExt::directory),
/// or a standalone one, [`DirectoryClient`](directory::DirectoryClient))
/// and [`LateBound`](directory::LateBound) stubs that pick an object from
/// it at run time. Everything of `farcall-registry`.
pub mod directory {
    pub use farcall_registry::*;
    pub use farcall_runtime::rmi::{Candidates, LateBound, Policy, Resolve};
}

/// Mediated message exchange: a broker with queues (point to point) and
/// topics (publish/subscribe), and mediated RPC. Everything of
/// `farcall-broker`.
pub mod mme {
    pub use farcall_broker::*;
}

/// What generated code and farcall's own crates use; not part of the
/// documented surface, and free to change.
#[doc(hidden)]
pub mod __private {
    pub use farcall_runtime::__private::*;
    pub use farcall_runtime::rmi::{
        Carrier, CarrierFuture, Coerce, StubCore, Upcast, WireRef, decode_in,
    };
    pub use farcall_runtime::{codec, connection, service, transport, wire};
}

// The Rust samples of the README and of every page of the guide compile
// and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
#[doc = include_str!("../docs/guide/README.md")]
#[cfg(doctest)]
pub struct GuideIndex;
#[doc = include_str!("../docs/guide/dme.md")]
#[cfg(doctest)]
pub struct GuideDme;
#[doc = include_str!("../docs/guide/rpc.md")]
#[cfg(doctest)]
pub struct GuideRpc;
#[doc = include_str!("../docs/guide/rmi.md")]
#[cfg(doctest)]
pub struct GuideRmi;
#[doc = include_str!("../docs/guide/directory.md")]
#[cfg(doctest)]
pub struct GuideDirectory;
#[doc = include_str!("../docs/guide/mme.md")]
#[cfg(doctest)]
pub struct GuideMme;
#[doc = include_str!("../docs/guide/addresses-and-limits.md")]
#[cfg(doctest)]
pub struct GuideAddressesAndLimits;
#[doc = include_str!("../docs/guide/security.md")]
#[cfg(all(doctest, feature = "tls"))]
pub struct GuideSecurity;
#[doc = include_str!("../docs/guide/observability.md")]
#[cfg(doctest)]
pub struct GuideObservability;
#[doc = include_str!("../docs/guide/cancellation.md")]
#[cfg(doctest)]
pub struct GuideCancellation;
#[doc = include_str!("../docs/guide/command-line.md")]
#[cfg(doctest)]
pub struct GuideCommandLine;
#[doc = include_str!("../docs/guide/beyond-one-machine.md")]
#[cfg(doctest)]
pub struct GuideBeyondOneMachine;
#[doc = include_str!("../docs/guide/examples.md")]
#[cfg(doctest)]
pub struct GuideExamples;
#[doc = include_str!("../docs/guide/performance.md")]
#[cfg(doctest)]
pub struct GuidePerformance;
#[doc = include_str!("../docs/guide/fuzzing-and-ci.md")]
#[cfg(doctest)]
pub struct GuideFuzzingAndCi;
#[doc = include_str!("../docs/guide/layout.md")]
#[cfg(doctest)]
pub struct GuideLayout;
