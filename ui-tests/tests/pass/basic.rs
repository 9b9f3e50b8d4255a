//! A trait, an implementation, and the generated client alias.

use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
    async fn scale(&self, factor: f64, label: String) -> Result<Vec<u8>, RemoteError>;
}

struct Square(f64);

#[farcall::remote]
impl Shape for Square {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(self.0 * self.0)
    }
    async fn scale(&self, factor: f64, label: String) -> Result<Vec<u8>, RemoteError> {
        let _ = (factor, label);
        Ok(vec![1, 2, 3])
    }
}

/// The stub is a `Shape` too.
fn assert_shape<T: Shape>() {}

#[allow(dead_code)]
async fn use_it(node: farcall::Node, client: ShapeClient) -> Result<f64, RemoteError> {
    assert_shape::<ShapeClient>();
    let served: farcall::Remote<dyn Shape> = node.serve("square", Square(2.0));
    let exported: farcall::Remote<dyn Shape> = node.export(Square(1.0));
    let stub: farcall::Remote<dyn Shape> =
        node.connect_service("tcp://127.0.0.1:1", "square").await?;
    let fast = client.with_deadline(std::time::Duration::from_millis(10));
    Ok(served.area().await? + exported.area().await? + stub.area().await? + fast.area().await?)
}

fn main() {}
