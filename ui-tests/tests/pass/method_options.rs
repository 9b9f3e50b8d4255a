//! `#[remote(oneway)]`, `#[remote(idempotent)]`, doc comments, `#[cfg]` on
//! a method, and a default method body.

use farcall::RemoteError;

/// A counter that lives somewhere else.
#[farcall::remote]
pub trait Counter {
    /// Adds `n`; nothing comes back.
    #[remote(oneway)]
    async fn bump(&self, n: u32) -> Result<(), RemoteError>;

    /// The current count; safe to retry.
    #[remote(idempotent)]
    async fn get(&self) -> Result<u64, RemoteError>;

    /// Compiled out here: neither the stub, the dispatcher nor the
    /// descriptor may mention it.
    #[cfg(any())]
    async fn never(&self, gone: NoSuchType) -> Result<u64, RemoteError>;

    /// Only on some platforms.
    #[cfg(unix)]
    async fn uid(&self) -> Result<u32, RemoteError>;

    /// Twice the count, with a default body.
    #[remote(idempotent)]
    async fn twice(&self) -> Result<u64, RemoteError> {
        Ok(self.get().await? * 2)
    }
}

struct Local(std::sync::atomic::AtomicU64);

#[farcall::remote]
impl Counter for Local {
    async fn bump(&self, n: u32) -> Result<(), RemoteError> {
        self.0
            .fetch_add(u64::from(n), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    async fn get(&self) -> Result<u64, RemoteError> {
        Ok(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
    #[cfg(unix)]
    async fn uid(&self) -> Result<u32, RemoteError> {
        Ok(0)
    }
}

#[allow(dead_code)]
async fn use_it(c: CounterClient) -> Result<u64, RemoteError> {
    c.bump(1).await?;
    #[cfg(unix)]
    c.uid().await?;
    Ok(c.get().await? + c.twice().await?)
}

fn main() {
    let _ = Local(Default::default());
}
