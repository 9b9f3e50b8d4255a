//! What several test files share: `mod common;` at the top of each.
//!
//! - [`nats`]: real nats-servers (one, or a three-server cluster) on free
//!   loopback ports with temporary JetStream stores, killed on drop.
//! - [`pki`]: a certificate authority in memory (rcgen), issuing the
//!   certificates of the TLS tests (shared with the secure example).
//! - [`process`]: child processes killed on drop: `farcall … serve`
//!   ([`process::Served`]), and the test binary run again as a child.
//! - [`temp_dir`]: a fresh directory for a test, removed on drop.
//! - [`transport`]: TCP, Unix sockets and `mem://`, fresh addresses of
//!   each, and [`transport::on_transports!`], one test per scenario and
//!   transport.
//! - [`wait`]: [`wait::within`] and [`wait::until`], time-outs that keep a
//!   broken build from hanging.
//!
//! Interfaces are never here: they add themselves to the interface
//! catalogue of every test binary that links them. The shapes that several
//! tests bind and call are in `tests/shapes/`, the services of the RPC
//! tests in `tests/rpc/` and the objects of the RMI tests in `tests/rmi/`:
//! the last two have a `Shape` and a `Circle` of their own.

pub(crate) mod nats;
#[path = "../../examples/chapters/pki.rs"]
pub(crate) mod pki;
pub(crate) mod process;
pub(crate) mod temp_dir;
pub(crate) mod transport;
pub(crate) mod wait;
