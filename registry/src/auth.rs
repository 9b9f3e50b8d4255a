//! Who may write: the check made before a write's payload is decoded.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use farcall_runtime::Fault;
use farcall_runtime::remote::{Dispatcher, Interface};
use farcall_runtime::service::{CallContext, OutcomeFuture, Service};

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
}

impl Guarded {
    pub(crate) fn new(inner: Dispatcher<dyn Directory>) -> Guarded {
        Guarded {
            inner,
            writes: write_method_ids(),
        }
    }
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
            && let Err(why) = authorize_write(conn.remote_description())
        {
            return Box::pin(std::future::ready(Err(Fault::Rejected(format!(
                "{UNAUTHORIZED}{why}"
            )))));
        }
        self.inner.call(cx, method, payload)
    }
}
