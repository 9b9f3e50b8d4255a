//! The NATS backend (feature `nats`): the same broker API on a NATS server
//! or cluster.
//!
//! - Topics are NATS subjects, wildcards one to one.
//! - A queue `q` is the JetStream stream `FARCALL_Q_<q escaped>` on the
//!   subject `_FARCALL.q.<q>`, with work-queue retention (a message is gone
//!   once acknowledged), file storage if durable and memory storage if not,
//!   and one durable pull consumer `farcall` that every farcall consumer of
//!   the queue pulls from (competing consumers). Ack-wait is the consumer's;
//!   max-deliver is counted by JetStream and enforced here: a delivery past
//!   the last attempt is moved to `<q>.dlq` (published there, then
//!   acknowledged here) instead of being handed out.
//! - Mediated RPC is NATS request/reply on `_FARCALL.rpc.<q>` with the queue
//!   group `farcall`; a call that finds no server retries until its
//!   deadline, so one made before any server is up is served when one
//!   starts.
//!
//! Streams are created with [`NatsOptions::replicas`] replicas (from the
//! `FARCALL_NATS_REPLICAS` environment variable when connecting with
//! [`Broker::connect`](crate::Broker::connect); 1 by default).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use farcall_runtime::remote::{Carrier, CarrierFuture};
use farcall_runtime::{Fault, Node, NodeId, RemoteError, Service};
use futures_util::{FutureExt, StreamExt};

use crate::backend::{
    Acker, Backend, DeliverySource, Fut, MessageSource, NativeRpc, Reader, Subject,
};
use crate::config::{QueueConfig, QueueStats, Stats, SubscribeOptions};
use crate::engine::{DLQ_SUFFIX, RawDelivery, SubCore, lock};
use crate::error::BrokerError;
use crate::rpc::{Reply, Request, run};
use crate::subject::{Pattern, validate_queue_name, validate_subject};

/// The environment variable that sets the replicas of the streams a
/// broker creates on NATS.
pub const REPLICAS_ENV: &str = "FARCALL_NATS_REPLICAS";
/// The name of the durable consumer every farcall consumer pulls from.
const CONSUMER: &str = "farcall";
/// The metadata key holding a queue's name and configuration.
const META_NAME: &str = "farcall.queue";
const META_CONFIG: &str = "farcall.config";
/// The first pause before a call that found no server tries again.
const NO_RESPONDERS_PAUSE: Duration = Duration::from_millis(20);

/// How a broker on NATS creates what it needs.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// Replicas of each stream (queues): 1 on a single server, 3 on a
    /// three-server cluster to survive the loss of one.
    pub replicas: usize,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions { replicas: 1 }
    }
}

impl NatsOptions {
    /// The options the environment sets: [`REPLICAS_ENV`], else 1.
    pub fn from_env() -> NatsOptions {
        let replicas = std::env::var(REPLICAS_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&r: &usize| (1..=5).contains(&r))
            .unwrap_or(1);
        NatsOptions { replicas }
    }
}

/// The servers in `urls` (`nats://host:port`, separated by commas).
pub(crate) fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    let addrs: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse()
                .map_err(|e| format!("{u:?} is not a NATS server address: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(format!("{urls:?} names no NATS server"));
    }
    Ok(addrs)
}

/// How long one administrative JetStream call (stream, consumer) may take:
/// during a cluster's leader election one can go unanswered.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `call`, failing with a clear error if it fails or takes longer than
/// [`ADMIN_TIMEOUT`].
async fn admin<T, E: fmt::Display>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(ADMIN_TIMEOUT, call).await {
        Ok(r) => r.map_err(|e| BrokerError::Backend(format!("{what}: {e}"))),
        Err(_) => Err(BrokerError::Backend(format!(
            "{what}: no answer within {ADMIN_TIMEOUT:?}"
        ))),
    }
}

fn backend_err(e: impl fmt::Display) -> BrokerError {
    BrokerError::Backend(e.to_string())
}

/// The stream of queue `name`: `FARCALL_Q_` and the name with every byte
/// outside `A-Z a-z 0-9 -` escaped as `_XX`.
pub(crate) fn stream_name(name: &str) -> String {
    let mut s = String::from("FARCALL_Q_");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            s.push(b as char);
        } else {
            let _ = write!(s, "_{b:02X}");
        }
    }
    s
}

fn queue_subject(name: &str) -> String {
    format!("_FARCALL.q.{name}")
}

fn rpc_subject(queue: &str) -> String {
    format!("_FARCALL.rpc.{queue}")
}

fn encode_config(c: &QueueConfig) -> String {
    format!(
        "durable={};ack_wait_ms={};max_deliver={};max_depth={}",
        c.durable,
        c.ack_wait.as_millis(),
        c.max_deliver,
        c.max_depth
    )
}

fn decode_config(s: &str) -> Option<QueueConfig> {
    let mut c = QueueConfig::default();
    for part in s.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "durable" => c.durable = v.parse().ok()?,
            "ack_wait_ms" => c.ack_wait = Duration::from_millis(v.parse().ok()?),
            "max_deliver" => c.max_deliver = v.parse().ok()?,
            "max_depth" => c.max_depth = v.parse().ok()?,
            _ => {}
        }
    }
    Some(c)
}

/// A broker on a NATS server or cluster. Clones share the connection and
/// the table of known queues (a consumer keeps one to dead-letter).
#[derive(Clone)]
pub(crate) struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    options: NatsOptions,
    caller: NodeId,
    /// The server's largest message (asked once: `server_info` copies).
    max_payload: u64,
    /// Queues known to exist, with their configuration.
    known: Arc<Mutex<HashMap<String, QueueConfig>>>,
}

impl fmt::Debug for Nats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nats")
            .field("max_payload", &self.max_payload)
            .field("options", &self.options)
            .finish()
    }
}

impl Nats {
    /// Connects to the NATS server at `url` (`nats://host:port`, or several
    /// servers of one cluster separated by commas).
    pub(crate) async fn connect(url: &str, options: NatsOptions) -> Result<Nats, BrokerError> {
        let client = async_nats::ConnectOptions::new()
            .request_timeout(None)
            .retain_servers_order()
            .connect(server_addrs(url).map_err(BrokerError::Config)?)
            .await
            .map_err(|e| BrokerError::Backend(format!("cannot connect to {url}: {e}")))?;
        let js = jetstream::new(client.clone());
        let max_payload = client.server_info().max_payload as u64;
        Ok(Nats {
            client,
            js,
            options,
            caller: NodeId::random(),
            max_payload,
            known: Arc::default(),
        })
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), BrokerError> {
        crate::error::check_size(payload, self.max_payload)
    }

    async fn declare_queue(
        &self,
        name: &str,
        asked: Option<QueueConfig>,
    ) -> Result<QueueConfig, BrokerError> {
        validate_queue_name(name)?;
        if let Some(have) = lock(&self.known).get(name).cloned() {
            return match asked {
                Some(a) if a != have => Err(mismatch(name, &have, &a)),
                _ => Ok(have),
            };
        }
        let wanted = asked.clone().unwrap_or_default();
        let config = stream::Config {
            name: stream_name(name),
            subjects: vec![queue_subject(name)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: if wanted.durable {
                stream::StorageType::File
            } else {
                stream::StorageType::Memory
            },
            max_messages: i64::try_from(wanted.max_depth).unwrap_or(i64::MAX),
            discard: stream::DiscardPolicy::New,
            num_replicas: self.options.replicas,
            metadata: HashMap::from([
                (META_NAME.to_owned(), name.to_owned()),
                (META_CONFIG.to_owned(), encode_config(&wanted)),
            ]),
            ..Default::default()
        };
        let stream = admin("creating the stream", self.js.get_or_create_stream(config)).await?;
        let have = stream
            .cached_info()
            .config
            .metadata
            .get(META_CONFIG)
            .and_then(|s| decode_config(s))
            .unwrap_or(wanted);
        if let Some(a) = &asked
            && *a != have
        {
            return Err(mismatch(name, &have, a));
        }
        let max_deliver = -1;
        let consumer_config = consumer::pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: have.ack_wait,
            max_deliver,
            max_ack_pending: 100_000,
            ..Default::default()
        };
        admin(
            "creating the consumer",
            stream.get_or_create_consumer(CONSUMER, consumer_config),
        )
        .await?;
        lock(&self.known).insert(name.to_owned(), have.clone());
        Ok(have)
    }

    async fn send_to(&self, name: &str, payload: Bytes) -> Result<(), BrokerError> {
        let ack = self
            .js
            .publish(queue_subject(name), payload)
            .await
            .map_err(backend_err)?;
        ack.await.map_err(|e| {
            let text = e.to_string();
            if text.contains("maximum messages exceeded") {
                BrokerError::QueueFull {
                    name: name.to_owned(),
                    depth: lock(&self.known).get(name).map_or(0, |c| c.max_depth),
                }
            } else {
                backend_err(text)
            }
        })?;
        Ok(())
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStats>, BrokerError> {
        let mut out = Vec::new();
        let mut streams = self.js.streams();
        while let Some(info) = streams.next().await {
            let info = info.map_err(backend_err)?;
            let Some(name) = info.config.metadata.get(META_NAME).cloned() else {
                continue;
            };
            let config = info
                .config
                .metadata
                .get(META_CONFIG)
                .and_then(|s| decode_config(s))
                .unwrap_or_default();
            let (in_flight, redelivered, pending) =
                match self.js.get_stream(&info.config.name).await {
                    Ok(s) => match s.consumer_info(CONSUMER).await {
                        Ok(c) => (
                            c.num_ack_pending as u64,
                            // Every delivery after the first of a message
                            // (JetStream's `num_redelivered` counts only
                            // those in flight now).
                            c.delivered
                                .consumer_sequence
                                .saturating_sub(c.delivered.stream_sequence),
                            c.num_pending,
                        ),
                        Err(_) => (0, 0, info.state.messages),
                    },
                    Err(_) => (0, 0, info.state.messages),
                };
            out.push(QueueStats {
                name,
                durable: config.durable,
                depth: pending,
                in_flight,
                consumers: 0,
                sent: info.state.last_sequence,
                acked: info.state.last_sequence.saturating_sub(info.state.messages),
                redelivered,
                dead_lettered: 0,
                segments: 0,
                log_bytes: info.state.bytes,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn mismatch(name: &str, have: &QueueConfig, asked: &QueueConfig) -> BrokerError {
    BrokerError::QueueConfigMismatch {
        name: name.to_owned(),
        reason: format!("it has {have:?}, asked for {asked:?}"),
    }
}

impl Backend for Nats {
    fn max_message(&self) -> u64 {
        self.max_payload
    }

    fn declare<'a>(&'a self, queue: &'a str, config: Option<QueueConfig>) -> Fut<'a, QueueConfig> {
        Box::pin(self.declare_queue(queue, config))
    }

    fn send<'a>(&'a self, queue: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(async move {
            self.check_size(&payload)?;
            self.declare_queue(queue, None).await?;
            self.send_to(queue, payload).await
        })
    }

    fn consume<'a>(&'a self, queue: &'a str, prefetch: u32) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            let config = self.declare_queue(queue, None).await?;
            let stream =
                admin("finding the stream", self.js.get_stream(stream_name(queue))).await?;
            let consumer: consumer::PullConsumer =
                admin("finding the consumer", stream.get_consumer(CONSUMER)).await?;
            let messages = admin(
                "starting to pull",
                consumer
                    .stream()
                    .max_messages_per_batch(prefetch.clamp(1, 10_000) as usize)
                    .messages(),
            )
            .await?;
            let dead =
                (config.max_deliver > 0 && !queue.ends_with(DLQ_SUFFIX)).then(|| DeadLetter {
                    queue: format!("{queue}{DLQ_SUFFIX}"),
                    max_deliver: config.max_deliver,
                    config: QueueConfig {
                        max_deliver: 0,
                        ..config
                    },
                    nats: self.clone(),
                });
            Ok(Box::new(NatsConsumer {
                messages,
                acker: Arc::new(NatsAcker {
                    client: self.client.clone(),
                    queue: queue.to_owned(),
                    replies: Mutex::new(HashMap::new()),
                    dead,
                }),
                next_tag: 1,
            }) as Box<dyn DeliverySource>)
        })
    }

    fn publish<'a>(&'a self, subject: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(async move {
            validate_subject(subject)?;
            self.check_size(&payload)?;
            self.client
                .publish(subject.to_owned(), payload)
                .await
                .map_err(backend_err)
        })
    }

    fn subscribe<'a>(
        &'a self,
        pattern: &'a str,
        options: SubscribeOptions,
    ) -> Fut<'a, Box<dyn MessageSource>> {
        Box::pin(async move {
            let parsed = Pattern::parse(pattern)?;
            if options.buffer == 0 {
                return Err(BrokerError::Rejected(
                    "a subscription's buffer must hold at least one message".into(),
                ));
            }
            let mut sub = self
                .client
                .subscribe(pattern.to_owned())
                .await
                .map_err(backend_err)?;
            // A round trip: the server has the subscription once it answers
            // what this client sent after it, so a message published from
            // anywhere after `subscribe` returns reaches it.
            admin("a round trip to the server", self.js.query_account()).await?;
            let core = SubCore::new(0, parsed, options);
            let feed = core.clone();
            let task = tokio::spawn(async move {
                // What arrived together goes into the buffer together.
                let mut batch: Vec<(Arc<str>, Bytes)> = Vec::with_capacity(256);
                let mut open = true;
                while open {
                    let Some(m) = sub.next().await else { break };
                    let add = |m: async_nats::Message, batch: &mut Vec<(Arc<str>, Bytes)>| {
                        let subject = match batch.last() {
                            Some((last, _)) if **last == *m.subject.as_str() => last.clone(),
                            _ => Arc::from(m.subject.as_str()),
                        };
                        batch.push((subject, m.payload));
                    };
                    add(m, &mut batch);
                    while batch.len() < 256 {
                        match sub.next().now_or_never() {
                            Some(Some(m)) => add(m, &mut batch),
                            Some(None) => {
                                open = false;
                                break;
                            }
                            None => break,
                        }
                    }
                    feed.push_many(batch.iter());
                    batch.clear();
                }
                feed.close();
            });
            Ok(Box::new(NatsSubscription {
                reader: Reader::new(core),
                task,
            }) as Box<dyn MessageSource>)
        })
    }

    fn stats(&self) -> Fut<'_, Stats> {
        Box::pin(async move {
            Ok(Stats {
                queues: self.queue_stats().await?,
                ..Stats::default()
            })
        })
    }

    fn node(&self) -> Option<Node> {
        None
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async move { self.client.flush().await.map_err(backend_err) })
    }

    fn flush(&self) -> Fut<'_, ()> {
        Box::pin(async move { self.client.flush().await.map_err(backend_err) })
    }

    fn native_rpc(&self) -> Option<&dyn NativeRpc> {
        Some(self)
    }
}

struct NatsConsumer {
    messages: consumer::pull::Stream,
    acker: Arc<NatsAcker>,
    next_tag: u64,
}

impl fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("queue", &self.acker.queue)
            .finish()
    }
}

impl DeliverySource for NatsConsumer {
    fn next(&mut self) -> Fut<'_, Option<RawDelivery>> {
        Box::pin(async move {
            loop {
                let msg = match self.messages.next().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(backend_err(e)),
                    Some(Ok(m)) => m,
                };
                let (attempt, sequence) = msg
                    .info()
                    .map(|i| {
                        let attempt = u32::try_from(i.delivered).unwrap_or(u32::MAX);
                        (attempt, i.stream_sequence)
                    })
                    .unwrap_or((1, 0));
                if attempt > 1 {
                    // Delivered again: an earlier delivery of it that this
                    // consumer holds is over, its ack refused.
                    lock(&self.acker.replies).retain(|_, held| held.3 != sequence);
                }
                if let Some(dead) = &self.acker.dead
                    && attempt > dead.max_deliver
                {
                    // Out of attempts (its last ack-wait passed).
                    match dead.put(msg.payload.clone()).await {
                        Ok(()) => {
                            let _ = msg.ack_with(jetstream::AckKind::Term).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "dead-lettering failed; the message stays");
                        }
                    }
                    continue;
                }
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                let tag = self.next_tag;
                self.next_tag += 1;
                lock(&self.acker.replies)
                    .insert(tag, (reply, attempt, msg.payload.clone(), sequence));
                return Ok(Some(RawDelivery {
                    tag,
                    attempt,
                    payload: msg.payload.clone(),
                }));
            }
        })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        self.acker.clone()
    }
}

/// Acknowledges deliveries by answering on their JetStream reply subjects,
/// waiting for the server to confirm.
struct NatsAcker {
    client: async_nats::Client,
    queue: String,
    /// The deliveries not yet answered: reply subject, attempt, message,
    /// stream sequence.
    replies: Mutex<HashMap<u64, Held>>,
    /// Where a message out of attempts goes, and how to get it there.
    dead: Option<DeadLetter>,
}

/// A delivery not yet answered: its reply subject, attempt, message and
/// stream sequence.
type Held = (async_nats::Subject, u32, Bytes, u64);

/// A queue's dead-letter queue, reached from its consumers.
struct DeadLetter {
    queue: String,
    config: QueueConfig,
    max_deliver: u32,
    nats: Nats,
}

impl DeadLetter {
    /// Publishes `payload` to the dead-letter queue (created if need be).
    async fn put(&self, payload: Bytes) -> Result<(), BrokerError> {
        let nats = &self.nats;
        nats.declare_queue(&self.queue, Some(self.config.clone()))
            .await
            .or_else(|e| match e {
                // Made by someone else with another configuration: use it.
                BrokerError::QueueConfigMismatch { .. } => Ok(self.config.clone()),
                other => Err(other),
            })?;
        nats.send_to(&self.queue, payload).await
    }
}

impl fmt::Debug for NatsAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAcker")
            .field("queue", &self.queue)
            .finish()
    }
}

impl NatsAcker {
    async fn reply(
        &self,
        reply: async_nats::Subject,
        what: &'static [u8],
    ) -> Result<(), BrokerError> {
        let req = async_nats::Request::new()
            .payload(Bytes::from_static(what))
            .timeout(Some(Duration::from_secs(10)));
        self.client
            .send_request(reply, req)
            .await
            .map(|_| ())
            .map_err(backend_err)
    }

    fn take(&self, tag: u64) -> Result<Held, BrokerError> {
        lock(&self.replies)
            .remove(&tag)
            .ok_or_else(|| BrokerError::NotInFlight {
                queue: self.queue.clone(),
                tag,
            })
    }

    /// Acks go one way, as JetStream clients send them: the server drops
    /// an ack for a delivery it already gave back.
    async fn ack_tag(&self, tag: u64) -> Result<(), BrokerError> {
        let (reply, ..) = self.take(tag)?;
        self.client
            .publish(reply, Bytes::from_static(b"+ACK"))
            .await
            .map_err(backend_err)
    }

    /// Refused on its last attempt: to the dead-letter queue now.
    async fn nack_tag(&self, tag: u64) -> Result<(), BrokerError> {
        let (reply, attempt, payload, _) = self.take(tag)?;
        if let Some(dead) = &self.dead
            && attempt >= dead.max_deliver
        {
            dead.put(payload).await?;
            return self.reply(reply, b"+TERM").await;
        }
        self.reply(reply, b"-NAK").await
    }
}

impl Drop for NatsAcker {
    fn drop(&mut self) {
        // What the consumer held goes back now rather than after ack-wait.
        // In the order they were sent, so that they come again in order.
        let mut held: Vec<_> = lock(&self.replies)
            .drain()
            .map(|(_, (r, _, _, sequence))| (sequence, r))
            .collect();
        held.sort_unstable_by_key(|(sequence, _)| *sequence);
        if held.is_empty() {
            return;
        }
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for (_, r) in held {
                    let _ = client.publish(r, Bytes::from_static(b"-NAK")).await;
                }
                let _ = client.flush().await;
            });
        }
    }
}

impl Acker for NatsAcker {
    fn ack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(self.ack_tag(tag))
    }

    fn nack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(self.nack_tag(tag))
    }
}

struct NatsSubscription {
    reader: Reader,
    /// Moves what the NATS client receives into the reader's buffer.
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for NatsSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSubscription").finish()
    }
}

impl Drop for NatsSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MessageSource for NatsSubscription {
    fn try_next(&mut self) -> Option<(Subject, Bytes)> {
        self.reader.try_next()
    }

    fn next(&mut self) -> Fut<'_, Option<(Subject, Bytes)>> {
        Box::pin(self.reader.next())
    }

    fn dropped(&self) -> u64 {
        self.reader.dropped()
    }
}

// ---------------------------------------------------------------- mediated RPC

/// Carries calls as NATS requests to a queue group.
struct NatsCarrier {
    client: async_nats::Client,
    subject: String,
    caller: NodeId,
    next: AtomicU64,
}

impl fmt::Debug for NatsCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsCarrier")
            .field("subject", &self.subject)
            .finish()
    }
}

impl NatsCarrier {
    fn envelope(
        &self,
        method: u64,
        args: Bytes,
        reply: bool,
        deadline: Duration,
        idempotent: bool,
    ) -> Result<Bytes, RemoteError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // NATS carries the reply subject: an empty one says "answer".
        let reply_to = reply.then(String::new);
        Request::new(
            id,
            self.caller,
            method,
            args,
            reply_to,
            deadline,
            idempotent,
        )
        .encode()
    }
}

impl Carrier for NatsCarrier {
    fn call(
        &self,
        method: u64,
        payload: Bytes,
        deadline: Duration,
        idempotent: bool,
    ) -> CarrierFuture<'_, Bytes> {
        Box::pin(async move {
            let until = Instant::now() + deadline;
            let bytes = self.envelope(method, payload, true, deadline, idempotent)?;
            let mut pause = NO_RESPONDERS_PAUSE;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(RemoteError::DeadlineExceeded);
                }
                let req = async_nats::Request::new()
                    .payload(bytes.clone())
                    .timeout(Some(left));
                match self.client.send_request(self.subject.clone(), req).await {
                    Ok(msg) => {
                        let reply: Reply = farcall_runtime::codec::decode(&msg.payload)
                            .map_err(|e| RemoteError::Decode(e.to_string()))?;
                        return reply.outcome.map_err(RemoteError::from);
                    }
                    Err(e) => match e.kind() {
                        async_nats::RequestErrorKind::NoResponders => {
                            // No server yet: the call waits for one.
                            tokio::time::sleep(pause.min(left)).await;
                            pause = (pause * 2).min(Duration::from_millis(250));
                        }
                        async_nats::RequestErrorKind::TimedOut => {
                            return Err(RemoteError::DeadlineExceeded);
                        }
                        _ => return Err(RemoteError::Disconnected(e.to_string())),
                    },
                }
            }
        })
    }

    fn send(&self, method: u64, payload: Bytes) -> CarrierFuture<'_, ()> {
        Box::pin(async move {
            let bytes = self.envelope(method, payload, false, Duration::from_secs(30), false)?;
            self.client
                .publish(self.subject.clone(), bytes)
                .await
                .map_err(|e| RemoteError::Disconnected(e.to_string()))
        })
    }
}

impl NativeRpc for Nats {
    fn carrier(&self, queue: &str) -> Arc<dyn Carrier> {
        Arc::new(NatsCarrier {
            client: self.client.clone(),
            subject: rpc_subject(queue),
            caller: self.caller,
            next: AtomicU64::new(1),
        })
    }

    fn serve<'a>(
        &'a self,
        queue: &'a str,
        service: Arc<dyn Service>,
    ) -> Fut<'a, tokio::task::JoinHandle<()>> {
        Box::pin(async move {
            let mut sub = self
                .client
                .queue_subscribe(rpc_subject(queue), CONSUMER.to_owned())
                .await
                .map_err(backend_err)?;
            let client = self.client.clone();
            Ok(tokio::spawn(async move {
                while let Some(msg) = sub.next().await {
                    let service = service.clone();
                    let client = client.clone();
                    tokio::spawn(async move {
                        let req: Request = match farcall_runtime::codec::decode(&msg.payload) {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!(error = %e, "a request that does not decode; dropped");
                                return;
                            }
                        };
                        let id = req.id;
                        let wants_reply = req.reply_to.is_some();
                        let outcome: Result<Bytes, Fault> = run(&service, None, req).await;
                        if let (true, Some(to)) = (wants_reply, msg.reply) {
                            let reply = Reply { id, outcome };
                            if let Ok(b) = postcard::to_stdvec(&reply) {
                                let _ = client.publish(to, Bytes::from(b)).await;
                            }
                        }
                    });
                }
            }))
        })
    }
}
