//! `directory`: late binding. A cold lookup (one round trip to another
//! node's directory, no cache), and a call through `LateBound<dyn T>`
//! (round-robin over one member, and over two) against an early-bound stub
//! to the same object. The directory, the server and the client are three
//! nodes over TCP; both members live on the one server, so every call
//! takes the same connection.

use farcall::directory::{DirectoryClient, LateBound, Policy};
use farcall::{Node, Remote, RemoteError};

use crate::Budget;
use crate::measure::{interleaved, seq_op};
use crate::report::Report;

/// The benchmark's interface.
#[farcall::remote]
pub trait Adder {
    /// Adds two numbers (idempotent, as a late-bound method usually is).
    #[remote(idempotent)]
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

struct AdderImpl;

#[farcall::remote]
impl Adder for AdderImpl {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        Ok(a + b)
    }
}

/// One member, a group of two, and an object the client holds no other
/// reference to (so each lookup takes a lease, and each drop ends it).
const ONE: &str = "bench/one";
const TWO: &str = "bench/two";
const COLD: &str = "bench/cold";

pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();
    let dir_node = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let dir_addr = dir_node.local_addr().expect("addr");

    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let first: Remote<dyn Adder> = server.export(AdderImpl);
    let second: Remote<dyn Adder> = server.export(AdderImpl);
    let third: Remote<dyn Adder> = server.export(AdderImpl);
    let sdir = DirectoryClient::connect_on(&server, dir_addr.clone())
        .await
        .expect("directory");
    sdir.add(ONE, &first).await.expect("add");
    sdir.add(TWO, &first).await.expect("add");
    sdir.add(TWO, &second).await.expect("add");
    sdir.bind(COLD, &third).await.expect("bind");

    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, dir_addr)
        .await
        .expect("directory");
    // Early binding: the object itself, found once.
    let early: Remote<dyn Adder> = dir.lookup(ONE).await.expect("lookup");
    let late1: LateBound<dyn Adder> = dir.late_bound(&client, ONE, Policy::RoundRobin);
    let late2: LateBound<dyn Adder> = dir.late_bound(&client, TWO, Policy::RoundRobin);
    // The stubs' first calls resolve the name; measured calls do not.
    assert_eq!(late1.add(1, 2).await.expect("late-bound call"), 3);
    assert_eq!(late2.add(1, 2).await.expect("late-bound call"), 3);

    let (d, d2) = (dir.clone(), dir.clone());
    let lat = interleaved(
        b.seq_samples,
        vec![
            seq_op(move || {
                let e = early.clone();
                async move {
                    e.add(1, 2).await.unwrap();
                }
            }),
            seq_op(move || {
                let l = late1.clone();
                async move {
                    l.add(1, 2).await.unwrap();
                }
            }),
            seq_op(move || {
                let l = late2.clone();
                async move {
                    l.add(1, 2).await.unwrap();
                }
            }),
            // A cold lookup: no cache, one round trip to the directory,
            // the reference narrowed to the interface, then dropped.
            seq_op(move || {
                let d = d.clone();
                async move {
                    let _: Remote<dyn Adder> = d.lookup(COLD).await.unwrap();
                }
            }),
            // The same, of an object the client already holds.
            seq_op(move || {
                let d = d2.clone();
                async move {
                    let _: Remote<dyn Adder> = d.lookup(ONE).await.unwrap();
                }
            }),
        ],
    )
    .await;
    for (scenario, l) in ["early", "latebound", "latebound2", "lookup", "lookup_held"]
        .into_iter()
        .zip(lat)
    {
        r.add("farcall", "tcp", scenario, "p50_us", l.p50_us);
        r.add("farcall", "tcp", scenario, "p99_us", l.p99_us);
    }
    client.shutdown().await;
    drop((first, second, third));
    server.shutdown().await;
    dir_node.shutdown().await;

    r.print(
        "directory: cold lookup, and a call through LateBound against an early-bound stub (three nodes, TCP)",
        &[
            (
                "late-bound (1 member) p50 / early p50 (goal <= 1.05)",
                "farcall.tcp.latebound.p50_us",
                "farcall.tcp.early.p50_us",
            ),
            (
                "late-bound (2 members) p50 / early p50 (goal <= 1.05)",
                "farcall.tcp.latebound2.p50_us",
                "farcall.tcp.early.p50_us",
            ),
            (
                "cold lookup p50 / early call p50",
                "farcall.tcp.lookup.p50_us",
                "farcall.tcp.early.p50_us",
            ),
            (
                "cold lookup p50 / lookup of a held object p50",
                "farcall.tcp.lookup.p50_us",
                "farcall.tcp.lookup_held.p50_us",
            ),
        ],
    );
}

/// `hot-late`: calls through `LateBound` alone, one after another, for a
/// profiler.
pub(crate) async fn hot_late(b: Budget) {
    let dir_node = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let obj: Remote<dyn Adder> = server.export(AdderImpl);
    DirectoryClient::connect_on(&server, dir_node.local_addr().expect("addr"))
        .await
        .expect("directory")
        .add(ONE, &obj)
        .await
        .expect("add");
    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, dir_node.local_addr().expect("addr"))
        .await
        .expect("directory");
    let late: LateBound<dyn Adder> = dir.late_bound(&client, ONE, Policy::RoundRobin);
    let n = b.seq_samples * 20;
    // On a runtime worker, as an application's task would call.
    let us = tokio::spawn(async move {
        let t = std::time::Instant::now();
        for _ in 0..n {
            late.add(1, 2).await.unwrap();
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    })
    .await
    .expect("benchmark task");
    println!("farcall tcp late-bound sequential: {us:.1} us/call");
    drop(obj);
}
