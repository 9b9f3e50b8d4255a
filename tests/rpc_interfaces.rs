//! Remote interfaces (`#[farcall::remote]` traits) as a user declares
//! them: a generic trait, two versions of one interface, a subtrait and
//! its supertrait, and the catalogue of every interface a binary links.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;
mod rpc;

use std::collections::BTreeMap;
use std::sync::Mutex;

use farcall::rmi::ObjectId;
use farcall::{Node, Remote, RemoteError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use common::transport::{Transport, on_transports};
use rpc::Point;

on_transports!([tcp, unix, mem];
    generic_trait_with_two_value_types,
    newer_client_calling_an_older_server,
    older_client_calling_a_newer_server,
    supertrait_methods_through_a_subtrait_stub,
);

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
    match client
        .connect_service::<dyn Circle>(&addr, "just a shape")
        .await
    {
        Err(RemoteError::InterfaceMismatch(msg)) => {
            assert!(msg.contains("Shape") && msg.contains("Circle"), "{msg}")
        }
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
    // Bound without the check, the stub reaches the object all the same.
    let not_circle = client
        .connect::<dyn Circle>(&addr, ObjectId::for_service("just a shape"))
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
        let found: Vec<_> = farcall::rmi::catalogue()
            .filter(|d| d.name == name)
            .collect();
        assert!(!found.is_empty(), "{name} is in the catalogue");
        found
    };
    let names = |d: &farcall::rmi::InterfaceDescriptor| {
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
        farcall::rmi::find_interface(circle[0].id).map(|d| d.name),
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
    let method = |d: &farcall::rmi::InterfaceDescriptor, n: &str| {
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
