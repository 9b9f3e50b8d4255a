//! The broker (`farcall::mme`) through the facade: one behaviour suite run
//! against every backend, so that no feature works on one and silently not
//! on another:
//!
//! - `embedded`: a broker in this process (with a data directory, exposed
//!   on a listening node so that other processes reach it);
//! - `standalone`: `farcall broker serve` started as a real subprocess;
//! - `nats`: a nats-server started for the test, reached with
//!   `Broker::connect("nats://…")` (skipped with one loud line without
//!   nats-server, unless `FARCALL_REQUIRE_NATS=1`).
//!
//! Every behaviour is one `async fn` taking the [`Backend`]; `suite!` makes
//! one `#[tokio::test]` per behaviour and backend (`fifo::embedded`,
//! `fifo::standalone`, `fifo::nats`, ...). Each test has a broker of its
//! own (a fresh broker, process or nats-server), so names never collide.
//!
//! 1. queues: acceptance, competing consumers, nack, ack-wait,
//!    dead-lettering, FIFO;
//! 2. durability: a durable queue across a restart of the broker (the
//!    standalone broker killed with kill -9, nats-server killed and started
//!    on its JetStream store); segments reclaimed once acknowledged
//!    (embedded only: the command does not set the segment size);
//! 3. the fault test, standalone only: kill -9 of the broker during 10,000
//!    confirmed sends (default fsync, and `--fsync always`), no confirmed
//!    message lost (run with `--nocapture` for the figures);
//! 4. a consumer that dies holding deliveries (a task, another process
//!    killed): they go to another; where the broker sees the connection
//!    end (embedded, standalone) at once, which has a test of its own;
//! 5. topics: fan-out, wildcards, bad subjects and patterns, slow
//!    subscribers dropped from or cut off;
//! 6. mediated RPC: load sharing, a call waiting for a server, a call
//!    whose deadline passes;
//! 7. a message over the size limit;
//! 8. bad queue names.
//!
//! Where NATS differs by design (the README's "Beyond one machine"), the
//! behaviour is written to hold on every backend, never skipped on one:
//!
//! - a consumer that dies without closing (a process killed, a connection
//!   cut, the server stopped) gives its deliveries back after the
//!   ack-wait, not at once ([`Backend::gives_back_at_once`]): those
//!   behaviours use a short ack-wait on every backend, and after a restart
//!   the messages held come after the one never delivered;
//! - a message out of attempts by ack-wait (not by nack) moves to
//!   `<name>.dlq` when it would next be delivered, that is while a
//!   consumer of the queue is pulling: the behaviour keeps one pulling;
//! - the figures of a broker on NATS hold queues only (depth, in flight,
//!   redelivered): what else is counted is asserted where the backend
//!   counts it ([`Backend::counts_all`]), and drops are read from the
//!   subscription, which counts them on every backend;
//! - acks on NATS go one way (the server confirms none; not in the
//!   README's list): the figures after an ack are awaited, on every
//!   backend.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use farcall::mme::{
    Broker, BrokerApi, BrokerConfig, BrokerError, DLQ_SUFFIX, Queue, QueueConfig, QueueStats,
    SlowPolicy, SubscribeOptions, Subscription,
};
use farcall::rmi::ObjectId;
use farcall::{Node, Remote, RemoteError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use common::nats::NatsServer;
use common::process::{BIN, Reaper, Served, line_where_async, rerun, run_child, stdin_closed};
use common::temp_dir::TempDir;
use common::wait::within;

/// A calculator, served through a broker queue.
#[farcall::remote]
pub trait Calc {
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

/// Adds, counting the calls it served.
struct Adder {
    served: Arc<AtomicU64>,
}

#[farcall::remote]
impl Calc for Adder {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        self.served.fetch_add(1, Ordering::SeqCst);
        Ok(a + b)
    }
}

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// Where the broker of a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// In this process.
    Embedded,
    /// A `farcall broker serve` subprocess.
    Standalone,
    /// A nats-server subprocess.
    Nats,
}

impl Backend {
    /// Whether the broker's figures count more than a queue's depth,
    /// in-flight and redelivered messages: dead letters, consumers, log
    /// segments, subscriptions and drops. Not on NATS, whose streams and
    /// consumers do not keep them.
    fn counts_all(self) -> bool {
        self != Backend::Nats
    }

    /// Whether a consumer that dies without closing (a process killed, a
    /// connection cut, the broker stopped) gives its deliveries back at
    /// once: the broker sees its connection end. On NATS they come back
    /// when their ack-wait runs out.
    fn gives_back_at_once(self) -> bool {
        self != Backend::Nats
    }
}

/// The broker of one test, and two clients of it; everything it started
/// stops when it is dropped.
struct World {
    backend: Backend,
    /// A client (embedded: the broker).
    a: Broker,
    /// Another client (embedded: another handle of the broker).
    b: Broker,
    /// Where another process reaches the broker.
    addr: String,
    /// How the broker was configured (embedded, standalone).
    max_message: Option<u64>,
    /// Embedded: the node the broker is exposed on.
    node: Option<Node>,
    process: Option<Served>,
    nats: Option<NatsServer>,
    /// Whether [`World::stop`] stopped it.
    stopped: bool,
    data: TempDir,
}

impl World {
    /// A broker with the default configuration for the test `name`.
    /// `None` when the backend cannot run here (NATS without nats-server:
    /// already said, loudly).
    async fn start(backend: Backend, name: &str) -> Option<World> {
        World::with_max_message(backend, name, None).await
    }

    /// A broker taking messages of at most `max_message` bytes (NATS: the
    /// server's own limit, which a client cannot set).
    async fn with_max_message(
        backend: Backend,
        name: &str,
        max_message: Option<u64>,
    ) -> Option<World> {
        let data = TempDir::new(&format!("broker-{name}-{backend:?}"));
        let nats = match backend {
            Backend::Nats => Some(
                tokio::task::spawn_blocking(NatsServer::start)
                    .await
                    .unwrap()?,
            ),
            _ => None,
        };
        let mut world = World {
            backend,
            a: Broker::embedded(),
            b: Broker::embedded(),
            addr: String::new(),
            max_message,
            node: None,
            process: None,
            nats,
            stopped: false,
            data,
        };
        world.open().await;
        Some(world)
    }

    /// Starts (again, after [`World::stop`]) what the backend needs on
    /// the world's data, and connects the clients.
    async fn open(&mut self) {
        match self.backend {
            Backend::Embedded => {
                let mut config = BrokerConfig {
                    data: Some(self.data.path().to_owned()),
                    ..BrokerConfig::default()
                };
                if let Some(max) = self.max_message {
                    config.max_message = max;
                }
                let broker = Broker::open(config).unwrap();
                let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
                broker.expose(&node).unwrap();
                self.addr = node.local_addr().unwrap().to_string();
                self.node = Some(node);
                self.b = broker.clone();
                self.a = broker;
            }
            Backend::Standalone => {
                let max = self.max_message.map(|m| m.to_string());
                let more: Vec<&str> = match &max {
                    Some(m) => vec!["--max-message", m],
                    None => vec![],
                };
                let process = broker_process(self.data.path(), &more).await;
                self.addr = process.addr.clone();
                self.a = connect(&process.addr).await;
                self.b = connect(&process.addr).await;
                self.process = Some(process);
            }
            Backend::Nats => {
                if self.stopped {
                    let mut nats = self.nats.take().unwrap();
                    nats = tokio::task::spawn_blocking(move || {
                        nats.restart();
                        nats
                    })
                    .await
                    .unwrap();
                    self.nats = Some(nats);
                }
                self.addr = self.nats.as_ref().unwrap().url();
                self.a = connect(&self.addr).await;
                self.b = connect(&self.addr).await;
            }
        }
        self.stopped = false;
    }

    /// Stops the broker as abruptly as the backend allows, its data kept:
    /// the standalone broker is killed (SIGKILL), and so is nats-server;
    /// the embedded broker is closed. [`World::open`] starts it again (for
    /// NATS: on the same port and JetStream store).
    async fn stop(&mut self) {
        match self.backend {
            Backend::Embedded => {
                self.a.close().await.unwrap();
                self.node = None;
            }
            Backend::Standalone => self.process.as_mut().unwrap().kill(),
            Backend::Nats => self.nats.as_mut().unwrap().kill(),
        }
        self.stopped = true;
    }
}

/// A client of the broker at `addr`.
async fn connect(addr: &str) -> Broker {
    within(20, "connecting to the broker", Broker::connect(addr))
        .await
        .expect("the broker answers")
}

/// One `#[tokio::test]` per behaviour and backend: `<behaviour>::embedded`,
/// `<behaviour>::standalone`, `<behaviour>::nats`.
macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        $(
            mod $behaviour {
                suite!(@test $behaviour, embedded, Embedded);
                suite!(@test $behaviour, standalone, Standalone);
                #[cfg(feature = "nats")]
                suite!(@test $behaviour, nats, Nats);
            }
        )*
    };
    (@test $behaviour:ident, $test:ident, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            super::within(
                60,
                concat!(stringify!($behaviour), ", ", stringify!($test)),
                super::$behaviour(super::Backend::$backend),
            )
            .await;
        }
    };
}

suite!(
    send_is_accepted,
    competing_consumers,
    nack_redelivers,
    ack_wait_redelivers,
    dead_letters_after_nacks,
    dead_letters_after_ack_waits,
    fifo,
    durable_queue_survives_restart,
    dying_task_consumer,
    killed_consumer_process,
    fan_out,
    bad_subjects,
    slow_drop_oldest,
    slow_disconnect,
    mediated_rpc,
    too_large,
    bad_queue_names,
);

/// `farcall broker serve` on a free port with `data` (and `more`
/// arguments), killed (SIGKILL) when dropped.
async fn broker_process(data: &Path, more: &[&str]) -> Served {
    let process = Served::start(
        Command::new(BIN)
            .args(["broker", "serve", "--listen", "tcp://127.0.0.1:0", "--data"])
            .arg(data)
            .args(more),
    )
    .await;
    let addr = &process.addr;
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
    process
}

/// The figures of queue `name`.
async fn queue_stats(b: &Broker, name: &str) -> QueueStats {
    b.stats()
        .await
        .unwrap()
        .queues
        .into_iter()
        .find(|q| q.name == name)
        .unwrap_or_else(|| panic!("no queue {name:?} in the stats"))
}

/// Waits (polling) until queue `name`'s figures satisfy `ok`; panics
/// with the last figures after 30 s.
async fn stats_until(b: &Broker, name: &str, what: &str, ok: impl Fn(&QueueStats) -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = queue_stats(b, name).await;
        if ok(&s) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what}: not within 30 s: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until queue `name` holds nothing (none waiting, none in flight)
/// and, where the backend counts them, has `dead` messages dead-lettered.
async fn settled(w: &World, name: &str, dead: u64) {
    let counts = w.backend.counts_all();
    stats_until(&w.a, name, &format!("{name} settled"), |s| {
        s.depth == 0 && s.in_flight == 0 && (!counts || s.dead_lettered == dead)
    })
    .await
}

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
// 2. Durability
// ---------------------------------------------------------------------------

/// The ack-wait of queues whose consumer dies without closing: short, as
/// on NATS its deliveries come back only once it runs out; long enough
/// that they do not come back before the consumer dies.
const SHORT_ACK_WAIT: Duration = Duration::from_secs(2);

/// Reads `n` deliveries, acknowledging each; their bodies.
async fn drain(q: &Queue<u64>, n: usize) -> Vec<u64> {
    let mut c = q.consume_with(256).await.unwrap();
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let d = c.next().await.expect("the queue ends early").unwrap();
        d.ack().await.unwrap();
        got.push(*d.body());
    }
    got
}

/// 100 messages sent to a durable queue, all delivered, 40 acknowledged,
/// one more sent; the broker stops (killed, where it is a process) with
/// the other 60 in flight, and starts again on its data: the 61 not
/// acknowledged are delivered again, in order, and no other.
async fn durable_queue_survives_restart(backend: Backend) {
    let Some(mut w) = World::start(backend, "durable").await else {
        return;
    };
    let config = QueueConfig::durable().ack_wait(SHORT_ACK_WAIT);
    let q =
        w.a.queue_with::<u64>("orders", config.clone())
            .await
            .unwrap();
    for i in 0..100u64 {
        q.send(&i).await.unwrap();
    }
    let mut c = q.consume_with(100).await.unwrap();
    let mut held = Vec::new();
    for want in 0..100u64 {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(*d.body(), want);
        held.push(d);
    }
    for d in &held[..40] {
        d.ack().await.unwrap();
    }
    // The log writes in order: once a later message is confirmed, the
    // acks before it are written too.
    q.send(&1000).await.unwrap();
    let before = queue_stats(&w.a, "orders").await;
    assert!(before.durable, "{before:?}");
    if backend.counts_all() {
        assert!(before.segments >= 1, "{before:?}");
    }
    w.stop().await;
    // The consumer goes with the broker (on NATS, a client left behind
    // would reconnect and pull from the restarted server).
    drop((held, c, q));
    w.open().await;

    let after = queue_stats(&w.a, "orders").await;
    assert!(after.durable, "{after:?}");
    let want: Vec<u64> = (40..100).chain([1000]).collect();
    let q = w.a.queue_with::<u64>("orders", config).await.unwrap();
    if backend.gives_back_at_once() {
        assert_eq!((after.depth, after.in_flight), (61, 0), "{after:?}");
        let got = drain(&q, 61).await;
        assert_eq!(got, want, "the unacknowledged messages, in order");
    } else {
        // Those in flight when the server died come back after their
        // ack-wait, so possibly after the one never delivered.
        assert_eq!(after.depth + after.in_flight, 61, "{after:?}");
        let got = drain(&q, 61).await;
        let held_back: Vec<u64> = got.iter().copied().filter(|&v| v != 1000).collect();
        assert_eq!(
            held_back,
            want[..60],
            "the unacknowledged messages, in order"
        );
        assert_eq!(got.len(), 61, "and the one sent last: {got:?}");
    }
    settled(&w, "orders", 0).await;
}

/// Segments whose messages are all acknowledged are deleted (embedded
/// only: `farcall broker serve` does not set the segment size, and NATS
/// keeps its own store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reclaims_acknowledged_segments() {
    let data = TempDir::new("broker-reclaim");
    let b = Broker::open(BrokerConfig {
        data: Some(data.path().to_owned()),
        segment_bytes: 1024,
        ..BrokerConfig::default()
    })
    .unwrap();
    within(30, "segments reclaimed", async {
        let q = b
            .queue_with::<Bytes>("big", QueueConfig::durable())
            .await
            .unwrap();
        for i in 0..100u8 {
            q.send(&Bytes::from(vec![i; 200])).await.unwrap();
        }
        let full = queue_stats(&b, "big").await;
        assert!(full.segments > 10, "{full:?}");
        let mut c = q.consume_with(100).await.unwrap();
        for _ in 0..100 {
            c.next().await.unwrap().unwrap().ack().await.unwrap();
        }
        // Acks are written with the writer's next batch.
        q.send(&Bytes::from_static(b"last")).await.unwrap();
        // Everything but the last message acknowledged: at most the
        // segment of the last message and the active one are left.
        stats_until(&b, "big", "segments reclaimed", |s| {
            s.segments <= 2 && s.log_bytes < full.log_bytes
        })
        .await;
        let left = queue_stats(&b, "big").await;
        eprintln!(
            "reclaimed: {} segments ({} bytes) -> {} segments ({} bytes)",
            full.segments, full.log_bytes, left.segments, left.log_bytes
        );
    })
    .await;
    b.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// 3. The fault test, standalone: kill -9 during confirmed sends
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_kill_9_during_confirmed_sends() {
    within(
        60,
        "kill -9 during sends",
        kill_9_during_sends("kill9", &[]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_kill_9_during_confirmed_sends_fsync_always() {
    within(
        60,
        "kill -9 during sends, fsync always",
        kill_9_during_sends("kill9-always", &["--fsync", "always"]),
    )
    .await;
}

/// Up to 10,000 sends of 0, 1, 2, ... to a durable queue, one at a time;
/// the broker (started with `more`) is killed after 3,000 to 5,000 of them
/// are confirmed, then started again on its data: every confirmed message
/// is there.
async fn kill_9_during_sends(name: &str, more: &[&str]) {
    let data = TempDir::new(&format!("broker-{name}"));
    let mut p = broker_process(data.path(), more).await;
    let b = connect(&p.addr).await;
    let q = b
        .queue_with::<u64>("ledger", QueueConfig::durable())
        .await
        .unwrap();
    // Somewhere between 3,000 and 5,000 confirmations.
    let kill_at = 3_000
        + u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        ) % 2_000;
    let count = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn({
        let count = count.clone();
        async move {
            let mut confirmed = Vec::new();
            let mut attempted = 0u64;
            let mut failure = None;
            for i in 0..10_000u64 {
                attempted += 1;
                match q.send(&i).await {
                    Ok(()) => {
                        confirmed.push(i);
                        count.store(confirmed.len() as u64, Ordering::SeqCst);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            (confirmed, attempted, failure)
        }
    });
    while count.load(Ordering::SeqCst) < kill_at {
        assert!(!sender.is_finished(), "the sender stopped early");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    p.kill();
    let (confirmed, attempted, failure) = sender.await.unwrap();
    assert!(
        failure.is_some(),
        "sends go on failing once the broker is dead"
    );

    let p = broker_process(data.path(), more).await;
    let b = connect(&p.addr).await;
    let back = queue_stats(&b, "ledger").await;
    let q = b
        .queue_with::<u64>("ledger", QueueConfig::durable())
        .await
        .unwrap();
    let delivered = drain(&q, back.depth as usize).await;
    let unique: BTreeSet<u64> = delivered.iter().copied().collect();
    let duplicates = delivered.len() - unique.len();
    let lost: Vec<u64> = confirmed
        .iter()
        .copied()
        .filter(|v| !unique.contains(v))
        .collect();
    let unconfirmed = unique.len() - (confirmed.len() - lost.len());
    eprintln!(
        "kill -9 ({name}) after {} confirmations: attempted {attempted}, confirmed {}, \
         delivered after restart {} ({} distinct), duplicates {duplicates}, \
         unconfirmed but delivered {unconfirmed}, lost {}; the failed send: {:?}",
        kill_at,
        confirmed.len(),
        delivered.len(),
        unique.len(),
        lost.len(),
        failure,
    );
    assert!(lost.is_empty(), "confirmed messages lost: {lost:?}");
    assert!(
        unique.iter().all(|&v| v < attempted),
        "only messages that were sent"
    );
    let s = queue_stats(&b, "ledger").await;
    assert_eq!((s.depth, s.in_flight), (0, 0), "{s:?}");
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
// 5. Topics
// ---------------------------------------------------------------------------

/// Reads `sub` until `last`; the (subject, body) pairs read.
async fn read_until(sub: &mut Subscription<u32>, last: u32) -> Vec<(String, u32)> {
    let mut got = Vec::new();
    loop {
        let m = sub.next().await.expect("the subscription ends").unwrap();
        let done = m.body == last;
        got.push((m.subject, m.body));
        if done {
            return got;
        }
    }
}

/// Every subscription whose pattern matches gets the message.
async fn fan_out(backend: Backend) {
    let Some(w) = World::start(backend, "fan-out").await else {
        return;
    };
    let b = &w.a;
    let mut one = b.subscribe::<u32>("a.*").await.unwrap();
    let mut all = b.subscribe::<u32>("a.>").await.unwrap();
    let mut exact = w.b.subscribe::<u32>("a.b").await.unwrap();
    b.publish("a.c", &1u32).await.unwrap();
    b.publish("a.b.c", &2u32).await.unwrap();
    b.publish("b.a", &3u32).await.unwrap();
    b.publish("a", &4u32).await.unwrap();
    b.topic::<u32>("a.b").unwrap().publish(&5).await.unwrap();
    let pairs = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
        v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    assert_eq!(
        read_until(&mut one, 5).await,
        pairs(&[("a.c", 1), ("a.b", 5)])
    );
    assert_eq!(
        read_until(&mut all, 5).await,
        pairs(&[("a.c", 1), ("a.b.c", 2), ("a.b", 5)])
    );
    assert_eq!(read_until(&mut exact, 5).await, pairs(&[("a.b", 5)]));
}

/// Bad subjects and patterns are refused with the rule they break.
async fn bad_subjects(backend: Backend) {
    let Some(w) = World::start(backend, "subjects").await else {
        return;
    };
    let b = &w.a;
    for subject in ["", "a..b", "a b", "a.*", "a.>", ".a"] {
        let e = b.publish(subject, &1u32).await.unwrap_err();
        assert!(
            matches!(&e, BrokerError::InvalidSubject { subject: s, .. } if s == subject),
            "{subject:?}: {e:?}"
        );
        let e = b.topic::<u32>(subject).unwrap_err();
        assert!(matches!(e, BrokerError::InvalidSubject { .. }), "{e:?}");
    }
    for pattern in ["", "a..b", "a.>.b", "a*.b", "a.b>", "a b"] {
        let e = b.subscribe::<u32>(pattern).await.unwrap_err();
        assert!(
            matches!(&e, BrokerError::InvalidPattern { pattern: p, .. } if p == pattern),
            "{pattern:?}: {e:?}"
        );
    }
    let e = b.subscribe::<u32>("a.>.b").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid pattern \"a.>.b\": `>` must be the last token"
    );
}

const SLOW_BUFFER: u32 = 8;

/// Publishes 0, 1, ... `n - 1` on `subject`, one by one, each seen by the
/// broker before the next (a round trip): a broker in another process has
/// time to forward to its subscribers what they let it.
async fn publish_paced(b: &Broker, subject: &str, n: u32) {
    for i in 0..n {
        b.publish(subject, &i).await.unwrap();
        b.stats().await.unwrap();
    }
}

/// A subscriber with a buffer of 8 that does not read while 100 messages
/// are published: the oldest are dropped, and counted (by the
/// subscription; by the broker too where it counts them). It then reads
/// the newest 8, and before them, with a broker in another process, at
/// most what was on its way already.
async fn slow_drop_oldest(backend: Backend) {
    let Some(w) = World::start(backend, "slow-drop").await else {
        return;
    };
    let b = &w.a;
    let options = SubscribeOptions {
        buffer: SLOW_BUFFER,
        policy: SlowPolicy::DropOldest,
    };
    let mut slow = b.subscribe_with::<u32>("ticks", options).await.unwrap();
    let mut fast = b.subscribe::<u32>("ticks").await.unwrap();
    publish_paced(b, "ticks", 100).await;
    // A subscriber that keeps up gets everything.
    let everything: Vec<u32> = read_until(&mut fast, 99)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(everything, (0..100).collect::<Vec<_>>());
    let got: Vec<u32> = read_until(&mut slow, 99)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let dropped = slow.dropped();
    eprintln!(
        "slow subscriber, {backend:?}: read {} of 100 ({got:?}), {dropped} dropped",
        got.len()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {got:?}"
    );
    assert_eq!(got.len() as u64 + dropped, 100, "each read or dropped");
    assert!(
        got.ends_with(&(100 - SLOW_BUFFER..100).collect::<Vec<_>>()),
        "the newest are kept: {got:?}"
    );
    if backend == Backend::Embedded {
        assert_eq!(got, (92..100).collect::<Vec<_>>(), "the newest 8 only");
    } else {
        // What was on its way already: at most the stream's buffer and
        // credit, and a batch taken from the broker's buffer.
        assert!(
            got.len() as u32 <= 4 * SLOW_BUFFER + 1,
            "at most the newest {SLOW_BUFFER} and those in transit: {got:?}"
        );
    }
    if backend.counts_all() {
        // Counted where the buffer is, and told the client.
        assert_eq!(b.stats().await.unwrap().dropped, dropped);
    }
}

/// A subscriber with policy `Disconnect` that falls a buffer behind is cut
/// off: its subscription ends with `SlowSubscriber`.
async fn slow_disconnect(backend: Backend) {
    let Some(w) = World::start(backend, "slow-cut").await else {
        return;
    };
    let b = &w.a;
    let options = SubscribeOptions {
        buffer: SLOW_BUFFER,
        policy: SlowPolicy::Disconnect,
    };
    let mut slow = b.subscribe_with::<u32>("flood", options).await.unwrap();
    publish_paced(b, "flood", 100).await;
    let mut read = 0;
    let end = loop {
        match slow.next().await.expect("an error item before the end") {
            Ok(_) => read += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            &end,
            BrokerError::SlowSubscriber { pattern, buffer: SLOW_BUFFER } if pattern == "flood"
        ),
        "{end:?}"
    );
    assert!(read < 100, "cut off before the end: read {read}");
    assert!(slow.next().await.is_none(), "nothing after the error");
}

// ---------------------------------------------------------------------------
// 6. Mediated RPC
// ---------------------------------------------------------------------------

/// Two servers (of two clients) share the calls; a call made while no
/// server is up waits for one; a call whose deadline passes with no server
/// fails.
async fn mediated_rpc(backend: Backend) {
    let Some(w) = World::start(backend, "rpc").await else {
        return;
    };
    let (a, b) = (&w.a, &w.b);
    let (one, two) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let s1 = a
        .serve::<dyn Calc, _>(
            "calc",
            Adder {
                served: one.clone(),
            },
        )
        .await
        .unwrap();
    let s2 = b
        .serve::<dyn Calc, _>(
            "calc",
            Adder {
                served: two.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(s1.queue(), "calc");
    let calc = a.stub::<dyn Calc>("calc").await.unwrap();
    for i in 0..100i64 {
        assert_eq!(calc.add(i, 1).await.unwrap(), i + 1);
    }
    let (n1, n2) = (one.load(Ordering::SeqCst), two.load(Ordering::SeqCst));
    eprintln!("mediated RPC, {backend:?}: the servers took {n1} and {n2} calls");
    assert_eq!(n1 + n2, 100);
    assert!(n1 > 0 && n2 > 0, "both servers take calls: {n1} and {n2}");
    drop((s1, s2));

    // A call made while no server is up waits for one.
    let served = Arc::new(AtomicU64::new(0));
    let late = a
        .stub_with_deadline::<dyn Calc>("calc-later", Duration::from_secs(10))
        .await
        .unwrap();
    let call = tokio::spawn(async move { late.add(20, 22).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _serving = b
        .serve::<dyn Calc, _>(
            "calc-later",
            Adder {
                served: served.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(call.await.unwrap().unwrap(), 42);
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // A call whose deadline passes with no server fails.
    let nobody = a
        .stub_with_deadline::<dyn Calc>("calc-nobody", Duration::from_millis(300))
        .await
        .unwrap();
    let e = nobody.add(1, 1).await.unwrap_err();
    assert!(matches!(e, RemoteError::DeadlineExceeded), "{e:?}");
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
