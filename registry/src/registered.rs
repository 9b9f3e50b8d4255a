//! Publishing every object registered with `#[farcall::export]`.

use std::future::Future;

use farcall_runtime::Node;
use farcall_runtime::rmi::{AnyRemote, registered_exports};

use crate::DirectoryError;
use crate::client::DirectoryExt;

/// `node.export_registered()`: creates every object registered in this
/// binary with `#[farcall::export(name = "...")]`, exports it, and binds
/// it under its name in the node's directory (replacing what was there),
/// so that a server binary publishes all its objects with one call.
pub trait ExportRegistered {
    /// Publishes every registered object; returns the names and references.
    fn export_registered(
        &self,
    ) -> impl Future<Output = Result<Vec<(&'static str, AnyRemote)>, DirectoryError>> + Send;
}

impl ExportRegistered for Node {
    async fn export_registered(&self) -> Result<Vec<(&'static str, AnyRemote)>, DirectoryError> {
        let dir = self.directory();
        let mut out = Vec::new();
        let mut regs: Vec<_> = registered_exports().collect();
        regs.sort_by_key(|r| r.name);
        for reg in regs {
            let r = (reg.create)(self);
            dir.raw().rebind(reg.name.to_owned(), r.clone()).await?;
            out.push((reg.name, r));
        }
        Ok(out)
    }
}
