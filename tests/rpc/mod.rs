//! The interfaces and services that several RPC test files call, and how
//! they call them: `mod rpc;` at the top of each `rpc_*.rs`.
//!
//! - [`Kitchen`], served by [`Pantry`]: a method per argument shape, with
//!   the types it takes ([`Point`], [`Polygon`], [`Figure`], [`Nested`]);
//! - [`Sleepy`], served by [`sleepy_server`]: sleeps, panics, and reports
//!   what its handlers see and when they are dropped;
//! - [`client_of`]: a client node with a stub for a service.
//!
//! Apart from `tests/common/`: linking them adds their interfaces to the
//! test binary's catalogue, which `rpc_interfaces.rs` checks.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::node::Limits;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::common::transport::Transport;

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A client node with a stub for the service `name` on `server`.
pub(crate) async fn client_of<I: ?Sized + farcall::rmi::Interface>(
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

pub(crate) const AN_HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// Every argument shape
// ---------------------------------------------------------------------------

/// A plain struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Point {
    /// Abscissa.
    pub(crate) x: i64,
    /// Ordinate.
    pub(crate) y: i64,
}

/// A struct with collections inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Polygon {
    /// Its name.
    pub(crate) name: String,
    /// Its corners.
    pub(crate) points: Vec<Point>,
    /// Free-form counts.
    pub(crate) tags: BTreeMap<String, u32>,
    /// An optional colour.
    pub(crate) colour: Option<(u8, u8, u8)>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub(crate) enum Figure {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Nested {
    /// Maps of vectors of options of tuples.
    pub(crate) layers: HashMap<String, Vec<Option<(u16, Figure)>>>,
    /// Raw bytes inside a struct.
    pub(crate) blob: Bytes,
    /// An option of a struct.
    pub(crate) origin: Option<Point>,
}

/// A method per argument shape.
#[farcall::remote]
pub(crate) trait Kitchen {
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

pub(crate) fn mirror(f: Figure) -> Figure {
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

pub(crate) struct Pantry;

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

pub(crate) fn sample_polygon() -> Polygon {
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

// ---------------------------------------------------------------------------
// A service that sleeps, panics and reports what it sees
// ---------------------------------------------------------------------------

/// What the server reports back to the test about its handlers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Seen {
    /// The caller's node id, as `CallContext::current` says.
    pub(crate) caller: Option<u128>,
    /// Milliseconds left before the caller's deadline.
    pub(crate) remaining_ms: Option<u64>,
}

/// A service that sleeps, panics and reports what it sees.
#[farcall::remote]
pub(crate) trait Sleepy {
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
pub(crate) struct DropSignal(mpsc::UnboundedSender<u64>, u64);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

pub(crate) struct Sleeper {
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
pub(crate) fn explode(why: &str) -> u64 {
    panic!("{why}")
}

/// A node serving a `Sleeper` as "sleepy", and the receiving ends of its
/// reports.
pub(crate) struct SleepyServer {
    pub(crate) node: Node,
    pub(crate) started: mpsc::UnboundedReceiver<u64>,
    pub(crate) dropped: mpsc::UnboundedReceiver<u64>,
    pub(crate) notes: mpsc::UnboundedReceiver<u64>,
}

pub(crate) fn sleeper() -> (
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

pub(crate) async fn sleepy_server(t: Transport, limits: Limits) -> SleepyServer {
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
