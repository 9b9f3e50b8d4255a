//! The directory's error.

use farcall_runtime::{ObjectId, RemoteError};
use serde::{Deserialize, Serialize};

/// Why a directory operation failed.
///
/// It crosses the wire as the error of every [`Directory`](crate::Directory)
/// method; a failed call (deadline, disconnection, ...) arrives as
/// [`DirectoryError::Remote`], and a write refused by the directory's
/// authorisation check as [`DirectoryError::Unauthorized`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// Nothing is bound under this name.
    #[error("nothing is bound under {0:?}")]
    NotBound(String),
    /// `bind` of a name already taken (use `rebind` to replace, `add` to
    /// join a group).
    #[error("{0:?} is already bound (rebind replaces it, add joins its group)")]
    AlreadyBound(String),
    /// The name (or prefix) breaks the naming rules.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (cut to 300 bytes).
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// No object bound under the name implements the interface asked for.
    #[error("no object bound under {name:?} implements {expected} (found: {})", found.join(", "))]
    InterfaceMismatch {
        /// The name looked up.
        name: String,
        /// The interface asked for.
        expected: String,
        /// The interfaces of the objects bound there.
        found: Vec<String>,
    },
    /// The object is not a member of the group bound under the name.
    #[error("{object} is not bound under {name:?}")]
    NoSuchMember {
        /// The name.
        name: String,
        /// The object.
        object: ObjectId,
    },
    /// The group under the name is at its size limit.
    #[error("the group {name:?} has {max} members already, its limit")]
    GroupFull {
        /// The name.
        name: String,
        /// The limit ([`MAX_GROUP`](crate::MAX_GROUP)).
        max: u32,
    },
    /// The directory refused a write: by default only callers from its
    /// trusted networks (loopback, unix socket, in-process) may bind,
    /// rebind, add, unbind and remove. It arrives as
    /// [`Fault::Unauthorized`](farcall_runtime::Fault::Unauthorized).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The client could not be set up (e.g. `FARCALL_DIRECTORY` unset or
    /// not an address).
    #[error("directory configuration: {0}")]
    Config(String),
    /// The call failed in the runtime.
    #[error(transparent)]
    Remote(RemoteError),
}

impl From<RemoteError> for DirectoryError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Unauthorized(why) => DirectoryError::Unauthorized(why),
            other => DirectoryError::Remote(other),
        }
    }
}
