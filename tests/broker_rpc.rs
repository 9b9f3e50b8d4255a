//! Mediated RPC through the broker on every backend (see
//! `tests/broker/mod.rs`): load sharing, a call waiting for a server, a
//! call whose deadline passes; references and streams, which a broker
//! cannot carry, refused where they are encoded.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod broker;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use farcall::{Node, Remote, RemoteError, Stream};

use common::wait::within;

use broker::*;

suite!(
    mediated_rpc,
    references_and_streams_are_refused,
    metadata_travels_with_calls,
);

// ---------------------------------------------------------------------------
// Mediated RPC
// ---------------------------------------------------------------------------

/// Reads the metadata of its calls.
#[farcall::remote]
pub trait Tags {
    /// The value of `key` in this call's metadata.
    async fn tag(&self, key: String) -> Result<Option<Vec<u8>>, RemoteError>;
}

struct TagReader;

#[farcall::remote]
impl Tags for TagReader {
    async fn tag(&self, key: String) -> Result<Option<Vec<u8>>, RemoteError> {
        let cx = farcall::rpc::CallContext::current().expect("inside a call");
        Ok(cx.metadata().get(&key).map(|v| v.to_vec()))
    }
}

/// Text and binary values reach a mediated call's handler on every
/// backend (NATS carries them as headers).
async fn metadata_travels_with_calls(backend: Backend) {
    let Some(w) = World::start(backend, "tags").await else {
        return;
    };
    let _serving = w.b.serve::<dyn Tags, _>("tags", TagReader).await.unwrap();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let stub = w.a.stub::<dyn Tags>("tags").await.unwrap().with_metadata(
        farcall::observe::Metadata::new()
            .with("traceparent", traceparent)
            .with("blob", vec![0u8, 10, 13, 255]),
    );
    assert_eq!(
        stub.tag("traceparent".into()).await.unwrap().as_deref(),
        Some(traceparent.as_bytes())
    );
    assert_eq!(
        stub.tag("blob".into()).await.unwrap().as_deref(),
        Some(&[0u8, 10, 13, 255][..])
    );
    assert_eq!(stub.tag("absent".into()).await.unwrap(), None);
}

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

    // A per-call deadline on a stub made without one, as on a direct stub;
    // the stub it came from keeps the default (30 s).
    let plain = a.stub::<dyn Calc>("calc-nobody").await.unwrap();
    assert_eq!(plain.queue(), "calc-nobody");
    let hasty = plain.with_deadline(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let e = hasty.add(1, 1).await.unwrap_err();
    assert!(matches!(e, RemoteError::DeadlineExceeded), "{e:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let waiting = tokio::time::timeout(Duration::from_millis(600), plain.add(1, 1)).await;
    assert!(waiting.is_err(), "the plain stub still waits: {waiting:?}");
}

/// What a broker cannot carry: a stream in the arguments, a reference in
/// the result.
#[farcall::remote]
pub trait Relay {
    /// The sum of the stream's items.
    async fn sum(&self, items: Stream<u32>) -> Result<u32, RemoteError>;
    /// A reference to an object of the server's.
    async fn handle(&self) -> Result<Remote<dyn Doubler>, RemoteError>;
    /// A plain call, to show the server serves.
    async fn twice(&self, n: u32) -> Result<u32, RemoteError>;
}

/// What the reference of [`Relay::handle`] is to.
#[farcall::remote]
pub trait Doubler {
    /// `2 * n`.
    async fn double(&self, n: u32) -> Result<u32, RemoteError>;
}

struct Relayer(Node);
struct Double;

#[farcall::remote]
impl Doubler for Double {
    async fn double(&self, n: u32) -> Result<u32, RemoteError> {
        Ok(2 * n)
    }
}

#[farcall::remote]
impl Relay for Relayer {
    async fn sum(&self, mut items: Stream<u32>) -> Result<u32, RemoteError> {
        let mut total = 0;
        while let Some(i) = items.next().await {
            total += i?;
        }
        Ok(total)
    }
    async fn handle(&self) -> Result<Remote<dyn Doubler>, RemoteError> {
        Ok(self.0.export(Double))
    }
    async fn twice(&self, n: u32) -> Result<u32, RemoteError> {
        Ok(2 * n)
    }
}

/// A stream argument is refused on the caller's side when the call is
/// encoded, a reference result on the server's when the reply is; the
/// server goes on serving.
async fn references_and_streams_are_refused(backend: Backend) {
    let Some(w) = World::start(backend, "rpc-refusals").await else {
        return;
    };
    let node = Node::new();
    let _serving =
        w.b.serve::<dyn Relay, _>("relay", Relayer(node.clone()))
            .await
            .unwrap();
    let relay = w.a.stub::<dyn Relay>("relay").await.unwrap();
    match relay.sum(Stream::iter([1, 2, 3])).await {
        Err(RemoteError::Encode(why)) => {
            assert!(
                why.contains("a farcall::Stream cannot travel through a broker"),
                "{why}"
            )
        }
        other => panic!("expected the stream refused, got {other:?}"),
    }
    match relay.handle().await {
        Err(RemoteError::Rejected(why)) => assert!(
            why.contains("a reference to a remote object cannot travel through a broker"),
            "{why}"
        ),
        other => panic!("expected the reference refused, got {other:?}"),
    }
    assert_eq!(relay.twice(21).await.unwrap(), 42);
}
