//! Direct message exchange when a request does not go as planned: a
//! deadline that passes, a request dropped by its caller, a server that
//! shuts down, is dropped or closes gracefully mid-call, and a handler
//! that panics. The server drops the handlers it no longer needs, and
//! callers learn promptly.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;

use std::time::{Duration, Instant};

use farcall::dme::{Client, Server};
use farcall::node::Limits;
use farcall::rpc::Fault;
use farcall::{Error, Node};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use common::transport::{Transport, on_transports};
use common::wait::within;

on_transports!([tcp, unix, mem];
    deadline_exceeded_drops_the_handler,
    dropping_a_request_cancels_it_on_the_server,
    server_shutdown_mid_call_disconnects_promptly,
    server_dropped_mid_call_disconnects,
    graceful_close_lets_a_call_in_flight_finish,
    handler_panic_is_reported_and_the_server_goes_on,
);

/// The deadline of a request made once nothing listens: the client tries
/// to dial the server again until it passes.
const SHORT: Duration = Duration::from_millis(100);

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
    let server = Server::listen_on(&node, move |n: u64| {
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
    })
    .expect("the node listens");
    SleepyServer {
        server,
        started,
        dropped,
    }
}

const AN_HOUR: Duration = Duration::from_secs(3600);

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
    let mut limits = Limits::default();
    limits.close_grace = grace;
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
    // Nothing listens any more: the re-dial gives up within the deadline.
    let after = client.request_within(0, Some(SHORT)).await;
    assert!(after.is_err(), "the server is gone: {after:?}");
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
    let after = client.request_within(0, Some(SHORT)).await;
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
    let server = Server::listen(t.addr(), |n: u64| async move {
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
            let after = client.request_within(0, Some(SHORT)).await;
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
