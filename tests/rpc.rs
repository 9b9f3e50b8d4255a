//! Remote procedures (`#[farcall::remote]`) through the facade, as a user
//! writes them.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::{CallContext, Limits, Node, ObjectId, Remote, RemoteError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use common::transport::{Transport, on_transports};
use common::wait::within;

on_transports!([tcp, unix, mem];
    every_argument_shape,
    application_errors_arrive_as_the_users_type,
    deadline_exceeded_drops_the_handler,
    dropping_the_call_cancels_the_handler,
    server_connection_aborted_mid_call_disconnects_promptly,
    server_shutdown_mid_call_disconnects_promptly,
    ten_thousand_concurrent_calls_on_one_stub,
    two_services_and_a_hundred_objects_on_one_connection,
    generic_trait_with_two_value_types,
    newer_client_calling_an_older_server,
    older_client_calling_a_newer_server,
    oneway_methods_are_delivered,
    missing_objects_are_no_such_object,
    handler_sees_its_call_context,
    supertrait_methods_through_a_subtrait_stub,
    handler_panic_is_reported_and_the_server_goes_on,
);

/// A client node with a stub for the service `name` on `server`.
async fn client_of<I: ?Sized + farcall::remote::Interface>(
    server: &Node,
    name: &str,
) -> (Node, Remote<I>) {
    let client = Node::new();
    let stub = client
        .connect_service::<I>(server.local_addr().unwrap(), name)
        .await
        .unwrap();
    assert!(
        !stub.is_local(),
        "a stub to another node goes through a socket"
    );
    (client, stub)
}

const AN_HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// Every argument shape
// ---------------------------------------------------------------------------

/// A plain struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Abscissa.
    pub x: i64,
    /// Ordinate.
    pub y: i64,
}

/// A struct with collections inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    /// Its name.
    pub name: String,
    /// Its corners.
    pub points: Vec<Point>,
    /// Free-form counts.
    pub tags: BTreeMap<String, u32>,
    /// An optional colour.
    pub colour: Option<(u8, u8, u8)>,
}

/// An enum with every variant kind, and a variant that never travels.
///
/// The skipped variant is the last one on purpose: serde_derive numbers
/// variants differently when serialising (skipped ones counted) and
/// deserialising (skipped ones not counted), serde#2614, so a skipped
/// variant in the middle shifts every later one under a format that
/// encodes the variant index, as postcard does. No wire format can undo
/// that for a user's own type; what farcall controls is its own call
/// encoding (see `Kitchen::compiled_out`, a method removed by `#[cfg]`
/// between others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Figure {
    /// A unit variant.
    Empty,
    /// A struct variant.
    Circle {
        /// Centre.
        centre: Point,
        /// Radius.
        r: f64,
    },
    /// A newtype variant.
    Poly(Polygon),
    /// A tuple variant, recursive.
    Pair(Box<Figure>, Box<Figure>),
    /// Local only: never serialised.
    #[serde(skip)]
    Scratch(Instant),
}

/// Nested combinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nested {
    /// Maps of vectors of options of tuples.
    pub layers: HashMap<String, Vec<Option<(u16, Figure)>>>,
    /// Raw bytes inside a struct.
    pub blob: Bytes,
    /// An option of a struct.
    pub origin: Option<Point>,
}

/// A method per argument shape.
#[farcall::remote]
pub trait Kitchen {
    /// No arguments, unit result.
    async fn nothing(&self) -> Result<(), RemoteError>;
    /// No arguments, a value.
    async fn constant(&self) -> Result<u64, RemoteError>;
    /// Many scalar arguments.
    #[allow(clippy::too_many_arguments)]
    async fn many(
        &self,
        a: u8,
        b: i16,
        c: u32,
        d: i64,
        e: u128,
        f: f32,
        g: f64,
        h: bool,
        i: char,
        j: String,
    ) -> Result<String, RemoteError>;
    /// A struct, moved by one.
    async fn shift(&self, p: Point, dx: i64) -> Result<Point, RemoteError>;
    /// A method compiled out: the methods after it must keep working.
    #[cfg(any())]
    async fn compiled_out(&self, x: u8) -> Result<u8, RemoteError>;
    /// An enum, mirrored.
    async fn mirror(&self, f: Figure) -> Result<Figure, RemoteError>;
    /// A vector, reversed.
    async fn reverse(&self, v: Vec<i64>) -> Result<Vec<i64>, RemoteError>;
    /// An option in, an option out.
    async fn length(&self, o: Option<String>) -> Result<Option<usize>, RemoteError>;
    /// A map of vectors in, a map of sums out.
    async fn sums(&self, m: HashMap<String, Vec<u32>>)
    -> Result<HashMap<String, u64>, RemoteError>;
    /// A string.
    async fn shout(&self, s: String) -> Result<String, RemoteError>;
    /// A byte buffer as `bytes::Bytes`, reversed.
    async fn flip_bytes(&self, b: Bytes) -> Result<Bytes, RemoteError>;
    /// A byte buffer as a plain `Vec<u8>`, reversed.
    async fn flip_vec(&self, b: Vec<u8>) -> Result<Vec<u8>, RemoteError>;
    /// Nested combinations, summarised.
    async fn nested(&self, n: Nested) -> Result<(usize, Vec<Option<Figure>>, usize), RemoteError>;
    /// A tuple and a unit argument.
    async fn swap(&self, pair: (u8, String), nothing: ()) -> Result<(String, u8), RemoteError>;
}

fn mirror(f: Figure) -> Figure {
    match f {
        Figure::Empty => Figure::Empty,
        Figure::Circle { centre, r } => Figure::Circle {
            centre: Point {
                x: centre.x.wrapping_neg(),
                y: centre.y,
            },
            r,
        },
        Figure::Poly(mut p) => {
            for q in &mut p.points {
                q.x = q.x.wrapping_neg();
            }
            p.name = format!("mirrored {}", p.name);
            Figure::Poly(p)
        }
        Figure::Pair(a, b) => Figure::Pair(Box::new(mirror(*b)), Box::new(mirror(*a))),
        Figure::Scratch(s) => Figure::Scratch(s),
    }
}

struct Pantry;

#[farcall::remote]
impl Kitchen for Pantry {
    async fn nothing(&self) -> Result<(), RemoteError> {
        Ok(())
    }
    async fn constant(&self) -> Result<u64, RemoteError> {
        Ok(42)
    }
    #[allow(clippy::too_many_arguments)]
    async fn many(
        &self,
        a: u8,
        b: i16,
        c: u32,
        d: i64,
        e: u128,
        f: f32,
        g: f64,
        h: bool,
        i: char,
        j: String,
    ) -> Result<String, RemoteError> {
        Ok(format!("{a} {b} {c} {d} {e} {f} {g} {h} {i} {j}"))
    }
    async fn shift(&self, p: Point, dx: i64) -> Result<Point, RemoteError> {
        Ok(Point {
            x: p.x + dx,
            y: p.y,
        })
    }
    async fn mirror(&self, f: Figure) -> Result<Figure, RemoteError> {
        Ok(mirror(f))
    }
    async fn reverse(&self, mut v: Vec<i64>) -> Result<Vec<i64>, RemoteError> {
        v.reverse();
        Ok(v)
    }
    async fn length(&self, o: Option<String>) -> Result<Option<usize>, RemoteError> {
        Ok(o.map(|s| s.chars().count()))
    }
    async fn sums(
        &self,
        m: HashMap<String, Vec<u32>>,
    ) -> Result<HashMap<String, u64>, RemoteError> {
        Ok(m.into_iter()
            .map(|(k, v)| (k, v.into_iter().map(u64::from).sum()))
            .collect())
    }
    async fn shout(&self, s: String) -> Result<String, RemoteError> {
        Ok(s.to_uppercase())
    }
    async fn flip_bytes(&self, b: Bytes) -> Result<Bytes, RemoteError> {
        let mut v = b.to_vec();
        v.reverse();
        Ok(Bytes::from(v))
    }
    async fn flip_vec(&self, mut b: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
        b.reverse();
        Ok(b)
    }
    async fn nested(&self, n: Nested) -> Result<(usize, Vec<Option<Figure>>, usize), RemoteError> {
        let mut keys: Vec<_> = n.layers.keys().cloned().collect();
        keys.sort();
        let figures = keys
            .iter()
            .flat_map(|k| n.layers[k].iter())
            .map(|o| o.as_ref().map(|(_, f)| mirror(f.clone())))
            .collect();
        let origin = n.origin.map_or(0, |p| (p.x + p.y) as usize);
        Ok((n.blob.len(), figures, origin))
    }
    async fn swap(&self, pair: (u8, String), _nothing: ()) -> Result<(String, u8), RemoteError> {
        Ok((pair.1, pair.0))
    }
}

fn sample_polygon() -> Polygon {
    Polygon {
        name: "triangle ✓".into(),
        points: vec![
            Point { x: 0, y: 0 },
            Point { x: 3, y: -4 },
            Point {
                x: i64::MIN,
                y: i64::MAX,
            },
        ],
        tags: [("sides".to_owned(), 3), ("ε".to_owned(), 0)].into(),
        colour: Some((255, 0, 128)),
    }
}

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
    let stub: KitchenClient = KitchenClient::new(farcall::remote::StubCore::remote(
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
// Deadlines, cancellation, a server that dies, panics, context, one-way
// ---------------------------------------------------------------------------

/// What the server reports back to the test about its handlers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The caller's node id, as `CallContext::current` says.
    pub caller: Option<u128>,
    /// Milliseconds left before the caller's deadline.
    pub remaining_ms: Option<u64>,
}

/// A service that sleeps, panics and reports what it sees.
#[farcall::remote]
pub trait Sleepy {
    /// Reports `tag` as started, sleeps `ms`, returns `tag`; reports `tag`
    /// as dropped when its future goes away, finished or not.
    async fn nap(&self, tag: u64, ms: u64) -> Result<u64, RemoteError>;
    /// Returns `n` at once.
    async fn echo(&self, n: u64) -> Result<u64, RemoteError>;
    /// Returns `n` after yielding once (the handler does not finish at its
    /// first poll).
    async fn echo_later(&self, n: u64) -> Result<u64, RemoteError>;
    /// The call's context.
    async fn context(&self) -> Result<Seen, RemoteError>;
    /// Panics, at once or after yielding.
    async fn boom(&self, after_yield: bool) -> Result<u64, RemoteError>;
    /// Reports `n`; nothing comes back.
    #[remote(oneway)]
    async fn note(&self, n: u64) -> Result<(), RemoteError>;
}

/// Reports on a channel when a handler's future is dropped, finished or not.
struct DropSignal(mpsc::UnboundedSender<u64>, u64);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

struct Sleeper {
    started: mpsc::UnboundedSender<u64>,
    dropped: mpsc::UnboundedSender<u64>,
    notes: mpsc::UnboundedSender<u64>,
}

#[farcall::remote]
impl Sleepy for Sleeper {
    async fn nap(&self, tag: u64, ms: u64) -> Result<u64, RemoteError> {
        let _guard = DropSignal(self.dropped.clone(), tag);
        let _ = self.started.send(tag);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(tag)
    }
    async fn echo(&self, n: u64) -> Result<u64, RemoteError> {
        Ok(n)
    }
    async fn echo_later(&self, n: u64) -> Result<u64, RemoteError> {
        tokio::task::yield_now().await;
        Ok(n)
    }
    async fn context(&self) -> Result<Seen, RemoteError> {
        let cx = CallContext::current();
        Ok(Seen {
            caller: cx.as_ref().map(|c| c.caller.0),
            remaining_ms: cx
                .and_then(|c| c.deadline)
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
        })
    }
    async fn boom(&self, after_yield: bool) -> Result<u64, RemoteError> {
        if after_yield {
            tokio::task::yield_now().await;
            return Ok(explode("this handler panics on purpose, after yielding"));
        }
        Ok(explode("this handler panics on purpose, at once"))
    }
    async fn note(&self, n: u64) -> Result<(), RemoteError> {
        let _ = self.notes.send(n);
        Ok(())
    }
}

/// Panics with `why`.
fn explode(why: &str) -> u64 {
    panic!("{why}")
}

/// A node serving a `Sleeper` as "sleepy", and the receiving ends of its
/// reports.
struct SleepyServer {
    node: Node,
    started: mpsc::UnboundedReceiver<u64>,
    dropped: mpsc::UnboundedReceiver<u64>,
    notes: mpsc::UnboundedReceiver<u64>,
}

fn sleeper() -> (
    Sleeper,
    mpsc::UnboundedReceiver<u64>,
    mpsc::UnboundedReceiver<u64>,
    mpsc::UnboundedReceiver<u64>,
) {
    let (started_tx, started) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let s = Sleeper {
        started: started_tx,
        dropped: dropped_tx,
        notes: notes_tx,
    };
    (s, started, dropped, notes)
}

async fn sleepy_server(t: Transport, limits: Limits) -> SleepyServer {
    let node = t.node_with(limits).await;
    let (s, started, dropped, notes) = sleeper();
    let _: Remote<dyn Sleepy> = node.serve("sleepy", s);
    SleepyServer {
        node,
        started,
        dropped,
        notes,
    }
}

async fn deadline_exceeded_drops_the_handler(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;

    let hurried = stub.with_deadline(Duration::from_millis(100));
    let answer = within(
        10,
        "a call past its deadline",
        hurried.nap(1, AN_HOUR.as_millis() as u64),
    )
    .await;
    assert_eq!(answer, Err(RemoteError::DeadlineExceeded));
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(1)
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(1),
        "the server drops the handler's future once the deadline passes"
    );

    // Several at once.
    let mut calls = JoinSet::new();
    for tag in 10..20 {
        let hurried = hurried.clone();
        calls.spawn(async move { hurried.nap(tag, 60_000).await });
    }
    within(10, "calls past their deadline", async {
        while let Some(done) = calls.join_next().await {
            assert_eq!(done.unwrap(), Err(RemoteError::DeadlineExceeded));
        }
    })
    .await;
    let mut dropped = Vec::new();
    within(10, "the handlers being dropped", async {
        while dropped.len() < 10 {
            dropped.push(s.dropped.recv().await.unwrap());
        }
    })
    .await;
    dropped.sort_unstable();
    assert_eq!(dropped, (10..20).collect::<Vec<_>>());

    // A call within its deadline still answers, on the same stub.
    assert_eq!(hurried.nap(2, 1).await, Ok(2));
    assert_eq!(stub.echo(3).await, Ok(3));
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn dropping_the_call_cancels_the_handler(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    // The default deadline is 30 s: a handler dropped sooner was cancelled.

    // A call dropped by a local time-out.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), stub.nap(7, 60_000)).await;
    assert!(gave_up.is_err(), "the call cannot have been answered");
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(7)
    );
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(7)
    );

    // A call dropped by a select.
    tokio::select! {
        r = stub.nap(8, 60_000) => panic!("the nap cannot finish first: {r:?}"),
        started = s.started.recv() => assert_eq!(started, Some(8)),
    }
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(8)
    );

    // A call in a task that is aborted.
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(9, 60_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(9)
    );
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(9)
    );

    assert_eq!(stub.echo(1).await, Ok(1));
    let conn = client
        .connection(s.node.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(conn.calls_in_flight(), 0);
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn server_connection_aborted_mid_call_disconnects_promptly(t: Transport) {
    let mut s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    let stub = stub.with_deadline(Duration::from_secs(60));
    let started = Instant::now();
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(5, 120_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let conns = s.node.connections();
    assert_eq!(conns.len(), 1);
    conns[0].abort("killed by the test");
    // The deadline is 60 s: failing within 20 s is failing because of the
    // broken connection.
    let answer = within(20, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(RemoteError::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
    // The next call dials the server again: the stub recovers by itself.
    assert_eq!(stub.echo(0).await.unwrap(), 0, "the stub dials again");
    client.shutdown().await;
    s.node.shutdown().await;
}

async fn server_shutdown_mid_call_disconnects_promptly(t: Transport) {
    let limits = Limits::default().close_grace(Duration::from_millis(200));
    let mut s = sleepy_server(t, limits).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    let stub = stub.with_deadline(Duration::from_secs(60));
    let started = Instant::now();
    let call = tokio::spawn({
        let stub = stub.clone();
        async move { stub.nap(5, 120_000).await }
    });
    assert_eq!(
        within(10, "the handler starting", s.started.recv()).await,
        Some(5)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    within(10, "the server shutting down", s.node.shutdown()).await;
    let answer = within(20, "the call failing", call).await.unwrap();
    assert!(
        matches!(answer, Err(RemoteError::Disconnected(_))),
        "expected Disconnected, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        within(10, "the handler being dropped", s.dropped.recv()).await,
        Some(5)
    );
    assert!(stub.echo(0).await.is_err(), "the server is gone");
    client.shutdown().await;
}

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

async fn handler_panic_is_reported_and_the_server_goes_on(t: Transport) {
    let s = sleepy_server(t, Limits::default()).await;
    let (client, stub) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    for after_yield in [false, true] {
        assert_eq!(stub.boom(after_yield).await, Err(RemoteError::Panicked));
        assert_eq!(stub.echo(3).await, Ok(3), "the same connection goes on");
        assert_eq!(stub.echo_later(4).await, Ok(4));
    }
    let (other, stub2) = client_of::<dyn Sleepy>(&s.node, "sleepy").await;
    assert_eq!(stub2.echo(5).await, Ok(5), "new connections are served");
    other.shutdown().await;
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
// A generic trait
// ---------------------------------------------------------------------------

/// A key-value store of `V`s.
#[farcall::remote]
pub trait Store<V> {
    /// Sets `key`; returns the previous value.
    async fn put(&self, key: String, value: V) -> Result<Option<V>, RemoteError>;
    /// The value of `key`.
    async fn get(&self, key: String) -> Result<Option<V>, RemoteError>;
    /// Every entry, in key order.
    async fn entries(&self) -> Result<Vec<(String, V)>, RemoteError>;
}

struct MapStore<V>(Mutex<BTreeMap<String, V>>);

impl<V> MapStore<V> {
    fn new() -> Self {
        MapStore(Mutex::new(BTreeMap::new()))
    }
}

#[farcall::remote]
impl<V> Store<V> for MapStore<V>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    async fn put(&self, key: String, value: V) -> Result<Option<V>, RemoteError> {
        Ok(self.0.lock().unwrap().insert(key, value))
    }
    async fn get(&self, key: String) -> Result<Option<V>, RemoteError> {
        Ok(self.0.lock().unwrap().get(&key).cloned())
    }
    async fn entries(&self) -> Result<Vec<(String, V)>, RemoteError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

async fn generic_trait_with_two_value_types(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let numbers: Remote<dyn Store<u64>> = server.serve("numbers", MapStore::<u64>::new());
    let points: Remote<dyn Store<Point>> = server.serve("points", MapStore::<Point>::new());
    assert!(numbers.is_local() && points.is_local());

    let client = Node::new();
    let n = client
        .connect_service::<dyn Store<u64>>(&addr, "numbers")
        .await
        .unwrap();
    let p = client
        .connect_service::<dyn Store<Point>>(&addr, "points")
        .await
        .unwrap();

    assert_eq!(n.put("a".into(), 1).await.unwrap(), None);
    assert_eq!(n.put("a".into(), u64::MAX).await.unwrap(), Some(1));
    assert_eq!(n.put("b".into(), 2).await.unwrap(), None);
    assert_eq!(n.get("a".into()).await.unwrap(), Some(u64::MAX));
    assert_eq!(n.get("zz".into()).await.unwrap(), None);
    assert_eq!(
        n.entries().await.unwrap(),
        vec![("a".to_owned(), u64::MAX), ("b".to_owned(), 2)]
    );

    let origin = Point { x: 0, y: 0 };
    assert_eq!(p.put("o".into(), origin.clone()).await.unwrap(), None);
    assert_eq!(p.get("o".into()).await.unwrap(), Some(origin.clone()));
    assert_eq!(p.entries().await.unwrap(), vec![("o".to_owned(), origin)]);

    // Locally too.
    assert_eq!(numbers.get("b".into()).await.unwrap(), Some(2));
    assert_eq!(points.entries().await.unwrap().len(), 1);

    client.shutdown().await;
    server.shutdown().await;
}

/// The same generic trait instantiated with two types of one wire shape
/// but different meanings must not decode one as the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_trait_instances_do_not_mix() {
    let server = Transport::Tcp.node().await;
    let _: Remote<dyn Store<u64>> = server.serve("unsigned", MapStore::<u64>::new());
    let client = Node::new();
    let wrong = client
        .connect_service::<dyn Store<i64>>(server.local_addr().unwrap(), "unsigned")
        .await
        .unwrap();
    match wrong.put("k".into(), -1).await {
        Err(RemoteError::InterfaceMismatch(_)) => {}
        other => panic!("Store<i64> calling a Store<u64> must be a mismatch, got {other:?}"),
    }
    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Two versions of one interface
// ---------------------------------------------------------------------------

/// The first version of a calculator.
pub mod v1 {
    use farcall::RemoteError;

    /// Version 1.
    #[farcall::remote]
    pub trait Calc {
        /// `a + b`.
        async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
        /// `-a`.
        async fn neg(&self, a: i64) -> Result<i64, RemoteError>;
        /// `a * k`, in integers.
        async fn scale(&self, a: i64, k: i64) -> Result<i64, RemoteError>;
    }

    /// Implements version 1.
    #[derive(Debug)]
    pub struct Impl;

    #[farcall::remote]
    impl Calc for Impl {
        async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
            Ok(a + b)
        }
        async fn neg(&self, a: i64) -> Result<i64, RemoteError> {
            Ok(-a)
        }
        async fn scale(&self, a: i64, k: i64) -> Result<i64, RemoteError> {
            Ok(a * k)
        }
    }
}

/// The second version: methods reordered, one added, `scale` changed.
pub mod v2 {
    use farcall::RemoteError;

    /// Version 2.
    #[farcall::remote]
    pub trait Calc {
        /// New in version 2: `a * b`.
        async fn mul(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
        /// `a * k`, now in floating point: same name, another signature.
        async fn scale(&self, a: f64, k: f64) -> Result<f64, RemoteError>;
        /// `-a` (moved).
        async fn neg(&self, a: i64) -> Result<i64, RemoteError>;
        /// `a + b` (moved).
        async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
    }

    /// Implements version 2.
    #[derive(Debug)]
    pub struct Impl;

    #[farcall::remote]
    impl Calc for Impl {
        async fn mul(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
            Ok(a * b)
        }
        async fn scale(&self, a: f64, k: f64) -> Result<f64, RemoteError> {
            Ok(a * k)
        }
        async fn neg(&self, a: i64) -> Result<i64, RemoteError> {
            Ok(-a)
        }
        async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
            Ok(a + b)
        }
    }
}

fn assert_no_such_method(r: Result<i64, RemoteError>, method: &str) {
    match r {
        Err(e @ RemoteError::NoSuchMethod(_)) => {
            assert!(e.to_string().contains(method), "`{e}` names `{method}`");
        }
        other => panic!("expected NoSuchMethod({method}), got {other:?}"),
    }
}

fn assert_mismatch<T: std::fmt::Debug>(r: Result<T, RemoteError>, method: &str) {
    match r {
        Err(e @ RemoteError::InterfaceMismatch(_)) => {
            assert!(e.to_string().contains(method), "`{e}` names `{method}`");
        }
        other => panic!("expected InterfaceMismatch on {method}, got {other:?}"),
    }
}

async fn newer_client_calling_an_older_server(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let exported: Remote<dyn v1::Calc> = server.export(v1::Impl);

    let client = Node::new();
    let calc = client
        .connect::<dyn v2::Calc>(&addr, exported.id())
        .await
        .unwrap();
    // Methods both versions have work, though they moved.
    assert_eq!(calc.add(2, 3).await, Ok(5));
    assert_eq!(calc.neg(7).await, Ok(-7));
    // A method the server lacks is named.
    assert_no_such_method(calc.mul(6, 7).await, "mul");
    // A method whose arguments changed never decodes as the other.
    assert_mismatch(calc.scale(1.5, 2.0).await, "scale");
    assert_eq!(calc.add(1, 1).await, Ok(2), "the stub goes on");

    // The same errors on the serving node, through its dispatcher.
    let here = server
        .connect::<dyn v2::Calc>(&addr, exported.id())
        .await
        .unwrap();
    assert_eq!(here.add(2, 3).await, Ok(5));
    assert_no_such_method(here.mul(6, 7).await, "mul");
    assert_mismatch(here.scale(1.5, 2.0).await, "scale");

    client.shutdown().await;
    server.shutdown().await;
}

async fn older_client_calling_a_newer_server(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let _: Remote<dyn v2::Calc> = server.serve("calc", v2::Impl);

    let client = Node::new();
    let calc = client
        .connect_service::<dyn v1::Calc>(&addr, "calc")
        .await
        .unwrap();
    // Adding and reordering methods breaks nothing.
    assert_eq!(calc.add(40, 2).await, Ok(42));
    assert_eq!(calc.neg(-3).await, Ok(3));
    assert_mismatch(calc.scale(3, 4).await, "scale");
    assert_eq!(calc.add(-1, -1).await, Ok(-2));

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
    addr: &farcall::Address,
    id: ObjectId,
) -> Result<u64, RemoteError> {
    client.connect::<dyn Counter>(addr, id).await?.add(1).await
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
    // A service nobody serves.
    let nobody = client
        .connect_service::<dyn Counter>(&addr, "nobody")
        .await
        .unwrap();
    assert_eq!(nobody.name().await, Err(RemoteError::NoSuchObject));

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

// ---------------------------------------------------------------------------
// Inheritance and the catalogue
// ---------------------------------------------------------------------------

/// Anything with an area.
#[farcall::remote]
pub trait Shape {
    /// Its area.
    async fn area(&self) -> Result<f64, RemoteError>;
    /// Its name.
    async fn label(&self) -> Result<String, RemoteError>;
}

/// A circle is a shape.
#[farcall::remote]
pub trait Circle: Shape {
    /// Its radius.
    async fn radius(&self) -> Result<f64, RemoteError>;
    /// Grows it by `by`; returns the new radius.
    async fn grow(&self, by: f64) -> Result<f64, RemoteError>;
    /// Its diameter (a default body, run where the object lives).
    async fn diameter(&self) -> Result<f64, RemoteError> {
        Ok(self.radius().await? * 2.0)
    }
}

struct Disc(Mutex<f64>);

#[farcall::remote]
impl Shape for Disc {
    async fn area(&self) -> Result<f64, RemoteError> {
        let r = *self.0.lock().unwrap();
        Ok(std::f64::consts::PI * r * r)
    }
    async fn label(&self) -> Result<String, RemoteError> {
        Ok("disc".into())
    }
}

#[farcall::remote]
impl Circle for Disc {
    async fn radius(&self) -> Result<f64, RemoteError> {
        Ok(*self.0.lock().unwrap())
    }
    async fn grow(&self, by: f64) -> Result<f64, RemoteError> {
        let mut r = self.0.lock().unwrap();
        *r += by;
        Ok(*r)
    }
}

async fn supertrait_methods_through_a_subtrait_stub(t: Transport) {
    let server = t.node().await;
    let addr = server.local_addr().unwrap();
    let _: Remote<dyn Circle> = server.serve("disc", Disc(Mutex::new(1.0)));
    let client = Node::new();
    let c = client
        .connect_service::<dyn Circle>(&addr, "disc")
        .await
        .unwrap();
    assert_eq!(c.radius().await.unwrap(), 1.0);
    assert_eq!(c.label().await.unwrap(), "disc", "a supertrait method");
    assert_eq!(c.area().await.unwrap(), std::f64::consts::PI);
    assert_eq!(c.grow(1.0).await.unwrap(), 2.0);
    assert_eq!(c.diameter().await.unwrap(), 4.0, "a default method");
    assert_eq!(c.area().await.unwrap(), 4.0 * std::f64::consts::PI);

    // The same object seen as its supertrait only.
    let s = client
        .connect_service::<dyn Shape>(&addr, "disc")
        .await
        .unwrap();
    assert_eq!(s.label().await.unwrap(), "disc");
    assert_eq!(s.area().await.unwrap(), 4.0 * std::f64::consts::PI);

    // A Shape-only object does not answer Circle's own methods.
    let _: Remote<dyn Shape> = server.serve("just a shape", Disc(Mutex::new(1.0)));
    let not_circle = client
        .connect_service::<dyn Circle>(&addr, "just a shape")
        .await
        .unwrap();
    assert_eq!(not_circle.label().await.unwrap(), "disc");
    match not_circle.radius().await {
        Err(e @ RemoteError::NoSuchMethod(_)) => assert!(e.to_string().contains("radius")),
        other => panic!("expected NoSuchMethod(radius), got {other:?}"),
    }

    client.shutdown().await;
    server.shutdown().await;
}

#[test]
fn catalogue_lists_every_interface_with_its_methods() {
    let find = |name: &str| {
        let found: Vec<_> = farcall::remote::catalogue()
            .filter(|d| d.name == name)
            .collect();
        assert!(!found.is_empty(), "{name} is in the catalogue");
        found
    };
    let names = |d: &farcall::remote::InterfaceDescriptor| {
        let mut v: Vec<&str> = d.methods.iter().map(|m| m.name).collect();
        v.sort_unstable();
        v
    };

    let shape = find("Shape");
    assert_eq!(shape.len(), 1);
    assert_eq!(names(shape[0]), ["area", "label"]);
    assert!(shape[0].supertraits.is_empty());
    let circle = find("Circle");
    assert_eq!(circle.len(), 1);
    assert_eq!(names(circle[0]), ["diameter", "grow", "radius"]);
    assert_eq!(circle[0].supertraits, ["Shape"]);
    assert_ne!(shape[0].id, circle[0].id);
    assert_eq!(
        farcall::remote::find_interface(circle[0].id).map(|d| d.name),
        Some("Circle")
    );
    let grow = circle[0].methods.iter().find(|m| m.name == "grow").unwrap();
    assert_eq!(grow.args.len(), 1);
    assert_eq!((grow.args[0].name, grow.args[0].ty), ("by", "f64"));
    assert_eq!(grow.result, "Result<f64, RemoteError>");
    assert!(!grow.oneway);

    let sleepy = find("Sleepy");
    let note = sleepy[0].methods.iter().find(|m| m.name == "note").unwrap();
    assert!(note.oneway);

    // A method removed by `#[cfg]` is not listed.
    let kitchen = find("Kitchen");
    assert!(!names(kitchen[0]).contains(&"compiled_out"));
    assert_eq!(kitchen[0].methods.len(), 13);

    // Method ids are hashes of names: stable across versions and orders.
    let calcs = find("Calc");
    assert_eq!(calcs.len(), 2, "both versions are linked in");
    assert_eq!(calcs[0].id, calcs[1].id, "one interface");
    assert_ne!(calcs[0].fingerprint, calcs[1].fingerprint, "two signatures");
    let method = |d: &farcall::remote::InterfaceDescriptor, n: &str| {
        d.methods
            .iter()
            .find(|m| m.name == n)
            .map(|m| (m.id, m.signature))
    };
    for name in ["add", "neg"] {
        assert_eq!(method(calcs[0], name), method(calcs[1], name), "{name}");
    }
    let (a, b) = (
        method(calcs[0], "scale").unwrap(),
        method(calcs[1], "scale").unwrap(),
    );
    assert_eq!(a.0, b.0, "same name, same id");
    assert_ne!(a.1, b.1, "another signature");

    // The generic trait is listed once.
    assert_eq!(find("Store").len(), 1);
}
