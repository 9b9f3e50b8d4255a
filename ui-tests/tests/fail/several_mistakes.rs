// Every mistake is reported at once, each at its own tokens.
use farcall::RemoteError;

#[farcall::remote(bar)]
pub trait Shape {
    fn area(&self) -> Result<f64, RemoteError>;
    async fn scale(&mut self, by: &f64) -> f64;
    async fn core(&self) -> Result<(), RemoteError>;
}

fn main() {}
