//! A full-duplex, multiplexed connection between two nodes.
//!
//! Either end may call the other over one socket. The design keeps the
//! common path free of task hops:
//!
//! - **Writing.** A sender encodes its frame straight into the shared
//!   outgoing buffer. If no one is writing, it becomes the writer: it takes
//!   the buffer, writes it with a non-blocking `try_write`, and keeps going
//!   while others append (so everything queued while the socket was busy
//!   goes out in one write). Only when the socket would block is the rest
//!   handed to the connection's housekeeping task, which waits for the
//!   socket. No sender ever awaits inside the write path, so a cancelled
//!   caller cannot leave half a frame behind.
//! - **Reading.** One reader task per connection splits frames. A reply
//!   completes its caller's one-shot (the caller wakes on the same worker).
//!   A call is dispatched and its handler polled once in place; only a
//!   handler that is not ready at once is spawned as a task.
//! - **Back-pressure.** Callers take a slot from a semaphore sized to the
//!   smaller of the two ends' in-flight limits, and wait while the outgoing
//!   buffer is over its limit. Nothing is queued without bound.
//!
//! # Layout
//!
//! - `mod.rs`: the handle ([`Connection`]), its shared state, and the
//!   `Hooks` seam through which the node attaches remote objects.
//! - `outbox.rs`: queueing and coalesced writes, `send_control`.
//! - `call.rs`: calls and one-way messages to the peer, calls in flight.
//! - `serve.rs`: serving the peer's calls, replies, the in-flight guards.
//! - `reader.rs`: the read loop, frame dispatch, flood guards.
//! - `lifecycle.rs`: close, abort, death, keepalive and idle close.
//!
//! Nothing here knows remote objects, leases or streams: their frames go
//! to the hooks, and the object table is reached through them too.

mod call;
mod lifecycle;
mod outbox;
mod reader;
mod serve;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::AbortHandle;

use crate::auth::Principal;
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::id::{NodeId, ObjectId};
use crate::service::Service;
use crate::sync::lock;
use crate::transport::{PeerAddr, Socket, WriteHalf};
use crate::wire::{Fault, Frame};

use call::Pending;
use outbox::Outbox;

const OPEN: u8 = 0;
const PEER_CLOSING: u8 = 1;
const CLOSING: u8 = 2;
const DEAD: u8 = 3;

/// Call ids are sequential; a multiplicative hash spreads them.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// What the layers above attach to each connection: the objects it
/// serves, and the frames that belong to remote objects (stream items and
/// ends, stream credit and cancel, lease renewals and releases). The
/// connection knows frames, calls and replies; everything about remote
/// objects reaches its owner through this seam, which the node installs
/// when it registers the connection.
/// What serves a call, and what the node knows of it.
pub(crate) struct Served {
    pub(crate) service: Arc<dyn Service>,
    /// The interface the object was exported as, if it was.
    pub(crate) interface: Option<&'static crate::rmi::InterfaceDescriptor>,
    /// The node's interceptors of the calls it serves.
    pub(crate) interceptors: crate::observe::Interceptors,
}

/// A call refused before it is served, and the interface of the object it
/// addressed, when there is one (for the span and metrics of the refusal).
pub(crate) type Refused = (Fault, Option<&'static crate::rmi::InterfaceDescriptor>);

pub(crate) trait Hooks: Send + Sync + 'static {
    /// The object `id` for a call of `method` from `principal`:
    /// `NoSuchObject` if this node does not serve it, `Unauthorized` if
    /// the node's authorizer denies the call.
    fn service(
        &self,
        id: ObjectId,
        method: u64,
        principal: Option<&Principal>,
    ) -> Result<Served, Refused>;
    /// A frame the connection does not handle itself; an `Err` is a
    /// protocol error with that reason (the connection is closed).
    fn on_frame(&self, frame: Frame) -> Result<(), String>;
    /// The connection died with `reason` (called once).
    fn on_dead(&self, reason: &str);
    /// The peer renewed (`renew`) or released leases on `objects`.
    fn on_lease(&self, renew: bool, objects: &[ObjectId]);
    /// Whether nothing above holds the connection open (no stream on it),
    /// so that an idle connection may be closed.
    fn is_idle(&self) -> bool;
    /// The hooks as `Any`, for their owner to reach its own state.
    fn as_any(&self) -> &dyn Any;
}

pub(crate) struct Shared {
    io: WriteHalf,
    hooks: Box<dyn Hooks>,
    /// What the peer presented in its hello (only when it dialed us).
    peer_credentials: Option<Bytes>,
    /// Who the node's authenticator says the peer is.
    principal: Option<Principal>,
    serial: u64,
    peer: NodeId,
    peer_addr: PeerAddr,
    peer_desc: String,
    local: NodeId,
    limits: Arc<Limits>,
    /// The largest frame the peer accepts.
    peer_max_frame: u32,
    out: Mutex<Outbox>,
    /// Signalled when the outgoing buffer drains below the limit.
    space: Notify,
    /// Wakes the housekeeper to finish a stalled write.
    stalled: Notify,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    permits: Semaphore,
    serving: Mutex<IdMap<AbortHandle>>,
    serving_count: AtomicUsize,
    /// Calls of the peer being served whose reply is not queued yet: what
    /// the in-flight limit counts. (A reply may reach the peer, which then
    /// sends its next call, before the serving task has ended.)
    active: AtomicUsize,
    /// Slots for one-way messages being handled; the reader waits for one.
    message_slots: Arc<Semaphore>,
    state: AtomicU8,
    /// Signalled when the last call in flight ends while closing.
    drained: Notify,
    /// Signalled once the connection is dead.
    died: Notify,
    death: Mutex<Option<String>>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Pings sent by `Connection::ping`, by nonce, waiting for their pong.
    probes: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next_probe: AtomicU64,
    epoch: Instant,
    /// Lease frames in the current second, and when it began (flood guard).
    lease_window: Mutex<(Instant, u32)>,
    /// Reads so far; the housekeeper notices silence when it stops moving
    /// (no clock is read on the hot path).
    reads: AtomicU64,
    last_app_ms: AtomicU64,
}

/// A connection to another node. Cheap to clone; all clones share it.
///
/// Returned by [`Node::connection`](crate::Node::connection) (shared per
/// address) and [`Node::dial`](crate::Node::dial) (always a new one);
/// [`Node::connection_to`](crate::Node::connection_to) and
/// [`Node::connections`](crate::Node::connections) give the ones a node
/// has, and handlers find the caller's in their
/// [`CallContext`](crate::CallContext).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer)
            .field("remote", &self.shared.peer_desc)
            .field("open", &self.is_open())
            .finish()
    }
}

/// What the handshake established.
pub(crate) struct Established {
    pub(crate) io: Socket,
    pub(crate) serial: u64,
    pub(crate) local: NodeId,
    pub(crate) peer: NodeId,
    pub(crate) peer_addr: PeerAddr,
    pub(crate) peer_desc: String,
    pub(crate) peer_max_frame: u32,
    pub(crate) peer_max_in_flight: u32,
    pub(crate) peer_credentials: Option<Bytes>,
    pub(crate) principal: Option<Principal>,
}

impl Connection {
    /// Starts the reader and housekeeping tasks of an established stream.
    pub(crate) fn start(e: Established, limits: Arc<Limits>, hooks: Box<dyn Hooks>) -> Connection {
        let slots = limits.max_in_flight.min(e.peer_max_in_flight).max(1) as usize;
        let now = Instant::now();
        crate::observe::record::counter(crate::observe::names::CONNECTIONS_OPENED, &[], 1);
        crate::observe::record::gauge_add(crate::observe::names::CONNECTIONS, &[], 1.0);
        let (reader, writer) = e.io.split();
        let shared = Arc::new(Shared {
            io: writer,
            hooks,
            peer_credentials: e.peer_credentials,
            principal: e.principal,
            serial: e.serial,
            peer: e.peer,
            peer_addr: e.peer_addr,
            peer_desc: e.peer_desc,
            local: e.local,
            peer_max_frame: e.peer_max_frame.min(limits.max_frame_len),
            out: Mutex::new(Outbox::default()),
            space: Notify::new(),
            stalled: Notify::new(),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            permits: Semaphore::new(slots),
            serving: Mutex::new(IdMap::default()),
            serving_count: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            message_slots: Arc::new(Semaphore::new(limits.max_in_flight as usize)),
            state: AtomicU8::new(OPEN),
            drained: Notify::new(),
            died: Notify::new(),
            death: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            probes: Mutex::new(HashMap::new()),
            next_probe: AtomicU64::new(0),
            epoch: now,
            reads: AtomicU64::new(0),
            lease_window: Mutex::new((now, 0)),
            last_app_ms: AtomicU64::new(0),
            limits,
        });
        let reader = tokio::spawn(reader::read_loop(shared.clone(), reader));
        let keeper = tokio::spawn(lifecycle::housekeep(shared.clone()));
        lock(&shared.tasks).extend([reader.abort_handle(), keeper.abort_handle()]);
        if shared.state.load(Ordering::Acquire) == DEAD {
            reader.abort();
            keeper.abort();
        }
        Connection { shared }
    }

    /// The id of the node at the other end.
    pub fn peer_id(&self) -> NodeId {
        self.shared.peer
    }

    /// The credentials the peer presented in the handshake, if it dialed
    /// this node and presented any.
    pub fn peer_credentials(&self) -> Option<&Bytes> {
        self.shared.peer_credentials.as_ref()
    }

    /// Who the peer is, from the certificate it presented over TLS (a
    /// server's always; a dialer's when the listener asks for client
    /// certificates). `None` on other transports.
    #[cfg(feature = "tls")]
    pub fn peer_identity(&self) -> Option<crate::tls::PeerIdentity> {
        self.shared.io.peer_identity()
    }

    /// Who the peer is, as this node's authenticator named it when it
    /// accepted the connection (see [`crate::auth`]); `None` without an
    /// authenticator, and on connections this node dialed.
    pub fn principal(&self) -> Option<&Principal> {
        self.shared.principal.as_ref()
    }

    /// The id of the node at this end.
    pub fn local_id(&self) -> NodeId {
        self.shared.local
    }

    /// The remote end, as the socket reported it when the connection was
    /// established. Decisions about who the peer is (is it on this host?)
    /// are made on this, never on [`Connection::remote_description`].
    pub fn peer_addr(&self) -> PeerAddr {
        self.shared.peer_addr
    }

    /// A description of the remote end (its address when known), for logs
    /// and errors.
    pub fn remote_description(&self) -> &str {
        &self.shared.peer_desc
    }

    /// Whether new calls may be made on this connection.
    pub fn is_open(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == OPEN
    }

    /// Whether the connection is dead (broken or closed).
    pub fn is_dead(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == DEAD
    }

    /// A number that tells this node's connections apart: never the
    /// same for two connections of one node.
    pub fn serial(&self) -> u64 {
        self.shared.serial
    }

    /// The hooks the node installed, for the layer that owns them.
    pub(crate) fn hooks(&self) -> &dyn Hooks {
        &*self.shared.hooks
    }

    fn check_open(&self) -> Result<()> {
        match self.shared.state.load(Ordering::Acquire) {
            OPEN => Ok(()),
            DEAD => Err(self.death_error()),
            _ => Err(Error::Closed),
        }
    }

    fn death_error(&self) -> Error {
        let why = lock(&self.shared.death).clone();
        Error::Disconnected(why.unwrap_or_else(|| "connection lost".into()))
    }
}
