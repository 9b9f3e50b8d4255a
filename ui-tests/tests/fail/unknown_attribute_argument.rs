use farcall::RemoteError;

#[farcall::remote(foo)]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

fn main() {}
