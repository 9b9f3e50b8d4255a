//! The broker's topics on every backend (see `tests/broker/mod.rs`):
//! fan-out, wildcards, bad subjects and patterns, slow subscribers dropped
//! from or cut off.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod broker;
mod common;

use farcall::mme::{Broker, BrokerError, SlowPolicy, SubscribeOptions, Subscription};

use common::wait::within;

use broker::*;

suite!(fan_out, bad_subjects, slow_drop_oldest, slow_disconnect,);

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
