use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    async fn merge(&self, other: Self) -> Result<(), RemoteError>;
}

fn main() {}
