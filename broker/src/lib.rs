//! The broker of farcall: mediated message exchange (work in progress).

#![warn(missing_docs)]

mod api;
mod backend;
mod config;
mod engine;
mod error;
pub mod log;
#[allow(unreachable_pub, dead_code)]
mod remote;
mod rpc;
pub mod subject;

pub use api::{Broker, Consumer, Delivery, Message, Queue, Subscription, Topic};
pub use config::{
    BrokerConfig, DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE,
    DEFAULT_PREFETCH, DEFAULT_SUBSCRIPTION_BUFFER, QueueConfig, QueueStats, SlowPolicy, Stats,
    SubscribeOptions, TopicStats,
};
pub use engine::DLQ_SUFFIX;
pub use error::BrokerError;
pub use log::Fsync;
pub use remote::{BrokerApi, BrokerInfo, WireDelivery, WireMessage};
pub use rpc::Serving;
