use farcall::RemoteError;

#[farcall::remote]
pub trait Counter {
    async fn bump(&mut self) -> Result<u64, RemoteError>;
}

fn main() {}
