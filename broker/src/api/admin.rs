//! Queue administration on [`Broker`]: list, describe, look into, purge,
//! delete, move messages between queues (replay a dead-letter queue), and
//! a handle to a queue that must exist. None of these creates a queue: a
//! missing one is [`BrokerError::NoSuchQueue`], naming it.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Broker, Decode, Encode, Queue, decode_postcard, encode_postcard, raw_decode, raw_encode,
};
use crate::config::{PeekedMessage, QueueInfo};
use crate::error::BrokerError;
use crate::subject::validate_queue_name;

impl Broker {
    /// Every queue of the broker, by name, with its configuration and
    /// what it holds now.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, BrokerError> {
        self.backend().queues().await
    }

    /// The queue `name`: its configuration, depth, messages in flight,
    /// consumers and the age of its oldest message.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), farcall_broker::BrokerError> {
    /// use farcall_broker::{Broker, BrokerError};
    ///
    /// let broker = Broker::embedded();
    /// let orders = broker.queue::<u32>("orders").await?;
    /// orders.send(&7).await?;
    /// let info = broker.queue_info("orders").await?;
    /// assert_eq!((info.depth, info.in_flight, info.consumers), (1, 0, 0));
    /// assert!(info.oldest_age.is_some());
    ///
    /// let missing = broker.queue_info("nowhere").await.unwrap_err();
    /// assert_eq!(missing, BrokerError::NoSuchQueue { name: "nowhere".into() });
    /// assert_eq!(missing.to_string(), "queue \"nowhere\" does not exist");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn queue_info(&self, name: &str) -> Result<QueueInfo, BrokerError> {
        self.backend().queue_info(name).await
    }

    /// Removes every message of the queue `name`, those in flight too (an
    /// ack of one of them then fails, or does nothing on NATS); returns
    /// how many. The queue, its configuration and its consumers stay.
    pub async fn purge_queue(&self, name: &str) -> Result<u64, BrokerError> {
        self.backend().purge(name).await
    }

    /// Deletes the queue `name`: its messages, its configuration and, for
    /// a durable queue, what it kept on disk. Its consumers end
    /// ([`Consumer::next`](crate::Consumer::next) returns `None`; on NATS
    /// it first fails with [`BrokerError::NoSuchQueue`]). Its dead-letter
    /// queue, if any, stays.
    pub async fn delete_queue(&self, name: &str) -> Result<(), BrokerError> {
        self.backend().delete(name).await
    }

    /// Up to `count` messages of the queue `name`, oldest first, as they
    /// are: none is delivered, acknowledged or moved, and their attempts
    /// do not grow. Farcall's broker shows the messages waiting, in the
    /// order they would be delivered; NATS shows those of the queue's
    /// stream, in flight ones included.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), farcall_broker::BrokerError> {
    /// use farcall_broker::Broker;
    ///
    /// let broker = Broker::embedded();
    /// let jobs = broker.queue::<String>("jobs").await?;
    /// jobs.send(&"first".to_owned()).await?;
    /// jobs.send(&"second".to_owned()).await?;
    ///
    /// let seen = broker.peek_queue("jobs", 10).await?;
    /// assert_eq!(seen.len(), 2);
    /// assert_eq!(seen[0].attempts, Some(0));
    /// let first: String = postcard::from_bytes(&seen[0].payload).unwrap();
    /// assert_eq!(first, "first");
    ///
    /// // Still there, never delivered.
    /// let mut c = jobs.consume().await?;
    /// let d = c.next().await.expect("a delivery")?;
    /// assert_eq!((d.body().as_str(), d.attempt()), ("first", 1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn peek_queue(
        &self,
        name: &str,
        count: u32,
    ) -> Result<Vec<PeekedMessage>, BrokerError> {
        self.backend().peek(name, count).await
    }

    /// Moves the messages waiting in the queue `from` to the end of the
    /// queue `to` (both must exist), oldest first, at most `max` of them
    /// (all with `None`); returns how many. There they start again: their
    /// attempts count from 1. Messages in flight stay where they are.
    ///
    /// Each message is in `to` before it leaves `from`, so a failure
    /// between the two leaves it in both, never in neither. If `to`
    /// refuses one (full), it stays in `from` and the error is returned;
    /// those moved before it stay moved.
    ///
    /// The use: replaying a dead-letter queue once its consumers are
    /// fixed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), farcall_broker::BrokerError> {
    /// use farcall_broker::{Broker, QueueConfig};
    ///
    /// let broker = Broker::embedded();
    /// let orders = broker
    ///     .queue_with::<u32>("orders", QueueConfig::default().max_deliver(1))
    ///     .await?;
    /// orders.send(&7).await?;
    /// {
    ///     let mut c = orders.consume().await?;
    ///     c.next().await.expect("a delivery")?.nack().await?; // its last attempt
    /// }
    /// # while broker.queue_info("orders.dlq").await.map_or(true, |i| i.depth == 0) {
    /// #     tokio::task::yield_now().await;
    /// # }
    /// assert_eq!(broker.move_messages("orders.dlq", "orders", None).await?, 1);
    /// let mut c = orders.consume().await?;
    /// let again = c.next().await.expect("a delivery")?;
    /// assert_eq!((*again, again.attempt()), (7, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn move_messages(
        &self,
        from: &str,
        to: &str,
        max: Option<u64>,
    ) -> Result<u64, BrokerError> {
        self.backend()
            .move_messages(from, to, max.unwrap_or(u64::MAX))
            .await
    }

    /// The queue `name` for messages of type `T`, as it is: it must
    /// exist ([`BrokerError::NoSuchQueue`] otherwise), and is never
    /// created.
    pub async fn existing_queue<T>(&self, name: &str) -> Result<Queue<T>, BrokerError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.existing(name, encode_postcard::<T>, decode_postcard::<T>)
            .await
    }

    /// [`Broker::existing_queue`], carrying bytes as they are.
    pub async fn existing_queue_raw(&self, name: &str) -> Result<Queue<Bytes>, BrokerError> {
        self.existing(name, raw_encode, raw_decode).await
    }

    async fn existing<T>(
        &self,
        name: &str,
        encode: Encode<T>,
        decode: Decode<T>,
    ) -> Result<Queue<T>, BrokerError> {
        validate_queue_name(name)?;
        let info = self.backend().queue_info(name).await?;
        Ok(Queue {
            broker: self.clone(),
            name: name.to_owned(),
            config: info.config,
            encode,
            decode,
        })
    }
}
