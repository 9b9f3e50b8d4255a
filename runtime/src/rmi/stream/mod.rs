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
//! encodes and decodes (`encode_in` and `decode_in`, in `rmi/scope.rs`). A payload
//! encoded for a call to an object of this very node (no connection) hands
//! its streams over through a process-wide table instead.

use crate::sync::lock;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::{Notify, mpsc};

use crate::codec;
use crate::connection::Connection;
use crate::error::Error;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::{decode_in, with_scope};
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

mod channel;
mod consumer;
mod producer;
mod table;
mod wire;

pub use channel::StreamSender;
use channel::*;
use consumer::*;
use producer::*;
pub(crate) use table::Streams;
#[allow(unused_imports)]
use table::*;
#[allow(unused_imports)]
use wire::*;

#[cfg(test)]
use crate::rmi::scope::encode_for;
use crate::rmi::scope::{encode_failure, encode_in, encode_target};

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
    /// Items from any asynchronous stream.
    Async(Pin<Box<dyn futures_core::Stream<Item = T> + Send>>),
    /// Items from a producer at the other end of a connection.
    Wire(Consumer<T>),
    /// Encoded and handed over: the receiver has the items.
    Sent,
    /// Ended.
    Done,
}

impl<T> Source<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, RemoteError>>> {
        let item = match self {
            Source::Iter(it) => it.next().map(Ok),
            Source::Channel(rx) => ready!(rx.poll_next(cx)),
            Source::Wire(c) => return c.poll_next(cx),
            Source::Async(s) => ready!(s.as_mut().poll_next(cx)).map(Ok),
            Source::Sent | Source::Done => return Poll::Ready(None),
        };
        if !matches!(item, Some(Ok(_))) {
            *self = Source::Done;
        }
        Poll::Ready(item)
    }

    async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        poll_fn(|cx| self.poll_next(cx)).await
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

    /// A stream of the items of any asynchronous stream (a
    /// `futures::Stream`, a `tokio_stream` adapter, another farcall
    /// stream mapped), polled as the consumer's credit allows.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use farcall_runtime::Stream;
    ///
    /// let inner = Stream::iter([1, 2, 3]);
    /// // Any `futures_core::Stream`; here one of farcall's own, its items unwrapped.
    /// struct TimesTen<S>(S);
    /// impl<S: futures_core::Stream<Item = Result<u32, farcall_runtime::RemoteError>> + Unpin>
    ///     futures_core::Stream for TimesTen<S>
    /// {
    ///     type Item = u32;
    ///     fn poll_next(
    ///         mut self: std::pin::Pin<&mut Self>,
    ///         cx: &mut std::task::Context<'_>,
    ///     ) -> std::task::Poll<Option<u32>> {
    ///         std::pin::Pin::new(&mut self.0).poll_next(cx).map(|i| i.map(|r| r.unwrap() * 10))
    ///     }
    /// }
    /// let mut s = Stream::from_stream(TimesTen(inner));
    /// assert_eq!(s.next().await, Some(Ok(10)));
    /// # }
    /// ```
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: futures_core::Stream<Item = T> + Send + 'static,
    {
        Self::from_source(Source::Async(Box::pin(stream)), DEFAULT_WINDOW)
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
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in
    /// `tokio::select!`, say) loses no item; the next call gets it.
    pub async fn next(&mut self) -> Option<Result<T, RemoteError>> {
        self.source_mut().next().await
    }

    fn source_mut(&mut self) -> &mut Source<T> {
        self.source.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

/// A farcall stream is a `futures_core::Stream`: `StreamExt`,
/// `select_all` and `tokio-stream` work on it. Its items are the same as
/// [`Stream::next`]'s.
impl<T> futures_core::Stream for Stream<T> {
    type Item = Result<T, RemoteError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().source_mut().poll_next(cx)
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
            Source::Async(_) => "asynchronous stream".to_owned(),
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

// Streams cross tasks, and generated stubs hold `&Stream<T>` across an
// await: both ends must be `Send + Sync`.
const _: () = {
    fn check<X: Send + Sync>() {}
    let _ = check::<Stream<u64>>;
    let _ = check::<StreamSender<u64>>;
};

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
