//! The protocol of a broker on another node: [`BrokerApi`], the remote
//! interface a node serves a broker under ([`crate::Broker::expose`],
//! [`crate::expose`]) and a client calls ([`crate::Broker::connect`],
//! [`crate::backend::node`]), and what travels in its calls.

use bytes::Bytes;
use farcall_runtime::Stream;
use serde::{Deserialize, Serialize};

use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::error::BrokerError;

/// The most messages in one batch (a subscription's stream item, or a
/// client's `publish_batch`).
pub const BATCH_MESSAGES: usize = 256;
/// A batch is closed once it holds this many bytes of messages (it may hold
/// one message of any size the broker accepts).
pub const BATCH_BYTES: usize = 256 * 1024;

/// What a broker says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct BrokerInfo {
    /// The largest message it accepts, in bytes.
    pub max_message: u64,
    /// The farcall version it runs.
    pub version: String,
}

/// One delivery as it travels to a remote consumer.
#[derive(Clone, Debug, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct WireDelivery {
    /// Names the delivery for ack and nack.
    pub tag: u64,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub attempt: u32,
    /// The message.
    pub payload: Bytes,
}

/// One item of a remote subscription.
#[derive(Clone, Debug, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub enum WireMessage {
    /// Messages, each with the subject it was published on, oldest first,
    /// packed in one buffer (`u16 LE subject length | subject | u32 LE
    /// payload length | payload`, repeated): one stream item carries what
    /// the subscriber's buffer held, up to 256 messages or about 256 KiB.
    Messages(Bytes),
    /// Messages dropped from this subscriber's buffer so far (sent when
    /// the count grows).
    Dropped {
        /// The count since the subscription began.
        total: u64,
    },
    /// The subscriber fell a whole buffer behind and its policy cut it off.
    Cut {
        /// The subscription's buffer.
        buffer: u32,
    },
}

/// A broker's operations as they travel, served at the well-known
/// [`ObjectId::BROKER`](farcall_runtime::ObjectId::BROKER) by
/// [`Broker::expose`](crate::Broker::expose) (what `farcall broker serve`
/// runs). [`Broker::connect`](crate::Broker::connect) is the typed API on
/// top.
#[farcall_macros::remote(crate = "::farcall_runtime")]
pub trait BrokerApi {
    /// The broker's limits and version.
    #[remote(idempotent)]
    async fn info(&self) -> Result<BrokerInfo, BrokerError>;
    /// Creates the queue if absent (with `config`, or the default); with
    /// `Some(config)`, an existing queue must have it. Returns its
    /// configuration.
    #[remote(idempotent)]
    async fn declare(
        &self,
        queue: String,
        config: Option<QueueConfig>,
    ) -> Result<QueueConfig, BrokerError>;
    /// Sends a message to a queue; returns once the broker accepted it (on
    /// disk under the fsync policy for a durable queue).
    async fn send(&self, queue: String, payload: Bytes) -> Result<(), BrokerError>;
    /// Attaches a consumer holding at most `prefetch` unacknowledged
    /// deliveries; returns its id and its deliveries. Ending the stream
    /// (or the connection) gives back what it held.
    async fn consume(
        &self,
        queue: String,
        prefetch: u32,
    ) -> Result<(u64, Stream<WireDelivery>), BrokerError>;
    /// Acknowledges delivery `tag` of consumer `consumer`.
    async fn ack(&self, queue: String, consumer: u64, tag: u64) -> Result<(), BrokerError>;
    /// Refuses delivery `tag` of consumer `consumer`: delivered again now.
    async fn nack(&self, queue: String, consumer: u64, tag: u64) -> Result<(), BrokerError>;
    /// Publishes on a subject (one way: errors stay at the broker).
    #[remote(oneway)]
    async fn publish(&self, subject: String, payload: Bytes) -> Result<(), BrokerError>;
    /// Publishes messages in order, each on its subject (one way), packed
    /// as in [`WireMessage::Messages`]. A client batches what its
    /// application publishes faster than one message per round of the
    /// connection.
    #[remote(oneway)]
    async fn publish_batch(&self, packed: Bytes) -> Result<(), BrokerError>;
    /// Subscribes to a pattern.
    async fn subscribe(
        &self,
        pattern: String,
        options: SubscribeOptions,
    ) -> Result<Stream<WireMessage>, BrokerError>;
    /// Every queue's and topic's figures.
    #[remote(idempotent)]
    async fn stats(&self) -> Result<Stats, BrokerError>;
    /// Every queue, by name.
    #[remote(idempotent)]
    async fn queues(&self) -> Result<Vec<QueueInfo>, BrokerError>;
    /// One queue's configuration and what it holds (`NoSuchQueue` if it
    /// does not exist; none of the calls below creates a queue either).
    #[remote(idempotent)]
    async fn queue_info(&self, queue: String) -> Result<QueueInfo, BrokerError>;
    /// Removes every message of a queue; returns how many.
    async fn purge(&self, queue: String) -> Result<u64, BrokerError>;
    /// Deletes a queue: its messages, its consumers (their streams end).
    async fn delete(&self, queue: String) -> Result<(), BrokerError>;
    /// Up to `count` of the messages waiting in a queue, from the
    /// `skip`-th on, in the order they would be delivered, left as they
    /// are; fewer once about 256 KiB of them are taken (one at least), so
    /// a client asks again from where the answer stopped.
    #[remote(idempotent)]
    async fn peek(
        &self,
        queue: String,
        skip: u32,
        count: u32,
    ) -> Result<Vec<PeekedMessage>, BrokerError>;
    /// Moves up to `max` waiting messages from `from` to the end of `to`;
    /// returns how many.
    async fn move_messages(&self, from: String, to: String, max: u64) -> Result<u64, BrokerError>;
    /// [`BrokerApi::consume`] on an existing queue, for a consumer that
    /// gets at most `limit` deliveries: the broker hands it no more, and
    /// its stream stays open (for its acks) until the client ends it.
    async fn consume_up_to(
        &self,
        queue: String,
        prefetch: u32,
        limit: u64,
    ) -> Result<(u64, Stream<WireDelivery>), BrokerError>;
}
