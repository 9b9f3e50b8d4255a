//! The directories behind [`DirectoryApi`](crate::DirectoryApi): [`embedded`],
//! the one every node serves (its state in this process), and, with the
//! feature `nats`, `nats`, a directory kept in a JetStream key-value bucket.

pub(crate) mod embedded;
#[cfg(feature = "nats")]
pub(crate) mod nats;
