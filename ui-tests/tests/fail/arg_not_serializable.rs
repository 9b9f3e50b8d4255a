use farcall::RemoteError;

/// Describes itself, but cannot cross the wire.
#[derive(farcall::Schema)]
pub struct Opaque;

#[farcall::remote]
pub trait Sink {
    async fn put(&self, value: Opaque) -> Result<(), RemoteError>;
}

fn main() {}
