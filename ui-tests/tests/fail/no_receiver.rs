use farcall::RemoteError;

#[farcall::remote]
pub trait Factory {
    async fn make(size: u32) -> Result<u64, RemoteError>;
}

fn main() {}
