//! Per-node state of the layers above the runtime, by type.
//!
//! The directory keeps who may write to it here, the broker its embedded
//! engine: each node has its own, and none of it lives in a process-wide
//! map.
//!
//! ```
//! use farcall_runtime::Node;
//!
//! #[derive(Debug, Default)]
//! struct Greeting(String);
//!
//! let node = Node::new();
//! assert!(node.extensions().get::<Greeting>().is_none());
//! let g = node.extensions().get_or_insert_with(|| Greeting("hello".into()));
//! assert_eq!(g.0, "hello");
//! // The first value stays: later callers share it.
//! let again = node.extensions().get_or_insert_with(|| Greeting("bye".into()));
//! assert_eq!(again.0, "hello");
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

type Slot = Arc<dyn Any + Send + Sync>;

/// A map from a type to one shared value of it, kept by a node for its
/// lifetime. See [`Node::extensions`](crate::Node::extensions).
#[derive(Default)]
pub struct Extensions {
    map: Mutex<HashMap<TypeId, Slot>>,
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("count", &lock(&self.map).len())
            .finish()
    }
}

impl Extensions {
    /// The value of type `T`, if one was inserted.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let slot = lock(&self.map).get(&TypeId::of::<T>()).cloned()?;
        slot.downcast::<T>().ok()
    }

    /// The value of type `T`, inserting `make()` first if there is none.
    pub fn get_or_insert_with<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let slot = lock(&self.map)
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(make()))
            .clone();
        slot.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("a slot holds the type it is keyed by"))
    }

    /// Sets the value of type `T`; returns the one it replaces.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<Arc<T>> {
        let old = lock(&self.map).insert(TypeId::of::<T>(), Arc::new(value))?;
        old.downcast::<T>().ok()
    }

    /// Removes the value of type `T`, returning it.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let old = lock(&self.map).remove(&TypeId::of::<T>())?;
        old.downcast::<T>().ok()
    }
}
