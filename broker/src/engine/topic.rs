//! The topics of the in-process broker: subscriptions by pattern, each
//! with its bounded buffer and slow-subscriber policy, and per-subject
//! figures.

use farcall_runtime::observe::{names, record};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use super::{Engine, lock};
use crate::config::{SlowPolicy, SubscribeOptions, TopicStats};
use crate::error::BrokerError;
use crate::subject::Pattern;

/// Subjects whose figures are kept one by one; later ones are not listed.
const MAX_TRACKED_SUBJECTS: usize = 10_000;

#[derive(Debug, Default)]
struct Counter {
    total: u64,
    /// Messages in each of the last ten seconds, by second modulo 10.
    secs: [u64; 10],
    /// The second the newest slot counts.
    last: u64,
}

impl Counter {
    fn advance(&mut self, sec: u64) {
        if sec > self.last {
            let gap = (sec - self.last).min(10);
            for s in 1..=gap {
                self.secs[((self.last + s) % 10) as usize] = 0;
            }
            self.last = sec;
        }
    }

    fn bump_by(&mut self, sec: u64, n: u64) {
        self.advance(sec);
        self.total += n;
        self.secs[(sec % 10) as usize] += n;
    }

    fn rate(&mut self, sec: u64) -> f64 {
        self.advance(sec);
        self.secs.iter().sum::<u64>() as f64 / 10.0
    }
}

#[derive(Debug)]
pub(super) struct Topics {
    subs: RwLock<Vec<Arc<SubCore>>>,
    counters: Mutex<HashMap<Box<str>, Counter>>,
    started: Instant,
    next_id: AtomicU64,
    pub(super) dropped: AtomicU64,
}

impl Topics {
    pub(super) fn new() -> Self {
        Topics {
            subs: RwLock::new(Vec::new()),
            counters: Mutex::new(HashMap::new()),
            started: Instant::now(),
            next_id: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
        }
    }

    pub(super) fn publish(&self, subject: &str, payload: Bytes) {
        self.publish_many(vec![(subject, payload)]);
    }

    pub(super) fn publish_many(&self, messages: Vec<(&str, Bytes)>) {
        if messages.is_empty() {
            return;
        }
        let span = tracing::info_span!(
            target: "farcall::broker",
            "farcall.broker.publish",
            otel.kind = "producer",
            messaging.system = "farcall",
            messaging.destination.name = messages[0].0,
            messaging.batch.message_count = messages.len(),
        );
        let _entered = span.enter();
        record::counter(names::BROKER_PUBLISHED, &[], messages.len() as u64);
        let sec = self.started.elapsed().as_secs();
        {
            let mut c = lock(&self.counters);
            let mut i = 0;
            while i < messages.len() {
                let subject = messages[i].0;
                let run = messages[i..]
                    .iter()
                    .take_while(|(s, _)| *s == subject)
                    .count();
                if let Some(counter) = c.get_mut(subject) {
                    counter.bump_by(sec, run as u64);
                } else if c.len() < MAX_TRACKED_SUBJECTS {
                    c.entry(subject.into())
                        .or_default()
                        .bump_by(sec, run as u64);
                }
                i += run;
            }
        }
        // One shared subject string per run of equal subjects.
        let mut shared: Vec<(Arc<str>, Bytes)> = Vec::with_capacity(messages.len());
        for (subject, payload) in messages {
            match shared.last() {
                Some((last, _)) if **last == *subject => {
                    let last = last.clone();
                    shared.push((last, payload));
                }
                _ => shared.push((subject.into(), payload)),
            }
        }
        let subs = self.subs.read().unwrap_or_else(|p| p.into_inner());
        for s in subs.iter() {
            let dropped = s.push_many(shared.iter().filter(|(subj, _)| s.pattern.matches(subj)));
            if dropped > 0 {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
                record::counter(names::BROKER_DROPS, &[], dropped);
            }
        }
    }

    pub(super) fn subscribe(
        &self,
        pattern: Pattern,
        options: SubscribeOptions,
        engine: Weak<Engine>,
    ) -> EngineSubscription {
        let core = SubCore::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
            pattern,
            options,
        );
        self.subs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(core.clone());
        EngineSubscription { core, engine }
    }

    fn unsubscribe(&self, id: u64) {
        self.subs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.id != id);
    }

    pub(super) fn stats(&self) -> (Vec<TopicStats>, u64) {
        let sec = self.started.elapsed().as_secs();
        let mut topics: Vec<TopicStats> = lock(&self.counters)
            .iter_mut()
            .map(|(s, c)| TopicStats {
                subject: s.to_string(),
                published: c.total,
                rate: c.rate(sec),
            })
            .collect();
        topics.sort_by(|a, b| a.subject.cmp(&b.subject));
        let subs = self.subs.read().unwrap_or_else(|p| p.into_inner()).len() as u64;
        (topics, subs)
    }

    pub(super) fn close_all(&self) {
        let subs = self.subs.read().unwrap_or_else(|p| p.into_inner());
        for s in subs.iter() {
            s.close();
        }
    }
}

#[derive(Debug, Default)]
struct SubBuf {
    q: VecDeque<(Arc<str>, Bytes)>,
    dropped: u64,
    /// Cut off by the `Disconnect` policy.
    cut: bool,
    closed: bool,
}

/// A subscriber's bounded buffer and its slow-subscriber policy (also
/// used in front of other backends' subscriptions).
#[derive(Debug)]
pub(crate) struct SubCore {
    id: u64,
    pattern: Pattern,
    options: SubscribeOptions,
    buf: Mutex<SubBuf>,
    notify: Notify,
}

impl SubCore {
    pub(crate) fn new(id: u64, pattern: Pattern, options: SubscribeOptions) -> Arc<SubCore> {
        Arc::new(SubCore {
            id,
            pattern,
            options,
            buf: Mutex::new(SubBuf::default()),
            notify: Notify::new(),
        })
    }

    /// Ends the subscription: what is buffered can still be read.
    pub(crate) fn close(&self) {
        lock(&self.buf).closed = true;
        self.notify.notify_one();
    }

    /// Messages dropped from the buffer so far.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.buf).dropped
    }

    /// Moves up to `max` buffered messages into `out`, waiting for one if
    /// none is buffered. `Ok(false)`: the subscription ended; an error:
    /// it was cut off as a slow subscriber.
    pub(crate) async fn next_batch(
        &self,
        out: &mut Vec<(Arc<str>, Bytes)>,
        max: usize,
    ) -> Result<bool, BrokerError> {
        loop {
            {
                let mut b = lock(&self.buf);
                if !b.q.is_empty() {
                    let n = b.q.len().min(max.max(1));
                    out.extend(b.q.drain(..n));
                    return Ok(true);
                }
                if b.cut {
                    return Err(BrokerError::SlowSubscriber {
                        pattern: self.pattern.as_str().to_owned(),
                        buffer: self.options.buffer,
                    });
                }
                if b.closed {
                    return Ok(false);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Buffers messages in order; returns how many older ones were dropped
    /// for them.
    pub(crate) fn push_many<'a>(&self, items: impl Iterator<Item = &'a (Arc<str>, Bytes)>) -> u64 {
        let mut b = lock(&self.buf);
        if b.cut || b.closed {
            return 0;
        }
        let was_empty = b.q.is_empty();
        let mut pushed = false;
        let mut dropped = 0;
        for (subject, payload) in items {
            if b.q.len() >= self.options.buffer as usize {
                match self.options.policy {
                    SlowPolicy::DropOldest => {
                        b.q.pop_front();
                        // Said once per subscriber, when it starts to lag.
                        if b.dropped == 0 {
                            tracing::info!(
                                buffer = self.options.buffer,
                                "a slow subscriber's buffer is full: its oldest messages are dropped"
                            );
                        }
                        b.dropped += 1;
                        dropped += 1;
                    }
                    SlowPolicy::Disconnect => {
                        tracing::info!(
                            buffer = self.options.buffer,
                            "a slow subscriber's buffer is full: it is cut off"
                        );
                        b.cut = true;
                        drop(b);
                        self.notify.notify_one();
                        return dropped;
                    }
                }
            }
            b.q.push_back((subject.clone(), payload.clone()));
            pushed = true;
        }
        drop(b);
        if was_empty && pushed {
            self.notify.notify_one();
        }
        dropped
    }
}

/// A subscription to a pattern; dropping it ends it.
#[derive(Debug)]
pub(crate) struct EngineSubscription {
    core: Arc<SubCore>,
    engine: Weak<Engine>,
}

impl EngineSubscription {
    /// The subscriber's buffer.
    pub(crate) fn core(&self) -> &Arc<SubCore> {
        &self.core
    }

    /// Moves up to `max` buffered messages into `out`, waiting for one if
    /// none is buffered. `Ok(false)`: the subscription ended (the broker
    /// closed); an error: it was cut off as a slow subscriber.
    pub(crate) async fn next_batch(
        &mut self,
        out: &mut Vec<(Arc<str>, Bytes)>,
        max: usize,
    ) -> Result<bool, BrokerError> {
        self.core.next_batch(out, max).await
    }

    /// Messages dropped from this subscription's buffer so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.core.dropped()
    }
}

impl Drop for EngineSubscription {
    fn drop(&mut self) {
        if let Some(e) = self.engine.upgrade() {
            e.topics.unsubscribe(self.core.id);
        }
    }
}
