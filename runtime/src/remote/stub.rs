//! Stubs: the client side of a remote object.

use crate::sync::lock;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::address::Address;
use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::node::{Node, WeakNode};
use crate::remote::error::RemoteError;
use crate::remote::late::LateLink;
use crate::remote::stream;
use crate::remote::wire::decode_in;
use crate::service::{CallContext, Service, call_guarded};
use crate::wire::Fault;

/// The deadline of calls through a stub that names none, when no node's
/// limits say otherwise.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// The first pause between attempts to reach an owner; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between attempts to reach an owner.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How long a call keeps trying to reach an owner that does not answer
/// (within its deadline): long enough for a restart, short enough that a
/// caller of a dead node learns it promptly.
pub(crate) const RECONNECT_WINDOW: Duration = Duration::from_secs(2);

/// How a stub reaches the node that owns its object: the connection it
/// has (or had), and the owner's addresses to dial again when it breaks.
pub(crate) struct Link {
    node: WeakNode,
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
    /// `until` or for [`RECONNECT_WINDOW`], whichever comes first.
    pub(crate) async fn connection(&self, until: Instant) -> Result<Connection, RemoteError> {
        let until = until.min(Instant::now() + RECONNECT_WINDOW);
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
        let mut pause = FIRST_BACKOFF;
        loop {
            let mut last = String::new();
            for addr in &self.addrs {
                match node.connection(addr).await {
                    Ok(c) => {
                        *lock(&self.conn) = Some(c.clone());
                        return Ok(c);
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            let now = Instant::now();
            if now >= until {
                return Err(RemoteError::Disconnected(format!(
                    "could not reach node {} at {:?}: {last}",
                    self.owner, self.addrs
                )));
            }
            // The last pause ends with the window: one more attempt then.
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}

#[derive(Clone)]
enum Target {
    /// Over a connection to the owner, re-dialed when it breaks.
    Remote(Arc<Link>),
    /// An object of this node reached without a socket.
    Local {
        service: Arc<dyn Service>,
        node: Node,
    },
    /// Whichever object a resolver picks, call by call (late binding).
    Late(Arc<LateLink>),
    /// Something other than a connection carries the calls (a broker queue).
    Carried(Arc<dyn Carrier>),
}

/// The future a [`Carrier`] returns.
pub type CarrierFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, RemoteError>> + Send + 'a>>;

/// Carries a stub's calls by some other way than a connection to the
/// object's owner: a broker queue, say (mediated RPC). The stub encodes
/// the arguments and decodes the result; the carrier moves the bytes.
///
/// Arguments and results that travel through a carrier are plain values:
/// references ([`Remote`](crate::Remote)) and streams inside them are
/// bound to no connection and cannot be used on the other side.
pub trait Carrier: Send + Sync + fmt::Debug + 'static {
    /// Carries one call of `method` with the encoded `payload` and returns
    /// the encoded result, failing with `DeadlineExceeded` once `deadline`
    /// passes. `idempotent` says the method may safely run twice.
    fn call(
        &self,
        method: u64,
        payload: Bytes,
        deadline: Duration,
        idempotent: bool,
    ) -> CarrierFuture<'_, Bytes>;

    /// Carries a one-way message; returns once it is handed over.
    fn send(&self, method: u64, payload: Bytes) -> CarrierFuture<'_, ()>;

    /// The node whose limits (the default deadline) apply, if any.
    fn node(&self) -> Option<Node> {
        None
    }
}

/// Where a stub's calls go and how long they may take. Generated stubs
/// hold one; it does the encoding, the call and the decoding.
#[derive(Clone)]
pub struct StubCore {
    target: Target,
    object: ObjectId,
    deadline: Option<Duration>,
    /// How long a call may spend reaching the owner again (the default
    /// reconnect window if `None`).
    reconnect: Option<Duration>,
}

impl fmt::Debug for StubCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StubCore");
        d.field("object", &self.object);
        match &self.target {
            Target::Remote(l) => d.field("link", l),
            Target::Local { node, .. } => d.field("local_node", &node.id()),
            Target::Late(l) => d.field("late", l),
            Target::Carried(c) => d.field("carrier", c),
        };
        d.field("deadline", &self.deadline).finish()
    }
}

fn named(e: RemoteError, method: &str) -> RemoteError {
    match e {
        RemoteError::NoSuchMethod(_) => RemoteError::NoSuchMethod(method.to_owned()),
        other => other,
    }
}

impl StubCore {
    /// Calls `object` over `conn`. Such a stub does not know the owner's
    /// addresses: when the connection breaks, it fails with `Disconnected`
    /// (stubs from `Node::connect` dial again instead).
    pub fn remote(conn: Connection, object: ObjectId) -> Self {
        let node = conn.node().map(|n| n.downgrade()).unwrap_or_default();
        let owner = conn.peer_id();
        Self::linked(
            Arc::new(Link::new(node, owner, Vec::new(), Some(conn))),
            object,
        )
    }

    /// Calls through `link`: its connection while it is open, then the
    /// owner dialed again at its addresses.
    pub(crate) fn linked(link: Arc<Link>, object: ObjectId) -> Self {
        StubCore {
            target: Target::Remote(link),
            object,
            deadline: None,
            reconnect: None,
        }
    }

    /// Calls an object served by this node, through its dispatcher but
    /// without a socket.
    pub(crate) fn local(service: Arc<dyn Service>, node: Node, object: ObjectId) -> Self {
        StubCore {
            target: Target::Local { service, node },
            object,
            deadline: None,
            reconnect: None,
        }
    }

    /// Calls through `carrier` (mediated RPC: a broker queue, say).
    pub fn carried(carrier: Arc<dyn Carrier>) -> Self {
        StubCore {
            target: Target::Carried(carrier),
            object: ObjectId(0),
            deadline: None,
            reconnect: None,
        }
    }

    /// The same target, trying to reach its owner for at most `window`
    /// (zero: one attempt) before a call fails.
    pub(crate) fn with_reconnect(mut self, window: Duration) -> Self {
        self.reconnect = Some(window);
        self
    }

    /// The same target with another deadline for every call.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        StubCore {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// The deadline given to calls (the node's default if `None`).
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The object called.
    pub fn object(&self) -> ObjectId {
        self.object
    }

    /// The connection in use, for a remote target that has one open.
    pub fn connection(&self) -> Option<Connection> {
        match &self.target {
            Target::Remote(l) => l.open(),
            Target::Local { .. } | Target::Late(_) | Target::Carried(_) => None,
        }
    }

    /// The node this stub calls from, if it still exists.
    pub fn node(&self) -> Option<Node> {
        match &self.target {
            Target::Remote(l) => l.node.upgrade(),
            Target::Local { node, .. } => Some(node.clone()),
            Target::Late(l) => l.node(),
            Target::Carried(c) => c.node(),
        }
    }

    fn effective_deadline(&self, node: Option<&Node>) -> Duration {
        self.deadline
            .unwrap_or_else(|| node.map_or(DEFAULT_DEADLINE, |n| n.limits().get_default_deadline()))
    }

    /// Calls `method` with `args` and decodes the reply as `R`.
    pub async fn call<A, R>(
        &self,
        method: u64,
        name: &'static str,
        args: &A,
    ) -> Result<R, RemoteError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.call_method(method, name, false, args).await
    }

    /// Calls `method`; a late-bound stub that loses its object fails over
    /// to another one, also after the request was sent if `idempotent`.
    pub async fn call_method<A, R>(
        &self,
        method: u64,
        name: &'static str,
        idempotent: bool,
        args: &A,
    ) -> Result<R, RemoteError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        match &self.target {
            Target::Late(late) => {
                late.call(self.deadline, method, name, idempotent, args)
                    .await
            }
            Target::Carried(carrier) => {
                let node = carrier.node();
                let deadline = self.effective_deadline(node.as_ref());
                let payload = stream::encode_for(None, args)?;
                let bytes = carrier
                    .call(method, payload, deadline, idempotent)
                    .await
                    .map_err(|e| named(e, name))?;
                decode_in(node.as_ref(), None, &bytes)
            }
            _ => self
                .call_once(method, name, args)
                .await
                .map_err(|f| f.error),
        }
    }

    /// One attempt on this stub's own target.
    pub(crate) async fn call_once<A, R>(
        &self,
        method: u64,
        name: &'static str,
        args: &A,
    ) -> Result<R, Failed>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        match &self.target {
            Target::Remote(link) => {
                let node = link.node.upgrade();
                let deadline = self.effective_deadline(node.as_ref());
                let started = Instant::now();
                let until = match self.reconnect {
                    Some(w) => (started + deadline).min(started + w),
                    None => started + deadline,
                };
                let conn = link.connection(until).await.map_err(Failed::unsent)?;
                let left = deadline.saturating_sub(started.elapsed());
                let mut why = None;
                let bytes = conn
                    .call_with(self.object, method, Some(left), |b| {
                        stream::encode_args_into(Some(&conn), args, b, &mut why)
                    })
                    .await
                    .map_err(|e| {
                        Failed::after(why.take().unwrap_or_else(|| named(e.into(), name)))
                    })?;
                decode_in(node.as_ref(), Some(&conn), &bytes).map_err(Failed::after)
            }
            Target::Local { service, node } => {
                let payload = stream::encode_for(None, args).map_err(Failed::unsent)?;
                let deadline = self.effective_deadline(Some(node));
                let cx = CallContext {
                    caller: node.id(),
                    deadline: Instant::now().checked_add(deadline),
                    connection: None,
                    node: Some(node.clone()),
                    one_way: false,
                };
                let bytes = match tokio::time::timeout(
                    deadline,
                    call_guarded(&**service, cx, method, payload),
                )
                .await
                {
                    Ok(r) => r.map_err(|f| Failed::after(named(f.into(), name)))?,
                    Err(_) => return Err(Failed::after(RemoteError::DeadlineExceeded)),
                };
                decode_in(Some(node), None, &bytes).map_err(Failed::after)
            }
            Target::Late(_) | Target::Carried(_) => Err(Failed::unsent(RemoteError::Rejected(
                "a late-bound target cannot nest another".into(),
            ))),
        }
    }

    /// Sends `method` one-way: returns once the message is queued.
    pub async fn send<A>(
        &self,
        method: u64,
        name: &'static str,
        args: &A,
    ) -> Result<(), RemoteError>
    where
        A: Serialize + ?Sized,
    {
        match &self.target {
            Target::Late(late) => late.send(self.deadline, method, name, args).await,
            Target::Carried(carrier) => {
                let payload = stream::encode_for(None, args)?;
                carrier
                    .send(method, payload)
                    .await
                    .map_err(|e| named(e, name))
            }
            _ => self.send_once(method, name, args).await,
        }
    }

    /// One one-way send on this stub's own target.
    pub(crate) async fn send_once<A>(
        &self,
        method: u64,
        name: &'static str,
        args: &A,
    ) -> Result<(), RemoteError>
    where
        A: Serialize + ?Sized,
    {
        match &self.target {
            Target::Late(_) | Target::Carried(_) => Err(RemoteError::Rejected(
                "a late-bound target cannot nest another".into(),
            )),
            Target::Remote(link) => {
                let node = link.node.upgrade();
                let deadline = self.effective_deadline(node.as_ref());
                let conn = link.connection(Instant::now() + deadline).await?;
                let mut why = None;
                conn.send_with(self.object, method, |b| {
                    stream::encode_args_into(Some(&conn), args, b, &mut why)
                })
                .await
                .map_err(|e| why.take().unwrap_or_else(|| named(e.into(), name)))
            }
            Target::Local { service, node } => {
                let payload = stream::encode_for(None, args)?;
                let cx = CallContext {
                    caller: node.id(),
                    deadline: None,
                    connection: None,
                    node: Some(node.clone()),
                    one_way: true,
                };
                tokio::spawn(call_guarded(&**service, cx, method, payload));
                Ok(())
            }
        }
    }
}

/// A failed attempt, and whether the request may have reached the object
/// (a request that did not may go to another object, whatever the method).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: RemoteError,
    pub(crate) sent: bool,
}

impl Failed {
    fn unsent(error: RemoteError) -> Self {
        Failed { error, sent: false }
    }
    fn after(error: RemoteError) -> Self {
        // An object that does not exist ran nothing.
        let sent = !matches!(error, RemoteError::NoSuchObject);
        Failed { error, sent }
    }
}

impl StubCore {
    /// A stub whose every call goes to the object `resolver` picks.
    pub(crate) fn late(link: Arc<LateLink>) -> Self {
        StubCore {
            target: Target::Late(link),
            object: ObjectId(0),
            deadline: None,
            reconnect: None,
        }
    }
}

/// Decodes a call's arguments, binding references in them to the caller.
pub fn decode_args<T: DeserializeOwned>(cx: &CallContext, payload: &[u8]) -> Result<T, Fault> {
    let node = cx
        .node
        .clone()
        .or_else(|| cx.connection.as_ref().and_then(Connection::node));
    decode_in(node.as_ref(), cx.connection.as_ref(), payload).map_err(|e| match e {
        RemoteError::InterfaceMismatch(s) => Fault::InterfaceMismatch(s),
        RemoteError::Decode(s) => Fault::Decode(s),
        other => Fault::Decode(other.to_string()),
    })
}

/// The generated stub of every `#[remote]` trait: `ShapeClient` is
/// `Stub<dyn Shape>`. It implements the trait (and its remote supertraits)
/// by sending each call through its [`StubCore`].
pub struct Stub<I: ?Sized> {
    core: StubCore,
    _interface: PhantomData<fn() -> Box<I>>,
}

impl<I: ?Sized> Clone for Stub<I> {
    fn clone(&self) -> Self {
        Stub {
            core: self.core.clone(),
            _interface: PhantomData,
        }
    }
}

impl<I: ?Sized> fmt::Debug for Stub<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stub")
            .field("interface", &std::any::type_name::<I>())
            .field("core", &self.core)
            .finish()
    }
}

impl<I: ?Sized> Stub<I> {
    /// A stub over `core`.
    pub fn new(core: StubCore) -> Self {
        Stub {
            core,
            _interface: PhantomData,
        }
    }

    /// Where the calls go.
    pub fn core(&self) -> &StubCore {
        &self.core
    }

    /// The same stub with another deadline for its calls.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Stub::new(self.core.with_deadline(deadline))
    }

    /// The id of the object called.
    pub fn object_id(&self) -> ObjectId {
        self.core.object
    }
}

/// Maps a failed argument decode to its fault.
pub fn decode_fault(e: impl fmt::Display) -> Fault {
    Fault::Decode(e.to_string())
}
