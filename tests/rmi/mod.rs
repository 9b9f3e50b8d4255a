//! The interfaces and objects that the RMI test files pass around: `mod
//! rmi;` at the top of each `rmi_*.rs` but `rmi_streams.rs` and
//! `rmi_leases.rs`.
//!
//! - [`Shape`], and two subtraits of it, [`Circle`] and [`Square`]:
//!   [`Disc`] and [`Tile`], whose [`Probe`] counts their calls and callers;
//! - [`Canvas`], served by [`Board`]: holds the shapes its clients pass
//!   in, calls them back, makes shapes of its own;
//! - [`Registry`], served by [`Directory`]: only holds references.
//!
//! Apart from `tests/common/`: linking them adds their interfaces to the
//! test binary's catalogue, where `tests/shapes/` has a `Shape` and a
//! `Circle` of its own.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use farcall::node::NodeId;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Interfaces
// ---------------------------------------------------------------------------

/// Anything with an area.
#[farcall::remote]
pub(crate) trait Shape {
    /// Its area.
    async fn area(&self) -> Result<f64, RemoteError>;
    /// Its name.
    async fn name(&self) -> Result<String, RemoteError>;
    /// Scales its linear size by `k`; returns the new area.
    async fn scale(&self, k: f64) -> Result<f64, RemoteError>;
}

/// A circle is a shape.
#[farcall::remote]
pub(crate) trait Circle: Shape {
    /// Its radius.
    async fn radius(&self) -> Result<f64, RemoteError>;
}

/// A square is a shape, and not a circle.
#[farcall::remote]
pub(crate) trait Square: Shape {
    /// Its side.
    async fn side(&self) -> Result<f64, RemoteError>;
}

/// `Remote<dyn Shape>` under another name, for method *arguments* only.
///
/// Workaround: `#[remote]` rejects `s: Remote<dyn Shape>` as an argument
/// ("remote method arguments cannot be trait objects (pass a
/// farcall::Remote<dyn Trait> instead)"): `check_arg_type` in
/// `macros/src/valid.rs` looks into the generic arguments of every path,
/// `Remote`'s included. Results and struct fields are not checked, so they
/// name the type directly. Write the arguments as `Remote<dyn Shape>` once
/// the macro accepts it.
pub(crate) type ShapeRef = Remote<dyn Shape>;

/// A shape with a label: a reference inside a struct.
#[derive(Debug, Clone, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Labeled {
    /// The label.
    pub(crate) label: String,
    /// The shape.
    pub(crate) shape: Remote<dyn Shape>,
}

/// What the canvas's node sees of a reference it is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Inspection {
    /// Whether calls on it skip the socket (it is one of the canvas node's
    /// own objects).
    pub(crate) is_local: bool,
    /// Whether the canvas holds this very object.
    pub(crate) held: bool,
    /// Its area, read through the reference.
    pub(crate) area: f64,
    /// The owner, as the reference says.
    pub(crate) owner: u128,
    /// Its most derived interface, by name.
    pub(crate) interface: Option<String>,
}

/// A canvas holding shapes that its clients create and pass in.
#[farcall::remote]
pub(crate) trait Canvas {
    /// Adds a shape (calling its `area` first); returns how many it holds.
    async fn add(&self, s: ShapeRef) -> Result<u32, RemoteError>;
    /// Adds a labeled shape; returns how many labeled shapes it holds.
    async fn add_labeled(&self, l: Labeled) -> Result<u32, RemoteError>;
    /// The shape of largest area (asking each its area), if any.
    async fn largest(&self) -> Result<Option<Remote<dyn Shape>>, RemoteError>;
    /// Every shape, in order of addition.
    async fn all(&self) -> Result<Vec<Remote<dyn Shape>>, RemoteError>;
    /// Every labeled shape.
    async fn labeled(&self) -> Result<Vec<Labeled>, RemoteError>;
    /// The sum of the areas (asking each shape).
    async fn total_area(&self) -> Result<f64, RemoteError>;
    /// The radius of every shape that is a circle (narrowing each).
    async fn radii(&self) -> Result<Vec<f64>, RemoteError>;
    /// A new circle owned by the canvas's node, added to the canvas.
    async fn circle(&self, r: f64) -> Result<Remote<dyn Circle>, RemoteError>;
    /// A new square owned by the canvas's node, added to the canvas.
    async fn square(&self, side: f64) -> Result<Remote<dyn Square>, RemoteError>;
    /// What the canvas's node sees of `s`.
    async fn inspect(&self, s: ShapeRef) -> Result<Inspection, RemoteError>;
    /// Sleeps `ms`, then returns it.
    async fn nap(&self, ms: u64) -> Result<u64, RemoteError>;
    /// The id of the node serving the call.
    async fn ping(&self) -> Result<u128, RemoteError>;
}

/// A directory of shapes by name: it only holds references.
#[farcall::remote]
pub(crate) trait Registry {
    /// Binds `name` to `s`.
    async fn bind(&self, name: String, s: ShapeRef) -> Result<(), RemoteError>;
    /// The shape bound to `name`.
    async fn lookup(&self, name: String) -> Result<Option<Remote<dyn Shape>>, RemoteError>;
}

// ---------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------

/// What a shape saw of its calls: how many, and from which nodes.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    calls: AtomicU64,
    callers: Mutex<Vec<NodeId>>,
}

impl Probe {
    pub(crate) fn note(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(cx) = CallContext::current() {
            self.callers.lock().unwrap().push(cx.caller);
        }
    }
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
    pub(crate) fn callers(&self) -> Vec<NodeId> {
        self.callers.lock().unwrap().clone()
    }
}

/// A square shape; its side and probe are shared with the test.
#[derive(Debug, Clone)]
pub(crate) struct Tile {
    name: String,
    pub(crate) side: Arc<Mutex<f64>>,
    pub(crate) probe: Arc<Probe>,
}

impl Tile {
    pub(crate) fn new(name: &str, side: f64) -> Tile {
        Tile {
            name: name.to_owned(),
            side: Arc::new(Mutex::new(side)),
            probe: Arc::default(),
        }
    }
}

#[farcall::remote]
impl Shape for Tile {
    async fn area(&self) -> Result<f64, RemoteError> {
        self.probe.note();
        let s = *self.side.lock().unwrap();
        Ok(s * s)
    }
    async fn name(&self) -> Result<String, RemoteError> {
        self.probe.note();
        Ok(self.name.clone())
    }
    async fn scale(&self, k: f64) -> Result<f64, RemoteError> {
        self.probe.note();
        let mut s = self.side.lock().unwrap();
        *s *= k;
        Ok(*s * *s)
    }
}

#[farcall::remote]
impl Square for Tile {
    async fn side(&self) -> Result<f64, RemoteError> {
        self.probe.note();
        Ok(*self.side.lock().unwrap())
    }
}

/// A circular shape.
#[derive(Debug, Clone)]
pub(crate) struct Disc {
    name: String,
    r: Arc<Mutex<f64>>,
    pub(crate) probe: Arc<Probe>,
}

impl Disc {
    pub(crate) fn new(name: &str, r: f64) -> Disc {
        Disc {
            name: name.to_owned(),
            r: Arc::new(Mutex::new(r)),
            probe: Arc::default(),
        }
    }
}

#[farcall::remote]
impl Shape for Disc {
    async fn area(&self) -> Result<f64, RemoteError> {
        self.probe.note();
        let r = *self.r.lock().unwrap();
        Ok(std::f64::consts::PI * r * r)
    }
    async fn name(&self) -> Result<String, RemoteError> {
        self.probe.note();
        Ok(self.name.clone())
    }
    async fn scale(&self, k: f64) -> Result<f64, RemoteError> {
        self.probe.note();
        let mut r = self.r.lock().unwrap();
        *r *= k;
        Ok(std::f64::consts::PI * *r * *r)
    }
}

#[farcall::remote]
impl Circle for Disc {
    async fn radius(&self) -> Result<f64, RemoteError> {
        self.probe.note();
        Ok(*self.r.lock().unwrap())
    }
}

/// The node serving the current call.
pub(crate) fn serving_node() -> Node {
    let cx = CallContext::current().expect("inside a remote call");
    cx.node
        .or_else(|| cx.connection.and_then(|c| c.node()))
        .expect("the serving node is alive")
}

/// The canvas; clones share its contents (the test keeps one to look in).
#[derive(Debug, Clone, Default)]
pub(crate) struct Board {
    shapes: Arc<Mutex<Vec<Remote<dyn Shape>>>>,
    labeled: Arc<Mutex<Vec<Labeled>>>,
}

impl Board {
    pub(crate) fn snapshot(&self) -> Vec<Remote<dyn Shape>> {
        self.shapes.lock().unwrap().clone()
    }
    pub(crate) fn push(&self, s: Remote<dyn Shape>) -> u32 {
        let mut v = self.shapes.lock().unwrap();
        v.push(s);
        v.len() as u32
    }
}

#[farcall::remote]
impl Canvas for Board {
    async fn add(&self, s: ShapeRef) -> Result<u32, RemoteError> {
        // A call back to the owner, whoever and wherever it is.
        let area = s.area().await?;
        assert!(area.is_finite());
        Ok(self.push(s))
    }
    async fn add_labeled(&self, l: Labeled) -> Result<u32, RemoteError> {
        l.shape.area().await?;
        let mut v = self.labeled.lock().unwrap();
        v.push(l);
        Ok(v.len() as u32)
    }
    async fn largest(&self) -> Result<Option<Remote<dyn Shape>>, RemoteError> {
        let mut best: Option<(f64, Remote<dyn Shape>)> = None;
        for s in self.snapshot() {
            let a = s.area().await?;
            if best.as_ref().is_none_or(|(b, _)| a > *b) {
                best = Some((a, s));
            }
        }
        Ok(best.map(|(_, s)| s))
    }
    async fn all(&self) -> Result<Vec<Remote<dyn Shape>>, RemoteError> {
        Ok(self.snapshot())
    }
    async fn labeled(&self) -> Result<Vec<Labeled>, RemoteError> {
        Ok(self.labeled.lock().unwrap().clone())
    }
    async fn total_area(&self) -> Result<f64, RemoteError> {
        let mut total = 0.0;
        for s in self.snapshot() {
            total += s.area().await?;
        }
        Ok(total)
    }
    async fn radii(&self) -> Result<Vec<f64>, RemoteError> {
        let mut out = Vec::new();
        for s in self.snapshot() {
            if let Some(c) = s.narrow::<dyn Circle>() {
                out.push(c.radius().await?);
            }
        }
        Ok(out)
    }
    async fn circle(&self, r: f64) -> Result<Remote<dyn Circle>, RemoteError> {
        let c: Remote<dyn Circle> = serving_node().export(Disc::new("server disc", r));
        self.push(c.clone().upcast::<dyn Shape>());
        Ok(c)
    }
    async fn square(&self, side: f64) -> Result<Remote<dyn Square>, RemoteError> {
        let s: Remote<dyn Square> = serving_node().export(Tile::new("server tile", side));
        self.push(s.clone().upcast::<dyn Shape>());
        Ok(s)
    }
    async fn inspect(&self, s: ShapeRef) -> Result<Inspection, RemoteError> {
        let held = self.snapshot().contains(&s);
        Ok(Inspection {
            is_local: s.is_local(),
            held,
            area: s.area().await?,
            owner: s.owner().0,
            interface: s.interface_name().map(str::to_owned),
        })
    }
    async fn nap(&self, ms: u64) -> Result<u64, RemoteError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
    async fn ping(&self) -> Result<u128, RemoteError> {
        Ok(serving_node().id().0)
    }
}

/// Names and the shapes bound to them.
pub(crate) type Bindings = Vec<(String, Remote<dyn Shape>)>;

/// The registry; clones share its contents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    pub(crate) calls: Arc<AtomicU64>,
    names: Arc<Mutex<Bindings>>,
}

#[farcall::remote]
impl Registry for Directory {
    async fn bind(&self, name: String, s: ShapeRef) -> Result<(), RemoteError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.names.lock().unwrap().push((name, s));
        Ok(())
    }
    async fn lookup(&self, name: String) -> Result<Option<Remote<dyn Shape>>, RemoteError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let names = self.names.lock().unwrap();
        Ok(names
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone()))
    }
}

/// Whether `a` and `b` are equal but for rounding.
pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * a.abs().max(b.abs()).max(1.0)
}
