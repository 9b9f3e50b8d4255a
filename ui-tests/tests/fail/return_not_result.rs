#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> f64;
}

fn main() {}
