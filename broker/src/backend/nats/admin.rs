//! Administering queues on NATS: each queue is a JetStream stream (see
//! the module above), so listing, describing, purging and deleting are
//! the stream's; a look at the messages reads the stream by sequence
//! (no consumer involved, nothing delivered); moving messages pulls them
//! through the queue's consumer, publishes each to the other queue and
//! acknowledges it after; a consumer that wants a number of messages
//! pulls batches of no more than it still wants.

use std::future::IntoFuture as _;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, ErrorCode, consumer, context::GetStreamErrorKind, stream};
use futures_util::StreamExt;

use super::queue::{Feed, decode_config};
use super::{
    CONSUMER, META_CONFIG, META_NAME, Nats, admin, backend_err, queue_subject, stream_name,
};
use crate::backend::DeliverySource;
use crate::config::{PeekedMessage, QueueConfig, QueueInfo};
use crate::engine::lock;
use crate::error::BrokerError;
use crate::subject::validate_queue_name;

/// How long one pull of a consumer that wants a number of messages waits
/// at the server before it is asked again.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// The most messages one pull of a move takes.
const MOVE_BATCH: usize = 256;

/// How long the oldest message of a stream has been in it.
fn age(info: &stream::Info) -> Option<Duration> {
    (info.state.messages > 0).then(|| since(&info.state.first_timestamp))
}

/// How long ago `t` was (0 if it seems to be in the future: the server's
/// clock and this one disagree).
fn since(t: &async_nats::datetime::DateTime) -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128;
    let then = t.unix_timestamp_nanos();
    Duration::from_nanos(u64::try_from(now - then).unwrap_or(0))
}

impl Nats {
    /// The stream of queue `name` and its configuration; `NoSuchQueue` if
    /// there is none.
    pub(super) async fn existing_queue(
        &self,
        name: &str,
    ) -> Result<(stream::Stream, QueueConfig), BrokerError> {
        validate_queue_name(name)?;
        let found = admin("finding the stream", async {
            match self.js.get_stream(stream_name(name)).await {
                Ok(s) => Ok(Some(s)),
                Err(e) => match e.kind() {
                    GetStreamErrorKind::JetStream(j)
                        if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                    {
                        Ok(None)
                    }
                    _ => Err(e),
                },
            }
        })
        .await?;
        let Some(stream) = found else {
            lock(&self.known).remove(name);
            return Err(BrokerError::NoSuchQueue {
                name: name.to_owned(),
            });
        };
        let meta = &stream.cached_info().config.metadata;
        if meta.get(META_NAME).map(String::as_str) != Some(name) {
            return Err(BrokerError::NoSuchQueue {
                name: name.to_owned(),
            });
        }
        let config = meta
            .get(META_CONFIG)
            .and_then(|s| decode_config(s))
            .unwrap_or_default();
        Ok((stream, config))
    }

    /// What queue `name` of `stream` holds now.
    pub(super) async fn describe(
        &self,
        name: &str,
        stream: &stream::Stream,
        config: QueueConfig,
    ) -> Result<QueueInfo, BrokerError> {
        let info = stream.cached_info();
        let (depth, in_flight, consumers) = match stream.consumer_info(CONSUMER).await {
            Ok(c) => (
                c.num_pending,
                c.num_ack_pending as u64,
                c.num_waiting as u64,
            ),
            Err(_) => (info.state.messages, 0, 0),
        };
        Ok(QueueInfo {
            name: name.to_owned(),
            config,
            depth,
            in_flight,
            consumers,
            oldest_age: age(info),
        })
    }

    pub(super) async fn queue_infos(&self) -> Result<Vec<QueueInfo>, BrokerError> {
        let mut names = Vec::new();
        let mut streams = self.js.streams();
        while let Some(info) = streams.next().await {
            let info = info.map_err(backend_err)?;
            if let Some(name) = info.config.metadata.get(META_NAME) {
                names.push(name.clone());
            }
        }
        let mut out = Vec::new();
        for name in names {
            match self.queue_info(&name).await {
                Ok(i) => out.push(i),
                // Deleted meanwhile.
                Err(BrokerError::NoSuchQueue { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) async fn queue_info(&self, name: &str) -> Result<QueueInfo, BrokerError> {
        let (stream, config) = self.existing_queue(name).await?;
        self.describe(name, &stream, config).await
    }

    pub(super) async fn purge_queue(&self, name: &str) -> Result<u64, BrokerError> {
        let (stream, _) = self.existing_queue(name).await?;
        let done = admin("purging the stream", stream.purge().into_future()).await?;
        Ok(done.purged)
    }

    pub(super) async fn delete_queue(&self, name: &str) -> Result<(), BrokerError> {
        let (stream, _) = self.existing_queue(name).await?;
        let stream_name = stream.cached_info().config.name.clone();
        lock(&self.known).remove(name);
        admin("deleting the stream", self.js.delete_stream(stream_name)).await?;
        Ok(())
    }

    /// The stream's messages from its first on, by sequence: those in
    /// flight too (the stream cannot tell them apart from those waiting).
    pub(super) async fn peek_queue(
        &self,
        name: &str,
        count: u32,
    ) -> Result<Vec<PeekedMessage>, BrokerError> {
        let (stream, _) = self.existing_queue(name).await?;
        // Messages after the consumer's last delivery were never delivered.
        let delivered = match stream.consumer_info(CONSUMER).await {
            Ok(c) => c.delivered.stream_sequence,
            Err(_) => 0,
        };
        let subject = queue_subject(name);
        let mut next = stream.cached_info().state.first_sequence.max(1);
        let mut out = Vec::new();
        while out.len() < count as usize {
            let got = stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(subject.clone())
                .send()
                .await;
            let m = match got {
                Ok(m) => m,
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(backend_err(format!("reading queue {name:?}: {e}"))),
            };
            next = m.sequence + 1;
            out.push(PeekedMessage {
                attempts: (m.sequence > delivered).then_some(0),
                age: Some(since(&m.time)),
                payload: m.payload,
            });
        }
        Ok(out)
    }

    /// Pulls up to `max` messages from `from`'s consumer, publishes each
    /// to `to` (confirmed) and acknowledges it in `from` after.
    pub(super) async fn move_between(
        &self,
        from: &str,
        to: &str,
        max: u64,
    ) -> Result<u64, BrokerError> {
        let (source, _) = self.existing_queue(from).await?;
        self.existing_queue(to).await?;
        if from == to {
            return Err(BrokerError::Rejected(format!(
                "cannot move the messages of queue {from:?} to itself"
            )));
        }
        let consumer: consumer::PullConsumer =
            admin("finding the consumer", source.get_consumer(CONSUMER)).await?;
        let mut moved = 0u64;
        while moved < max {
            let want = (max - moved).min(MOVE_BATCH as u64) as usize;
            let mut batch = admin(
                "pulling messages",
                consumer.fetch().max_messages(want).messages(),
            )
            .await?;
            let mut got = 0;
            while let Some(m) = batch.next().await {
                let m = m.map_err(backend_err)?;
                got += 1;
                if let Err(e) = self.send_to(to, m.payload.clone()).await {
                    let _ = m.ack_with(jetstream::AckKind::Nak(None)).await;
                    return Err(e);
                }
                m.double_ack().await.map_err(backend_err)?;
                moved += 1;
            }
            if got == 0 {
                break;
            }
        }
        Ok(moved)
    }

    /// A consumer of the existing queue `name` that gets `limit` messages
    /// at most: each pull asks for no more than it still wants (and its
    /// prefetch), so the server delivers nothing past them.
    pub(super) async fn consume_wanted(
        &self,
        name: &str,
        prefetch: u32,
        limit: u64,
    ) -> Result<Box<dyn DeliverySource>, BrokerError> {
        let (stream, config) = self.existing_queue(name).await?;
        let consumer: consumer::PullConsumer =
            admin("finding the consumer", stream.get_consumer(CONSUMER)).await?;
        let wanted = Wanted {
            consumer,
            batch: None,
            left: limit,
            prefetch: u64::from(prefetch.clamp(1, 10_000)),
        };
        Ok(self.delivery_source(name, config, Feed::UpTo(Box::new(wanted))))
    }
}

/// The messages of a consumer that wants `left` more.
pub(super) struct Wanted {
    consumer: consumer::PullConsumer,
    /// The pull under way.
    batch: Option<consumer::pull::Batch>,
    left: u64,
    prefetch: u64,
}

impl Wanted {
    pub(super) async fn next(&mut self) -> Option<Result<jetstream::Message, BrokerError>> {
        loop {
            if self.left == 0 {
                return None;
            }
            let batch = match &mut self.batch {
                Some(b) => b,
                None => {
                    let pull = self
                        .consumer
                        .batch()
                        .max_messages(self.left.min(self.prefetch) as usize)
                        .expires(PULL_EXPIRES)
                        .messages();
                    match admin("starting to pull", pull).await {
                        Ok(b) => self.batch.insert(b),
                        Err(e) => return Some(Err(e)),
                    }
                }
            };
            match batch.next().await {
                Some(Ok(m)) => return Some(Ok(m)),
                Some(Err(e)) => {
                    self.batch = None;
                    return Some(Err(backend_err(e)));
                }
                // This pull is over (all delivered, or it expired): the
                // next asks for what is still wanted.
                None => self.batch = None,
            }
        }
    }

    /// One message went to the application.
    pub(super) fn handed_out(&mut self) {
        self.left = self.left.saturating_sub(1);
    }
}
