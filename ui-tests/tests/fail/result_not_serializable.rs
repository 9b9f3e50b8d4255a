use farcall::RemoteError;

pub struct Opaque;

#[farcall::remote]
pub trait Source {
    async fn get(&self) -> Result<Opaque, RemoteError>;
}

fn main() {}
