//! `dme`: request/response over one connection, farcall against raw.

use std::sync::Arc;
use std::time::Duration;

use farcall::dme::{Client, Server};

use crate::Budget;
use crate::measure::{concurrent, interleaved, live_heap_bytes, seq_op};
use crate::raw::{self, RawConn};
use crate::report::Report;

/// The request: eight bytes of payload, as postcard encodes a `[u8; 8]`.
type Msg = [u8; 8];

const INFLIGHT: [usize; 4] = [1, 16, 128, 256];

pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();
    // Memory first, before other scenarios leave freed memory to reuse.
    idle_memory(&mut r, b).await;
    let sock = std::env::temp_dir().join(format!("farcall-bench-{}", std::process::id()));
    for transport in ["tcp", "unix"] {
        let (faddr, raddr) = match transport {
            "tcp" => ("tcp://127.0.0.1:0".to_string(), None),
            _ => (
                format!("unix://{}.farcall.sock", sock.display()),
                Some(sock.with_extension("raw.sock")),
            ),
        };
        let server = Server::listen(faddr.as_str(), |m: Msg| async move { m })
            .await
            .expect("farcall server");
        let client: Client<Msg, Msg> = Client::connect(server.local_addr())
            .await
            .expect("farcall client");
        let raw_server = raw::server(raddr).await;
        // raw: the same 8 bytes, length-prefixed
        let msg: Vec<u8> = {
            let mut m = 8u32.to_le_bytes().to_vec();
            m.extend_from_slice(&[7; 8]);
            m
        };
        let conn = Arc::new(tokio::sync::Mutex::new(RawConn::connect(&raw_server).await));

        let c = client.clone();
        let m = msg.clone();
        let lat = interleaved(
            b.seq_samples,
            vec![
                seq_op(move || {
                    let c = c.clone();
                    async move {
                        c.request([7; 8]).await.unwrap();
                    }
                }),
                seq_op(move || {
                    let (conn, msg) = (conn.clone(), m.clone());
                    async move {
                        let mut buf = Vec::new();
                        conn.lock().await.ping(&msg, &mut buf).await;
                    }
                }),
            ],
        )
        .await;
        for (system, l) in ["farcall", "raw"].into_iter().zip(lat) {
            r.add(system, transport, "seq", "p50_us", l.p50_us);
            r.add(system, transport, "seq", "p99_us", l.p99_us);
        }

        for n in INFLIGHT {
            let c = client.clone();
            let rate = concurrent(n, b.window, move || {
                let c = c.clone();
                async move {
                    c.request([7; 8]).await.unwrap();
                }
            })
            .await;
            r.add(
                "farcall",
                transport,
                &format!("inflight{n}"),
                "calls_per_s",
                rate,
            );
        }
        for n in INFLIGHT {
            let rate = raw::pipelined(&raw_server, msg.clone(), n, b.window).await;
            r.add(
                "raw",
                transport,
                &format!("inflight{n}"),
                "calls_per_s",
                rate,
            );
        }
        server.shutdown().await;
    }

    r.print(
        "dme: request/response, 8-byte payload, one connection",
        &[
            (
                "tcp seq p50, farcall / raw (goal <= 1.2)",
                "farcall.tcp.seq.p50_us",
                "raw.tcp.seq.p50_us",
            ),
            (
                "unix seq p50, farcall / raw (goal <= 1.2)",
                "farcall.unix.seq.p50_us",
                "raw.unix.seq.p50_us",
            ),
            (
                "tcp 256 in flight, farcall / raw (goal >= 0.3)",
                "farcall.tcp.inflight256.calls_per_s",
                "raw.tcp.inflight256.calls_per_s",
            ),
            (
                "unix 256 in flight, farcall / raw (goal >= 0.3)",
                "farcall.unix.inflight256.calls_per_s",
                "raw.unix.inflight256.calls_per_s",
            ),
        ],
    );
}

/// Idle heap memory per connection, both ends in this process (client
/// and server side each hold their half).
async fn idle_memory(r: &mut Report, b: Budget) {
    // Idle memory per connection (both ends live in this process).
    let server = Server::listen("tcp://127.0.0.1:0", |m: Msg| async move { m })
        .await
        .expect("farcall server");
    let node = farcall::Node::new();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = live_heap_bytes();
    let mut conns = Vec::with_capacity(b.idle_conns);
    for _ in 0..b.idle_conns {
        let addr = server.local_addr().clone();
        conns.push(node.dial(&addr).await.expect("dial"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = live_heap_bytes();
    r.add(
        "farcall",
        "tcp",
        "idle_conn",
        "bytes",
        after.saturating_sub(before) as f64 / b.idle_conns as f64,
    );
    drop(conns);
    node.shutdown().await;
    server.shutdown().await;

    let raw_server = raw::server(None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = live_heap_bytes();
    let mut raws = Vec::with_capacity(b.idle_conns);
    for _ in 0..b.idle_conns {
        raws.push(RawConn::connect(&raw_server).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = live_heap_bytes();
    r.add(
        "raw",
        "tcp",
        "idle_conn",
        "bytes",
        after.saturating_sub(before) as f64 / b.idle_conns as f64,
    );
    drop(raws);
}

/// `hot-seq`: farcall alone, one request at a time over a Unix socket, for
/// a profiler.
pub(crate) async fn hot_seq(b: Budget) {
    let sock = std::env::temp_dir().join(format!("farcall-hot-{}.sock", std::process::id()));
    let server = Server::listen(
        format!("unix://{}", sock.display()),
        |m: Msg| async move { m },
    )
    .await
    .expect("farcall server");
    let client: Client<Msg, Msg> = Client::connect(server.local_addr()).await.expect("client");
    let lat = interleaved(
        b.seq_samples * 10,
        vec![seq_op(move || {
            let c = client.clone();
            async move {
                c.request([7; 8]).await.unwrap();
            }
        })],
    )
    .await;
    println!("farcall unix seq p50 {:.2} us", lat[0].p50_us);
    server.shutdown().await;
}
