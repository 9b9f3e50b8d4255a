//! Objects registered at link time with `#[farcall::export(name = "...")]`.
//!
//! Each registration names a factory; `node.export_registered()` (in
//! farcall-registry) creates every registered object, exports it and binds
//! it under its name in the node's directory, so that a server binary
//! publishes all its objects with one call.

use crate::node::Node;
use crate::rmi::any::AnyRemote;

/// One object registered by `#[farcall::export]`.
#[derive(Debug)]
pub struct ExportRegistration {
    /// The directory name it is bound under.
    pub name: &'static str,
    /// The remote interface it is exported as.
    pub interface: &'static str,
    /// Creates the object and exports it on `node`.
    pub create: fn(&Node) -> AnyRemote,
}

inventory::collect!(ExportRegistration);

/// Every object registered in this binary, in no particular order.
pub fn registered_exports() -> impl Iterator<Item = &'static ExportRegistration> {
    inventory::iter::<ExportRegistration>.into_iter()
}
