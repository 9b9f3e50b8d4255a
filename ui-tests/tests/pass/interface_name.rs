//! `#[remote(name = "...")]` names the interface on the wire: its id is
//! the hash of that name, and a subtrait lists it under that name too.

use farcall::RemoteError;
use farcall::rmi::Interface;

#[farcall::remote(name = "Shape")]
pub trait ShapeApi {
    async fn area(&self) -> Result<f64, RemoteError>;
}

#[farcall::remote]
pub trait Circle: ShapeApi {
    async fn radius(&self) -> Result<f64, RemoteError>;
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn main() {
    let d = <dyn ShapeApi as Interface>::descriptor();
    assert_eq!(d.name, "Shape");
    assert_eq!(d.id, fnv1a64(b"Shape"));
    let _stub: Option<ShapeApiClient> = None;
    let c = <dyn Circle as Interface>::descriptor();
    assert_eq!(c.supertraits, ["Shape"]);
    assert_eq!(c.supertrait_ids, [d.id]);
}
