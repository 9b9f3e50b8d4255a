//! The broker itself, in process: queues and topics.
//!
//! An embedded broker calls it directly; a standalone one serves it to
//! other nodes ([`crate::remote`]).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

use crate::config::{
    BrokerConfig, QueueConfig, QueueStats, SlowPolicy, Stats, SubscribeOptions, TopicStats,
};
use crate::error::BrokerError;
use crate::log::{Log, LogConfig};
use crate::subject::{Pattern, validate_queue_name, validate_subject};

/// The suffix of a dead-letter queue's name.
pub const DLQ_SUFFIX: &str = ".dlq";
/// Subjects whose figures are kept one by one; later ones are not listed.
const MAX_TRACKED_SUBJECTS: usize = 10_000;
/// The file in a durable queue's directory that holds its configuration.
const CONFIG_FILE: &str = "queue.config";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One message delivered to a consumer.
#[derive(Clone, Debug)]
pub(crate) struct RawDelivery {
    /// Names this delivery for ack and nack (unique within the queue).
    pub(crate) tag: u64,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub(crate) attempt: u32,
    /// The message.
    pub(crate) payload: Bytes,
}

/// The in-process broker.
#[derive(Debug)]
pub(crate) struct Engine {
    config: BrokerConfig,
    queues: Mutex<HashMap<String, Arc<QueueCore>>>,
    topics: Topics,
    closed: AtomicBool,
    me: Weak<Engine>,
}

impl Engine {
    /// A broker with `config`; durable queues found under its data
    /// directory are opened with their messages.
    pub(crate) fn open(config: BrokerConfig) -> Result<Arc<Engine>, BrokerError> {
        if let Some(dir) = &config.data {
            std::fs::create_dir_all(dir).map_err(|e| {
                BrokerError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let engine = Arc::new_cyclic(|me| Engine {
            config,
            queues: Mutex::new(HashMap::new()),
            topics: Topics::new(),
            closed: AtomicBool::new(false),
            me: me.clone(),
        });
        if let Some(dir) = engine.config.data.clone() {
            engine.recover(&dir)?;
        }
        Ok(engine)
    }

    fn recover(&self, dir: &Path) -> Result<(), BrokerError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| BrokerError::Storage(format!("cannot read {}: {e}", dir.display())))?;
        let mut queues = lock(&self.queues);
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(unhex)
                .filter(|n| validate_queue_name(n).is_ok())
            else {
                continue;
            };
            let Ok(raw) = std::fs::read(path.join(CONFIG_FILE)) else {
                tracing::warn!(dir = %path.display(), "no queue configuration; skipped");
                continue;
            };
            let config: QueueConfig = match postcard::from_bytes(&raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "bad queue configuration; skipped");
                    continue;
                }
            };
            let q = self.make_queue(&name, config)?;
            queues.insert(name, q);
        }
        Ok(())
    }

    /// The largest message accepted.
    pub(crate) fn max_message(&self) -> u64 {
        self.config.max_message
    }

    fn check_size(&self, payload: &Bytes) -> Result<(), BrokerError> {
        crate::error::check_size(payload, self.config.max_message)
    }

    fn check_open(&self) -> Result<(), BrokerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        Ok(())
    }

    fn queue_dir(&self, name: &str) -> Option<PathBuf> {
        self.config.data.as_ref().map(|d| d.join(hex(name)))
    }

    fn make_queue(&self, name: &str, config: QueueConfig) -> Result<Arc<QueueCore>, BrokerError> {
        let mut ready = VecDeque::new();
        let mut next_seq = 1;
        let log = if config.durable {
            let dir = self
                .queue_dir(name)
                .ok_or_else(|| BrokerError::NoStorage(name.to_owned()))?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                BrokerError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
            let cfg_path = dir.join(CONFIG_FILE);
            if !cfg_path.exists() {
                let bytes = postcard::to_stdvec(&config)
                    .map_err(|e| BrokerError::Storage(e.to_string()))?;
                std::fs::write(&cfg_path, bytes).map_err(|e| {
                    BrokerError::Storage(format!("cannot write {}: {e}", cfg_path.display()))
                })?;
            }
            let log_config = LogConfig {
                fsync: self.config.fsync,
                segment_bytes: self.config.segment_bytes,
                ..LogConfig::default()
            };
            let (log, pending) = Log::open(&dir, log_config)
                .map_err(|e| BrokerError::Storage(format!("queue {name:?}: {e}")))?;
            let attempts = log.take_attempts();
            for (seq, payload) in pending {
                next_seq = next_seq.max(seq + 1);
                ready.push_back(Msg {
                    seq,
                    payload,
                    // Its deliveries before the restart count.
                    attempts: attempts.get(&seq).copied().unwrap_or(0),
                });
            }
            Some(log)
        } else {
            None
        };
        Ok(Arc::new(QueueCore {
            name: name.to_owned(),
            config,
            log,
            engine: self.me.clone(),
            state: Mutex::new(QState {
                ready,
                in_flight: HashMap::new(),
                consumers: Vec::new(),
                turn: 0,
                next_tag: 1,
                next_seq,
                next_consumer: 1,
                sweeper: false,
                sent: 0,
                acked: 0,
                redelivered: 0,
                dead_lettered: 0,
            }),
        }))
    }

    /// The queue `name`, created with `config` (or the default) if it does
    /// not exist; with `Some(config)`, an existing queue must have it.
    pub(crate) fn declare(
        &self,
        name: &str,
        config: Option<QueueConfig>,
    ) -> Result<Arc<QueueCore>, BrokerError> {
        self.check_open()?;
        validate_queue_name(name)?;
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get(name) {
            if let Some(c) = config
                && c != q.config
            {
                return Err(BrokerError::QueueConfigMismatch {
                    name: name.to_owned(),
                    reason: format!("it has {:?}, asked for {c:?}", q.config),
                });
            }
            return Ok(q.clone());
        }
        let dead_letters = config.as_ref().is_none_or(|c| c.max_deliver > 0);
        if dead_letters
            && !name.ends_with(DLQ_SUFFIX)
            && name.len() + DLQ_SUFFIX.len() > crate::subject::MAX_SUBJECT_LEN
        {
            return Err(BrokerError::InvalidQueueName {
                name: crate::error::cut(name),
                reason: format!(
                    "longer than {} bytes: its dead-letter queue's name `<name>{DLQ_SUFFIX}` must fit in {}",
                    crate::subject::MAX_SUBJECT_LEN - DLQ_SUFFIX.len(),
                    crate::subject::MAX_SUBJECT_LEN
                ),
            });
        }
        let q = self.make_queue(name, config.unwrap_or_default())?;
        queues.insert(name.to_owned(), q.clone());
        Ok(q)
    }

    /// The queue `name` if it exists.
    pub(crate) fn existing(&self, name: &str) -> Option<Arc<QueueCore>> {
        lock(&self.queues).get(name).cloned()
    }

    /// Publishes `payload` on `subject` to every matching subscription.
    pub(crate) fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BrokerError> {
        self.check_open()?;
        validate_subject(subject)?;
        self.check_size(&payload)?;
        self.topics.publish(subject, payload);
        Ok(())
    }

    /// Publishes a packed batch, in order; messages the broker refuses
    /// (subject, size) are left out and counted in the result, and a batch
    /// malformed from some point on is published up to there.
    pub(crate) fn publish_packed(&self, batch: &Bytes) -> Result<usize, BrokerError> {
        self.check_open()?;
        let max = self.config.max_message as usize;
        let mut refused = 0;
        let mut good: Vec<(&str, Bytes)> = Vec::new();
        for m in crate::pack::unpack(batch) {
            match m {
                Ok((s, p)) if p.len() <= max && validate_subject(s).is_ok() => good.push((s, p)),
                Ok(_) => refused += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "a malformed batch; its rest is dropped");
                    refused += 1;
                    break;
                }
            }
        }
        self.topics.publish_many(good);
        Ok(refused)
    }

    /// A new subscription to `pattern`.
    pub(crate) fn subscribe(
        &self,
        pattern: &str,
        options: SubscribeOptions,
    ) -> Result<EngineSubscription, BrokerError> {
        self.check_open()?;
        let pattern = Pattern::parse(pattern)?;
        if options.buffer == 0 {
            return Err(BrokerError::Rejected(
                "a subscription's buffer must hold at least one message".into(),
            ));
        }
        Ok(self.topics.subscribe(pattern, options, self.me.clone()))
    }

    /// Sends `payload` to the queue `name` (created with the default
    /// configuration if absent).
    pub(crate) async fn send(&self, name: &str, payload: Bytes) -> Result<(), BrokerError> {
        self.check_size(&payload)?;
        let q = match self.existing(name) {
            Some(q) => q,
            None => self.declare(name, None)?,
        };
        q.send(payload).await
    }

    /// Every queue's and topic's figures.
    pub(crate) fn stats(&self) -> Stats {
        let mut queues: Vec<QueueStats> = lock(&self.queues).values().map(|q| q.stats()).collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let (topics, subscriptions) = self.topics.stats();
        Stats {
            queues,
            topics,
            subscriptions,
            dropped: self.topics.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops taking messages; subscriptions end and consumers see the end.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.topics.close_all();
        let queues: Vec<_> = lock(&self.queues).values().cloned().collect();
        for q in queues {
            q.close();
            if let Some(log) = &q.log
                && let Err(e) = log.flush().await
            {
                tracing::warn!(queue = %q.name, error = %e, "flushing the log failed");
            }
        }
    }
}

// ---------------------------------------------------------------- queues

#[derive(Debug)]
struct Msg {
    seq: u64,
    payload: Bytes,
    attempts: u32,
}

#[derive(Debug)]
struct Flight {
    msg: Msg,
    consumer: u64,
    due: Instant,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    tx: mpsc::UnboundedSender<RawDelivery>,
    prefetch: u32,
    unacked: u32,
}

#[derive(Debug)]
struct QState {
    ready: VecDeque<Msg>,
    in_flight: HashMap<u64, Flight>,
    consumers: Vec<Slot>,
    turn: usize,
    next_tag: u64,
    next_seq: u64,
    next_consumer: u64,
    sweeper: bool,
    sent: u64,
    acked: u64,
    redelivered: u64,
    dead_lettered: u64,
}

/// One queue: messages ready, deliveries in flight, consumers.
#[derive(Debug)]
pub(crate) struct QueueCore {
    name: String,
    config: QueueConfig,
    log: Option<Log>,
    engine: Weak<Engine>,
    state: Mutex<QState>,
}

impl QueueCore {
    /// The queue's configuration.
    pub(crate) fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn stats(&self) -> QueueStats {
        let st = lock(&self.state);
        let log = self.log.as_ref().map(|l| l.stats()).unwrap_or_default();
        QueueStats {
            name: self.name.clone(),
            durable: self.config.durable,
            depth: st.ready.len() as u64,
            in_flight: st.in_flight.len() as u64,
            consumers: st.consumers.len() as u64,
            sent: st.sent,
            acked: st.acked,
            redelivered: st.redelivered,
            dead_lettered: st.dead_lettered,
            segments: log.segments,
            log_bytes: log.bytes,
        }
    }

    /// Accepts a message: on disk first for a durable queue.
    pub(crate) async fn send(&self, payload: Bytes) -> Result<(), BrokerError> {
        if let Some(e) = self.engine.upgrade() {
            e.check_open()?;
            e.check_size(&payload)?;
        } else {
            return Err(BrokerError::Closed);
        }
        {
            let st = lock(&self.state);
            let depth = (st.ready.len() + st.in_flight.len()) as u64;
            if depth >= self.config.max_depth {
                return Err(BrokerError::QueueFull {
                    name: self.name.clone(),
                    depth: self.config.max_depth,
                });
            }
        }
        let seq = match &self.log {
            Some(log) => Some(
                log.append(payload.clone())
                    .await
                    .map_err(|e| BrokerError::Storage(format!("queue {:?}: {e}", self.name)))?,
            ),
            None => None,
        };
        let mut st = lock(&self.state);
        let seq = seq.unwrap_or_else(|| {
            let s = st.next_seq;
            st.next_seq += 1;
            s
        });
        st.sent += 1;
        st.ready.push_back(Msg {
            seq,
            payload,
            attempts: 0,
        });
        self.pump(&mut st);
        Ok(())
    }

    /// Attaches a consumer that holds at most `prefetch` unacknowledged
    /// deliveries.
    pub(crate) fn consume(self: &Arc<Self>, prefetch: u32) -> Result<EngineConsumer, BrokerError> {
        if let Some(e) = self.engine.upgrade() {
            e.check_open()?;
        }
        let prefetch = prefetch.max(1);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = lock(&self.state);
        let id = st.next_consumer;
        st.next_consumer += 1;
        st.consumers.push(Slot {
            id,
            tx,
            prefetch,
            unacked: 0,
        });
        if !st.sweeper {
            st.sweeper = true;
            tokio::spawn(sweep(Arc::downgrade(self), self.config.ack_wait));
        }
        self.pump(&mut st);
        drop(st);
        Ok(EngineConsumer {
            queue: self.clone(),
            id,
            rx,
        })
    }

    /// Hands ready messages to consumers with room, in turn.
    fn pump(&self, st: &mut QState) {
        let now = Instant::now();
        while !st.ready.is_empty() && !st.consumers.is_empty() {
            let n = st.consumers.len();
            let Some(k) = (0..n)
                .map(|i| (st.turn + i) % n)
                .find(|&k| st.consumers[k].unacked < st.consumers[k].prefetch)
            else {
                break;
            };
            st.turn = k + 1;
            let Some(mut msg) = st.ready.pop_front() else {
                break;
            };
            msg.attempts = msg.attempts.saturating_add(1);
            let tag = st.next_tag;
            st.next_tag += 1;
            let d = RawDelivery {
                tag,
                attempt: msg.attempts,
                payload: msg.payload.clone(),
            };
            if st.consumers[k].tx.send(d).is_err() {
                // The consumer is gone: the message stays first in line.
                msg.attempts -= 1;
                st.ready.push_front(msg);
                let id = st.consumers[k].id;
                self.requeue_consumer(st, id);
                continue;
            }
            st.consumers[k].unacked += 1;
            if msg.attempts > 1 {
                st.redelivered += 1;
            }
            let consumer = st.consumers[k].id;
            st.in_flight.insert(
                tag,
                Flight {
                    msg,
                    consumer,
                    due: now + self.config.ack_wait,
                },
            );
        }
    }

    fn take_flight(
        &self,
        st: &mut QState,
        tag: u64,
        consumer: Option<u64>,
    ) -> Result<Flight, BrokerError> {
        let owned = st
            .in_flight
            .get(&tag)
            .is_some_and(|f| consumer.is_none_or(|c| c == f.consumer));
        let f = owned
            .then(|| st.in_flight.remove(&tag))
            .flatten()
            .ok_or_else(|| BrokerError::NotInFlight {
                queue: self.name.clone(),
                tag,
            })?;
        if let Some(slot) = st.consumers.iter_mut().find(|s| s.id == f.consumer) {
            slot.unacked = slot.unacked.saturating_sub(1);
        }
        Ok(f)
    }

    /// Acknowledges delivery `tag` (of `consumer`, if given): the message
    /// is done.
    pub(crate) fn ack(&self, tag: u64, consumer: Option<u64>) -> Result<(), BrokerError> {
        let mut st = lock(&self.state);
        let f = self.take_flight(&mut st, tag, consumer)?;
        st.acked += 1;
        if let Some(log) = &self.log {
            log.ack(f.msg.seq);
        }
        self.pump(&mut st);
        Ok(())
    }

    /// Refuses delivery `tag`: the message is delivered again at once, or
    /// dead-lettered after its last attempt.
    pub(crate) fn nack(&self, tag: u64, consumer: Option<u64>) -> Result<(), BrokerError> {
        let mut st = lock(&self.state);
        let f = self.take_flight(&mut st, tag, consumer)?;
        let mut dead = Vec::new();
        self.retry(&mut st, vec![f.msg], &mut dead);
        self.pump(&mut st);
        drop(st);
        self.dead_letter(dead);
        Ok(())
    }

    /// Puts `msgs` (oldest first) back at the head of the queue, except
    /// those out of attempts, which go to `dead`.
    fn retry(&self, st: &mut QState, msgs: Vec<Msg>, dead: &mut Vec<Msg>) {
        let max = self.config.max_deliver;
        for m in msgs.into_iter().rev() {
            if max > 0 && m.attempts >= max && !self.name.ends_with(DLQ_SUFFIX) {
                dead.push(m);
            } else {
                if let Some(log) = &self.log {
                    // So that a restart does not give it fresh attempts.
                    log.attempts(m.seq, m.attempts);
                }
                st.ready.push_front(m);
            }
        }
    }

    /// Removes consumer `id`; what it held goes back to the queue.
    fn requeue_consumer(&self, st: &mut QState, id: u64) -> Vec<Msg> {
        st.consumers.retain(|s| s.id != id);
        let tags: Vec<u64> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.consumer == id)
            .map(|(t, _)| *t)
            .collect();
        let mut msgs: Vec<Msg> = tags
            .into_iter()
            .filter_map(|t| st.in_flight.remove(&t))
            .map(|f| f.msg)
            .collect();
        msgs.sort_by_key(|m| m.seq);
        let mut dead = Vec::new();
        self.retry(st, msgs, &mut dead);
        dead
    }

    fn detach(&self, id: u64) {
        let mut st = lock(&self.state);
        let dead = self.requeue_consumer(&mut st, id);
        self.pump(&mut st);
        drop(st);
        self.dead_letter(dead);
    }

    /// Deliveries whose ack-wait passed go back to the queue.
    fn expire(&self, now: Instant) {
        let mut st = lock(&self.state);
        let tags: Vec<u64> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.due <= now)
            .map(|(t, _)| *t)
            .collect();
        if tags.is_empty() {
            return;
        }
        let mut msgs = Vec::new();
        for t in tags {
            if let Ok(f) = self.take_flight(&mut st, t, None) {
                msgs.push(f.msg);
            }
        }
        msgs.sort_by_key(|m| m.seq);
        let mut dead = Vec::new();
        self.retry(&mut st, msgs, &mut dead);
        self.pump(&mut st);
        drop(st);
        self.dead_letter(dead);
    }

    /// Moves `dead` to `<name>.dlq`: appended there first, then acked here.
    fn dead_letter(&self, dead: Vec<Msg>) {
        if dead.is_empty() {
            return;
        }
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        let dlq_name = format!("{}{DLQ_SUFFIX}", self.name);
        let dlq_config = QueueConfig {
            max_deliver: 0,
            ..self.config.clone()
        };
        let dlq = match engine.existing(&dlq_name) {
            Some(q) => Ok(q),
            None => engine.declare(&dlq_name, Some(dlq_config)),
        };
        let dlq = match dlq {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(queue = %self.name, error = %e, "no dead-letter queue; messages stay");
                let mut st = lock(&self.state);
                for m in dead {
                    st.ready.push_back(m);
                }
                return;
            }
        };
        let me = engine.existing(&self.name);
        tokio::spawn(async move {
            for m in dead {
                let seq = m.seq;
                match dlq.send(m.payload.clone()).await {
                    Ok(()) => {
                        if let Some(me) = &me {
                            let mut st = lock(&me.state);
                            st.dead_lettered += 1;
                            if let Some(log) = &me.log {
                                log.ack(seq);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(queue = %dlq.name, error = %e, "dead-lettering failed; the message stays");
                        if let Some(me) = &me {
                            let mut st = lock(&me.state);
                            st.ready.push_back(m);
                            me.pump(&mut st);
                        }
                    }
                }
            }
        });
    }

    fn close(&self) {
        let mut st = lock(&self.state);
        st.consumers.clear();
    }
}

/// Redelivers what passed its ack-wait, for as long as the queue exists.
async fn sweep(queue: Weak<QueueCore>, ack_wait: Duration) {
    let tick = (ack_wait / 8).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(q) = queue.upgrade() else { return };
        if q.engine
            .upgrade()
            .is_none_or(|e| e.closed.load(Ordering::Acquire))
        {
            return;
        }
        q.expire(Instant::now());
    }
}

/// A consumer attached to a queue; dropping it gives back what it held.
#[derive(Debug)]
pub(crate) struct EngineConsumer {
    queue: Arc<QueueCore>,
    id: u64,
    rx: mpsc::UnboundedReceiver<RawDelivery>,
}

impl EngineConsumer {
    /// The next delivery; `None` once the broker closed.
    pub(crate) async fn next(&mut self) -> Option<RawDelivery> {
        self.rx.recv().await
    }

    /// The consumer's id within its queue (acks name it).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The queue.
    pub(crate) fn queue(&self) -> &Arc<QueueCore> {
        &self.queue
    }
}

impl Drop for EngineConsumer {
    fn drop(&mut self) {
        self.queue.detach(self.id);
    }
}

// ---------------------------------------------------------------- topics

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
struct Topics {
    subs: RwLock<Vec<Arc<SubCore>>>,
    counters: Mutex<HashMap<Box<str>, Counter>>,
    started: Instant,
    next_id: AtomicU64,
    dropped: AtomicU64,
}

impl Topics {
    fn new() -> Self {
        Topics {
            subs: RwLock::new(Vec::new()),
            counters: Mutex::new(HashMap::new()),
            started: Instant::now(),
            next_id: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn publish(&self, subject: &str, payload: Bytes) {
        self.publish_many(vec![(subject, payload)]);
    }

    fn publish_many(&self, messages: Vec<(&str, Bytes)>) {
        if messages.is_empty() {
            return;
        }
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
            }
        }
    }

    fn subscribe(
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

    fn stats(&self) -> (Vec<TopicStats>, u64) {
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

    fn close_all(&self) {
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
                        b.dropped += 1;
                        dropped += 1;
                    }
                    SlowPolicy::Disconnect => {
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

// ---------------------------------------------------------------- names on disk

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * crate::subject::MAX_SUBJECT_LEN {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
