use farcall::RemoteError;

pub struct Opaque;

#[farcall::remote]
pub trait Sink {
    async fn put(&self, value: Opaque) -> Result<(), RemoteError>;
}

fn main() {}
