//! The outgoing side of a connection: frames queued by any sender,
//! written in one go by whoever finds the socket idle.
//!
//! A sender encodes its frame straight into the shared buffer. If no one
//! is writing, it becomes the writer ([`Flush::Now`]); when others are
//! active it hands the write to the housekeeper ([`Flush::Handoff`]) so
//! that one write carries all their frames; the reader appends replies
//! and flushes once per read ([`Flush::Defer`]). No sender awaits inside
//! the write path, so a cancelled caller cannot leave half a frame behind.

use std::collections::VecDeque;
use std::io;

use bytes::{Buf, BytesMut};

use super::{Connection, Shared};
use crate::error::{Error, Result};
use crate::sync::lock;
use crate::wire::Frame;
use crate::wire::frame::{self, EncodeError};

#[derive(Default)]
pub(super) struct Outbox {
    /// Frames appended since the writer last took the buffer.
    pub(super) buf: BytesMut,
    /// An empty buffer kept for reuse.
    pub(super) spare: BytesMut,
    /// Bytes the housekeeper must write once the socket is writable.
    pub(super) stalled: Option<BytesMut>,
    /// Someone is writing (a sender, or the housekeeper).
    pub(super) writing: bool,
    /// The connection is dead: nothing more is written.
    pub(super) dead: bool,
    /// Bytes ever appended, and ever written to the socket.
    pub(super) enqueued: u64,
    pub(super) written: u64,
    /// Where each reply not yet written ends (in `enqueued` terms). A
    /// well-behaved peer never has more of these than its in-flight limit:
    /// they answer calls it is still waiting for.
    pub(super) reply_ends: VecDeque<u64>,
}

impl Outbox {
    pub(super) fn queued(&self) -> usize {
        self.buf.len() + self.stalled.as_ref().map_or(0, |s| s.len())
    }

    pub(super) fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        crate::observe::record::counter(crate::observe::names::BYTES_SENT, &[], n as u64);
        while self
            .reply_ends
            .front()
            .is_some_and(|&end| end <= self.written)
        {
            self.reply_ends.pop_front();
        }
    }
}

/// When a sender's frame goes to the socket.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Flush {
    /// Write now, from the sender, if no one is writing. Best when the
    /// sender is alone: no task hop before the bytes leave.
    Now,
    /// Let the housekeeper write. Best when other senders are active: they
    /// append while it is scheduled, and one write carries all their frames.
    Handoff,
    /// Only append; the reader flushes once it has handled every frame of
    /// the bytes it read.
    Defer,
}

pub(super) enum Drain {
    Done,
    Blocked,
    Failed(io::Error),
}

impl Shared {
    /// Appends a frame and writes it now if the socket is free.
    pub(super) fn enqueue(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError<postcard::Error>>,
    ) -> Result<()> {
        self.enqueue_as(Flush::Now, false, encode)
    }

    /// Appends a frame, then flushes as `how` says. A frame that does not
    /// encode is `Error::Frame` (over the limit) or `Error::Encode` (its
    /// payload), and leaves nothing behind in the buffer.
    pub(super) fn enqueue_as(
        &self,
        how: Flush,
        is_reply: bool,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError<postcard::Error>>,
    ) -> Result<()> {
        let chunk = {
            let mut out = lock(&self.out);
            if out.dead {
                drop(out);
                return Err(Error::Disconnected(
                    lock(&self.death)
                        .clone()
                        .unwrap_or_else(|| "connection lost".into()),
                ));
            }
            let before = out.buf.len();
            encode(&mut out.buf)?;
            out.enqueued += (out.buf.len() - before) as u64;
            if is_reply {
                let end = out.enqueued;
                out.reply_ends.push_back(end);
            }
            if out.writing {
                return Ok(());
            }
            match how {
                Flush::Now => {}
                Flush::Defer => return Ok(()),
                Flush::Handoff => {
                    out.writing = true;
                    let fresh = std::mem::take(&mut out.spare);
                    out.stalled = Some(std::mem::replace(&mut out.buf, fresh));
                    drop(out);
                    self.stalled.notify_one();
                    return Ok(());
                }
            }
            out.writing = true;
            let fresh = std::mem::take(&mut out.spare);
            std::mem::replace(&mut out.buf, fresh)
        };
        match self.drain(chunk) {
            Drain::Done | Drain::Blocked => Ok(()),
            Drain::Failed(e) => {
                let msg = format!("write failed: {e}");
                self.fail(msg.clone());
                Err(Error::Disconnected(msg))
            }
        }
    }

    /// Writes frames appended with [`Flush::Defer`], if no one else is.
    pub(super) fn flush_deferred(&self) {
        let chunk = {
            let mut out = lock(&self.out);
            if out.writing || out.dead || out.buf.is_empty() {
                return;
            }
            out.writing = true;
            let fresh = std::mem::take(&mut out.spare);
            std::mem::replace(&mut out.buf, fresh)
        };
        if let Drain::Failed(e) = self.drain(chunk) {
            self.fail(format!("write failed: {e}"));
        }
    }

    /// Writes `chunk`, then whatever was appended meanwhile, until the
    /// buffer is empty or the socket would block.
    pub(super) fn drain(&self, mut chunk: BytesMut) -> Drain {
        loop {
            let mut wrote = 0;
            while !chunk.is_empty() {
                match self.io.try_write(&chunk) {
                    Ok(n) => {
                        chunk.advance(n);
                        wrote += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let mut out = lock(&self.out);
                        out.wrote(wrote);
                        out.stalled = Some(chunk);
                        drop(out);
                        self.stalled.notify_one();
                        return Drain::Blocked;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        lock(&self.out).writing = false;
                        return Drain::Failed(e);
                    }
                }
            }
            let mut out = lock(&self.out);
            out.wrote(wrote);
            chunk.clear();
            if out.buf.is_empty() {
                out.writing = false;
                if chunk.capacity() <= 256 * 1024 {
                    out.spare = chunk;
                }
                drop(out);
                self.space.notify_waiters();
                return Drain::Done;
            }
            chunk = std::mem::replace(&mut out.buf, chunk);
        }
    }

    /// Queues a small frame that carries no payload of the user's
    /// (cancel, ping, close, lease and stream control) and writes it now
    /// if the socket is free.
    pub(super) fn send_control(&self, f: &Frame) -> Result<()> {
        self.enqueue(|b| frame::encode(b, f, u32::MAX).map_err(EncodeError::Frame))
    }
}

/// What the layers above (remote objects: leases, streams) send on a
/// connection.
impl Connection {
    /// Queues a control frame (lease renewals and releases, stream
    /// credit, cancel and end) and writes it now if the socket is free.
    pub(crate) fn send_control(&self, f: &Frame) -> Result<()> {
        self.shared.send_control(f)
    }

    /// Queues a frame built by `encode` (given the peer's frame limit),
    /// after waiting while the outgoing buffer is over its limit. With
    /// `defer`, the frame waits in the buffer for the sender's next one:
    /// the sender calls [`Connection::flush`] before it waits for anything
    /// else, so that a burst of frames goes out in one write.
    pub(crate) async fn send_frame(
        &self,
        defer: bool,
        encode: impl FnOnce(&mut BytesMut, u32) -> Result<(), EncodeError<postcard::Error>>,
    ) -> Result<()> {
        let s = &*self.shared;
        if lock(&s.out).queued() >= s.limits.write_buffer {
            s.flush_deferred();
            self.wait_space().await?;
        }
        let max = s.peer_max_frame;
        let how = if defer { Flush::Defer } else { Flush::Now };
        s.enqueue_as(how, false, |b| encode(b, max))
    }

    /// Writes the frames queued with `defer`.
    pub(crate) fn flush(&self) {
        self.shared.flush_deferred();
    }

    pub(super) async fn wait_space(&self) -> Result<()> {
        let s = &*self.shared;
        loop {
            let n = s.space.notified();
            {
                let out = lock(&s.out);
                if out.dead {
                    return Err(self.death_error());
                }
                if out.queued() < s.limits.write_buffer {
                    return Ok(());
                }
            }
            n.await;
        }
    }
}
