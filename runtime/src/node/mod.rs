//! A node: one participant that listens, connects, or both.

mod accept;
mod extensions;
mod hooks;
mod intercept;
mod redial;

pub use extensions::Extensions;

use crate::observe::Interceptors;
use crate::sync::lock;
use hooks::NodeHooks;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::address::Address;
use crate::auth::{Authenticator, Authorizer, Installed, Principal};
use crate::config::Limits;
use crate::connection::{Connection, Established};
use crate::error::{Error, Result};
use crate::id::{NodeId, ObjectId};
use crate::service::{Entry, Objects, Service};
use crate::transport::{Listener, PeerAddr, Socket, Tls};
use crate::wire::handshake::{self, Hello};

/// Accepts anything that names an address: `&str`, `String`, `Address`.
pub trait IntoAddress {
    /// Parses or clones into an [`Address`].
    fn into_address(self) -> Result<Address>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address> {
        Ok(self)
    }
}
impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address> {
        Ok(self.clone())
    }
}
impl IntoAddress for &str {
    fn into_address(self) -> Result<Address> {
        Ok(self.parse()?)
    }
}
impl IntoAddress for String {
    fn into_address(self) -> Result<Address> {
        Ok(self.parse()?)
    }
}
impl IntoAddress for &String {
    fn into_address(self) -> Result<Address> {
        Ok(self.parse()?)
    }
}

/// Builds a [`Node`] with non-default limits or id.
///
/// ```no_run
/// # async fn f() -> farcall_runtime::Result<()> {
/// use std::time::Duration;
/// use farcall_runtime::{Limits, Node};
///
/// let mut limits = Limits::default();
/// limits.max_in_flight = 64;
/// limits.idle_timeout = Some(Duration::from_secs(60));
/// let node = Node::builder()
///     .limits(limits)
///     .listen("tcp://127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Default, Clone)]
pub struct NodeBuilder {
    limits: Limits,
    id: Option<NodeId>,
    credentials: Option<Bytes>,
    tls: Tls,
    authenticator: Option<Installed<dyn Authenticator>>,
    authorizer: Option<Installed<dyn Authorizer>>,
    interceptors: Interceptors,
    outgoing: Interceptors,
}

/// Credentials are secrets: the builder shows whether it has them, never
/// what they are.
impl fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("limits", &self.limits)
            .field("id", &self.id)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<hidden>"),
            )
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl NodeBuilder {
    /// Sets the limits (see [`Limits`] for the defaults); a field below
    /// its minimum is raised to it.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits.clamped();
        self
    }

    /// Credentials this node presents in the handshake of every connection
    /// it dials (a token, say). The other side reads them with
    /// [`Connection::peer_credentials`] and decides what they allow (the
    /// directory admits remote writers that present its token).
    pub fn credentials(mut self, credentials: impl Into<Bytes>) -> Self {
        self.credentials = Some(credentials.into());
        self
    }

    /// TLS settings: the node listens on `tls://` addresses with the
    /// identity they hold, and dials `tls://` addresses verifying servers
    /// against the roots they trust (see [`crate::tls`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Decides who each dialer is, in the handshake of every connection
    /// this node accepts; a refused dialer's connection ends there (see
    /// [`crate::auth`]).
    pub fn authenticator(mut self, a: impl Authenticator) -> Self {
        self.authenticator = Some(Installed(Arc::new(a)));
        self
    }

    /// Decides every call this node serves over a connection, before its
    /// arguments are decoded; a denied call is `Fault::Unauthorized` (see
    /// [`crate::auth`]).
    pub fn authorizer(mut self, a: impl Authorizer) -> Self {
        self.authorizer = Some(Installed(Arc::new(a)));
        self
    }

    /// Fixes the node id instead of drawing a random one.
    pub fn id(mut self, id: NodeId) -> Self {
        self.id = Some(id);
        self
    }

    /// Builds a node that does not listen (it may still connect, and serve
    /// calls that come back on its own connections). Every
    /// [`NodeExtension`] linked into the binary is installed on it.
    pub fn build(self) -> Node {
        let node = self.build_bare();
        for ext in inventory::iter::<NodeExtension> {
            (ext.install)(&node);
        }
        node
    }

    fn build_bare(self) -> Node {
        Node {
            inner: Arc::new(NodeInner {
                id: self.id.unwrap_or_else(NodeId::random),
                limits: Arc::new(self.limits),
                objects: Arc::new(Objects::default()),
                conns: Mutex::new(HashMap::new()),
                dialed: Mutex::new(HashMap::new()),
                listeners: Mutex::new(Vec::new()),
                next_serial: AtomicU64::new(1),
                shut: AtomicBool::new(false),
                leases: Default::default(),
                conns_closed: AtomicBool::new(false),
                extensions: Extensions::default(),
                credentials: self.credentials,
                tls: self.tls,
                authenticator: self.authenticator,
                authorizer: self.authorizer,
                interceptors: self.interceptors,
                outgoing: self.outgoing,
            }),
        }
    }

    /// Builds a node listening on `addr`.
    pub async fn listen(self, addr: impl IntoAddress) -> Result<Node> {
        let node = self.build();
        node.add_listener(addr).await?;
        Ok(node)
    }
}

type DialSlot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// Something every node gets when it is built, registered at link time
/// with `inventory::submit!`: farcall-registry registers the embedded
/// directory this way, so that every node serves one.
#[derive(Debug)]
pub struct NodeExtension {
    /// What it is, for logs.
    pub name: &'static str,
    /// Installs it on a new node (e.g. serves an object there).
    pub install: fn(&Node),
}

inventory::collect!(NodeExtension);

/// A handle on a node that does not keep it alive (held by its
/// connections and by stubs, so that they can reach their node without a
/// reference cycle).
#[derive(Clone, Debug, Default)]
pub struct WeakNode(Weak<NodeInner>);

impl WeakNode {
    /// The node, if it still exists.
    pub fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

#[derive(Debug)]
struct NodeInner {
    id: NodeId,
    limits: Arc<Limits>,
    objects: Arc<Objects>,
    conns: Mutex<HashMap<u64, Connection>>,
    dialed: Mutex<HashMap<Address, DialSlot>>,
    listeners: Mutex<Vec<(Address, JoinHandle<()>)>>,
    next_serial: AtomicU64,
    shut: AtomicBool,
    leases: crate::rmi::lease::Leases,
    /// Presented in the hello of every connection this node dials.
    credentials: Option<Bytes>,
    /// How `tls://` addresses are listened on and dialed.
    tls: Tls,
    /// Who may connect, and who may call what.
    authenticator: Option<Installed<dyn Authenticator>>,
    pub(crate) authorizer: Option<Installed<dyn Authorizer>>,
    /// Around the calls this node serves, and those it makes.
    pub(crate) interceptors: Interceptors,
    pub(crate) outgoing: Interceptors,
    /// Connections registered from now on are aborted (see `register`).
    conns_closed: AtomicBool,
    extensions: Extensions,
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        for (_, h) in lock(&self.listeners).drain(..) {
            h.abort();
        }
        let conns: Vec<Connection> = lock(&self.conns).drain().map(|(_, c)| c).collect();
        for c in conns {
            c.abort("the node was dropped");
        }
    }
}

/// One participant in a farcall system.
///
/// A node listens on any number of addresses, connects to other nodes
/// (one shared connection per address), and serves objects on every
/// connection it has, whichever side dialed. Clones share the node.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> farcall_runtime::Result<()> {
/// use farcall_runtime::Node;
///
/// let server = Node::listen("tcp://127.0.0.1:0").await?;
/// let addr = server.local_addr().expect("listening");
/// let client = Node::new();
/// let conn = client.connection(&addr).await?;
/// assert_eq!(conn.peer_id(), server.id());
/// client.shutdown().await;
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "dropping the last clone of a `Node` stops its listeners and closes its connections"]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("listening", &self.local_addrs())
            .field("connections", &lock(&self.inner.conns).len())
            .finish()
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    pub(crate) fn leases(&self) -> &crate::rmi::lease::Leases {
        &self.inner.leases
    }

    /// State that the layers above the runtime keep per node (the
    /// directory's write policy, the broker's engine), by type.
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// A handle on this node that does not keep it alive.
    pub fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// A node with default limits that does not listen.
    pub fn new() -> Node {
        NodeBuilder::default().build()
    }

    /// A builder for limits and id.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// A node with default limits listening on `addr`.
    pub async fn listen(addr: impl IntoAddress) -> Result<Node> {
        NodeBuilder::default().listen(addr).await
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The first address this node listens on, with the real port.
    pub fn local_addr(&self) -> Option<Address> {
        lock(&self.inner.listeners).first().map(|(a, _)| a.clone())
    }

    /// Every address this node listens on.
    pub fn local_addrs(&self) -> Vec<Address> {
        lock(&self.inner.listeners)
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Starts listening on one more address; returns the bound address
    /// (port 0 is replaced by the port the system chose).
    pub async fn add_listener(&self, addr: impl IntoAddress) -> Result<Address> {
        let addr = addr.into_address()?;
        addr.check_supported()?;
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let (listener, bound) = Listener::bind(&addr, &self.inner.tls)
            .await
            .map_err(|source| Error::Listen {
                addr: addr.clone(),
                source,
            })?;
        let task = tokio::spawn(accept::accept_loop(Arc::downgrade(&self.inner), listener));
        lock(&self.inner.listeners).push((bound.clone(), task));
        Ok(bound)
    }

    /// The connection to the node at `addr`: the open one this node
    /// already has, or a new one. (For a typed stub to an object there, see
    /// `Node::connect`.)
    pub async fn connection(&self, addr: impl IntoAddress) -> Result<Connection> {
        let addr = addr.into_address()?;
        addr.check_supported()?;
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let slot = lock(&self.inner.dialed)
            .entry(addr.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.is_open()) {
            return Ok(c.clone());
        }
        let c = self.dial(&addr).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Opens a new connection to `addr`, never reusing one.
    pub async fn dial(&self, addr: &Address) -> Result<Connection> {
        addr.check_supported()?;
        let limits = &self.inner.limits;
        let peer = addr.to_string();
        let work = async {
            let connect = |source| Error::Connect {
                addr: addr.clone(),
                source,
            };
            let io = Socket::connect(addr, &self.inner.tls)
                .await
                .map_err(connect)?;
            let peer_addr = io.peer_addr().map_err(connect)?;
            let hello = handshake::encode_hello(&Hello {
                node: self.inner.id,
                max_frame_len: limits.max_frame_len,
                max_in_flight: limits.max_in_flight,
                credentials: self.inner.credentials.clone(),
            });
            let io_err = |source: std::io::Error| Error::HandshakeIo {
                peer: peer.clone(),
                source: if source.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        source.kind(),
                        "the peer closed the connection before answering \
                         (a tls:// port dialed as tcp://, or not a farcall node?)",
                    )
                } else {
                    source
                },
            };
            io.write_all(&hello).await.map_err(io_err)?;
            let mut prefix = [0u8; handshake::ANSWER_PREFIX];
            io.read_exact(&mut prefix).await.map_err(io_err)?;
            let hs = |source| Error::Handshake {
                peer: peer.clone(),
                source,
            };
            let (status, len) = handshake::decode_answer_prefix(&prefix).map_err(hs)?;
            let mut body = vec![0u8; len];
            io.read_exact(&mut body).await.map_err(io_err)?;
            let welcome = handshake::decode_answer_body(status, &body).map_err(hs)?;
            Ok::<_, Error>((io, peer_addr, welcome))
        };
        let (io, peer_addr, welcome) = tokio::time::timeout(limits.handshake_timeout, work)
            .await
            .map_err(|_| Error::HandshakeTimeout {
                peer: peer.clone(),
                after: limits.handshake_timeout,
            })??;
        Ok(register(
            &self.inner,
            Peer {
                io,
                addr: peer_addr,
                desc: peer,
                hello: Hello {
                    node: welcome.node,
                    max_frame_len: welcome.max_frame_len,
                    max_in_flight: welcome.max_in_flight,
                    credentials: None,
                },
                principal: None,
            },
        ))
    }

    /// Every open connection, whichever side dialed.
    pub fn connections(&self) -> Vec<Connection> {
        lock(&self.inner.conns)
            .values()
            .filter(|c| !c.is_dead())
            .cloned()
            .collect()
    }

    /// An open connection to the node with id `peer`, if there is one.
    pub fn connection_to(&self, peer: NodeId) -> Option<Connection> {
        lock(&self.inner.conns)
            .values()
            .find(|c| c.peer_id() == peer && c.is_open())
            .cloned()
    }

    /// Serves `service` under `id` on every connection of this node.
    /// Returns the service it replaced, if any.
    pub fn serve_object(
        &self,
        id: ObjectId,
        service: Arc<dyn Service>,
    ) -> Option<Arc<dyn Service>> {
        self.inner
            .objects
            .insert(
                id,
                Entry {
                    interface: service.interface(),
                    service,
                    local: None,
                },
            )
            .map(|e| e.service)
    }

    /// Serves `service` under `id`, keeping the object itself for callers
    /// on this node.
    pub(crate) fn serve_entry(&self, id: ObjectId, entry: Entry) {
        self.inner.objects.insert(id, entry);
    }

    pub(crate) fn object_entry(&self, id: ObjectId) -> Option<Entry> {
        self.inner.objects.entry(id)
    }

    /// Stops serving the object `id`.
    pub fn remove_object(&self, id: ObjectId) -> Option<Arc<dyn Service>> {
        self.inner.objects.remove(id).map(|e| e.service)
    }

    /// Whether this node has been shut down.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut.load(Ordering::Acquire)
    }

    /// Stops listening, then closes every connection gracefully (calls in
    /// flight may finish within the close grace period). Idempotent.
    pub async fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::Release);
        let listeners: Vec<_> = lock(&self.inner.listeners).drain(..).collect();
        for (_, h) in listeners {
            h.abort();
            let _ = h.await;
        }
        let conns: Vec<Connection> = {
            let table = lock(&self.inner.conns);
            self.inner.conns_closed.store(true, Ordering::Relaxed);
            table.values().cloned().collect()
        };
        let mut closing = tokio::task::JoinSet::new();
        for c in conns {
            closing.spawn(async move { c.close().await });
        }
        while closing.join_next().await.is_some() {}
    }
}

/// A peer that has completed the handshake: its stream, where it is, and
/// what it said of itself (the credentials only when it dialed us).
struct Peer {
    io: Socket,
    addr: PeerAddr,
    desc: String,
    hello: Hello,
    /// Who the authenticator says it is (accepted connections only).
    principal: Option<Principal>,
}

fn register(inner: &Arc<NodeInner>, p: Peer) -> Connection {
    let peer = p.hello.node;
    let serial = inner.next_serial.fetch_add(1, Ordering::Relaxed);
    let hooks = Box::new(NodeHooks {
        node: Arc::downgrade(inner),
        objects: inner.objects.clone(),
        serial,
        peer,
        authorizer: inner.authorizer.as_ref().map(|a| a.0.clone()),
        interceptors: inner.interceptors.clone(),
        streams: Default::default(),
    });
    // Hold the table while the connection starts: a concurrent shutdown
    // either finds it there or is seen here.
    let mut conns = lock(&inner.conns);
    let conn = Connection::start(
        Established {
            io: p.io,
            serial,
            local: inner.id,
            peer,
            peer_addr: p.addr,
            peer_desc: p.desc,
            peer_max_frame: p.hello.max_frame_len,
            peer_max_in_flight: p.hello.max_in_flight,
            peer_credentials: p.hello.credentials,
            principal: p.principal,
        },
        inner.limits.clone(),
        hooks,
    );
    // Set under this lock by `shutdown` once it has taken its list.
    let late = inner.conns_closed.load(Ordering::Relaxed);
    if !conn.is_dead() && !late {
        conns.insert(conn.serial(), conn.clone());
    }
    drop(conns);
    if late {
        conn.abort("the node has shut down");
    }
    conn
}
