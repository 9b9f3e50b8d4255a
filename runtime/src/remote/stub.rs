//! Stubs: the client side of a remote object.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::connection::Connection;
use crate::id::{NodeId, ObjectId};
use crate::remote::error::RemoteError;
use crate::service::{CallContext, Service};
use crate::wire::Fault;

/// The deadline of calls to a local object through a stub that names none.
const LOCAL_DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum Target {
    /// Over a connection.
    Conn(Connection),
    /// An object of this node reached without a socket.
    Local {
        service: Arc<dyn Service>,
        node: NodeId,
    },
}

/// Where a stub's calls go and how long they may take. Generated stubs
/// hold one; it does the encoding, the call and the decoding.
#[derive(Clone)]
pub struct StubCore {
    target: Target,
    object: ObjectId,
    deadline: Option<Duration>,
}

impl fmt::Debug for StubCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StubCore");
        d.field("object", &self.object);
        match &self.target {
            Target::Conn(c) => d.field("connection", c),
            Target::Local { node, .. } => d.field("local_node", node),
        };
        d.field("deadline", &self.deadline).finish()
    }
}

fn fault(e: RemoteError, method: &str) -> RemoteError {
    match e {
        RemoteError::NoSuchMethod(_) => RemoteError::NoSuchMethod(method.to_owned()),
        other => other,
    }
}

impl StubCore {
    /// Calls over a connection.
    pub fn remote(conn: Connection, object: ObjectId) -> Self {
        StubCore {
            target: Target::Conn(conn),
            object,
            deadline: None,
        }
    }

    /// Calls an object served by this node, through its dispatcher but
    /// without a socket.
    pub fn local(service: Arc<dyn Service>, node: NodeId, object: ObjectId) -> Self {
        StubCore {
            target: Target::Local { service, node },
            object,
            deadline: None,
        }
    }

    /// The same target with another deadline for every call.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        StubCore {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// The deadline given to calls (the connection's default if `None`).
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The object called.
    pub fn object(&self) -> ObjectId {
        self.object
    }

    /// The connection, for a remote target.
    pub fn connection(&self) -> Option<&Connection> {
        match &self.target {
            Target::Conn(c) => Some(c),
            Target::Local { .. } => None,
        }
    }

    async fn local_call(
        service: &Arc<dyn Service>,
        node: NodeId,
        deadline: Option<Duration>,
        method: u64,
        payload: Bytes,
    ) -> Result<Bytes, RemoteError> {
        let deadline = deadline.unwrap_or(LOCAL_DEFAULT_DEADLINE);
        let cx = CallContext {
            caller: node,
            deadline: std::time::Instant::now().checked_add(deadline),
            connection: None,
            one_way: false,
        };
        match tokio::time::timeout(deadline, service.call(cx, method, payload)).await {
            Ok(r) => r.map_err(RemoteError::from),
            Err(_) => Err(RemoteError::DeadlineExceeded),
        }
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
        match &self.target {
            Target::Conn(c) => {
                let bytes = c
                    .call_with(self.object, method, self.deadline, |b| {
                        codec::encode_into(args, b)
                    })
                    .await
                    .map_err(|e| fault(e.into(), name))?;
                codec::decode(&bytes).map_err(|e| RemoteError::Decode(e.to_string()))
            }
            Target::Local { service, node } => {
                let payload =
                    codec::encode(args).map_err(|e| RemoteError::Encode(e.to_string()))?;
                let bytes = Self::local_call(service, *node, self.deadline, method, payload)
                    .await
                    .map_err(|e| fault(e, name))?;
                codec::decode(&bytes).map_err(|e| RemoteError::Decode(e.to_string()))
            }
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
            Target::Conn(c) => c
                .send_with(self.object, method, |b| codec::encode_into(args, b))
                .await
                .map_err(|e| fault(e.into(), name)),
            Target::Local { service, node } => {
                let payload =
                    codec::encode(args).map_err(|e| RemoteError::Encode(e.to_string()))?;
                let cx = CallContext {
                    caller: *node,
                    deadline: None,
                    connection: None,
                    one_way: true,
                };
                let fut = service.call(cx, method, payload);
                tokio::spawn(fut);
                Ok(())
            }
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

    /// The id of the object called.
    pub fn object_id(&self) -> ObjectId {
        self.core.object
    }
}

/// Maps a dispatch failure of an argument decode to its fault.
pub fn decode_fault(e: postcard::Error) -> Fault {
    Fault::Decode(e.to_string())
}
