//! How a connection ends, and what keeps it alive meanwhile: graceful
//! close, abort, death (every waiter released), protocol errors, and the
//! housekeeping task (stalled writes, keepalive pings, idle close).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;

use super::outbox::Drain;
use super::{CLOSING, Connection, DEAD, OPEN, Shared};
use crate::error::Error;
use crate::sync::lock;
use crate::wire::Frame;

impl Connection {
    /// Closes gracefully: no new calls are accepted, calls in flight in
    /// both directions may finish within the node's close grace period,
    /// then the socket is closed and whatever is left fails with
    /// [`Error::Disconnected`]. Returns when the connection is dead.
    pub async fn close(&self) {
        let s = &*self.shared;
        let mut state = s.state.load(Ordering::Acquire);
        loop {
            if state >= CLOSING {
                self.closed().await;
                return;
            }
            match s
                .state
                .compare_exchange(state, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        let _ = s.send_control(&Frame::Close {
            reason: "closing".into(),
        });
        let drained = async {
            loop {
                let n = s.drained.notified();
                if s.is_drained() {
                    return;
                }
                n.await;
            }
        };
        let _ = tokio::time::timeout(s.limits.close_grace, drained).await;
        // Let the close frame and last replies reach the socket.
        let flushed = async {
            loop {
                let n = s.space.notified();
                if lock(&s.out).queued() == 0 {
                    return;
                }
                n.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(200), flushed).await;
        s.fail("closed by this side".into());
    }

    /// Closes at once, without waiting for calls in flight: they fail with
    /// [`Error::Disconnected`] carrying `reason`.
    pub fn abort(&self, reason: &str) {
        self.shared.fail(reason.to_owned());
    }

    /// Waits until the connection is dead.
    pub async fn closed(&self) {
        let s = &*self.shared;
        loop {
            let n = s.died.notified();
            if s.state.load(Ordering::Acquire) == DEAD {
                return;
            }
            n.await;
        }
    }
}

impl Shared {
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(super) fn touch_app(&self) {
        if self.limits.idle_timeout.is_some() {
            self.last_app_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    pub(super) fn is_drained(&self) -> bool {
        lock(&self.pending).calls.is_empty() && self.serving_count.load(Ordering::Acquire) == 0
    }

    /// Declares the connection dead: every waiter is released with an
    /// error, handlers are dropped, the socket is shut. Idempotent.
    pub(super) fn fail(&self, reason: String) {
        if self.state.swap(DEAD, Ordering::AcqRel) == DEAD {
            return;
        }
        tracing::debug!(peer = %self.peer, %reason, "connection dead");
        *lock(&self.death) = Some(reason.clone());
        let calls = {
            let mut p = lock(&self.pending);
            p.closed = true;
            std::mem::take(&mut p.calls)
        };
        for (_, tx) in calls {
            let _ = tx.send(Err(Error::Disconnected(reason.clone())));
        }
        self.permits.close();
        self.message_slots.close();
        for (_, h) in std::mem::take(&mut *lock(&self.serving)) {
            h.abort();
        }
        {
            let mut out = lock(&self.out);
            out.dead = true;
            out.buf = BytesMut::new();
            out.stalled = None;
        }
        // Pings waiting for a pong fail with the connection.
        lock(&self.probes).clear();
        self.space.notify_waiters();
        self.stalled.notify_one();
        self.drained.notify_one();
        self.io.shutdown_both();
        crate::observe::record::gauge_add(crate::observe::names::CONNECTIONS, &[], -1.0);
        self.hooks.on_dead(&reason);
        self.died.notify_waiters();
        for t in std::mem::take(&mut *lock(&self.tasks)) {
            t.abort();
        }
    }

    pub(super) fn protocol_error(&self, reason: String) {
        tracing::debug!(peer = %self.peer, %reason, "protocol error");
        let _ = self.send_control(&Frame::Close {
            reason: reason.clone(),
        });
        self.fail(format!("protocol error: {reason}"));
    }
}

/// Finishes stalled writes, pings a silent peer, closes idle connections.
/// Aborted by [`Shared::fail`].
pub(super) async fn housekeep(s: Arc<Shared>) {
    let interval = s.limits.keepalive_interval;
    let idle = s.limits.idle_timeout;
    let tick = interval
        .min(idle.unwrap_or(interval))
        .max(Duration::from_millis(10));
    let tick_sleep = tokio::time::sleep(tick);
    tokio::pin!(tick_sleep);
    // When the read counter last moved (in `now_ms` terms).
    let mut reads_seen = 0;
    let mut heard_at = 0;
    loop {
        if s.state.load(Ordering::Acquire) == DEAD {
            return;
        }
        let stalled = lock(&s.out).stalled.take();
        if let Some(mut chunk) = stalled {
            loop {
                if let Err(e) = s.io.writable().await {
                    s.fail(format!("write failed: {e}"));
                    return;
                }
                match s.drain(chunk) {
                    Drain::Done => break,
                    Drain::Blocked => match lock(&s.out).stalled.take() {
                        Some(c) => chunk = c,
                        None => break,
                    },
                    Drain::Failed(e) => {
                        s.fail(format!("write failed: {e}"));
                        return;
                    }
                }
            }
            continue;
        }
        tokio::select! {
            biased;
            () = s.stalled.notified() => {
                // A sender handed off. Let the other tasks that are ready
                // now (callers woken by one batch of replies) append their
                // frames first: then one write carries them all.
                tokio::task::yield_now().await;
                continue;
            }
            () = &mut tick_sleep => {
                tick_sleep.as_mut().reset(tokio::time::Instant::now() + tick);
            }
        }
        let now = s.now_ms();
        let reads = s.reads.load(Ordering::Relaxed);
        if reads != reads_seen {
            reads_seen = reads;
            heard_at = now;
        }
        let silent = Duration::from_millis(now.saturating_sub(heard_at));
        if silent >= s.limits.keepalive_timeout {
            s.fail(format!(
                "the peer was silent for {silent:?} (keepalive time-out)"
            ));
            return;
        }
        if silent >= interval {
            let _ = s.send_control(&Frame::Ping { nonce: now });
        }
        if let Some(idle) = idle {
            let quiet =
                Duration::from_millis(now.saturating_sub(s.last_app_ms.load(Ordering::Relaxed)));
            if quiet >= idle
                && s.is_drained()
                && s.hooks.is_idle()
                && s.state.load(Ordering::Acquire) == OPEN
            {
                let c = Connection { shared: s.clone() };
                tokio::spawn(async move { c.close().await });
            }
        }
    }
}
