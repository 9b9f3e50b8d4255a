use farcall::RemoteError;

/// Describes itself, but cannot cross the wire.
#[derive(farcall::Schema)]
pub struct Opaque;

#[farcall::remote]
pub trait Source {
    async fn get(&self) -> Result<Opaque, RemoteError>;
}

fn main() {}
