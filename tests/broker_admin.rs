//! Queue administration on every backend (see `tests/broker/mod.rs`):
//! listing and describing queues, a look at their messages that changes
//! nothing, purging, deleting (a durable queue stays gone after a
//! restart), moving messages (a dead-letter queue replayed), consumers
//! that take exactly N messages and leave the next untouched, and
//! operations that never create a queue (a missing one is `NoSuchQueue`,
//! naming it).
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod broker;
mod common;

use std::time::Duration;

use bytes::Bytes;
use farcall::mme::{Broker, BrokerError, PeekedMessage, QueueConfig, QueueInfo};

use common::wait::{until, within};

use broker::*;

suite!(
    list_and_describe,
    peek_changes_nothing,
    purge_empties_a_queue,
    delete_removes_a_queue,
    move_replays_dead_letters,
    consume_up_to_takes_exactly,
    missing_queues_are_never_created,
);

/// A long ack-wait: whatever comes back sooner came back for another
/// reason.
const FOREVER: Duration = Duration::from_secs(3600);

fn no_such(name: &str) -> BrokerError {
    BrokerError::NoSuchQueue { name: name.into() }
}

/// The description of `name`.
async fn info(b: &Broker, name: &str) -> QueueInfo {
    b.queue_info(name).await.unwrap()
}

/// Waits until `name`'s description satisfies `ok` (acks go one way on
/// NATS, and a consumer dropped over a connection gives back what it held
/// once the broker sees its stream end).
async fn info_until(b: &Broker, name: &str, what: &str, ok: impl Fn(&QueueInfo) -> bool) {
    until(30, what, || async { ok(&info(b, name).await) }).await
}

/// A payload of a raw queue as text.
fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("text")
}

/// `queues` lists every queue by name with its configuration and
/// contents; `queue_info` describes one.
async fn list_and_describe(backend: Backend) {
    let Some(w) = World::start(backend, "listed").await else {
        return;
    };
    let config = QueueConfig::durable()
        .ack_wait(FOREVER)
        .max_deliver(3)
        .max_depth(50);
    let jobs = w.a.queue_with::<u32>("jobs", config.clone()).await.unwrap();
    w.a.queue::<u32>("alerts").await.unwrap();
    jobs.send(&1).await.unwrap();
    jobs.send(&2).await.unwrap();

    let all = w.b.queues().await.unwrap();
    let names: Vec<&str> = all.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["alerts", "jobs"], "{all:?}");
    let (alerts, listed) = (&all[0], &all[1]);
    assert_eq!(alerts.config, QueueConfig::default());
    assert_eq!((alerts.depth, alerts.in_flight), (0, 0));
    assert_eq!(alerts.oldest_age, None, "an empty queue has no oldest");
    assert_eq!(listed.config, config);
    assert_eq!((listed.depth, listed.in_flight), (2, 0));
    assert!(listed.oldest_age.is_some(), "{listed:?}");

    // One delivered and held: in flight.
    let mut c = jobs.consume_with(1).await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    assert_eq!(*d, 1);
    info_until(&w.b, "jobs", "one in flight", |i| {
        (i.depth, i.in_flight) == (1, 1)
    })
    .await;
    if backend.counts_all() {
        assert_eq!(info(&w.b, "jobs").await.consumers, 1);
    }
    d.ack().await.unwrap();
    drop(c);

    assert_eq!(w.b.queue_info("nowhere").await, Err(no_such("nowhere")));
    assert_eq!(
        no_such("nowhere").to_string(),
        "queue \"nowhere\" does not exist"
    );
}

/// A peek shows the messages oldest first and changes nothing: peeked
/// twice, they are the same; delivered after, each is on its first
/// attempt.
async fn peek_changes_nothing(backend: Backend) {
    let Some(w) = World::start(backend, "peeked").await else {
        return;
    };
    let config = QueueConfig::default().ack_wait(FOREVER);
    let q = w.a.queue_raw("peeked", Some(config)).await.unwrap();
    for s in ["one", "two", "three"] {
        q.send(&Bytes::from(s)).await.unwrap();
    }
    let first = w.b.peek_queue("peeked", 2).await.unwrap();
    let bodies: Vec<&str> = first.iter().map(|m| text(&m.payload)).collect();
    assert_eq!(bodies, ["one", "two"]);
    assert!(first.iter().all(|m| m.attempts == Some(0)), "{first:?}");
    assert!(first.iter().all(|m| m.age.is_some()), "{first:?}");
    let again = w.b.peek_queue("peeked", 10).await.unwrap();
    assert_eq!(again.len(), 3);
    let same =
        |a: &PeekedMessage, b: &PeekedMessage| (a.attempts, &a.payload) == (b.attempts, &b.payload);
    assert!(
        again.iter().zip(&first).all(|(a, b)| same(a, b)),
        "{again:?}"
    );
    assert_eq!(text(&again[2].payload), "three");
    let i = info(&w.a, "peeked").await;
    assert_eq!((i.depth, i.in_flight), (3, 0), "{i:?}");

    let mut c = q.consume_with(3).await.unwrap();
    for want in ["one", "two", "three"] {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!((text(d.body()), d.attempt()), (want, 1));
        if want != "one" {
            d.ack().await.unwrap();
        }
    }
    // "one" is given back unacknowledged: delivered once. Farcall's
    // broker counts it; NATS cannot tell (and counts it in flight until
    // it is delivered again).
    drop(c);
    info_until(&w.a, "peeked", "one given back", |i| match backend {
        Backend::Nats => i.depth + i.in_flight == 1,
        _ => (i.depth, i.in_flight) == (1, 0),
    })
    .await;
    let back = w.b.peek_queue("peeked", 10).await.unwrap();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(text(&back[0].payload), "one");
    let told = if backend == Backend::Nats {
        None
    } else {
        Some(1)
    };
    assert_eq!(back[0].attempts, told);

    assert_eq!(w.b.peek_queue("nowhere", 1).await, Err(no_such("nowhere")));
}

/// A purge removes every message and says how many; the queue stays, with
/// its configuration.
async fn purge_empties_a_queue(backend: Backend) {
    let Some(w) = World::start(backend, "purged").await else {
        return;
    };
    let config = QueueConfig::default().max_deliver(2);
    let q =
        w.a.queue_with::<u32>("purged", config.clone())
            .await
            .unwrap();
    for n in 0..3 {
        q.send(&n).await.unwrap();
    }
    assert_eq!(w.b.purge_queue("purged").await, Ok(3));
    let i = info(&w.b, "purged").await;
    assert_eq!((i.depth, i.in_flight, i.oldest_age), (0, 0, None), "{i:?}");
    assert_eq!(i.config, config);
    assert_eq!(w.b.peek_queue("purged", 10).await, Ok(vec![]));
    q.send(&7).await.unwrap();
    let mut c = q.consume().await.unwrap();
    assert_eq!(*c.next().await.unwrap().unwrap(), 7);
    assert_eq!(w.b.purge_queue("nowhere").await, Err(no_such("nowhere")));
}

/// A deleted queue is gone, its configuration with it, and stays gone
/// after the broker restarts (a durable one); asked for again, it is new.
async fn delete_removes_a_queue(backend: Backend) {
    let Some(mut w) = World::start(backend, "deleted").await else {
        return;
    };
    let q =
        w.a.queue_with::<u32>("kept", QueueConfig::durable())
            .await
            .unwrap();
    q.send(&1).await.unwrap();
    let other =
        w.a.queue_with::<u32>("other", QueueConfig::durable())
            .await
            .unwrap();
    other.send(&2).await.unwrap();
    let mut consumer = q.consume_up_to(2).await.unwrap();
    let held = consumer.next().await.unwrap().unwrap();
    assert_eq!(*held, 1);
    w.b.delete_queue("kept").await.unwrap();
    // Its consumer ends: no more deliveries (on NATS, `NoSuchQueue`
    // first).
    let end = match within(30, "the end of the consumer", consumer.next()).await {
        None => None,
        Some(Err(e)) => Some(e),
        Some(Ok(d)) => panic!("a delivery from a deleted queue: {:?}", *d),
    };
    let told = (backend == Backend::Nats).then(|| no_such("kept"));
    assert_eq!(end, told);
    assert_eq!(w.b.queue_info("kept").await, Err(no_such("kept")));
    let names: Vec<String> =
        w.b.queues()
            .await
            .unwrap()
            .into_iter()
            .map(|q| q.name)
            .collect();
    assert_eq!(names, ["other"]);
    assert_eq!(w.b.delete_queue("kept").await, Err(no_such("kept")));

    w.stop().await;
    w.open().await;
    assert_eq!(w.a.queue_info("kept").await, Err(no_such("kept")));
    assert_eq!(info(&w.a, "other").await.depth, 1);
    // Asked for again, from a client that knew it: a new queue, with
    // another configuration if need be, empty.
    let again =
        w.a.queue_with::<u32>("kept", QueueConfig::default().max_deliver(1))
            .await
            .unwrap();
    let i = info(&w.b, "kept").await;
    assert_eq!((i.depth, i.config.max_deliver), (0, 1), "{i:?}");
    again.send(&3).await.unwrap();
    assert_eq!(info(&w.b, "kept").await.depth, 1);
}

/// The dead letters of a queue, moved back to it, are delivered again
/// from their first attempt, in order; `max` moves no more than that; a
/// missing target is named.
async fn move_replays_dead_letters(backend: Backend) {
    let Some(w) = World::start(backend, "replayed").await else {
        return;
    };
    let config = QueueConfig::default().ack_wait(FOREVER).max_deliver(1);
    let q = w.a.queue_with::<u32>("orders", config).await.unwrap();
    for n in 1..=3 {
        q.send(&n).await.unwrap();
    }
    {
        let mut c = q.consume_with(1).await.unwrap();
        for n in 1..=3 {
            let d = c.next().await.unwrap().unwrap();
            assert_eq!((*d, d.attempt()), (n, 1));
            // Its last attempt: to orders.dlq.
            d.nack().await.unwrap();
        }
    }
    info_until(&w.a, "orders.dlq", "three dead letters", |i| i.depth == 3).await;
    assert_eq!(info(&w.a, "orders").await.depth, 0);

    assert_eq!(
        w.b.move_messages("orders.dlq", "orders", Some(2)).await,
        Ok(2)
    );
    assert_eq!(w.b.move_messages("orders.dlq", "orders", None).await, Ok(1));
    assert_eq!(w.b.move_messages("orders.dlq", "orders", None).await, Ok(0));
    info_until(&w.a, "orders.dlq", "the dead letters gone", |i| {
        (i.depth, i.in_flight) == (0, 0)
    })
    .await;
    let mut c = q.consume_with(3).await.unwrap();
    for n in 1..=3 {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!((*d, d.attempt()), (n, 1), "replayed from the first attempt");
        d.ack().await.unwrap();
    }

    assert_eq!(
        w.b.move_messages("orders.dlq", "nowhere", None).await,
        Err(no_such("nowhere"))
    );
    assert_eq!(
        w.b.move_messages("nowhere", "orders", None).await,
        Err(no_such("nowhere"))
    );
    let to_itself = w.b.move_messages("orders", "orders", None).await;
    assert!(
        matches!(&to_itself, Err(BrokerError::Rejected(why)) if why.contains("itself")),
        "{to_itself:?}"
    );
}

/// A consumer that wants 2 of 3 messages gets 2 and ends; the third is
/// never delivered (its attempts stay 0), and comes first to the next
/// consumer. Without acks, the two held go back when it goes.
async fn consume_up_to_takes_exactly(backend: Backend) {
    let Some(w) = World::start(backend, "exactly").await else {
        return;
    };
    let q =
        w.a.queue_with::<u32>("exactly", QueueConfig::default().ack_wait(FOREVER))
            .await
            .unwrap();
    for n in 1..=3 {
        q.send(&n).await.unwrap();
    }
    let mut two = q.consume_up_to(2).await.unwrap();
    for n in 1..=2 {
        let d = two.next().await.unwrap().unwrap();
        assert_eq!((*d, d.attempt()), (n, 1));
        d.ack().await.unwrap();
    }
    assert!(two.next().await.is_none(), "it ends after its two");
    info_until(&w.b, "exactly", "two acknowledged", |i| {
        (i.depth, i.in_flight) == (1, 0)
    })
    .await;
    let left = w.b.peek_queue("exactly", 10).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    // 3, in postcard.
    assert_eq!(&left[0].payload[..], [3]);
    assert_eq!(left[0].attempts, Some(0), "never delivered");
    drop(two);

    // Held without acks, then given back: delivered again, attempt 2.
    q.send(&4).await.unwrap();
    let mut held = q.consume_up_to(2).await.unwrap();
    let a = held.next().await.unwrap().unwrap();
    let b = held.next().await.unwrap().unwrap();
    assert_eq!((*a, *b), (3, 4));
    drop((a, b, held));
    let c = w.b.existing_queue::<u32>("exactly").await.unwrap();
    assert_eq!(c.name(), "exactly");
    let mut one = c.consume_up_to(1).await.unwrap();
    let d = one.next().await.unwrap().unwrap();
    assert_eq!((*d, d.attempt()), (3, 2));
    d.ack().await.unwrap();

    let zero = q.consume_up_to(0).await.err();
    assert!(
        matches!(zero, Some(BrokerError::ZeroPrefetch { .. })),
        "{zero:?}"
    );
}

/// Looking, receiving with `consume_up_to` and administering never create
/// a queue.
async fn missing_queues_are_never_created(backend: Backend) {
    let Some(w) = World::start(backend, "missing").await else {
        return;
    };
    let e = w.a.existing_queue::<u32>("ghost").await.err();
    assert_eq!(e, Some(no_such("ghost")));
    let e = w.a.existing_queue_raw("ghost").await.err();
    assert_eq!(e, Some(no_such("ghost")));
    // A handle from before the queue was deleted.
    let q = w.a.queue::<u32>("ghost").await.unwrap();
    w.b.delete_queue("ghost").await.unwrap();
    let e = q.consume_up_to(1).await.err();
    assert_eq!(e, Some(no_such("ghost")));
    assert_eq!(w.b.peek_queue("ghost", 1).await, Err(no_such("ghost")));
    assert_eq!(w.b.purge_queue("ghost").await, Err(no_such("ghost")));
    assert_eq!(w.b.queues().await.unwrap(), vec![]);
    // Bad names are still bad names.
    let e = w.a.queue_info("bad name").await.err();
    assert!(
        matches!(e, Some(BrokerError::InvalidQueueName { .. })),
        "{e:?}"
    );
}
