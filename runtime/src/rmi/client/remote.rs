//! Calls to an object on another node: the connection to its owner, dialed
//! again with backoff when it breaks.

use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::{Answer, Expect, Failed, StubCore};
use crate::address::Address;
use crate::connection::Connection;
use crate::id::NodeId;
use crate::node::WeakNode;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::encode_args_into;
use crate::sync::lock;

/// One call or message to `core`'s object over `link`.
pub(super) async fn invoke<A>(
    core: &StubCore,
    link: &Link,
    method: u64,
    name: &'static str,
    expect: Expect,
    args: &A,
) -> Result<Answer, Failed>
where
    A: Serialize + ?Sized,
{
    let node = link.node.upgrade();
    let deadline = core.effective_deadline(node.as_ref());
    let started = Instant::now();
    let mut why = None;
    match expect {
        Expect::Reply { .. } => {
            let until = match core.reconnect {
                Some(w) => (started + deadline).min(started + w),
                None => started + deadline,
            };
            let conn = link.connection(until).await.map_err(Failed::unsent)?;
            let left = deadline.saturating_sub(started.elapsed());
            let bytes = conn
                .call_with_metadata(core.object, method, Some(left), core.metadata(), |b| {
                    encode_args_into(Some(&conn), args, b, &mut why)
                })
                .await
                .map_err(|e| {
                    Failed::after(
                        why.take()
                            .unwrap_or_else(|| RemoteError::from_call(e, name)),
                    )
                })?;
            Ok(Answer {
                bytes,
                node,
                conn: Some(conn),
            })
        }
        Expect::Nothing => {
            let conn = link
                .connection(started + deadline)
                .await
                .map_err(Failed::unsent)?;
            conn.send_with_metadata(core.object, method, core.metadata(), |b| {
                encode_args_into(Some(&conn), args, b, &mut why)
            })
            .await
            .map_err(|e| {
                Failed::unsent(
                    why.take()
                        .unwrap_or_else(|| RemoteError::from_call(e, name)),
                )
            })?;
            Ok(Answer::none())
        }
    }
}

/// How a stub reaches the node that owns its object: the connection it
/// has (or had), and the owner's addresses to dial again when it breaks.
pub(crate) struct Link {
    pub(super) node: WeakNode,
    owner: NodeId,
    addrs: Vec<Address>,
    conn: Mutex<Option<Connection>>,
    dialing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("owner", &self.owner)
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Link {
    pub(crate) fn new(
        node: WeakNode,
        owner: NodeId,
        addrs: Vec<Address>,
        conn: Option<Connection>,
    ) -> Self {
        Link {
            node,
            owner,
            addrs,
            conn: Mutex::new(conn),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn open(&self) -> Option<Connection> {
        lock(&self.conn).as_ref().filter(|c| c.is_open()).cloned()
    }

    /// An open connection to the owner: the one in hand, another the node
    /// has to the owner, or a new one dialed with exponential backoff until
    /// `until` or for the reconnect window, whichever comes first.
    pub(crate) async fn connection(&self, until: Instant) -> Result<Connection, RemoteError> {
        if let Some(c) = self.open() {
            return Ok(c);
        }
        let _one_dialer = self.dialing.lock().await;
        if let Some(c) = self.open() {
            return Ok(c);
        }
        let node = self.node.upgrade().ok_or(RemoteError::Closed)?;
        if let Some(c) = node.connection_to(self.owner) {
            *lock(&self.conn) = Some(c.clone());
            return Ok(c);
        }
        if self.addrs.is_empty() {
            return Err(RemoteError::Disconnected(format!(
                "node {} can only be reached by the connection the reference came on, and it is closed",
                self.owner
            )));
        }
        match node.redial(&self.addrs, until).await {
            Ok(c) => {
                *lock(&self.conn) = Some(c.clone());
                Ok(c)
            }
            Err(crate::error::Error::Shutdown) => Err(RemoteError::Closed),
            Err(last) => Err(RemoteError::Disconnected(format!(
                "could not reach node {} at {}: {last}",
                self.owner,
                crate::address::joined(&self.addrs)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Node;

    #[tokio::test]
    async fn an_owner_out_of_reach_is_named_with_its_addresses() {
        let node = Node::new();
        let owner = NodeId::random();
        let addrs: Vec<Address> = ["mem://remote-gone-a", "mem://remote-gone-b"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let link = Link::new(node.downgrade(), owner, addrs, None);
        let e = link.connection(Instant::now()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "disconnected: could not reach node {owner} at mem://remote-gone-a, \
                 mem://remote-gone-b: cannot connect to mem://remote-gone-b: \
                 nothing listens on this name"
            )
        );
        node.shutdown().await;
    }
}
