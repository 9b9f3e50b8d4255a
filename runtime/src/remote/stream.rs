//! Streams: [`Stream<T>`] as an argument (client streaming) or a result
//! (server streaming) of a remote method.
//!
//! Whoever *encodes* a stream is its producer; whoever *decodes* it is its
//! consumer. On the wire a stream is only `{ id, window }`: the producer
//! numbers it on the connection the bytes go out on, and its items follow
//! as frames of their own (`docs/PROTOCOL.md`, section "Streams"):
//!
//! - the consumer claims the stream when it decodes it, and grants credit
//!   (`StreamCredit`): at first the whole window, then half of it each time
//!   half has been consumed;
//! - the producer sends nothing before the first credit, and never more
//!   items (`StreamItem`) than granted; a peer that does is cut off;
//! - the producer ends the stream (`StreamEnd`), with a fault if it failed;
//! - a consumer dropped before the end cancels (`StreamCancel`); the
//!   producer stops, drops its source and answers with a `StreamEnd`;
//! - the death of the connection ends every stream on it, both ways.
//!
//! serde gives `Serialize` and `Deserialize` no context, so the runtime
//! sets the connection in a thread-local scope around every payload it
//! encodes ([`encode_in`], here) and decodes ([`decode_in`]). A payload
//! encoded for a call to an object of this very node (no connection) hands
//! its streams over through a process-wide table instead.

use crate::sync::lock;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::{Notify, mpsc};

use crate::codec;
use crate::connection::Connection;
use crate::error::Error;
use crate::remote::error::RemoteError;
use crate::remote::wire::{decode_in, with_scope};
use crate::wire::frame;
use crate::wire::{Fault, Frame};

/// The credit window a stream asks its consumer for, in items, unless
/// [`Stream::with_window`] says otherwise.
pub const DEFAULT_WINDOW: u32 = 32;
/// The largest window a consumer grants, whatever the producer asks.
pub const MAX_WINDOW: u32 = 1024;
/// Streams one connection may carry at once in each direction (produced
/// by this side, consumed by this side).
pub const MAX_STREAMS: usize = 1024;
/// How long a producer waits for its consumer to claim the stream (decode
/// it and grant the first credit) before it gives up and drops its source.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ the type

/// A sequence of items that may cross the network: the result of a remote
/// method (server streaming) or one of its arguments (client streaming),
/// nested anywhere in a serde type.
///
/// The producer makes one from an iterator ([`Stream::iter`], or
/// `collect()`), or from a channel ([`Stream::channel`]) it feeds as items
/// come; the consumer reads it with [`Stream::next`]. Between two nodes the
/// items flow with bounded credit: the producer never has more than the
/// window ([`DEFAULT_WINDOW`] items) sent and not yet consumed, so a slow
/// consumer slows the producer down (its [`StreamSender::send`] waits).
/// Dropping the consumer's `Stream` cancels it: the producer's source is
/// dropped, and its `send` fails. A producer that fails ends the stream
/// with an error item ([`StreamSender::fail`]); if the connection dies, the
/// consumer gets [`RemoteError::Disconnected`]. After an error item, `next`
/// returns `None`.
///
/// A stream is sent once: encoding it hands its items over to the
/// receiver (the `Stream` left behind is empty). It lives on after the
/// call that carried it, and is not bound by the call's deadline; but a
/// handler reading a streamed argument must finish within the call's
/// deadline like any other ([`Remote::with_deadline`](crate::Remote::with_deadline)
/// gives a long upload the time it needs).
///
/// An iterator is pulled on the runtime's workers: it must not block
/// (feed a blocking source through [`Stream::channel`] instead).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use farcall_runtime::Stream;
///
/// let mut s = Stream::iter(1..=3);
/// let mut got = Vec::new();
/// while let Some(item) = s.next().await {
///     got.push(item.unwrap());
/// }
/// assert_eq!(got, [1, 2, 3]);
///
/// let (tx, mut s) = Stream::channel(4);
/// tokio::spawn(async move {
///     tx.send("a").await.unwrap();
///     tx.fail(farcall_runtime::RemoteError::Rejected("out of letters".into()));
/// });
/// assert_eq!(s.next().await, Some(Ok("a")));
/// assert!(matches!(s.next().await, Some(Err(_))));
/// assert_eq!(s.next().await, None);
/// # }
/// ```
pub struct Stream<T> {
    source: Mutex<Source<T>>,
    window: u32,
}

enum Source<T> {
    /// Items from an iterator, pulled as credit allows.
    Iter(Box<dyn Iterator<Item = T> + Send>),
    /// Items from a [`StreamSender`].
    Channel(ChannelRx<T>),
    /// Items from a producer at the other end of a connection.
    Wire(Consumer<T>),
    /// Encoded and handed over: the receiver has the items.
    Sent,
    /// Ended.
    Done,
}

impl<T> Source<T> {
    async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        let item = match self {
            Source::Iter(it) => it.next().map(Ok),
            Source::Channel(rx) => rx.next().await,
            Source::Wire(c) => return c.next().await,
            Source::Sent | Source::Done => return None,
        };
        if !matches!(item, Some(Ok(_))) {
            *self = Source::Done;
        }
        item
    }

    /// The consumer is gone (`why`): a channel's sender learns why.
    fn close(&mut self, why: RemoteError) {
        if let Source::Channel(rx) = self {
            lock(&rx.shared.closed).get_or_insert(why);
        }
    }
}

impl<T> Stream<T> {
    fn from_source(source: Source<T>, window: u32) -> Self {
        Stream {
            source: Mutex::new(source),
            window,
        }
    }

    /// A stream of the items of `iter`, pulled one at a time as the
    /// consumer's credit allows (never all at once).
    pub fn iter<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self::from_source(Source::Iter(Box::new(iter.into_iter())), DEFAULT_WINDOW)
    }

    /// A stream fed through a channel: items sent with
    /// [`StreamSender::send`] are buffered up to `capacity` (at least 1)
    /// here, then wait for the consumer's credit. The stream ends when the
    /// sender is dropped, or with an error item by [`StreamSender::fail`].
    pub fn channel(capacity: usize) -> (StreamSender<T>, Stream<T>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(ChannelShared::default());
        let sender = StreamSender {
            tx,
            shared: shared.clone(),
        };
        let rx = ChannelRx { rx, shared };
        (
            sender,
            Self::from_source(Source::Channel(rx), DEFAULT_WINDOW),
        )
    }

    /// The same stream asking its consumer for a credit window of `items`
    /// (1 to [`MAX_WINDOW`]): how many items may be sent and not yet
    /// consumed. A larger window hides more network latency and buffers
    /// more at the consumer.
    pub fn with_window(mut self, items: u32) -> Self {
        self.window = items.clamp(1, MAX_WINDOW);
        self
    }

    /// The credit window this stream asks for.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The next item: `None` at the end; an `Err` item (a failure of the
    /// producer, or of the connection) is the last before `None`.
    pub async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        self.source
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .next()
            .await
    }
}

impl<T> FromIterator<T> for Stream<T>
where
    T: Send + 'static,
{
    /// Collects the items now; [`Stream::iter`] pulls them lazily.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Stream::iter(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &*lock(&self.source) {
            Source::Iter(_) => "iterator".to_owned(),
            Source::Channel(_) => "channel".to_owned(),
            Source::Wire(c) => format!("stream {} from {}", c.id, c.conn.peer_id()),
            Source::Sent => "sent".to_owned(),
            Source::Done => "ended".to_owned(),
        };
        f.debug_struct("Stream")
            .field("item", &std::any::type_name::<T>())
            .field("source", &what)
            .field("window", &self.window)
            .finish()
    }
}

// ------------------------------------------------------------- the channel

#[derive(Default)]
struct ChannelShared {
    /// Set by [`StreamSender::fail`]: the last item.
    failure: Mutex<Option<RemoteError>>,
    /// Why the consumer went away, for the sender's errors.
    closed: Mutex<Option<RemoteError>>,
}

struct ChannelRx<T> {
    rx: mpsc::Receiver<T>,
    shared: Arc<ChannelShared>,
}

impl<T> ChannelRx<T> {
    async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        match self.rx.recv().await {
            Some(v) => Some(Ok(v)),
            None => lock(&self.shared.failure).take().map(Err),
        }
    }
}

impl<T> Drop for ChannelRx<T> {
    fn drop(&mut self) {
        lock(&self.shared.closed).get_or_insert(RemoteError::Closed);
    }
}

/// The producer's end of [`Stream::channel`].
pub struct StreamSender<T> {
    tx: mpsc::Sender<T>,
    shared: Arc<ChannelShared>,
}

impl<T> fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("item", &std::any::type_name::<T>())
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl<T> StreamSender<T> {
    /// Sends one item, waiting while the channel is full (that is, while
    /// the consumer has no credit to give). Fails once the consumer is
    /// gone: it dropped the stream ([`RemoteError::Closed`]), or the
    /// connection died ([`RemoteError::Disconnected`]); the item is lost.
    pub async fn send(&self, item: T) -> Result<(), RemoteError> {
        self.tx.send(item).await.map_err(|_| self.why_closed())
    }

    /// Ends the stream with an error item, after the items already sent.
    pub fn fail(self, error: RemoteError) {
        *lock(&self.shared.failure) = Some(error);
    }

    /// Whether the consumer is gone (a `send` would fail).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the consumer is gone, and says why.
    pub async fn closed(&self) -> RemoteError {
        self.tx.closed().await;
        self.why_closed()
    }

    fn why_closed(&self) -> RemoteError {
        lock(&self.shared.closed)
            .clone()
            .unwrap_or(RemoteError::Closed)
    }
}

// ------------------------------------------------------------ the consumer

enum Event {
    Item(Bytes),
    End(Option<Fault>),
    Dead(String),
}

/// The consumer of a stream produced at the other end of `conn`.
struct Consumer<T> {
    conn: Connection,
    id: u64,
    rx: mpsc::UnboundedReceiver<Event>,
    window: u32,
    /// Items consumed since credit was last granted.
    unacked: u32,
    ended: bool,
    decode: fn(&Connection, &[u8]) -> Result<T, RemoteError>,
}

fn decode_item<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    bytes: &[u8],
) -> Result<T, RemoteError> {
    decode_in(conn.node().as_ref(), Some(conn), bytes)
}

impl<T> Consumer<T> {
    async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        if self.ended {
            return None;
        }
        let event = self.rx.recv().await;
        match event {
            Some(Event::Item(bytes)) => {
                self.unacked += 1;
                if self.unacked >= (self.window / 2).max(1) {
                    let items = std::mem::take(&mut self.unacked);
                    if self.conn.streams().grant(self.id, items) {
                        let _ = self.conn.send_control(&Frame::StreamCredit {
                            stream: self.id,
                            items,
                        });
                    }
                }
                match (self.decode)(&self.conn, &bytes) {
                    Ok(v) => Some(Ok(v)),
                    Err(e) => {
                        self.cancel();
                        Some(Err(e))
                    }
                }
            }
            Some(Event::End(fault)) => {
                self.ended = true;
                fault.map(|f| Err(f.into()))
            }
            Some(Event::Dead(reason)) => {
                self.ended = true;
                Some(Err(RemoteError::Disconnected(reason)))
            }
            None => {
                self.ended = true;
                Some(Err(RemoteError::Disconnected("connection lost".into())))
            }
        }
    }

    fn cancel(&mut self) {
        self.ended = true;
        if self.conn.streams().cancel(self.id) {
            let _ = self
                .conn
                .send_control(&Frame::StreamCancel { stream: self.id });
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        if !self.ended {
            self.cancel();
        }
    }
}

// ------------------------------------------------- the per-connection table

/// The streams of one connection: those this side consumes (numbered by
/// the peer) and those it produces (numbered here).
#[derive(Default)]
pub(crate) struct Streams {
    table: Mutex<Table>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Table {
    consumers: HashMap<u64, Inbound>,
    producers: HashMap<u64, Arc<Outbound>>,
    dead: Option<String>,
}

struct Inbound {
    /// `None` once the consumer cancelled: items still in flight are
    /// counted and dropped until the producer's `StreamEnd`.
    tx: Option<mpsc::UnboundedSender<Event>>,
    /// Items the producer may still send.
    credit: u64,
}

impl fmt::Debug for Streams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = lock(&self.table);
        f.debug_struct("Streams")
            .field("consuming", &t.consumers.len())
            .field("producing", &t.producers.len())
            .finish()
    }
}

impl Streams {
    /// Handles a stream frame from the peer. An error is a protocol
    /// violation: the connection is cut off with this reason.
    pub(crate) fn on_frame(&self, f: Frame) -> Result<(), String> {
        let mut t = lock(&self.table);
        match f {
            Frame::StreamItem { stream, payload } => {
                let Some(c) = t.consumers.get_mut(&stream) else {
                    return Err(format!(
                        "stream item for stream {stream}, which this side does not consume"
                    ));
                };
                if c.credit == 0 {
                    return Err(format!(
                        "stream item for stream {stream} beyond the credit granted"
                    ));
                }
                c.credit -= 1;
                if let Some(tx) = &c.tx {
                    let _ = tx.send(Event::Item(payload));
                }
            }
            Frame::StreamEnd { stream, fault } => {
                let Some(c) = t.consumers.remove(&stream) else {
                    return Err(format!(
                        "stream end for stream {stream}, which this side does not consume"
                    ));
                };
                if let Some(tx) = c.tx {
                    let _ = tx.send(Event::End(fault));
                }
            }
            // Credit and cancel may cross the end of the stream: for a
            // stream no longer produced here they are ignored.
            Frame::StreamCredit { stream, items } => {
                if let Some(p) = t.producers.get(&stream) {
                    p.update(|s| {
                        s.credit = s.credit.saturating_add(u64::from(items));
                        s.claimed = true;
                    });
                }
            }
            Frame::StreamCancel { stream } => {
                if let Some(p) = t.producers.get(&stream) {
                    p.update(|s| {
                        s.stop.get_or_insert(Stop::Cancelled);
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The connection died: every stream on it ends.
    pub(crate) fn fail(&self, reason: &str) {
        let (consumers, producers) = {
            let mut t = lock(&self.table);
            t.dead = Some(reason.to_owned());
            (
                std::mem::take(&mut t.consumers),
                std::mem::take(&mut t.producers),
            )
        };
        for (_, c) in consumers {
            if let Some(tx) = c.tx {
                let _ = tx.send(Event::Dead(reason.to_owned()));
            }
        }
        for (_, p) in producers {
            p.update(|s| {
                s.stop = Some(Stop::Dead(reason.to_owned()));
            });
        }
    }

    /// Whether no stream is open on the connection.
    pub(crate) fn is_empty(&self) -> bool {
        let t = lock(&self.table);
        t.consumers.is_empty() && t.producers.is_empty()
    }

    /// Registers a stream the peer produces, with `window` items of credit
    /// (which the caller then grants). `Ok(false)`: the connection is
    /// dead, and the receiver already holds the news.
    fn claim(
        &self,
        id: u64,
        window: u32,
    ) -> Result<(mpsc::UnboundedReceiver<Event>, bool), RemoteError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut t = lock(&self.table);
        if let Some(reason) = &t.dead {
            let _ = tx.send(Event::Dead(reason.clone()));
            return Ok((rx, false));
        }
        if t.consumers.contains_key(&id) {
            return Err(RemoteError::Decode(format!(
                "stream {id} is already open on this connection"
            )));
        }
        if t.consumers.len() >= MAX_STREAMS {
            return Err(RemoteError::Rejected(format!(
                "the peer already has {MAX_STREAMS} streams open toward this node"
            )));
        }
        t.consumers.insert(
            id,
            Inbound {
                tx: Some(tx),
                credit: u64::from(window),
            },
        );
        Ok((rx, true))
    }

    /// Adds `items` to the credit of a stream still consumed here.
    fn grant(&self, id: u64, items: u32) -> bool {
        match lock(&self.table).consumers.get_mut(&id) {
            Some(c) if c.tx.is_some() => {
                c.credit += u64::from(items);
                true
            }
            _ => false,
        }
    }

    /// Marks a consumed stream cancelled; true if a cancel must be sent.
    fn cancel(&self, id: u64) -> bool {
        match lock(&self.table).consumers.get_mut(&id) {
            Some(c) if c.tx.is_some() => {
                c.tx = None;
                true
            }
            _ => false,
        }
    }

    /// Numbers a new stream produced here.
    fn register(&self) -> Result<(u64, Arc<Outbound>), RemoteError> {
        let mut t = lock(&self.table);
        if let Some(reason) = &t.dead {
            return Err(RemoteError::Disconnected(reason.clone()));
        }
        if t.producers.len() >= MAX_STREAMS {
            return Err(RemoteError::Rejected(format!(
                "this side already produces {MAX_STREAMS} streams on the connection"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let p = Arc::new(Outbound::default());
        t.producers.insert(id, p.clone());
        Ok((id, p))
    }

    fn unregister(&self, id: u64) {
        lock(&self.table).producers.remove(&id);
    }
}

// ------------------------------------------------------------ the producer

#[derive(Clone)]
enum Stop {
    /// The consumer dropped the stream.
    Cancelled,
    /// The connection died.
    Dead(String),
}

#[derive(Default)]
struct OutState {
    credit: u64,
    claimed: bool,
    stop: Option<Stop>,
}

/// What the reader tells a producer: credit, cancel, death.
#[derive(Default)]
struct Outbound {
    state: Mutex<OutState>,
    wake: Notify,
}

impl Outbound {
    fn update(&self, f: impl FnOnce(&mut OutState)) {
        f(&mut lock(&self.state));
        // One waiter (the pump); a wake-up without one is kept for it.
        self.wake.notify_one();
    }

    /// Waits until `ready` says something, re-checking after each wake-up.
    async fn wait<R>(&self, mut ready: impl FnMut(&mut OutState) -> Option<R>) -> R {
        loop {
            let r = ready(&mut lock(&self.state));
            if let Some(r) = r {
                return r;
            }
            self.wake.notified().await;
        }
    }
}

/// Sends a stream's items on `conn` as credit allows. One task per stream
/// sent; it owns the source, and drops it when the stream ends.
async fn pump<T: Serialize + Send + 'static>(
    conn: Connection,
    id: u64,
    out: Arc<Outbound>,
    mut source: Source<T>,
) {
    let mut guard = PumpGuard {
        conn: conn.clone(),
        id,
        claimed: false,
        ended: false,
    };
    let claim = out.wait(|s| match &s.stop {
        Some(stop) => Some(Err((stop.clone(), s.claimed))),
        None => s.claimed.then_some(Ok(())),
    });
    match tokio::time::timeout(CLAIM_TIMEOUT, claim).await {
        Ok(Ok(())) => guard.claimed = true,
        Ok(Err((stop, claimed))) => {
            // A cancel always follows the claim's credit; without one, the
            // peer does not know the stream, and no end is owed.
            guard.claimed = claimed;
            return guard.stopped(stop, &mut source);
        }
        // Never claimed (the reply or call carrying it was dropped): the
        // consumer does not know the id, so nothing is sent.
        Err(_) => {
            guard.ended = true;
            return source.close(RemoteError::Rejected(
                "the stream was not claimed by its receiver".into(),
            ));
        }
    }
    loop {
        let credit = out.wait(|s| {
            if let Some(stop) = &s.stop {
                return Some(Err(stop.clone()));
            }
            (s.credit > 0).then(|| {
                s.credit -= 1;
                Ok(())
            })
        });
        let credit = {
            let mut credit = pin!(credit);
            match poll_once(credit.as_mut()).await {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    // Out of credit: what is queued goes out now.
                    conn.flush();
                    credit.await
                }
            }
        };
        if let Err(stop) = credit {
            return guard.stopped(stop, &mut source);
        }
        let item = {
            let mut next = pin!(source.next());
            match poll_once(next.as_mut()).await {
                Poll::Ready(item) => Ok(item),
                Poll::Pending => {
                    // Waiting for the source: what is queued goes out now.
                    conn.flush();
                    let stopped = out.wait(|s| s.stop.clone());
                    tokio::select! {
                        biased;
                        stop = stopped => Err(stop),
                        item = next => Ok(item),
                    }
                }
            }
        };
        let item = match item {
            Ok(item) => item,
            Err(stop) => return guard.stopped(stop, &mut source),
        };
        let end = match item {
            Some(Ok(v)) => {
                let mut why = None;
                let (c, w) = (&conn, &mut why);
                // The item moves in: only `T: Send` is asked of it.
                let sent = conn
                    .send_frame(true, move |b, max| {
                        let payload = |b: &mut bytes::BytesMut| {
                            let (r, failure) =
                                encode_in(Some(c.clone()), || codec::encode_into(&v, b));
                            *w = failure;
                            r
                        };
                        frame::encode_stream_item(b, id, payload, max)
                    })
                    .await;
                match sent {
                    Ok(()) => {
                        tokio::task::coop::consume_budget().await;
                        continue;
                    }
                    Err(Error::Encode(e)) => Some(Fault::Rejected(format!(
                        "a stream item does not encode: {}",
                        why.map_or_else(|| e.to_string(), |w| w.to_string())
                    ))),
                    Err(Error::Frame(e)) => {
                        Some(Fault::Rejected(format!("a stream item is too large: {e}")))
                    }
                    Err(e) => {
                        // The connection is gone: nothing more is sent.
                        guard.ended = true;
                        return source.close(RemoteError::from(e));
                    }
                }
            }
            Some(Err(e)) => Some(fault_of(e)),
            None => None,
        };
        guard.end(end);
        return source.close(RemoteError::Closed);
    }
}

/// Polls `fut` once.
async fn poll_once<F: Future + Unpin>(mut fut: F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut fut).poll(cx))).await
}

/// Unregisters a producer however its pump ends; a pump that dies without
/// ending a claimed stream (a panicking source) ends it with a fault.
struct PumpGuard {
    conn: Connection,
    id: u64,
    claimed: bool,
    ended: bool,
}

impl PumpGuard {
    fn end(&mut self, fault: Option<Fault>) {
        self.ended = true;
        let _ = self.conn.send_control(&Frame::StreamEnd {
            stream: self.id,
            fault,
        });
    }

    fn stopped<T>(&mut self, stop: Stop, source: &mut Source<T>) {
        match stop {
            Stop::Cancelled if self.claimed => {
                // The consumer keeps counting items until this end.
                self.end(None);
                source.close(RemoteError::Closed);
            }
            Stop::Cancelled => {
                self.ended = true;
                source.close(RemoteError::Closed);
            }
            Stop::Dead(reason) => {
                self.ended = true;
                source.close(RemoteError::Disconnected(reason));
            }
        }
    }
}

impl Drop for PumpGuard {
    fn drop(&mut self) {
        if self.claimed && !self.ended {
            self.end(Some(Fault::Panicked));
        }
        self.conn.streams().unregister(self.id);
    }
}

/// How an error item travels: as the closest fault.
fn fault_of(e: RemoteError) -> Fault {
    match e {
        RemoteError::Closed => Fault::Closing,
        RemoteError::DeadlineExceeded => Fault::DeadlineExceeded,
        RemoteError::NoSuchObject => Fault::NoSuchObject,
        RemoteError::NoSuchMethod(_) => Fault::NoSuchMethod,
        RemoteError::InterfaceMismatch(s) => Fault::InterfaceMismatch(s),
        RemoteError::Decode(s) => Fault::Decode(s),
        RemoteError::Rejected(s) => Fault::Rejected(s),
        RemoteError::Overloaded => Fault::Overloaded,
        RemoteError::Panicked => Fault::Panicked,
        RemoteError::Unauthorized(s) => Fault::Unauthorized(s),
        RemoteError::NoRoute => Fault::NoRoute,
        other => Fault::Rejected(other.to_string()),
    }
}

// ------------------------------------------------------------ on the wire

/// A stream as it travels: the producer's number for it on this
/// connection, and the credit window it asks for.
#[derive(Serialize, Deserialize)]
struct WireStream {
    id: u64,
    window: u32,
}

/// Where the bytes being encoded go.
struct EncodeScope {
    /// `None`: to an object of this very node, without a connection.
    connection: Option<Connection>,
    /// A failure a `Serialize` impl wants reported as itself.
    failure: Option<RemoteError>,
}

thread_local! {
    static ENCODING: RefCell<Vec<EncodeScope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f`, which encodes a payload that goes out on `connection` (or,
/// for `None`, to an object of this node): streams in it are sent there.
/// Returns `f`'s result and the failure of a stream in it, if one failed.
pub(crate) fn encode_in<R>(
    connection: Option<Connection>,
    f: impl FnOnce() -> R,
) -> (R, Option<RemoteError>) {
    /// Pops the scope even if `f` panics.
    struct Pop(bool);
    impl Drop for Pop {
        fn drop(&mut self) {
            if self.0 {
                ENCODING.with(|s| s.borrow_mut().pop());
            }
        }
    }
    ENCODING.with(|s| {
        s.borrow_mut().push(EncodeScope {
            connection,
            failure: None,
        })
    });
    let mut pop = Pop(true);
    let r = f();
    pop.0 = false;
    let scope = ENCODING.with(|s| s.borrow_mut().pop());
    (r, scope.and_then(|s| s.failure))
}

/// The innermost encode scope's target: `None` outside any scope.
fn encode_target() -> Option<Option<Connection>> {
    ENCODING.with(|s| s.borrow().last().map(|s| s.connection.clone()))
}

fn encode_failure<E: serde::ser::Error>(e: RemoteError) -> E {
    let msg = e.to_string();
    ENCODING.with(|s| {
        if let Some(scope) = s.borrow_mut().last_mut() {
            scope.failure.get_or_insert(e);
        }
    });
    E::custom(msg)
}

impl<T: Serialize + Send + 'static> Serialize for Stream<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(target) = encode_target() else {
            return Err(encode_failure(RemoteError::Encode(
                "a farcall::Stream can only be sent as an argument or a result of a remote method"
                    .into(),
            )));
        };
        let mut slot = lock(&self.source);
        if matches!(*slot, Source::Sent) {
            return Err(encode_failure(RemoteError::Encode(
                "this stream was sent already".into(),
            )));
        }
        let id = match target {
            Some(conn) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Err(encode_failure(RemoteError::Encode(
                        "a stream can only be sent from within a tokio runtime".into(),
                    )));
                };
                let (id, out) = conn.streams().register().map_err(encode_failure)?;
                let source = std::mem::replace(&mut *slot, Source::Sent);
                runtime.spawn(pump(conn, id, out, source));
                id
            }
            None => local::put(std::mem::replace(&mut *slot, Source::Sent)),
        };
        drop(slot);
        WireStream {
            id,
            window: self.window,
        }
        .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Stream<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireStream::deserialize(d)?;
        let window = w.window.clamp(1, MAX_WINDOW);
        with_scope(|scope| {
            let Some(scope) = scope else {
                return Err(serde::de::Error::custom(
                    "a farcall::Stream can only be decoded by farcall's runtime",
                ));
            };
            let r = match &scope.connection {
                Some(conn) => claim::<T>(conn, w.id, window),
                None => local::take::<T>(w.id),
            };
            r.map(|source| Stream::from_source(source, window))
                .map_err(|e| {
                    let msg = e.to_string();
                    scope.failure.get_or_insert(e);
                    serde::de::Error::custom(msg)
                })
        })
    }
}

/// Takes on a stream the peer produces: registers it and grants the
/// first credit.
fn claim<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    id: u64,
    window: u32,
) -> Result<Source<T>, RemoteError> {
    let (rx, open) = conn.streams().claim(id, window)?;
    if open {
        let _ = conn.send_control(&Frame::StreamCredit {
            stream: id,
            items: window,
        });
    }
    Ok(Source::Wire(Consumer {
        conn: conn.clone(),
        id,
        rx,
        window,
        unacked: 0,
        ended: false,
        decode: decode_item::<T>,
    }))
}

/// Streams handed to an object of this very node: no connection, no
/// credit; the receiver takes the source itself.
mod local {
    use super::*;

    type Parked = Box<dyn Any + Send>;

    static PARKED: LazyLock<Mutex<HashMap<u64, Parked>>> = LazyLock::new(Default::default);
    static NEXT: AtomicU64 = AtomicU64::new(1);

    pub(super) fn put<T: Send + 'static>(source: Source<T>) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        lock(&PARKED).insert(id, Box::new(source));
        // A payload that is never decoded (its call abandoned) must not
        // keep the source forever.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(CLAIM_TIMEOUT).await;
                lock(&PARKED).remove(&id);
            });
        }
        id
    }

    pub(super) fn take<T: 'static>(id: u64) -> Result<Source<T>, RemoteError> {
        let parked = lock(&PARKED).remove(&id).ok_or_else(|| {
            RemoteError::Decode(format!("no stream {id} was handed over on this node"))
        })?;
        parked
            .downcast::<Source<T>>()
            .map(|b| *b)
            .map_err(|_| RemoteError::Decode(format!("stream {id} has another item type")))
    }
}

// Streams cross tasks, and generated stubs hold `&Stream<T>` across an
// await: both ends must be `Send + Sync`.
const _: () = {
    fn check<X: Send + Sync>() {}
    let _ = check::<Stream<u64>>;
    let _ = check::<StreamSender<u64>>;
};

/// Encodes the arguments of a call that goes out on `conn` (`None`: to an
/// object of this node) into `b`. A stream among them that could not be
/// sent leaves the reason in `why`.
pub(crate) fn encode_args_into<A: Serialize + ?Sized>(
    conn: Option<&Connection>,
    args: &A,
    b: &mut bytes::BytesMut,
    why: &mut Option<RemoteError>,
) -> Result<(), postcard::Error> {
    let (r, w) = encode_in(conn.cloned(), || codec::encode_into(args, b));
    if w.is_some() {
        *why = w;
    }
    r
}

/// Encodes a payload that goes out on `conn` (`None`: to an object of
/// this node) into fresh bytes.
pub(crate) fn encode_for<A: Serialize + ?Sized>(
    conn: Option<Connection>,
    v: &A,
) -> Result<Bytes, RemoteError> {
    let (r, w) = encode_in(conn, || codec::encode(v));
    r.map_err(|e| w.unwrap_or_else(|| RemoteError::Encode(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect<T>(mut s: Stream<T>) -> Vec<Result<T, RemoteError>> {
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            out.push(item);
        }
        out
    }

    /// Encoded for an object of this node (no connection): the decoder
    /// takes the source itself.
    #[tokio::test]
    async fn a_stream_is_handed_over_without_a_connection() {
        let bytes = encode_for(None, &(7u8, Stream::iter(0..3u64))).unwrap();
        let (seven, s): (u8, Stream<u64>) = decode_in(None, None, &bytes).unwrap();
        assert_eq!(seven, 7);
        assert_eq!(collect(s).await, [Ok(0), Ok(1), Ok(2)]);

        let (tx, s) = Stream::channel(1);
        let bytes = encode_for(None, &s).unwrap();
        let s: Stream<String> = decode_in(None, None, &bytes).unwrap();
        tokio::spawn(async move {
            tx.send("a".to_owned()).await.unwrap();
            tx.fail(RemoteError::Rejected("no b".into()));
        });
        assert_eq!(
            collect(s).await,
            [
                Ok("a".to_owned()),
                Err(RemoteError::Rejected("no b".into()))
            ]
        );

        // Another item type does not decode; a stream decodes once.
        let bytes = encode_for(None, &Stream::iter(0..3u64)).unwrap();
        assert!(decode_in::<Stream<String>>(None, None, &bytes).is_err());
        assert!(decode_in::<Stream<u64>>(None, None, &bytes).is_err());
    }

    #[tokio::test]
    async fn a_stream_is_sent_once_and_only_inside_a_scope() {
        let s = Stream::iter(0..1u64);
        assert!(matches!(
            codec::encode(&s),
            Err(postcard::Error::SerdeSerCustom)
        ));
        // The failed attempt left the stream whole.
        encode_for(None, &s).unwrap();
        assert_eq!(
            encode_for(None, &s),
            Err(RemoteError::Encode("this stream was sent already".into()))
        );
        let mut s = s;
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn dropping_a_channel_stream_fails_its_sender() {
        let (tx, s) = Stream::channel(1);
        drop(s);
        assert_eq!(tx.send(1u8).await, Err(RemoteError::Closed));
        assert!(tx.is_closed());
        assert_eq!(tx.closed().await, RemoteError::Closed);
    }

    #[test]
    fn errors_travel_as_the_closest_fault() {
        assert_eq!(fault_of(RemoteError::Closed), Fault::Closing);
        assert_eq!(
            fault_of(RemoteError::Rejected("x".into())),
            Fault::Rejected("x".into())
        );
        assert_eq!(
            fault_of(RemoteError::Disconnected("gone".into())),
            Fault::Rejected("disconnected: gone".into())
        );
    }
}
