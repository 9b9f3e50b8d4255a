use farcall::RemoteError;

#[farcall::remote]
pub unsafe trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

fn main() {}
