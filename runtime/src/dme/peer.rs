use crate::sync::lock;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::address::Address;
use crate::codec;
use crate::config::Limits;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::id::{NodeId, ObjectId};
use crate::node::{IntoAddress, Node};
use crate::service::{CallContext, OutcomeFuture, Service};
use crate::wire::Fault;

/// A peer's identity: the id of its node.
pub type PeerId = NodeId;

// Methods of the `ObjectId::PEER` protocol.
const HELLO: u64 = 0;
const DELIVER: u64 = 1;
const REQUEST: u64 = 2;
const LIST: u64 = 3;

#[derive(Serialize, Deserialize)]
struct HelloMsg {
    super_peer: bool,
}

/// A message on its way: who sent it, who it is for, the encoded body.
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: PeerId,
    dest: PeerId,
    body: Bytes,
}

/// A message or request received by a [`Peer`].
pub struct Incoming<M> {
    /// The peer that sent it (its origin, also when a super-peer relayed it).
    pub from: PeerId,
    /// The message.
    pub message: M,
    reply: Option<oneshot::Sender<Bytes>>,
}

impl<M> fmt::Debug for Incoming<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("from", &self.from)
            .field("is_request", &self.reply.is_some())
            .finish()
    }
}

impl<M: Serialize> Incoming<M> {
    /// Whether the sender waits for a reply (it used [`Peer::request`]).
    pub fn is_request(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers a request. For a one-way message this does nothing. A
    /// request dropped without a reply fails on the sender's side with a
    /// "dropped without replying" rejection.
    pub fn reply(mut self, answer: M) -> Result<()> {
        if let Some(tx) = self.reply.take() {
            let bytes = codec::encode(&answer).map_err(Error::Encode)?;
            let _ = tx.send(bytes);
        }
        Ok(())
    }
}

struct PeerState {
    me: PeerId,
    super_peer: bool,
    supers: Mutex<HashSet<PeerId>>,
    node: Node,
}

struct PeerService<M> {
    state: Arc<PeerState>,
    inbox: mpsc::Sender<Incoming<M>>,
}

impl<M> PeerService<M>
where
    M: DeserializeOwned + Send + 'static,
{
    fn deliver(&self, env: Envelope, reply: Option<oneshot::Sender<Bytes>>) -> Result<(), Fault> {
        let message: M = codec::decode(&env.body).map_err(|e| Fault::Decode(e.to_string()))?;
        let inbox = self.inbox.clone();
        let item = Incoming {
            from: env.origin,
            message,
            reply,
        };
        // The handler task waits for room: a full inbox pushes back on
        // the sender through the connection's in-flight limit.
        tokio::spawn(async move {
            let _ = inbox.send(item).await;
        });
        Ok(())
    }
}

impl<M> Service for PeerService<M>
where
    M: DeserializeOwned + Send + 'static,
{
    fn call(&self, cx: CallContext, method: u64, payload: Bytes) -> OutcomeFuture {
        let state = self.state.clone();
        match method {
            HELLO => {
                if codec::decode::<HelloMsg>(&payload).is_ok_and(|h| h.super_peer) {
                    lock(&state.supers).insert(cx.caller);
                }
                let me = HelloMsg {
                    super_peer: state.super_peer,
                };
                Box::pin(std::future::ready(
                    codec::encode(&me).map_err(|e| Fault::Rejected(e.to_string())),
                ))
            }
            LIST => {
                let peers: Vec<PeerId> = state
                    .node
                    .connections()
                    .iter()
                    .map(|c| c.peer_id())
                    .filter(|p| *p != cx.caller)
                    .collect();
                Box::pin(std::future::ready(
                    codec::encode(&peers).map_err(|e| Fault::Rejected(e.to_string())),
                ))
            }
            DELIVER | REQUEST => {
                let env: Envelope = match codec::decode(&payload) {
                    Ok(e) => e,
                    Err(e) => {
                        return Box::pin(std::future::ready(Err(Fault::Decode(e.to_string()))));
                    }
                };
                if env.dest != state.me {
                    return relay(state, method, env, payload);
                }
                if method == DELIVER {
                    let r = self.deliver(env, None).map(|()| Bytes::new());
                    return Box::pin(std::future::ready(r));
                }
                let (tx, rx) = oneshot::channel();
                if let Err(f) = self.deliver(env, Some(tx)) {
                    return Box::pin(std::future::ready(Err(f)));
                }
                Box::pin(async move {
                    rx.await.map_err(|_| {
                        Fault::Rejected("the peer dropped the request without replying".into())
                    })
                })
            }
            _ => Box::pin(std::future::ready(Err(Fault::NoSuchMethod))),
        }
    }
}

/// Forwards an envelope that is not for us, if we are a super-peer with a
/// direct connection to its destination.
fn relay(state: Arc<PeerState>, method: u64, env: Envelope, raw: Bytes) -> OutcomeFuture {
    let conn = state
        .super_peer
        .then(|| state.node.connection_to(env.dest))
        .flatten();
    let Some(conn) = conn else {
        return Box::pin(std::future::ready(Err(Fault::NoRoute)));
    };
    Box::pin(async move {
        let r = if method == DELIVER {
            conn.send_with(ObjectId::PEER, DELIVER, |b| {
                b.extend_from_slice(&raw);
                Ok(())
            })
            .await
            .map(|()| Bytes::new())
        } else {
            conn.call_bytes(ObjectId::PEER, REQUEST, &raw, None).await
        };
        r.map_err(|e| match e {
            Error::Remote(f) => f,
            Error::NoRoute(_) => Fault::NoRoute,
            other => Fault::Rejected(format!("relay failed: {other}")),
        })
    })
}

/// A super-peer's `Fault::NoRoute` as the error this peer gives when it
/// has no route itself: the same, whichever node lacked it.
fn routed(e: Error, to: PeerId) -> Error {
    match e {
        Error::Remote(Fault::NoRoute) => Error::NoRoute(to),
        other => other,
    }
}

/// Builds a [`Peer`]: super-peer role, limits, inbox size.
#[derive(Debug, Clone)]
pub struct PeerBuilder<M> {
    super_peer: bool,
    limits: Limits,
    inbox: usize,
    _m: PhantomData<fn(M)>,
}

impl<M> PeerBuilder<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Makes this peer a super-peer: it relays messages and requests
    /// between peers connected to it that have no direct connection.
    pub fn super_peer(mut self, yes: bool) -> Self {
        self.super_peer = yes;
        self
    }

    /// Sets the node's limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How many received messages wait in the inbox before senders are
    /// held back (default 1024).
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox = n.max(1);
        self
    }

    /// Starts the peer listening on `addr`.
    pub async fn listen(self, addr: impl IntoAddress) -> Result<Peer<M>> {
        let node = Node::builder().limits(self.limits).listen(addr).await?;
        let state = Arc::new(PeerState {
            me: node.id(),
            super_peer: self.super_peer,
            supers: Mutex::new(HashSet::new()),
            node: node.clone(),
        });
        let (tx, rx) = mpsc::channel(self.inbox);
        node.serve_object(
            ObjectId::PEER,
            Arc::new(PeerService {
                state: state.clone(),
                inbox: tx,
            }),
        );
        Ok(Peer {
            inbox: Arc::new(Inbox {
                rx: tokio::sync::Mutex::new(rx),
                node: state.node.clone(),
            }),
            state,
        })
    }
}

/// A peer in symmetric direct message exchange: it listens and connects,
/// sends and receives, and asks and answers, with no special role.
///
/// Cheap to clone, as [`Node`] is: clones are the same peer (one id, one
/// inbox), so one task may receive while others send. The peer stops
/// serving when its last clone is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> farcall_runtime::Result<()> {
/// use farcall_runtime::dme::Peer;
///
/// let a = Peer::<String>::listen("mem://doc-peer-a").await?;
/// let b = Peer::<String>::listen("mem://doc-peer-b").await?;
/// let b_id = a.connect(b.local_addr()).await?;
/// a.send(b_id, "hi".to_string()).await?;
/// let got = b.recv().await.expect("a message");
/// assert_eq!((got.from, got.message.as_str()), (a.id(), "hi"));
/// # Ok(()) }
/// ```
#[must_use = "dropping the last clone of a `Peer` stops it; keep it while it sends and receives"]
pub struct Peer<M> {
    state: Arc<PeerState>,
    inbox: Arc<Inbox<M>>,
}

impl<M> Clone for Peer<M> {
    fn clone(&self) -> Self {
        Peer {
            state: self.state.clone(),
            inbox: self.inbox.clone(),
        }
    }
}

/// The messages received for a peer, shared by its clones.
struct Inbox<M> {
    rx: tokio::sync::Mutex<mpsc::Receiver<Incoming<M>>>,
    node: Node,
}

impl<M> Drop for Inbox<M> {
    fn drop(&mut self) {
        // The node serves the peer's service, which points back at the
        // node: break the cycle so that a dropped peer (its last clone)
        // frees its node.
        self.node.remove_object(ObjectId::PEER);
    }
}

impl<M> fmt::Debug for Peer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.state.me)
            .field("super_peer", &self.state.super_peer)
            .finish()
    }
}

impl<M> Peer<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// A builder (super-peer role, limits, inbox size).
    pub fn builder() -> PeerBuilder<M> {
        PeerBuilder {
            super_peer: false,
            limits: Limits::default(),
            inbox: 1024,
            _m: PhantomData,
        }
    }

    /// A plain peer listening on `addr`.
    pub async fn listen(addr: impl IntoAddress) -> Result<Self> {
        Self::builder().listen(addr).await
    }

    /// This peer's id.
    pub fn id(&self) -> PeerId {
        self.state.me
    }

    /// Whether this peer relays for others.
    pub fn is_super_peer(&self) -> bool {
        self.state.super_peer
    }

    /// The address other peers connect to.
    pub fn local_addr(&self) -> Address {
        self.state.node.local_addr().expect("a peer always listens")
    }

    /// The node underneath.
    pub fn node(&self) -> &Node {
        &self.state.node
    }

    /// Connects to the peer at `addr`, introduces itself, and returns its id.
    pub async fn connect(&self, addr: impl IntoAddress) -> Result<PeerId> {
        let conn = self.state.node.connection(addr).await?;
        let me = HelloMsg {
            super_peer: self.state.super_peer,
        };
        let them: HelloMsg = conn.call(ObjectId::PEER, HELLO, &me, None).await?;
        if them.super_peer {
            lock(&self.state.supers).insert(conn.peer_id());
        }
        Ok(conn.peer_id())
    }

    /// The peers with a direct connection to this one, whichever side dialed.
    pub fn peers(&self) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = self
            .state
            .node
            .connections()
            .iter()
            .map(|c| c.peer_id())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The super-peers this peer knows (connected, in either direction).
    pub fn super_peers(&self) -> Vec<PeerId> {
        let supers = lock(&self.state.supers).clone();
        let mut v: Vec<PeerId> = supers
            .into_iter()
            .filter(|p| self.state.node.connection_to(*p).is_some())
            .collect();
        v.sort();
        v
    }

    /// Asks each super-peer which peers it can relay to.
    pub async fn discover(&self) -> Result<Vec<PeerId>> {
        let mut all = Vec::new();
        for sp in self.super_peers() {
            if let Some(c) = self.state.node.connection_to(sp) {
                let v: Vec<PeerId> = c.call(ObjectId::PEER, LIST, &(), None).await?;
                all.extend(v.into_iter().filter(|p| *p != self.state.me));
            }
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// The connection to use for `to`: direct if there is one, else the
    /// first super-peer's.
    fn route(&self, to: PeerId) -> Result<Connection> {
        if let Some(c) = self.state.node.connection_to(to) {
            return Ok(c);
        }
        self.super_peers()
            .into_iter()
            .find_map(|sp| self.state.node.connection_to(sp))
            .ok_or(Error::NoRoute(to))
    }

    fn envelope(&self, to: PeerId, msg: &M) -> Result<Envelope> {
        Ok(Envelope {
            origin: self.state.me,
            dest: to,
            body: codec::encode(msg).map_err(Error::Encode)?,
        })
    }

    /// Sends `msg` to the peer `to`, directly or through a super-peer.
    /// Returns once it is queued for the socket. `Error::NoRoute(to)` if
    /// no connection leads to `to` (a super-peer that has no route drops
    /// the message: nothing answers a one-way message).
    pub async fn send(&self, to: PeerId, msg: M) -> Result<()> {
        let env = self.envelope(to, &msg)?;
        self.route(to)?.send(ObjectId::PEER, DELIVER, &env).await
    }

    /// Sends `msg` to `to` and waits for its reply (default deadline).
    pub async fn request(&self, to: PeerId, msg: M) -> Result<M> {
        self.request_within(to, msg, None).await
    }

    /// Sends `msg` to `to` and waits at most `deadline` for its reply.
    /// `Error::NoRoute(to)` if no connection leads to `to`, or the
    /// super-peer it went through has none.
    pub async fn request_within(
        &self,
        to: PeerId,
        msg: M,
        deadline: Option<Duration>,
    ) -> Result<M> {
        let env = self.envelope(to, &msg)?;
        let conn = self.route(to)?;
        let bytes = conn
            .call_with(ObjectId::PEER, REQUEST, deadline, |b| {
                codec::encode_into(&env, b)
            })
            .await
            .map_err(|e| routed(e, to))?;
        codec::decode(&bytes).map_err(Error::Decode)
    }

    /// The next message or request for this peer; `None` once shut down.
    ///
    /// Clones of a peer share its inbox: each message goes to one of the
    /// clones waiting in `recv`.
    pub async fn recv(&self) -> Option<Incoming<M>> {
        self.inbox.rx.lock().await.recv().await
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(&self) {
        self.state.node.remove_object(ObjectId::PEER);
        self.state.node.shutdown().await;
        self.inbox.rx.lock().await.close();
    }
}
