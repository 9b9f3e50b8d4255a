//! Remote objects (RMI, early binding) when the connection goes: a
//! connection broken with a call in flight, a server restarted on the same
//! port (the client does nothing), a call made while the server is down,
//! and a server in another process, calling back into this one, killed
//! mid-call.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed. The scenarios print how long recovery took (run with
//! `--nocapture` to see it).

mod common;
mod rmi;

use std::sync::Arc;
use std::time::{Duration, Instant};

use farcall::node::Address;
use farcall::{Node, Remote, RemoteError};

use common::process::{line_where_async, rerun, run_child, stdin_closed};
use common::wait::within;
use rmi::{Board, Canvas, Circle, Disc, Shape, Tile, close};

// ---------------------------------------------------------------------------
// Reconnect: a broken connection, a server restart
// ---------------------------------------------------------------------------

/// Waits until every connection `node` has is dead.
async fn all_closed(node: &Node) {
    for c in node.connections() {
        c.closed().await;
    }
}

/// A node serving a fresh canvas as "canvas", listening on `addr` only
/// once the service is in place.
async fn restarted_server(addr: &Address) -> (Node, Instant) {
    let node = Node::new();
    let _: Remote<dyn Canvas> = node.serve("canvas", Board::default());
    node.add_listener(addr).await.unwrap();
    (node, Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_after_a_break_and_after_a_restart() {
    within(25, "reconnect scenario", reconnect_scenario()).await
}

async fn reconnect_scenario() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let _: Remote<dyn Canvas> = server.serve("canvas", Board::default());
    let client = Node::new();
    let canvas = client
        .connect_service::<dyn Canvas>(&addr, "canvas")
        .await
        .unwrap();
    assert_eq!(canvas.ping().await.unwrap(), server.id().0);

    // The server aborts the connection with a call in flight: the call
    // fails at once, long before its deadline.
    let slow = canvas.with_deadline(Duration::from_secs(60));
    let in_flight = tokio::spawn(async move { slow.nap(30_000).await });
    within(5, "the call is in flight", async {
        while client.connections()[0].calls_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let conns = server.connections();
    assert_eq!(conns.len(), 1);
    let broke = Instant::now();
    conns[0].abort("test");
    match within(5, "a call in flight at the break", in_flight)
        .await
        .unwrap()
    {
        Err(RemoteError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let failed_after = broke.elapsed();
    // The next call redials.
    let t = Instant::now();
    assert_eq!(canvas.ping().await.unwrap(), server.id().0);
    let redial = t.elapsed();
    assert_eq!(client.connections().len(), 1);
    println!(
        "rmi reconnect: call in flight failed {:.2} ms after the abort; next call (redial) took {:.2} ms",
        ms(failed_after),
        ms(redial)
    );

    // The server restarts on the same port; the client does nothing.
    let mut recoveries = Vec::new();
    let mut old = server;
    for _ in 0..3 {
        old.shutdown().await;
        within(5, "the client sees the shutdown", all_closed(&client)).await;
        let (new, listening) = restarted_server(&addr).await;
        assert_eq!(new.local_addr().as_ref(), Some(&addr), "the same port");
        assert_eq!(canvas.ping().await.unwrap(), new.id().0, "the new node");
        recoveries.push(listening.elapsed());
        old = new;
    }
    println!(
        "rmi restart: listen of the new node to the first successful call: {} ms",
        recoveries
            .iter()
            .map(|d| format!("{:.2}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // A call made while the server is down succeeds when it comes back
    // within the reconnect window.
    old.shutdown().await;
    within(5, "the client sees the shutdown", all_closed(&client)).await;
    let waiting = canvas.clone();
    let started = Instant::now();
    let call = tokio::spawn(async move {
        let r = waiting.ping().await;
        (r, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (new, listening) = restarted_server(&addr).await;
    let (r, done) = within(5, "a call across a restart", call).await.unwrap();
    assert_eq!(r, Ok(new.id().0), "the call waiting for the restart");
    println!(
        "rmi restart: call started while the server was down: {:.2} ms in all, server down for {:.2} ms, {:.2} ms from listen to answer",
        ms(done - started),
        ms(listening - started),
        ms(done.saturating_duration_since(listening)),
    );

    // A server that stays down: a call gives up within the reconnect
    // window (well before its deadline), with Disconnected.
    new.shutdown().await;
    within(5, "the client sees the shutdown", all_closed(&client)).await;
    let started = Instant::now();
    match within(10, "a call to a server that stays down", canvas.ping()).await {
        Err(RemoteError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    println!(
        "rmi restart: a call to a server that stays down gave up after {:.2} ms",
        ms(started.elapsed())
    );

    client.shutdown().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------
// Separate processes
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "FARCALL_RMI_CHILD";
const ADDR_PREFIX: &str = "FARCALL_RMI_ADDR=";

/// The server half of `callbacks_across_processes`: does nothing unless
/// started by it (the test binary runs itself as the child).
#[test]
#[ignore = "the child process of callbacks_across_processes"]
fn child_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    run_child(async {
        let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let _: Remote<dyn Canvas> = node.serve("canvas", Board::default());
        println!("{ADDR_PREFIX}{}", node.local_addr().unwrap());
        // Serve until the parent closes stdin (or kills this process).
        stdin_closed().await;
        node.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_across_processes() {
    within(20, "callbacks across processes", across_processes()).await
}

async fn across_processes() {
    let mut child = rerun("child_server", &[(CHILD_ENV, "1")]);
    let addr = line_where_async(child.stdout(), "the child's address", |line| {
        line.strip_prefix(ADDR_PREFIX).map(str::to_owned)
    })
    .await;
    let child_pid = child.0.id();

    // The parent does not listen: the child calls back over the parent's
    // connection, into the parent's process.
    let parent = Node::new();
    let canvas = parent
        .connect_service::<dyn Canvas>(addr.as_str(), "canvas")
        .await
        .unwrap();
    let child_id = canvas.ping().await.unwrap();
    assert_ne!(child_id, parent.id().0);

    let tile = Tile::new("parent tile", 2.0);
    let disc = Disc::new("parent disc", 1.0);
    let (tile_probe, disc_probe) = (tile.probe.clone(), disc.probe.clone());
    let tile: Remote<dyn Shape> = parent.export(tile);
    let disc: Remote<dyn Circle> = parent.export(disc);
    assert_eq!(canvas.add(tile.clone()).await.unwrap(), 1);
    assert_eq!(
        canvas
            .add(disc.clone().upcast::<dyn Shape>())
            .await
            .unwrap(),
        2
    );
    let total = canvas.total_area().await.unwrap();
    assert!(close(total, 4.0 + std::f64::consts::PI), "{total}");
    assert_eq!(canvas.radii().await.unwrap(), [1.0]);
    assert_eq!(tile_probe.calls(), 2, "add and total_area called back");
    assert_eq!(disc_probe.calls(), 3, "add, total_area and radii");
    assert!(
        tile_probe
            .callers()
            .iter()
            .all(|c| c.0 == child_id && c.0 != parent.id().0),
        "the callbacks came from the child process"
    );
    // Round trips through the other process come back local.
    let all = canvas.all().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], tile);
    assert!(all[0].is_local());
    assert!(Arc::ptr_eq(all[0].as_arc(), tile.as_arc()));
    // (The circle, exported as `dyn Circle` and returned as `dyn Shape`,
    // is not `is_local`: see `round_trip_under_a_supertrait_is_local` in
    // `rmi_refs.rs`.)
    assert_eq!(all[1], disc.clone().upcast::<dyn Shape>());
    let back = all[1].narrow::<dyn Circle>().expect("a circle");
    assert_eq!(back.radius().await.unwrap(), 1.0);
    // The child's own objects are stubs here.
    let sq = canvas.square(3.0).await.unwrap();
    assert_eq!(sq.side().await.unwrap(), 3.0);
    assert_eq!(sq.owner().0, child_id);
    let largest = canvas.largest().await.unwrap().unwrap();
    assert_eq!(largest, sq.clone().upcast::<dyn Shape>());
    assert_eq!(parent.connections().len(), 1);
    assert_eq!(
        parent.connections()[0].peer_id().0,
        child_id,
        "one connection, to the child"
    );

    // The child is killed mid-call: the call fails promptly.
    let slow = canvas.with_deadline(Duration::from_secs(60));
    let in_flight = tokio::spawn(async move { slow.nap(30_000).await });
    within(5, "the call is in flight", async {
        while parent.connections()[0].calls_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let killed = Instant::now();
    child.0.kill().unwrap();
    match within(5, "a call to a killed process", in_flight)
        .await
        .unwrap()
    {
        Err(RemoteError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let failed_after = killed.elapsed();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the child {child_pid} was killed");
    println!(
        "rmi processes: a call in flight failed {:.2} ms after the child was killed",
        ms(failed_after)
    );
    // References to the dead process's objects fail too, within the
    // reconnect window.
    match within(10, "a stub to a killed process", sq.side()).await {
        Err(RemoteError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }

    parent.shutdown().await;
}
