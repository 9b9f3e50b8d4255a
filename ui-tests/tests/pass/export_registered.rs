//! `#[farcall::export]`: registration with `Default` and with a constructor.

use farcall::RemoteError;

#[farcall::remote]
pub trait Counter {
    async fn get(&self) -> Result<u64, RemoteError>;
}

#[derive(Default)]
struct Zero;

#[farcall::export(name = "counters/zero")]
#[farcall::remote]
impl Counter for Zero {
    async fn get(&self) -> Result<u64, RemoteError> {
        Ok(0)
    }
}

struct Fixed(u64);

fn seven() -> Fixed {
    Fixed(7)
}

#[farcall::remote]
#[farcall::export(name = "counters/seven", with = "seven")]
impl Counter for Fixed {
    async fn get(&self) -> Result<u64, RemoteError> {
        Ok(self.0)
    }
}

fn main() {
    let names: Vec<&str> = farcall::rmi::registered_exports().map(|r| r.name).collect();
    assert_eq!(names.len(), 2);
}
