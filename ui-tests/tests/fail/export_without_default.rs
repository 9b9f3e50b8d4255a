use farcall::RemoteError;

#[farcall::remote]
pub trait Counter {
    async fn get(&self) -> Result<u64, RemoteError>;
}

struct NeedsArgs(u64);

#[farcall::export(name = "counters/x")]
#[farcall::remote]
impl Counter for NeedsArgs {
    async fn get(&self) -> Result<u64, RemoteError> {
        Ok(self.0)
    }
}

fn main() {}
