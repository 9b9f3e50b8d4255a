use farcall::RemoteError;

#[farcall::remote]
pub trait Printer {
    async fn print(&self, text: impl Into<String>) -> Result<(), RemoteError>;
}

fn main() {}
