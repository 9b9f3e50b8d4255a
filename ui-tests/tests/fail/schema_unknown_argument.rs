use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, farcall::Schema)]
pub struct Parcel {
    #[schema(rename = "w")]
    pub width: u32,
}

fn main() {}
