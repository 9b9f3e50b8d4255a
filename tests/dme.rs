//! Direct message exchange through the facade, as a user writes it.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::dme::{Client, Peer, PeerId, Server};
use farcall::runtime::codec;
use farcall::runtime::service::{OutcomeFuture, Service};
use farcall::{Address, AddressError, CallContext, Error, Fault, Limits, Node, ObjectId};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use common::transport::{Transport, on_transports};
use common::wait::within;

on_transports!([tcp, unix, mem];
    ten_thousand_requests_in_flight_on_one_connection,
    ten_thousand_requests_under_default_limits,
    two_hundred_concurrent_clients,
    calls_in_both_directions_on_one_connection,
    peers_request_each_other_at_once,
    one_way_send,
    deadline_exceeded_drops_the_handler,
    dropping_a_request_cancels_it_on_the_server,
    server_shutdown_mid_call_disconnects_promptly,
    server_dropped_mid_call_disconnects,
    graceful_close_lets_a_call_in_flight_finish,
    handler_panic_is_reported_and_the_server_goes_on,
    super_peer_relays_between_peers_that_only_know_it,
    peers_lists_connected_peers,
    no_route_without_a_super_peer,
);

/// Reports on a channel when a handler's future is dropped, finished or not.
struct DropSignal(mpsc::UnboundedSender<u64>, u64);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// A server whose handler answers `0` at once and anything else after
/// `nap`; it reports each such request it starts, and each handler future
/// it drops (finished or not).
struct SleepyServer {
    server: Server<u64, u64>,
    started: mpsc::UnboundedReceiver<u64>,
    dropped: mpsc::UnboundedReceiver<u64>,
}

async fn sleepy_server(t: Transport, limits: Limits, nap: Duration) -> SleepyServer {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let node = Node::builder()
        .limits(limits)
        .listen(t.addr())
        .await
        .unwrap();
    let server = Server::on(node, move |n: u64| {
        let started = started_tx.clone();
        let guard = DropSignal(dropped_tx.clone(), n);
        async move {
            let _guard = guard;
            if n != 0 {
                let _ = started.send(n);
                tokio::time::sleep(nap).await;
            }
            n
        }
    });
    SleepyServer {
        server,
        started,
        dropped,
    }
}

const AN_HOUR: Duration = Duration::from_secs(3600);

async fn ten_thousand_requests_in_flight_on_one_connection(t: Transport) {
    const N: usize = 10_000;
    // Both ends allow all of them in flight at once; the handlers are held
    // until the last request has arrived, so all 10,000 are in flight.
    let limits = Limits::default().max_in_flight(2 * N as u32);
    let arrived = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(watch::Sender::new(false));
    let node = Node::builder()
        .limits(limits.clone())
        .listen(t.addr())
        .await
        .unwrap();
    let server = Server::on(node, {
        let arrived = arrived.clone();
        move |i: u64| {
            let mut open = gate.subscribe();
            if arrived.fetch_add(1, Ordering::SeqCst) + 1 == N {
                gate.send_replace(true);
            }
            async move {
                let _ = open.wait_for(|open| *open).await;
                i * 3 + 1
            }
        }
    });
    let client_node = Node::builder().limits(limits).build();
    let client: Client<u64, u64> = Client::connect_from(&client_node, server.local_addr())
        .await
        .unwrap();
    let mut calls = JoinSet::new();
    for i in 0..N as u64 {
        let client = client.clone();
        calls.spawn(async move { (i, client.request(i).await) });
    }
    let mut answered = 0;
    within(60, "10,000 requests in flight", async {
        while let Some(done) = calls.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer.unwrap(), i * 3 + 1, "answer to request {i}");
            answered += 1;
        }
    })
    .await;
    assert_eq!(answered, N);
    assert_eq!(arrived.load(Ordering::SeqCst), N);
    assert_eq!(client_node.connections().len(), 1, "all on one connection");
    server.shutdown().await;
}

async fn ten_thousand_requests_under_default_limits(t: Transport) {
    // More requests than the default in-flight limit (1024): callers wait
    // for a slot (back-pressure) and every one is answered.
    let server = Server::bind(t.addr(), |i: u64| async move { i.wrapping_mul(7) })
        .await
        .unwrap();
    let client: Client<u64, u64> = Client::connect(server.local_addr()).await.unwrap();
    let mut calls = JoinSet::new();
    for i in 0..10_000u64 {
        let client = client.clone();
        calls.spawn(async move { (i, client.request(i).await) });
    }
    within(60, "10,000 requests", async {
        while let Some(done) = calls.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer.unwrap(), i * 7);
        }
    })
    .await;
    server.shutdown().await;
}

async fn two_hundred_concurrent_clients(t: Transport) {
    const CLIENTS: u32 = 200;
    let server = Server::bind(t.addr(), |(client, i): (u32, u32)| async move {
        format!("client {client}, request {i}")
    })
    .await
    .unwrap();
    let mut clients = JoinSet::new();
    for c in 0..CLIENTS {
        let addr = server.local_addr().clone();
        clients.spawn(async move {
            let client = Client::<(u32, u32), String>::connect(&addr).await.unwrap();
            let (a, b) = tokio::join!(client.request((c, 0)), client.request((c, 1)));
            assert_eq!(a.unwrap(), format!("client {c}, request 0"));
            assert_eq!(b.unwrap(), format!("client {c}, request 1"));
            for i in 2..10 {
                assert_eq!(
                    client.request((c, i)).await.unwrap(),
                    format!("client {c}, request {i}")
                );
            }
            client
        });
    }
    let mut connected = Vec::new();
    within(60, "200 clients", async {
        while let Some(client) = clients.join_next().await {
            connected.push(client.unwrap());
        }
    })
    .await;
    assert_eq!(connected.len(), CLIENTS as usize);
    assert_eq!(
        server.node().connections().len(),
        CLIENTS as usize,
        "one connection per client"
    );
    server.shutdown().await;
}

/// The object both nodes serve in the two-way test.
const DOUBLER: ObjectId = ObjectId(0xd0ab_1e00_0000_0000_0000_0000_0000_0001);
/// Doubles a number.
const DOUBLE: u64 = 0;
/// Asks the caller's own doubler first, over the connection the call came
/// on (a callback), then doubles its answer.
const DOUBLE_VIA_CALLER: u64 = 1;

/// Serves [`DOUBLER`] on its node.
struct Doubler {
    node: Node,
}

impl Service for Doubler {
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        // The node's one connection to the caller: the one the call came on.
        let back = self.node.connection_to(cx.caller);
        Box::pin(async move {
            let n: u64 = codec::decode(&payload).map_err(|e| Fault::Decode(e.to_string()))?;
            let n = match method {
                DOUBLE => n,
                DOUBLE_VIA_CALLER => back
                    .ok_or(Fault::NoRoute)?
                    .call::<u64, u64>(DOUBLER, DOUBLE, &n, None)
                    .await
                    .map_err(|e| Fault::Rejected(e.to_string()))?,
                _ => return Err(Fault::NoSuchMethod),
            };
            codec::encode(&(n * 2)).map_err(|e| Fault::Rejected(e.to_string()))
        })
    }
}

async fn calls_in_both_directions_on_one_connection(t: Transport) {
    let a = Node::listen(t.addr()).await.unwrap();
    a.serve_object(DOUBLER, Arc::new(Doubler { node: a.clone() }));
    let b = Node::new();
    b.serve_object(DOUBLER, Arc::new(Doubler { node: b.clone() }));
    // Any handle on the connection will do; a dme client gives one.
    let b_to_a = Client::<(), ()>::connect_from(&b, a.local_addr().unwrap())
        .await
        .unwrap()
        .connection()
        .clone();
    // A has registered the connection once it has served a call on it.
    assert_eq!(
        b_to_a
            .call::<u64, u64>(DOUBLER, DOUBLE, &1, None)
            .await
            .unwrap(),
        2
    );
    let a_to_b = a.connection_to(b.id()).expect("A's end of the connection");

    let mut calls = JoinSet::new();
    for i in 0..1000u64 {
        for (conn, method, factor) in [
            (&b_to_a, DOUBLE, 2),
            (&a_to_b, DOUBLE, 2),
            (&b_to_a, DOUBLE_VIA_CALLER, 4),
            (&a_to_b, DOUBLE_VIA_CALLER, 4),
        ] {
            let conn = conn.clone();
            calls.spawn(async move {
                let got: u64 = conn.call(DOUBLER, method, &i, None).await.unwrap();
                assert_eq!(got, i * factor, "method {method} of {i}");
            });
        }
    }
    within(60, "calls both ways", async {
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(a.connections().len(), 1);
    assert_eq!(b.connections().len(), 1);
    for node in [b, a] {
        node.remove_object(DOUBLER); // it holds its node
        node.shutdown().await;
    }
}

/// Answers every request `n` that `peer` receives with `n + add`, until
/// the peer shuts down.
fn answer_adding(peer: Arc<Peer<u64>>, add: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = peer.recv().await {
            let answer = incoming.message + add;
            incoming.reply(answer).unwrap();
        }
    })
}

async fn peers_request_each_other_at_once(t: Transport) {
    let p = Arc::new(Peer::<u64>::bind(t.addr()).await.unwrap());
    let q = Arc::new(Peer::<u64>::bind(t.addr()).await.unwrap());
    let q_id = p.connect(q.local_addr()).await.unwrap();
    assert_eq!(q_id, q.id());
    let p_answers = answer_adding(p.clone(), 1000);
    let q_answers = answer_adding(q.clone(), 2000);

    let mut calls = JoinSet::new();
    let p_id = p.id();
    for i in 0..500u64 {
        let p = p.clone();
        calls.spawn(async move { assert_eq!(p.request(q_id, i).await.unwrap(), i + 2000) });
        let q = q.clone();
        calls.spawn(async move { assert_eq!(q.request(p_id, i).await.unwrap(), i + 1000) });
    }
    within(60, "peers asking each other", async {
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(
        p.node().connections().len(),
        1,
        "one connection carries both directions"
    );
    assert_eq!(q.node().connections().len(), 1);

    // Shutting down ends a `recv` that another task is waiting in.
    within(10, "peer shutdown", async {
        p.shutdown().await;
        q.shutdown().await;
        p_answers.await.unwrap();
        q_answers.await.unwrap();
    })
    .await;
}

async fn one_way_send(t: Transport) {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = Server::bind(t.addr(), move |n: u32| {
        let _ = seen_tx.send(n);
        async move { n }
    })
    .await
    .unwrap();
    let client: Client<u32, u32> = Client::connect(server.local_addr()).await.unwrap();
    for n in 1..=100 {
        client.send(n).await.unwrap();
    }
    let mut got = Vec::new();
    within(10, "one-way messages", async {
        while got.len() < 100 {
            got.push(seen.recv().await.unwrap());
        }
    })
    .await;
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    // Their answers were dropped: the next request gets its own.
    assert_eq!(client.request(7).await.unwrap(), 7);
    server.shutdown().await;
}

async fn deadline_exceeded_drops_the_handler(t: Transport) {
    const CALLS: u64 = 20;
    let mut s = sleepy_server(t, Limits::default(), AN_HOUR).await;
    let deadline = Duration::from_millis(300);
    let client = Client::<u64, u64>::connect(s.server.local_addr())
        .await
        .unwrap()
        .with_deadline(deadline);
    // Several at once: whichever side notices the deadline first, the
    // caller gets the same error.
    let mut calls = JoinSet::new();
    for n in 1..=CALLS {
        let client = client.clone();
        calls.spawn(async move { (n, client.request(n).await) });
    }
    within(10, "requests past their deadline", async {
        while let Some(done) = calls.join_next().await {
            match done.unwrap() {
                (_, Err(Error::DeadlineExceeded(d))) => assert_eq!(d, deadline),
                (n, other) => panic!("request {n}: expected DeadlineExceeded, got {other:?}"),
            }
        }
    })
    .await;
    let mut dropped = Vec::new();
    within(10, "the handlers being dropped", async {
        while dropped.len() < CALLS as usize {
            dropped.push(s.dropped.recv().await.unwrap());
        }
    })
    .await;
    dropped.sort_unstable();
    assert_eq!(dropped, (1..=CALLS).collect::<Vec<_>>());
    // The server goes on.
    assert_eq!(client.request(0).await.unwrap(), 0);
    s.server.shutdown().await;
}

async fn dropping_a_request_cancels_it_on_the_server(t: Transport) {
    let mut s = sleepy_server(t, Limits::default(), AN_HOUR).await;
    // The default deadline is 30 s: a handler dropped sooner was cancelled.
    let client: Client<u64, u64> = Client::connect(s.server.local_addr()).await.unwrap();

    // A request in a task that is aborted.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(7).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(7)
    );
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(7)
    );

    // A request future dropped by a select (here: a local time-out).
    let gave_up = tokio::time::timeout(Duration::from_millis(100), client.request(8)).await;
    assert!(gave_up.is_err(), "the request cannot have been answered");
    assert_eq!(s.started.recv().await, Some(8));
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(8)
    );

    assert_eq!(client.request(0).await.unwrap(), 0);
    assert_eq!(client.connection().calls_in_flight(), 0);
    s.server.shutdown().await;
}

async fn server_shutdown_mid_call_disconnects_promptly(t: Transport) {
    let grace = Duration::from_millis(300);
    let limits = Limits::default().close_grace(grace);
    let mut s = sleepy_server(t, limits, AN_HOUR).await;
    let client = Client::<u64, u64>::connect(s.server.local_addr())
        .await
        .unwrap()
        .with_deadline(Duration::from_secs(120));
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(5).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    within(10, "the server shutting down", s.server.shutdown()).await;
    // Well before the 120 s deadline: the grace period is 300 ms.
    let answer = within(10, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(Error::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
    assert!(client.request(0).await.is_err(), "the connection is gone");
}

async fn server_dropped_mid_call_disconnects(t: Transport) {
    let mut s = sleepy_server(t, Limits::default(), AN_HOUR).await;
    let client = Client::<u64, u64>::connect(s.server.local_addr())
        .await
        .unwrap()
        .with_deadline(Duration::from_secs(120));
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(5).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    drop(s.server);
    let answer = within(10, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(Error::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
}

async fn graceful_close_lets_a_call_in_flight_finish(t: Transport) {
    let nap = Duration::from_millis(300);

    // The server closes while a call is in flight.
    let mut s = sleepy_server(t, Limits::default(), nap).await;
    let client: Client<u64, u64> = Client::connect(s.server.local_addr()).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(5).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    let started = Instant::now();
    within(10, "the server shutting down", s.server.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shut down within the close grace"
    );
    assert_eq!(within(10, "the call", call).await.unwrap().unwrap(), 5);
    let after = client.request(0).await;
    assert!(after.is_err(), "no new requests after the close: {after:?}");

    // The client closes while a call is in flight.
    let mut s = sleepy_server(t, Limits::default(), nap).await;
    let client: Client<u64, u64> = Client::connect(s.server.local_addr()).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(6).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(6)
    );
    within(10, "the client closing", client.close()).await;
    assert_eq!(within(10, "the call", call).await.unwrap().unwrap(), 6);
    assert!(client.request(0).await.is_err(), "the client is closed");
    s.server.shutdown().await;
}

async fn handler_panic_is_reported_and_the_server_goes_on(t: Transport) {
    let server = Server::bind(t.addr(), |n: u64| async move {
        match n {
            1 => panic!("this handler panics on purpose, at once"),
            2 => {
                tokio::task::yield_now().await;
                panic!("this handler panics on purpose, after waiting")
            }
            n => n * 10,
        }
    })
    .await
    .unwrap();
    let client: Client<u64, u64> = Client::connect(server.local_addr()).await.unwrap();
    for n in [1, 2] {
        match client.request(n).await {
            Err(Error::Remote(Fault::Panicked)) => {}
            other => panic!("expected a Panicked fault, got {other:?}"),
        }
        assert_eq!(
            client.request(3).await.unwrap(),
            30,
            "the same connection goes on"
        );
    }
    let other: Client<u64, u64> = Client::connect(server.local_addr()).await.unwrap();
    assert_eq!(
        other.request(4).await.unwrap(),
        40,
        "new connections are served"
    );
    server.shutdown().await;
}

async fn super_peer_relays_between_peers_that_only_know_it(t: Transport) {
    let b = Peer::<String>::builder()
        .super_peer(true)
        .listen(t.addr())
        .await
        .unwrap();
    let a = Arc::new(Peer::<String>::bind(t.addr()).await.unwrap());
    let c = Arc::new(Peer::<String>::bind(t.addr()).await.unwrap());
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());
    assert_eq!(c.connect(b.local_addr()).await.unwrap(), b.id());
    assert!(b.is_super_peer() && !a.is_super_peer());
    assert_eq!(a.peers(), vec![b.id()], "A knows only B");
    assert_eq!(c.peers(), vec![b.id()], "C knows only B");
    assert_eq!(a.super_peers(), vec![b.id()]);
    assert!(a.node().connection_to(c.id()).is_none());

    // Discovery: B tells each whom it reaches.
    assert_eq!(a.discover().await.unwrap(), vec![c.id()]);
    assert_eq!(c.discover().await.unwrap(), vec![a.id()]);

    // A one-way message, relayed: C sees A as the sender.
    a.send(c.id(), "hello C".into()).await.unwrap();
    let got = within(10, "the relayed message", c.recv()).await.unwrap();
    assert_eq!((got.from, got.message.as_str()), (a.id(), "hello C"));
    assert!(!got.is_request());

    // Requests, relayed both ways at once.
    let answer_one_each = async {
        // A and C each answer the one request they receive.
        for (peer, me) in [(&a, "A"), (&c, "C")] {
            let m = within(10, "a relayed request", peer.recv()).await.unwrap();
            assert!(m.is_request());
            let answer = format!("{me} answers: {}", m.message);
            m.reply(answer).unwrap();
        }
    };
    let (from_a, from_c, ()) = tokio::join!(
        within(10, "C's request to A", c.request(a.id(), "C asks A".into())),
        within(10, "A's request to C", a.request(c.id(), "A asks C".into())),
        answer_one_each,
    );
    assert_eq!(from_a.unwrap(), "A answers: C asks A");
    assert_eq!(from_c.unwrap(), "C answers: A asks C");

    // B is a peer too: it reaches both directly.
    b.send(a.id(), "from B".into()).await.unwrap();
    let got = within(10, "B's message", a.recv()).await.unwrap();
    assert_eq!((got.from, got.message.as_str()), (b.id(), "from B"));

    a.shutdown().await;
    c.shutdown().await;
    b.shutdown().await;
}

async fn peers_lists_connected_peers(t: Transport) {
    let a = Peer::<String>::bind(t.addr()).await.unwrap();
    let b = Peer::<String>::bind(t.addr()).await.unwrap();
    let c = Peer::<String>::bind(t.addr()).await.unwrap();
    assert!(a.peers().is_empty());
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());
    assert_eq!(a.connect(c.local_addr()).await.unwrap(), c.id());
    // Connecting again reuses the connection.
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());

    let mut both = vec![b.id(), c.id()];
    both.sort();
    assert_eq!(a.peers(), both, "sorted, each once");
    assert_eq!(b.peers(), vec![a.id()], "whichever side dialed");
    assert_eq!(c.peers(), vec![a.id()]);
    assert!(a.super_peers().is_empty());

    // A peer that leaves drops out of the list.
    c.shutdown().await;
    within(10, "C leaving A's list", async {
        while a.peers() != vec![b.id()] {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

async fn no_route_without_a_super_peer(t: Transport) {
    // B is a plain peer: it does not relay, so A cannot reach C.
    let a = Peer::<String>::bind(t.addr()).await.unwrap();
    let b = Peer::<String>::bind(t.addr()).await.unwrap();
    let c = Peer::<String>::bind(t.addr()).await.unwrap();
    a.connect(b.local_addr()).await.unwrap();
    c.connect(b.local_addr()).await.unwrap();
    assert!(
        a.discover().await.unwrap().is_empty(),
        "no super-peer to ask"
    );
    match a.send(c.id(), "lost".into()).await {
        Err(Error::NoRoute(to)) => assert_eq!(to, c.id()),
        other => panic!("expected NoRoute, got {other:?}"),
    }
    match a.request(c.id(), "lost".into()).await {
        Err(Error::NoRoute(to)) => assert_eq!(to, c.id()),
        other => panic!("expected NoRoute, got {other:?}"),
    }
    for p in [&a, &b, &c] {
        p.shutdown().await;
    }
}

// The next two repeat a scenario above many times: what they check must
// hold however the runtime's threads interleave.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_right_after_a_handler_starts_is_graceful_every_time() {
    for t in [Transport::Mem, Transport::Tcp] {
        for round in 0..30 {
            let nap = Duration::from_millis(20);
            let mut s = sleepy_server(t, Limits::default(), nap).await;
            let client: Client<u64, u64> = Client::connect(s.server.local_addr()).await.unwrap();
            let call = tokio::spawn({
                let client = client.clone();
                async move { client.request(5).await }
            });
            assert_eq!(
                within(10, "the handler starting", s.started.recv()).await,
                Some(5)
            );
            within(10, "the server shutting down", s.server.shutdown()).await;
            let answer = within(10, "the call", call).await.unwrap();
            assert!(
                matches!(answer, Ok(5)),
                "{t:?} round {round}: the call in flight finishes, got {answer:?}"
            );
            let live = s.server.node().connections().len();
            assert_eq!(
                live, 0,
                "{t:?} round {round}: no connection outlives the shutdown"
            );
            let after = client.request(0).await;
            assert!(
                after.is_err(),
                "{t:?} round {round}: answered after the shutdown: {after:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_server_right_after_a_handler_starts_drops_the_handler_every_time() {
    for t in [Transport::Mem, Transport::Tcp] {
        for round in 0..30 {
            let mut s = sleepy_server(t, Limits::default(), AN_HOUR).await;
            let client = Client::<u64, u64>::connect(s.server.local_addr())
                .await
                .unwrap()
                .with_deadline(Duration::from_secs(120));
            let call = tokio::spawn({
                let client = client.clone();
                async move { client.request(5).await }
            });
            assert_eq!(
                within(10, "the handler starting", s.started.recv()).await,
                Some(5)
            );
            drop(s.server);
            let answer = within(10, "the call failing", call).await.unwrap();
            assert!(
                matches!(answer, Err(Error::Disconnected(_))),
                "{t:?} round {round}: expected Disconnected, got {answer:?}"
            );
            let dropped = tokio::time::timeout(Duration::from_secs(5), s.dropped.recv()).await;
            assert_eq!(
                dropped.ok().flatten(),
                Some(5),
                "{t:?} round {round}: the handler outlives its connection"
            );
        }
    }
}

#[test]
fn address_parse_errors_name_the_input() {
    for bad in [
        "127.0.0.1:80",
        "http://127.0.0.1:80",
        "tcp://127.0.0.1",
        "tcp://:80",
        "tcp://127.0.0.1:65536",
        "unix://relative/path.sock",
        "mem://",
        "mem://a/b",
    ] {
        let e = bad.parse::<Address>().unwrap_err();
        assert!(e.to_string().contains(bad), "{bad:?} gave {e}");
    }
    for good in [
        "tcp://127.0.0.1:0",
        "tcp://[::1]:7000",
        "unix:///tmp/x.sock",
        "mem://x",
    ] {
        let a: Address = good.parse().unwrap();
        assert_eq!(a.to_string(), good);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_errors_reach_the_caller_through_every_entry_point() {
    let e = Client::<u8, u8>::connect("tcp://no-port")
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Address(AddressError::BadHostPort { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("tcp://no-port"), "{e}");
    let e = Server::bind("udp://127.0.0.1:1", |n: u8| async move { n })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("udp://127.0.0.1:1"), "{e}");
    let e = Peer::<u8>::bind("unix://relative.sock").await.unwrap_err();
    assert!(e.to_string().contains("unix://relative.sock"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_addresses_are_refused_as_not_built() {
    const NATS: &str = "nats://127.0.0.1:4222";
    let a: Address = NATS.parse().expect("nats:// parses");
    assert_eq!(a.scheme(), "nats");
    let errors = [
        Server::bind(NATS, |n: u8| async move { n })
            .await
            .unwrap_err(),
        Client::<u8, u8>::connect(NATS).await.unwrap_err(),
        Peer::<u8>::bind(NATS).await.unwrap_err(),
        Node::listen(NATS).await.unwrap_err(),
        Client::<u8, u8>::connect_from(&Node::new(), NATS)
            .await
            .unwrap_err(),
    ];
    for e in errors {
        assert!(
            matches!(
                e,
                Error::Address(AddressError::BackendNotBuilt { scheme: "nats", .. })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("not built"), "{e}");
        assert!(e.to_string().contains(NATS), "{e}");
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client<u8, u8>>();
    send_sync::<Server<u8, u8>>();
    send_sync::<Peer<u8>>();
    send_sync::<Node>();
    send_sync::<farcall::Connection>();
    send_sync::<Error>();
    send_sync::<PeerId>();
}
