//! The one locking helper of the runtime.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on through poisoning: every state the runtime guards
/// stays consistent between statements, so a panicking holder leaves
/// nothing half-done that the next one could trip on.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
