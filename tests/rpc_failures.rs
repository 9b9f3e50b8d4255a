//! Remote procedure calls that do not go as planned: a deadline that
//! passes, a caller that drops its call, a server whose connection breaks
//! or that shuts down mid-call, and a handler that panics. Each time the
//! server drops the handler, and the caller learns promptly.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;
mod rpc;

use std::time::{Duration, Instant};

use farcall::RemoteError;
use farcall::node::Limits;
use tokio::task::JoinSet;

use common::transport::{Transport, on_transports};
use common::wait::within;
use rpc::{AN_HOUR, Sleepy, client_of, sleepy_server};

on_transports!([tcp, unix, mem];
    deadline_exceeded_drops_the_handler,
    dropping_the_call_cancels_the_handler,
    server_connection_aborted_mid_call_disconnects_promptly,
    server_shutdown_mid_call_disconnects_promptly,
    handler_panic_is_reported_and_the_server_goes_on,
);

async fn deadline_exceeded_drops_the_handler(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;

    let hurried = stub.with_deadline(Duration::from_millis(100));
    let answer = within(
        10,
        "a call past its deadline",
        hurried.nap(1, AN_HOUR.as_millis() as u64),
    )
    .await;
    assert_eq!(answer, Err(RemoteError::DeadlineExceeded));
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(1)
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(1),
        "the server drops the handler's future once the deadline passes"
    );

    // Several at once.
    let mut calls = JoinSet::new();
    for tag in 10..20 {
        let hurried = hurried.clone();
        calls.spawn(async move { hurried.nap(tag, 60_000).await });
    }
    within(10, "calls past their deadline", async {
        while let Some(done) = calls.join_next().await {
            assert_eq!(done.unwrap(), Err(RemoteError::DeadlineExceeded));
        }
    })
    .await;
    let mut dropped = Vec::new();
    within(10, "the handlers being dropped", async {
        while dropped.len() < 10 {
            dropped.push(s.dropped.recv().await.unwrap());
        }
    })
    .await;
    dropped.sort_unstable();
    assert_eq!(dropped, (10..20).collect::<Vec<_>>());

    // A call within its deadline still answers, on the same stub.
    assert_eq!(hurried.nap(2, 1).await, Ok(2));
    assert_eq!(stub.echo(3).await, Ok(3));
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn dropping_the_call_cancels_the_handler(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    // The default deadline is 30 s: a handler dropped sooner was cancelled.

    // A call dropped by a local time-out.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), stub.nap(7, 60_000)).await;
    assert!(gave_up.is_err(), "the call cannot have been answered");
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(7)
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(7)
    );

    // A call dropped by a select.
    tokio::select! {
        r = stub.nap(8, 60_000) => panic!("the nap cannot finish first: {r:?}"),
        started = s.started.recv() => assert_eq!(started, Some(8)),
    }
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(8)
    );

    // A call in a task that is aborted.
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(9, 60_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(9)
    );
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(9)
    );

    assert_eq!(stub.echo(1).await, Ok(1));
    let conn = client
        .connection(s.node.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(conn.calls_in_flight(), 0);
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn server_connection_aborted_mid_call_disconnects_promptly(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    let stub = stub.with_deadline(Duration::from_secs(60));
    let started = Instant::now();
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(5, 120_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let conns = s.node.connections();
    assert_eq!(conns.len(), 1);
    conns[0].abort("killed by the test");
    // The deadline is 60 s: failing within 20 s is failing because of the
    // broken connection.
    let answer = within(20, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(RemoteError::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
    // The next call dials the server again: the stub recovers by itself.
    assert_eq!(stub.echo(0).await.unwrap(), 0, "the stub dials again");
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn server_shutdown_mid_call_disconnects_promptly(t: Transport) {
    let mut limits = Limits::default();
    limits.close_grace = Duration::from_millis(200);
    let mut s = sleepy_server(t, limits).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    let stub = stub.with_deadline(Duration::from_secs(60));
    let started = Instant::now();
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(5, 120_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    within(10, "the server shutting down", s.node.shutdown()).await;
    let answer = within(20, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(RemoteError::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
    assert!(stub.echo(0).await.is_err(), "the server is gone");
    client.shutdown().await;
}

async fn handler_panic_is_reported_and_the_server_goes_on(t: Transport) {
    let s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    for after_yield in [false, true] {
        assert_eq!(stub.boom(after_yield).await, Err(RemoteError::Panicked));
        assert_eq!(stub.echo(3).await, Ok(3), "the same connection goes on");
        assert_eq!(stub.echo_later(4).await, Ok(4));
    }
    let (other, stub2) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    assert_eq!(stub2.echo(5).await, Ok(5), "new connections are served");
    other.shutdown().await;
    client.shutdown().await;
    s.node.shutdown().await;
}
