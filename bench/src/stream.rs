//! Stream throughput: 64-byte items per second from a server-streaming
//! method (`Result<Stream<Bytes>, _>`) over one farcall TCP connection,
//! with the default credit window and a larger one. [`throughput`] is the
//! measurement (for the `rmi` scenario's table); `-- stream` runs it alone.

use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::{Node, Remote, RemoteError, Stream};

use crate::Budget;
use crate::report::Report;

/// The size of one item.
const ITEM: usize = 64;

/// The producer.
#[farcall::remote]
pub trait Items {
    /// Endless 64-byte items, asking for a credit window of `window`.
    async fn items(&self, window: u32) -> Result<Stream<Bytes>, RemoteError>;
}

struct Producer;

#[farcall::remote]
impl Items for Producer {
    async fn items(&self, window: u32) -> Result<Stream<Bytes>, RemoteError> {
        let item = Bytes::from(vec![7u8; ITEM]);
        Ok(Stream::iter(std::iter::repeat(item)).with_window(window))
    }
}

/// Items per second received by one consumer of one stream of 64-byte
/// items over TCP, for `duration` (after a short warm-up), with a credit
/// window of `window` items.
pub(crate) async fn throughput(window: u32, duration: Duration) -> f64 {
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _served: Remote<dyn Items> = server.serve("items", Producer);
    let client = Node::new();
    let items: Remote<dyn Items> = client
        .connect_service(server.local_addr().expect("addr"), "items")
        .await
        .expect("connect");
    let mut s = items.items(window).await.expect("a stream");
    let warm_up = Instant::now() + duration / 10;
    while Instant::now() < warm_up {
        s.next().await.expect("endless").expect("an item");
    }
    let start = Instant::now();
    let mut n = 0u64;
    // The clock is read once per 256 items.
    while start.elapsed() < duration {
        for _ in 0..256 {
            let item = s.next().await.expect("endless").expect("an item");
            debug_assert_eq!(item.len(), ITEM);
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(s);
    client.shutdown().await;
    server.shutdown().await;
    rate
}

/// `-- stream`: the throughput with the default window and a larger one.
pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();
    for (scenario, window) in [("stream64", 32), ("stream64_w256", 256)] {
        r.add(
            "farcall",
            "tcp",
            scenario,
            "items_per_s",
            throughput(window, b.window).await,
        );
    }
    r.print(
        "stream: 64-byte items from a server-streaming method (one connection, one stream)",
        &[(
            "window 256 / window 32",
            "farcall.tcp.stream64_w256.items_per_s",
            "farcall.tcp.stream64.items_per_s",
        )],
    );
}
