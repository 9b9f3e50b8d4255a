//! A full-duplex, multiplexed connection between two nodes.
//!
//! Either end may call the other over one socket. The design keeps the
//! common path free of task hops:
//!
//! - **Writing.** A sender encodes its frame straight into the shared
//!   outgoing buffer. If no one is writing, it becomes the writer: it takes
//!   the buffer, writes it with a non-blocking `try_write`, and keeps going
//!   while others append (so everything queued while the socket was busy
//!   goes out in one write). Only when the socket would block is the rest
//!   handed to the connection's housekeeping task, which waits for the
//!   socket. No sender ever awaits inside the write path, so a cancelled
//!   caller cannot leave half a frame behind.
//! - **Reading.** One reader task per connection splits frames. A reply
//!   completes its caller's one-shot (the caller wakes on the same worker).
//!   A call is dispatched and its handler polled once in place; only a
//!   handler that is not ready at once is spawned as a task.
//! - **Back-pressure.** Callers take a slot from a semaphore sized to the
//!   smaller of the two ends' in-flight limits, and wait while the outgoing
//!   buffer is over its limit. Nothing is queued without bound.

use crate::sync::lock;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::AbortHandle;

use crate::codec;
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::service::{CallContext, Objects, Outcome, call_guarded};
use crate::transport::{PeerAddr, ReadHalf, Stream, WriteHalf};
use crate::wire::frame::{self, EncodeError};
use crate::wire::{Fault, Frame};

const OPEN: u8 = 0;
const PEER_CLOSING: u8 = 1;
const CLOSING: u8 = 2;
const DEAD: u8 = 3;

/// The most lease frames a peer may send in one second.
const MAX_LEASE_FRAMES_PER_S: u32 = 1000;

/// Read buffer reserved per connection while idle.
const READ_CHUNK: usize = 4096;

/// Call ids are sequential; a multiplicative hash spreads them.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct Outbox {
    /// Frames appended since the writer last took the buffer.
    buf: BytesMut,
    /// An empty buffer kept for reuse.
    spare: BytesMut,
    /// Bytes the housekeeper must write once the socket is writable.
    stalled: Option<BytesMut>,
    /// Someone is writing (a sender, or the housekeeper).
    writing: bool,
    /// The connection is dead: nothing more is written.
    dead: bool,
    /// Bytes ever appended, and ever written to the socket.
    enqueued: u64,
    written: u64,
    /// Where each reply not yet written ends (in `enqueued` terms). A
    /// well-behaved peer never has more of these than its in-flight limit:
    /// they answer calls it is still waiting for.
    reply_ends: VecDeque<u64>,
}

impl Outbox {
    fn queued(&self) -> usize {
        self.buf.len() + self.stalled.as_ref().map_or(0, |s| s.len())
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        while self
            .reply_ends
            .front()
            .is_some_and(|&end| end <= self.written)
        {
            self.reply_ends.pop_front();
        }
    }
}

#[derive(Default)]
struct Pending {
    calls: IdMap<oneshot::Sender<Result<Bytes>>>,
    closed: bool,
}

/// Called once when a connection dies, to take it out of its node's table.
pub(crate) type OnDead = Box<dyn FnOnce() + Send>;

pub(crate) struct Shared {
    io: WriteHalf,
    node: WeakNode,
    /// What the peer presented in its hello (only when it dialed us).
    peer_credentials: Option<Bytes>,
    serial: u64,
    peer: NodeId,
    peer_addr: PeerAddr,
    peer_desc: String,
    local: NodeId,
    limits: Arc<Limits>,
    /// The largest frame the peer accepts.
    peer_max_frame: u32,
    out: Mutex<Outbox>,
    /// Signalled when the outgoing buffer drains below the limit.
    space: Notify,
    /// Wakes the housekeeper to finish a stalled write.
    stalled: Notify,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    permits: Semaphore,
    serving: Mutex<IdMap<AbortHandle>>,
    serving_count: AtomicUsize,
    /// Calls of the peer being served whose reply is not queued yet: what
    /// the in-flight limit counts. (A reply may reach the peer, which then
    /// sends its next call, before the serving task has ended.)
    active: AtomicUsize,
    /// Slots for one-way messages being handled; the reader waits for one.
    message_slots: Arc<Semaphore>,
    state: AtomicU8,
    /// Signalled when the last call in flight ends while closing.
    drained: Notify,
    /// Signalled once the connection is dead.
    died: Notify,
    death: Mutex<Option<String>>,
    objects: Arc<Objects>,
    on_dead: Mutex<Option<OnDead>>,
    tasks: Mutex<Vec<AbortHandle>>,
    epoch: Instant,
    /// The streams on this connection (`remote::stream`).
    streams: crate::remote::stream::Streams,
    /// Lease frames in the current second, and when it began (flood guard).
    lease_window: Mutex<(Instant, u32)>,
    /// Reads so far; the housekeeper notices silence when it stops moving
    /// (no clock is read on the hot path).
    reads: AtomicU64,
    last_app_ms: AtomicU64,
}

/// A connection to another node. Cheap to clone; all clones share it.
///
/// Obtained from [`crate::Node::connect`], or handed to handlers in their
/// [`CallContext`].
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer)
            .field("remote", &self.shared.peer_desc)
            .field("open", &self.is_open())
            .finish()
    }
}

/// What the handshake established.
pub(crate) struct Established {
    pub(crate) io: Stream,
    pub(crate) node: WeakNode,
    pub(crate) serial: u64,
    pub(crate) local: NodeId,
    pub(crate) peer: NodeId,
    pub(crate) peer_addr: PeerAddr,
    pub(crate) peer_desc: String,
    pub(crate) peer_max_frame: u32,
    pub(crate) peer_max_in_flight: u32,
    pub(crate) peer_credentials: Option<Bytes>,
}

impl Connection {
    /// Starts the reader and housekeeping tasks of an established stream.
    pub(crate) fn start(
        e: Established,
        limits: Arc<Limits>,
        objects: Arc<Objects>,
        on_dead: OnDead,
    ) -> Connection {
        let slots = limits.max_in_flight.min(e.peer_max_in_flight).max(1) as usize;
        let now = Instant::now();
        let (reader, writer) = e.io.split();
        let shared = Arc::new(Shared {
            io: writer,
            node: e.node,
            peer_credentials: e.peer_credentials,
            serial: e.serial,
            peer: e.peer,
            peer_addr: e.peer_addr,
            peer_desc: e.peer_desc,
            local: e.local,
            peer_max_frame: e.peer_max_frame.min(limits.max_frame_len),
            out: Mutex::new(Outbox::default()),
            space: Notify::new(),
            stalled: Notify::new(),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            permits: Semaphore::new(slots),
            serving: Mutex::new(IdMap::default()),
            serving_count: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            message_slots: Arc::new(Semaphore::new(limits.max_in_flight as usize)),
            state: AtomicU8::new(OPEN),
            drained: Notify::new(),
            died: Notify::new(),
            death: Mutex::new(None),
            objects,
            on_dead: Mutex::new(Some(on_dead)),
            tasks: Mutex::new(Vec::new()),
            epoch: now,
            streams: Default::default(),
            reads: AtomicU64::new(0),
            lease_window: Mutex::new((now, 0)),
            last_app_ms: AtomicU64::new(0),
            limits,
        });
        let reader = tokio::spawn(read_loop(shared.clone(), reader));
        let keeper = tokio::spawn(housekeep(shared.clone()));
        lock(&shared.tasks).extend([reader.abort_handle(), keeper.abort_handle()]);
        if shared.state.load(Ordering::Acquire) == DEAD {
            reader.abort();
            keeper.abort();
        }
        Connection { shared }
    }

    /// The id of the node at the other end.
    pub fn peer_id(&self) -> NodeId {
        self.shared.peer
    }

    /// The node at this end, if it still exists.
    pub fn node(&self) -> Option<Node> {
        self.shared.node.upgrade()
    }

    /// The credentials the peer presented in the handshake, if it dialed
    /// this node and presented any.
    pub fn peer_credentials(&self) -> Option<&Bytes> {
        self.shared.peer_credentials.as_ref()
    }

    /// The id of the node at this end.
    pub fn local_id(&self) -> NodeId {
        self.shared.local
    }

    /// The remote end, as the socket reported it when the connection was
    /// established. Decisions about who the peer is (is it on this host?)
    /// are made on this, never on [`Connection::remote_description`].
    pub fn peer_addr(&self) -> PeerAddr {
        self.shared.peer_addr
    }

    /// A description of the remote end (its address when known), for logs
    /// and errors.
    pub fn remote_description(&self) -> &str {
        &self.shared.peer_desc
    }

    /// Whether new calls may be made on this connection.
    pub fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == OPEN
    }

    /// Whether the connection is dead (broken or closed).
    pub fn is_dead(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == DEAD
    }

    pub(crate) fn serial(&self) -> u64 {
        self.shared.serial
    }

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
        let s = &*self.shared;
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
        s.enqueue_as(how, false, |b| {
            frame::encode_call(b, id, timeout_us.max(1), object, method, encode, max)
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
        let s = &*self.shared;
        self.check_open()?;
        self.wait_space().await?;
        let max = s.peer_max_frame;
        s.enqueue(|b| frame::encode_message(b, object, method, encode, max))?;
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
        let _ = s.enqueue(|b| {
            frame::encode(
                b,
                &Frame::Close {
                    reason: "closing".into(),
                },
                u32::MAX,
            )
            .map_err(EncodeError::<()>::Frame)
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

    /// Sends a lease renewal (or release) for `objects`, best effort.
    pub(crate) fn send_lease(&self, renew: bool, objects: Vec<ObjectId>) {
        let f = if renew {
            Frame::LeaseRenew { objects }
        } else {
            Frame::LeaseRelease { objects }
        };
        let _ = self
            .shared
            .enqueue(|b| frame::encode(b, &f, u32::MAX).map_err(EncodeError::<()>::Frame));
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

    /// Calls in flight from this side.
    pub fn calls_in_flight(&self) -> usize {
        lock(&self.shared.pending).calls.len()
    }

    fn check_open(&self) -> Result<()> {
        match self.shared.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            DEAD => Err(self.death_error()),
            _ => Err(Error::Closed),
        }
    }

    fn death_error(&self) -> Error {
        let why = lock(&self.shared.death).clone();
        Error::Disconnected(why.unwrap_or_else(|| "connection lost".into()))
    }

    async fn wait_space(&self) -> Result<()> {
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

/// What the stream layer (`remote::stream`) needs of a connection.
impl Connection {
    pub(crate) fn streams(&self) -> &crate::remote::stream::Streams {
        &self.shared.streams
    }

    /// Queues a stream item built by `encode` (given the peer's frame
    /// limit), after waiting while the outgoing buffer is over its limit.
    /// With `defer`, the frame waits in the buffer for the sender's next
    /// one: the sender calls [`Connection::flush_streams`] before it waits
    /// for anything else, so that a burst of items goes out in one write.
    pub(crate) async fn send_stream_frame(
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

    /// Queues a small stream frame (credit, cancel, end) and writes it now.
    pub(crate) fn send_stream_control(&self, f: &Frame) -> Result<()> {
        self.shared
            .enqueue(|b| frame::encode(b, f, u32::MAX).map_err(EncodeError::<()>::Frame))
    }

    /// Writes the stream items queued with `defer`.
    pub(crate) fn flush_streams(&self) {
        self.shared.flush_deferred();
    }
}

/// Removes an abandoned call and tells the peer to drop its handler.
struct InFlight<'a> {
    shared: &'a Shared,
    id: u64,
    armed: bool,
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
            let _ = self.shared.enqueue(|b| {
                frame::encode(b, &Frame::Cancel { id }, u32::MAX).map_err(EncodeError::<()>::Frame)
            });
        }
    }
}

/// When a sender's frame goes to the socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
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

enum Drain {
    Done,
    Blocked,
    Failed(io::Error),
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch_app(&self) {
        if self.limits.idle_timeout.is_some() {
            self.last_app_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn is_drained(&self) -> bool {
        lock(&self.pending).calls.is_empty() && self.serving_count.load(Ordering::Acquire) == 0
    }

    /// Appends a frame and writes it now if the socket is free.
    fn enqueue<E>(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError<E>>,
    ) -> Result<()>
    where
        Error: From<EncodeFail<E>>,
    {
        self.enqueue_as(Flush::Now, false, encode)
    }

    /// Appends a frame, then flushes as `how` says.
    fn enqueue_as<E>(
        &self,
        how: Flush,
        is_reply: bool,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError<E>>,
    ) -> Result<()>
    where
        Error: From<EncodeFail<E>>,
    {
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
            encode(&mut out.buf).map_err(|e| Error::from(EncodeFail(e)))?;
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
    fn flush_deferred(&self) {
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
    fn drain(&self, mut chunk: BytesMut) -> Drain {
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

    /// Declares the connection dead: every waiter is released with an
    /// error, handlers are dropped, the socket is shut. Idempotent.
    fn fail(&self, reason: String) {
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
        self.streams.fail(&reason);
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
        self.space.notify_waiters();
        self.stalled.notify_one();
        self.drained.notify_one();
        self.io.shutdown_both();
        if let Some(f) = lock(&self.on_dead).take() {
            f();
        }
        self.died.notify_waiters();
        for t in std::mem::take(&mut *lock(&self.tasks)) {
            t.abort();
        }
    }

    fn protocol_error(&self, reason: String) {
        tracing::debug!(peer = %self.peer, %reason, "protocol error");
        let r = reason.clone();
        let _ = self.enqueue(|b| {
            frame::encode(b, &Frame::Close { reason: r }, u32::MAX)
                .map_err(EncodeError::<()>::Frame)
        });
        self.fail(format!("protocol error: {reason}"));
    }

    async fn on_frame(self: &Arc<Self>, f: Frame) {
        match f {
            Frame::Call {
                id,
                timeout_us,
                object,
                method,
                payload,
            } => {
                self.serve(Some(id), timeout_us, object, method, payload)
                    .await
            }
            Frame::Message {
                object,
                method,
                payload,
            } => self.serve(None, 0, object, method, payload).await,
            Frame::Reply { id, result } => {
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
            Frame::Cancel { id } => {
                if let Some(h) = lock(&self.serving).remove(&id) {
                    h.abort();
                }
            }
            Frame::Ping { nonce } => {
                if lock(&self.out).queued() < self.limits.write_buffer {
                    let _ = self.enqueue(|b| {
                        frame::encode(b, &Frame::Pong { nonce }, u32::MAX)
                            .map_err(EncodeError::<()>::Frame)
                    });
                }
            }
            Frame::Pong { .. } => {}
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
                if let Err(reason) = self.streams.on_frame(f) {
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
    fn on_lease(&self, renew: bool, objects: &[ObjectId]) {
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
        let Some(node) = self.node.upgrade() else {
            return;
        };
        if renew {
            node.leases().renew(&node, self.peer, objects);
        } else {
            node.leases().release(&node, self.peer, objects);
        }
    }

    /// Serves a call (`id` set) or a one-way message.
    async fn serve(
        self: &Arc<Self>,
        id: Option<u64>,
        timeout_us: u64,
        object: ObjectId,
        method: u64,
        payload: Bytes,
    ) {
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
        let Some(service) = self.objects.get(object) else {
            return refuse(Fault::NoSuchObject);
        };
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
        };
        // Counted before the handler runs: a close that starts once the
        // handler has started waits for it.
        self.serving_count.fetch_add(1, Ordering::AcqRel);
        self.active.fetch_add(1, Ordering::AcqRel);
        // Created outside the task so that an abort before its first poll
        // still gives the slots back.
        let count = ServingGuard(self.clone());
        let active = ActiveGuard(self.clone());
        let mut fut = call_guarded(&*service, cx, method, payload);
        // Poll once in place: most handlers finish without waiting.
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut fut).poll(cx))).await;
        if let Poll::Ready(outcome) = first {
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

    fn encode_reply(
        &self,
        b: &mut BytesMut,
        id: u64,
        outcome: &Outcome,
    ) -> Result<(), EncodeError<()>> {
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

    fn reply(&self, id: u64, outcome: Outcome, how: Flush) {
        let _ = self.enqueue_as(how, true, |b| self.encode_reply(b, id, &outcome));
    }

    /// Queues a spawned handler's reply once there is room; the call stops
    /// counting against the peer's in-flight limit just before.
    async fn reply_async(&self, id: u64, outcome: Outcome, active: ActiveGuard) {
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

/// Wraps an encoding failure so `enqueue` can be generic over payloads.
pub(crate) struct EncodeFail<E>(EncodeError<E>);

impl From<EncodeFail<()>> for Error {
    fn from(e: EncodeFail<()>) -> Self {
        match e.0 {
            EncodeError::Frame(f) => Error::Frame(f),
            EncodeError::Payload(()) => Error::Closed,
        }
    }
}

impl From<EncodeFail<postcard::Error>> for Error {
    fn from(e: EncodeFail<postcard::Error>) -> Self {
        match e.0 {
            EncodeError::Frame(f) => Error::Frame(f),
            EncodeError::Payload(p) => Error::Encode(p),
        }
    }
}

struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

struct ServingGuard(Arc<Shared>);

impl Drop for ServingGuard {
    fn drop(&mut self) {
        if self.0.serving_count.fetch_sub(1, Ordering::AcqRel) == 1
            && self.0.state.load(Ordering::Relaxed) != OPEN
        {
            self.0.drained.notify_one();
        }
    }
}

async fn read_loop(s: Arc<Shared>, mut io: ReadHalf) {
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
            Ok(_) => {
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

/// Finishes stalled writes, pings a silent peer, closes idle connections.
/// Aborted by [`Shared::fail`].
async fn housekeep(s: Arc<Shared>) {
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
            let _ = s.enqueue(|b| {
                frame::encode(b, &Frame::Ping { nonce: now }, u32::MAX)
                    .map_err(EncodeError::<()>::Frame)
            });
        }
        if let Some(idle) = idle {
            let quiet =
                Duration::from_millis(now.saturating_sub(s.last_app_ms.load(Ordering::Relaxed)));
            if quiet >= idle
                && s.is_drained()
                && s.streams.is_empty()
                && s.state.load(Ordering::Acquire) == OPEN
            {
                let c = Connection { shared: s.clone() };
                tokio::spawn(async move { c.close().await });
            }
        }
    }
}
