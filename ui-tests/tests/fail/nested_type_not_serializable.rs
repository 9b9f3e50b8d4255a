use std::collections::HashMap;

use farcall::RemoteError;

pub struct Opaque;

#[farcall::remote]
pub trait Index {
    async fn load(&self, entries: HashMap<String, Vec<Opaque>>) -> Result<u64, RemoteError>;
}

fn main() {}
