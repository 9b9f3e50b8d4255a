use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

struct Square;

#[farcall::remote]
impl Shape for Square {
    fn area(&self) -> Result<f64, RemoteError> {
        Ok(1.0)
    }
}

fn main() {}
