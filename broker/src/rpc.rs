//! Mediated RPC: `#[remote]` calls carried by a broker queue.
//!
//! A stub made by [`Broker::stub`] sends each call as a message to a queue;
//! whoever [serves](Broker::serve) that queue takes it, runs it, and
//! publishes the result on the caller's reply subject (`_INBOX.<id>`),
//! which the caller subscribed to. Servers compete for the queue, so they
//! share the load; a call made while no server is up waits in the queue
//! and is served when one starts, if its deadline has not passed.
//!
//! A request is acknowledged before it runs, so a server that dies
//! mid-call does not make it run twice, unless the method is
//! `#[remote(idempotent)]`: then it is acknowledged after the reply, and
//! a server that dies mid-call leaves it to another.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use farcall_runtime::observe::{Observed, Side, method_names};
use farcall_runtime::rmi::{
    Carrier, CarrierFuture, Coerce, Dispatcher, Interface, InterfaceDescriptor, StubCore,
};
use farcall_runtime::service::call_guarded;
use farcall_runtime::{
    CallContext, Fault, Metadata, MetadataLimits, Node, NodeId, ObjectId, RemoteError, Service,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::api::Broker;
use crate::config::{DEFAULT_PREFETCH, SubscribeOptions};
use crate::engine::lock;
use crate::error::BrokerError;
use crate::mediated::Mediated;

/// A call as it travels in the queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    /// Matches the reply to the call.
    pub(crate) id: u64,
    /// The calling node.
    pub(crate) caller: u128,
    /// The method word.
    pub(crate) method: u64,
    /// The encoded arguments.
    pub(crate) args: Bytes,
    /// Where the result goes; `None` for a one-way message.
    pub(crate) reply_to: Option<String>,
    /// When the caller stops waiting: milliseconds since the Unix epoch.
    pub(crate) deadline_ms: u64,
    /// Whether the method may run twice.
    pub(crate) idempotent: bool,
    /// The call's metadata, encoded (empty: none; on NATS it travels as
    /// headers instead).
    pub(crate) metadata: Bytes,
}

/// A result as it travels back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Reply {
    pub(crate) id: u64,
    pub(crate) outcome: Result<Bytes, Fault>,
}

impl Request {
    /// A call of `method` made now, waited for `deadline` from now.
    pub(crate) fn new(
        id: u64,
        caller: NodeId,
        method: u64,
        args: Bytes,
        reply_to: Option<String>,
        deadline: Duration,
        idempotent: bool,
    ) -> Request {
        Request {
            id,
            caller: caller.0,
            method,
            args,
            reply_to,
            deadline_ms: now_ms().saturating_add(deadline.as_millis() as u64),
            idempotent,
            metadata: Bytes::new(),
        }
    }

    /// The request as it travels.
    pub(crate) fn encode(&self) -> Result<Bytes, RemoteError> {
        postcard::to_stdvec(self)
            .map(Bytes::from)
            .map_err(|e| RemoteError::Encode(e.to_string()))
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Bytes, Fault>>>>>;

/// A broker handle's reply subject and the calls waiting on it.
pub(crate) struct Replies {
    inbox: String,
    pending: Pending,
    next: AtomicU64,
    caller: NodeId,
    listener: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replies")
            .field("inbox", &self.inbox)
            .finish()
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Replies {
    async fn start(broker: &Broker) -> Result<Arc<Replies>, BrokerError> {
        let caller = broker
            .backend()
            .node()
            .map_or_else(NodeId::random, |n| n.id());
        let inbox = format!("_INBOX.{:032x}", NodeId::random().0);
        let mut sub = broker
            .subscribe_raw(&inbox, SubscribeOptions::default())
            .await?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let routes = pending.clone();
        let listener = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let Ok(m) = m else { continue };
                let Ok(reply) = farcall_runtime::codec::decode::<Reply>(&m.body) else {
                    tracing::debug!("a reply that does not decode; dropped");
                    continue;
                };
                if let Some(tx) = lock(&routes).remove(&reply.id) {
                    let _ = tx.send(reply.outcome);
                }
            }
        });
        Ok(Arc::new(Replies {
            inbox,
            pending,
            next: AtomicU64::new(1),
            caller,
            listener,
        }))
    }
}

/// Runs one request on `service`, within its deadline. `metadata` is the
/// request's, when it came beside the request (NATS headers) rather than
/// in it.
pub(crate) async fn run(
    service: &Arc<dyn Service>,
    interface: Option<&'static InterfaceDescriptor>,
    node: Option<Node>,
    req: Request,
    metadata: Option<Metadata>,
) -> Result<Bytes, Fault> {
    let left = req.deadline_ms.saturating_sub(now_ms());
    if left == 0 {
        return Err(Fault::DeadlineExceeded);
    }
    let limits = node
        .as_ref()
        .map_or_else(MetadataLimits::default, |n| n.limits().metadata);
    let metadata = match metadata {
        Some(m) => m,
        None => Metadata::decode(&req.metadata, &limits)
            .map_err(|e| Fault::Rejected(format!("the request's metadata is refused: {e}")))?,
    };
    let deadline = Duration::from_millis(left);
    let cx = CallContext {
        caller: NodeId(req.caller),
        deadline: Instant::now().checked_add(deadline),
        connection: None,
        node,
        one_way: req.reply_to.is_none(),
        carried: true,
        metadata,
    };
    let (interface, method) = method_names(interface, req.method);
    let observed = Observed::start(
        Side::Server,
        interface,
        method,
        ObjectId(0),
        Some(cx.caller),
    );
    observed.adopt_parent(&cx.metadata);
    let call = call_guarded(&**service, cx.clone(), req.method, req.args);
    let outcome = match tokio::time::timeout(deadline, observed.instrument(cx.scope(call))).await {
        Ok(o) => o,
        Err(_) => Err(Fault::DeadlineExceeded),
    };
    observed.finish(outcome.as_ref().map(drop));
    outcome
}

/// Carries a stub's calls through a queue.
struct QueueCarrier {
    broker: Broker,
    queue: String,
    replies: Arc<Replies>,
}

impl fmt::Debug for QueueCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueCarrier")
            .field("queue", &self.queue)
            .finish()
    }
}

impl QueueCarrier {
    fn request(
        &self,
        method: u64,
        metadata: &Metadata,
        args: Bytes,
        reply: bool,
        deadline: Duration,
        idempotent: bool,
    ) -> (u64, Result<Bytes, RemoteError>) {
        let id = self.replies.next.fetch_add(1, Ordering::Relaxed);
        let reply_to = reply.then(|| self.replies.inbox.clone());
        let limits = self
            .node()
            .map_or_else(MetadataLimits::default, |n| n.limits().metadata);
        if let Err(e) = metadata.check(&limits) {
            return (id, Err(RemoteError::Encode(e.to_string())));
        }
        let mut req = Request::new(
            id,
            self.replies.caller,
            method,
            args,
            reply_to,
            deadline,
            idempotent,
        );
        req.metadata = metadata.encode();
        (id, req.encode())
    }
}

impl Carrier for QueueCarrier {
    fn call(
        &self,
        method: u64,
        metadata: &Metadata,
        payload: Bytes,
        deadline: Duration,
        idempotent: bool,
    ) -> CarrierFuture<'_, Result<Bytes, Fault>> {
        let (id, bytes) = self.request(method, metadata, payload, true, deadline, idempotent);
        Box::pin(async move {
            let started = Instant::now();
            let bytes = bytes?;
            let (tx, rx) = oneshot::channel();
            lock(&self.replies.pending).insert(id, tx);
            let forget = || {
                lock(&self.replies.pending).remove(&id);
            };
            let sent =
                tokio::time::timeout(deadline, self.broker.backend().send(&self.queue, bytes))
                    .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    forget();
                    return Err(e.into());
                }
                Err(_) => {
                    forget();
                    return Err(RemoteError::DeadlineExceeded);
                }
            }
            let left = deadline.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, rx).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(RemoteError::Disconnected(
                    "the broker's reply subscription ended".into(),
                )),
                Err(_) => {
                    forget();
                    Err(RemoteError::DeadlineExceeded)
                }
            }
        })
    }

    fn send(&self, method: u64, metadata: &Metadata, payload: Bytes) -> CarrierFuture<'_, ()> {
        let deadline = self
            .node()
            .map_or(Duration::from_secs(30), |n| n.limits().default_deadline);
        let (_, bytes) = self.request(method, metadata, payload, false, deadline, false);
        Box::pin(async move {
            self.broker
                .backend()
                .send(&self.queue, bytes?)
                .await
                .map_err(RemoteError::from)
        })
    }

    fn node(&self) -> Option<Node> {
        self.broker.backend().node()
    }
}

/// A queue served by an object (mediated RPC); dropping it (or
/// [`Serving::stop`]) stops taking calls, and calls it had not yet taken
/// stay in the queue for other servers.
#[derive(Debug)]
#[must_use = "dropping a `Serving` stops serving the queue at once; keep it while the queue is served"]
pub struct Serving {
    queue: String,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// The queue served.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Stops serving.
    pub fn stop(self) {}
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Broker {
    /// A stub of interface `I` whose calls go to the queue `queue` and are
    /// served by whoever [serves](Broker::serve) it (mediated RPC). Calls
    /// have the default deadline (30 s, or the calling node's);
    /// [`Mediated::with_deadline`] gives the same stub with another.
    ///
    /// Arguments and results are plain values here: remote references and
    /// streams cannot travel through a broker.
    pub async fn stub<I: ?Sized + Interface>(
        &self,
        queue: &str,
    ) -> Result<Mediated<I>, BrokerError> {
        Ok(Mediated::new(self.stub_core(queue).await?, queue))
    }

    /// [`Broker::stub`] with a deadline of its own for every call (the same
    /// as `stub(queue).await?.with_deadline(deadline)`).
    pub async fn stub_with_deadline<I: ?Sized + Interface>(
        &self,
        queue: &str,
        deadline: Duration,
    ) -> Result<Mediated<I>, BrokerError> {
        Ok(self.stub::<I>(queue).await?.with_deadline(deadline))
    }

    async fn stub_core(&self, queue: &str) -> Result<StubCore, BrokerError> {
        crate::subject::validate_queue_name(queue)?;
        if let Some(native) = self.backend().native_rpc() {
            return Ok(StubCore::carried(native.carrier(queue)));
        }
        self.backend().declare(queue, None).await?;
        let replies = self
            .inner
            .replies
            .get_or_try_init(|| Replies::start(self))
            .await?
            .clone();
        let carrier = QueueCarrier {
            broker: self.clone(),
            queue: queue.to_owned(),
            replies,
        };
        Ok(StubCore::carried(Arc::new(carrier)))
    }

    /// Serves the calls sent to the queue `queue` with `obj`, as interface
    /// `I`. Any number of servers may serve one queue: each call goes to
    /// one of them.
    pub async fn serve<I, T>(&self, queue: &str, obj: T) -> Result<Serving, BrokerError>
    where
        I: ?Sized + Coerce<T>,
    {
        self.serve_arc(queue, I::coerce(obj)).await
    }

    /// [`Broker::serve`] with an object already behind an `Arc<dyn Trait>`.
    pub async fn serve_arc<I: ?Sized + Interface>(
        &self,
        queue: &str,
        obj: Arc<I>,
    ) -> Result<Serving, BrokerError> {
        crate::subject::validate_queue_name(queue)?;
        let service: Arc<dyn Service> = Arc::new(Dispatcher::new(obj));
        if let Some(native) = self.backend().native_rpc() {
            let task = native.serve(queue, I::descriptor(), service).await?;
            return Ok(Serving {
                queue: queue.to_owned(),
                task,
            });
        }
        let q = self.queue_raw(queue, None).await?;
        let mut consumer = q.consume_with(DEFAULT_PREFETCH).await?;
        let broker = self.clone();
        let node = self.backend().node();
        let task = tokio::spawn(async move {
            while let Some(d) = consumer.next().await {
                let Ok(d) = d else { continue };
                let service = service.clone();
                let broker = broker.clone();
                let node = node.clone();
                tokio::spawn(async move {
                    let req: Request = match farcall_runtime::codec::decode(d.body()) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(error = %e, "a request that does not decode; refused");
                            let _ = d.nack().await;
                            return;
                        }
                    };
                    if req.deadline_ms <= now_ms() {
                        // The caller gave up already.
                        let _ = d.ack().await;
                        return;
                    }
                    if !req.idempotent {
                        let _ = d.ack().await;
                    }
                    let (id, idempotent, reply_to) = (req.id, req.idempotent, req.reply_to.clone());
                    let outcome = run(&service, Some(I::descriptor()), node, req, None).await;
                    if let Some(to) = &reply_to {
                        let reply = Reply { id, outcome };
                        match postcard::to_stdvec(&reply) {
                            Ok(b) => {
                                if let Err(e) = broker.publish_raw(to, Bytes::from(b)).await {
                                    tracing::warn!(error = %e, "a reply could not be published");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "a reply did not encode"),
                        }
                    }
                    if idempotent {
                        let _ = d.ack().await;
                    }
                });
            }
        });
        Ok(Serving {
            queue: queue.to_owned(),
            task,
        })
    }
}
