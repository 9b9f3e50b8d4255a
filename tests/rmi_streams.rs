//! Streams (`farcall::Stream<T>`) as results (server streaming) and
//! arguments (client streaming) of remote methods: order, bounded credit,
//! cancellation, error items, connection death, and a peer that sends
//! more than its credit.
//!
//! Every scenario runs over TCP and over in-process `mem://`. Time-outs
//! only keep a broken build from hanging; nothing asserts speed.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use farcall::__private::wire::frame::{self, Frame};
use farcall::__private::wire::handshake::{self, ANSWER_PREFIX, Hello};
use farcall::node::{Address, NodeId};
use farcall::rmi::Interface;
use farcall::rmi::ObjectId;
use farcall::{Node, Remote, RemoteError, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::transport::{Transport, on_transports};
use common::wait::within;

/// The window streams ask for unless told otherwise.
const WINDOW: u64 = 32;

// ---------------------------------------------------------------------------
// The interface and its server
// ---------------------------------------------------------------------------

#[farcall::remote]
pub trait Numbers {
    /// `0..n`, from an iterator.
    async fn count(&self, n: u64) -> Result<Stream<u64>, RemoteError>;
    /// The sum of a streamed argument.
    async fn sum(&self, items: Stream<u64>) -> Result<u64, RemoteError>;
    /// The first `n` items of a streamed argument; the rest is dropped.
    async fn take(&self, items: Stream<u64>, n: u64) -> Result<Vec<u64>, RemoteError>;
    /// Keeps a streamed argument without reading it.
    async fn stall(&self, items: Stream<u64>) -> Result<(), RemoteError>;
    /// 0, 1, 2, ... through a channel of `capacity`, until the consumer
    /// goes; the server's probe counts what was sent.
    async fn watched(&self, capacity: u64) -> Result<Stream<u64>, RemoteError>;
    /// 0, 1, 2, ... from an iterator that flags its drop.
    async fn endless(&self) -> Result<Stream<u64>, RemoteError>;
    /// `good` items, then an error item.
    async fn failing(&self, good: u64) -> Result<Stream<u64>, RemoteError>;
    /// Each item of a streamed argument, doubled, as a stream.
    async fn doubled(&self, items: Stream<u64>) -> Result<Stream<u64>, RemoteError>;
    /// Labelled chunks: a stream of structured items.
    async fn chunks(&self, n: u64) -> Result<Stream<(String, Bytes)>, RemoteError>;
    /// A streamed argument, sent back as the result as it is (relayed).
    async fn echo(&self, items: Stream<u64>) -> Result<Stream<u64>, RemoteError>;
    /// `good` items from an iterator that then panics.
    async fn panicky(&self, good: u64) -> Result<Stream<u64>, RemoteError>;
}

/// A subtrait, so that a reference to the same object as `dyn Numbers`
/// goes through the dispatcher (encoding without a socket).
#[farcall::remote]
pub trait MoreNumbers: Numbers {
    /// Nothing at all.
    async fn nothing(&self) -> Result<(), RemoteError>;
}

#[derive(Default)]
struct Probe {
    /// Items whose `send` returned.
    produced: AtomicU64,
    /// The producer's loop ended (its `send` failed).
    producer_ended: AtomicBool,
    /// The producer's source (iterator, task) was dropped.
    source_dropped: AtomicBool,
    /// Why the producer's `send` failed.
    send_error: Mutex<Option<RemoteError>>,
    /// Streams kept unread.
    stalled: Mutex<Vec<Stream<u64>>>,
}

/// Sets its flag when dropped.
struct DropFlag(Arc<Probe>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.source_dropped.store(true, Ordering::SeqCst);
    }
}

/// 0, 1, 2, ... forever, flagging its drop.
struct Endless {
    next: u64,
    _flag: DropFlag,
}

impl Iterator for Endless {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        self.next += 1;
        Some(self.next - 1)
    }
}

struct Server {
    probe: Arc<Probe>,
}

#[farcall::remote]
impl Numbers for Server {
    async fn count(&self, n: u64) -> Result<Stream<u64>, RemoteError> {
        Ok(Stream::iter(0..n))
    }

    async fn sum(&self, mut items: Stream<u64>) -> Result<u64, RemoteError> {
        let mut total = 0;
        while let Some(item) = items.next().await {
            total += item?;
        }
        Ok(total)
    }

    async fn take(&self, mut items: Stream<u64>, n: u64) -> Result<Vec<u64>, RemoteError> {
        let mut got = Vec::new();
        while (got.len() as u64) < n {
            match items.next().await {
                Some(item) => got.push(item?),
                None => break,
            }
        }
        Ok(got)
    }

    async fn stall(&self, items: Stream<u64>) -> Result<(), RemoteError> {
        self.probe.stalled.lock().unwrap().push(items);
        Ok(())
    }

    async fn watched(&self, capacity: u64) -> Result<Stream<u64>, RemoteError> {
        let (tx, stream) = Stream::channel(capacity as usize);
        let probe = self.probe.clone();
        tokio::spawn(async move {
            let _flag = DropFlag(probe.clone());
            let mut i = 0;
            loop {
                match tx.send(i).await {
                    Ok(()) => {
                        probe.produced.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                    Err(e) => {
                        *probe.send_error.lock().unwrap() = Some(e);
                        break;
                    }
                }
            }
            probe.producer_ended.store(true, Ordering::SeqCst);
        });
        Ok(stream)
    }

    async fn endless(&self) -> Result<Stream<u64>, RemoteError> {
        Ok(Stream::iter(Endless {
            next: 0,
            _flag: DropFlag(self.probe.clone()),
        }))
    }

    async fn failing(&self, good: u64) -> Result<Stream<u64>, RemoteError> {
        let (tx, stream) = Stream::channel(4);
        tokio::spawn(async move {
            for i in 0..good {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
            tx.fail(RemoteError::Rejected("the well ran dry".into()));
        });
        Ok(stream)
    }

    async fn doubled(&self, mut items: Stream<u64>) -> Result<Stream<u64>, RemoteError> {
        let (tx, stream) = Stream::channel(8);
        tokio::spawn(async move {
            while let Some(item) = items.next().await {
                match item {
                    Ok(v) => {
                        if tx.send(v * 2).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => return tx.fail(e),
                }
            }
        });
        Ok(stream)
    }

    async fn chunks(&self, n: u64) -> Result<Stream<(String, Bytes)>, RemoteError> {
        Ok(Stream::iter((0..n).map(|i| {
            (
                format!("chunk {i}"),
                Bytes::from(vec![i as u8; i as usize % 300]),
            )
        })))
    }

    async fn echo(&self, items: Stream<u64>) -> Result<Stream<u64>, RemoteError> {
        Ok(items)
    }

    async fn panicky(&self, good: u64) -> Result<Stream<u64>, RemoteError> {
        Ok(Stream::iter((0..).inspect(move |&i| {
            assert!(i < good, "the iterator gives up at {i}");
        })))
    }
}

#[farcall::remote]
impl MoreNumbers for Server {
    async fn nothing(&self) -> Result<(), RemoteError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// A server node serving `Numbers` as "numbers", and a client's reference.
struct Fixture {
    server: Node,
    client: Node,
    probe: Arc<Probe>,
    numbers: Remote<dyn Numbers>,
    _served: Remote<dyn Numbers>,
}

impl Fixture {
    async fn start(t: Transport) -> Fixture {
        let server = Node::listen(t.addr()).await.unwrap();
        let probe = Arc::new(Probe::default());
        let served: Remote<dyn Numbers> = server.serve(
            "numbers",
            Server {
                probe: probe.clone(),
            },
        );
        let client = Node::new();
        let numbers = client
            .connect_service::<dyn Numbers>(server.local_addr().unwrap(), "numbers")
            .await
            .unwrap();
        Fixture {
            server,
            client,
            probe,
            numbers,
            _served: served,
        }
    }
}

/// Waits (at most 10 s) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

async fn collect<T>(mut s: Stream<T>) -> Result<Vec<T>, RemoteError> {
    let mut out = Vec::new();
    while let Some(item) = s.next().await {
        out.push(item?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

async fn server_streaming_keeps_order(t: Transport) {
    let fx = Fixture::start(t).await;
    let got = collect(fx.numbers.count(10_000).await.unwrap())
        .await
        .unwrap();
    assert_eq!(got, (0..10_000).collect::<Vec<u64>>());
    // Structured items, several streams at once on one connection.
    let (a, b, c) = tokio::join!(
        fx.numbers.chunks(500),
        fx.numbers.count(3),
        fx.numbers.count(0)
    );
    let (a, b, c) = tokio::join!(
        collect(a.unwrap()),
        collect(b.unwrap()),
        collect(c.unwrap())
    );
    let a = a.unwrap();
    assert_eq!(a.len(), 500);
    for (i, (label, bytes)) in a.iter().enumerate() {
        assert_eq!(label, &format!("chunk {i}"));
        assert_eq!(bytes.len(), i % 300);
    }
    assert_eq!(b.unwrap(), [0, 1, 2]);
    assert_eq!(c.unwrap(), Vec::<u64>::new());
}

async fn client_streaming_sums(t: Transport) {
    let fx = Fixture::start(t).await;
    let total = fx.numbers.sum(Stream::iter(1..=10_000)).await.unwrap();
    assert_eq!(total, 50_005_000);

    // Fed through a channel by another task.
    let (tx, items) = Stream::channel(2);
    let feeder = tokio::spawn(async move {
        for i in 1..=1000 {
            tx.send(i).await.unwrap();
        }
    });
    assert_eq!(fx.numbers.sum(items).await.unwrap(), 500_500);
    feeder.await.unwrap();

    // `collect()` works too.
    let items: Stream<u64> = (1..=10).collect();
    assert_eq!(fx.numbers.sum(items).await.unwrap(), 55);

    // Both directions at once: a stream in, another out.
    let out = fx.numbers.doubled(Stream::iter(0..2000)).await.unwrap();
    let got = collect(out).await.unwrap();
    assert_eq!(got, (0..2000).map(|i| i * 2).collect::<Vec<u64>>());

    // A received stream sent on: the server relays the client's items
    // back to it, credit flowing both ways.
    let back = fx.numbers.echo(Stream::iter(0..5000)).await.unwrap();
    assert_eq!(
        collect(back).await.unwrap(),
        (0..5000).collect::<Vec<u64>>()
    );
    // ... and an error item travels through the relay.
    let (tx, items) = Stream::channel(1);
    tokio::spawn(async move {
        tx.send(7).await.unwrap();
        tx.fail(RemoteError::Rejected("relayed".into()));
    });
    let mut back = fx.numbers.echo(items).await.unwrap();
    assert_eq!(back.next().await, Some(Ok(7)));
    assert_eq!(
        back.next().await,
        Some(Err(RemoteError::Rejected("relayed".into())))
    );
    assert_eq!(back.next().await, None);
}

async fn a_slow_consumer_holds_the_producer_to_the_window(t: Transport) {
    let fx = Fixture::start(t).await;
    let mut s = fx.numbers.watched(1).await.unwrap();
    let mut ahead_most = 0;
    for consumed in 1..=120u64 {
        let v = s.next().await.unwrap().unwrap();
        assert_eq!(v, consumed - 1);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let produced = fx.probe.produced.load(Ordering::SeqCst);
        // In flight: at most the window, plus one item in the channel and
        // one in the hands of the runtime's pump.
        let ahead = produced.saturating_sub(consumed);
        assert!(
            ahead <= WINDOW + 2,
            "the producer is {ahead} items ahead of the consumer (window {WINDOW})"
        );
        ahead_most = ahead_most.max(ahead);
    }
    eprintln!("{t:?}: the producer ran at most {ahead_most} items ahead");
    // The window is used: the producer did run ahead of a slow consumer.
    assert!(
        ahead_most >= WINDOW / 2,
        "the producer was never more than {ahead_most} items ahead"
    );
    drop(s);
    eventually("the producer stops", || {
        fx.probe.producer_ended.load(Ordering::SeqCst)
    })
    .await;
}

async fn dropping_the_consumer_stops_the_producer(t: Transport) {
    // A channel-fed producer: its `send` fails.
    let fx = Fixture::start(t).await;
    let mut s = fx.numbers.watched(4).await.unwrap();
    for i in 0..5 {
        assert_eq!(s.next().await.unwrap().unwrap(), i);
    }
    drop(s);
    eventually("the producer's send fails", || {
        fx.probe.producer_ended.load(Ordering::SeqCst)
    })
    .await;
    assert!(fx.probe.source_dropped.load(Ordering::SeqCst));
    assert_eq!(
        *fx.probe.send_error.lock().unwrap(),
        Some(RemoteError::Closed)
    );
    let stopped_at = fx.probe.produced.load(Ordering::SeqCst);
    assert!(stopped_at <= 5 + WINDOW + 4 + 1, "produced {stopped_at}");

    // An iterator: dropped.
    let fx = Fixture::start(t).await;
    let mut s = fx.numbers.endless().await.unwrap();
    for i in 0..5 {
        assert_eq!(s.next().await.unwrap().unwrap(), i);
    }
    drop(s);
    eventually("the iterator is dropped", || {
        fx.probe.source_dropped.load(Ordering::SeqCst)
    })
    .await;

    // The other way: the server drops a streamed argument after 3 items;
    // the client's sender learns it.
    let (tx, items) = Stream::channel(1);
    let feeder = tokio::spawn(async move {
        let mut i = 0;
        loop {
            if let Err(e) = tx.send(i).await {
                return (i, e);
            }
            i += 1;
        }
    });
    assert_eq!(fx.numbers.take(items, 3).await.unwrap(), [0, 1, 2]);
    let (sent, e) = tokio::time::timeout(Duration::from_secs(10), feeder)
        .await
        .expect("the client's producer stops")
        .unwrap();
    assert_eq!(e, RemoteError::Closed);
    assert!(sent <= 3 + WINDOW + 2, "sent {sent}");

    // A connection that carried all this is still fine.
    assert_eq!(
        collect(fx.numbers.count(3).await.unwrap()).await.unwrap(),
        [0, 1, 2]
    );
}

async fn a_failing_producer_ends_with_an_error_item(t: Transport) {
    let fx = Fixture::start(t).await;
    let mut s = fx.numbers.failing(3).await.unwrap();
    for i in 0..3 {
        assert_eq!(s.next().await, Some(Ok(i)));
    }
    assert_eq!(
        s.next().await,
        Some(Err(RemoteError::Rejected("the well ran dry".into())))
    );
    assert_eq!(s.next().await, None);
    assert_eq!(s.next().await, None);

    // A source that panics: the stream ends with `Panicked`, the server
    // goes on.
    let mut s = fx.numbers.panicky(2).await.unwrap();
    assert_eq!(s.next().await, Some(Ok(0)));
    assert_eq!(s.next().await, Some(Ok(1)));
    assert_eq!(s.next().await, Some(Err(RemoteError::Panicked)));
    assert_eq!(s.next().await, None);
    assert_eq!(
        collect(fx.numbers.count(2).await.unwrap()).await.unwrap(),
        [0, 1]
    );

    // An error item in a streamed argument reaches the server's handler.
    let (tx, items) = Stream::channel(1);
    tokio::spawn(async move {
        tx.send(1).await.unwrap();
        tx.fail(RemoteError::Rejected("no more".into()));
    });
    assert_eq!(
        fx.numbers.sum(items).await,
        Err(RemoteError::Rejected("no more".into()))
    );
}

async fn connection_death_ends_the_stream(t: Transport) {
    let fx = Fixture::start(t).await;
    let mut s = fx.numbers.watched(1).await.unwrap();
    for i in 0..3 {
        assert_eq!(s.next().await.unwrap().unwrap(), i);
    }
    for c in fx.server.connections() {
        c.abort("the test pulls the plug");
    }
    // Items already received may come first; then Disconnected, then None.
    let mut last = None;
    let end = loop {
        match s.next().await {
            Some(Ok(v)) => last = Some(v),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without an error (last item {last:?})"),
        }
    };
    assert!(
        matches!(end, RemoteError::Disconnected(_)),
        "expected Disconnected, got {end:?}"
    );
    assert_eq!(s.next().await, None);
    // The producer learns it too.
    eventually("the producer stops", || {
        fx.probe.producer_ended.load(Ordering::SeqCst)
    })
    .await;
    assert!(matches!(
        *fx.probe.send_error.lock().unwrap(),
        Some(RemoteError::Disconnected(_))
    ));

    // A stream argument whose connection dies: the server's handler gets
    // Disconnected, the client's producer stops.
    let (tx, items) = Stream::channel(1);
    let feeder = tokio::spawn(async move {
        let mut i = 0;
        while tx.send(i).await.is_ok() {
            i += 1;
        }
    });
    let client = fx.client.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for c in client.connections() {
            c.abort("the test pulls the plug again");
        }
    });
    let r = fx.numbers.sum(items).await;
    assert!(matches!(r, Err(RemoteError::Disconnected(_))), "{r:?}");
    killer.await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), feeder)
        .await
        .expect("the client's producer stops")
        .unwrap();
}

async fn streams_to_an_object_of_the_same_node(t: Transport) {
    let node = Node::listen(t.addr()).await.unwrap();
    let probe = Arc::new(Probe::default());
    let _served: Remote<dyn MoreNumbers> = node.serve("more", Server { probe });
    // A reference by id to the node's own object (the node may call it
    // directly, or through its dispatcher: encoded, but no socket; the
    // runtime's unit tests cover that hand-over), and the object itself.
    let by_id: Remote<dyn Numbers> = node
        .connect(node.local_addr().unwrap(), ObjectId::for_service("more"))
        .await
        .unwrap();
    let direct: Remote<dyn Numbers> = _served.clone().upcast();
    assert!(direct.is_local());
    for numbers in [by_id, direct] {
        let got = collect(numbers.count(100).await.unwrap()).await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<u64>>());
        assert_eq!(numbers.sum(Stream::iter(1..=100)).await.unwrap(), 5050);
        let mut s = numbers.failing(1).await.unwrap();
        assert_eq!(s.next().await, Some(Ok(0)));
        assert!(matches!(
            s.next().await,
            Some(Err(RemoteError::Rejected(_)))
        ));
        assert_eq!(s.next().await, None);
    }
}

// ---------------------------------------------------------------------------
// One test per scenario and transport
// ---------------------------------------------------------------------------

on_transports!([tcp, mem] within 60;
    server_streaming_keeps_order,
    client_streaming_sums,
    a_slow_consumer_holds_the_producer_to_the_window,
    dropping_the_consumer_stops_the_producer,
    a_failing_producer_ends_with_an_error_item,
    connection_death_ends_the_stream,
    streams_to_an_object_of_the_same_node,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_only_encodes_inside_a_remote_call() {
    let e = farcall::__private::codec::encode(&Stream::iter(0..3u64));
    assert!(e.is_err(), "a stream outside a call does not encode");
    let mut local = Stream::iter(0..3u64);
    assert_eq!(local.next().await, Some(Ok(0)));
}

// ---------------------------------------------------------------------------
// A peer that sends stream items beyond its credit is cut off
// ---------------------------------------------------------------------------

/// A raw TCP connection past the handshake.
async fn raw_client(server: &Node) -> TcpStream {
    let addr = match server.local_addr().unwrap() {
        Address::Tcp { host, port } => format!("{host}:{port}"),
        other => panic!("a tcp server, not {other}"),
    };
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let hello = handshake::encode_hello(&Hello {
        node: NodeId::random(),
        max_frame_len: 1 << 20,
        max_in_flight: 64,
        credentials: None,
    });
    s.write_all(&hello).await.unwrap();
    let mut p = [0u8; ANSWER_PREFIX];
    s.read_exact(&mut p).await.unwrap();
    let (status, len) = handshake::decode_answer_prefix(&p).unwrap();
    assert_eq!(status, 0, "welcomed");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    handshake::decode_answer_body(status, &body).unwrap();
    s
}

fn encoded(f: &Frame) -> BytesMut {
    let mut b = BytesMut::new();
    frame::encode(&mut b, f, u32::MAX).unwrap();
    b
}

/// Reads frames until the server closes (within 10 s); returns them.
async fn frames_until_closed(s: &mut TcpStream) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(body) = frame::split(&mut buf, u32::MAX).unwrap() {
                frames.push(Frame::decode(body).unwrap());
            }
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a flooding peer connected");
    frames
}

/// Reads frames until one matches `want` (within 10 s).
async fn frame_where(s: &mut TcpStream, want: impl Fn(&Frame) -> bool) -> Frame {
    let mut buf = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(body) = frame::split(&mut buf, u32::MAX).unwrap() {
                let f = Frame::decode(body).unwrap();
                if want(&f) {
                    return f;
                }
            }
            assert_ne!(s.read_buf(&mut buf).await.unwrap(), 0, "the server closed");
        }
    })
    .await
    .expect("the frame came")
}

fn close_reason(frames: &[Frame]) -> String {
    frames
        .iter()
        .find_map(|f| match f {
            Frame::Close { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Close frame among {frames:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_stream_items_is_cut_off_and_others_go_on() {
    within(60, "the flood", async {
        let fx = Fixture::start(Transport::Tcp).await;
        // Keep a stream running on a well-behaved connection throughout.
        let mut running = fx.numbers.count(1_000_000).await.unwrap();
        assert_eq!(running.next().await, Some(Ok(0)));

        let word = <dyn Numbers as Interface>::descriptor()
            .methods
            .iter()
            .find(|m| m.name == "stall")
            .unwrap()
            .word();

        // 1. Items beyond the credit granted.
        let mut raw = raw_client(&fx.server).await;
        // `stall((Stream { id: 1, window: 4 },))`
        let call = Frame::Call {
            id: 1,
            timeout_us: 5_000_000,
            object: ObjectId::for_service("numbers"),
            method: word,
            flags: 0,
            metadata: Bytes::new(),
            payload: Bytes::from_static(&[1, 4]),
        };
        raw.write_all(&encoded(&call)).await.unwrap();
        let credit = frame_where(&mut raw, |f| matches!(f, Frame::StreamCredit { .. })).await;
        assert_eq!(
            credit,
            Frame::StreamCredit {
                stream: 1,
                items: 4
            }
        );
        let mut flood = BytesMut::new();
        for i in 0..1000u64 {
            flood.extend_from_slice(&encoded(&Frame::StreamItem {
                stream: 1,
                payload: Bytes::from(vec![(i % 100) as u8]),
            }));
        }
        // The server may close before it has read everything.
        let _ = raw.write_all(&flood).await;
        let frames = frames_until_closed(&mut raw).await;
        let reason = close_reason(&frames);
        assert!(reason.contains("beyond the credit"), "{reason}");

        // 2. Items for a stream the server never heard of.
        let mut raw = raw_client(&fx.server).await;
        let item = Frame::StreamItem {
            stream: 77,
            payload: Bytes::from_static(&[1]),
        };
        raw.write_all(&encoded(&item)).await.unwrap();
        let frames = frames_until_closed(&mut raw).await;
        let reason = close_reason(&frames);
        assert!(reason.contains("does not consume"), "{reason}");

        // Everyone else goes on: the stream kept open, a new call, a new
        // client.
        for i in 1..=10_000 {
            assert_eq!(running.next().await, Some(Ok(i)));
        }
        assert_eq!(fx.numbers.sum(Stream::iter(1..=100)).await.unwrap(), 5050);
        let other = Node::new();
        let numbers = other
            .connect_service::<dyn Numbers>(fx.server.local_addr().unwrap(), "numbers")
            .await
            .unwrap();
        assert_eq!(
            collect(numbers.count(5).await.unwrap()).await.unwrap(),
            [0, 1, 2, 3, 4]
        );
    })
    .await;
}
