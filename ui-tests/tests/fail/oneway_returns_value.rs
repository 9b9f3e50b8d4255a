use farcall::RemoteError;

#[farcall::remote]
pub trait Counter {
    #[remote(oneway)]
    async fn bump(&self, n: u32) -> Result<u64, RemoteError>;
}

fn main() {}
