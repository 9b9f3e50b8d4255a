//! The broker suite's fixtures: one behaviour suite run against every
//! backend, so that no feature works on one and silently not on another.
//! `mod broker;` at the top of each `broker_*.rs`:
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

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use farcall::mme::{Broker, BrokerConfig, QueueStats};
use farcall::{Node, RemoteError};

use crate::common::nats::NatsServer;
use crate::common::process::{BIN, Served};
use crate::common::temp_dir::TempDir;
use crate::common::wait::within;

/// A calculator, served through a broker queue.
#[farcall::remote]
pub trait Calc {
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

/// Adds, counting the calls it served.
pub(crate) struct Adder {
    pub(crate) served: Arc<AtomicU64>,
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
pub(crate) enum Backend {
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
    pub(crate) fn counts_all(self) -> bool {
        self != Backend::Nats
    }

    /// Whether a consumer that dies without closing (a process killed, a
    /// connection cut, the broker stopped) gives its deliveries back at
    /// once: the broker sees its connection end. On NATS they come back
    /// when their ack-wait runs out.
    pub(crate) fn gives_back_at_once(self) -> bool {
        self != Backend::Nats
    }
}

/// The broker of one test, and two clients of it; everything it started
/// stops when it is dropped.
pub(crate) struct World {
    pub(crate) backend: Backend,
    /// A client (embedded: the broker).
    pub(crate) a: Broker,
    /// Another client (embedded: another handle of the broker).
    pub(crate) b: Broker,
    /// Where another process reaches the broker.
    pub(crate) addr: String,
    /// How the broker was configured (embedded, standalone).
    pub(crate) max_message: Option<u64>,
    /// Embedded: the node the broker is exposed on.
    pub(crate) node: Option<Node>,
    pub(crate) process: Option<Served>,
    pub(crate) nats: Option<NatsServer>,
    /// Whether [`World::stop`] stopped it.
    pub(crate) stopped: bool,
    pub(crate) data: TempDir,
}

impl World {
    /// A broker with the default configuration for the test `name`.
    /// `None` when the backend cannot run here (NATS without nats-server:
    /// already said, loudly).
    pub(crate) async fn start(backend: Backend, name: &str) -> Option<World> {
        World::with_max_message(backend, name, None).await
    }

    /// A broker taking messages of at most `max_message` bytes (NATS: the
    /// server's own limit, which a client cannot set).
    pub(crate) async fn with_max_message(
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
    pub(crate) async fn open(&mut self) {
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
    pub(crate) async fn stop(&mut self) {
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

/// The ack-wait of queues whose consumer dies without closing: short, as
/// on NATS its deliveries come back only once it runs out; long enough
/// that they do not come back before the consumer dies.
pub(crate) const SHORT_ACK_WAIT: Duration = Duration::from_secs(2);

/// A client of the broker at `addr`.
pub(crate) async fn connect(addr: &str) -> Broker {
    within(20, "connecting to the broker", Broker::connect(addr))
        .await
        .expect("the broker answers")
}

/// `farcall broker serve` on a free port with `data` (and `more`
/// arguments), killed (SIGKILL) when dropped.
pub(crate) async fn broker_process(data: &Path, more: &[&str]) -> Served {
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
pub(crate) async fn queue_stats(b: &Broker, name: &str) -> QueueStats {
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
pub(crate) async fn stats_until(
    b: &Broker,
    name: &str,
    what: &str,
    ok: impl Fn(&QueueStats) -> bool,
) {
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
pub(crate) async fn settled(w: &World, name: &str, dead: u64) {
    let counts = w.backend.counts_all();
    stats_until(&w.a, name, &format!("{name} settled"), |s| {
        s.depth == 0 && s.in_flight == 0 && (!counts || s.dead_lettered == dead)
    })
    .await
}

/// One `#[tokio::test]` per behaviour and backend: `<behaviour>::embedded`,
/// `<behaviour>::standalone`, `<behaviour>::nats`.
macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        $(
            mod $behaviour {
                crate::broker::suite!(@test $behaviour, embedded, Embedded);
                crate::broker::suite!(@test $behaviour, standalone, Standalone);
                #[cfg(feature = "nats")]
                crate::broker::suite!(@test $behaviour, nats, Nats);
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

pub(crate) use suite;
