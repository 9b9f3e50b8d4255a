use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub struct MyError;

#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> Result<f64, MyError>;
}

fn main() {}
