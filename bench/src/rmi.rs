//! `rmi`: remote objects. A call whose server calls back into the caller,
//! passing a fresh reference (export + first call by the receiver), against
//! a plain call and the raw limit for the same number of round trips.
//! Streams of 64-byte items, against raw frames of the same size. tarpc
//! has no callbacks over one connection, no object references and no
//! streams, so it has no column here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use farcall::{Node, Remote, RemoteError};

use crate::Budget;
use crate::measure::{interleaved, seq_op};
use crate::raw::{self, RawConn};
use crate::report::Report;

/// The client's object, called back by the server.
#[farcall::remote]
pub trait Listener {
    /// A callback: returns its argument plus one.
    async fn notify(&self, n: u64) -> Result<u64, RemoteError>;
}

/// The server.
#[farcall::remote]
pub trait Hub {
    /// A plain call, for comparison.
    async fn plain(&self, n: u64) -> Result<u64, RemoteError>;
    /// Calls `listener` back once, then answers.
    async fn call_back(&self, listener: Remote<dyn Listener>, n: u64) -> Result<u64, RemoteError>;
}

struct Counter(AtomicU64);

#[farcall::remote]
impl Listener for Counter {
    async fn notify(&self, n: u64) -> Result<u64, RemoteError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(n + 1)
    }
}

struct HubImpl;

#[farcall::remote]
impl Hub for HubImpl {
    async fn plain(&self, n: u64) -> Result<u64, RemoteError> {
        Ok(n)
    }
    async fn call_back(&self, listener: Remote<dyn Listener>, n: u64) -> Result<u64, RemoteError> {
        listener.notify(n).await
    }
}

pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _: Remote<dyn Hub> = server.serve("hub", HubImpl);
    let client = Node::new();
    let hub: Remote<dyn Hub> = client
        .connect_service(server.local_addr().expect("addr"), "hub")
        .await
        .expect("connect");
    // One listener, passed on every call: a callback round trip.
    let listener: Remote<dyn Listener> = client.export(Counter(AtomicU64::new(0)));
    let raw_server = raw::server(None).await;
    let msg = {
        let mut m = 16u32.to_le_bytes().to_vec();
        m.extend_from_slice(&[1; 16]);
        m
    };
    let conn = Arc::new(tokio::sync::Mutex::new(RawConn::connect(&raw_server).await));

    let (h1, h2, h3, l, cn) = (
        hub.clone(),
        hub.clone(),
        hub.clone(),
        listener.clone(),
        client.clone(),
    );
    let (c1, m1) = (conn.clone(), msg.clone());
    let lat = interleaved(
        b.seq_samples,
        vec![
            seq_op(move || {
                let h = h1.clone();
                async move {
                    h.plain(1).await.unwrap();
                }
            }),
            seq_op(move || {
                let (h, l) = (h2.clone(), l.clone());
                async move {
                    assert_eq!(h.call_back(l, 1).await.unwrap(), 2);
                }
            }),
            // Reference passing: a fresh object each time, exported, sent,
            // and called once by the receiver (its first call).
            seq_op(move || {
                let (h, n) = (h3.clone(), cn.clone());
                async move {
                    let fresh: Remote<dyn Listener> = n.export(Counter(AtomicU64::new(0)));
                    assert_eq!(h.call_back(fresh, 1).await.unwrap(), 2);
                }
            }),
            // Raw: the same two round trips, one after the other.
            seq_op(move || {
                let (c, m) = (c1.clone(), m1.clone());
                async move {
                    let mut buf = Vec::new();
                    let mut c = c.lock().await;
                    c.ping(&m, &mut buf).await;
                    c.ping(&m, &mut buf).await;
                }
            }),
        ],
    )
    .await;
    let names = [
        ("farcall", "plain"),
        ("farcall", "callback"),
        ("farcall", "refpass"),
        ("raw", "callback"),
    ];
    for ((system, scenario), l) in names.into_iter().zip(lat) {
        r.add(system, "tcp", scenario, "p50_us", l.p50_us);
        r.add(system, "tcp", scenario, "p99_us", l.p99_us);
    }
    // Streams: 64-byte items, default window and a larger one; raw sends
    // the same 64-byte frames pipelined 256 at a time (its limit).
    raw_stream(&mut r, b).await;
    for (scenario, window) in [("stream64", 32), ("stream64_w256", 256)] {
        let rate = crate::stream::throughput(window, b.window).await;
        r.add("farcall", "tcp", scenario, "items_per_s", rate);
    }
    client.shutdown().await;
    server.shutdown().await;

    r.print(
        "rmi: a call with a callback into the caller, and passing a fresh reference (one connection)",
        &[
            ("callback p50, farcall / raw (two round trips)", "farcall.tcp.callback.p50_us", "raw.tcp.callback.p50_us"),
            ("callback p50 / plain call p50", "farcall.tcp.callback.p50_us", "farcall.tcp.plain.p50_us"),
            ("reference passing p50 / callback p50", "farcall.tcp.refpass.p50_us", "farcall.tcp.callback.p50_us"),
            ("stream items/s, farcall (window 256) / raw", "farcall.tcp.stream64_w256.items_per_s", "raw.tcp.stream64.items_per_s"),
        ],
    );
}

/// The raw limit for a stream of 64-byte items: frames of the same size,
/// 256 in flight on one socket, echoed (so raw moves each item twice).
async fn raw_stream(r: &mut Report, b: Budget) {
    let server = raw::server(None).await;
    let mut item = 60u32.to_le_bytes().to_vec();
    item.resize(64, 7);
    let rate = raw::pipelined(&server, item, 256, b.window).await;
    r.add("raw", "tcp", "stream64", "items_per_s", rate);
}
