//! Consumers and subscriptions as `futures_core::Stream`s, and their
//! `next()` cancel safe: a `next()` dropped while it waits loses nothing,
//! in process and over a socket. Time-outs only keep a broken build from
//! hanging; nothing asserts speed.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use farcall_broker::{Broker, BrokerError};
use farcall_runtime::Node;
use futures_core::Stream;

/// The next item of any `futures_core::Stream`, polled by hand.
async fn next_of<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    tokio::time::timeout(
        Duration::from_secs(10),
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)),
    )
    .await
    .expect("an item within 10 s")
}

/// Starts `next`, gives it time to wait, drops it.
async fn abandon<F: std::future::Future>(next: F) {
    tokio::select! {
        _ = next => panic!("nothing was sent yet"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
}

async fn queue_and_topic(b: &Broker) {
    let q = b.queue::<u32>("stream.work").await.unwrap();
    let mut c = q.consume().await.unwrap();
    // A `next()` dropped while it waits, then the message: the next
    // `next()` has it.
    abandon(c.next()).await;
    q.send(&1).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((*d.body(), d.attempt()), (1, 1));
    d.ack().await.unwrap();
    // Polled as a stream, in order.
    for n in [2, 3] {
        q.send(&n).await.unwrap();
    }
    for n in [2, 3] {
        let d = next_of(&mut c).await.unwrap().unwrap();
        assert_eq!(*d.body(), n);
        d.ack().await.unwrap();
    }

    let mut s = b.subscribe::<u32>("stream.prices.>").await.unwrap();
    abandon(s.next()).await;
    b.publish("stream.prices.eu", &7u32).await.unwrap();
    let m = next_of(&mut s).await.unwrap().unwrap();
    assert_eq!((m.subject.as_str(), m.body), ("stream.prices.eu", 7));
    b.publish("stream.prices.us", &8u32).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.body, 8);
}

#[tokio::test]
async fn in_process() {
    queue_and_topic(&Broker::embedded()).await;
}

#[tokio::test]
async fn over_tcp() {
    let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let b = Broker::embedded();
    b.expose(&node).unwrap();
    let client = Broker::connect(node.local_addr().unwrap()).await.unwrap();
    queue_and_topic(&client).await;
}

/// A message that does not decode is refused before its error comes, as
/// a stream too: it goes back to the queue and is delivered again (its
/// attempt counted) to a consumer that can read it.
#[tokio::test]
async fn a_message_that_does_not_decode_is_refused_then_reported() {
    let b = Broker::embedded();
    let raw = b.queue_raw("stream.mixed", None).await.unwrap();
    raw.send(&bytes::Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff]))
        .await
        .unwrap();
    let typed = b.queue::<u32>("stream.mixed").await.unwrap();
    let mut c = typed.consume().await.unwrap();
    let e = next_of(&mut c).await.unwrap().unwrap_err();
    assert!(matches!(e, BrokerError::Decode(_)), "{e}");
    drop(c);
    let mut again = raw.consume().await.unwrap();
    let d = next_of(&mut again).await.unwrap().unwrap();
    assert_eq!(&d.body()[..], [0xff; 5]);
    assert!(d.attempt() >= 2, "refused once at least: {}", d.attempt());
}

/// A client that publishes, closes and is cut off at once (as a program
/// that exits) loses nothing: `close` returns once the broker has it.
/// Large messages keep the connection's queue full, so that at `close`
/// the last of them still wait to be written.
#[tokio::test]
async fn what_a_client_published_before_close_reaches_the_broker() {
    const N: usize = 64;
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let b = Broker::embedded();
    b.expose(&server).unwrap();
    let mut sub = b.subscribe_raw("exit.>", Default::default()).await.unwrap();

    let node = Node::new();
    let addr = server.local_addr().unwrap();
    let client = Broker::connect_on(&node, &addr).await.unwrap();
    for n in 0..N {
        let payload = bytes::Bytes::from(vec![n as u8; 256 << 10]);
        client.publish_raw("exit.now", payload).await.unwrap();
    }
    client.close().await.unwrap();
    // No graceful close of the connection: what is still queued is lost.
    node.connection(&addr)
        .await
        .unwrap()
        .abort("the program exits");
    for n in 0..N {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("every message published before close")
            .unwrap()
            .unwrap();
        assert_eq!((m.body.len(), m.body[0]), (256 << 10, n as u8));
    }
}
