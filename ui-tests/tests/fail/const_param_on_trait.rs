use farcall::RemoteError;

#[farcall::remote]
pub trait Buffer<const N: usize> {
    async fn len(&self) -> Result<u64, RemoteError>;
}

fn main() {}
