use farcall::RemoteError;

#[farcall::remote]
pub trait Printer {
    async fn print(&self, _: String) -> Result<(), RemoteError>;
}

fn main() {}
