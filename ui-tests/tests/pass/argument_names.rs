//! Arguments may bear any name, including those the generated dispatcher
//! uses for its own locals.

use farcall::RemoteError;

#[farcall::remote]
pub trait Names {
    async fn all(
        &self,
        this: u8,
        cx: u16,
        method: u32,
        payload: String,
        r: u64,
        e: i8,
        v: i16,
        core: bool,
    ) -> Result<String, RemoteError>;
}

struct Impl;

#[farcall::remote]
impl Names for Impl {
    async fn all(
        &self,
        this: u8,
        cx: u16,
        method: u32,
        payload: String,
        r: u64,
        e: i8,
        v: i16,
        core: bool,
    ) -> Result<String, RemoteError> {
        Ok(format!("{this}{cx}{method}{payload}{r}{e}{v}{core}"))
    }
}

#[allow(dead_code)]
fn export(node: &farcall::Node) -> farcall::Remote<dyn Names> {
    node.export(Impl)
}

fn main() {}
