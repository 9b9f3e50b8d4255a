use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::address::Address;
use crate::codec;
use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::node::{IntoAddress, Node};
use crate::service::{CallContext, OutcomeFuture, Service};
use crate::wire::Fault;

/// The asymmetric side that waits: answers each request with a handler.
///
/// The handler runs once per request, concurrently for requests in flight
/// (from one client or many). A request sent one-way with
/// [`Client::send`](super::Client::send) runs the handler too; its answer
/// is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> farcall_runtime::Result<()> {
/// use farcall_runtime::dme::Server;
///
/// let server = Server::listen("tcp://127.0.0.1:0", |name: String| async move {
///     format!("hello, {name}")
/// })
/// .await?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use = "dropping a `Server` stops it at once; keep it while it serves, or call `shutdown`"]
pub struct Server<Req, Resp> {
    node: Node,
    addr: Address,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> fmt::Debug for Server<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("node", &self.node.id())
            .finish()
    }
}

struct Handler<F, Req> {
    f: F,
    _req: PhantomData<fn(Req)>,
}

impl<F, Fut, Req, Resp> Service for Handler<F, Req>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    fn call(&self, _cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        if method != super::REQUEST {
            return Box::pin(std::future::ready(Err(Fault::NoSuchMethod)));
        }
        let req: Req = match codec::decode(&payload) {
            Ok(r) => r,
            Err(e) => return Box::pin(std::future::ready(Err(Fault::Decode(e.to_string())))),
        };
        let fut = (self.f)(req);
        Box::pin(async move {
            let resp = fut.await;
            codec::encode(&resp)
                .map_err(|e| Fault::Rejected(format!("the response does not encode: {e}")))
        })
    }
}

impl<Req, Resp> Server<Req, Resp>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    /// Listens on `addr` from a node of its own (default limits) and
    /// answers with `handler`.
    pub async fn listen<F, Fut>(addr: impl IntoAddress, handler: F) -> Result<Self>
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        let node = Node::listen(addr).await?;
        Self::listen_on(&node, handler)
    }

    /// Answers requests on an existing node (built with custom limits, or
    /// listening on several addresses): at every address it listens on.
    /// [`Error::NotListening`](crate::Error::NotListening) if it listens
    /// nowhere.
    pub fn listen_on<F, Fut>(node: &Node, handler: F) -> Result<Self>
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        let addr = node.local_addr().ok_or(Error::NotListening)?;
        node.serve_object(
            ObjectId::DME,
            Arc::new(Handler {
                f: handler,
                _req: PhantomData,
            }),
        );
        Ok(Server {
            node: node.clone(),
            addr,
            _types: PhantomData,
        })
    }

    /// The address clients connect to (with the real port).
    pub fn local_addr(&self) -> &Address {
        &self.addr
    }

    /// The node underneath.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops listening and closes every connection gracefully.
    pub async fn shutdown(&self) {
        self.node.shutdown().await
    }
}
