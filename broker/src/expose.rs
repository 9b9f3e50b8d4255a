//! The served side of a broker exposed on a node ([`crate::Broker::expose`],
//! what `farcall broker serve` runs): [`BrokerApi`] on the [`Engine`] in
//! this process, at [`ObjectId::BROKER`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use farcall_runtime::rmi::Dispatcher;
use farcall_runtime::{CallContext, Node, NodeId, ObjectId, Stream};

use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::engine::{Engine, EngineConsumer, QueueCore, lock};
use crate::error::BrokerError;
use crate::pack::Packer;
use crate::permissions::{Op, Permissions};
use crate::protocol::{
    BATCH_BYTES, BATCH_MESSAGES, BrokerApi, BrokerInfo, WireDelivery, WireMessage,
};

/// Messages a remote subscriber's stream lets travel before it reads them.
const SUBSCRIPTION_WINDOW: u32 = 1024;

/// Serves an engine to other nodes.
#[derive(Debug)]
struct Server {
    engine: Arc<Engine>,
    /// Which connection attached each consumer, by (queue, consumer id).
    owners: Arc<Mutex<HashMap<(String, u64), Holder>>>,
    /// Who may do what, when the broker was exposed with permissions.
    permissions: Option<Arc<Permissions>>,
}

/// The connection that holds a consumer: its peer and its serial on this
/// node (0 for the broker's own process), so that only that connection
/// settles what the consumer holds.
type Holder = (NodeId, u64);

fn caller() -> Option<Holder> {
    CallContext::current().map(|cx| (cx.caller, cx.connection.map_or(0, |c| c.serial())))
}

impl Server {
    /// The queue of a delivery the caller may settle (ack or nack): its
    /// consumer must be the caller's.
    fn settled(&self, queue: &str, consumer: u64, tag: u64) -> Result<Arc<QueueCore>, BrokerError> {
        self.check_owner(queue, consumer, tag)?;
        self.engine
            .existing(queue)
            .ok_or_else(|| BrokerError::NotInFlight {
                queue: queue.to_owned(),
                tag,
            })
    }

    /// The permissions' decision on `op` on `name`, for a call that came
    /// over a connection.
    fn allow(&self, op: Op, name: &str) -> Result<(), BrokerError> {
        let Some(p) = &self.permissions else {
            return Ok(());
        };
        let Some(cx) = CallContext::current() else {
            return Ok(());
        };
        match &cx.connection {
            Some(conn) => p.check(conn.principal(), op, name),
            None => Ok(()),
        }
    }

    /// Sends what `consumer` gets down a stream of its own, until the
    /// stream ends (the client dropped it, or its connection went); then
    /// the consumer goes, giving back what it held.
    fn forward(
        &self,
        queue: String,
        prefetch: u32,
        mut consumer: EngineConsumer,
    ) -> (u64, Stream<WireDelivery>) {
        let id = consumer.id();
        let owner = caller().unwrap_or((NodeId(0), 0));
        let key = (queue, id);
        lock(&self.owners).insert(key.clone(), owner);
        let owners = self.owners.clone();
        let (tx, stream) = Stream::channel(prefetch as usize);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    d = consumer.next() => {
                        let Some(d) = d else { break };
                        let item = WireDelivery { tag: d.tag, attempt: d.attempt, payload: d.payload };
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                    _ = tx.closed() => break,
                }
            }
            lock(&owners).remove(&key);
            // Dropping the consumer gives back what it held.
            drop(consumer);
        });
        (id, stream.with_window(prefetch))
    }

    fn check_owner(&self, queue: &str, consumer: u64, tag: u64) -> Result<(), BrokerError> {
        let owner = lock(&self.owners)
            .get(&(queue.to_owned(), consumer))
            .copied();
        match owner {
            Some(o) if Some(o) == caller() => Ok(()),
            _ => Err(BrokerError::NotInFlight {
                queue: queue.to_owned(),
                tag,
            }),
        }
    }
}

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl BrokerApi for Server {
    async fn info(&self) -> Result<BrokerInfo, BrokerError> {
        Ok(BrokerInfo {
            max_message: self.engine.max_message(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
    }

    async fn declare(
        &self,
        queue: String,
        config: Option<QueueConfig>,
    ) -> Result<QueueConfig, BrokerError> {
        // Declaring is for those who send or consume there.
        self.allow(Op::Send, &queue)
            .or_else(|_| self.allow(Op::Consume, &queue))?;
        Ok(self.engine.declare(&queue, config)?.config().clone())
    }

    async fn send(&self, queue: String, payload: Bytes) -> Result<(), BrokerError> {
        self.allow(Op::Send, &queue)?;
        self.engine.send(&queue, payload).await
    }

    async fn consume(
        &self,
        queue: String,
        prefetch: u32,
    ) -> Result<(u64, Stream<WireDelivery>), BrokerError> {
        self.allow(Op::Consume, &queue)?;
        let q = self.engine.declare(&queue, None)?;
        let prefetch = prefetch.clamp(1, farcall_runtime::rmi::MAX_WINDOW);
        let consumer = q.consume(prefetch)?;
        Ok(self.forward(queue, prefetch, consumer))
    }

    async fn ack(&self, queue: String, consumer: u64, tag: u64) -> Result<(), BrokerError> {
        self.settled(&queue, consumer, tag)?
            .ack(tag, Some(consumer))
    }

    async fn nack(&self, queue: String, consumer: u64, tag: u64) -> Result<(), BrokerError> {
        self.settled(&queue, consumer, tag)?
            .nack(tag, Some(consumer))
    }

    async fn publish(&self, subject: String, payload: Bytes) -> Result<(), BrokerError> {
        let r = self
            .allow(Op::Publish, &subject)
            .and_then(|()| self.engine.publish(&subject, payload));
        if let Err(e) = &r {
            tracing::debug!(error = %e, "a one-way publish was refused");
        }
        r
    }

    async fn publish_batch(&self, packed: Bytes) -> Result<(), BrokerError> {
        let refused = match &self.permissions {
            None => self.engine.publish_packed(&packed)?,
            Some(_) => self.engine.publish_packed_where(&packed, |subject| {
                self.allow(Op::Publish, subject).is_ok()
            })?,
        };
        if refused > 0 {
            tracing::debug!(refused, "one-way publishes were refused");
            return Err(BrokerError::Rejected(format!("{refused} messages refused")));
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        pattern: String,
        options: SubscribeOptions,
    ) -> Result<Stream<WireMessage>, BrokerError> {
        self.allow(Op::Subscribe, &pattern)?;
        let mut sub = self.engine.subscribe(&pattern, options)?;
        // What may travel ahead of the subscriber (the stream's buffer and
        // its credit) is at most its own buffer: one that falls behind does
        // so here, where its policy applies, not in transit.
        let per_batch = (options.buffer as usize).clamp(1, BATCH_MESSAGES);
        let window = (options.buffer / per_batch as u32).clamp(1, SUBSCRIPTION_WINDOW);
        let (tx, stream) = Stream::channel(window as usize);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(per_batch);
            let mut dropped = 0;
            loop {
                batch.clear();
                let got = tokio::select! {
                    r = sub.next_batch(&mut batch, per_batch) => r,
                    _ = tx.closed() => break,
                };
                match got {
                    Ok(true) => {
                        let now = sub.dropped();
                        if now > dropped {
                            dropped = now;
                            if tx.send(WireMessage::Dropped { total: now }).await.is_err() {
                                return;
                            }
                        }
                        let mut packer = Packer::default();
                        for (subject, payload) in batch.drain(..) {
                            if !packer.is_empty() && packer.bytes() + payload.len() > BATCH_BYTES {
                                let full = WireMessage::Messages(packer.take());
                                if tx.send(full).await.is_err() {
                                    return;
                                }
                            }
                            packer.push(&subject, &payload);
                        }
                        if !packer.is_empty()
                            && tx.send(WireMessage::Messages(packer.take())).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(false) => break,
                    Err(BrokerError::SlowSubscriber { buffer, .. }) => {
                        let _ = tx.send(WireMessage::Cut { buffer }).await;
                        break;
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(stream.with_window(window))
    }

    async fn stats(&self) -> Result<Stats, BrokerError> {
        Ok(self.engine.stats())
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>, BrokerError> {
        Ok(self.engine.queue_infos())
    }

    async fn queue_info(&self, queue: String) -> Result<QueueInfo, BrokerError> {
        self.engine.queue_info(&queue)
    }

    async fn purge(&self, queue: String) -> Result<u64, BrokerError> {
        // Purging takes what a consumer could take.
        self.allow(Op::Consume, &queue)?;
        self.engine.purge(&queue)
    }

    async fn delete(&self, queue: String) -> Result<(), BrokerError> {
        self.allow(Op::Consume, &queue)?;
        self.engine.delete(&queue)
    }

    async fn peek(
        &self,
        queue: String,
        skip: u32,
        count: u32,
    ) -> Result<Vec<PeekedMessage>, BrokerError> {
        // A look at the messages is for those who may read them.
        self.allow(Op::Consume, &queue)?;
        self.engine
            .peek(&queue, skip as usize, count as usize, BATCH_BYTES)
    }

    async fn move_messages(&self, from: String, to: String, max: u64) -> Result<u64, BrokerError> {
        // Taking from one queue and sending to the other.
        self.allow(Op::Consume, &from)?;
        self.allow(Op::Send, &to)?;
        self.engine.move_messages(&from, &to, max).await
    }

    async fn consume_up_to(
        &self,
        queue: String,
        prefetch: u32,
        limit: u64,
    ) -> Result<(u64, Stream<WireDelivery>), BrokerError> {
        self.allow(Op::Consume, &queue)?;
        let q = self.engine.named(&queue)?;
        let prefetch = prefetch.clamp(1, farcall_runtime::rmi::MAX_WINDOW);
        let consumer = q.consume_up_to(prefetch, limit)?;
        Ok(self.forward(queue, prefetch, consumer))
    }
}

/// Serves `engine` at [`ObjectId::BROKER`] on `node`, checking calls
/// over connections against `permissions` if any.
pub(crate) fn expose(node: &Node, engine: Arc<Engine>, permissions: Option<Permissions>) {
    let server: Arc<dyn BrokerApi> = Arc::new(Server {
        engine,
        owners: Arc::new(Mutex::new(HashMap::new())),
        permissions: permissions.map(Arc::new),
    });
    node.serve_object(ObjectId::BROKER, Arc::new(Dispatcher::new(server)));
}
