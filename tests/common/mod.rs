//! What several test files share: `mod common;` at the top of each.
//!
//! - [`nats`]: real nats-servers (one, or a three-server cluster) on free
//!   loopback ports with temporary JetStream stores, killed on drop.

pub(crate) mod nats;
