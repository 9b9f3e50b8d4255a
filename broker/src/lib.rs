//! The broker of farcall: mediated message exchange. Queues (point to
//! point), topics (publish/subscribe) and RPC carried through a queue;
//! through the facade, `farcall::mme`.
//!
//! The parties know only the broker and the names of queues and subjects,
//! not each other: a producer sends whether or not a consumer is up, a
//! subscriber gets what is published on the subjects it follows, and a
//! `#[remote]` call reaches whichever server takes it from its queue.
//!
//! One API, whichever way the broker runs:
//! - [`Broker::embedded`]: in this process, in memory;
//! - [`Broker::open`]: in this process, with a data directory for durable
//!   queues ([`BrokerConfig`]);
//! - [`Broker::connect`]: a client of a broker on another node, served by
//!   `farcall broker serve` or by any node an embedded broker is
//!   [exposed](Broker::expose) on.
//!
//! ```
//! use farcall_broker::Broker;
//! use farcall_runtime::RemoteError;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Order {
//!     id: u32,
//!     item: String,
//! }
//!
//! // Through the facade: `#[farcall::remote]`.
//! #[farcall_macros::remote(crate = "::farcall_runtime")]
//! pub trait Pricing {
//!     async fn quote(&self, item: String, qty: u32) -> Result<u64, RemoteError>;
//! }
//!
//! struct PriceList;
//!
//! #[farcall_macros::remote(crate = "::farcall_runtime")]
//! impl Pricing for PriceList {
//!     async fn quote(&self, _item: String, qty: u32) -> Result<u64, RemoteError> {
//!         Ok(250 * u64::from(qty))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::embedded();
//!
//! // A queue: each message goes to one consumer and stays until acknowledged.
//! let orders = broker.queue::<Order>("orders").await?;
//! orders.send(&Order { id: 1, item: "widget".into() }).await?;
//! let mut worker = orders.consume().await?;
//! let delivery = worker.next().await.expect("a delivery")?;
//! assert_eq!((delivery.id, delivery.item.as_str()), (1, "widget"));
//! delivery.ack().await?;
//!
//! // A topic: every subscription whose pattern matches gets the message.
//! let mut eu = broker.subscribe::<f64>("prices.eu.*").await?;
//! broker.publish("prices.us.acme", &103.1).await?; // not European: not for `eu`
//! broker.publish("prices.eu.acme", &102.5).await?;
//! let m = eu.next().await.expect("a message")?;
//! assert_eq!((m.subject.as_str(), m.body), ("prices.eu.acme", 102.5));
//!
//! // Mediated RPC: the call travels as a message through the queue "pricing".
//! let _serving = broker.serve::<dyn Pricing, _>("pricing", PriceList).await?;
//! let pricing = broker.stub::<dyn Pricing>("pricing").await?;
//! assert_eq!(pricing.quote("widget".into(), 3).await?, 750);
//! # Ok(())
//! # }
//! ```
//!
//! # Queues
//!
//! [`Broker::queue`] (or [`Broker::queue_with`] and a [`QueueConfig`])
//! names a queue; [`Queue::send`] returns once the broker has the message.
//! Consumers ([`Queue::consume`]) compete: each message goes to one of
//! them, in turn, each holding at most its prefetch of unacknowledged
//! deliveries. A [`Delivery`] is [acknowledged](Delivery::ack) (done),
//! [refused](Delivery::nack) (delivered again at once, at the head of the
//! queue), or left: after the queue's ack-wait it is delivered again. After
//! [`QueueConfig::max_deliver`] deliveries a message moves to the
//! dead-letter queue, the queue's name followed by [`DLQ_SUFFIX`].
//! [`QueueConfig::durable`] queues are kept on disk in an append-only
//! [`log`] and come back, with every message not acknowledged, when the
//! broker opens again; [`Fsync`] says when a send is confirmed.
//!
//! # Topics
//!
//! [`Broker::publish`] (or a [`Topic`]) sends to every [`Subscription`]
//! whose pattern matches the subject now; nothing is kept for later
//! subscribers. In a pattern, `*` is one token and `>` the rest
//! ([`subject`]). A subscriber that falls a whole buffer behind loses its
//! oldest messages or is cut off, as its [`SlowPolicy`] says
//! ([`SubscribeOptions`]).
//!
//! # Mediated RPC
//!
//! [`Broker::serve`] takes the calls sent to a queue and runs them on an
//! object of a `#[remote]` trait; [`Broker::stub`] gives a stub whose calls
//! go to that queue, with replies on a subject of the caller's
//! (`_INBOX.<id>`). Several servers of one queue share the calls; a call
//! made while none is up waits for one within its deadline. A request is
//! acknowledged before it runs, unless its method is
//! `#[remote(idempotent)]`: then after, so that another server takes it
//! if the first dies.
//!
//! # On another node
//!
//! [`Broker::expose`] serves a broker in this process at the well-known
//! object id [`ObjectId::BROKER`](farcall_runtime::ObjectId::BROKER), as
//! the [`BrokerApi`] remote interface; [`Broker::connect`] is its client,
//! with the same API as a broker in the process.

#![warn(missing_docs)]

mod api;
mod backend;
mod config;
mod engine;
mod error;
mod expose;
pub mod log;
mod mediated;
mod pack;
mod permissions;
mod polled;
#[allow(unreachable_pub, dead_code)]
mod protocol;
mod rpc;
pub mod subject;

pub use api::{Broker, Consumer, Delivery, Message, Queue, Subscription, Topic};
pub use config::{
    BrokerConfig, DEFAULT_ACK_WAIT, DEFAULT_MAX_DELIVER, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE,
    DEFAULT_PREFETCH, DEFAULT_SUBSCRIPTION_BUFFER, PeekedMessage, QueueConfig, QueueInfo,
    QueueStats, SlowPolicy, Stats, SubscribeOptions, TopicStats,
};
pub use engine::DLQ_SUFFIX;
pub use error::BrokerError;
pub use farcall_runtime::{NatsAuth, NatsOptions, NatsTls, REPLICAS_ENV};
pub use log::Fsync;
pub use mediated::Mediated;
pub use permissions::{Allowed, Permissions};
pub use protocol::{BrokerApi, BrokerInfo, WireDelivery, WireMessage};
pub use rpc::Serving;
