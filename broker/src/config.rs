//! How a broker, its queues and its subscriptions are configured, and what
//! its statistics report.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::log::Fsync;

/// The default largest message a broker accepts: 1 MiB.
pub const DEFAULT_MAX_MESSAGE: u64 = 1 << 20;
/// The default time a delivery may stay unacknowledged before it is
/// delivered again: 30 s.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// The default number of deliveries of a message before it moves to the
/// dead-letter queue: 5.
pub const DEFAULT_MAX_DELIVER: u32 = 5;
/// The default number of messages a queue holds (ready and in flight)
/// before `send` fails with [`BrokerError::QueueFull`](crate::BrokerError::QueueFull).
pub const DEFAULT_MAX_DEPTH: u64 = 1_000_000;
/// The default number of unacknowledged deliveries one consumer holds.
pub const DEFAULT_PREFETCH: u32 = 64;
/// The default buffer of a subscription, in messages.
pub const DEFAULT_SUBSCRIPTION_BUFFER: u32 = 65_536;

/// How a broker runs: where durable queues live, how they reach the disk,
/// and the size limit of messages.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// The directory of durable queues (one sub-directory per queue).
    /// Without one, asking for a durable queue fails with
    /// [`BrokerError::NoStorage`](crate::BrokerError::NoStorage).
    pub data: Option<PathBuf>,
    /// When durable queues' writes reach the disk (default: confirm once
    /// written to the operating system, fsync every 50 ms; see [`Fsync`]).
    pub fsync: Fsync,
    /// The largest message accepted, in bytes (default 1 MiB).
    pub max_message: u64,
    /// The size at which a durable queue's log starts a new segment
    /// (default 16 MiB).
    pub segment_bytes: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            data: None,
            fsync: Fsync::default(),
            max_message: DEFAULT_MAX_MESSAGE,
            segment_bytes: 16 << 20,
        }
    }
}

/// How a queue behaves. Set when the queue is created; asking for an
/// existing queue with another configuration fails with
/// [`BrokerError::QueueConfigMismatch`](crate::BrokerError::QueueConfigMismatch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct QueueConfig {
    /// Messages are kept on disk and survive a restart of the broker.
    pub durable: bool,
    /// How long a delivery may stay unacknowledged before it is delivered
    /// again (default 30 s).
    pub ack_wait: Duration,
    /// Deliveries of one message before it moves to the dead-letter queue
    /// `<name>.dlq` (default 5; 0 means never).
    pub max_deliver: u32,
    /// Messages the queue holds, ready and in flight, before `send` fails
    /// (default 1,000,000).
    pub max_depth: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            durable: false,
            ack_wait: DEFAULT_ACK_WAIT,
            max_deliver: DEFAULT_MAX_DELIVER,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl QueueConfig {
    /// The default configuration, durable.
    pub fn durable() -> Self {
        QueueConfig {
            durable: true,
            ..Self::default()
        }
    }

    /// This configuration with another ack-wait.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// This configuration with another max-deliver (0: never dead-letter).
    pub fn max_deliver(mut self, max_deliver: u32) -> Self {
        self.max_deliver = max_deliver;
        self
    }

    /// This configuration with another depth limit.
    pub fn max_depth(mut self, max_depth: u64) -> Self {
        self.max_depth = max_depth;
        self
    }
}

/// For people: `durable, ack-wait 30 s, dead-lettered after 5 deliveries,
/// max depth 1000000`.
impl std::fmt::Display for QueueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.durable {
            "durable"
        } else {
            "not durable"
        })?;
        write!(f, ", ack-wait {}", Human(self.ack_wait))?;
        match self.max_deliver {
            0 => f.write_str(", never dead-lettered")?,
            1 => f.write_str(", dead-lettered after 1 delivery")?,
            n => write!(f, ", dead-lettered after {n} deliveries")?,
        }
        write!(f, ", max depth {}", self.max_depth)
    }
}

/// A duration in the unit people would write it in: `30 s`, `250 ms`.
pub(crate) struct Human(pub(crate) Duration);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{} s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{} ms", d.as_millis())
        } else if d.subsec_nanos().is_multiple_of(1_000) {
            write!(f, "{} µs", d.as_micros())
        } else {
            write!(f, "{} ns", d.as_nanos())
        }
    }
}

/// What happens to a subscriber that falls behind by its whole buffer.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema,
)]
#[schema(crate = "::farcall_runtime")]
pub enum SlowPolicy {
    /// The oldest buffered message is dropped to make room; the drops are
    /// counted ([`Subscription::dropped`](crate::Subscription::dropped)).
    #[default]
    DropOldest,
    /// The subscription ends with
    /// [`BrokerError::SlowSubscriber`](crate::BrokerError::SlowSubscriber).
    Disconnect,
}

/// How a subscription buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct SubscribeOptions {
    /// Messages buffered for this subscriber (default 65,536).
    pub buffer: u32,
    /// What happens when the buffer is full.
    pub policy: SlowPolicy,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            buffer: DEFAULT_SUBSCRIPTION_BUFFER,
            policy: SlowPolicy::DropOldest,
        }
    }
}

/// A broker's figures: every queue and every topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct Stats {
    /// The queues, by name.
    pub queues: Vec<QueueStats>,
    /// The subjects published on, by name.
    pub topics: Vec<TopicStats>,
    /// Subscriptions open now.
    pub subscriptions: u64,
    /// Messages dropped from slow subscribers' buffers, in all.
    pub dropped: u64,
}

/// One queue's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct QueueStats {
    /// The queue's name.
    pub name: String,
    /// Whether its messages are on disk.
    pub durable: bool,
    /// Messages waiting for a consumer.
    pub depth: u64,
    /// Messages delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Consumers attached now.
    pub consumers: u64,
    /// Messages accepted since the broker started.
    pub sent: u64,
    /// Messages acknowledged since the broker started.
    pub acked: u64,
    /// Deliveries after a nack, an ack-wait or a consumer's end.
    pub redelivered: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Log segments on disk (durable queues).
    pub segments: u32,
    /// Bytes of log on disk (durable queues).
    pub log_bytes: u64,
}

/// One subject's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct TopicStats {
    /// The subject.
    pub subject: String,
    /// Messages published on it since the broker started.
    pub published: u64,
    /// Messages per second over the last ten seconds.
    pub rate: f64,
}

/// One queue as [`Broker::queue_info`](crate::Broker::queue_info) and
/// [`Broker::queues`](crate::Broker::queues) describe it: its
/// configuration and what it holds now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Its configuration.
    pub config: QueueConfig,
    /// Messages waiting for a consumer.
    pub depth: u64,
    /// Messages delivered and not yet acknowledged (on NATS, a message
    /// given back, by a nack or a consumer that went, counts here until it
    /// is delivered again).
    pub in_flight: u64,
    /// Consumers attached now (on NATS: the pull requests waiting at the
    /// server, about one per consumer with room for more).
    pub consumers: u64,
    /// How long the oldest message the queue holds (waiting or in flight)
    /// has been in it; `None` when it holds none. On farcall's broker a
    /// durable queue's messages count from when the broker opened them
    /// again after a restart.
    pub oldest_age: Option<Duration>,
}

/// A message looked at in place by
/// [`Broker::peek_queue`](crate::Broker::peek_queue): nothing about it
/// changed (it was not delivered, its attempts did not grow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
#[non_exhaustive]
pub struct PeekedMessage {
    /// The deliveries of it so far (0: never delivered). `None` when the
    /// backend cannot tell: on NATS, a message delivered before (given
    /// back, or in flight now).
    pub attempts: Option<u32>,
    /// How long it has been in the queue, as [`QueueInfo::oldest_age`]
    /// counts it.
    pub age: Option<Duration>,
    /// The message, as it was sent.
    pub payload: bytes::Bytes,
}
