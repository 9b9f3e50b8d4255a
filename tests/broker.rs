//! The broker (`farcall::mme`) through the facade, each behaviour run
//! twice: against a broker embedded in this process, and against the
//! standalone `farcall broker serve` started as a real subprocess of the
//! test, so that nothing works on one and not the other.
//!
//! 1. queues: acceptance, competing consumers, nack, ack-wait,
//!    dead-lettering, FIFO;
//! 2. durability: a durable queue across a kill -9 of the broker;
//!    segments reclaimed once acknowledged (embedded: the command does not
//!    set the segment size);
//! 3. the fault test: kill -9 of the broker during 10,000 confirmed sends
//!    (default fsync, and `--fsync always`), no confirmed message lost (run
//!    with `--nocapture` for the figures);
//! 4. a consumer that dies holding deliveries (a task, a node whose
//!    connection is cut, another process killed): they go to another;
//! 5. topics: fan-out, wildcards, bad subjects and patterns, slow
//!    subscribers dropped from or cut off (a standalone broker's subscriber
//!    also gets what was on its way before it fell behind);
//! 6. mediated RPC: load sharing, a call waiting for a server, a call
//!    whose deadline passes;
//! 7. a message over the size limit;
//! 8. bad queue names.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use farcall::mme::{
    Broker, BrokerApi, BrokerConfig, BrokerError, DLQ_SUFFIX, QueueConfig, QueueStats, SlowPolicy,
    SubscribeOptions,
};
use farcall::{Node, ObjectId, Remote, RemoteError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

const BIN: &str = env!("CARGO_BIN_EXE_farcall");

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

async fn within<F: Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {secs} s"))
}

/// A directory of its own under the target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("broker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `farcall broker serve` process, killed (SIGKILL) when dropped.
struct BrokerProcess {
    child: Child,
    addr: String,
}

impl BrokerProcess {
    /// Starts the broker on a free port with `data`, and reads its address
    /// from the line it prints.
    async fn start(data: &Path, more: &[&str]) -> BrokerProcess {
        let mut child = Command::new(BIN)
            .args(["broker", "serve", "--listen", "tcp://127.0.0.1:0", "--data"])
            .arg(data)
            .args(more)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the farcall binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut process = BrokerProcess {
            child,
            addr: String::new(),
        };
        let line = within(
            20,
            "the broker prints its address",
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout)
                    .read_line(&mut line)
                    .expect("the broker's stdout");
                line
            }),
        )
        .await
        .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        process.addr = addr;
        process
    }

    /// A client of this broker, on a node of its own.
    async fn connect(&self) -> Broker {
        within(
            20,
            "connecting to the broker",
            Broker::connect(self.addr.as_str()),
        )
        .await
        .expect("the broker answers")
    }

    /// kill -9, and wait until it is gone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A standalone broker with a data directory of its own.
struct Standalone {
    process: BrokerProcess,
    broker: Broker,
    _data: Scratch,
}

impl Standalone {
    async fn start(name: &str, more: &[&str]) -> Standalone {
        let data = Scratch::new(name);
        let process = BrokerProcess::start(data.path(), more).await;
        let broker = process.connect().await;
        Standalone {
            process,
            broker,
            _data: data,
        }
    }
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

/// Waits (polling) until queue `name`'s figures satisfy `ok`.
async fn stats_until(b: &Broker, name: &str, what: &str, ok: impl Fn(&QueueStats) -> bool) {
    within(30, what, async {
        loop {
            if ok(&queue_stats(b, name).await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
async fn send_is_accepted(b: &Broker) {
    let q = b.queue::<String>("accepted").await.unwrap();
    q.send(&"one".to_owned()).await.unwrap();
    let s = queue_stats(b, "accepted").await;
    assert_eq!((s.sent, s.depth, s.in_flight), (1, 1, 0), "{s:?}");
}

/// Two consumers (on two handles) share 100 messages: each gets some,
/// none is delivered twice, all are acknowledged.
async fn competing_consumers(a: &Broker, b: &Broker) {
    let name = "jobs";
    let qa = a.queue::<u64>(name).await.unwrap();
    let qb = b.queue::<u64>(name).await.unwrap();
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
    let s = queue_stats(a, name).await;
    assert_eq!((s.sent, s.acked, s.depth, s.in_flight), (100, 100, 0, 0));
}

/// A nacked message is delivered again at once, attempt 2.
async fn nack_redelivers(b: &Broker) {
    let q = b
        .queue_with::<String>("refused", QueueConfig::default().ack_wait(FOREVER))
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
    let s = queue_stats(b, "refused").await;
    assert_eq!((s.redelivered, s.acked, s.in_flight), (1, 1, 0), "{s:?}");
}

/// A delivery not acknowledged within the ack-wait is delivered again;
/// the late ack of the first delivery is refused.
async fn ack_wait_redelivers(b: &Broker) {
    let config = QueueConfig::default()
        .ack_wait(Duration::from_millis(200))
        .max_deliver(0);
    let q = b.queue_with::<String>("slow", config).await.unwrap();
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

/// After max-deliver attempts (refused, or let run out), the message is in
/// `<name>.dlq`, where it can be consumed.
async fn dead_letters(b: &Broker) {
    // Refused twice.
    let config = QueueConfig::default().ack_wait(FOREVER).max_deliver(2);
    let q = b.queue_with::<String>("poison", config).await.unwrap();
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
    let dlq = b
        .queue::<String>(&format!("poison{DLQ_SUFFIX}"))
        .await
        .unwrap();
    let mut dc = dlq.consume().await.unwrap();
    let d = dc.next().await.unwrap().unwrap();
    assert_eq!(d.body(), "bad");
    d.ack().await.unwrap();
    stats_until(b, "poison", "poison dead-lettered", |s| {
        s.dead_lettered == 1
    })
    .await;

    // Never acknowledged: the ack-wait runs out twice.
    let config = QueueConfig::default()
        .ack_wait(Duration::from_millis(200))
        .max_deliver(2);
    let q = b.queue_with::<String>("stuck", config).await.unwrap();
    q.send(&"stuck".to_owned()).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d1 = c.next().await.unwrap().unwrap();
    let d2 = c.next().await.unwrap().unwrap();
    assert_eq!((d1.attempt(), d2.attempt()), (1, 2));
    let dlq = b.queue::<String>("stuck.dlq").await.unwrap();
    let mut dc = dlq.consume().await.unwrap();
    let d = dc.next().await.unwrap().unwrap();
    assert_eq!(d.body(), "stuck");
    d.ack().await.unwrap();
    stats_until(b, "stuck", "stuck dead-lettered", |s| {
        s.dead_lettered == 1 && s.in_flight == 0 && s.depth == 0
    })
    .await;
    let late = d2.ack().await;
    assert!(
        matches!(late, Err(BrokerError::NotInFlight { .. })),
        "{late:?}"
    );
}

/// One consumer gets the messages in the order they were sent.
async fn fifo(b: &Broker) {
    let q = b.queue::<u64>("ordered").await.unwrap();
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

async fn queues(a: &Broker, b: &Broker) {
    send_is_accepted(a).await;
    competing_consumers(a, b).await;
    nack_redelivers(a).await;
    ack_wait_redelivers(a).await;
    dead_letters(a).await;
    fifo(a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_embedded() {
    let b = Broker::embedded();
    within(30, "queues, embedded", queues(&b, &b.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_standalone() {
    let s = Standalone::start("queues", &[]).await;
    let other = s.process.connect().await;
    within(30, "queues, standalone", queues(&s.broker, &other)).await;
}

// ---------------------------------------------------------------------------
// 2. Durability
// ---------------------------------------------------------------------------

/// Reads `n` deliveries, acknowledging each; their bodies.
async fn drain(q: &farcall::mme::Queue<u64>, n: usize) -> Vec<u64> {
    let mut c = q.consume_with(256).await.unwrap();
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let d = c.next().await.expect("the queue ends early").unwrap();
        d.ack().await.unwrap();
        got.push(*d.body());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_queue_survives_kill() {
    within(30, "a durable queue across kill -9", async {
        let data = Scratch::new("durable");
        let mut p = BrokerProcess::start(data.path(), &[]).await;
        let b = p.connect().await;
        let q = b
            .queue_with::<u64>("orders", QueueConfig::durable())
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
        let before = queue_stats(&b, "orders").await;
        assert!(before.durable && before.segments >= 1, "{before:?}");
        p.kill();

        let p = BrokerProcess::start(data.path(), &[]).await;
        let b = p.connect().await;
        let after = queue_stats(&b, "orders").await;
        assert!(after.durable, "{after:?}");
        assert_eq!((after.depth, after.in_flight), (61, 0), "{after:?}");
        let q = b
            .queue_with::<u64>("orders", QueueConfig::durable())
            .await
            .unwrap();
        let got = drain(&q, 61).await;
        let want: Vec<u64> = (40..100).chain([1000]).collect();
        assert_eq!(got, want, "the unacknowledged messages, in order");
    })
    .await;
}

/// Segments whose messages are all acknowledged are deleted (embedded:
/// `farcall broker serve` does not set the segment size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_segments_are_reclaimed() {
    let data = Scratch::new("reclaim");
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
// 3. The fault test: kill -9 during confirmed sends
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_confirmed_sends() {
    within(
        60,
        "kill -9 during sends",
        kill_9_during_sends("kill9", &[]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_confirmed_sends_fsync_always() {
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
    let data = Scratch::new(name);
    let mut p = BrokerProcess::start(data.path(), more).await;
    let b = p.connect().await;
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

    let p = BrokerProcess::start(data.path(), more).await;
    let b = p.connect().await;
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

/// Sends `HOLDING` messages to `queue` (long ack-wait: a redelivery comes
/// from the consumer's end).
async fn fill_held(b: &Broker, queue: &str) -> farcall::mme::Queue<u64> {
    let q = b
        .queue_with::<u64>(queue, QueueConfig::default().ack_wait(FOREVER))
        .await
        .unwrap();
    for i in 0..HOLDING as u64 {
        q.send(&i).await.unwrap();
    }
    q
}

/// Another consumer gets the `HOLDING` messages, each on its second
/// attempt.
async fn taken_over(q: &farcall::mme::Queue<u64>) {
    let mut c = q.consume().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..HOLDING {
        let d = c.next().await.unwrap().unwrap();
        assert_eq!(d.attempt(), 2, "message {} redelivered", d.body());
        d.ack().await.unwrap();
        got.push(*d.body());
    }
    assert_eq!(got, (0..HOLDING as u64).collect::<Vec<_>>());
}

/// A consumer task that receives `HOLDING` messages without acknowledging
/// them, says so, then waits forever.
fn holder(q: farcall::mme::Queue<u64>) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>) {
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

async fn dying_task_consumer(b: &Broker) {
    let q = fill_held(b, "held-by-task").await;
    let (task, holding) = holder(q.clone());
    holding.await.unwrap();
    task.abort();
    taken_over(&q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_consumer_embedded() {
    let b = Broker::embedded();
    within(30, "a task that dies", dying_task_consumer(&b)).await;

    // A client node whose connection is cut.
    within(30, "a node cut off", async {
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        b.expose(&server).unwrap();
        let client_node = Node::new();
        let client = Broker::connect_with(&client_node, server.local_addr().unwrap())
            .await
            .unwrap();
        let q = fill_held(&b, "held-by-node").await;
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

const CHILD_ENV: &str = "FARCALL_BROKER_TEST_CHILD";
const CHILD_QUEUE: &str = "held-by-process";

/// The consumer of `dying_consumer_standalone` in another process: does
/// nothing unless started by it (the test binary runs itself as the child).
#[test]
#[ignore = "the child process of dying_consumer_standalone"]
fn child_consumer() {
    let Some(addr) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let addr = addr.into_string().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = Broker::connect(addr.as_str()).await.unwrap();
        let q = b.queue::<u64>(CHILD_QUEUE).await.unwrap();
        let mut c = q.consume_with(HOLDING as u32).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..HOLDING {
            held.push(c.next().await.unwrap().unwrap());
        }
        println!("holding {}", held.len());
        // Hold them until killed (or until the parent closes stdin).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
    });
}

/// Kills the child when the test ends, whatever happens.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_consumer_standalone() {
    let s = Standalone::start("dying", &[]).await;
    within(30, "a task that dies", dying_task_consumer(&s.broker)).await;

    within(30, "a consumer process killed", async {
        let q = fill_held(&s.broker, CHILD_QUEUE).await;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_consumer", "--ignored", "--nocapture"])
            .env(CHILD_ENV, &s.process.addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the test binary starts as a child");
        let stdout = child.stdout.take().unwrap();
        let mut child = Reaper(child);
        tokio::task::spawn_blocking(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("the child's stdout");
                if line.starts_with("holding") {
                    assert_eq!(line, format!("holding {HOLDING}"));
                    return;
                }
            }
            panic!("the child exited without holding anything");
        })
        .await
        .unwrap();
        let s1 = queue_stats(&s.broker, CHILD_QUEUE).await;
        assert_eq!((s1.in_flight, s1.consumers), (HOLDING as u64, 1), "{s1:?}");
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        taken_over(&q).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Topics
// ---------------------------------------------------------------------------

/// Reads `sub` until `last`; the (subject, body) pairs read.
async fn read_until(sub: &mut farcall::mme::Subscription<u32>, last: u32) -> Vec<(String, u32)> {
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
async fn fan_out(b: &Broker) {
    let mut one = b.subscribe::<u32>("a.*").await.unwrap();
    let mut all = b.subscribe::<u32>("a.>").await.unwrap();
    let mut exact = b.subscribe::<u32>("a.b").await.unwrap();
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
async fn bad_subjects(b: &Broker) {
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
/// broker before the next (a round trip): a standalone broker has time to
/// forward to its subscribers what they let it.
async fn publish_paced(b: &Broker, subject: &str, n: u32) {
    for i in 0..n {
        b.publish(subject, &i).await.unwrap();
        b.stats().await.unwrap();
    }
}

/// A subscriber with a buffer of 8 that does not read while 100 messages
/// are published: the oldest are dropped and counted. Returns what it
/// reads afterwards and the drops counted.
async fn slow_drop_oldest(b: &Broker) -> (Vec<u32>, u64) {
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
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {got:?}"
    );
    (got, slow.dropped())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_embedded() {
    let b = Broker::embedded();
    within(30, "topics, embedded", async {
        fan_out(&b).await;
        bad_subjects(&b).await;
        let (got, dropped) = slow_drop_oldest(&b).await;
        assert_eq!(got, (92..100).collect::<Vec<_>>(), "the newest 8");
        assert_eq!(dropped, 92);
        assert_eq!(b.stats().await.unwrap().dropped, 92);
        slow_disconnect(&b).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_standalone() {
    let s = Standalone::start("topics", &[]).await;
    let b = &s.broker;
    within(30, "topics, standalone", async {
        fan_out(b).await;
        bad_subjects(b).await;
        let (got, local) = slow_drop_oldest(b).await;
        // Counted at the broker, where the buffer is, and told the client.
        let dropped = b.stats().await.unwrap().dropped;
        assert_eq!(local, dropped, "the client knows the drops");
        eprintln!(
            "slow subscriber, standalone: read {} of 100 ({got:?}), {dropped} dropped",
            got.len()
        );
        assert!(dropped > 0, "drops counted: read {got:?}");
        assert_eq!(got.len() as u64 + dropped, 100, "each read or dropped");
        assert!(
            got.ends_with(&(100 - SLOW_BUFFER..100).collect::<Vec<_>>()),
            "the newest are kept: {got:?}"
        );
        // Before them, what was on its way already: at most the stream's
        // buffer and credit, and a batch taken from the broker's buffer.
        assert!(
            got.len() as u32 <= 4 * SLOW_BUFFER + 1,
            "at most the newest {SLOW_BUFFER} and those in transit: {got:?}"
        );
        slow_disconnect(b).await;
    })
    .await;
}

/// A subscriber with policy `Disconnect` that falls a buffer behind is cut
/// off: its subscription ends with `SlowSubscriber`.
async fn slow_disconnect(b: &Broker) {
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

async fn mediated_rpc(a: &Broker, b: &Broker) {
    // Two servers (on two handles) share the calls.
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
    eprintln!("mediated RPC: the servers took {n1} and {n2} calls");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediated_rpc_embedded() {
    let b = Broker::embedded();
    within(30, "mediated RPC, embedded", mediated_rpc(&b, &b.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediated_rpc_standalone() {
    let s = Standalone::start("rpc", &[]).await;
    let other = s.process.connect().await;
    within(
        30,
        "mediated RPC, standalone",
        mediated_rpc(&s.broker, &other),
    )
    .await;
}

// ---------------------------------------------------------------------------
// 7. The size limit
// ---------------------------------------------------------------------------

/// A message over 1,024 bytes is refused; the broker serves on (`b` and
/// `other` are two clients, or two handles of one broker).
async fn too_large(b: &Broker, other: &Broker) {
    assert_eq!(b.max_message(), 1024);
    let q = b.queue::<Bytes>("sized").await.unwrap();
    let e = q.send(&Bytes::from(vec![7; 2000])).await.unwrap_err();
    assert!(
        matches!(e, BrokerError::TooLarge { limit: 1024, size } if size > 2000),
        "{e:?}"
    );
    assert!(e.to_string().contains("limit of 1024 bytes"), "{e}");
    let e = b.publish("sized", &Bytes::from(vec![7; 2000])).await;
    assert!(matches!(e, Err(BrokerError::TooLarge { .. })), "{e:?}");
    // Right after: the same client, another client.
    q.send(&Bytes::from_static(b"small")).await.unwrap();
    let q2 = other.queue::<Bytes>("sized").await.unwrap();
    q2.send(&Bytes::from(vec![1; 1000])).await.unwrap();
    let got = drain_bytes(&q2, 2).await;
    assert_eq!(
        got,
        [Bytes::from_static(b"small"), Bytes::from(vec![1; 1000])]
    );
}

async fn drain_bytes(q: &farcall::mme::Queue<Bytes>, n: usize) -> Vec<Bytes> {
    let mut c = q.consume().await.unwrap();
    let mut got = Vec::new();
    for _ in 0..n {
        let d = c.next().await.unwrap().unwrap();
        d.ack().await.unwrap();
        got.push(d.into_body());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_embedded() {
    let b = Broker::open(BrokerConfig {
        max_message: 1024,
        ..BrokerConfig::default()
    })
    .unwrap();
    within(30, "too large, embedded", too_large(&b, &b.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_standalone() {
    let s = Standalone::start("sized", &["--max-message", "1024"]).await;
    let other = s.process.connect().await;
    within(30, "too large, standalone", async {
        too_large(&s.broker, &other).await;
        // The broker refuses it too, from a client that does not check.
        let node = Node::new();
        let api: Remote<dyn BrokerApi> = node
            .connect(s.process.addr.as_str(), ObjectId::BROKER)
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
                    limit: 1024
                }
            ),
            "{e:?}"
        );
        api.send("sized".into(), Bytes::from_static(b"fine"))
            .await
            .unwrap();
        assert_eq!(queue_stats(&other, "sized").await.depth, 1);
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

async fn bad_queue_names(b: &Broker) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_names_embedded() {
    let b = Broker::embedded();
    within(30, "queue names, embedded", bad_queue_names(&b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_names_standalone() {
    let s = Standalone::start("names", &[]).await;
    within(30, "queue names, standalone", async {
        bad_queue_names(&s.broker).await;
        // The broker checks too, from a client that does not.
        let node = Node::new();
        let api: Remote<dyn BrokerApi> = node
            .connect(s.process.addr.as_str(), ObjectId::BROKER)
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
        assert!(s.broker.stats().await.unwrap().queues.is_empty());
    })
    .await;
}
