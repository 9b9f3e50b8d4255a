//! Call metadata: set per stub, read by the handler from its
//! `CallContext`, passed on (with the remaining deadline) to the calls a
//! handler makes under `propagate`, bounded by the receiver's limits
//! before any entry is read, on remote, local and mediated calls.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use farcall::__private::wire::frame::{self, FLAG_METADATA};
use farcall::__private::wire::handshake::{self, ANSWER_PREFIX, Hello};
use farcall::__private::wire::{Fault, Frame};
use farcall::node::{Address, NodeId};
use farcall::observe::{Metadata, propagate};
use farcall::rmi::ObjectId;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::wait::within;

/// What a handler saw of its call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, farcall::Schema)]
pub struct Seen {
    /// The metadata, as `key=value` text.
    pub entries: Vec<String>,
    /// Milliseconds left until the caller's deadline.
    pub left_ms: Option<u64>,
}

fn seen() -> Seen {
    let cx = CallContext::current().expect("inside a call");
    Seen {
        entries: cx
            .metadata()
            .iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
            .collect(),
        left_ms: cx.deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .as_millis() as u64
        }),
    }
}

/// Tells what it saw.
#[farcall::remote]
pub trait Inspect {
    /// What this call carried.
    async fn inspect(&self) -> Result<Seen, RemoteError>;
}

struct Inspector;

#[farcall::remote]
impl Inspect for Inspector {
    async fn inspect(&self) -> Result<Seen, RemoteError> {
        Ok(seen())
    }
}

/// Calls an `Inspect` further on, with or without passing its call on.
#[farcall::remote]
pub trait Front {
    /// What the back saw of the nested call.
    async fn relay(&self, pass_on: bool) -> Result<Seen, RemoteError>;
}

struct Relay {
    back: Remote<dyn Inspect>,
}

#[farcall::remote]
impl Front for Relay {
    async fn relay(&self, pass_on: bool) -> Result<Seen, RemoteError> {
        if pass_on {
            propagate(self.back.inspect()).await
        } else {
            self.back.inspect().await
        }
    }
}

async fn server() -> Node {
    let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    node.serve::<dyn Inspect, _>("inspect", Inspector);
    node
}

#[tokio::test]
async fn a_stubs_metadata_reaches_the_handler() {
    within(20, "the test", async {
        let server = server().await;
        let client = Node::new();
        let plain = client
            .connect_service::<dyn Inspect>(server.local_addr().unwrap(), "inspect")
            .await
            .unwrap();
        assert_eq!(plain.inspect().await.unwrap().entries, Vec::<String>::new());
        let tagged = plain.with_metadata(Metadata::new().with("tenant", "acme").with("n", "1"));
        assert_eq!(
            tagged.inspect().await.unwrap().entries,
            ["tenant=acme", "n=1"]
        );
        // The plain stub is unchanged.
        assert!(plain.inspect().await.unwrap().entries.is_empty());
        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_local_reference_delivers_metadata_too() {
    within(20, "the test", async {
        let node = Node::new();
        let local = node.export::<dyn Inspect, _>(Inspector);
        let tagged = local.with_metadata(Metadata::new().with("tenant", "here"));
        assert_eq!(tagged.inspect().await.unwrap().entries, ["tenant=here"]);
        node.shutdown().await;
    })
    .await;
}

/// Metadata and the remaining deadline flow on to a nested call only
/// under `propagate`; a stub's own metadata wins for a key both have.
#[tokio::test]
async fn propagate_passes_metadata_and_deadline_on() {
    within(20, "the test", async {
        let back_node = server().await;
        let front_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let back = front_node
            .connect_service::<dyn Inspect>(back_node.local_addr().unwrap(), "inspect")
            .await
            .unwrap();
        let back = back.with_metadata(Metadata::new().with("hop", "front"));
        front_node.serve::<dyn Front, _>("front", Relay { back });

        let client = Node::new();
        let front = client
            .connect_service::<dyn Front>(front_node.local_addr().unwrap(), "front")
            .await
            .unwrap()
            .with_metadata(Metadata::new().with("trace", "t-1").with("hop", "client"))
            .with_deadline(Duration::from_secs(3));

        let passed = front.relay(true).await.unwrap();
        assert_eq!(passed.entries, ["hop=front", "trace=t-1"]);
        // The back's deadline is the client's three seconds, not the
        // default thirty.
        let left = passed.left_ms.unwrap();
        assert!(left <= 3_000, "{left} ms left");

        let kept = front.relay(false).await.unwrap();
        assert_eq!(kept.entries, ["hop=front"]);
        let left = kept.left_ms.unwrap();
        assert!(left > 3_000, "{left} ms left: the node's default");

        client.shutdown().await;
        front_node.shutdown().await;
        back_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn too_much_metadata_fails_on_the_callers_side() {
    within(20, "the test", async {
        let server = server().await;
        let client = Node::new();
        let stub = client
            .connect_service::<dyn Inspect>(server.local_addr().unwrap(), "inspect")
            .await
            .unwrap();
        let mut many = Metadata::new();
        for i in 0..33 {
            many.insert(format!("k{i}"), "v").unwrap();
        }
        let e = stub.with_metadata(many).inspect().await.unwrap_err();
        assert!(
            e.to_string()
                .contains("33 metadata entries exceed the limit of 32"),
            "{e}"
        );
        let big = Metadata::new().with("big", vec![b'x'; 9000]);
        let e = stub.with_metadata(big).inspect().await.unwrap_err();
        assert!(e.to_string().contains("exceed the limit of 8192"), "{e}");
        // The stub goes on.
        assert!(stub.inspect().await.unwrap().entries.is_empty());
        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
}

async fn raw_client(server: &Node) -> TcpStream {
    let addr = match server.local_addr().unwrap() {
        Address::Tcp { host, port } => format!("{host}:{port}"),
        other => panic!("a tcp server, not {other}"),
    };
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let hello = handshake::encode_hello(&Hello {
        node: NodeId::random(),
        max_frame_len: 1 << 20,
        max_in_flight: 64,
        credentials: None,
    });
    s.write_all(&hello).await.unwrap();
    let mut p = [0u8; ANSWER_PREFIX];
    s.read_exact(&mut p).await.unwrap();
    let (status, len) = handshake::decode_answer_prefix(&p).unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    handshake::decode_answer_body(status, &body).unwrap();
    s
}

async fn reply_to(s: &mut TcpStream, id: u64) -> Result<Bytes, Fault> {
    let mut buf = BytesMut::new();
    loop {
        while let Some(body) = frame::split(&mut buf, u32::MAX).unwrap() {
            if let Frame::Reply { id: got, result } = Frame::decode(body).unwrap()
                && got == id
            {
                return result;
            }
        }
        assert_ne!(s.read_buf(&mut buf).await.unwrap(), 0, "the server closed");
    }
}

fn call(id: u64, method: u64, flags: u32, metadata: Bytes) -> BytesMut {
    let mut b = BytesMut::new();
    let f = Frame::Call {
        id,
        timeout_us: 5_000_000,
        object: ObjectId::for_service("inspect"),
        method,
        flags,
        metadata,
        payload: Bytes::from_static(&[]),
    };
    frame::encode(&mut b, &f, u32::MAX).unwrap();
    b
}

/// A block with a count over the limit, one that lies about its length,
/// and an unknown flag are each answered with a fault naming the problem;
/// the connection goes on, and a good call after them is served.
#[tokio::test]
async fn the_receiver_checks_metadata_before_reading_it() {
    within(20, "the test", async {
        let server = server().await;
        let word = <dyn Inspect as farcall::rmi::Interface>::descriptor().methods[0].word();
        let mut s = raw_client(&server).await;

        // A count of 2^40 entries in a block of six bytes.
        let count = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        s.write_all(&call(1, word, 0, count)).await.unwrap();
        let Err(Fault::Rejected(why)) = reply_to(&mut s, 1).await else {
            panic!("a refusal")
        };
        assert!(why.contains("exceed the limit of 32"), "{why}");

        let lie = Bytes::from_static(&[1, 1, b'k', 0xff, 0x0f]);
        s.write_all(&call(2, word, 0, lie)).await.unwrap();
        let Err(Fault::Rejected(why)) = reply_to(&mut s, 2).await else {
            panic!("a refusal")
        };
        assert!(why.contains("metadata is malformed"), "{why}");

        s.write_all(&call(3, word, 4, Bytes::new())).await.unwrap();
        let Err(Fault::Rejected(why)) = reply_to(&mut s, 3).await else {
            panic!("a refusal")
        };
        assert!(why.contains("flags 0x4"), "{why}");

        let good = Metadata::new().with("tenant", "raw").encode();
        s.write_all(&call(4, word, 0, good)).await.unwrap();
        let ok = reply_to(&mut s, 4).await.unwrap();
        let seen: Result<Seen, RemoteError> = farcall::__private::codec::decode(&ok).unwrap();
        assert_eq!(seen.unwrap().entries, ["tenant=raw"]);
        assert_eq!(FLAG_METADATA, 1);
        server.shutdown().await;
    })
    .await;
}

/// Mediated calls carry metadata through an embedded broker.
#[tokio::test]
async fn mediated_calls_carry_metadata() {
    within(20, "the test", async {
        let broker = farcall::mme::Broker::embedded();
        let _serving = broker
            .serve::<dyn Inspect, _>("inspect", Inspector)
            .await
            .unwrap();
        let stub = broker.stub::<dyn Inspect>("inspect").await.unwrap();
        let tagged = stub.with_metadata(Metadata::new().with("via", "queue"));
        assert_eq!(tagged.inspect().await.unwrap().entries, ["via=queue"]);
        assert!(stub.inspect().await.unwrap().entries.is_empty());
    })
    .await;
}
