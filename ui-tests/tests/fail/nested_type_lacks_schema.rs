use farcall::RemoteError;
use serde::{Deserialize, Serialize};

/// Crosses the wire, but does not describe its structure.
#[derive(Serialize, Deserialize)]
pub struct Parcel {
    pub width: u32,
    pub height: u32,
}

/// Derives it, over a field whose type does not.
#[derive(Serialize, Deserialize, farcall::Schema)]
pub struct Order {
    pub parcels: Vec<Parcel>,
}

#[farcall::remote]
pub trait Shipping {
    async fn send(&self, order: Order) -> Result<u64, RemoteError>;
}

fn main() {}
