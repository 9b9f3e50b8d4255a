use farcall::RemoteError;

#[farcall::remote]
pub trait Counter {
    async fn get(&self) -> Result<u64, RemoteError>;
}

#[derive(Default)]
struct Zero;

#[farcall::export]
#[farcall::remote]
impl Counter for Zero {
    async fn get(&self) -> Result<u64, RemoteError> {
        Ok(0)
    }
}

fn main() {}
