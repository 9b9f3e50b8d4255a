//! The broker's durability (see `tests/broker/mod.rs`): a durable queue
//! across a restart of the broker (the standalone broker killed with kill
//! -9, nats-server killed and started on its JetStream store); segments
//! reclaimed once acknowledged (embedded only: the command does not set
//! the segment size); and the fault test, standalone only: kill -9 of the
//! broker during 10,000 confirmed sends (default fsync, and `--fsync
//! always`), no confirmed message lost (run with `--nocapture` for the
//! figures).
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod broker;
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use farcall::mme::{Broker, BrokerConfig, Queue, QueueConfig};

use common::temp_dir::TempDir;
use common::wait::within;

use broker::*;

suite!(durable_queue_survives_restart,);

// ---------------------------------------------------------------------------
// 2. Durability
// ---------------------------------------------------------------------------

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
