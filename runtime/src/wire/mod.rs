//! The wire protocol: a handshake, then length-prefixed frames.
//!
//! `docs/PROTOCOL.md` in the repository is the normative description;
//! this module is its implementation. Both halves are pure functions over
//! byte buffers so that they can be fuzzed and property-tested without a
//! socket.

pub mod frame;
pub mod handshake;

pub use frame::{Fault, Frame, FrameError, Kind};
pub use handshake::{HandshakeError, Hello, MAGIC, PROTOCOL_VERSION, Welcome};
