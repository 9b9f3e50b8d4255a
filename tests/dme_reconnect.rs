//! Direct message exchange when the server restarts: the client dials the
//! same address again by itself, with backoff and within a bounded
//! window, as remote object stubs do; a request made while nothing
//! listens fails once that window has passed.
//!
//! Real TCP servers on 127.0.0.1, stopped and started again on the same
//! port. Time-outs here only keep a broken build from hanging.

mod common;

use std::time::{Duration, Instant};

use farcall::Error;
use farcall::dme::{Client, Server};
use farcall::node::Address;

use common::wait::within;

/// A server on `addr` that answers `n` with `n + offset`: two instances
/// with different offsets tell which one answered.
async fn adder(addr: &str, offset: u64) -> Server<u64, u64> {
    Server::listen(addr, move |n: u64| async move { n + offset })
        .await
        .unwrap()
}

/// Starts a server on `addr` again, retrying while the port is still
/// held by the instance that just stopped.
async fn restart(addr: &Address, offset: u64) -> Server<u64, u64> {
    within(10, "the port being free again", async {
        loop {
            match Server::listen(addr, move |n: u64| async move { n + offset }).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reaches_a_restarted_server_on_its_own() {
    within(30, "the restart scenario", async {
        let first = adder("tcp://127.0.0.1:0", 100).await;
        let addr = first.local_addr().clone();
        let client = Client::<u64, u64>::connect(&addr)
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(10));
        assert_eq!(client.request(1).await.unwrap(), 101);
        let before = client.connection().peer_id();

        first.shutdown().await;
        drop(first);
        // The client has seen its connection close (a request racing the
        // close would be in flight at the break: `Disconnected` at once).
        within(
            10,
            "the client seeing the close",
            client.connection().closed(),
        )
        .await;
        let second = restart(&addr, 200).await;

        // The client does nothing: its next request dials again.
        assert_eq!(client.request(1).await.unwrap(), 201);
        assert_ne!(client.connection().peer_id(), before, "a new server");
        // Clones share the new connection, and one-way messages work too.
        let clone = client.clone();
        clone.send(7).await.unwrap();
        assert_eq!(clone.request(2).await.unwrap(), 202);
        second.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_made_while_the_server_is_down_waits_for_it() {
    within(30, "the down-then-up scenario", async {
        let first = adder("tcp://127.0.0.1:0", 100).await;
        let addr = first.local_addr().clone();
        let client = Client::<u64, u64>::connect(&addr)
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(10));
        assert_eq!(client.request(1).await.unwrap(), 101);
        first.shutdown().await;
        drop(first);
        // The client has seen its connection close (a request racing the
        // close would be in flight at the break: `Disconnected` at once).
        within(
            10,
            "the client seeing the close",
            client.connection().closed(),
        )
        .await;

        // The request starts while nothing listens; the server comes back
        // within the reconnect window, and the request is answered.
        let pending = tokio::spawn({
            let client = client.clone();
            async move { client.request(3).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = restart(&addr, 200).await;
        assert_eq!(pending.await.unwrap().unwrap(), 203);
        second.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stays_down_is_reported_once_the_window_passes() {
    within(30, "the stays-down scenario", async {
        let first = adder("tcp://127.0.0.1:0", 100).await;
        let addr = first.local_addr().clone();
        let client = Client::<u64, u64>::connect(&addr)
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(20));
        assert_eq!(client.request(1).await.unwrap(), 101);
        first.shutdown().await;
        drop(first);
        // The client has seen its connection close (a request racing the
        // close would be in flight at the break: `Disconnected` at once).
        within(
            10,
            "the client seeing the close",
            client.connection().closed(),
        )
        .await;

        let started = Instant::now();
        let e = client.request(1).await.unwrap_err();
        let took = started.elapsed();
        // The reconnect window (2 s) bounds the wait, not the 20 s deadline.
        assert!(took < Duration::from_secs(8), "gave up after {took:?}");
        assert!(
            took >= Duration::from_millis(1500),
            "gave up after {took:?}"
        );
        assert!(matches!(e, Error::Disconnected(_)), "got {e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "disconnected: the connection to {addr} broke and it could not be dialed again: \
                 cannot connect to {addr}"
            )),
            "{text}"
        );
    })
    .await
}
