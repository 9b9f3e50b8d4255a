//! Who may write: the check made before a write's payload is decoded.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use farcall_runtime::rmi::{Dispatcher, Interface};
use farcall_runtime::service::{CallContext, OutcomeFuture, Service};
use farcall_runtime::transport::{PeerAddr, TrustedNetworks};
use farcall_runtime::{Fault, Node};

use crate::permissions::{Permissions, Want};
use crate::protocol::DirectoryApi;

/// The methods that change the directory.
pub const WRITE_METHODS: [&str; 5] = ["bind", "rebind", "add", "unbind", "remove"];

/// Whether a connection from `peer` may write to a directory that trusts
/// `trusted` as its own host (by default loopback, unix sockets and
/// in-process `mem://` pipes). Calls from the directory's own node (no
/// connection) always may.
///
/// ```
/// use farcall_registry::authorize_write;
/// use farcall_runtime::transport::{PeerAddr, TrustedNetworks};
///
/// let trusted = TrustedNetworks::default();
/// assert!(authorize_write(&PeerAddr::Tcp("127.0.0.1:4000".parse().unwrap()), &trusted).is_ok());
/// assert!(authorize_write(&PeerAddr::Unix, &trusted).is_ok());
/// assert!(authorize_write(&PeerAddr::Tcp("10.1.2.3:4000".parse().unwrap()), &trusted).is_err());
/// ```
pub fn authorize_write(peer: &PeerAddr, trusted: &TrustedNetworks) -> Result<(), String> {
    if trusted.admits(peer) {
        Ok(())
    } else {
        Err(format!(
            "the directory accepts bind, rebind, add, unbind and remove only from the networks \
             it trusts as its own host ({trusted}); this call came from {peer}"
        ))
    }
}

/// A node's directory write policy, kept in the node's extensions.
#[derive(Debug, Default)]
struct WritePolicy {
    access: Mutex<WriteAccess>,
    trusted: Mutex<TrustedNetworks>,
    /// Per-principal permissions on names; when set, they decide instead
    /// of `access`.
    permissions: Mutex<Option<Arc<Permissions>>>,
}

/// The directory's methods that name what they touch first, and what
/// each asks of the permissions.
fn method_kinds() -> Vec<(u32, Want, bool)> {
    <dyn DirectoryApi as Interface>::descriptor()
        .methods
        .iter()
        .map(|m| {
            let want = if WRITE_METHODS.contains(&m.name) {
                Want::Write
            } else {
                Want::Read
            };
            // Every method but `find` takes the name (or prefix) first.
            (m.id, want, m.name != "find")
        })
        .collect()
}

/// The directory's dispatcher behind the write check: a write from
/// outside the trusted networks is refused from its method word alone,
/// before anything in its payload is decoded.
pub(crate) struct Guarded {
    inner: Dispatcher<dyn DirectoryApi>,
    writes: Vec<u32>,
    kinds: Vec<(u32, Want, bool)>,
    policy: Arc<WritePolicy>,
}

impl Guarded {
    /// The guard of `node`'s directory, with the default policy (this
    /// host only), which [`set_write_access`] and
    /// [`set_trusted_networks`] change.
    pub(crate) fn new(node: &Node, inner: Dispatcher<dyn DirectoryApi>) -> Guarded {
        let policy = Arc::new(WritePolicy::default());
        node.extensions().insert(policy.clone());
        Guarded {
            inner,
            writes: write_method_ids(),
            kinds: method_kinds(),
            policy,
        }
    }

    /// Whether a write coming over `conn` is admitted, or why not.
    fn admits(&self, conn: &farcall_runtime::Connection) -> Result<(), String> {
        let access = self.policy.access.lock().unwrap_or_else(|p| p.into_inner());
        let trusted = || {
            let t = self
                .policy
                .trusted
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            authorize_write(&conn.peer_addr(), &t)
        };
        let token_ok = |t: &Bytes| conn.peer_credentials() == Some(t);
        match &*access {
            WriteAccess::SameHost => trusted(),
            WriteAccess::SameHostOrToken(t) => {
                if token_ok(t) {
                    Ok(())
                } else {
                    trusted()
                        .map_err(|why| format!("{why}, and it did not present the write token"))
                }
            }
            WriteAccess::TokenOnly(t) => {
                if token_ok(t) {
                    Ok(())
                } else {
                    Err(format!(
                        "the directory accepts writes only from connections that present its \
                         write token; {} did not",
                        conn.peer_addr()
                    ))
                }
            }
        }
    }
}

/// Who may bind, rebind, add, unbind and remove in a node's directory.
/// Lookups are open to all. Writers present a token as their handshake
/// credentials (`NodeBuilder::credentials`); it travels in clear, so use
/// it on trusted networks.
///
/// "The same host" is the directory's set of trusted networks: loopback,
/// unix sockets and in-process by default, changed with
/// [`set_trusted_networks`].
#[derive(Clone, Default, PartialEq, Eq)]
pub enum WriteAccess {
    /// Only the same host (the default).
    #[default]
    SameHost,
    /// The same host, and peers elsewhere that present this token.
    SameHostOrToken(Bytes),
    /// Only connections that present this token, wherever they come from.
    TokenOnly(Bytes),
}

/// Tokens are secrets: they never appear in a debug print.
impl fmt::Debug for WriteAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteAccess::SameHost => "SameHost",
            WriteAccess::SameHostOrToken(_) => "SameHostOrToken(<token>)",
            WriteAccess::TokenOnly(_) => "TokenOnly(<token>)",
        })
    }
}

/// Sets who may write to `node`'s directory; returns whether the node has
/// one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use farcall_registry::{WriteAccess, set_write_access};
/// use farcall_runtime::Node;
///
/// let directory = Node::listen("tcp://127.0.0.1:0").await.unwrap();
/// assert!(set_write_access(&directory, WriteAccess::SameHostOrToken("s3cret".into())));
/// // A writer on another host: Node::builder().credentials("s3cret").build()
/// # }
/// ```
pub fn set_write_access(node: &Node, access: WriteAccess) -> bool {
    let Some(policy) = node.extensions().get::<Arc<WritePolicy>>() else {
        return false;
    };
    *policy.access.lock().unwrap_or_else(|p| p.into_inner()) = access;
    true
}

/// Sets per-principal permissions on the names of `node`'s directory (see
/// [`Permissions`]); they decide every call over a connection instead of
/// the [`WriteAccess`]. Returns whether the node has a directory.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use farcall_registry::{Permissions, set_permissions};
/// use farcall_runtime::Node;
/// use farcall_runtime::auth::Tokens;
///
/// let directory = Node::builder()
///     .authenticator(Tokens::new().allow("token-of-shop", "shop"))
///     .listen("tcp://127.0.0.1:0")
///     .await
///     .unwrap();
/// assert!(set_permissions(&directory, Permissions::new().write("shop", "shop/")));
/// # }
/// ```
pub fn set_permissions(node: &Node, permissions: Permissions) -> bool {
    let Some(policy) = node.extensions().get::<Arc<WritePolicy>>() else {
        return false;
    };
    *policy.permissions.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(permissions));
    true
}

/// Sets which peers `node`'s directory counts as its own host for
/// [`WriteAccess::SameHost`] and [`WriteAccess::SameHostOrToken`];
/// returns whether the node has a directory.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use farcall_registry::set_trusted_networks;
/// use farcall_runtime::Node;
/// use farcall_runtime::transport::TrustedNetworks;
///
/// let directory = Node::listen("tcp://127.0.0.1:0").await.unwrap();
/// // Writers on this host, and on the office network.
/// let trusted = TrustedNetworks::default().with_network("10.20.0.0/16".parse().unwrap());
/// assert!(set_trusted_networks(&directory, trusted));
/// # }
/// ```
pub fn set_trusted_networks(node: &Node, trusted: TrustedNetworks) -> bool {
    let Some(policy) = node.extensions().get::<Arc<WritePolicy>>() else {
        return false;
    };
    *policy.trusted.lock().unwrap_or_else(|p| p.into_inner()) = trusted;
    true
}

/// The ids (high 32 bits of the method word) of the write methods, from
/// the interface's descriptor.
pub(crate) fn write_method_ids() -> Vec<u32> {
    <dyn DirectoryApi as Interface>::descriptor()
        .methods
        .iter()
        .filter(|m| WRITE_METHODS.contains(&m.name))
        .map(|m| m.id)
        .collect()
}

impl Guarded {
    /// The permissions' decision on a call over `conn`, when they are set.
    fn permitted(
        &self,
        p: &Permissions,
        conn: &farcall_runtime::Connection,
        id: u32,
        payload: &[u8],
    ) -> Result<(), Fault> {
        let Some(&(_, want, named)) = self.kinds.iter().find(|(m, _, _)| *m == id) else {
            return Ok(());
        };
        if !p.checks(want) {
            return Ok(());
        }
        let who = conn.principal();
        p.may_at_all(who, want).map_err(Fault::Unauthorized)?;
        if !named {
            return p.may(who, want, "").map_err(Fault::Unauthorized);
        }
        // Only the name is decoded (postcard: a length, checked against
        // what the frame holds, then the bytes).
        let (name, _) = postcard::take_from_bytes::<String>(payload)
            .map_err(|e| Fault::Decode(format!("the name does not decode: {e}")))?;
        p.may(who, want, &name).map_err(Fault::Unauthorized)
    }
}

impl Service for Guarded {
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        let id = (method >> 32) as u32;
        let permissions = self
            .policy
            .permissions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (Some(p), Some(conn)) = (&permissions, &cx.connection) {
            if let Err(fault) = self.permitted(p, conn, id, &payload) {
                return Box::pin(std::future::ready(Err(fault)));
            }
            return self.inner.call(cx, method, payload);
        }
        if self.writes.contains(&id)
            && let Some(conn) = &cx.connection
            && let Err(why) = self.admits(conn)
        {
            return Box::pin(std::future::ready(Err(Fault::Unauthorized(why))));
        }
        self.inner.call(cx, method, payload)
    }

    fn interface(&self) -> Option<&'static farcall_runtime::rmi::InterfaceDescriptor> {
        self.inner.interface()
    }
}
