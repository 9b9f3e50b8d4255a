#[farcall::remote]
pub trait Log {
    async fn write(&self, line: String);
}

fn main() {}
