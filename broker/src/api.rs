//! The typed API: [`Broker`], [`Queue`], [`Topic`] and what they hand out.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use farcall_runtime::{IntoAddress, Node};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Acker, Backend, DeliverySource, Embedded, MessageSource, Subject};
use crate::config::{BrokerConfig, DEFAULT_PREFETCH, QueueConfig, Stats, SubscribeOptions};
use crate::engine::{Engine, RawDelivery};
use crate::error::BrokerError;
use crate::polled::Polled;
use crate::rpc::Replies;
use crate::subject::{validate_queue_name, validate_subject};

type Encode<T> = fn(&T) -> Result<Bytes, BrokerError>;
type Decode<T> = fn(&Bytes) -> Result<T, BrokerError>;

fn encode_postcard<T: Serialize>(v: &T) -> Result<Bytes, BrokerError> {
    postcard::to_stdvec(v)
        .map(Bytes::from)
        .map_err(|e| BrokerError::Encode(e.to_string()))
}

fn decode_postcard<T: DeserializeOwned>(b: &Bytes) -> Result<T, BrokerError> {
    farcall_runtime::codec::decode(b).map_err(|e| BrokerError::Decode(e.to_string()))
}

fn raw_encode(b: &Bytes) -> Result<Bytes, BrokerError> {
    Ok(b.clone())
}

fn raw_decode(b: &Bytes) -> Result<Bytes, BrokerError> {
    Ok(b.clone())
}

pub(crate) struct Inner {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) replies: tokio::sync::OnceCell<Arc<Replies>>,
}

/// A message broker: queues (point to point) and topics (publish/subscribe),
/// and mediated RPC on top of queues.
///
/// One API, three ways to run it:
/// - [`Broker::embedded`] / [`Broker::open`]: the broker in this process;
/// - [`Broker::connect`]: a client of a broker on another node (`farcall
///   broker serve`, or any node that [exposes](Broker::expose) one);
/// - the same calls either way, so code moves from one to the other by
///   changing how the `Broker` is made.
///
/// Typed messages travel in postcard; the `*_raw` variants carry bytes as
/// they are (the `farcall` command sends JSON text that way). Cloning a
/// `Broker` is cheap and shares it.
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("backend", &self.inner.backend)
            .finish()
    }
}

impl Broker {
    fn from_backend(backend: Box<dyn Backend>) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                backend,
                replies: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// A broker in this process, in memory: durable queues need
    /// [`Broker::open`] with a data directory.
    pub fn embedded() -> Broker {
        let engine = Engine::open(BrokerConfig::default())
            .unwrap_or_else(|_| unreachable!("a broker without storage opens"));
        Broker::from_backend(Box::new(Embedded { engine }))
    }

    /// A broker in this process with `config`: with a data directory,
    /// durable queues found there come back with every message not
    /// acknowledged.
    pub fn open(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let engine = Engine::open(config)?;
        Ok(Broker::from_backend(Box::new(Embedded { engine })))
    }

    /// A client of the broker served at `addr` (by `farcall broker serve`
    /// or [`Broker::expose`]), calling from a node of its own.
    pub async fn connect(addr: impl IntoAddress) -> Result<Broker, BrokerError> {
        Broker::connect_on(&Node::new(), addr).await
    }

    /// A client of the broker served at `addr`, calling from `node`.
    pub async fn connect_on(node: &Node, addr: impl IntoAddress) -> Result<Broker, BrokerError> {
        let addr = addr
            .into_address()
            .map_err(|e| BrokerError::Config(format!("not a broker address: {e}")))?;
        if let farcall_runtime::Address::Nats { .. } = &addr {
            return Broker::connect_nats_address(&addr).await;
        }
        let client = crate::backend::node::Client::connect(node, addr).await?;
        Ok(Broker::from_backend(Box::new(client)))
    }

    #[cfg(feature = "nats")]
    async fn connect_nats_address(addr: &farcall_runtime::Address) -> Result<Broker, BrokerError> {
        Broker::connect_nats(&addr.to_string(), farcall_runtime::NatsOptions::from_env()).await
    }

    #[cfg(not(feature = "nats"))]
    async fn connect_nats_address(addr: &farcall_runtime::Address) -> Result<Broker, BrokerError> {
        Err(BrokerError::Config(format!(
            "{addr}: this build has no NATS backend (enable the `nats` feature of farcall-broker)"
        )))
    }

    /// A broker on the NATS server (or cluster) at `url`: `nats://host:port`,
    /// or several servers of a cluster separated by commas
    /// (`nats://a:4222,nats://b:4222`), tried in turn and failed over to;
    /// the client also learns the cluster's other servers from the one it
    /// reaches. `options` sets the replicas of the streams it creates. A `nats://`
    /// address given to [`Broker::connect`] comes here with
    /// [`NatsOptions::from_env`](crate::NatsOptions::from_env).
    #[cfg(feature = "nats")]
    pub async fn connect_nats(
        url: &str,
        options: farcall_runtime::NatsOptions,
    ) -> Result<Broker, BrokerError> {
        let nats = crate::backend::nats::Nats::connect(url, options).await?;
        Ok(Broker::from_backend(Box::new(nats)))
    }

    /// Serves this broker to other nodes through `node` (at the well-known
    /// [`ObjectId::BROKER`](farcall_runtime::ObjectId::BROKER)): they reach
    /// it with [`Broker::connect`] and `node`'s address. Only a broker in
    /// this process can be exposed.
    pub fn expose(&self, node: &Node) -> Result<(), BrokerError> {
        let engine = self.inner.backend.engine().ok_or_else(|| {
            BrokerError::Config("only a broker in this process can be exposed".into())
        })?;
        crate::expose::expose(node, engine.clone());
        Ok(())
    }

    /// The largest message the broker accepts, in bytes.
    pub fn max_message(&self) -> u64 {
        self.inner.backend.max_message()
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    /// The queue `name` for messages of type `T`, created with the default
    /// configuration (not durable) if it does not exist; an existing queue
    /// is used as it is.
    pub async fn queue<T>(&self, name: &str) -> Result<Queue<T>, BrokerError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.make_queue(name, None, encode_postcard::<T>, decode_postcard::<T>)
            .await
    }

    /// The queue `name` with `config` ([`QueueConfig::durable`] for one on
    /// disk); an existing queue must have the same configuration.
    pub async fn queue_with<T>(
        &self,
        name: &str,
        config: QueueConfig,
    ) -> Result<Queue<T>, BrokerError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.make_queue(
            name,
            Some(config),
            encode_postcard::<T>,
            decode_postcard::<T>,
        )
        .await
    }

    /// The queue `name` carrying bytes as they are.
    pub async fn queue_raw(
        &self,
        name: &str,
        config: Option<QueueConfig>,
    ) -> Result<Queue<Bytes>, BrokerError> {
        self.make_queue(name, config, raw_encode, raw_decode).await
    }

    async fn make_queue<T>(
        &self,
        name: &str,
        config: Option<QueueConfig>,
        encode: Encode<T>,
        decode: Decode<T>,
    ) -> Result<Queue<T>, BrokerError> {
        validate_queue_name(name)?;
        let config = self.backend().declare(name, config).await?;
        Ok(Queue {
            broker: self.clone(),
            name: name.to_owned(),
            config,
            encode,
            decode,
        })
    }

    /// A typed handle to publish on `subject`.
    pub fn topic<T: Serialize>(&self, subject: &str) -> Result<Topic<T>, BrokerError> {
        validate_subject(subject)?;
        Ok(Topic {
            broker: self.clone(),
            subject: subject.to_owned(),
            _t: PhantomData,
        })
    }

    /// Publishes `msg` on `subject`, to every subscription whose pattern
    /// matches. Returns once the broker has it (in this process) or once it
    /// is queued to go (a remote broker: a subject or size the broker
    /// refuses is caught here first; [`Broker::flush`] waits until it left,
    /// [`Broker::close`] sends what is queued before letting go).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        subject: &str,
        msg: &T,
    ) -> Result<(), BrokerError> {
        let payload = postcard::to_stdvec(msg)
            .map(Bytes::from)
            .map_err(|e| BrokerError::Encode(e.to_string()))?;
        self.publish_raw(subject, payload).await
    }

    /// Waits until everything published through this handle so far is
    /// handed over: to the broker itself in this process, to the
    /// connection for a remote broker (a client queues what it publishes
    /// and sends it in batches), to the NATS client's connection.
    pub async fn flush(&self) -> Result<(), BrokerError> {
        self.backend().flush().await
    }

    /// Publishes bytes as they are.
    pub async fn publish_raw(&self, subject: &str, payload: Bytes) -> Result<(), BrokerError> {
        self.backend().publish(subject, payload).await
    }

    /// Subscribes to `pattern` (`*` matches one token, `>` the rest), with
    /// the default buffer and slow-subscriber policy.
    pub async fn subscribe<T>(&self, pattern: &str) -> Result<Subscription<T>, BrokerError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.subscribe_with(pattern, SubscribeOptions::default())
            .await
    }

    /// Subscribes to `pattern` with a buffer and policy of its own.
    pub async fn subscribe_with<T>(
        &self,
        pattern: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<T>, BrokerError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let source = self.backend().subscribe(pattern, options).await?;
        Ok(Subscription {
            source: Polled::new(source),
            dropped: 0,
            decode: decode_postcard::<T>,
        })
    }

    /// Subscribes to `pattern`, receiving bytes as they were published.
    pub async fn subscribe_raw(
        &self,
        pattern: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription<Bytes>, BrokerError> {
        let source = self.backend().subscribe(pattern, options).await?;
        Ok(Subscription {
            source: Polled::new(source),
            dropped: 0,
            decode: raw_decode,
        })
    }

    /// Every queue's figures (depth, in flight, consumers, ...) and every
    /// subject's (messages, rate).
    pub async fn stats(&self) -> Result<Stats, BrokerError> {
        self.backend().stats().await
    }

    /// Closes the broker.
    ///
    /// A broker in this process takes no more messages, its subscriptions
    /// and consumers end, and durable queues are flushed to disk. A
    /// client of a remote broker sends what it still holds (what
    /// [`Broker::publish`] queued) and returns once the broker has it, so
    /// a program that publishes, closes and exits loses nothing; an error
    /// means the broker may not have it. A NATS client flushes its
    /// connection.
    pub async fn close(&self) -> Result<(), BrokerError> {
        self.backend().close().await
    }
}

/// A queue of messages of type `T`: each message goes to one consumer.
pub struct Queue<T> {
    broker: Broker,
    name: String,
    config: QueueConfig,
    encode: Encode<T>,
    decode: Decode<T>,
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
    /// deliveries.
    pub async fn consume_with(&self, prefetch: u32) -> Result<Consumer<T>, BrokerError> {
        let source = self.broker.backend().consume(&self.name, prefetch).await?;
        let acker = source.acker();
        Ok(Consumer {
            source: Polled::new(source),
            refusing: None,
            acker,
            decode: self.decode,
        })
    }
}

/// Deliveries from a queue to one consumer. Dropping it gives back what it
/// holds unacknowledged (delivered again to another consumer).
pub struct Consumer<T> {
    source: Polled<dyn DeliverySource, Result<Option<RawDelivery>, BrokerError>>,
    /// A delivery that did not decode, being refused: the error comes
    /// once the broker has it back.
    refusing: Option<(NackFuture, BrokerError)>,
    acker: Arc<dyn Acker>,
    decode: Decode<T>,
}

type NackFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a subscription's source gives next: a message and its subject.
type NextMessage = Result<Option<(Subject, Bytes)>, BrokerError>;

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
    body: T,
    tag: u64,
    attempt: u32,
    acker: Arc<dyn Acker>,
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

/// A typed handle to publish messages of type `T` on one subject.
pub struct Topic<T> {
    broker: Broker,
    subject: String,
    _t: PhantomData<fn(T)>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            broker: self.broker.clone(),
            subject: self.subject.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("subject", &self.subject)
            .finish()
    }
}

impl<T: Serialize> Topic<T> {
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Publishes `msg` on the subject.
    pub async fn publish(&self, msg: &T) -> Result<(), BrokerError> {
        self.broker.publish(&self.subject, msg).await
    }
}

/// A message received on a subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Message<T> {
    /// The subject it was published on.
    pub subject: String,
    /// The message.
    pub body: T,
}

/// The messages published on subjects matching a pattern. Dropping it
/// unsubscribes.
pub struct Subscription<T> {
    source: Polled<dyn MessageSource, NextMessage>,
    /// What the source said last of the messages it dropped.
    dropped: u64,
    decode: Decode<T>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("source", &self.source.source())
            .finish()
    }
}

impl<T> Subscription<T> {
    /// The next message; `None` once the subscription ended. An error
    /// item: a message that does not decode as `T` (the subscription goes
    /// on), or the end of a subscriber cut off as slow.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in
    /// `tokio::select!`, say) loses no message; the next call (or poll,
    /// as a `futures_core::Stream`) gets it.
    pub async fn next(&mut self) -> Option<Result<Message<T>, BrokerError>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message<T>, BrokerError>>> {
        // A message already here is taken without a future.
        let here = self.source.at_rest().and_then(|s| s.try_next());
        let got = match here {
            Some(m) => Ok(Some(m)),
            None => ready!(self.source.poll_step(cx, |mut source| {
                Box::pin(async move {
                    let got = source.next().await;
                    (source, got)
                })
            })),
        };
        if let Some(source) = self.source.source() {
            self.dropped = source.dropped();
        }
        Poll::Ready(match got {
            Ok(Some((subject, payload))) => Some((self.decode)(&payload).map(|body| Message {
                subject: subject.into_string(),
                body,
            })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// Messages dropped from this subscription's buffer because it fell
    /// behind (policy [`SlowPolicy::DropOldest`](crate::SlowPolicy::DropOldest)).
    /// The buffer of a remote broker's subscriber is at the broker: its
    /// count arrives with the messages that follow a drop.
    pub fn dropped(&self) -> u64 {
        self.source.source().map_or(self.dropped, |s| s.dropped())
    }
}

/// A subscription is a `futures_core::Stream` of its messages, the same
/// as [`Subscription::next`] gives.
impl<T> futures_core::Stream for Subscription<T> {
    type Item = Result<Message<T>, BrokerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}
