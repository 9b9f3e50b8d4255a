//! One OpenTelemetry trace across nodes: a call, a callback the server
//! makes to the caller, and a mediated call through a broker queue, all
//! recorded by an in-memory span exporter. The nodes talk over loopback
//! TCP, and each handler runs on its connection's own task, so a span can
//! only find its parent through the `traceparent` the call carried.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::collections::HashMap;

use farcall::{Node, Remote, RemoteError};
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

use common::wait::within;

/// Answers a callback.
#[farcall::remote]
pub trait Listener {
    /// Says hello back.
    async fn ping(&self, n: u32) -> Result<u32, RemoteError>;
}

struct Echo;

#[farcall::remote]
impl Listener for Echo {
    async fn ping(&self, n: u32) -> Result<u32, RemoteError> {
        Ok(n)
    }
}

/// Works through a broker queue.
#[farcall::remote]
pub trait Worker {
    /// Doubles.
    async fn double(&self, n: u32) -> Result<u32, RemoteError>;
}

struct Doubler;

#[farcall::remote]
impl Worker for Doubler {
    async fn double(&self, n: u32) -> Result<u32, RemoteError> {
        Ok(n * 2)
    }
}

/// Calls back, then asks the worker.
#[farcall::remote]
pub trait Hub {
    /// `listener.ping(n)`, then the worker's double of it.
    async fn visit(&self, listener: Remote<dyn Listener>, n: u32) -> Result<u32, RemoteError>;
}

struct Center {
    worker: farcall::mme::Mediated<dyn Worker>,
}

#[farcall::remote]
impl Hub for Center {
    async fn visit(&self, listener: Remote<dyn Listener>, n: u32) -> Result<u32, RemoteError> {
        let back = listener.ping(n).await?;
        self.worker.double(back).await
    }
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test]
async fn one_trace_crosses_a_call_a_callback_and_a_broker() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("farcall-tests")));
    // A current-thread runtime: every task of both nodes runs on this
    // thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    within(30, "the traced calls", async {
        let broker = farcall::mme::Broker::embedded();
        let _serving = broker
            .serve::<dyn Worker, _>("work", Doubler)
            .await
            .unwrap();
        let worker = broker.stub::<dyn Worker>("work").await.unwrap();
        let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        server.serve::<dyn Hub, _>("hub", Center { worker });
        let client = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let hub = client
            .connect_service::<dyn Hub>(server.local_addr().unwrap(), "hub")
            .await
            .unwrap();
        let listener = client.export::<dyn Listener, _>(Echo);
        assert_eq!(hub.visit(listener, 21).await.unwrap(), 42);
        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let named = |name: &str, kind: SpanKind| -> &SpanData {
        spans
            .iter()
            .find(|s| s.name == name && s.span_kind == kind)
            .unwrap_or_else(|| {
                let all: Vec<_> = spans.iter().map(|s| (&s.name, &s.span_kind)).collect();
                panic!("no {kind:?} span {name}; spans: {all:?}")
            })
    };
    let visit_client = named("Hub/visit", SpanKind::Client);
    let visit_server = named("Hub/visit", SpanKind::Server);
    let ping_client = named("Listener/ping", SpanKind::Client);
    let ping_server = named("Listener/ping", SpanKind::Server);
    let double_client = named("Worker/double", SpanKind::Client);
    let double_server = named("Worker/double", SpanKind::Server);

    // One trace, rooted at the first call.
    let trace: TraceId = visit_client.span_context.trace_id();
    let ours: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    for s in [
        visit_server,
        ping_client,
        ping_server,
        double_client,
        double_server,
    ] {
        assert_eq!(s.span_context.trace_id(), trace, "{} in the trace", s.name);
    }
    assert_eq!(visit_client.parent_span_id, SpanId::INVALID, "the root");

    // Parent and child, hop by hop; a server span's parent came over the
    // wire.
    let id = |s: &SpanData| s.span_context.span_id();
    assert_eq!(visit_server.parent_span_id, id(visit_client));
    assert!(visit_server.parent_span_is_remote);
    assert_eq!(ping_client.parent_span_id, id(visit_server));
    assert_eq!(ping_server.parent_span_id, id(ping_client));
    assert!(ping_server.parent_span_is_remote);
    assert_eq!(double_client.parent_span_id, id(visit_server));
    assert_eq!(double_server.parent_span_id, id(double_client));
    assert!(double_server.parent_span_is_remote);

    // The RPC semantic-convention fields, and farcall's own.
    let by_key: HashMap<&str, String> =
        ["rpc.system", "rpc.service", "rpc.method", "farcall.outcome"]
            .into_iter()
            .filter_map(|k| attr(visit_server, k).map(|v| (k, v)))
            .collect();
    assert_eq!(by_key["rpc.system"], "farcall");
    assert_eq!(by_key["rpc.service"], "Hub");
    assert_eq!(by_key["rpc.method"], "visit");
    assert_eq!(by_key["farcall.outcome"], "ok");
    assert!(attr(visit_server, "farcall.peer").is_some());
    assert!(attr(visit_client, "farcall.duration_us").is_some());
    assert!(ours.len() >= 6, "{} spans in the trace", ours.len());
}
