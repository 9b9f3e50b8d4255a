//! The client side of a connection: calls and one-way messages to the
//! peer, and the table of calls waiting for their reply.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::outbox::Flush;
use super::{Connection, IdMap, OPEN, Shared};
use crate::codec;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::metadata::Metadata;
use crate::sync::lock;
use crate::wire::frame::{self, Head};
use crate::wire::{Fault, Frame};

#[derive(Default)]
pub(super) struct Pending {
    pub(super) calls: IdMap<oneshot::Sender<Result<Bytes>>>,
    pub(super) closed: bool,
}

impl Connection {
    /// Calls `method` of `object` on the peer with an already encoded
    /// payload, waiting at most `deadline` (the node's default if `None`).
    pub async fn call_bytes(
        &self,
        object: ObjectId,
        method: u64,
        payload: &[u8],
        deadline: Option<Duration>,
    ) -> Result<Bytes> {
        self.call_with(object, method, deadline, |b| {
            b.extend_from_slice(payload);
            Ok(())
        })
        .await
    }

    /// Calls `method` of `object` with `arg` encoded by postcard, and
    /// decodes the answer as `R`.
    pub async fn call<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        object: ObjectId,
        method: u64,
        arg: &A,
        deadline: Option<Duration>,
    ) -> Result<R> {
        let bytes = self
            .call_with(object, method, deadline, |b| codec::encode_into(arg, b))
            .await?;
        codec::decode(&bytes).map_err(Error::Decode)
    }

    /// The general call: `encode` appends the payload to the frame.
    pub async fn call_with(
        &self,
        object: ObjectId,
        method: u64,
        deadline: Option<Duration>,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), postcard::Error>,
    ) -> Result<Bytes> {
        self.call_with_metadata(object, method, deadline, &Metadata::new(), encode)
            .await
    }

    /// [`Connection::call_with`], with `metadata` for the server's
    /// [`CallContext::metadata`](crate::CallContext::metadata). Metadata
    /// over this node's [`Limits::metadata`](crate::Limits::metadata)
    /// is refused before anything is sent.
    pub async fn call_with_metadata(
        &self,
        object: ObjectId,
        method: u64,
        deadline: Option<Duration>,
        metadata: &Metadata,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), postcard::Error>,
    ) -> Result<Bytes> {
        let s = &*self.shared;
        let block = s.metadata_block(metadata)?;
        let deadline = deadline.unwrap_or(s.limits.default_deadline);
        // The clock is read only if the call has to wait before it is sent.
        let mut waited_since: Option<Instant> = None;
        self.check_open()?;
        let _permit = match s.permits.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                waited_since = Some(Instant::now());
                let fut = s.permits.acquire();
                match tokio::time::timeout(deadline, fut).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(self.death_error()),
                    Err(_) => return Err(Error::DeadlineExceeded(deadline)),
                }
            }
        };
        if lock(&s.out).queued() >= s.limits.write_buffer {
            waited_since.get_or_insert_with(Instant::now);
            self.wait_space().await?;
        }
        let remaining = match waited_since {
            Some(t) => deadline.saturating_sub(t.elapsed()),
            None => deadline,
        };
        let id = s.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let in_flight = {
            let mut p = lock(&s.pending);
            if p.closed {
                return Err(self.death_error());
            }
            p.calls.insert(id, tx);
            p.calls.len()
        };
        let mut guard = InFlight {
            shared: s,
            id,
            armed: true,
        };
        let timeout_us = remaining.as_micros().min(u64::MAX as u128) as u64;
        let max = s.peer_max_frame;
        let how = if in_flight > 1 {
            Flush::Handoff
        } else {
            Flush::Now
        };
        let head = Head {
            metadata: &block,
            ..Head::new(object, method)
        };
        s.enqueue_as(how, false, |b| {
            frame::encode_call(b, id, timeout_us.max(1), head, encode, max)
        })
        .inspect_err(|_| {
            lock(&s.pending).calls.remove(&id);
            guard.armed = false;
        })?;
        s.touch_app();
        let answer = match tokio::time::timeout(remaining, rx).await {
            // The server gave up at the same deadline: the same error.
            Ok(Ok(Err(Error::Remote(Fault::DeadlineExceeded)))) => {
                Err(Error::DeadlineExceeded(deadline))
            }
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.death_error()),
            Err(_) => return Err(Error::DeadlineExceeded(deadline)),
        };
        guard.armed = false;
        answer
    }

    /// Sends a one-way message to `object`: no reply, no deadline.
    /// Returns once the message is queued for the socket.
    pub async fn send_with(
        &self,
        object: ObjectId,
        method: u64,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), postcard::Error>,
    ) -> Result<()> {
        self.send_with_metadata(object, method, &Metadata::new(), encode)
            .await
    }

    /// [`Connection::send_with`], with `metadata`.
    pub async fn send_with_metadata(
        &self,
        object: ObjectId,
        method: u64,
        metadata: &Metadata,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), postcard::Error>,
    ) -> Result<()> {
        let s = &*self.shared;
        let block = s.metadata_block(metadata)?;
        self.check_open()?;
        self.wait_space().await?;
        let max = s.peer_max_frame;
        let head = Head {
            metadata: &block,
            ..Head::new(object, method)
        };
        s.enqueue(|b| frame::encode_message(b, head, encode, max))?;
        s.touch_app();
        Ok(())
    }

    /// Sends `msg` one-way to `method` of `object`, encoded by postcard.
    pub async fn send<A: Serialize + ?Sized>(
        &self,
        object: ObjectId,
        method: u64,
        msg: &A,
    ) -> Result<()> {
        self.send_with(object, method, |b| codec::encode_into(msg, b))
            .await
    }

    /// Measures the round trip to the peer: a `Ping` frame and its `Pong`
    /// (PROTOCOL.md, keepalive), answered by the peer's reader without
    /// running any handler. Fails if no pong comes within `deadline` or
    /// the connection dies first.
    pub async fn ping(&self, deadline: Duration) -> Result<Duration> {
        let s = &*self.shared;
        self.check_open()?;
        // Nonces with the top bit set are this method's; keepalive pings
        // use the clock's milliseconds.
        let nonce = (1 << 63) | s.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&s.probes).insert(nonce, tx);
        let started = Instant::now();
        if let Err(e) = s.send_control(&Frame::Ping { nonce }) {
            lock(&s.probes).remove(&nonce);
            return Err(e);
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(_)) => Err(self.death_error()),
            Err(_) => {
                lock(&s.probes).remove(&nonce);
                Err(Error::DeadlineExceeded(deadline))
            }
        }
    }

    /// Calls in flight from this side.
    pub fn calls_in_flight(&self) -> usize {
        lock(&self.shared.pending).calls.len()
    }
}

impl Shared {
    /// The encoded block of `metadata` (empty for none), if it is within
    /// this node's limits.
    fn metadata_block(&self, metadata: &Metadata) -> Result<Bytes> {
        if metadata.is_empty() {
            return Ok(Bytes::new());
        }
        metadata.check(&self.limits.metadata)?;
        Ok(metadata.encode())
    }

    /// A reply from the peer: completes its caller.
    pub(super) fn on_reply(&self, id: u64, result: Result<Bytes, Fault>) {
        let tx = {
            let mut p = lock(&self.pending);
            let tx = p.calls.remove(&id);
            if p.calls.is_empty() && self.state.load(Ordering::Relaxed) != OPEN {
                self.drained.notify_one();
            }
            tx
        };
        if let Some(tx) = tx {
            self.touch_app();
            let _ = tx.send(result.map_err(Error::Remote));
        }
    }
}

/// Removes an abandoned call and tells the peer to drop its handler.
pub(super) struct InFlight<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
    pub(super) armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let removed = {
            let mut p = lock(&self.shared.pending);
            let r = p.calls.remove(&self.id).is_some();
            if p.calls.is_empty() {
                self.shared.drained.notify_one();
            }
            r
        };
        if removed {
            let id = self.id;
            let _ = self.shared.send_control(&Frame::Cancel { id });
        }
    }
}
