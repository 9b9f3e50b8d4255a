//! Direct message exchange, asymmetric (`farcall::dme::{Server, Client}`),
//! through the facade as a user writes it: ten thousand requests in flight
//! on one connection, and more than the in-flight limit; two hundred
//! clients at once; calls both ways on one connection; one-way sends; and
//! addresses, parsed and refused.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use farcall::__private::codec;
use farcall::__private::service::{OutcomeFuture, Service};
use farcall::dme::{Client, Peer, PeerId, Server};
use farcall::node::{Address, AddressError, Limits};
use farcall::rmi::ObjectId;
use farcall::rpc::{CallContext, Fault};
use farcall::{Error, Node};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use common::transport::{Transport, on_transports};
use common::wait::within;

on_transports!([tcp, unix, mem];
    ten_thousand_requests_in_flight_on_one_connection,
    ten_thousand_requests_under_default_limits,
    two_hundred_concurrent_clients,
    calls_in_both_directions_on_one_connection,
    one_way_send,
);

async fn ten_thousand_requests_in_flight_on_one_connection(t: Transport) {
    const N: usize = 10_000;
    // Both ends allow all of them in flight at once; the handlers are held
    // until the last request has arrived, so all 10,000 are in flight.
    let mut limits = Limits::default();
    limits.max_in_flight = 2 * N as u32;
    let arrived = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(watch::Sender::new(false));
    let node = Node::builder()
        .limits(limits.clone())
        .listen(t.addr())
        .await
        .unwrap();
    let server = Server::listen_on(&node, {
        let arrived = arrived.clone();
        move |i: u64| {
            let mut open = gate.subscribe();
            if arrived.fetch_add(1, Ordering::SeqCst) + 1 == N {
                gate.send_replace(true);
            }
            async move {
                let _ = open.wait_for(|open| *open).await;
                i * 3 + 1
            }
        }
    })
    .expect("the node listens");
    let client_node = Node::builder().limits(limits).build();
    let client: Client<u64, u64> = Client::connect_on(&client_node, server.local_addr())
        .await
        .unwrap();
    let mut calls = JoinSet::new();
    for i in 0..N as u64 {
        let client = client.clone();
        calls.spawn(async move { (i, client.request(i).await) });
    }
    let mut answered = 0;
    within(60, "10,000 requests in flight", async {
        while let Some(done) = calls.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer.unwrap(), i * 3 + 1, "answer to request {i}");
            answered += 1;
        }
    })
    .await;
    assert_eq!(answered, N);
    assert_eq!(arrived.load(Ordering::SeqCst), N);
    assert_eq!(client_node.connections().len(), 1, "all on one connection");
    server.shutdown().await;
}

async fn ten_thousand_requests_under_default_limits(t: Transport) {
    // More requests than the default in-flight limit (1024): callers wait
    // for a slot (back-pressure) and every one is answered.
    let server = Server::listen(t.addr(), |i: u64| async move { i.wrapping_mul(7) })
        .await
        .unwrap();
    let client: Client<u64, u64> = Client::connect(server.local_addr()).await.unwrap();
    let mut calls = JoinSet::new();
    for i in 0..10_000u64 {
        let client = client.clone();
        calls.spawn(async move { (i, client.request(i).await) });
    }
    within(60, "10,000 requests", async {
        while let Some(done) = calls.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer.unwrap(), i * 7);
        }
    })
    .await;
    server.shutdown().await;
}

async fn two_hundred_concurrent_clients(t: Transport) {
    const CLIENTS: u32 = 200;
    let server = Server::listen(t.addr(), |(client, i): (u32, u32)| async move {
        format!("client {client}, request {i}")
    })
    .await
    .unwrap();
    let mut clients = JoinSet::new();
    for c in 0..CLIENTS {
        let addr = server.local_addr().clone();
        clients.spawn(async move {
            let client = Client::<(u32, u32), String>::connect(&addr).await.unwrap();
            let (a, b) = tokio::join!(client.request((c, 0)), client.request((c, 1)));
            assert_eq!(a.unwrap(), format!("client {c}, request 0"));
            assert_eq!(b.unwrap(), format!("client {c}, request 1"));
            for i in 2..10 {
                assert_eq!(
                    client.request((c, i)).await.unwrap(),
                    format!("client {c}, request {i}")
                );
            }
            client
        });
    }
    let mut connected = Vec::new();
    within(60, "200 clients", async {
        while let Some(client) = clients.join_next().await {
            connected.push(client.unwrap());
        }
    })
    .await;
    assert_eq!(connected.len(), CLIENTS as usize);
    assert_eq!(
        server.node().connections().len(),
        CLIENTS as usize,
        "one connection per client"
    );
    server.shutdown().await;
}

/// The object both nodes serve in the two-way test.
const DOUBLER: ObjectId = ObjectId(0xd0ab_1e00_0000_0000_0000_0000_0000_0001);
/// Doubles a number.
const DOUBLE: u64 = 0;
/// Asks the caller's own doubler first, over the connection the call came
/// on (a callback), then doubles its answer.
const DOUBLE_VIA_CALLER: u64 = 1;

/// Serves [`DOUBLER`] on its node.
struct Doubler {
    node: Node,
}

impl Service for Doubler {
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        // The node's one connection to the caller: the one the call came on.
        let back = self.node.connection_to(cx.caller);
        Box::pin(async move {
            let n: u64 = codec::decode(&payload).map_err(|e| Fault::Decode(e.to_string()))?;
            let n = match method {
                DOUBLE => n,
                DOUBLE_VIA_CALLER => back
                    .ok_or(Fault::NoRoute)?
                    .call::<u64, u64>(DOUBLER, DOUBLE, &n, None)
                    .await
                    .map_err(|e| Fault::Rejected(e.to_string()))?,
                _ => return Err(Fault::NoSuchMethod),
            };
            codec::encode(&(n * 2)).map_err(|e| Fault::Rejected(e.to_string()))
        })
    }
}

async fn calls_in_both_directions_on_one_connection(t: Transport) {
    let a = Node::listen(t.addr()).await.unwrap();
    a.serve_object(DOUBLER, Arc::new(Doubler { node: a.clone() }));
    let b = Node::new();
    b.serve_object(DOUBLER, Arc::new(Doubler { node: b.clone() }));
    // Any handle on the connection will do; a dme client gives one.
    let b_to_a = Client::<(), ()>::connect_on(&b, a.local_addr().unwrap())
        .await
        .unwrap()
        .connection();
    // A has registered the connection once it has served a call on it.
    assert_eq!(
        b_to_a
            .call::<u64, u64>(DOUBLER, DOUBLE, &1, None)
            .await
            .unwrap(),
        2
    );
    let a_to_b = a.connection_to(b.id()).expect("A's end of the connection");

    let mut calls = JoinSet::new();
    for i in 0..1000u64 {
        for (conn, method, factor) in [
            (&b_to_a, DOUBLE, 2),
            (&a_to_b, DOUBLE, 2),
            (&b_to_a, DOUBLE_VIA_CALLER, 4),
            (&a_to_b, DOUBLE_VIA_CALLER, 4),
        ] {
            let conn = conn.clone();
            calls.spawn(async move {
                let got: u64 = conn.call(DOUBLER, method, &i, None).await.unwrap();
                assert_eq!(got, i * factor, "method {method} of {i}");
            });
        }
    }
    within(60, "calls both ways", async {
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(a.connections().len(), 1);
    assert_eq!(b.connections().len(), 1);
    for node in [b, a] {
        node.remove_object(DOUBLER); // it holds its node
        node.shutdown().await;
    }
}

async fn one_way_send(t: Transport) {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = Server::listen(t.addr(), move |n: u32| {
        let _ = seen_tx.send(n);
        async move { n }
    })
    .await
    .unwrap();
    let client: Client<u32, u32> = Client::connect(server.local_addr()).await.unwrap();
    for n in 1..=100 {
        client.send(n).await.unwrap();
    }
    let mut got = Vec::new();
    within(10, "one-way messages", async {
        while got.len() < 100 {
            got.push(seen.recv().await.unwrap());
        }
    })
    .await;
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    // Their answers were dropped: the next request gets its own.
    assert_eq!(client.request(7).await.unwrap(), 7);
    server.shutdown().await;
}

#[test]
fn address_parse_errors_name_the_input() {
    for bad in [
        "127.0.0.1:80",
        "http://127.0.0.1:80",
        "tcp://127.0.0.1",
        "tcp://:80",
        "tcp://127.0.0.1:65536",
        "unix://relative/path.sock",
        "mem://",
        "mem://a/b",
    ] {
        let e = bad.parse::<Address>().unwrap_err();
        assert!(e.to_string().contains(bad), "{bad:?} gave {e}");
    }
    for good in [
        "tcp://127.0.0.1:0",
        "tcp://[::1]:7000",
        "unix:///tmp/x.sock",
        "mem://x",
    ] {
        let a: Address = good.parse().unwrap();
        assert_eq!(a.to_string(), good);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_errors_reach_the_caller_through_every_entry_point() {
    let e = Client::<u8, u8>::connect("tcp://no-port")
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Address(AddressError::BadHostPort { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("tcp://no-port"), "{e}");
    let e = Server::listen("udp://127.0.0.1:1", |n: u8| async move { n })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("udp://127.0.0.1:1"), "{e}");
    let e = Peer::<u8>::listen("unix://relative.sock")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unix://relative.sock"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_node_that_listens_nowhere_is_refused() {
    let node = Node::new();
    let e = Server::listen_on(&node, |n: u8| async move { n }).unwrap_err();
    assert!(matches!(e, Error::NotListening), "{e:?}");
    assert!(e.to_string().contains("listens on no address"), "{e}");
    // Once it listens, the same node serves.
    let addr = node.add_listener("tcp://127.0.0.1:0").await.unwrap();
    let server = Server::listen_on(&node, |n: u8| async move { n + 1 }).unwrap();
    assert_eq!(server.local_addr(), &addr);
    let client = Client::<u8, u8>::connect(&addr).await.unwrap();
    assert_eq!(client.request(1).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_addresses_are_refused_as_not_built() {
    const NATS: &str = "nats://127.0.0.1:4222";
    let a: Address = NATS.parse().expect("nats:// parses");
    assert_eq!(a.scheme(), "nats");
    let errors = [
        Server::listen(NATS, |n: u8| async move { n })
            .await
            .unwrap_err(),
        Client::<u8, u8>::connect(NATS).await.unwrap_err(),
        Peer::<u8>::listen(NATS).await.unwrap_err(),
        Node::listen(NATS).await.unwrap_err(),
        Client::<u8, u8>::connect_on(&Node::new(), NATS)
            .await
            .unwrap_err(),
    ];
    for e in errors {
        assert!(
            matches!(
                e,
                Error::Address(AddressError::BackendNotBuilt { scheme: "nats", .. })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("not built"), "{e}");
        assert!(e.to_string().contains(NATS), "{e}");
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client<u8, u8>>();
    send_sync::<Server<u8, u8>>();
    send_sync::<Peer<u8>>();
    send_sync::<Node>();
    send_sync::<farcall::node::Connection>();
    send_sync::<Error>();
    send_sync::<PeerId>();
}
