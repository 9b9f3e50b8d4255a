struct Square;

#[farcall::remote]
impl Square {
    async fn area(&self) -> f64 {
        1.0
    }
}

fn main() {}
