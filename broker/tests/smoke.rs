//! The broker's basics, embedded and over a socket.

use std::time::Duration;

use farcall_broker::{Broker, BrokerError, QueueConfig};
use farcall_runtime::{Node, RemoteError};

#[farcall_macros::remote(crate = "::farcall_runtime")]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

struct Adder;

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl Calc for Adder {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        Ok(a + b)
    }
}

async fn exercise(b: &Broker) {
    let q = b.queue::<String>("work").await.unwrap();
    q.send(&"one".to_string()).await.unwrap();
    q.send(&"two".to_string()).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    assert_eq!(d.body(), "one");
    d.nack().await.unwrap();
    let d1 = c.next().await.unwrap().unwrap();
    let d2 = c.next().await.unwrap().unwrap();
    let mut got = vec![
        (d1.body().clone(), d1.attempt()),
        (d2.body().clone(), d2.attempt()),
    ];
    got.sort();
    assert_eq!(got, [("one".to_string(), 2), ("two".to_string(), 1)]);
    d1.ack().await.unwrap();
    d2.ack().await.unwrap();
    assert!(matches!(
        d2.ack().await,
        Err(BrokerError::NotInFlight { .. })
    ));

    let mut s = b.subscribe::<u32>("prices.*.acme").await.unwrap();
    let mut all = b.subscribe::<u32>("prices.>").await.unwrap();
    b.publish("prices.eu.acme", &1u32).await.unwrap();
    b.publish("prices.us.other", &2u32).await.unwrap();
    b.publish("prices.us.acme", &3u32).await.unwrap();
    let m = s.next().await.unwrap().unwrap();
    assert_eq!((m.subject.as_str(), m.body), ("prices.eu.acme", 1));
    let m = s.next().await.unwrap().unwrap();
    assert_eq!((m.subject.as_str(), m.body), ("prices.us.acme", 3));
    for want in [1, 2, 3] {
        assert_eq!(all.next().await.unwrap().unwrap().body, want);
    }
    assert!(matches!(
        b.publish("bad subject", &1u32).await,
        Err(BrokerError::InvalidSubject { .. })
    ));

    let _serving = b.serve::<dyn Calc, _>("calc", Adder).await.unwrap();
    let calc = b.stub::<dyn Calc>("calc").await.unwrap();
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);

    let stats = b.stats().await.unwrap();
    assert!(
        stats
            .queues
            .iter()
            .any(|q| q.name == "work" && q.acked >= 2)
    );
}

#[tokio::test]
async fn embedded() {
    let b = Broker::embedded();
    exercise(&b).await;
    assert!(matches!(
        b.queue_with::<u8>("d", QueueConfig::durable()).await,
        Err(BrokerError::NoStorage(_))
    ));
}

#[tokio::test]
async fn over_tcp() {
    let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let b = Broker::embedded();
    b.expose(&node).unwrap();
    let client = Broker::connect(node.local_addr().unwrap()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), exercise(&client))
        .await
        .unwrap();
}

/// Against a nats-server already running at `FARCALL_TEST_NATS_URL`
/// (skipped without it; the behaviour suite at the facade starts its own).
#[cfg(feature = "nats")]
#[tokio::test]
async fn over_nats() {
    let Ok(url) = std::env::var("FARCALL_TEST_NATS_URL") else {
        eprintln!("over_nats: skipped: FARCALL_TEST_NATS_URL is not set");
        return;
    };
    let b = Broker::connect(url.as_str()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), exercise(&b))
        .await
        .unwrap();
}

/// A durable queue remembers how often a message was delivered: a restart
/// does not give a poison message fresh attempts.
#[tokio::test]
async fn attempts_survive_a_restart() {
    use farcall_broker::BrokerConfig;
    let dir = std::env::temp_dir().join(format!(
        "farcall-broker-attempts-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let open = || {
        Broker::open(BrokerConfig {
            data: Some(dir.clone()),
            ..Default::default()
        })
        .unwrap()
    };
    let config = QueueConfig::durable().max_deliver(3);
    {
        let b = open();
        let q = b.queue_with::<u32>("poison", config.clone()).await.unwrap();
        q.send(&7).await.unwrap();
        let mut c = q.consume().await.unwrap();
        for attempt in 1..=2 {
            let d = c.next().await.unwrap().unwrap();
            assert_eq!(d.attempt(), attempt);
            d.nack().await.unwrap();
        }
        drop(c);
        b.close().await.unwrap();
    }
    let b = open();
    let q = b.queue_with::<u32>("poison", config).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    assert_eq!((*d.body(), d.attempt()), (7, 3));
    d.nack().await.unwrap();
    // Its last attempt: to the dead-letter queue.
    let dlq = b.queue::<u32>("poison.dlq").await.unwrap();
    let mut dc = dlq.consume().await.unwrap();
    let dead = tokio::time::timeout(Duration::from_secs(10), dc.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(*dead.body(), 7);
    dead.ack().await.unwrap();
    b.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
