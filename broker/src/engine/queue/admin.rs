//! Looking into one queue and administering it: its description, a look
//! at its messages in place, purging it, taking its messages out to move
//! them, and its end when it is deleted.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Msg, QueueCore};
use crate::config::{PeekedMessage, QueueInfo};
use crate::engine::lock;

impl QueueCore {
    /// The queue's configuration and what it holds now.
    pub(crate) fn info(&self) -> QueueInfo {
        let st = lock(&self.state);
        let now = Instant::now();
        let oldest = st
            .ready
            .iter()
            .map(|m| m.since)
            .chain(st.in_flight.values().map(|f| f.msg.since))
            .min();
        QueueInfo {
            name: self.name.clone(),
            config: self.config.clone(),
            depth: st.ready.len() as u64,
            in_flight: st.in_flight.len() as u64,
            consumers: st.consumers.len() as u64,
            oldest_age: oldest.map(|t| now.saturating_duration_since(t)),
        }
    }

    /// Up to `count` messages waiting, from the `skip`-th on, in the order
    /// they would be delivered, stopping once `max_bytes` of payload are
    /// taken (one message at least). Nothing changes: no delivery, no
    /// attempt counted.
    pub(crate) fn peek(&self, skip: usize, count: usize, max_bytes: usize) -> Vec<PeekedMessage> {
        let st = lock(&self.state);
        let now = Instant::now();
        let mut out = Vec::new();
        let mut bytes = 0;
        for m in st.ready.iter().skip(skip).take(count) {
            if !out.is_empty() && bytes + m.payload.len() > max_bytes {
                break;
            }
            bytes += m.payload.len();
            out.push(PeekedMessage {
                attempts: Some(m.attempts),
                age: Some(now.saturating_duration_since(m.since)),
                payload: m.payload.clone(),
            });
        }
        out
    }

    /// Removes every message, waiting and in flight (acks of those in
    /// flight then fail with `NotInFlight`); returns how many.
    pub(crate) fn purge(&self) -> u64 {
        let mut st = lock(&self.state);
        let ready: Vec<Msg> = st.ready.drain(..).collect();
        let flying: Vec<Msg> = st.in_flight.drain().map(|(_, f)| f.msg).collect();
        for slot in &mut st.consumers {
            slot.unacked = 0;
        }
        let n = (ready.len() + flying.len()) as u64;
        self.depth_is(0);
        if let Some(log) = &self.log {
            for m in ready.iter().chain(&flying) {
                log.ack(m.seq);
            }
        }
        n
    }

    /// The first message waiting, taken out to be moved elsewhere; give it
    /// back with [`QueueCore::put_back`] or forget it with
    /// [`QueueCore::moved`].
    pub(in crate::engine) fn take_ready(&self) -> Option<Msg> {
        let mut st = lock(&self.state);
        let m = st.ready.pop_front();
        self.depth_is(st.ready.len());
        m
    }

    /// A message taken by [`QueueCore::take_ready`] that could not be
    /// moved: first in line again.
    pub(in crate::engine) fn put_back(&self, msg: Msg) {
        let mut st = lock(&self.state);
        st.ready.push_front(msg);
        self.pump(&mut st);
    }

    /// A message taken by [`QueueCore::take_ready`] is in its new queue:
    /// gone from this one's log too.
    pub(in crate::engine) fn moved(&self, msg: &Msg) {
        if let Some(log) = &self.log {
            log.ack(msg.seq);
        }
    }

    /// The end of a deleted queue: it takes no more messages or
    /// consumers, its consumers end, what it held is dropped.
    pub(in crate::engine) fn remove(&self) {
        self.deleted.store(true, Ordering::Release);
        let mut st = lock(&self.state);
        st.consumers.clear();
        st.ready.clear();
        st.in_flight.clear();
        self.depth_is(0);
    }

    /// Sets the queue-depth gauge.
    fn depth_is(&self, depth: usize) {
        farcall_runtime::observe::record::gauge_set(
            farcall_runtime::observe::names::BROKER_DEPTH,
            &[("queue", &self.name)],
            depth as f64,
        );
    }
}
