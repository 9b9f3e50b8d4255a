use farcall::RemoteError;

#[farcall::remote]
pub trait Clock {
    async fn with_deadline(&self, millis: u64) -> Result<(), RemoteError>;
}

fn main() {}
