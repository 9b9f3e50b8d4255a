//! The server side of a connection: serving the peer's calls and one-way
//! messages, their replies, and the guards that keep the in-flight count
//! and the panic guard honest.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::outbox::Flush;
use super::{CLOSING, Connection, DEAD, OPEN, Served, Shared};
use crate::id::ObjectId;
use crate::metadata::Metadata;
use crate::observe::{CallInfo, Interceptors, Observed, Side, method_names};
use crate::service::{CallContext, GuardedCall, Outcome, OutcomeFuture, call_guarded};
use crate::sync::lock;
use crate::wire::frame::{self, EncodeError};
use crate::wire::{Fault, Frame};

/// What a call or one-way message addresses, as it arrived.
pub(super) struct Incoming {
    pub(super) object: ObjectId,
    pub(super) method: u64,
    pub(super) flags: u32,
    pub(super) metadata: Bytes,
}

impl Shared {
    /// Serves a call (`id` set) or a one-way message.
    pub(super) async fn serve(
        self: &Arc<Self>,
        id: Option<u64>,
        timeout_us: u64,
        head: Incoming,
        payload: Bytes,
    ) {
        let Incoming {
            object,
            method,
            flags,
            metadata,
        } = head;
        let refuse = |fault: Fault| {
            if let Some(id) = id {
                self.reply(id, Err(fault), Flush::Defer);
            }
        };
        if self.state.load(Ordering::Acquire) >= CLOSING {
            return refuse(Fault::Closing);
        }
        let message_permit = match id {
            Some(_) if lock(&self.out).reply_ends.len() >= self.limits.max_in_flight as usize => {
                // Every unwritten reply answers a call the peer still waits
                // for; more than its limit means it sends without reading.
                return self.protocol_error(format!(
                    "the peer sent calls beyond its limit of {} in flight without reading the replies",
                    self.limits.max_in_flight
                ));
            }
            Some(_) => {
                if self.active.load(Ordering::Acquire) >= self.limits.max_in_flight as usize {
                    return refuse(Fault::Overloaded);
                }
                None
            }
            // One-way messages have no one to refuse to: the reader waits
            // for a slot, which stops reading and pushes back on the peer.
            None => match self.message_slots.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    // About to wait: let deferred replies go out first.
                    self.flush_deferred();
                    match self.message_slots.clone().acquire_owned().await {
                        Ok(p) => Some(p),
                        Err(_) => return,
                    }
                }
            },
        };
        if flags != 0 {
            return refuse(Fault::Rejected(format!(
                "the request uses protocol features this node does not know (flags {flags:#x})"
            )));
        }
        let metadata = match Metadata::decode(&metadata, &self.limits.metadata) {
            Ok(m) => m,
            Err(e) => {
                return refuse(Fault::Rejected(format!(
                    "the request's metadata is refused: {e}"
                )));
            }
        };
        let served = match self.hooks.service(object, method, self.principal.as_ref()) {
            Ok(s) => s,
            Err((fault, interface)) => {
                let (i, m) = method_names(interface, method);
                Observed::start(Side::Server, i, m, object, Some(self.peer)).finish(Err(&fault));
                return refuse(fault);
            }
        };
        let (interface, method_name) = method_names(served.interface, method);
        let observed = Observed::start(
            Side::Server,
            interface,
            method_name,
            object,
            Some(self.peer),
        );
        observed.adopt_parent(&metadata);
        self.touch_app();
        let deadline = (timeout_us > 0)
            .then(|| Instant::now().checked_add(Duration::from_micros(timeout_us)))
            .flatten();
        let cx = CallContext {
            caller: self.peer,
            deadline,
            connection: Some(Connection {
                shared: self.clone(),
            }),
            node: None,
            one_way: id.is_none(),
            carried: false,
            metadata,
        };
        // Counted before the handler runs: a close that starts once the
        // handler has started waits for it.
        self.serving_count.fetch_add(1, Ordering::AcqRel);
        self.active.fetch_add(1, Ordering::AcqRel);
        // Created outside the task so that an abort before its first poll
        // still gives the slots back.
        let count = ServingGuard(self.clone());
        let active = ActiveGuard(self.clone());
        let call = Handler::new(
            served,
            cx,
            object,
            (method, payload),
            (interface, method_name),
        );
        let mut fut = observed.instrument(call);
        // Poll once in place: most handlers finish without waiting.
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut fut).poll(cx))).await;
        if let Poll::Ready(outcome) = first {
            observed.finish(outcome.as_ref().map(drop));
            if let Some(id) = id {
                self.reply(id, outcome, Flush::Defer);
            }
            drop(active);
            drop(count);
            return;
        }
        let me = self.clone();
        let task = async move {
            let _permit = message_permit;
            let _count = count;
            let outcome = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), fut)
                    .await
                    .unwrap_or(Err(Fault::DeadlineExceeded)),
                None => fut.await,
            };
            observed.finish(outcome.as_ref().map(drop));
            if let Some(id) = id {
                lock(&me.serving).remove(&id);
                me.reply_async(id, outcome, active).await;
            }
        };
        match id {
            Some(id) => {
                let mut serving = lock(&self.serving);
                if serving.contains_key(&id) {
                    drop(serving);
                    return self.protocol_error(format!("call id {id} is already in use"));
                }
                let h = tokio::spawn(task);
                // `fail` marks the connection dead before it empties this
                // table: a handler registered after that is aborted here.
                if self.state.load(Ordering::Acquire) == DEAD {
                    h.abort();
                } else {
                    serving.insert(id, h.abort_handle());
                }
            }
            None => {
                tokio::spawn(task);
            }
        }
    }

    pub(super) fn encode_reply(
        &self,
        b: &mut BytesMut,
        id: u64,
        outcome: &Outcome,
    ) -> Result<(), EncodeError<postcard::Error>> {
        let f = Frame::Reply {
            id,
            result: outcome.clone(),
        };
        match frame::encode(b, &f, self.peer_max_frame) {
            Ok(()) => Ok(()),
            Err(e @ crate::wire::FrameError::TooLarge { .. }) => {
                let f = Frame::Reply {
                    id,
                    result: Err(Fault::Rejected(format!("the reply is too large: {e}"))),
                };
                frame::encode(b, &f, u32::MAX).map_err(EncodeError::Frame)
            }
            Err(e) => Err(EncodeError::Frame(e)),
        }
    }

    pub(super) fn reply(&self, id: u64, outcome: Outcome, how: Flush) {
        let _ = self.enqueue_as(how, true, |b| self.encode_reply(b, id, &outcome));
    }

    /// Queues a spawned handler's reply once there is room; the call stops
    /// counting against the peer's in-flight limit just before.
    pub(super) async fn reply_async(&self, id: u64, outcome: Outcome, active: ActiveGuard) {
        loop {
            let n = self.space.notified();
            {
                let out = lock(&self.out);
                if out.dead {
                    return;
                }
                if out.queued() < self.limits.write_buffer {
                    break;
                }
            }
            n.await;
        }
        let how = if self.serving_count.load(Ordering::Relaxed) > 1 {
            Flush::Handoff
        } else {
            Flush::Now
        };
        drop(active);
        self.reply(id, outcome, how);
    }
}

pub(super) struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) struct ServingGuard(Arc<Shared>);

impl Drop for ServingGuard {
    fn drop(&mut self) {
        if self.0.serving_count.fetch_sub(1, Ordering::AcqRel) == 1
            && self.0.state.load(Ordering::Relaxed) != OPEN
        {
            self.0.drained.notify_one();
        }
    }
}

/// A served call's handler: the dispatcher's future under the panic
/// guard, after the node's interceptors when it has any.
pub(crate) enum Handler {
    Plain(GuardedCall),
    Intercepted(OutcomeFuture),
}

impl Handler {
    pub(crate) fn new(
        served: Served,
        mut cx: CallContext,
        object: ObjectId,
        (method, payload): (u64, Bytes),
        (interface, method_name): (&'static str, &'static str),
    ) -> Handler {
        // The probe of `connect_service` tells only which interface the
        // object serves: interceptors, like the authorizer, do not see it.
        let list = match served.interceptors.0.clone() {
            Some(list) if method != crate::rmi::PROBE => list,
            _ => return Handler::Plain(call_guarded(&*served.service, cx, method, payload)),
        };
        let service = served.service;
        Handler::Intercepted(Box::pin(async move {
            let mut info = CallInfo {
                side: Side::Server,
                interface,
                method: method_name,
                object,
                peer: Some(cx.caller),
                principal: cx.principal().cloned(),
                metadata: std::mem::take(&mut cx.metadata),
                one_way: cx.one_way,
            };
            Interceptors::run(&list, &mut info).await?;
            cx.metadata = info.metadata.clone();
            let started = Instant::now();
            let outcome = call_guarded(&*service, cx, method, payload).await;
            if !info.one_way {
                Interceptors::finished(&list, &info, outcome.as_ref().map(drop), started.elapsed());
            }
            outcome
        }))
    }
}

impl Future for Handler {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Outcome> {
        match self.get_mut() {
            Handler::Plain(f) => Pin::new(f).poll(cx),
            Handler::Intercepted(f) => f.as_mut().poll(cx),
        }
    }
}
