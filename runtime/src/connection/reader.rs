//! The read loop: one task per connection splits frames and dispatches
//! them. A reply completes its caller's one-shot (the caller wakes on the
//! same worker); a call is served and its handler polled once in place;
//! frames of remote objects (stream items, leases) go to the connection's
//! `Hooks`, after the flood guards.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::serve::Incoming;
use super::{DEAD, OPEN, PEER_CLOSING, Shared};
use crate::id::ObjectId;
use crate::sync::lock;
use crate::transport::ReadHalf;
use crate::wire::Frame;
use crate::wire::frame;

/// The most lease frames a peer may send in one second.
const MAX_LEASE_FRAMES_PER_S: u32 = 1000;

/// Read buffer reserved per connection while idle.
const READ_CHUNK: usize = 4096;

impl Shared {
    pub(super) async fn on_frame(self: &Arc<Self>, f: Frame) {
        match f {
            Frame::Call {
                id,
                timeout_us,
                object,
                method,
                flags,
                metadata,
                payload,
            } => {
                let head = Incoming {
                    object,
                    method,
                    flags,
                    metadata,
                };
                self.serve(Some(id), timeout_us, head, payload).await
            }
            Frame::Message {
                object,
                method,
                flags,
                metadata,
                payload,
            } => {
                let head = Incoming {
                    object,
                    method,
                    flags,
                    metadata,
                };
                self.serve(None, 0, head, payload).await
            }
            Frame::Reply { id, result } => self.on_reply(id, result),
            Frame::Cancel { id } => {
                if let Some(h) = lock(&self.serving).remove(&id) {
                    h.abort();
                }
            }
            Frame::Ping { nonce } => {
                if lock(&self.out).queued() < self.limits.write_buffer {
                    let _ = self.send_control(&Frame::Pong { nonce });
                }
            }
            Frame::Pong { nonce } => {
                if let Some(tx) = lock(&self.probes).remove(&nonce) {
                    let _ = tx.send(());
                }
            }
            Frame::Close { reason } => {
                tracing::debug!(peer = %self.peer, %reason, "peer closing");
                let _ = self.state.compare_exchange(
                    OPEN,
                    PEER_CLOSING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            Frame::LeaseRenew { objects } => self.on_lease(true, &objects),
            Frame::LeaseRelease { objects } => self.on_lease(false, &objects),
            f @ (Frame::StreamItem { .. }
            | Frame::StreamEnd { .. }
            | Frame::StreamCredit { .. }
            | Frame::StreamCancel { .. }) => {
                if let Err(reason) = self.hooks.on_frame(f) {
                    self.protocol_error(reason);
                }
            }
            Frame::Unknown { .. } => {}
        }
    }

    /// A lease frame from the peer. A holder sends at most one renewal
    /// and one release frame per owner every 10 ms (it batches), so a peer
    /// sending more than [`MAX_LEASE_FRAMES_PER_S`] in a second is
    /// flooding, and is cut off.
    pub(super) fn on_lease(&self, renew: bool, objects: &[ObjectId]) {
        let flooding = {
            let mut w = lock(&self.lease_window);
            let now = Instant::now();
            if now.duration_since(w.0) >= Duration::from_secs(1) {
                *w = (now, 0);
            }
            w.1 += 1;
            w.1 > MAX_LEASE_FRAMES_PER_S
        };
        if flooding {
            return self.protocol_error(format!(
                "the peer sent more than {MAX_LEASE_FRAMES_PER_S} lease frames in a second"
            ));
        }
        self.hooks.on_lease(renew, objects);
    }
}

pub(super) async fn read_loop(s: Arc<Shared>, mut io: ReadHalf) {
    let max = s.limits.max_frame_len;
    let mut buf = BytesMut::new();
    let reason = 'read: loop {
        loop {
            match frame::split(&mut buf, max) {
                Ok(Some(body)) => match Frame::decode(body) {
                    Ok(f) => {
                        s.on_frame(f).await;
                        if s.state.load(Ordering::Acquire) == DEAD {
                            // Handling the frame killed the connection: read
                            // nothing more from this peer.
                            return;
                        }
                    }
                    Err(e) => {
                        s.protocol_error(e.to_string());
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    s.protocol_error(e.to_string());
                    return;
                }
            }
        }
        s.flush_deferred();
        if buf.is_empty() {
            // Idle connections hold no read buffer: wait for data first.
            buf = BytesMut::new();
            if let Err(e) = io.readable().await {
                break 'read format!("read failed: {e}");
            }
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(READ_CHUNK);
        }
        match io.read_buf(&mut buf).await {
            Ok(0) => {
                break 'read if buf.is_empty() {
                    "the peer closed the connection".to_string()
                } else {
                    "the peer closed the connection in the middle of a frame".to_string()
                };
            }
            Ok(read) => {
                crate::observe::record::counter(
                    crate::observe::names::BYTES_RECEIVED,
                    &[],
                    read as u64,
                );
                // Only this task writes the counter: no read-modify-write.
                let n = s.reads.load(Ordering::Relaxed);
                s.reads.store(n + 1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break 'read format!("read failed: {e}"),
        }
    };
    s.fail(reason);
}
