//! [`Queue`]: each message to one consumer, and what it hands out.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::{Broker, Decode, Encode};
use crate::backend::{Acker, DeliverySource};
use crate::config::{DEFAULT_PREFETCH, QueueConfig};
use crate::engine::RawDelivery;
use crate::error::BrokerError;
use crate::polled::Polled;

/// A queue of messages of type `T`: each message goes to one consumer.
pub struct Queue<T> {
    pub(super) broker: Broker,
    pub(super) name: String,
    pub(super) config: QueueConfig,
    pub(super) encode: Encode<T>,
    pub(super) decode: Decode<T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            broker: self.broker.clone(),
            name: self.name.clone(),
            config: self.config.clone(),
            encode: self.encode,
            decode: self.decode,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

impl<T: Send + 'static> Queue<T> {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue's configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Sends `msg`; returns once the broker accepted it (for a durable
    /// queue: once it is on disk under the broker's fsync policy).
    pub async fn send(&self, msg: &T) -> Result<(), BrokerError> {
        let payload = (self.encode)(msg)?;
        self.broker.backend().send(&self.name, payload).await
    }

    /// Attaches a consumer that holds up to 64 unacknowledged deliveries.
    /// Consumers of one queue compete: each message goes to one of them.
    pub async fn consume(&self) -> Result<Consumer<T>, BrokerError> {
        self.consume_with(DEFAULT_PREFETCH).await
    }

    /// Attaches a consumer that holds up to `prefetch` unacknowledged
    /// deliveries. A prefetch of 0 is refused with
    /// [`BrokerError::ZeroPrefetch`]: such a consumer would never receive
    /// anything.
    pub async fn consume_with(&self, prefetch: u32) -> Result<Consumer<T>, BrokerError> {
        if prefetch == 0 {
            return Err(BrokerError::ZeroPrefetch {
                queue: self.name.clone(),
            });
        }
        let source = self.broker.backend().consume(&self.name, prefetch).await?;
        Ok(self.consumer(source))
    }

    /// Attaches a consumer that receives `n` deliveries at most, holding
    /// them all unacknowledged if need be, and then ends
    /// ([`Consumer::next`] returns `None`). The broker hands it no more
    /// than that: the message after them is neither delivered to it nor
    /// counted as an attempt, and stays first in line for other
    /// consumers. The queue must exist
    /// ([`BrokerError::NoSuchQueue`] otherwise: this never creates it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), farcall_broker::BrokerError> {
    /// use farcall_broker::Broker;
    ///
    /// let broker = Broker::embedded();
    /// let jobs = broker.queue::<u32>("jobs").await?;
    /// for n in 1..=3 {
    ///     jobs.send(&n).await?;
    /// }
    /// let mut two = jobs.consume_up_to(2).await?;
    /// while let Some(d) = two.next().await {
    ///     d?.ack().await?;
    /// }
    /// // The third was never delivered.
    /// let left = broker.peek_queue("jobs", 10).await?;
    /// assert_eq!(left.len(), 1);
    /// assert_eq!(left[0].attempts, Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn consume_up_to(&self, n: u64) -> Result<Consumer<T>, BrokerError> {
        if n == 0 {
            return Err(BrokerError::ZeroPrefetch {
                queue: self.name.clone(),
            });
        }
        let prefetch = u32::try_from(n).unwrap_or(u32::MAX).min(MAX_UP_TO_PREFETCH);
        let source = self
            .broker
            .backend()
            .consume_up_to(&self.name, prefetch, n)
            .await?;
        Ok(self.consumer(source))
    }

    fn consumer(&self, source: Box<dyn DeliverySource>) -> Consumer<T> {
        let acker = source.acker();
        Consumer {
            source: Polled::new(source),
            refusing: None,
            acker,
            decode: self.decode,
        }
    }
}

/// The most deliveries a [`Queue::consume_up_to`] consumer holds
/// unacknowledged: the largest window of a stream over a connection.
const MAX_UP_TO_PREFETCH: u32 = 1024;

/// Deliveries from a queue to one consumer. Dropping it gives back what it
/// holds unacknowledged (delivered again to another consumer).
pub struct Consumer<T> {
    pub(super) source: Polled<dyn DeliverySource, Result<Option<RawDelivery>, BrokerError>>,
    /// A delivery that did not decode, being refused: the error comes
    /// once the broker has it back.
    pub(super) refusing: Option<(NackFuture, BrokerError)>,
    pub(super) acker: Arc<dyn Acker>,
    pub(super) decode: Decode<T>,
}

type NackFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("source", &self.source.source())
            .finish()
    }
}

impl<T> Consumer<T> {
    /// The next delivery; `None` once the broker closed. A message that
    /// does not decode as `T` is refused (so it ends in the dead-letter
    /// queue after its last attempt) and given as an error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in
    /// `tokio::select!`, say) loses no delivery; the next call (or poll,
    /// as a `futures_core::Stream`) gets it.
    pub async fn next(&mut self) -> Option<Result<Delivery<T>, BrokerError>> {
        std::future::poll_fn(|cx| self.poll_delivery(cx)).await
    }

    fn poll_delivery(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Delivery<T>, BrokerError>>> {
        if let Some((nack, _)) = &mut self.refusing {
            ready!(nack.as_mut().poll(cx));
            let (_, e) = self.refusing.take().expect("a refusal under way");
            return Poll::Ready(Some(Err(e)));
        }
        let got = ready!(self.source.poll_step(cx, |mut source| {
            Box::pin(async move {
                let got = source.next().await;
                (source, got)
            })
        }));
        let d = match got {
            Ok(Some(d)) => d,
            Ok(None) => return Poll::Ready(None),
            Err(e) => return Poll::Ready(Some(Err(e))),
        };
        match (self.decode)(&d.payload) {
            Ok(body) => Poll::Ready(Some(Ok(Delivery {
                body,
                tag: d.tag,
                attempt: d.attempt,
                acker: self.acker.clone(),
            }))),
            Err(e) => {
                let acker = self.acker.clone();
                let nack = Box::pin(async move {
                    let _ = acker.nack(d.tag).await;
                });
                self.refusing = Some((nack, e));
                self.poll_delivery(cx)
            }
        }
    }
}

/// A consumer is a `futures_core::Stream` of its deliveries, the same as
/// [`Consumer::next`] gives.
impl<T> futures_core::Stream for Consumer<T> {
    type Item = Result<Delivery<T>, BrokerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_delivery(cx)
    }
}

/// One message delivered from a queue. Acknowledge it once done
/// ([`Delivery::ack`]); refuse it to have it delivered again now
/// ([`Delivery::nack`]). Dropped without either, it is delivered again
/// after the queue's ack-wait.
pub struct Delivery<T> {
    pub(super) body: T,
    pub(super) tag: u64,
    pub(super) attempt: u32,
    pub(super) acker: Arc<dyn Acker>,
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("body", &self.body)
            .field("tag", &self.tag)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl<T> Deref for Delivery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

impl<T> Delivery<T> {
    /// The message.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The message, taken out (acknowledge first: this drops the handle).
    pub fn into_body(self) -> T {
        self.body
    }

    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delivery's tag within its queue.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// Acknowledges the message: it is done and will not be delivered
    /// again. Fails with [`BrokerError::NotInFlight`] if its ack-wait
    /// passed first (it went back to the queue).
    pub async fn ack(&self) -> Result<(), BrokerError> {
        self.acker.ack(self.tag).await
    }

    /// Refuses the message: it is delivered again now, or moves to the
    /// dead-letter queue if this was its last attempt.
    pub async fn nack(&self) -> Result<(), BrokerError> {
        self.acker.nack(self.tag).await
    }
}
