//! Remote procedures (`#[farcall::remote]`) through the facade, as a user
//! writes them: every argument shape, the application's own error type,
//! ten thousand calls at once on one stub, many services and objects on one
//! connection, one-way methods, what a handler sees of its call, calls on
//! the node that owns the object, and calls to objects that are not there.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;
mod rpc;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::node::Limits;
use farcall::rmi::ObjectId;
use farcall::{Node, Remote, RemoteError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use common::transport::{Transport, on_transports};
use common::wait::within;
use rpc::{
    Figure, Kitchen, KitchenClient, Nested, Pantry, Point, Sleepy, client_of, mirror,
    sample_polygon, sleeper, sleepy_server,
};

on_transports!([tcp, unix, mem];
    every_argument_shape,
    application_errors_arrive_as_the_users_type,
    ten_thousand_concurrent_calls_on_one_stub,
    two_services_and_a_hundred_objects_on_one_connection,
    oneway_methods_are_delivered,
    missing_objects_are_no_such_object,
    connect_service_checks_what_is_served,
    handler_sees_its_call_context,
);

// ---------------------------------------------------------------------------
// Every argument shape
// ---------------------------------------------------------------------------

async fn every_argument_shape(t: Transport) {
    let server = t.node().await;
    let _: Remote<dyn Kitchen> = server.serve("kitchen", Pantry);
    let (client, k) = client_of::<dyn Kitchen>(&server, "kitchen").await;

    k.nothing().await.unwrap();
    assert_eq!(k.constant().await.unwrap(), 42);
    assert_eq!(
        k.many(
            255,
            -300,
            u32::MAX,
            i64::MIN,
            u128::MAX,
            1.5,
            -0.25,
            true,
            'ß',
            "end".into()
        )
        .await
        .unwrap(),
        format!(
            "255 -300 {} {} {} 1.5 -0.25 true ß end",
            u32::MAX,
            i64::MIN,
            u128::MAX
        )
    );
    assert_eq!(
        k.shift(Point { x: 1, y: 2 }, -5).await.unwrap(),
        Point { x: -4, y: 2 }
    );

    // Enums: every variant kind that travels, nested.
    let figures = vec![
        Figure::Empty,
        Figure::Circle {
            centre: Point { x: 7, y: 8 },
            r: 2.5,
        },
        Figure::Poly(sample_polygon()),
        Figure::Pair(
            Box::new(Figure::Empty),
            Box::new(Figure::Pair(
                Box::new(Figure::Poly(sample_polygon())),
                Box::new(Figure::Circle {
                    centre: Point { x: -1, y: 0 },
                    r: 0.0,
                }),
            )),
        ),
    ];
    for f in figures {
        assert_eq!(k.mirror(f.clone()).await.unwrap(), mirror(f));
    }
    // The skipped variant cannot travel: an encoding error on the caller's
    // side, not a wrong value on the server's.
    let local_only = Figure::Scratch(Instant::now());
    match k.mirror(local_only).await {
        Err(RemoteError::Encode(_)) => {}
        other => panic!("a skipped variant must fail to encode, got {other:?}"),
    }
    assert_eq!(k.constant().await.unwrap(), 42, "the stub goes on");

    assert_eq!(k.reverse(vec![]).await.unwrap(), Vec::<i64>::new());
    assert_eq!(
        k.reverse((0..1000).collect()).await.unwrap(),
        (0..1000).rev().collect::<Vec<_>>()
    );
    assert_eq!(k.length(None).await.unwrap(), None);
    assert_eq!(k.length(Some("añb".into())).await.unwrap(), Some(3));
    assert_eq!(k.length(Some(String::new())).await.unwrap(), Some(0));

    let m: HashMap<String, Vec<u32>> = [
        ("a".to_owned(), vec![1, 2, 3]),
        ("empty".to_owned(), vec![]),
        ("big".to_owned(), vec![u32::MAX, u32::MAX]),
    ]
    .into();
    let sums = k.sums(m).await.unwrap();
    assert_eq!(sums.len(), 3);
    assert_eq!(sums["a"], 6);
    assert_eq!(sums["empty"], 0);
    assert_eq!(sums["big"], 2 * u64::from(u32::MAX));
    assert!(k.sums(HashMap::new()).await.unwrap().is_empty());

    assert_eq!(k.shout("héllo wörld".into()).await.unwrap(), "HÉLLO WÖRLD");
    assert_eq!(k.shout(String::new()).await.unwrap(), "");
    let long = "x".repeat(100_000);
    assert_eq!(k.shout(long.clone()).await.unwrap(), long.to_uppercase());

    // Byte buffers, empty, small and large (1 MiB, well under the frame limit).
    for len in [0usize, 1, 1000, 1 << 20] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut flipped = data.clone();
        flipped.reverse();
        assert_eq!(
            k.flip_bytes(Bytes::from(data.clone())).await.unwrap(),
            flipped
        );
        assert_eq!(k.flip_vec(data).await.unwrap(), flipped);
    }

    let nested = Nested {
        layers: [
            (
                "a".to_owned(),
                vec![
                    Some((1, Figure::Empty)),
                    None,
                    Some((2, Figure::Poly(sample_polygon()))),
                ],
            ),
            ("b".to_owned(), vec![]),
            (
                "c".to_owned(),
                vec![Some((
                    3,
                    Figure::Circle {
                        centre: Point { x: 5, y: 5 },
                        r: 1.0,
                    },
                ))],
            ),
        ]
        .into(),
        blob: Bytes::from_static(b"\x00\x01\x02\xff"),
        origin: Some(Point { x: 10, y: 32 }),
    };
    let (blob_len, figures, origin) = k.nested(nested).await.unwrap();
    assert_eq!(blob_len, 4);
    assert_eq!(origin, 42);
    assert_eq!(
        figures,
        vec![
            Some(Figure::Empty),
            None,
            Some(mirror(Figure::Poly(sample_polygon()))),
            Some(Figure::Circle {
                centre: Point { x: -5, y: 5 },
                r: 1.0
            }),
        ]
    );
    assert_eq!(
        k.swap((9, "nine".into()), ()).await.unwrap(),
        ("nine".to_owned(), 9)
    );

    // The generated stub type, named as users may name it.
    let stub: KitchenClient = KitchenClient::new(farcall::__private::StubCore::remote(
        client
            .connection(server.local_addr().unwrap())
            .await
            .unwrap(),
        ObjectId::for_service("kitchen"),
    ));
    assert_eq!(stub.constant().await.unwrap(), 42);

    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Application errors
// ---------------------------------------------------------------------------

/// An application's own error type: its own variants travel as they are,
/// and runtime failures convert into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub enum BankError {
    /// Not enough money.
    Insufficient {
        /// Asked for.
        needed: u64,
        /// There.
        available: u64,
    },
    /// The account is frozen, and why.
    Frozen(String),
    /// The call itself failed.
    Remote(RemoteError),
}

impl From<RemoteError> for BankError {
    fn from(e: RemoteError) -> Self {
        BankError::Remote(e)
    }
}

/// An account.
#[farcall::remote]
pub trait Bank {
    /// Takes `amount`; returns what is left.
    async fn withdraw(&self, amount: u64) -> Result<u64, BankError>;
    /// What is there.
    async fn balance(&self) -> Result<u64, BankError>;
    /// Freezes the account.
    async fn freeze(&self, why: String) -> Result<(), BankError>;
    /// Takes its time.
    async fn audit(&self, ms: u64) -> Result<(), BankError>;
}

struct Account {
    balance: Mutex<u64>,
    frozen: Mutex<Option<String>>,
}

impl Account {
    fn with(balance: u64) -> Self {
        Account {
            balance: Mutex::new(balance),
            frozen: Mutex::new(None),
        }
    }
}

#[farcall::remote]
impl Bank for Account {
    async fn withdraw(&self, amount: u64) -> Result<u64, BankError> {
        if let Some(why) = self.frozen.lock().unwrap().clone() {
            return Err(BankError::Frozen(why));
        }
        let mut b = self.balance.lock().unwrap();
        if amount > *b {
            return Err(BankError::Insufficient {
                needed: amount,
                available: *b,
            });
        }
        *b -= amount;
        Ok(*b)
    }
    async fn balance(&self) -> Result<u64, BankError> {
        Ok(*self.balance.lock().unwrap())
    }
    async fn freeze(&self, why: String) -> Result<(), BankError> {
        *self.frozen.lock().unwrap() = Some(why);
        Ok(())
    }
    async fn audit(&self, ms: u64) -> Result<(), BankError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(())
    }
}

async fn application_errors_arrive_as_the_users_type(t: Transport) {
    let server = t.node().await;
    let exported: Remote<dyn Bank> = server.export(Account::with(100));
    let client = Node::new();
    let addr = server.local_addr().unwrap();
    let bank = client
        .connect::<dyn Bank>(&addr, exported.id())
        .await
        .unwrap();

    assert_eq!(bank.withdraw(30).await.unwrap(), 70);
    assert_eq!(
        bank.withdraw(500).await,
        Err(BankError::Insufficient {
            needed: 500,
            available: 70
        })
    );
    assert_eq!(
        bank.balance().await.unwrap(),
        70,
        "a failed call changed nothing"
    );

    // The same errors when the caller is on the serving node.
    assert!(exported.is_local());
    assert_eq!(
        exported.withdraw(71).await,
        Err(BankError::Insufficient {
            needed: 71,
            available: 70
        })
    );

    bank.freeze("audit in progress".into()).await.unwrap();
    assert_eq!(
        bank.withdraw(1).await,
        Err(BankError::Frozen("audit in progress".into()))
    );

    // Runtime failures come as the user's type too.
    let forged = client
        .connect::<dyn Bank>(&addr, ObjectId::random())
        .await
        .unwrap();
    assert_eq!(
        forged.balance().await,
        Err(BankError::Remote(RemoteError::NoSuchObject))
    );
    assert_eq!(
        bank.with_deadline(Duration::from_millis(50))
            .audit(60_000)
            .await,
        Err(BankError::Remote(RemoteError::DeadlineExceeded))
    );
    assert_eq!(bank.balance().await.unwrap(), 70);

    server.shutdown().await;
    match within(10, "a call to a node that shut down", bank.balance()).await {
        Err(BankError::Remote(RemoteError::Disconnected(_) | RemoteError::Closed)) => {}
        other => panic!("expected BankError::Remote(Disconnected or Closed), got {other:?}"),
    }
    client.shutdown().await;
}

// ---------------------------------------------------------------------------
// Many calls at once, one-way methods, the call's context
// ---------------------------------------------------------------------------

async fn ten_thousand_concurrent_calls_on_one_stub(t: Transport) {
    const N: u64 = 10_000;
    let s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    let mut calls = JoinSet::new();
    for n in 0..N {
        let stub = stub.clone();
        calls.spawn(async move {
            // Half answer at once, half after a yield (a spawned handler).
            let got = if n % 2 == 0 {
                stub.echo(n).await
            } else {
                stub.echo_later(n).await
            };
            (n, got)
        });
    }
    let mut seen = 0;
    within(60, "ten thousand calls", async {
        while let Some(done) = calls.join_next().await {
            let (n, got) = done.unwrap();
            assert_eq!(got, Ok(n), "call {n}");
            seen += 1;
        }
    })
    .await;
    assert_eq!(seen, N);
    assert_eq!(client.connections().len(), 1, "all on one connection");
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn handler_sees_its_call_context(t: Transport) {
    let s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;

    let seen = stub
        .with_deadline(Duration::from_secs(5))
        .context()
        .await
        .unwrap();
    assert_eq!(
        seen.caller,
        Some(client.id().0),
        "the caller is the client node"
    );
    let left = seen.remaining_ms.expect("a remote call carries a deadline");
    assert!(
        left > 0 && left <= 5_000,
        "{left} ms left of a 5 s deadline"
    );

    // Without a deadline of its own, the call carries the default one.
    let seen = stub.context().await.unwrap();
    assert_eq!(seen.caller, Some(client.id().0));
    let left = seen.remaining_ms.expect("a remote call carries a deadline");
    assert!(
        left > 0 && left <= 30_000,
        "{left} ms left of the default 30 s"
    );

    // Another client is another caller.
    let (other, stub2) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    assert_ne!(other.id(), client.id());
    assert_eq!(stub2.context().await.unwrap().caller, Some(other.id().0));

    other.shutdown().await;
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn oneway_methods_are_delivered(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    for n in 0..100 {
        stub.note(n).await.unwrap();
    }
    let mut got = Vec::new();
    within(10, "one-way messages", async {
        while got.len() < 100 {
            got.push(s.notes.recv().await.unwrap());
        }
    })
    .await;
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());

    // On the calling node itself, too.
    let (own, _started, _dropped, mut own_notes) = sleeper();
    let local: Remote<dyn Sleepy> = client.export(own);
    assert!(local.is_local());
    local.note(1000).await.unwrap();
    assert_eq!(
        within(10, "a local one-way message", own_notes.recv()).await,
        Some(1000)
    );

    client.shutdown().await;
    s.node.shutdown().await;
}

// ---------------------------------------------------------------------------
// Many objects and services on one connection
// ---------------------------------------------------------------------------

/// A named counter.
#[farcall::remote]
pub trait Counter {
    /// Its name.
    async fn name(&self) -> Result<String, RemoteError>;
    /// Adds `n`; returns the total.
    async fn add(&self, n: u64) -> Result<u64, RemoteError>;
}

struct Tally {
    name: String,
    total: AtomicU64,
}

impl Tally {
    fn new(name: impl Into<String>, start: u64) -> Self {
        Tally {
            name: name.into(),
            total: AtomicU64::new(start),
        }
    }
}

#[farcall::remote]
impl Counter for Tally {
    async fn name(&self) -> Result<String, RemoteError> {
        Ok(self.name.clone())
    }
    async fn add(&self, n: u64) -> Result<u64, RemoteError> {
        Ok(self.total.fetch_add(n, Ordering::Relaxed) + n)
    }
}

async fn two_services_and_a_hundred_objects_on_one_connection(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let _: Remote<dyn Counter> = server.serve("counter", Tally::new("the service", 1000));
    let _: Remote<dyn Kitchen> = server.serve("kitchen", Pantry);
    // The server keeps its references: an exported object that no local
    // handle, lease or pin holds is unexported.
    let exported: Vec<Remote<dyn Counter>> = (0..100u64)
        .map(|i| server.export(Tally::new(format!("object {i}"), i * 10)))
        .collect();
    let ids: Vec<ObjectId> = exported.iter().map(|r| r.id()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 100, "every export has its own id");

    let client = Node::new();
    let service = client
        .connect_service::<dyn Counter>(&addr, "counter")
        .await
        .unwrap();
    let kitchen = client
        .connect_service::<dyn Kitchen>(&addr, "kitchen")
        .await
        .unwrap();
    let mut stubs = Vec::new();
    for id in &ids {
        let stub = client.connect::<dyn Counter>(&addr, *id).await.unwrap();
        assert_eq!(stub.id(), *id);
        assert_eq!(stub.owner(), server.id());
        stubs.push(stub);
    }

    // All at once, each object with its own state.
    let mut calls = JoinSet::new();
    for (i, stub) in stubs.iter().cloned().enumerate() {
        let i = i as u64;
        calls.spawn(async move {
            assert_eq!(stub.name().await.unwrap(), format!("object {i}"));
            assert_eq!(stub.add(1).await.unwrap(), i * 10 + 1);
            assert_eq!(stub.add(i).await.unwrap(), i * 11 + 1);
        });
    }
    for n in 0..10 {
        let (service, kitchen) = (service.clone(), kitchen.clone());
        calls.spawn(async move {
            assert!(service.add(n).await.unwrap() >= 1000 + n);
            assert_eq!(kitchen.constant().await.unwrap(), 42);
        });
    }
    within(20, "calls to every object", async {
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(service.name().await.unwrap(), "the service");
    assert_eq!(service.add(0).await.unwrap(), 1000 + 45);
    assert_eq!(kitchen.shout("one".into()).await.unwrap(), "ONE");
    assert_eq!(
        client.connections().len(),
        1,
        "every stub shares one connection"
    );
    assert_eq!(server.connections().len(), 1);

    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Collocation and missing objects
// ---------------------------------------------------------------------------

/// Calls on the node that owns the object skip the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collocated_calls_run_locally() {
    for t in [Transport::Tcp, Transport::Unix, Transport::Mem] {
        let node = t.node().await;
        let addr = node.local_addr().unwrap();
        let counter: Remote<dyn Counter> = node.export(Tally::new("here", 0));
        assert!(counter.is_local());
        assert_eq!(counter.owner(), node.id());
        assert_eq!(counter.add(2).await.unwrap(), 2);
        assert!(
            counter.with_deadline(Duration::from_secs(1)).is_local(),
            "a deadline does not turn a local reference into a stub"
        );

        // Connecting to one's own address gives the object itself.
        let again = node
            .connect::<dyn Counter>(&addr, counter.id())
            .await
            .unwrap();
        assert!(
            again.is_local(),
            "{t:?}: a reference to one's own object is local"
        );
        assert_eq!(again, counter, "the same object");
        assert_eq!(again.add(3).await.unwrap(), 5, "the same state");
        let service: Remote<dyn Counter> = node.serve("tally", Tally::new("service", 100));
        let by_name = node
            .connect_service::<dyn Counter>(&addr, "tally")
            .await
            .unwrap();
        assert!(by_name.is_local());
        assert_eq!(by_name, service);
        assert_eq!(by_name.name().await.unwrap(), "service");

        // A remote client sees the same object and the same state.
        let client = Node::new();
        let remote = client
            .connect::<dyn Counter>(&addr, counter.id())
            .await
            .unwrap();
        assert!(!remote.is_local());
        assert_eq!(remote, counter, "equality is object identity");
        assert_eq!(remote.add(1).await.unwrap(), 6);
        assert_eq!(counter.add(0).await.unwrap(), 6);

        // An `Arc<dyn Trait>` may be a stub or the object.
        let either: Vec<std::sync::Arc<dyn Counter>> =
            vec![counter.as_arc().clone(), remote.as_arc().clone()];
        for c in either {
            assert_eq!(c.name().await.unwrap(), "here");
        }
        let arc: std::sync::Arc<dyn Counter> = std::sync::Arc::new(Tally::new("arc", 7));
        let from_arc = node.export_arc(arc);
        assert!(from_arc.is_local());
        assert_eq!(remote_add(&client, &addr, from_arc.id()).await, Ok(8));

        client.shutdown().await;
        node.shutdown().await;
    }
}

async fn remote_add(
    client: &Node,
    addr: &farcall::node::Address,
    id: ObjectId,
) -> Result<u64, RemoteError> {
    client.connect::<dyn Counter>(addr, id).await?.add(1).await
}

async fn connect_service_checks_what_is_served(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let _: Remote<dyn Counter> = server.serve("counter", Tally::new("c", 0));
    let _: Remote<dyn Kitchen> = server.serve("kitchen", Pantry);
    let client = Node::new();

    // The right interface: one round trip, then calls.
    let counter = client
        .connect_service::<dyn Counter>(&addr, "counter")
        .await
        .unwrap();
    assert_eq!(counter.add(2).await, Ok(2));

    // Nothing under the name, from another node and from the owner itself.
    for node in [&client, &server] {
        let e = node
            .connect_service::<dyn Counter>(&addr, "nobody")
            .await
            .expect_err("nothing is served as `nobody`");
        assert_eq!(e, RemoteError::NoSuchService("nobody".into()));
        assert_eq!(e.to_string(), "no service named `nobody` is served there");
    }

    // Another interface under the name, from another node and the owner.
    for node in [&client, &server] {
        let e = node
            .connect_service::<dyn Counter>(&addr, "kitchen")
            .await
            .expect_err("the kitchen is no counter");
        let RemoteError::InterfaceMismatch(why) = &e else {
            panic!("expected an interface mismatch, got {e}");
        };
        assert!(
            why.contains("`Kitchen`") && why.contains("`Counter`"),
            "{why}"
        );
    }

    // A service served by hand (no `#[remote]` dispatcher) is taken on
    // trust: the stub is made, and its calls meet what is there.
    server.serve_object(
        ObjectId::for_service("by-hand"),
        std::sync::Arc::new(Refuser),
    );
    let by_hand = client
        .connect_service::<dyn Counter>(&addr, "by-hand")
        .await
        .unwrap();
    assert!(matches!(
        by_hand.add(1).await,
        Err(RemoteError::Rejected(_))
    ));

    // The connection is unharmed by the refusals.
    assert_eq!(counter.add(1).await, Ok(3));
    client.shutdown().await;
    server.shutdown().await;
}

/// A service written by hand that refuses every call.
struct Refuser;

impl farcall::__private::service::Service for Refuser {
    fn call(
        &self,
        _cx: farcall::rpc::CallContext,
        _method: u64,
        _payload: Bytes,
    ) -> farcall::__private::service::OutcomeFuture {
        Box::pin(std::future::ready(Err(farcall::rpc::Fault::Rejected(
            "served by hand".into(),
        ))))
    }
}

async fn missing_objects_are_no_such_object(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let client = Node::new();

    // A forged id, remotely and locally.
    let forged = ObjectId::random();
    let remote = client.connect::<dyn Counter>(&addr, forged).await.unwrap();
    assert_eq!(remote.add(1).await, Err(RemoteError::NoSuchObject));
    let local = server.connect::<dyn Counter>(&addr, forged).await.unwrap();
    assert_eq!(local.add(1).await, Err(RemoteError::NoSuchObject));
    // A service nobody serves: a stub made without the check reaches
    // nothing; `connect_service` says so at once.
    let nobody = client
        .connect::<dyn Counter>(&addr, ObjectId::for_service("nobody"))
        .await
        .unwrap();
    assert_eq!(nobody.name().await, Err(RemoteError::NoSuchObject));
    assert_eq!(
        client
            .connect_service::<dyn Counter>(&addr, "nobody")
            .await
            .err(),
        Some(RemoteError::NoSuchService("nobody".into()))
    );

    // An object that is unexported.
    let gone: Remote<dyn Counter> = server.export(Tally::new("gone", 0));
    let remote = client
        .connect::<dyn Counter>(&addr, gone.id())
        .await
        .unwrap();
    assert_eq!(remote.add(1).await, Ok(1));
    assert!(server.unexport(gone.id()));
    assert!(!server.unexport(gone.id()), "only once");
    assert_eq!(remote.add(1).await, Err(RemoteError::NoSuchObject));
    let local = server
        .connect::<dyn Counter>(&addr, gone.id())
        .await
        .unwrap();
    assert_eq!(local.add(1).await, Err(RemoteError::NoSuchObject));
    // The stub's connection is not harmed.
    let ok: Remote<dyn Counter> = server.export(Tally::new("ok", 0));
    assert_eq!(remote_add(&client, &addr, ok.id()).await, Ok(1));
    assert_eq!(client.connections().len(), 1);

    client.shutdown().await;
    server.shutdown().await;
}
