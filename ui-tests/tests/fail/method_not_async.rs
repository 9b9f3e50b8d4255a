use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    fn area(&self) -> Result<f64, RemoteError>;
}

fn main() {}
