//! The metrics farcall records, read back through a recorder installed
//! for this test binary: calls by interface, method and outcome on both
//! sides, latency, calls in flight, bytes, connections, leases; the
//! broker's messages and depth; the directory's bindings.
//!
//! One test only: the recorder is the process's.

mod common;

use std::collections::HashMap;

use farcall::{Node, RemoteError};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use common::wait::within;

/// Adds, or refuses odd numbers.
#[farcall::remote]
pub trait Even {
    /// `n` when even.
    async fn check(&self, n: u32) -> Result<u32, RemoteError>;
    /// Never answers in time.
    async fn stall(&self) -> Result<(), RemoteError>;
}

struct Checker;

#[farcall::remote]
impl Even for Checker {
    async fn check(&self, n: u32) -> Result<u32, RemoteError> {
        if n % 2 == 1 {
            return Err(RemoteError::Rejected("odd".into()));
        }
        Ok(n)
    }
    async fn stall(&self) -> Result<(), RemoteError> {
        std::future::pending().await
    }
}

/// Every figure so far, keyed `name{label=value,...}` with the labels
/// sorted. The debugging recorder hands out what changed since its last
/// snapshot (it resets counters and gauges to zero), so the figures add
/// up the snapshots; a gauge that is set, not moved (a queue's depth),
/// keeps its last value.
struct Figures {
    snap: Snapshotter,
    totals: HashMap<String, f64>,
}

impl Figures {
    fn read(&mut self) -> HashMap<String, f64> {
        for (k, _, _, v) in self.snap.snapshot().into_vec() {
            let key = k.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let (value, absolute) = match v {
                DebugValue::Counter(n) => (n as f64, false),
                DebugValue::Gauge(g) => {
                    (g.into_inner(), key.name() == "farcall_broker_queue_depth")
                }
                DebugValue::Histogram(h) => (h.len() as f64, false),
            };
            let total = self.totals.entry(name).or_insert(0.0);
            if absolute {
                *total = value;
            } else {
                *total += value;
            }
        }
        self.totals.clone()
    }
}

fn get(f: &HashMap<String, f64>, key: &str) -> f64 {
    *f.get(key).unwrap_or_else(|| {
        let mut keys: Vec<_> = f.keys().collect();
        keys.sort();
        panic!("no figure {key}; figures: {keys:#?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_connections_leases_broker_and_directory_are_counted() {
    let recorder = DebuggingRecorder::new();
    let mut figures = Figures {
        snap: recorder.snapshotter(),
        totals: HashMap::new(),
    };
    recorder
        .install()
        .expect("the only recorder of this binary");

    within(30, "the counted calls", async {
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        server.serve::<dyn Even, _>("even", Checker);
        let client = Node::new();
        let even = client
            .connect_service::<dyn Even>(server.local_addr().unwrap(), "even")
            .await
            .unwrap();
        for n in 0..10 {
            let _ = even.check(n).await;
        }
        let late = even.with_deadline(std::time::Duration::from_millis(50));
        assert!(late.stall().await.is_err());

        let f = figures.read();
        let calls = |side: &str, outcome: &str| {
            get(
                &f,
                &format!(
                    "farcall_calls_finished_total{{interface=Even,method=check,outcome={outcome},side={side}}}"
                ),
            )
        };
        // Application errors travel inside a runtime-level success.
        assert_eq!(calls("client", "ok"), 10.0);
        assert_eq!(calls("server", "ok"), 10.0);
        assert_eq!(
            get(
                &f,
                "farcall_calls_started_total{interface=Even,method=check,side=client}"
            ),
            10.0
        );
        assert_eq!(
            get(
                &f,
                "farcall_calls_finished_total{interface=Even,method=stall,outcome=deadline_exceeded,side=client}"
            ),
            1.0
        );
        assert_eq!(
            get(
                &f,
                "farcall_call_duration_seconds{interface=Even,method=check,side=server}"
            ),
            10.0,
            "one latency sample per call"
        );
        assert_eq!(
            get(
                &f,
                "farcall_calls_in_flight{interface=Even,method=check,side=client}"
            ),
            0.0
        );
        assert!(get(&f, "farcall_bytes_sent_total{}") > 0.0);
        assert!(get(&f, "farcall_bytes_received_total{}") > 0.0);
        assert!(get(&f, "farcall_connections{}") >= 2.0, "both ends open");
        assert!(get(&f, "farcall_connections_opened_total{}") >= 2.0);
        // The stub from `connect_service` holds a lease on the service.
        assert!(get(&f, "farcall_leases_held{}") >= 1.0);

        // The broker counts what goes in and out, and its depth.
        let broker = farcall::mme::Broker::embedded();
        let q = broker.queue::<u32>("jobs").await.unwrap();
        for n in 0..3 {
            q.send(&n).await.unwrap();
        }
        let f = figures.read();
        assert_eq!(get(&f, "farcall_broker_messages_in_total{queue=jobs}"), 3.0);
        assert_eq!(get(&f, "farcall_broker_queue_depth{queue=jobs}"), 3.0);
        let mut c = q.consume().await.unwrap();
        let d = c.next().await.unwrap().unwrap();
        d.ack().await.unwrap();
        let f = figures.read();
        assert!(get(&f, "farcall_broker_messages_out_total{queue=jobs}") >= 1.0);

        // The directory counts its bindings.
        let dir = farcall::directory::DirectoryClient::local(&server);
        let before = figures.read()
            .get("farcall_directory_bindings{}")
            .copied()
            .unwrap_or(0.0);
        let obj = server.export::<dyn Even, _>(Checker);
        dir.bind("checkers/one", &obj).await.unwrap();
        let f = figures.read();
        assert_eq!(get(&f, "farcall_directory_bindings{}"), before + 1.0);
        dir.unbind("checkers/one").await.unwrap();
        let f = figures.read();
        assert_eq!(get(&f, "farcall_directory_bindings{}"), before);

        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
}
