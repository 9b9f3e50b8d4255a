//! The client side of remote objects: stubs, and where their calls go.
//!
//! A [`StubCore`] sends each call to one of four targets, one file each:
//!
//! - `remote.rs`: an object on another node, over a connection to its
//!   owner that is dialed again, with backoff, when it breaks (`Link`);
//! - `local.rs`: an object of this very node, through its dispatcher but
//!   without a socket;
//! - `late.rs`: whichever object a resolver (the directory) picks, call
//!   by call ([`LateBound`]);
//! - `carried.rs`: something other than a connection carries the bytes (a
//!   broker queue: mediated RPC), behind the [`Carrier`] trait.

mod carried;
mod late;
mod local;
mod observed;
mod remote;

pub use carried::{Carrier, CarrierFuture};
pub(crate) use late::LateLink;
pub use late::{Candidates, LateBound, Policy, Resolve};
pub(crate) use remote::Link;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connection::Connection;
use crate::id::ObjectId;
use crate::metadata::Metadata;
use crate::node::Node;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::decode_in;
use crate::service::{Inherited, Service};

/// The deadline of calls through a stub that names none, when no node's
/// limits say otherwise.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

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
    /// Metadata and an inherited deadline, when there are any (most
    /// stubs have neither: one word, cheap to clone and to move).
    extras: Option<Arc<Extras>>,
}

/// What some stubs add to their calls.
#[derive(Clone, Debug, Default)]
struct Extras {
    /// Sent with every call.
    metadata: Metadata,
    /// A deadline inherited from the call being served
    /// ([`CallContext::propagate`](crate::CallContext::propagate)).
    until: Option<Instant>,
}

/// The metadata of a stub that sends none.
static NO_METADATA: Metadata = Metadata::new();

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
            extras: None,
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
            extras: None,
        }
    }

    /// Calls through `carrier` (mediated RPC: a broker queue, say).
    pub fn carried(carrier: Arc<dyn Carrier>) -> Self {
        StubCore {
            target: Target::Carried(carrier),
            object: ObjectId(0),
            deadline: None,
            reconnect: None,
            extras: None,
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

    /// The same target, sending `metadata` with every call (replacing
    /// what it sent before).
    pub fn with_metadata(&self, metadata: Metadata) -> Self {
        let until = self.until();
        StubCore {
            extras: Some(Arc::new(Extras { metadata, until })),
            ..self.clone()
        }
    }

    /// The metadata sent with every call.
    pub fn metadata(&self) -> &Metadata {
        self.extras.as_ref().map_or(&NO_METADATA, |e| &e.metadata)
    }

    /// The deadline inherited from the call being served, if any.
    fn until(&self) -> Option<Instant> {
        self.extras.as_ref().and_then(|e| e.until)
    }

    /// This core with what the current task inherits from the call it
    /// serves, if it runs under `CallContext::propagate`: its metadata
    /// (this core's wins for a key both have) and its deadline.
    fn inheriting(&self) -> Option<StubCore> {
        let inherited = Inherited::current()?;
        let mut metadata = self.metadata().clone();
        metadata.inherit(&inherited.metadata);
        let until = match (self.until(), inherited.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some(StubCore {
            extras: Some(Arc::new(Extras { metadata, until })),
            ..self.clone()
        })
    }

    /// The options of `outer` (a late-bound stub's core) on this core, a
    /// candidate's.
    pub(crate) fn options_of(mut self, outer: &StubCore) -> StubCore {
        if let Some(d) = outer.deadline {
            self.deadline = Some(d);
        }
        self.extras = outer.extras.clone();
        self
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
        let own = self
            .deadline
            .unwrap_or_else(|| node.map_or(DEFAULT_DEADLINE, |n| n.limits().default_deadline));
        Inherited::bound(self.until(), own)
    }

    /// Calls `method` (named `name`, of the interface named `interface`)
    /// with `args` and decodes the reply as `R`; a late-bound stub that
    /// loses its object fails over to another one, also after the request
    /// was sent if `idempotent`.
    pub async fn call_method<A, R>(
        &self,
        method: u64,
        (interface, name): (&'static str, &'static str),
        idempotent: bool,
        args: &A,
    ) -> Result<R, RemoteError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let site = Site {
            method,
            interface,
            name,
        };
        self.invoke(site, Expect::Reply { idempotent }, args)
            .await?
            .decode()
    }

    /// Sends `method` one-way: returns once the message is queued.
    pub async fn send<A>(
        &self,
        method: u64,
        (interface, name): (&'static str, &'static str),
        args: &A,
    ) -> Result<(), RemoteError>
    where
        A: Serialize + ?Sized,
    {
        let site = Site {
            method,
            interface,
            name,
        };
        self.invoke(site, Expect::Nothing, args).await.map(drop)
    }

    /// The one path of every call and one-way message, whatever the
    /// target: what the call inherits, its span and metrics, the node's
    /// outgoing interceptors (`observed.rs`), then the target.
    async fn invoke<A>(&self, site: Site, expect: Expect, args: &A) -> Result<Answer, RemoteError>
    where
        A: Serialize + ?Sized,
    {
        match self.inheriting() {
            Some(core) => core.invoke_observed(site, expect, args).await,
            None => self.invoke_observed(site, expect, args).await,
        }
    }

    pub(super) async fn invoke_here<A>(
        &self,
        method: u64,
        name: &'static str,
        expect: Expect,
        args: &A,
    ) -> Result<Answer, RemoteError>
    where
        A: Serialize + ?Sized,
    {
        match &self.target {
            Target::Late(late) => late.invoke(self, method, name, expect, args).await,
            Target::Carried(carrier) => {
                let deadline = self.effective_deadline(carrier.node().as_ref());
                let metadata = self.metadata();
                carried::invoke(&**carrier, deadline, metadata, method, name, expect, args).await
            }
            _ => self
                .invoke_once(method, name, expect, args)
                .await
                .map_err(|f| f.error),
        }
    }

    /// One attempt on this stub's own target (a late-bound stub makes one
    /// per candidate).
    pub(crate) async fn invoke_once<A>(
        &self,
        method: u64,
        name: &'static str,
        expect: Expect,
        args: &A,
    ) -> Result<Answer, Failed>
    where
        A: Serialize + ?Sized,
    {
        match &self.target {
            Target::Remote(link) => remote::invoke(self, link, method, name, expect, args).await,
            Target::Local { service, node } => {
                local::invoke(self, service, node, method, name, expect, args).await
            }
            Target::Late(_) | Target::Carried(_) => Err(Failed::unsent(RemoteError::Rejected(
                "a late-bound target cannot nest another".into(),
            ))),
        }
    }
}

/// What a call calls: the method word, and the names spans, metrics and
/// errors give it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site {
    pub(crate) method: u64,
    pub(crate) interface: &'static str,
    pub(crate) name: &'static str,
}

/// What an invocation asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    /// A reply. `idempotent`: a late-bound stub may retry the call on
    /// another object even after it was sent.
    Reply {
        /// The method may safely run twice.
        idempotent: bool,
    },
    /// Nothing: a one-way message, done once it is queued.
    Nothing,
}

/// A reply's bytes, and where they came from: references in them bind to
/// that node and connection when they are decoded.
pub(crate) struct Answer {
    bytes: Bytes,
    node: Option<Node>,
    conn: Option<Connection>,
}

impl Answer {
    /// What a one-way message gets back.
    fn none() -> Answer {
        Answer {
            bytes: Bytes::new(),
            node: None,
            conn: None,
        }
    }

    fn decode<R: DeserializeOwned>(self) -> Result<R, RemoteError> {
        decode_in(self.node.as_ref(), self.conn.as_ref(), &self.bytes)
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
    pub(super) fn unsent(error: RemoteError) -> Self {
        Failed { error, sent: false }
    }
    pub(super) fn after(error: RemoteError) -> Self {
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
            extras: None,
        }
    }
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

    /// The same stub, sending `metadata` with each of its calls; the
    /// server reads it from [`CallContext::metadata`](crate::CallContext::metadata).
    ///
    /// ```no_run
    /// # use farcall_runtime::{Metadata, rmi::Stub};
    /// # fn f<I: ?Sized>(stub: Stub<I>) {
    /// let tagged = stub.with_metadata(Metadata::new().with("tenant", "acme"));
    /// # }
    /// ```
    pub fn with_metadata(&self, metadata: Metadata) -> Self {
        Stub::new(self.core.with_metadata(metadata))
    }

    /// The id of the object called.
    pub fn object_id(&self) -> ObjectId {
        self.core.object
    }
}
