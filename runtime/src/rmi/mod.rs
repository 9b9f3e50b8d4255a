//! Remote procedures and remote objects: the runtime side of
//! `#[farcall::remote]`.
//!
//! A `#[remote]` trait gets an [`Interface`] implementation for its trait
//! object (`dyn Trait`): a stub ([`Stub`]) that implements the trait by
//! sending calls, and a dispatcher that serves calls on any implementation.
//! [`Remote<dyn Trait>`](Remote) is a reference to an object that may live
//! anywhere: it dereferences to `dyn Trait`, so the caller cannot tell a
//! stub from the object itself.

mod any;
mod client;
mod error;
mod interface;
pub(crate) use interface::lineage;
pub(crate) mod lease;
mod reference;
mod registered;
pub(crate) mod scope;
pub(crate) mod server;
pub(crate) mod stream;
mod wire_ref;

use std::sync::Arc;

use bytes::Bytes;

pub use any::AnyRemote;
pub use client::{Candidates, LateBound, Policy, Resolve};
pub use client::{Carrier, CarrierFuture, Stub, StubCore};
pub use error::RemoteError;
pub use interface::{
    ArgDescriptor, Coerce, Interface, InterfaceDescriptor, MethodDescriptor, Registration, Upcast,
    catalogue, find_interface, is_subinterface, method_word,
};
pub use reference::Remote;
pub use registered::{ExportRegistration, registered_exports};
pub use scope::decode_in;
pub use server::{Dispatcher, PROBE, decode_args, decode_fault};
pub use stream::{DEFAULT_WINDOW, MAX_STREAMS, MAX_WINDOW, Stream, StreamSender};
pub use wire_ref::WireRef;

use client::Link;
use reference::LocalObject;

use crate::address::Address;
use crate::error::Error;
use crate::id::ObjectId;
use crate::node::{IntoAddress, Node};
use crate::service::{CallContext, Entry, OutcomeFuture, Service, Upcaster};
use crate::wire::Fault;

impl Node {
    fn publish<I: ?Sized + Interface>(
        &self,
        id: ObjectId,
        object: Arc<I>,
        pinned: bool,
    ) -> Remote<I> {
        let up: Upcaster = {
            let object = object.clone();
            Arc::new(move |to| I::upcast_to(&object, to))
        };
        let service: Arc<dyn Service> = Arc::new(Dispatcher::new(object.clone()));
        let interface = I::descriptor().id;
        self.serve_entry(
            id,
            Entry {
                service: service.clone(),
                local: Some(up.clone()),
                interface: Some(I::descriptor()),
            },
        );
        let guard = self.leases().exported(self, id, pinned);
        let local = LocalObject {
            up,
            service,
            node: self.downgrade(),
            _guard: Some(guard),
        };
        Remote::local(object, local, id, self, interface)
    }

    /// Exports `obj` under a fresh, unguessable 128-bit id and returns a
    /// reference to it. Whoever holds the reference (or its id) may call it.
    ///
    /// ```ignore
    /// let calc: Remote<dyn Calculator> = node.export(MyCalculator);
    /// ```
    #[must_use = "an exported object with no reference left (and no lease or binding) is unexported at once; keep the `Remote`"]
    pub fn export<I, T>(&self, obj: T) -> Remote<I>
    where
        I: ?Sized + Coerce<T>,
    {
        self.publish(ObjectId::random(), I::coerce(obj), false)
    }

    /// Exports an object already behind an `Arc<dyn Trait>`.
    #[must_use = "an exported object with no reference left (and no lease or binding) is unexported at once; keep the `Remote`"]
    pub fn export_arc<I: ?Sized + Interface>(&self, obj: Arc<I>) -> Remote<I> {
        self.publish(ObjectId::random(), obj, false)
    }

    /// Publishes `obj` as the well-known service `name` on this node: any
    /// client that knows the node's address and the name may call it
    /// (plain RPC). Replaces a service of the same name.
    pub fn serve<I, T>(&self, name: &str, obj: T) -> Remote<I>
    where
        I: ?Sized + Coerce<T>,
    {
        self.publish(ObjectId::for_service(name), I::coerce(obj), true)
    }

    /// Stops serving the object `id` (exported or served by name), whatever
    /// holds it.
    pub fn unexport(&self, id: ObjectId) -> bool {
        self.remove_object(id).is_some()
    }

    /// A stub for the object `object` on the node at `addr` (early binding:
    /// the caller names the object). Stubs to one node share one
    /// connection; when it breaks, the next call dials `addr` again (with
    /// exponential backoff, within the call's deadline). If `addr` is this
    /// node, calls skip the socket, and the encoding when the object was
    /// exported as this interface.
    pub async fn connect<I: ?Sized + Interface>(
        &self,
        addr: impl IntoAddress,
        object: ObjectId,
    ) -> Result<Remote<I>, RemoteError> {
        let addr = addr
            .into_address()
            .map_err(|e| RemoteError::Io(e.to_string()))?;
        if self.local_addrs().contains(&addr) {
            return Ok(self.local_reference(object));
        }
        let conn = self.connection(&addr).await.map_err(RemoteError::from)?;
        if conn.peer_id() == self.id() {
            return Ok(self.local_reference(object));
        }
        let owner = conn.peer_id();
        let addrs: Arc<[Address]> = vec![addr.clone()].into();
        let link = Arc::new(Link::new(self.downgrade(), owner, vec![addr], Some(conn)));
        let lease = self.leases().hold(self, owner, object, link.clone());
        Ok(Remote::<I>::stub(
            StubCore::linked(link, object),
            object,
            owner,
            I::descriptor().id,
            addrs,
        )
        .with_lease(lease))
    }

    /// A stub for the service `name` on the node at `addr` (see
    /// [`Node::serve`]). After a restart of that node the same name reaches
    /// the new instance.
    ///
    /// It checks, with one round trip, that the node serves `name` and
    /// that what it serves is an `I` (or inherits from `I`): nothing served
    /// under the name is [`RemoteError::NoSuchService`], another interface
    /// is [`RemoteError::InterfaceMismatch`], both before any call is made.
    /// (A service served by hand, not through `#[remote]`, is taken on
    /// trust.) [`Node::connect`] with [`ObjectId::for_service`] makes the
    /// same stub without the check.
    pub async fn connect_service<I: ?Sized + Interface>(
        &self,
        addr: impl IntoAddress,
        name: &str,
    ) -> Result<Remote<I>, RemoteError> {
        let object = ObjectId::for_service(name);
        let stub = self.connect::<I>(addr, object).await?;
        let served = if stub.owner() == self.id() {
            match self.object_entry(object) {
                None => return Err(RemoteError::NoSuchService(name.to_owned())),
                Some(entry) => entry.interface.map(|d| interface::lineage(d.id)),
            }
        } else {
            let conn = self
                .connection_to(stub.owner())
                .ok_or_else(|| RemoteError::Disconnected("the connection closed at once".into()))?;
            match conn.call::<(), Vec<u64>>(object, PROBE, &(), None).await {
                Ok(ids) => Some(ids),
                Err(Error::Remote(Fault::NoSuchObject)) => {
                    return Err(RemoteError::NoSuchService(name.to_owned()));
                }
                // Served by hand, not through a `#[remote]` dispatcher: it
                // does not know the probe, or answers it with something
                // that is not a lineage.
                Err(
                    Error::Decode(_)
                    | Error::Remote(
                        Fault::NoSuchMethod
                        | Fault::Decode(_)
                        | Fault::Rejected(_)
                        | Fault::Panicked,
                    ),
                ) => None,
                Err(e) => return Err(RemoteError::from(e)),
            }
        };
        let wanted = I::descriptor();
        if let Some(ids) = served
            && !ids.contains(&wanted.id)
        {
            let what = ids.first().and_then(|&id| find_interface(id)).map_or_else(
                || "another interface".to_owned(),
                |d| format!("`{}`", d.name),
            );
            return Err(RemoteError::InterfaceMismatch(format!(
                "the service `{name}` serves {what}, not `{}`",
                wanted.name
            )));
        }
        Ok(stub)
    }

    /// A reference to one of this node's own objects: the object itself if
    /// it was exported as `I`, else a stub through its dispatcher (which
    /// answers `NoSuchObject` if there is no such object).
    pub(crate) fn local_reference<I: ?Sized + Interface>(&self, object: ObjectId) -> Remote<I> {
        let entry = self.object_entry(object);
        let interface = entry
            .as_ref()
            .and_then(|e| e.interface.map(|d| d.id))
            .unwrap_or(I::descriptor().id);
        let service = match entry {
            Some(entry) => {
                if let Some((up, arc)) = entry.local.as_ref().and_then(|up| {
                    let arc = up(I::descriptor().id)?.downcast::<Arc<I>>().ok()?;
                    Some((up, *arc))
                }) {
                    let handle = LocalObject {
                        up: up.clone(),
                        service: entry.service.clone(),
                        node: self.downgrade(),
                        _guard: self.leases().local_guard(self, object),
                    };
                    return Remote::local(arc.clone(), handle, object, self, interface);
                }
                entry.service
            }
            None => Arc::new(Missing) as Arc<dyn Service>,
        };
        Remote::stub(
            StubCore::local(service, self.clone(), object),
            object,
            self.id(),
            interface,
            self.local_addrs().into(),
        )
    }
}

/// Stands in for an object this node does not serve.
struct Missing;

impl Service for Missing {
    fn call(&self, _: CallContext, _: u64, _: Bytes) -> OutcomeFuture {
        Box::pin(std::future::ready(Err(Fault::NoSuchObject)))
    }
}
