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
//!
//! Here: the options, the connection and the [`Backend`] on it, and topics;
//! queues are in `queue`, mediated RPC in `rpc`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use farcall_runtime::{Node, NodeId};
use futures_util::{FutureExt, StreamExt};

use crate::backend::{
    Backend, DeliverySource, Fut, MessageSource, NativeRpc, Reader, Subject, UpTo,
};
use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::engine::SubCore;
use crate::error::BrokerError;
use crate::subject::{Pattern, validate_subject};

mod admin;
mod headers;
mod queue;
mod rpc;

use farcall_runtime::NatsOptions;

/// The name of the durable consumer every farcall consumer pulls from.
const CONSUMER: &str = "farcall";
/// The metadata key holding a queue's name and configuration.
const META_NAME: &str = "farcall.queue";
const META_CONFIG: &str = "farcall.config";

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
            "{what}: no answer within {}",
            crate::config::Human(ADMIN_TIMEOUT)
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
        let client = connect_options(&options)
            .await
            .map_err(BrokerError::Config)?
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
            Ok(self.delivery_source(queue, config, queue::Feed::Endless(Box::new(messages))))
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

    fn queues(&self) -> Fut<'_, Vec<QueueInfo>> {
        Box::pin(self.queue_infos())
    }

    fn queue_info<'a>(&'a self, queue: &'a str) -> Fut<'a, QueueInfo> {
        Box::pin(Nats::queue_info(self, queue))
    }

    fn purge<'a>(&'a self, queue: &'a str) -> Fut<'a, u64> {
        Box::pin(self.purge_queue(queue))
    }

    fn delete<'a>(&'a self, queue: &'a str) -> Fut<'a, ()> {
        Box::pin(self.delete_queue(queue))
    }

    fn peek<'a>(&'a self, queue: &'a str, count: u32) -> Fut<'a, Vec<PeekedMessage>> {
        Box::pin(self.peek_queue(queue, count))
    }

    fn move_messages<'a>(&'a self, from: &'a str, to: &'a str, max: u64) -> Fut<'a, u64> {
        Box::pin(self.move_between(from, to, max))
    }

    fn consume_up_to<'a>(
        &'a self,
        queue: &'a str,
        prefetch: u32,
        limit: u64,
    ) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            let inner = self.consume_wanted(queue, prefetch, limit).await?;
            Ok(Box::new(UpTo { inner, left: limit }) as Box<dyn DeliverySource>)
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

/// The connect options of `options`: credentials and TLS.
async fn connect_options(options: &NatsOptions) -> Result<async_nats::ConnectOptions, String> {
    use farcall_runtime::NatsAuth;
    let o = async_nats::ConnectOptions::new();
    let mut o = match &options.auth {
        NatsAuth::Token(t) => o.token(t.clone()),
        NatsAuth::UserPassword { user, password } => {
            o.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::NKey(seed) => o.nkey(seed.clone()),
        NatsAuth::CredentialsFile(path) => o.credentials_file(path).await.map_err(|e| {
            format!(
                "cannot read the NATS credentials file {}: {e}",
                path.display()
            )
        })?,
        _ => o,
    };
    if options.tls.require {
        o = o.require_tls(true);
    }
    if let Some(roots) = &options.tls.roots {
        o = o.add_root_certificates(roots.clone());
    }
    if let Some((cert, key)) = &options.tls.client_cert {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}
