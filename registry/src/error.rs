//! The directory's error.

use farcall_runtime::{ObjectId, RemoteError};
use serde::{Deserialize, Serialize};

/// Why a directory operation failed.
///
/// It crosses the wire as the error of every [`DirectoryApi`](crate::DirectoryApi)
/// method; a failed call (deadline, disconnection, ...) arrives as
/// [`DirectoryError::Remote`], and a write refused by the directory's
/// authorisation check as [`DirectoryError::Unauthorized`].
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, farcall_macros::Schema,
)]
#[schema(crate = "::farcall_runtime")]
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

/// A runtime failure (dialing the directory's node, ...), as the call
/// error it is: [`DirectoryError::Remote`].
impl From<farcall_runtime::Error> for DirectoryError {
    fn from(e: farcall_runtime::Error) -> Self {
        RemoteError::from(e).into()
    }
}

/// A directory error where a [`RemoteError`] is expected (a remote method
/// that looks something up, a late-bound stub's resolver): a failed call as
/// it was, a refused write as `Unauthorized`, anything else as `Rejected`
/// with the directory's sentence.
impl From<DirectoryError> for RemoteError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Remote(r) => r,
            DirectoryError::Unauthorized(why) => RemoteError::Unauthorized(why),
            other => RemoteError::Rejected(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_policy_stays_typed_both_ways() {
        let e = DirectoryError::from(RemoteError::Unauthorized("not from here".into()));
        assert_eq!(e, DirectoryError::Unauthorized("not from here".into()));
        assert_eq!(e.to_string(), "unauthorized: not from here");
        assert_eq!(
            RemoteError::from(e),
            RemoteError::Unauthorized("not from here".into())
        );
    }

    #[test]
    fn a_runtime_error_crosses_with_question_mark() {
        fn connect() -> Result<(), DirectoryError> {
            let addr: farcall_runtime::Address = "mem://directory".parse().unwrap();
            Err(farcall_runtime::Error::Connect {
                addr,
                source: std::io::ErrorKind::ConnectionRefused.into(),
            })?
        }
        let e = connect().unwrap_err();
        let DirectoryError::Remote(RemoteError::Io(why)) = &e else {
            panic!("expected Remote(Io), got {e:?}");
        };
        assert!(
            why.starts_with("cannot connect to mem://directory: "),
            "{why}"
        );
        assert_eq!(
            &e.to_string(),
            why,
            "the connect error is the whole message"
        );

        fn call() -> Result<(), DirectoryError> {
            Err(RemoteError::DeadlineExceeded)?
        }
        assert_eq!(
            call(),
            Err(DirectoryError::Remote(RemoteError::DeadlineExceeded))
        );
    }

    #[test]
    fn a_directory_error_crosses_into_a_remote_error() {
        fn method() -> Result<(), RemoteError> {
            Err(DirectoryError::NotBound("shop/cart".into()))?
        }
        assert_eq!(
            method(),
            Err(RemoteError::Rejected(
                "nothing is bound under \"shop/cart\"".into()
            ))
        );
        assert_eq!(
            RemoteError::from(DirectoryError::Remote(RemoteError::Closed)),
            RemoteError::Closed
        );

        // An application's error that takes remote errors takes the
        // directory's through them.
        #[derive(Debug, PartialEq)]
        enum AppError {
            Remote(RemoteError),
        }
        impl From<RemoteError> for AppError {
            fn from(e: RemoteError) -> Self {
                AppError::Remote(e)
            }
        }
        fn app() -> Result<(), AppError> {
            Err(RemoteError::from(DirectoryError::Config("unset".into())))?
        }
        assert_eq!(
            app(),
            Err(AppError::Remote(RemoteError::Rejected(
                "directory configuration: unset".into()
            )))
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = DirectoryError::InterfaceMismatch {
            name: "shop/cart".into(),
            expected: "Cart".into(),
            found: vec!["Shape".into(), "Circle".into()],
        };
        assert_eq!(
            e.to_string(),
            "no object bound under \"shop/cart\" implements Cart (found: Shape, Circle)"
        );
        let e = DirectoryError::GroupFull {
            name: "pool".into(),
            max: 4,
        };
        assert_eq!(
            e.to_string(),
            "the group \"pool\" has 4 members already, its limit"
        );
    }
}
