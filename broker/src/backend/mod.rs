//! What a broker handle talks to: the broker in this process, or one on
//! another node. Both carry bytes; the typed API is on top ([`crate::Broker`]).
//!
//! This module is the seam (the [`Backend`] trait and what its operations
//! return); each backend is a submodule: [`embedded`] (the [`Engine`] in
//! this process), [`node`] (a broker served by another farcall node) and,
//! with the feature `nats`, `nats` (a NATS server or cluster).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use farcall_runtime::Node;

use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::engine::{Engine, RawDelivery, SubCore};
use crate::error::BrokerError;

pub(crate) mod embedded;
#[cfg(feature = "nats")]
pub(crate) mod nats;
pub(crate) mod node;

pub(crate) use embedded::Embedded;

/// The future a backend operation returns.
pub(crate) type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>> + Send + 'a>>;

/// The operations of a broker, on bytes.
pub(crate) trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The largest message the broker accepts.
    fn max_message(&self) -> u64;
    /// Creates the queue if absent; with `Some(config)`, checks it.
    fn declare<'a>(&'a self, queue: &'a str, config: Option<QueueConfig>) -> Fut<'a, QueueConfig>;
    /// Sends a message to a queue; resolves once the broker accepted it.
    fn send<'a>(&'a self, queue: &'a str, payload: Bytes) -> Fut<'a, ()>;
    /// Attaches a consumer.
    fn consume<'a>(&'a self, queue: &'a str, prefetch: u32) -> Fut<'a, Box<dyn DeliverySource>>;
    /// Publishes on a subject.
    fn publish<'a>(&'a self, subject: &'a str, payload: Bytes) -> Fut<'a, ()>;
    /// Subscribes to a pattern.
    fn subscribe<'a>(
        &'a self,
        pattern: &'a str,
        options: SubscribeOptions,
    ) -> Fut<'a, Box<dyn MessageSource>>;
    /// Every queue's and topic's figures.
    fn stats(&self) -> Fut<'_, Stats>;
    /// Every queue, by name.
    fn queues(&self) -> Fut<'_, Vec<QueueInfo>>;
    /// One queue, which must exist (`NoSuchQueue`; so must it for every
    /// operation below: none of them creates a queue).
    fn queue_info<'a>(&'a self, queue: &'a str) -> Fut<'a, QueueInfo>;
    /// Removes every message of a queue; returns how many.
    fn purge<'a>(&'a self, queue: &'a str) -> Fut<'a, u64>;
    /// Deletes a queue.
    fn delete<'a>(&'a self, queue: &'a str) -> Fut<'a, ()>;
    /// Up to `count` messages of a queue, oldest first, left as they are.
    fn peek<'a>(&'a self, queue: &'a str, count: u32) -> Fut<'a, Vec<PeekedMessage>>;
    /// Moves up to `max` waiting messages from one queue to the end of
    /// another; returns how many.
    fn move_messages<'a>(&'a self, from: &'a str, to: &'a str, max: u64) -> Fut<'a, u64>;
    /// Attaches a consumer to an existing queue that gets `limit`
    /// deliveries at most, then ends: the broker hands it no more, so
    /// the message after them stays untouched.
    fn consume_up_to<'a>(
        &'a self,
        queue: &'a str,
        prefetch: u32,
        limit: u64,
    ) -> Fut<'a, Box<dyn DeliverySource>>;
    /// The node this handle calls from, if any.
    fn node(&self) -> Option<Node>;
    /// The in-process broker, if this is one.
    fn engine(&self) -> Option<&Arc<Engine>> {
        None
    }
    /// Closes the broker (embedded) or lets go of it (a client), after
    /// handing over what was published.
    fn close(&self) -> Fut<'_, ()>;
    /// Waits until what was published so far is handed to the broker (or
    /// to the connection to it).
    fn flush(&self) -> Fut<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Mediated RPC of the backend's own (NATS request/reply), if it has
    /// one; otherwise calls travel through a queue.
    fn native_rpc(&self) -> Option<&dyn NativeRpc> {
        None
    }
}

/// A backend's own way of carrying mediated calls.
pub(crate) trait NativeRpc: Send + Sync {
    /// Carries calls to whoever serves `queue`.
    fn carrier(&self, queue: &str) -> Arc<dyn farcall_runtime::rmi::Carrier>;
    /// Serves the calls to `queue` with `service` until the task is aborted.
    fn serve<'a>(
        &'a self,
        queue: &'a str,
        interface: &'static farcall_runtime::rmi::InterfaceDescriptor,
        service: Arc<dyn farcall_runtime::Service>,
    ) -> Fut<'a, tokio::task::JoinHandle<()>>;
}

/// Deliveries to one consumer.
pub(crate) trait DeliverySource: Send + fmt::Debug {
    /// The next delivery; `None` once the queue or broker is gone.
    fn next(&mut self) -> Fut<'_, Option<RawDelivery>>;
    /// Acknowledges and refuses this consumer's deliveries.
    fn acker(&self) -> Arc<dyn Acker>;
}

/// A consumer that ends after `left` more deliveries (what
/// [`Backend::consume_up_to`] returns, on whichever backend): the broker
/// sends it no more than that, and this says so without waiting.
#[derive(Debug)]
pub(crate) struct UpTo {
    pub(crate) inner: Box<dyn DeliverySource>,
    pub(crate) left: u64,
}

impl DeliverySource for UpTo {
    fn next(&mut self) -> Fut<'_, Option<RawDelivery>> {
        Box::pin(async move {
            if self.left == 0 {
                return Ok(None);
            }
            let got = self.inner.next().await?;
            if got.is_some() {
                self.left -= 1;
            }
            Ok(got)
        })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.inner.acker()
    }
}

/// Acknowledges or refuses deliveries.
pub(crate) trait Acker: Send + Sync + fmt::Debug {
    /// The message is done.
    fn ack(&self, tag: u64) -> Fut<'_, ()>;
    /// The message goes back to the queue now (or to its dead-letter queue).
    fn nack(&self, tag: u64) -> Fut<'_, ()>;
}

/// A message's subject as a source has it: shared by the subscribers of
/// an in-process broker, or owned when it came over a connection.
#[derive(Debug)]
pub(crate) enum Subject {
    Shared(Arc<str>),
    Owned(String),
}

impl Subject {
    pub(crate) fn into_string(self) -> String {
        match self {
            Subject::Shared(s) => s.to_string(),
            Subject::Owned(s) => s,
        }
    }
}

/// Messages of one subscription.
pub(crate) trait MessageSource: Send + fmt::Debug {
    /// A message already received, if there is one (no waiting, no
    /// allocation).
    fn try_next(&mut self) -> Option<(Subject, Bytes)>;
    /// The next message and its subject; `None` once the subscription ended.
    fn next(&mut self) -> Fut<'_, Option<(Subject, Bytes)>>;
    /// Messages dropped for this subscriber so far (as far as it knows).
    fn dropped(&self) -> u64;
}

/// Reads a subscriber's buffer a batch at a time and hands the messages
/// out one by one (for every backend that keeps a [`SubCore`]).
#[derive(Debug)]
pub(crate) struct Reader {
    core: Arc<SubCore>,
    batch: Vec<(Arc<str>, Bytes)>,
    ready: VecDeque<(Arc<str>, Bytes)>,
    ended: bool,
}

impl Reader {
    pub(crate) fn new(core: Arc<SubCore>) -> Reader {
        Reader {
            core,
            batch: Vec::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    pub(crate) fn try_next(&mut self) -> Option<(Subject, Bytes)> {
        self.ready.pop_front().map(|(s, p)| (Subject::Shared(s), p))
    }

    pub(crate) async fn next(&mut self) -> Result<Option<(Subject, Bytes)>, BrokerError> {
        if let Some(m) = self.try_next() {
            return Ok(Some(m));
        }
        if self.ended {
            return Ok(None);
        }
        self.batch.clear();
        match self.core.next_batch(&mut self.batch, 256).await {
            Ok(true) => {
                self.ready.extend(self.batch.drain(..));
                Ok(self.try_next())
            }
            Ok(false) => {
                self.ended = true;
                Ok(None)
            }
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.core.dropped()
    }
}
