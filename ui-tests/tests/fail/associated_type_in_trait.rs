use farcall::RemoteError;

#[farcall::remote]
pub trait Store {
    type Value;
    async fn len(&self) -> Result<u64, RemoteError>;
}

fn main() {}
