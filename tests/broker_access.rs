//! A broker exposed with per-principal permissions, over real sockets on
//! loopback: who may publish and subscribe on which subjects, send to and
//! consume from which queues; denials are `Unauthorized` naming who and
//! what, the connection goes on; an ack or nack is taken only from the
//! connection that holds the delivery.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::time::Duration;

use farcall::auth::Tokens;
use farcall::mme::{Allowed, Broker, BrokerApi, BrokerError, Permissions};
use farcall::rmi::ObjectId;
use farcall::{Node, Remote};

use common::wait::within;

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A broker on 127.0.0.1 that admits three principals by token.
async fn exposed() -> (Broker, Node) {
    let broker = Broker::embedded();
    let node = Node::builder()
        .authenticator(
            Tokens::new()
                .allow("token-of-pricing", "pricing")
                .allow("token-of-warehouse", "warehouse")
                .allow("token-of-shop", "shop"),
        )
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let permissions = Permissions::new()
        .allow(
            "pricing",
            Allowed {
                publish: list(&["prices.>"]),
                ..Allowed::default()
            },
        )
        .allow(
            "warehouse",
            Allowed {
                consume: list(&["orders"]),
                ..Allowed::default()
            },
        )
        .allow(
            "*",
            Allowed {
                subscribe: list(&["prices.>"]),
                send: list(&["orders"]),
                ..Allowed::default()
            },
        );
    broker.expose_with(&node, permissions).unwrap();
    (broker, node)
}

async fn client(node: &Node, token: &str) -> (Node, Broker) {
    let me = Node::builder().credentials(token.to_owned()).build();
    let b = Broker::connect_on(&me, node.local_addr().unwrap())
        .await
        .unwrap();
    (me, b)
}

fn assert_unauthorized<T: std::fmt::Debug>(r: Result<T, BrokerError>, expect: &str) {
    match r {
        Err(BrokerError::Unauthorized(why)) => assert_eq!(why, expect),
        other => panic!("expected Unauthorized({expect}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_and_queues_by_principal() {
    let (_broker, node) = exposed().await;
    let (_p, pricing) = client(&node, "token-of-pricing").await;
    let (_w, warehouse) = client(&node, "token-of-warehouse").await;
    let (_s, shop) = client(&node, "token-of-shop").await;

    // Everyone may subscribe to prices; only pricing may publish there.
    let mut sub = shop.subscribe::<u32>("prices.*").await.unwrap();
    assert_unauthorized(
        shop.subscribe::<u32>("orders.>").await,
        "`shop` may not subscribe to `orders.>`",
    );
    // A one-way publish that is refused is dropped; the allowed one
    // arrives, and first.
    shop.publish("prices.eu", &1u32).await.unwrap();
    shop.flush().await.unwrap();
    pricing.publish("prices.eu", &2u32).await.unwrap();
    pricing.flush().await.unwrap();
    let m = within(20, "the allowed price", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.subject.as_str(), m.body), ("prices.eu", 2));

    // Everyone may send orders; only the warehouse consumes them.
    let orders = shop.queue::<u32>("orders").await.unwrap();
    orders.send(&7).await.unwrap();
    let as_pricing = pricing.queue::<u32>("orders").await.unwrap();
    assert_unauthorized(
        as_pricing.consume().await.map(|_| ()),
        "`pricing` may not consume from `orders`",
    );
    assert_unauthorized(
        pricing.queue::<u32>("refunds").await.map(|_| ()),
        "`pricing` may not consume from `refunds`",
    );
    let mut c = warehouse
        .queue::<u32>("orders")
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    let d = within(20, "the order", c.next()).await.unwrap().unwrap();
    assert_eq!(*d.body(), 7);
    d.ack().await.unwrap();
    // The denials left every connection serving.
    orders.send(&8).await.unwrap();
    let d = within(20, "the next order", c.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*d.body(), 8);
    d.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_from_another_connection_is_refused() {
    let (_broker, node) = exposed().await;
    let (_w, warehouse) = client(&node, "token-of-warehouse").await;
    let (_s, shop) = client(&node, "token-of-shop").await;
    shop.queue::<u32>("orders")
        .await
        .unwrap()
        .send(&1)
        .await
        .unwrap();
    let mut c = warehouse
        .queue::<u32>("orders")
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    let d = within(20, "the order", c.next()).await.unwrap().unwrap();

    // Another connection, allowed to consume the queue, tries to settle
    // the delivery under every consumer id it might have.
    let thief = Node::builder()
        .credentials("token-of-warehouse".to_owned())
        .build();
    let api: Remote<dyn BrokerApi> = thief
        .connect(node.local_addr().unwrap(), ObjectId::BROKER)
        .await
        .unwrap();
    for consumer in 0..8 {
        for settle in [true, false] {
            let r = if settle {
                api.ack("orders".into(), consumer, d.tag()).await
            } else {
                api.nack("orders".into(), consumer, d.tag()).await
            };
            assert!(
                matches!(r, Err(BrokerError::NotInFlight { .. })),
                "consumer {consumer}: {r:?}"
            );
        }
    }
    // The holder settles it; nothing comes again.
    d.ack().await.unwrap();
    let again = tokio::time::timeout(Duration::from_millis(300), c.next()).await;
    assert!(
        again.is_err(),
        "the acknowledged order came again: {again:?}"
    );
}
