use farcall::RemoteError;

#[farcall::remote(name = "not a name")]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

fn main() {}
