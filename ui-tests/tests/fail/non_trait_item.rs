#[farcall::remote]
pub struct Shape {
    pub area: f64,
}

fn main() {}
