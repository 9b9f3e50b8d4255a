//! The server side of remote objects.

mod dispatch;

pub use dispatch::{Dispatcher, PROBE, decode_args, decode_fault, mismatch, ready, reply};
