use std::collections::HashMap;

use farcall::RemoteError;

/// Describes itself, but cannot cross the wire.
#[derive(farcall::Schema)]
pub struct Opaque;

#[farcall::remote]
pub trait Index {
    async fn load(&self, entries: HashMap<String, Vec<Opaque>>) -> Result<u64, RemoteError>;
}

fn main() {}
