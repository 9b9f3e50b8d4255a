//! Shapes to bind, look up and call: the interfaces [`Shape`], [`Circle`]
//! and [`Square`] (two subtraits of one supertrait) and [`Greeter`]
//! (unrelated), and objects of each. `mod shapes;` at the top of a test
//! file.
//!
//! Apart from `tests/common/`: linking them adds their interfaces to the
//! test binary's catalogue, where `tests/rpc/` and `tests/rmi/` have a
//! `Shape` and a `Circle` of their own.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use farcall::RemoteError;

/// Anything with an area.
#[farcall::remote]
pub(crate) trait Shape {
    /// Its area.
    async fn area(&self) -> Result<f64, RemoteError>;
    /// Scales it by `k` around `center`; returns the new area.
    async fn scale(&self, k: f64, center: (f64, f64)) -> Result<f64, RemoteError>;
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

/// Not a shape at all.
#[farcall::remote]
pub(crate) trait Greeter {
    /// Greets someone.
    async fn greet(&self, name: String) -> Result<String, RemoteError>;
}

/// A circle of radius `r` (its area `3 r²`), counting its drops.
pub(crate) struct Disc {
    pub(crate) r: f64,
    /// Incremented when it is dropped.
    pub(crate) drops: Arc<AtomicUsize>,
}

impl Disc {
    pub(crate) fn new(r: f64) -> Disc {
        Disc {
            r,
            drops: Arc::default(),
        }
    }
}

impl Drop for Disc {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[farcall::remote]
impl Shape for Disc {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(3.0 * self.r * self.r)
    }
    async fn scale(&self, k: f64, _center: (f64, f64)) -> Result<f64, RemoteError> {
        Ok(3.0 * self.r * self.r * k * k)
    }
}

#[farcall::remote]
impl Circle for Disc {
    async fn radius(&self) -> Result<f64, RemoteError> {
        Ok(self.r)
    }
}

/// A square of the side it holds.
pub(crate) struct Tile(pub(crate) f64);

#[farcall::remote]
impl Shape for Tile {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(self.0 * self.0)
    }
    async fn scale(&self, k: f64, _center: (f64, f64)) -> Result<f64, RemoteError> {
        Ok(self.0 * self.0 * k * k)
    }
}

#[farcall::remote]
impl Square for Tile {
    async fn side(&self) -> Result<f64, RemoteError> {
        Ok(self.0)
    }
}

/// Greets in English.
pub(crate) struct English;

#[farcall::remote]
impl Greeter for English {
    async fn greet(&self, name: String) -> Result<String, RemoteError> {
        Ok(format!("hello, {name}"))
    }
}

/// Checks what `describe` says of a `Disc` bound as `dyn Circle`: the
/// interface, then its supertrait, with their methods and argument types.
pub(crate) fn assert_describes_circle(infos: &[farcall::directory::InterfaceInfo]) {
    use farcall::rmi::Interface;
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["Circle", "Shape"],
        "the interface, then its supertraits"
    );
    let circle = &infos[0];
    assert!(circle.known);
    assert_eq!(circle.id, <dyn Circle as Interface>::descriptor().id);
    assert_eq!(circle.supertraits, ["Shape"]);
    assert_eq!(circle.methods.len(), 1);
    assert_eq!(circle.methods[0].name, "radius");
    assert!(circle.methods[0].args.is_empty());
    assert!(
        circle.methods[0].result.contains("f64"),
        "{}",
        circle.methods[0].result
    );
    let shape = &infos[1];
    let scale = shape.methods.iter().find(|m| m.name == "scale").unwrap();
    let args: Vec<(&str, &str)> = scale
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.ty.as_str()))
        .collect();
    assert_eq!(args.len(), 2);
    assert_eq!(args[0], ("k", "f64"));
    assert_eq!(args[1].0, "center");
    assert!(args[1].1.contains("f64"), "{}", args[1].1);
    assert!(shape.supertraits.is_empty());
}
