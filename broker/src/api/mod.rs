//! The typed API: [`Broker`], [`Queue`], [`Topic`] and what they hand out.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use farcall_runtime::{IntoAddress, Node};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, Embedded};
use crate::config::{BrokerConfig, QueueConfig, Stats, SubscribeOptions};
use crate::engine::Engine;
use crate::error::BrokerError;
use crate::polled::Polled;
use crate::rpc::Replies;
use crate::subject::{validate_queue_name, validate_subject};

mod admin;
mod queue;
mod topic;

pub use queue::{Consumer, Delivery, Queue};
pub use topic::{Message, Subscription, Topic};

pub(super) type Encode<T> = fn(&T) -> Result<Bytes, BrokerError>;
pub(super) type Decode<T> = fn(&Bytes) -> Result<T, BrokerError>;

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
        self.expose_as(node, None)
    }

    /// [`Broker::expose`], with per-principal permissions on subjects and
    /// queues (see [`Permissions`](crate::Permissions)): every call that
    /// comes over a connection is checked against them; what is not
    /// allowed is [`BrokerError::Unauthorized`].
    pub fn expose_with(
        &self,
        node: &Node,
        permissions: crate::Permissions,
    ) -> Result<(), BrokerError> {
        self.expose_as(node, Some(permissions))
    }

    fn expose_as(
        &self,
        node: &Node,
        permissions: Option<crate::Permissions>,
    ) -> Result<(), BrokerError> {
        let engine = self.inner.backend.engine().ok_or_else(|| {
            BrokerError::Config("only a broker in this process can be exposed".into())
        })?;
        crate::expose::expose(node, engine.clone(), permissions);
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
