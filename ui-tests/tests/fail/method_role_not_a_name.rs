use farcall::RemoteError;

#[farcall::remote]
pub trait Admin {
    #[remote(role)]
    async fn a(&self) -> Result<(), RemoteError>;
    #[remote(role = 3)]
    async fn b(&self) -> Result<(), RemoteError>;
    #[remote(role = "two words")]
    async fn c(&self) -> Result<(), RemoteError>;
    #[remote(admin)]
    async fn d(&self) -> Result<(), RemoteError>;
}

fn main() {}
