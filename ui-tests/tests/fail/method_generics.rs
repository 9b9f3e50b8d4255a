use farcall::RemoteError;

#[farcall::remote]
pub trait Store {
    async fn put<V: serde::Serialize>(&self, value: V) -> Result<(), RemoteError>;
}

fn main() {}
