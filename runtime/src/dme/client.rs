use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::node::{IntoAddress, Node};

/// The asymmetric side that asks: sends requests and waits for answers.
///
/// Cheap to clone; clones share the connection, and any number of
/// requests may be in flight at once (up to the connection's limit, past
/// which callers wait).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> farcall_runtime::Result<()> {
/// use std::time::Duration;
/// use farcall_runtime::dme::{Client, Server};
///
/// let server = Server::listen("mem://doc-client", |v: Vec<u8>| async move { v.len() }).await?;
/// let client = Client::<Vec<u8>, usize>::connect(server.local_addr()).await?
///     .with_deadline(Duration::from_secs(2));
/// assert_eq!(client.request(vec![1, 2, 3]).await?, 3);
/// client.send(vec![9]).await?; // one-way: no answer
/// # Ok(()) }
/// ```
pub struct Client<Req, Resp> {
    node: Node,
    conn: Connection,
    deadline: Option<Duration>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for Client<Req, Resp> {
    fn clone(&self) -> Self {
        Client {
            node: self.node.clone(),
            conn: self.conn.clone(),
            deadline: self.deadline,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl<Req, Resp> Client<Req, Resp>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    /// Connects to the server at `addr` from a new node with default limits.
    pub async fn connect(addr: impl IntoAddress) -> Result<Self> {
        Self::connect_on(&Node::new(), addr).await
    }

    /// Connects from an existing node (sharing its connection to `addr`).
    pub async fn connect_on(node: &Node, addr: impl IntoAddress) -> Result<Self> {
        let conn = node.connection(addr).await?;
        Ok(Client {
            node: node.clone(),
            conn,
            deadline: None,
            _types: PhantomData,
        })
    }

    /// The same client with another default deadline for its requests.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sends `req` and waits for the answer (at most the deadline).
    pub async fn request(&self, req: Req) -> Result<Resp> {
        self.request_within(req, self.deadline).await
    }

    /// Sends `req` and waits at most `deadline` for the answer.
    pub async fn request_within(&self, req: Req, deadline: Option<Duration>) -> Result<Resp> {
        let bytes = self
            .conn
            .call_with(ObjectId::DME, super::REQUEST, deadline, |b| {
                codec::encode_into(&req, b)
            })
            .await?;
        codec::decode(&bytes).map_err(Error::Decode)
    }

    /// Sends `req` one-way: the server handles it, nobody waits for an
    /// answer. Returns once the message is queued for the socket.
    pub async fn send(&self, req: Req) -> Result<()> {
        self.conn.send(ObjectId::DME, super::REQUEST, &req).await
    }

    /// The connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Closes the connection gracefully.
    pub async fn close(&self) {
        self.conn.close().await
    }
}
