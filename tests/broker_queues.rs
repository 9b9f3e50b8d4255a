//! The broker's queues on every backend (see `tests/broker/mod.rs`):
//! acceptance, competing consumers, nack, ack-wait, dead-lettering, FIFO;
//! a consumer that dies holding deliveries (a task, another process
//! killed): they go to another, at once where the broker sees the
//! connection end (embedded, standalone); a message over the size limit;
//! bad queue names.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod broker;
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use farcall::mme::{Broker, BrokerApi, BrokerError, DLQ_SUFFIX, Queue, QueueConfig};
use farcall::rmi::ObjectId;
use farcall::{Node, Remote};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use common::process::{Reaper, line_where_async, rerun, run_child, stdin_closed};
use common::wait::within;

use broker::*;

suite!(
    send_is_accepted,
    competing_consumers,
    nack_redelivers,
    ack_wait_redelivers,
    dead_letters_after_nacks,
    dead_letters_after_ack_waits,
    fifo,
    dying_task_consumer,
    killed_consumer_process,
    too_large,
    bad_queue_names,
    zero_prefetch_is_refused,
);

// ---------------------------------------------------------------------------
// 1. Queues
// ---------------------------------------------------------------------------

/// A long ack-wait: whatever comes back sooner came back for another
/// reason.
const FOREVER: Duration = Duration::from_secs(3600);

/// `send` returns once the broker has the message: the figures show it.
async fn send_is_accepted(backend: Backend) {
    let Some(w) = World::start(backend, "accepted").await else {
        return;
    };
    let q = w.a.queue::<String>("accepted").await.unwrap();
    q.send(&"one".to_owned()).await.unwrap();
    let s = queue_stats(&w.a, "accepted").await;
    assert_eq!((s.sent, s.depth, s.in_flight), (1, 1, 0), "{s:?}");
}

/// Two consumers (of two clients) share 100 messages: each gets some,
/// none is delivered twice, all are acknowledged.
async fn competing_consumers(backend: Backend) {
    let Some(w) = World::start(backend, "jobs").await else {
        return;
    };
    let name = "jobs";
    let qa = w.a.queue::<u64>(name).await.unwrap();
    let qb = w.b.queue::<u64>(name).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut consumers = JoinSet::new();
    for (who, q) in [(0usize, &qa), (1, &qb)] {
        let mut c = q.consume_with(8).await.unwrap();
        let tx = tx.clone();
        consumers.spawn(async move {
            while let Some(d) = c.next().await {
                let d = d.unwrap();
                d.ack().await.unwrap();
                if tx.send((who, *d.body(), d.attempt())).is_err() {
                    break;
                }
            }
        });
    }
    for i in 0..100u64 {
        qa.send(&i).await.unwrap();
    }
    let mut per = [0u32; 2];
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let (who, value, attempt) = rx.recv().await.unwrap();
        assert_eq!(attempt, 1, "message {value} delivered again");
        assert!(seen.insert(value), "message {value} delivered twice");
        per[who] += 1;
    }
    consumers.abort_all();
    assert_eq!(seen, (0..100).collect());
    assert!(per[0] > 0 && per[1] > 0, "each consumer gets some: {per:?}");
    // Acks on NATS go one way: the figures show them once the server has
    // them.
    stats_until(&w.a, name, "all acknowledged", |s| {
        (s.sent, s.acked, s.depth, s.in_flight) == (100, 100, 0, 0)
    })
    .await;
}

/// A nacked message is delivered again at once, attempt 2.
async fn nack_redelivers(backend: Backend) {
    let Some(w) = World::start(backend, "refused").await else {
        return;
    };
    let q =
        w.a.queue_with::<String>("refused", QueueConfig::default().ack_wait(FOREVER))
            .await
            .unwrap();
    q.send(&"again".to_owned()).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    assert_eq!((d.body().as_str(), d.attempt()), ("again", 1));
    d.nack().await.unwrap();
    let d = c.next().await.unwrap().unwrap();
    assert_eq!((d.body().as_str(), d.attempt()), ("again", 2));
    d.ack().await.unwrap();
    stats_until(&w.a, "refused", "redelivered once, acknowledged", |s| {
        (s.redelivered, s.acked, s.in_flight) == (1, 1, 0)
    })
    .await;
}

/// A delivery not acknowledged within the ack-wait is delivered again;
/// the late ack of the first delivery is refused.
async fn ack_wait_redelivers(backend: Backend) {
    let Some(w) = World::start(backend, "slow").await else {
        return;
    };
    let config = QueueConfig::default()
        .ack_wait(Duration::from_millis(200))
        .max_deliver(0);
    let q = w.a.queue_with::<String>("slow", config).await.unwrap();
    q.send(&"late".to_owned()).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let first = c.next().await.unwrap().unwrap();
    assert_eq!((first.body().as_str(), first.attempt()), ("late", 1));
    // Held, not acknowledged: it comes back after the ack-wait.
    let second = c.next().await.unwrap().unwrap();
    assert_eq!((second.body().as_str(), second.attempt()), ("late", 2));
    let late = first.ack().await;
    assert!(
        matches!(late, Err(BrokerError::NotInFlight { .. })),
        "{late:?}"
    );
    second.ack().await.unwrap();
}

/// After max-deliver attempts refused, the message is in `<name>.dlq`,
/// where it can be consumed; the messages after it go on.
async fn dead_letters_after_nacks(backend: Backend) {
    let Some(w) = World::start(backend, "poison").await else {
        return;
    };
    let config = QueueConfig::default().ack_wait(FOREVER).max_deliver(2);
    let q = w.a.queue_with::<String>("poison", config).await.unwrap();
    q.send(&"bad".to_owned()).await.unwrap();
    q.send(&"good".to_owned()).await.unwrap();
    let mut c = q.consume_with(1).await.unwrap();
    for attempt in 1..=2 {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!((d.body().as_str(), d.attempt()), ("bad", attempt));
        d.nack().await.unwrap();
    }
    let d = c.next().await.unwrap().unwrap();
    assert_eq!((d.body().as_str(), d.attempt()), ("good", 1));
    d.ack().await.unwrap();
    let dlq =
        w.b.queue::<String>(&format!("poison{DLQ_SUFFIX}"))
            .await
            .unwrap();
    let mut dc = dlq.consume().await.unwrap();
    let d = dc.next().await.unwrap().unwrap();
    assert_eq!((d.body().as_str(), d.attempt()), ("bad", 1));
    d.ack().await.unwrap();
    settled(&w, "poison", 1).await;
}

/// After max-deliver ack-waits run out, the message is in `<name>.dlq`
/// (on NATS: once it would be delivered again, so a consumer of the queue
/// keeps pulling, and gets nothing); the late ack of its last delivery is
/// refused.
async fn dead_letters_after_ack_waits(backend: Backend) {
    let Some(w) = World::start(backend, "stuck").await else {
        return;
    };
    let config = QueueConfig::default()
        .ack_wait(Duration::from_millis(200))
        .max_deliver(2);
    let q = w.a.queue_with::<String>("stuck", config).await.unwrap();
    q.send(&"stuck".to_owned()).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d1 = c.next().await.unwrap().unwrap();
    let d2 = c.next().await.unwrap().unwrap();
    assert_eq!((d1.attempt(), d2.attempt()), (1, 2));
    let pulling = tokio::spawn(async move {
        let more = c.next().await;
        panic!("delivered after its last attempt: {more:?}");
    });
    let dlq = w.b.queue::<String>("stuck.dlq").await.unwrap();
    let mut dc = dlq.consume().await.unwrap();
    let d = dc.next().await.unwrap().unwrap();
    assert_eq!((d.body().as_str(), d.attempt()), ("stuck", 1));
    d.ack().await.unwrap();
    settled(&w, "stuck", 1).await;
    let late = d2.ack().await;
    assert!(
        matches!(late, Err(BrokerError::NotInFlight { .. })),
        "{late:?}"
    );
    assert!(!pulling.is_finished(), "{:?}", pulling.await);
    pulling.abort();
}

/// One consumer gets the messages in the order they were sent.
async fn fifo(backend: Backend) {
    let Some(w) = World::start(backend, "ordered").await else {
        return;
    };
    let q = w.a.queue::<u64>("ordered").await.unwrap();
    for i in 0..200u64 {
        q.send(&i).await.unwrap();
    }
    let mut c = q.consume_with(16).await.unwrap();
    for want in 0..200u64 {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(*d.body(), want);
        d.ack().await.unwrap();
    }
}

// ---------------------------------------------------------------------------
// 4. A consumer that dies holding deliveries
// ---------------------------------------------------------------------------

const HOLDING: usize = 10;

/// Sends `HOLDING` messages to `queue`, made with `config`.
async fn fill_held(b: &Broker, queue: &str, config: QueueConfig) -> Queue<u64> {
    let q = b.queue_with::<u64>(queue, config).await.unwrap();
    for i in 0..HOLDING as u64 {
        q.send(&i).await.unwrap();
    }
    q
}

/// Another consumer gets the `HOLDING` messages, each on its second
/// attempt.
async fn taken_over(q: &Queue<u64>) {
    let mut c = q.consume().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..HOLDING {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(d.attempt(), 2, "message {} redelivered", d.body());
        d.ack().await.unwrap();
        got.push(*d.body());
    }
    // Every one of them, once. Their order is not promised: the queue is
    // FIFO apart from redeliveries (nats-server may give back the first
    // of a batch last).
    got.sort_unstable();
    assert_eq!(got, (0..HOLDING as u64).collect::<Vec<_>>());
}

/// A consumer task that receives `HOLDING` messages without acknowledging
/// them, says so, then waits forever.
fn holder(q: Queue<u64>) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut c = q.consume_with(HOLDING as u32).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..HOLDING {
            held.push(c.next().await.unwrap().unwrap());
        }
        let _ = tx.send(());
        std::future::pending::<()>().await;
    });
    (task, rx)
}

/// A consumer task that ends (aborted) holding deliveries: they go to
/// another consumer at once (a long ack-wait).
async fn dying_task_consumer(backend: Backend) {
    let Some(w) = World::start(backend, "held-by-task").await else {
        return;
    };
    let config = QueueConfig::default().ack_wait(FOREVER);
    let q = fill_held(&w.a, "held-by-task", config).await;
    let (task, holding) = holder(q.clone());
    holding.await.unwrap();
    task.abort();
    taken_over(&q).await;
}

/// A consumer in another process, killed holding deliveries: they go to
/// another consumer (at the latest after the ack-wait, which is short).
async fn killed_consumer_process(backend: Backend) {
    let Some(w) = World::start(backend, "held-by-process").await else {
        return;
    };
    let queue = "held-by-process";
    let config = QueueConfig::default().ack_wait(SHORT_ACK_WAIT);
    let q = fill_held(&w.a, queue, config).await;
    let mut child = consumer_process(&w.addr, queue).await;
    child.kill();
    taken_over(&q).await;
}

/// A client node whose connection is cut holding deliveries: the embedded
/// broker gives them to another consumer at once (a long ack-wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_cut_off_node_gives_back_at_once() {
    let b = Broker::embedded();
    within(30, "a node cut off", async {
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        b.expose(&server).unwrap();
        let client_node = Node::new();
        let client = Broker::connect_on(&client_node, server.local_addr().unwrap())
            .await
            .unwrap();
        let config = QueueConfig::default().ack_wait(FOREVER);
        let q = fill_held(&b, "held-by-node", config).await;
        let (task, holding) = holder(client.queue::<u64>("held-by-node").await.unwrap());
        holding.await.unwrap();
        for c in client_node.connections() {
            c.abort("the test cuts the consumer's node off");
        }
        taken_over(&q).await;
        task.abort();
    })
    .await;
}

/// A consumer process killed holding deliveries: the standalone broker
/// sees its connection end and gives them to another consumer at once (a
/// long ack-wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_killed_consumer_process_gives_back_at_once() {
    let Some(w) = World::start(Backend::Standalone, "held-at-once").await else {
        return;
    };
    within(30, "a consumer process killed", async {
        let queue = "held-at-once";
        let config = QueueConfig::default().ack_wait(FOREVER);
        let q = fill_held(&w.a, queue, config).await;
        let mut child = consumer_process(&w.addr, queue).await;
        let s = queue_stats(&w.a, queue).await;
        assert_eq!((s.in_flight, s.consumers), (HOLDING as u64, 1), "{s:?}");
        child.kill();
        taken_over(&q).await;
    })
    .await;
}

/// The broker address and queue of the consumer in another process.
const CHILD_ADDR_ENV: &str = "FARCALL_BROKER_TEST_CHILD";
const CHILD_QUEUE_ENV: &str = "FARCALL_BROKER_TEST_CHILD_QUEUE";

/// The consumer of [`consumer_process`] in another process: does nothing
/// unless started by it (the test binary runs itself as the child).
#[test]
#[ignore = "the child process of consumer_process"]
fn child_consumer() {
    let (Some(addr), Some(queue)) = (
        std::env::var_os(CHILD_ADDR_ENV),
        std::env::var_os(CHILD_QUEUE_ENV),
    ) else {
        return;
    };
    let (addr, queue) = (addr.into_string().unwrap(), queue.into_string().unwrap());
    run_child(async {
        let b = Broker::connect(addr.as_str()).await.unwrap();
        let q = b.queue::<u64>(&queue).await.unwrap();
        let mut c = q.consume_with(HOLDING as u32).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..HOLDING {
            held.push(c.next().await.unwrap().unwrap());
        }
        println!("holding {}", held.len());
        // Hold them until killed (or until the parent closes stdin).
        stdin_closed().await;
    });
}

/// This test binary run as [`child_consumer`]: a consumer of the queue
/// `queue` of the broker at `addr` in another process, once it holds
/// `HOLDING` deliveries; killed when dropped.
async fn consumer_process(addr: &str, queue: &str) -> Reaper {
    let env = [(CHILD_ADDR_ENV, addr), (CHILD_QUEUE_ENV, queue)];
    let mut child = rerun("child_consumer", &env);
    let line = line_where_async(child.stdout(), "the child holds", |line| {
        line.starts_with("holding").then(|| line.to_owned())
    })
    .await;
    assert_eq!(line, format!("holding {HOLDING}"));
    child
}

// ---------------------------------------------------------------------------
// 7. The size limit
// ---------------------------------------------------------------------------

/// The limit the embedded and standalone brokers are given (a NATS
/// client cannot set it: the server's own applies).
const LIMIT: u64 = 1024;

/// A message over the limit is refused, sent or published; the broker
/// serves on, the same client and another.
async fn too_large(backend: Backend) {
    let Some(w) = World::with_max_message(backend, "sized", Some(LIMIT)).await else {
        return;
    };
    let limit = w.a.max_message();
    if backend != Backend::Nats {
        assert_eq!(limit, LIMIT);
    }
    let over = Bytes::from(vec![7; limit as usize + 1000]);
    let q = w.a.queue::<Bytes>("sized").await.unwrap();
    let e = q.send(&over).await.unwrap_err();
    assert!(
        matches!(e, BrokerError::TooLarge { limit: l, size } if l == limit && size > limit + 1000),
        "{e:?}"
    );
    assert!(
        e.to_string().contains(&format!("limit of {limit} bytes")),
        "{e}"
    );
    let e = w.a.publish("sized", &over).await;
    assert!(matches!(e, Err(BrokerError::TooLarge { .. })), "{e:?}");
    // Right after: the same client, another client.
    q.send(&Bytes::from_static(b"small")).await.unwrap();
    let q2 = w.b.queue::<Bytes>("sized").await.unwrap();
    q2.send(&Bytes::from(vec![1; 1000])).await.unwrap();
    let mut c = q2.consume().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = c.next().await.unwrap().unwrap();
        d.ack().await.unwrap();
        got.push(d.into_body());
    }
    assert_eq!(
        got,
        [Bytes::from_static(b"small"), Bytes::from(vec![1; 1000])]
    );
}

/// The standalone broker refuses a message over its limit from a client
/// that does not check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_refuses_too_large_from_any_client() {
    let Some(w) = World::with_max_message(Backend::Standalone, "sized-raw", Some(LIMIT)).await
    else {
        return;
    };
    within(30, "too large, from the broker's API", async {
        let node = Node::new();
        let api: Remote<dyn BrokerApi> = node
            .connect(w.addr.as_str(), ObjectId::BROKER)
            .await
            .unwrap();
        let e = api
            .send("sized".into(), Bytes::from(vec![0; 5000]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                BrokerError::TooLarge {
                    size: 5000,
                    limit: LIMIT
                }
            ),
            "{e:?}"
        );
        api.send("sized".into(), Bytes::from_static(b"fine"))
            .await
            .unwrap();
        assert_eq!(queue_stats(&w.b, "sized").await.depth, 1);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 8. Queue names
// ---------------------------------------------------------------------------

const BAD_NAMES: [(&str, &str); 5] = [
    ("", "empty"),
    ("a b", "contains a space"),
    ("a..b", "empty token at position 2"),
    ("jobs.*", "wildcard"),
    ("jobs.>", "wildcard"),
];

/// Bad queue names are refused with the rule they break, by every way of
/// naming a queue; none is created.
/// A consumer with a prefetch of 0 would never receive anything: it is
/// refused, and the queue's message goes to a consumer that can hold it.
async fn zero_prefetch_is_refused(backend: Backend) {
    let Some(w) = World::start(backend, "prefetch").await else {
        return;
    };
    let q = w.a.queue::<u64>("prefetch").await.unwrap();
    let e = q.consume_with(0).await.unwrap_err();
    assert_eq!(
        e,
        BrokerError::ZeroPrefetch {
            queue: "prefetch".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "a consumer of queue \"prefetch\" with a prefetch of 0 would never receive a message: \
         ask for at least 1"
    );
    q.send(&7).await.unwrap();
    let mut c = q.consume_with(1).await.unwrap();
    let d = within(10, "the delivery", c.next()).await.unwrap().unwrap();
    assert_eq!(*d.body(), 7);
    d.ack().await.unwrap();
}

async fn bad_queue_names(backend: Backend) {
    let Some(w) = World::start(backend, "names").await else {
        return;
    };
    let b = &w.a;
    let long = "q".repeat(300);
    let cases = BAD_NAMES
        .iter()
        .map(|(n, r)| ((*n).to_owned(), *r))
        .chain([(long.clone(), "longer than 255 bytes")]);
    for (name, reason) in cases {
        let e = b.queue::<u64>(&name).await.unwrap_err();
        let BrokerError::InvalidQueueName { name: n, reason: r } = &e else {
            panic!("{name:?}: {e:?}");
        };
        assert_eq!(n, &name);
        assert!(r.contains(reason), "{name:?}: {r}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("invalid queue name {name:?}: ")) && text.contains(reason),
            "{text}"
        );
        let e = b
            .queue_with::<u64>(&name, QueueConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(e, BrokerError::InvalidQueueName { .. }), "{e:?}");
        let Err(e) = b.stub::<dyn Calc>(&name).await else {
            panic!("a stub of queue {name:?}");
        };
        assert!(matches!(e, BrokerError::InvalidQueueName { .. }), "{e:?}");
        let e = b
            .serve::<dyn Calc, _>(
                &name,
                Adder {
                    served: Arc::default(),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, BrokerError::InvalidQueueName { .. }), "{e:?}");
    }
    // None of them was created.
    assert!(b.stats().await.unwrap().queues.is_empty());
}

/// The standalone broker checks queue names too, from a client that does
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_checks_queue_names_from_any_client() {
    let Some(w) = World::start(Backend::Standalone, "names-raw").await else {
        return;
    };
    within(30, "queue names, from the broker's API", async {
        let node = Node::new();
        let api: Remote<dyn BrokerApi> = node
            .connect(w.addr.as_str(), ObjectId::BROKER)
            .await
            .unwrap();
        for (name, reason) in BAD_NAMES {
            let e = api.declare(name.to_owned(), None).await.unwrap_err();
            assert!(
                matches!(&e, BrokerError::InvalidQueueName { reason: r, .. } if r.contains(reason)),
                "{name:?}: {e:?}"
            );
            let e = api
                .send(name.to_owned(), Bytes::from_static(b"x"))
                .await
                .unwrap_err();
            assert!(
                matches!(e, BrokerError::InvalidQueueName { .. }),
                "{name:?}: {e:?}"
            );
        }
        assert!(w.a.stats().await.unwrap().queues.is_empty());
    })
    .await;
}
