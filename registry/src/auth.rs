//! Who may write: the check made before a write's payload is decoded.

use std::net::{IpAddr, SocketAddr};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use farcall_runtime::remote::{Dispatcher, Interface};
use farcall_runtime::service::{CallContext, OutcomeFuture, Service};
use farcall_runtime::{Fault, Node, NodeId};

use crate::error::UNAUTHORIZED;
use crate::protocol::Directory;

/// The methods that change the directory.
pub const WRITE_METHODS: [&str; 5] = ["bind", "rebind", "add", "unbind", "remove"];

/// Whether a connection whose far end is described as `remote_description`
/// (see `Connection::remote_description`) may write to the directory: only
/// the same host may, that is loopback TCP (`127.0.0.0/8`, `::1`,
/// `localhost`), a unix socket, or an in-process `mem://` pipe. Calls from
/// the directory's own node (no connection) always may.
///
/// ```
/// use farcall_registry::authorize_write;
///
/// assert!(authorize_write("tcp://127.0.0.1:4000").is_ok());
/// assert!(authorize_write("tcp://[::1]:4000").is_ok());
/// assert!(authorize_write("unix peer").is_ok());
/// assert!(authorize_write("tcp://10.1.2.3:4000").is_err());
/// ```
pub fn authorize_write(remote_description: &str) -> Result<(), String> {
    let d = remote_description;
    let same_host = if d.starts_with("unix") || d.starts_with("mem://") {
        true
    } else if let Some(rest) = d.strip_prefix("tcp://") {
        match rest.parse::<SocketAddr>() {
            Ok(sa) => is_loopback(sa.ip()),
            Err(_) => rest
                .rsplit_once(':')
                .map(|(host, _)| host.trim_matches(['[', ']']))
                .is_some_and(|host| {
                    host.eq_ignore_ascii_case("localhost")
                        || host.parse::<IpAddr>().is_ok_and(is_loopback)
                }),
        }
    } else {
        false
    };
    if same_host {
        Ok(())
    } else {
        Err(format!(
            "the directory accepts bind, rebind, add, unbind and remove only from its own host \
             (loopback, unix socket or in-process); this call came from {d}"
        ))
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The directory's dispatcher behind the write check: a write from
/// another host is refused from its method word alone, before anything in
/// its payload is decoded.
pub(crate) struct Guarded {
    inner: Dispatcher<dyn Directory>,
    writes: Vec<u32>,
    /// Who may write.
    access: Mutex<WriteAccess>,
}

impl Guarded {
    pub(crate) fn new(inner: Dispatcher<dyn Directory>) -> Guarded {
        Guarded {
            inner,
            writes: write_method_ids(),
            access: Mutex::new(WriteAccess::SameHost),
        }
    }

    /// Remembers this node's guard, so that [`set_write_token`] finds it.
    pub(crate) fn register(node: &Node, guard: &Arc<Guarded>) {
        guards().insert(node.id(), Arc::downgrade(guard));
    }

    /// Whether a write coming over `conn` is admitted, or why not.
    fn admits(&self, conn: &farcall_runtime::Connection) -> Result<(), String> {
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        let token_ok = |t: &Bytes| conn.peer_credentials() == Some(t);
        match &*access {
            WriteAccess::SameHost => authorize_write(conn.remote_description()),
            WriteAccess::SameHostOrToken(t) => {
                if token_ok(t) {
                    Ok(())
                } else {
                    authorize_write(conn.remote_description())
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
                        conn.remote_description()
                    ))
                }
            }
        }
    }
}

type Guards = Mutex<HashMap<NodeId, Weak<Guarded>>>;

fn guards() -> std::sync::MutexGuard<'static, HashMap<NodeId, Weak<Guarded>>> {
    static GUARDS: OnceLock<Guards> = OnceLock::new();
    let mut g = GUARDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    g.retain(|_, w| w.strong_count() > 0);
    g
}

/// Who may bind, rebind, add, unbind and remove in a node's directory.
/// Lookups are open to all. Writers present a token as their handshake
/// credentials (`NodeBuilder::credentials`); it travels in clear, so use
/// it on trusted networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteAccess {
    /// Only the same host: loopback, unix socket, in-process (the default).
    #[default]
    SameHost,
    /// The same host, and other hosts that present this token.
    SameHostOrToken(Bytes),
    /// Only connections that present this token, wherever they come from.
    TokenOnly(Bytes),
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
    let Some(guard) = guards().get(&node.id()).and_then(Weak::upgrade) else {
        return false;
    };
    *guard.access.lock().unwrap_or_else(|p| p.into_inner()) = access;
    true
}

/// The ids (high 32 bits of the method word) of the write methods, from
/// the interface's descriptor.
pub(crate) fn write_method_ids() -> Vec<u32> {
    <dyn Directory as Interface>::descriptor()
        .methods
        .iter()
        .filter(|m| WRITE_METHODS.contains(&m.name))
        .map(|m| m.id)
        .collect()
}

impl Service for Guarded {
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        let id = (method >> 32) as u32;
        if self.writes.contains(&id)
            && let Some(conn) = &cx.connection
            && let Err(why) = self.admits(conn)
        {
            return Box::pin(std::future::ready(Err(Fault::Rejected(format!(
                "{UNAUTHORIZED}{why}"
            )))));
        }
        self.inner.call(cx, method, payload)
    }
}
