//! A trait with no methods is a valid (if dull) interface.

#[farcall::remote]
pub trait Nothing {}

struct Thing;

#[farcall::remote]
impl Nothing for Thing {}

#[allow(dead_code)]
fn export(node: &farcall::Node) -> farcall::Remote<dyn Nothing> {
    node.export(Thing)
}

#[allow(dead_code)]
type Client = NothingClient;

fn main() {}
