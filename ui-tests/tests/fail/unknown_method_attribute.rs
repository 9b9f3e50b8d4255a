use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    #[remote(fast)]
    async fn area(&self) -> Result<f64, RemoteError>;
}

fn main() {}
