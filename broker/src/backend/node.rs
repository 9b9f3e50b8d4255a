//! The node backend: a client of a broker another farcall node serves
//! ([`crate::Broker::connect`]), through [`BrokerApi`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use farcall_runtime::{Node, ObjectId, Remote, Stream};

use super::{Acker, Backend, DeliverySource, Fut, MessageSource, Subject, UpTo};
use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::engine::{RawDelivery, lock};
use crate::error::BrokerError;
use crate::pack::Packer;
use crate::protocol::{
    BATCH_BYTES, BATCH_MESSAGES, BrokerApi, BrokerInfo, WireDelivery, WireMessage,
};
use crate::subject::{validate_queue_name, validate_subject};

/// Messages a client queues for publishing before `publish` waits.
const PUBLISH_QUEUE: usize = 8192;

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

    fn queues(&self) -> Fut<'_, Vec<QueueInfo>> {
        Box::pin(self.api.queues())
    }

    fn queue_info<'a>(&'a self, queue: &'a str) -> Fut<'a, QueueInfo> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            self.api.queue_info(queue.to_owned()).await
        })
    }

    fn purge<'a>(&'a self, queue: &'a str) -> Fut<'a, u64> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            self.api.purge(queue.to_owned()).await
        })
    }

    fn delete<'a>(&'a self, queue: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            self.api.delete(queue.to_owned()).await
        })
    }

    fn peek<'a>(&'a self, queue: &'a str, count: u32) -> Fut<'a, Vec<PeekedMessage>> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            // The broker answers with a few hundred KiB at most: ask
            // again from where it stopped.
            let mut out: Vec<PeekedMessage> = Vec::new();
            while (out.len() as u32) < count {
                let got = out.len() as u32;
                let more = self.api.peek(queue.to_owned(), got, count - got).await?;
                if more.is_empty() {
                    break;
                }
                out.extend(more);
            }
            Ok(out)
        })
    }

    fn move_messages<'a>(&'a self, from: &'a str, to: &'a str, max: u64) -> Fut<'a, u64> {
        Box::pin(async move {
            validate_queue_name(from)?;
            validate_queue_name(to)?;
            self.api
                .move_messages(from.to_owned(), to.to_owned(), max)
                .await
        })
    }

    fn consume_up_to<'a>(
        &'a self,
        queue: &'a str,
        prefetch: u32,
        limit: u64,
    ) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            validate_queue_name(queue)?;
            let (id, stream) = self
                .api
                .consume_up_to(queue.to_owned(), prefetch, limit)
                .await?;
            let inner = Box::new(RemoteConsumer {
                stream,
                acker: Arc::new(RemoteAcker {
                    api: self.api.clone(),
                    queue: queue.to_owned(),
                    consumer: id,
                }),
            });
            Ok(Box::new(UpTo { inner, left: limit }) as Box<dyn DeliverySource>)
        })
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
            // Publishing is one-way: the last batch may still wait in the
            // connection's queue. A round trip behind it on the same
            // connection returns once the broker has read it, so that a
            // program may exit as soon as `close` returns.
            self.api.info().await.map(drop)
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
