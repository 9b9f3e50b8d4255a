//! One queue of the in-process broker: messages ready, deliveries in
//! flight, competing consumers, redelivery after the ack-wait and dead
//! letters.

use farcall_runtime::observe::{names, record};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{DLQ_SUFFIX, Engine, RawDelivery, lock};
use crate::config::{QueueConfig, QueueStats};
use crate::error::BrokerError;
use crate::log::Log;

mod admin;

/// A message of a queue.
#[derive(Debug)]
pub(super) struct Msg {
    pub(super) seq: u64,
    pub(super) payload: Bytes,
    pub(super) attempts: u32,
    /// When this broker got it (for a durable queue after a restart: when
    /// the broker opened it again).
    pub(super) since: Instant,
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
    /// Deliveries it may still get (`u64::MAX`: no end).
    budget: u64,
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
    pub(super) name: String,
    pub(super) config: QueueConfig,
    pub(super) log: Option<Log>,
    engine: Weak<Engine>,
    state: Mutex<QState>,
    /// Set once the queue is deleted: it takes no more messages.
    deleted: AtomicBool,
}

impl QueueCore {
    /// A queue `name` holding `ready` (found in its log), whose next
    /// message without a log gets `next_seq`.
    pub(super) fn new(
        name: &str,
        config: QueueConfig,
        log: Option<Log>,
        engine: Weak<Engine>,
        ready: VecDeque<Msg>,
        next_seq: u64,
    ) -> Arc<QueueCore> {
        Arc::new(QueueCore {
            name: name.to_owned(),
            config,
            log,
            engine,
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
            deleted: AtomicBool::new(false),
        })
    }

    /// The queue's configuration.
    pub(crate) fn config(&self) -> &QueueConfig {
        &self.config
    }

    pub(super) fn stats(&self) -> QueueStats {
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
        let span = tracing::info_span!(
            target: "farcall::broker",
            "farcall.broker.send",
            otel.kind = "producer",
            messaging.system = "farcall",
            messaging.destination.name = %self.name,
            messaging.message.body.size = payload.len(),
        );
        self.accept(payload).instrument(span).await
    }

    async fn accept(&self, payload: Bytes) -> Result<(), BrokerError> {
        if let Some(e) = self.engine.upgrade() {
            e.check_open()?;
            e.check_size(&payload)?;
        } else {
            return Err(BrokerError::Closed);
        }
        if self.deleted.load(Ordering::Acquire) {
            return Err(BrokerError::NoSuchQueue {
                name: self.name.clone(),
            });
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
        record::counter(names::BROKER_IN, &[("queue", &self.name)], 1);
        st.ready.push_back(Msg {
            seq,
            payload,
            attempts: 0,
            since: Instant::now(),
        });
        self.pump(&mut st);
        Ok(())
    }

    /// Attaches a consumer that holds at most `prefetch` unacknowledged
    /// deliveries.
    pub(crate) fn consume(self: &Arc<Self>, prefetch: u32) -> Result<EngineConsumer, BrokerError> {
        self.consume_up_to(prefetch, u64::MAX)
    }

    /// Attaches a consumer that holds at most `prefetch` unacknowledged
    /// deliveries and gets at most `limit` deliveries in all: the queue
    /// hands it no more than that, so a message past them is not
    /// delivered to it (not taken, not counted as an attempt).
    pub(crate) fn consume_up_to(
        self: &Arc<Self>,
        prefetch: u32,
        limit: u64,
    ) -> Result<EngineConsumer, BrokerError> {
        if let Some(e) = self.engine.upgrade() {
            e.check_open()?;
        }
        if self.deleted.load(Ordering::Acquire) {
            return Err(BrokerError::NoSuchQueue {
                name: self.name.clone(),
            });
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
            budget: limit,
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
            let Some(k) = (0..n).map(|i| (st.turn + i) % n).find(|&k| {
                let c = &st.consumers[k];
                c.unacked < c.prefetch && c.budget > 0
            }) else {
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
            if st.consumers[k].budget != u64::MAX {
                st.consumers[k].budget -= 1;
            }
            if msg.attempts > 1 {
                st.redelivered += 1;
                record::counter(names::BROKER_REDELIVERED, &[("queue", &self.name)], 1);
            }
            record::counter(names::BROKER_OUT, &[("queue", &self.name)], 1);
            tracing::info_span!(
                target: "farcall::broker",
                "farcall.broker.deliver",
                otel.kind = "consumer",
                messaging.system = "farcall",
                messaging.destination.name = %self.name,
                farcall.tag = tag,
                farcall.attempt = msg.attempts,
            )
            .in_scope(|| {});
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
        record::gauge_set(
            names::BROKER_DEPTH,
            &[("queue", &self.name)],
            st.ready.len() as f64,
        );
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
                            record::counter(names::BROKER_DEAD_LETTERED, &[("queue", &me.name)], 1);
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

    pub(super) fn close(&self) {
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
