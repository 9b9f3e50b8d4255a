//! A broker on another node: the protocol, the server side
//! ([`crate::Broker::expose`]) and the client side ([`crate::Broker::connect`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use farcall_runtime::remote::Dispatcher;
use farcall_runtime::{CallContext, Node, NodeId, ObjectId, Remote, Stream};
use serde::{Deserialize, Serialize};

use crate::backend::{Acker, Backend, DeliverySource, Fut, MessageSource, Subject};
use crate::config::{QueueConfig, Stats, SubscribeOptions};
use crate::engine::{Engine, QueueCore, RawDelivery, lock};
use crate::error::BrokerError;
use crate::pack::Packer;
use crate::subject::{validate_queue_name, validate_subject};

/// The most messages in one batch (a subscription's stream item, or a
/// client's `publish_batch`).
pub const BATCH_MESSAGES: usize = 256;
/// A batch is closed once it holds this many bytes of messages (it may hold
/// one message of any size the broker accepts).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Messages a client queues for publishing before `publish` waits.
const PUBLISH_QUEUE: usize = 8192;

/// Messages a remote subscriber's stream lets travel before it reads them.
const SUBSCRIPTION_WINDOW: u32 = 1024;

/// What a broker says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// The largest message it accepts, in bytes.
    pub max_message: u64,
    /// The farcall version it runs.
    pub version: String,
}

/// One delivery as it travels to a remote consumer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireDelivery {
    /// Names the delivery for ack and nack.
    pub tag: u64,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub attempt: u32,
    /// The message.
    pub payload: Bytes,
}

/// One item of a remote subscription.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
/// [`ObjectId::BROKER`] by [`Broker::expose`](crate::Broker::expose) (what
/// `farcall broker serve` runs). [`Broker::connect`](crate::Broker::connect)
/// is the typed API on top.
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
}

// ---------------------------------------------------------------- server

/// Serves an engine to other nodes.
#[derive(Debug)]
struct Server {
    engine: Arc<Engine>,
    /// Which node attached each consumer, by (queue, consumer id).
    owners: Arc<Mutex<HashMap<(String, u64), NodeId>>>,
}

fn caller() -> Option<NodeId> {
    CallContext::current().map(|cx| cx.caller)
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
        Ok(self.engine.declare(&queue, config)?.config().clone())
    }

    async fn send(&self, queue: String, payload: Bytes) -> Result<(), BrokerError> {
        self.engine.send(&queue, payload).await
    }

    async fn consume(
        &self,
        queue: String,
        prefetch: u32,
    ) -> Result<(u64, Stream<WireDelivery>), BrokerError> {
        let q = self.engine.declare(&queue, None)?;
        let prefetch = prefetch.clamp(1, farcall_runtime::remote::MAX_WINDOW);
        let mut consumer = q.consume(prefetch)?;
        let id = consumer.id();
        let owner = caller().unwrap_or(NodeId(0));
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
        Ok((id, stream.with_window(prefetch)))
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
        let r = self.engine.publish(&subject, payload);
        if let Err(e) = &r {
            tracing::debug!(error = %e, "a one-way publish was refused");
        }
        r
    }

    async fn publish_batch(&self, packed: Bytes) -> Result<(), BrokerError> {
        let refused = self.engine.publish_packed(&packed)?;
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
}

/// Serves `engine` at [`ObjectId::BROKER`] on `node`.
pub(crate) fn expose(node: &Node, engine: Arc<Engine>) {
    let server: Arc<dyn BrokerApi> = Arc::new(Server {
        engine,
        owners: Arc::new(Mutex::new(HashMap::new())),
    });
    node.serve_object(ObjectId::BROKER, Arc::new(Dispatcher::new(server)));
}

// ---------------------------------------------------------------- client

/// What the publishing task of a client takes.
#[derive(Debug)]
enum Outgoing {
    Message(String, Bytes),
    /// Answered once everything queued before it is handed to the
    /// connection.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A broker on another node.
#[derive(Debug)]
pub(crate) struct Client {
    node: Node,
    api: Remote<dyn BrokerApi>,
    info: BrokerInfo,
    outgoing: Mutex<Option<tokio::sync::mpsc::Sender<Outgoing>>>,
    publisher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Hands what the application publishes to the connection, batching what
/// queued up while the previous batch was being written.
async fn publisher(api: Remote<dyn BrokerApi>, mut rx: tokio::sync::mpsc::Receiver<Outgoing>) {
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut packer = Packer::default();
        let mut single = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outgoing::Message(subject, payload) => {
                    if packer.is_empty() && single.is_none() {
                        single = Some((subject, payload));
                    } else {
                        if let Some((s, p)) = single.take() {
                            packer.push(&s, &p);
                        }
                        packer.push(&subject, &payload);
                    }
                }
                Outgoing::Flush(done) => flushes.push(done),
            }
            if packer.len() >= BATCH_MESSAGES || packer.bytes() >= BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        let sent = match single {
            Some((subject, payload)) => api.publish(subject, payload).await,
            None if packer.is_empty() => Ok(()),
            None => api.publish_batch(packer.take()).await,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "publishing to the broker failed");
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

impl Client {
    pub(crate) async fn connect(
        node: &Node,
        addr: farcall_runtime::Address,
    ) -> Result<Client, BrokerError> {
        let api: Remote<dyn BrokerApi> = node.connect(addr, ObjectId::BROKER).await?;
        let info = api.info().await.map_err(|e| match e {
            BrokerError::Remote(farcall_runtime::RemoteError::NoSuchObject) => BrokerError::Config(
                "no broker is served there (run `farcall broker serve`, or Broker::expose)".into(),
            ),
            other => other,
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(PUBLISH_QUEUE);
        let task = tokio::spawn(publisher(api.clone(), rx));
        Ok(Client {
            node: node.clone(),
            api,
            info,
            outgoing: Mutex::new(Some(tx)),
            publisher: Mutex::new(Some(task)),
        })
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), BrokerError> {
        crate::error::check_size(payload, self.info.max_message)
    }
}

impl Backend for Client {
    fn max_message(&self) -> u64 {
        self.info.max_message
    }

    fn declare<'a>(&'a self, queue: &'a str, config: Option<QueueConfig>) -> Fut<'a, QueueConfig> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            self.api.declare(queue.to_owned(), config).await
        })
    }

    fn send<'a>(&'a self, queue: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            self.check_size(&payload)?;
            self.api.send(queue.to_owned(), payload).await
        })
    }

    fn consume<'a>(&'a self, queue: &'a str, prefetch: u32) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            let (id, stream) = self.api.consume(queue.to_owned(), prefetch).await?;
            Ok(Box::new(RemoteConsumer {
                stream,
                acker: Arc::new(RemoteAcker {
                    api: self.api.clone(),
                    queue: queue.to_owned(),
                    consumer: id,
                }),
            }) as Box<dyn DeliverySource>)
        })
    }

    fn publish<'a>(&'a self, subject: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(async move {
            validate_subject(subject)?;
            self.check_size(&payload)?;
            let tx = lock(&self.outgoing).clone().ok_or(BrokerError::Closed)?;
            tx.send(Outgoing::Message(subject.to_owned(), payload))
                .await
                .map_err(|_| BrokerError::Closed)
        })
    }

    fn subscribe<'a>(
        &'a self,
        pattern: &'a str,
        options: SubscribeOptions,
    ) -> Fut<'a, Box<dyn MessageSource>> {
        Box::pin(async move {
            crate::subject::Pattern::parse(pattern)?;
            let stream = self.api.subscribe(pattern.to_owned(), options).await?;
            Ok(Box::new(RemoteSubscription {
                stream,
                dropped: 0,
                ended: false,
                pattern: pattern.to_owned(),
                pending: VecDeque::new(),
            }) as Box<dyn MessageSource>)
        })
    }

    fn stats(&self) -> Fut<'_, Stats> {
        Box::pin(self.api.stats())
    }

    fn node(&self) -> Option<Node> {
        Some(self.node.clone())
    }

    fn flush(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            let Some(tx) = lock(&self.outgoing).clone() else {
                return Ok(());
            };
            let (done, wait) = tokio::sync::oneshot::channel();
            tx.send(Outgoing::Flush(done))
                .await
                .map_err(|_| BrokerError::Closed)?;
            wait.await.map_err(|_| BrokerError::Closed)
        })
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            // What was published goes out before the handle lets go.
            drop(lock(&self.outgoing).take());
            let task = lock(&self.publisher).take();
            if let Some(task) = task {
                let _ = task.await;
            }
            Ok(())
        })
    }
}

#[derive(Debug)]
struct RemoteConsumer {
    stream: Stream<WireDelivery>,
    acker: Arc<RemoteAcker>,
}

impl DeliverySource for RemoteConsumer {
    fn next(&mut self) -> Fut<'_, Option<RawDelivery>> {
        Box::pin(async move {
            match self.stream.next().await {
                None => Ok(None),
                Some(Ok(d)) => Ok(Some(RawDelivery {
                    tag: d.tag,
                    attempt: d.attempt,
                    payload: d.payload,
                })),
                Some(Err(e)) => Err(e.into()),
            }
        })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.acker.clone()
    }
}

#[derive(Debug)]
struct RemoteAcker {
    api: Remote<dyn BrokerApi>,
    queue: String,
    consumer: u64,
}

impl Acker for RemoteAcker {
    fn ack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(self.api.ack(self.queue.clone(), self.consumer, tag))
    }

    fn nack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(self.api.nack(self.queue.clone(), self.consumer, tag))
    }
}

#[derive(Debug)]
struct RemoteSubscription {
    stream: Stream<WireMessage>,
    dropped: u64,
    ended: bool,
    pattern: String,
    pending: VecDeque<(String, Bytes)>,
}

impl MessageSource for RemoteSubscription {
    fn try_next(&mut self) -> Option<(Subject, Bytes)> {
        self.pending
            .pop_front()
            .map(|(s, p)| (Subject::Owned(s), p))
    }

    fn next(&mut self) -> Fut<'_, Option<(Subject, Bytes)>> {
        Box::pin(async move {
            if let Some(m) = self.try_next() {
                return Ok(Some(m));
            }
            loop {
                if self.ended {
                    return Ok(None);
                }
                return match self.stream.next().await {
                    None => {
                        self.ended = true;
                        Ok(None)
                    }
                    Some(Ok(WireMessage::Messages(packed))) => {
                        for m in crate::pack::unpack(&packed) {
                            match m {
                                Ok((s, p)) => self.pending.push_back((s.to_owned(), p)),
                                Err(e) => {
                                    self.ended = true;
                                    return Err(BrokerError::Decode(e.to_string()));
                                }
                            }
                        }
                        match self.try_next() {
                            Some(m) => Ok(Some(m)),
                            None => continue,
                        }
                    }
                    Some(Ok(WireMessage::Dropped { total })) => {
                        self.dropped = total;
                        continue;
                    }
                    Some(Ok(WireMessage::Cut { buffer })) => {
                        self.ended = true;
                        Err(BrokerError::SlowSubscriber {
                            pattern: self.pattern.clone(),
                            buffer,
                        })
                    }
                    Some(Err(e)) => {
                        self.ended = true;
                        Err(e.into())
                    }
                };
            }
        })
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
