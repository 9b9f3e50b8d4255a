use farcall::RemoteError;

#[farcall::remote]
pub trait Greeter {
    async fn greet(&self, name: Strng) -> Result<String, RemoteError>;
}

fn main() {}
