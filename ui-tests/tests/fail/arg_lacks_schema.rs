use farcall::RemoteError;
use serde::{Deserialize, Serialize};

/// Crosses the wire, but does not describe its structure.
#[derive(Serialize, Deserialize)]
pub struct Parcel {
    pub width: u32,
    pub height: u32,
}

#[farcall::remote]
pub trait Shipping {
    async fn send(&self, parcel: Parcel) -> Result<u64, RemoteError>;
}

fn main() {}
