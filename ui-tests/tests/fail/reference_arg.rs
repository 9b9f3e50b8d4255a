use farcall::RemoteError;

#[farcall::remote]
pub trait Printer {
    async fn print(&self, text: &str) -> Result<(), RemoteError>;
}

fn main() {}
