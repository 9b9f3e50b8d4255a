use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::address::Address;
use crate::codec;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::node::{IntoAddress, Node};
use crate::sync::lock;

/// The asymmetric side that asks: sends requests and waits for answers.
///
/// Cheap to clone; clones share the connection, and any number of
/// requests may be in flight at once (up to the connection's limit, past
/// which callers wait).
///
/// When the connection breaks (the server restarted, say), the next
/// request dials the server's address again, as remote object stubs do:
/// with exponential backoff (10 ms doubling to 500 ms) for at most 2 s
/// within the request's deadline. A request already sent when the
/// connection broke fails with [`Error::Disconnected`]: it may have been
/// handled, so it is never sent twice.
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
    addr: Address,
    /// The connection in use, shared by clones and replaced on re-dial.
    conn: Arc<Mutex<Connection>>,
    /// Set by [`Client::close`]: no re-dial after it.
    closed: Arc<AtomicBool>,
    deadline: Option<Duration>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for Client<Req, Resp> {
    fn clone(&self) -> Self {
        Client {
            node: self.node.clone(),
            addr: self.addr.clone(),
            conn: self.conn.clone(),
            closed: self.closed.clone(),
            deadline: self.deadline,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("conn", &*lock(&self.conn))
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
        let addr = addr.into_address()?;
        let conn = node.connection(&addr).await?;
        Ok(Client {
            node: node.clone(),
            addr,
            conn: Arc::new(Mutex::new(conn)),
            closed: Arc::new(AtomicBool::new(false)),
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
        let deadline = deadline.unwrap_or(self.node.limits().default_deadline);
        let (conn, deadline) = self.live(deadline).await?;
        let bytes = conn
            .call_with(ObjectId::DME, super::REQUEST, Some(deadline), |b| {
                codec::encode_into(&req, b)
            })
            .await?;
        codec::decode(&bytes).map_err(Error::Decode)
    }

    /// Sends `req` one-way: the server handles it, nobody waits for an
    /// answer. Returns once the message is queued for the socket (after a
    /// re-dial, within the default deadline, if the connection broke).
    pub async fn send(&self, req: Req) -> Result<()> {
        let deadline = self.deadline.unwrap_or(self.node.limits().default_deadline);
        let (conn, _) = self.live(deadline).await?;
        conn.send(ObjectId::DME, super::REQUEST, &req).await
    }

    /// The connection in use now (another one after a re-dial).
    pub fn connection(&self) -> Connection {
        lock(&self.conn).clone()
    }

    /// Closes the connection gracefully, for this client and its clones:
    /// requests in flight finish, later ones are [`Error::Closed`] (no
    /// re-dial).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.connection().close().await
    }

    /// An open connection to the server, and what is left of `deadline`:
    /// the connection in use, or a new one dialed with backoff within the
    /// deadline (and at most the reconnect window).
    async fn live(&self, deadline: Duration) -> Result<(Connection, Duration)> {
        let current = self.connection();
        if current.is_open() {
            return Ok((current, deadline));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let started = Instant::now();
        let fresh = self
            .node
            .redial(std::slice::from_ref(&self.addr), started + deadline)
            .await
            .map_err(|e| match e {
                Error::Shutdown => Error::Shutdown,
                e => Error::Disconnected(format!(
                    "the connection to {} broke and it could not be dialed again: {e}",
                    self.addr
                )),
            })?;
        *lock(&self.conn) = fresh.clone();
        Ok((fresh, deadline.saturating_sub(started.elapsed())))
    }
}
