//! The server side of remote objects.

mod dispatch;

pub use dispatch::{Dispatcher, decode_args, decode_fault, mismatch, ready, reply};
