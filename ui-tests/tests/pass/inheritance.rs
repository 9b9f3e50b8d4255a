//! A remote trait may extend another; `Arc<dyn Circle>` upcasts to
//! `Arc<dyn Shape>`, and a `Circle` stub is a `Shape` stub.

use std::sync::Arc;

use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

#[farcall::remote]
pub trait Circle: Shape {
    async fn radius(&self) -> Result<f64, RemoteError>;
}

struct Unit;

#[farcall::remote]
impl Shape for Unit {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(3.14)
    }
}

#[farcall::remote]
impl Circle for Unit {
    async fn radius(&self) -> Result<f64, RemoteError> {
        Ok(1.0)
    }
}

fn upcast(c: Arc<dyn Circle>) -> Arc<dyn Shape> {
    c
}

fn assert_shape<T: Shape + ?Sized>() {}

#[allow(dead_code)]
async fn use_it(node: farcall::Node) -> Result<f64, RemoteError> {
    assert_shape::<CircleClient>();
    assert_shape::<dyn Circle>();
    let c: farcall::Remote<dyn Circle> = node.export(Unit);
    let s = upcast(c.as_arc().clone());
    Ok(s.area().await? + c.area().await? + c.radius().await?)
}

fn main() {
    let _ = upcast(Arc::new(Unit));
}
