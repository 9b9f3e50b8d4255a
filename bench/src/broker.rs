//! `broker`: mediated messaging. farcall's broker, in process
//! (`farcall_embedded`) and served to another node over TCP
//! (`farcall_standalone`), side by side with a real nats-server 2.x
//! (`nats`, JetStream for the queues), which the bench starts as a child
//! process on a free loopback port.
//!
//! Scenarios, 64-byte messages: publish/subscribe to one subscriber and to
//! four (messages received by all subscribers per second, and messages
//! published per second); a queue, non-durable and durable, each send
//! confirmed and each delivery acknowledged; mediated RPC (a call through
//! the broker to a server registered under a name), with a direct farcall
//! call over TCP for reference.
//!
//! Each system is a [`Column`]: it sets a scenario up and hands the
//! harness here one operation to repeat, so a new column is one type and
//! one line in [`run`]. The harness keeps every sender at most [`CREDIT`]
//! messages ahead of each receiver, for every system alike, so memory
//! stays bounded and nothing is measured that was not delivered.

mod farcall_column;
mod nats;

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use farcall::{Node, Remote, RemoteError};
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::Budget;
use crate::measure::concurrent;
use crate::report::Report;

/// Bytes in every message.
pub(crate) const PAYLOAD: usize = 64;
/// Queue producers, and RPC callers, running at once (the same for every
/// system).
const INFLIGHT: usize = 32;
/// How far a sender may run ahead of each receiver, in messages.
const CREDIT: u64 = 8192;
/// Deliveries a queue consumer may hold unacknowledged.
pub(crate) const PREFETCH: u32 = 256;
/// A sender out of credit for this long takes the missing messages as
/// lost and goes on (they are counted in `dropped`).
const STALL: Duration = Duration::from_millis(250);

/// The mediated-RPC interface.
#[farcall::remote]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

pub(crate) struct Calc;

#[farcall::remote]
impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        Ok(a + b)
    }
}

/// One repeated operation: a publish, a confirmed send, a call.
pub(crate) type Op = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Boxes an operation.
pub(crate) fn op<F, Fut>(f: F) -> Op
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// What a scenario leaves running while it is measured: receiving tasks
/// (aborted on drop) and handles to keep alive (subscriptions, servers,
/// connections).
#[derive(Default)]
pub(crate) struct Running {
    tasks: Vec<JoinHandle<()>>,
    keep: Vec<Box<dyn Any + Send>>,
}

impl Running {
    pub(crate) fn spawn(&mut self, f: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(f));
    }

    pub(crate) fn keep(&mut self, handle: impl Any + Send) {
        self.keep.push(Box::new(handle));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One system measured by the broker scenarios.
pub(crate) trait Column {
    /// `<system>` in the report's keys.
    fn system(&self) -> &'static str;
    /// `<transport>` in the report's keys.
    fn transport(&self) -> &'static str;
    /// Subscribes `subscribers` receivers to `filter`, each calling
    /// `flow.receive(i)` per message, and returns the operation that
    /// publishes one message to `subject`. Subscriptions are in place when
    /// it returns.
    async fn topic(
        &self,
        subject: &str,
        filter: &str,
        subscribers: usize,
        flow: &Arc<Flow>,
    ) -> (Op, Running);
    /// Creates the queue `name` and starts one consumer (prefetch
    /// [`PREFETCH`]) that acknowledges each delivery, then calls
    /// `flow.receive(0)`; returns the operation that sends one message
    /// and waits for the broker's confirmation.
    async fn queue(&self, name: &str, durable: bool, flow: &Arc<Flow>) -> (Op, Running);
    /// Registers a [`Calculator`] under a name and returns the operation
    /// that calls `add` through the broker.
    async fn rpc(&self) -> (Op, Running);
}

/// Credit between one sender side and its receivers: a sender waits while
/// it is [`CREDIT`] messages ahead of any receiver.
#[derive(Debug)]
pub(crate) struct Flow {
    sent: AtomicU64,
    received: Vec<AtomicU64>,
    /// Per receiver, messages taken as lost after a stall.
    lost: Vec<AtomicU64>,
    waiting: AtomicBool,
    wake: Notify,
}

impl Flow {
    fn new(receivers: usize) -> Arc<Flow> {
        Arc::new(Flow {
            sent: AtomicU64::new(0),
            received: (0..receivers).map(|_| AtomicU64::new(0)).collect(),
            lost: (0..receivers).map(|_| AtomicU64::new(0)).collect(),
            waiting: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    /// Messages the slowest receiver is behind by.
    fn lag(&self, sent: u64) -> u64 {
        self.received
            .iter()
            .zip(&self.lost)
            .map(|(r, l)| sent.saturating_sub(r.load(Ordering::SeqCst) + l.load(Ordering::SeqCst)))
            .max()
            .unwrap_or(0)
    }

    /// Takes one message's credit, waiting for it if need be.
    async fn admit(&self) {
        loop {
            let sent = self.sent.load(Ordering::SeqCst);
            if self.lag(sent) < CREDIT {
                if self
                    .sent
                    .compare_exchange(sent, sent + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            self.waiting.store(true, Ordering::SeqCst);
            if self.lag(self.sent.load(Ordering::SeqCst)) < CREDIT {
                continue;
            }
            if tokio::time::timeout(STALL, woken).await.is_err() {
                self.write_off();
            }
        }
    }

    /// Takes what every receiver is still missing as lost.
    fn write_off(&self) {
        let sent = self.sent.load(Ordering::SeqCst);
        for (r, l) in self.received.iter().zip(&self.lost) {
            l.fetch_max(
                sent.saturating_sub(r.load(Ordering::SeqCst)),
                Ordering::SeqCst,
            );
        }
    }

    /// Receiver `i` got one message.
    pub(crate) fn receive(&self, i: usize) {
        let got = self.received[i].fetch_add(1, Ordering::SeqCst) + 1;
        if self.waiting.load(Ordering::SeqCst) {
            let behind = self
                .sent
                .load(Ordering::SeqCst)
                .saturating_sub(got + self.lost[i].load(Ordering::SeqCst));
            if behind <= CREDIT / 2 {
                self.waiting.store(false, Ordering::SeqCst);
                self.wake.notify_waiters();
            }
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn received_total(&self) -> u64 {
        self.received.iter().map(|r| r.load(Ordering::SeqCst)).sum()
    }

    /// Waits until every receiver has every message sent, or has had none
    /// for [`STALL`]; returns the messages they are missing.
    async fn drain(&self) -> u64 {
        let sent = self.sent();
        let missing = || {
            self.received
                .iter()
                .map(|r| sent.saturating_sub(r.load(Ordering::SeqCst)))
                .sum::<u64>()
        };
        let (mut last, mut since) = (missing(), Instant::now());
        while last > 0 && since.elapsed() < STALL {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = missing();
            if now < last {
                (last, since) = (now, Instant::now());
            }
        }
        last
    }
}

/// What one window counted.
struct Window {
    secs: f64,
    sent: u64,
    received: u64,
}

/// Lets the senders warm up, then counts what is sent and received during
/// one window.
async fn window(b: Budget, flow: &Flow) -> Window {
    tokio::time::sleep(b.window / 5).await;
    let (s0, r0, t) = (flow.sent(), flow.received_total(), Instant::now());
    tokio::time::sleep(b.window).await;
    Window {
        secs: t.elapsed().as_secs_f64(),
        sent: flow.sent() - s0,
        received: flow.received_total() - r0,
    }
}

/// Runs `tasks` loops of `flow.admit(); op()` until stopped.
fn senders(tasks: usize, flow: &Arc<Flow>, op: &Op, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    (0..tasks)
        .map(|_| {
            let (flow, op, stop) = (flow.clone(), op.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    flow.admit().await;
                    op().await;
                }
            })
        })
        .collect()
}

async fn stop(stop: &AtomicBool, tasks: Vec<JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("sender");
    }
}

/// One publisher, `subscribers` subscribers on a wildcard.
async fn topic<C: Column>(c: &C, b: Budget, subscribers: usize, r: &mut Report) {
    let scenario = format!("pubsub_1to{subscribers}");
    let flow = Flow::new(subscribers);
    let (publish, running) = c
        .topic(
            &format!("bench{subscribers}.eu.acme"),
            &format!("bench{subscribers}.>"),
            subscribers,
            &flow,
        )
        .await;
    let halt = Arc::new(AtomicBool::new(false));
    let tasks = senders(1, &flow, &publish, &halt);
    let w = window(b, &flow).await;
    stop(&halt, tasks).await;
    let dropped = flow.drain().await;
    drop(running);
    let (s, t) = (c.system(), c.transport());
    r.add(s, t, &scenario, "msgs_per_s", w.received as f64 / w.secs);
    r.add(s, t, &scenario, "published_per_s", w.sent as f64 / w.secs);
    r.add(s, t, &scenario, "dropped", dropped as f64);
}

/// [`INFLIGHT`] producers sending, each send confirmed; one consumer
/// acknowledging.
async fn queue<C: Column>(c: &C, b: Budget, durable: bool, r: &mut Report) {
    let scenario = if durable { "queue_durable" } else { "queue" };
    let flow = Flow::new(1);
    let (send, running) = c.queue(&format!("bench_{scenario}"), durable, &flow).await;
    let halt = Arc::new(AtomicBool::new(false));
    let tasks = senders(INFLIGHT, &flow, &send, &halt);
    let w = window(b, &flow).await;
    stop(&halt, tasks).await;
    let lost = flow.drain().await;
    drop(running);
    let (s, t) = (c.system(), c.transport());
    r.add(s, t, scenario, "msgs_per_s", w.received as f64 / w.secs);
    r.add(s, t, scenario, "sent_per_s", w.sent as f64 / w.secs);
    r.add(s, t, scenario, "lost", lost as f64);
}

/// [`INFLIGHT`] callers through the broker.
async fn rpc<C: Column>(c: &C, b: Budget, r: &mut Report) {
    let (call, running) = c.rpc().await;
    let rate = concurrent(INFLIGHT, b.window, move || call()).await;
    drop(running);
    r.add(c.system(), c.transport(), "rpc", "calls_per_s", rate);
}

/// Every scenario of one column.
/// Whether `name` is selected by the environment variable `var` (a
/// comma-separated list; unset: everything). For a profiler:
/// `FARCALL_BENCH_SYSTEMS=farcall_standalone FARCALL_BENCH_SCENARIOS=pubsub_1to1`.
fn selected(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |v| v.split(',').any(|s| s.trim() == name))
}

async fn measure<C: Column>(c: &C, b: Budget, r: &mut Report) {
    let on = |s: &str| selected("FARCALL_BENCH_SCENARIOS", s);
    if !selected("FARCALL_BENCH_SYSTEMS", c.system()) {
        return;
    }
    if on("pubsub_1to1") {
        topic(c, b, 1, r).await;
    }
    if on("pubsub_1to4") {
        topic(c, b, 4, r).await;
    }
    if on("queue") {
        queue(c, b, false, r).await;
    }
    if on("queue_durable") {
        queue(c, b, true, r).await;
    }
    if on("rpc") {
        rpc(c, b, r).await;
    }
}

/// The reference: a direct farcall call over TCP, no broker between.
async fn direct_rpc(b: Budget, r: &mut Report) {
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _svc: Remote<dyn Calculator> = server.serve("calc", Calc);
    let client = Node::new();
    let stub: Remote<dyn Calculator> = client
        .connect_service(server.local_addr().expect("addr"), "calc")
        .await
        .expect("connect");
    let rate = concurrent(INFLIGHT, b.window, move || {
        let s = stub.clone();
        async move {
            assert_eq!(s.add(1, 2).await.expect("call"), 3);
        }
    })
    .await;
    r.add("farcall_direct", "tcp", "rpc", "calls_per_s", rate);
    client.shutdown().await;
    server.shutdown().await;
}

pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();
    // The columns, one after another. A new column: a type implementing
    // `Column`, measured here, and its ratios below.
    let embedded = farcall_column::Farcall::embedded().await;
    measure(&embedded, b, &mut r).await;
    embedded.close().await;
    let standalone = farcall_column::Farcall::standalone().await;
    measure(&standalone, b, &mut r).await;
    standalone.close().await;
    let mut title = String::from(
        "broker: publish/subscribe, queues and mediated RPC, 64-byte messages (one process)",
    );
    match nats::Nats::start().await {
        Ok(n) => {
            title.push_str(&format!("; nats-server {}", n.version()));
            measure(&n, b, &mut r).await;
            let on_nats = farcall_column::Farcall::on_nats(n.url()).await;
            measure(&on_nats, b, &mut r).await;
            on_nats.close().await;
        }
        Err(why) => println!("nats: skipped: {why}"),
    }
    if selected("FARCALL_BENCH_SYSTEMS", "farcall_direct")
        && selected("FARCALL_BENCH_SCENARIOS", "rpc")
    {
        direct_rpc(b, &mut r).await;
    }

    let mut ratios = Vec::new();
    for (label, key) in [
        ("pub/sub 1->1 received/s", "pubsub_1to1.msgs_per_s"),
        ("pub/sub 1->4 received/s", "pubsub_1to4.msgs_per_s"),
        ("queue send+ack/s", "queue.msgs_per_s"),
        ("durable queue send+ack/s", "queue_durable.msgs_per_s"),
        ("mediated RPC calls/s", "rpc.calls_per_s"),
    ] {
        ratios.push((
            format!("farcall standalone / nats, {label}"),
            format!("farcall_standalone.tcp.{key}"),
            format!("nats.tcp.{key}"),
        ));
    }
    for (label, key) in [
        ("pub/sub 1->1 received/s", "pubsub_1to1.msgs_per_s"),
        ("pub/sub 1->4 received/s", "pubsub_1to4.msgs_per_s"),
        ("queue send+ack/s", "queue.msgs_per_s"),
        ("durable queue send+ack/s", "queue_durable.msgs_per_s"),
        ("mediated RPC calls/s", "rpc.calls_per_s"),
    ] {
        ratios.push((
            format!("farcall over nats / raw async-nats, {label}"),
            format!("farcall_nats.tcp.{key}"),
            format!("nats.tcp.{key}"),
        ));
    }
    ratios.push((
        "farcall mediated (standalone) / direct RPC calls/s".into(),
        "farcall_standalone.tcp.rpc.calls_per_s".into(),
        "farcall_direct.tcp.rpc.calls_per_s".into(),
    ));
    let ratios: Vec<(&str, &str, &str)> = ratios
        .iter()
        .map(|(l, a, b)| (l.as_str(), a.as_str(), b.as_str()))
        .collect();
    r.print(&title, &ratios);
}

/// A fresh directory under the system's temporary one, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "farcall-bench-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
