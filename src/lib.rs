//! farcall: remote procedures, remote objects and messaging for Rust.
//!
//! One toolkit for the five paradigms of distributed computing:
//!
//! | paradigm | where |
//! | --- | --- |
//! | direct message exchange, asymmetric | [`dme::Server`], [`dme::Client`] |
//! | direct message exchange, symmetric | [`dme::Peer`] |
//! | mediated message exchange | `farcall::mme` (planned) |
//! | remote procedure call | `#[farcall::remote]` (planned) |
//! | RMI, early and late binding | `Remote<dyn Trait>`, `Directory` (planned) |
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

pub use farcall_macros::remote;
pub use farcall_runtime::{
    Address, AddressError, CallContext, Connection, Error, Fault, IntoAddress, Limits, Node,
    NodeBuilder, NodeId, ObjectId, Remote, RemoteError, Result, dme,
};

#[doc(hidden)]
pub use farcall_runtime::__private;

/// Interfaces, stubs and the catalogue of remote traits.
pub mod remote {
    pub use farcall_runtime::remote::{
        ArgDescriptor, Interface, InterfaceDescriptor, MethodDescriptor, Stub, StubCore, catalogue,
        find_interface,
    };
}

/// Lower layers, for those who build on the runtime directly.
pub mod runtime {
    pub use farcall_runtime::{codec, connection, service, transport, wire};
}
