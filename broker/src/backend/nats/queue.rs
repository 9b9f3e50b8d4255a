//! Queues on NATS: a queue's JetStream stream and durable consumer, the
//! configuration kept in the stream's metadata, and the farcall consumers
//! that pull from it (acks, refusals, dead letters).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{
    CONSUMER, META_CONFIG, META_NAME, Nats, admin, backend_err, queue_subject, stream_name,
};
use crate::backend::{Acker, DeliverySource, Fut};
use crate::config::{QueueConfig, QueueStats};
use crate::engine::{DLQ_SUFFIX, RawDelivery, lock};
use crate::error::BrokerError;
use crate::subject::validate_queue_name;

fn encode_config(c: &QueueConfig) -> String {
    format!(
        "durable={};ack_wait_ms={};max_deliver={};max_depth={}",
        c.durable,
        c.ack_wait.as_millis(),
        c.max_deliver,
        c.max_depth
    )
}

pub(super) fn decode_config(s: &str) -> Option<QueueConfig> {
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
impl Nats {
    pub(super) async fn declare_queue(
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

    pub(super) async fn send_to(&self, name: &str, payload: Bytes) -> Result<(), BrokerError> {
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

    pub(super) async fn queue_stats(&self) -> Result<Vec<QueueStats>, BrokerError> {
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

impl Nats {
    /// A consumer of `queue` (configured with `config`) on `messages`,
    /// which moves a message out of attempts to the dead-letter queue.
    pub(super) fn delivery_source(
        &self,
        queue: &str,
        config: QueueConfig,
        messages: Feed,
    ) -> Box<dyn DeliverySource> {
        let dead = (config.max_deliver > 0 && !queue.ends_with(DLQ_SUFFIX)).then(|| DeadLetter {
            queue: format!("{queue}{DLQ_SUFFIX}"),
            max_deliver: config.max_deliver,
            config: QueueConfig {
                max_deliver: 0,
                ..config
            },
            nats: self.clone(),
        });
        Box::new(NatsConsumer {
            messages,
            acker: Arc::new(NatsAcker {
                client: self.client.clone(),
                queue: queue.to_owned(),
                replies: Mutex::new(HashMap::new()),
                dead,
            }),
            next_tag: 1,
        })
    }
}

fn mismatch(name: &str, have: &QueueConfig, asked: &QueueConfig) -> BrokerError {
    BrokerError::QueueConfigMismatch {
        name: name.to_owned(),
        existing: have.clone(),
        asked: asked.clone(),
    }
}

pub(super) struct NatsConsumer {
    pub(super) messages: Feed,
    pub(super) acker: Arc<NatsAcker>,
    pub(super) next_tag: u64,
}

/// Where a consumer's messages come from.
pub(super) enum Feed {
    /// Pulled without end, a prefetch at a time.
    Endless(Box<consumer::pull::Stream>),
    /// Pulled a batch at a time, each of no more than is still wanted
    /// (see `admin.rs`).
    UpTo(Box<super::admin::Wanted>),
}

impl Feed {
    async fn next(&mut self) -> Option<Result<jetstream::Message, BrokerError>> {
        match self {
            Feed::Endless(s) => s.next().await.map(|r| r.map_err(backend_err)),
            Feed::UpTo(w) => w.next().await,
        }
    }

    /// One message went to the application.
    fn handed_out(&mut self) {
        if let Feed::UpTo(w) = self {
            w.handed_out();
        }
    }
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
                    // The queue's stream (and its consumer) was deleted.
                    Some(Err(BrokerError::Backend(why))) if why.contains("Consumer Deleted") => {
                        return Err(BrokerError::NoSuchQueue {
                            name: self.acker.queue.clone(),
                        });
                    }
                    Some(Err(e)) => return Err(e),
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
                self.messages.handed_out();
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
pub(super) struct NatsAcker {
    pub(super) client: async_nats::Client,
    pub(super) queue: String,
    /// The deliveries not yet answered: reply subject, attempt, message,
    /// stream sequence.
    pub(super) replies: Mutex<HashMap<u64, Held>>,
    /// Where a message out of attempts goes, and how to get it there.
    pub(super) dead: Option<DeadLetter>,
}

/// A delivery not yet answered: its reply subject, attempt, message and
/// stream sequence.
pub(super) type Held = (async_nats::Subject, u32, Bytes, u64);

/// A queue's dead-letter queue, reached from its consumers.
pub(super) struct DeadLetter {
    pub(super) queue: String,
    pub(super) config: QueueConfig,
    pub(super) max_deliver: u32,
    pub(super) nats: Nats,
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
