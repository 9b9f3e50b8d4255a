use farcall::RemoteError;

#[farcall::remote]
pub trait Named<'a> {
    async fn name(&self) -> Result<String, RemoteError>;
}

fn main() {}
