//! Waiting with a safety net: [`within`] fails a test instead of letting
//! it hang, [`until`] polls a condition. The time-outs only keep a broken
//! build from hanging; nothing asserts speed.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// `f`'s output; panics (naming `what`) when it does not finish in `secs`.
pub(crate) async fn within<F: Future>(secs: u64, what: &str, f: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {secs} s"),
    }
}

/// Polls `cond` every 20 ms until it holds; panics (naming `what`) after
/// `secs`.
pub(crate) async fn until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(secs, what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}
