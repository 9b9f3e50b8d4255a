//! The embedded backend: a broker handle on the [`Engine`] in this
//! process, called directly (no encoding).

use std::sync::Arc;

use bytes::Bytes;
use farcall_runtime::Node;

use super::{Acker, Backend, DeliverySource, Fut, MessageSource, Reader, Subject, UpTo};
use crate::config::{PeekedMessage, QueueConfig, QueueInfo, Stats, SubscribeOptions};
use crate::engine::{Engine, EngineConsumer, EngineSubscription, QueueCore, RawDelivery};

/// The broker in this process.
#[derive(Debug)]
pub(crate) struct Embedded {
    pub(crate) engine: Arc<Engine>,
}

impl Backend for Embedded {
    fn max_message(&self) -> u64 {
        self.engine.max_message()
    }

    fn declare<'a>(&'a self, queue: &'a str, config: Option<QueueConfig>) -> Fut<'a, QueueConfig> {
        Box::pin(async move { Ok(self.engine.declare(queue, config)?.config().clone()) })
    }

    fn send<'a>(&'a self, queue: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(self.engine.send(queue, payload))
    }

    fn consume<'a>(&'a self, queue: &'a str, prefetch: u32) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            let q = self.engine.declare(queue, None)?;
            let c = q.consume(prefetch)?;
            Ok(Box::new(LocalConsumer(c)) as Box<dyn DeliverySource>)
        })
    }

    fn publish<'a>(&'a self, subject: &'a str, payload: Bytes) -> Fut<'a, ()> {
        Box::pin(std::future::ready(self.engine.publish(subject, payload)))
    }

    fn subscribe<'a>(
        &'a self,
        pattern: &'a str,
        options: SubscribeOptions,
    ) -> Fut<'a, Box<dyn MessageSource>> {
        Box::pin(async move {
            let s = self.engine.subscribe(pattern, options)?;
            Ok(Box::new(LocalSubscription {
                reader: Reader::new(s.core().clone()),
                _sub: s,
            }) as Box<dyn MessageSource>)
        })
    }

    fn stats(&self) -> Fut<'_, Stats> {
        Box::pin(std::future::ready(Ok(self.engine.stats())))
    }

    fn queues(&self) -> Fut<'_, Vec<QueueInfo>> {
        Box::pin(std::future::ready(Ok(self.engine.queue_infos())))
    }

    fn queue_info<'a>(&'a self, queue: &'a str) -> Fut<'a, QueueInfo> {
        Box::pin(std::future::ready(self.engine.queue_info(queue)))
    }

    fn purge<'a>(&'a self, queue: &'a str) -> Fut<'a, u64> {
        Box::pin(std::future::ready(self.engine.purge(queue)))
    }

    fn delete<'a>(&'a self, queue: &'a str) -> Fut<'a, ()> {
        Box::pin(std::future::ready(self.engine.delete(queue)))
    }

    fn peek<'a>(&'a self, queue: &'a str, count: u32) -> Fut<'a, Vec<PeekedMessage>> {
        Box::pin(std::future::ready(self.engine.peek(
            queue,
            0,
            count as usize,
            usize::MAX,
        )))
    }

    fn move_messages<'a>(&'a self, from: &'a str, to: &'a str, max: u64) -> Fut<'a, u64> {
        Box::pin(self.engine.move_messages(from, to, max))
    }

    fn consume_up_to<'a>(
        &'a self,
        queue: &'a str,
        prefetch: u32,
        limit: u64,
    ) -> Fut<'a, Box<dyn DeliverySource>> {
        Box::pin(async move {
            let c = self.engine.named(queue)?.consume_up_to(prefetch, limit)?;
            Ok(Box::new(UpTo {
                inner: Box::new(LocalConsumer(c)),
                left: limit,
            }) as Box<dyn DeliverySource>)
        })
    }

    fn node(&self) -> Option<Node> {
        None
    }

    fn engine(&self) -> Option<&Arc<Engine>> {
        Some(&self.engine)
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            self.engine.close().await;
            Ok(())
        })
    }
}

#[derive(Debug)]
struct LocalConsumer(EngineConsumer);

impl DeliverySource for LocalConsumer {
    fn next(&mut self) -> Fut<'_, Option<RawDelivery>> {
        Box::pin(async move { Ok(self.0.next().await) })
    }

    fn acker(&self) -> Arc<dyn Acker> {
        Arc::new(LocalAcker {
            queue: self.0.queue().clone(),
            consumer: self.0.id(),
        })
    }
}

#[derive(Debug)]
struct LocalAcker {
    queue: Arc<QueueCore>,
    consumer: u64,
}

impl Acker for LocalAcker {
    fn ack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(std::future::ready(self.queue.ack(tag, Some(self.consumer))))
    }

    fn nack(&self, tag: u64) -> Fut<'_, ()> {
        Box::pin(std::future::ready(
            self.queue.nack(tag, Some(self.consumer)),
        ))
    }
}

/// A subscription to the broker in this process.
#[derive(Debug)]
struct LocalSubscription {
    reader: Reader,
    /// Unsubscribes when dropped.
    _sub: EngineSubscription,
}

impl MessageSource for LocalSubscription {
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
