//! Interfaces: what `#[remote]` generates for a trait, and the catalogue
//! of every remote trait linked into the binary.

use std::sync::Arc;

use bytes::Bytes;

use crate::rmi::client::StubCore;
use crate::schema::TypeDef;
use crate::service::{CallContext, OutcomeFuture};

/// One argument of a remote method, as written in the trait.
#[derive(Debug)]
pub struct ArgDescriptor {
    /// The argument's name.
    pub name: &'static str,
    /// Its type, as written.
    pub ty: &'static str,
}

/// One method of a remote interface.
#[derive(Debug)]
pub struct MethodDescriptor {
    /// The method's name.
    pub name: &'static str,
    /// Stable id: a hash of the name (reordering methods changes nothing).
    pub id: u32,
    /// A hash of the structure of the argument and result types (every
    /// named type they reach, with its fields or variants; see
    /// [`Signature::canonical`](crate::schema::Signature::canonical)): a
    /// different signature under the same name is an `InterfaceMismatch`,
    /// never a wrong decode. For a method of a generic interface, whose
    /// words depend on the instantiation, a hash of the types as written.
    pub signature: u32,
    /// The arguments.
    pub args: &'static [ArgDescriptor],
    /// The result type, as written.
    pub result: &'static str,
    /// The definitions of the named types its arguments and result reach,
    /// in the order first met (printed, `struct Parcel { width: u32,
    /// height: u32 }`). Empty for a method of a generic interface, whose
    /// types depend on the instantiation.
    pub types: Vec<TypeDef>,
    /// Fire-and-forget: no reply is sent.
    pub oneway: bool,
    /// Safe to retry on another object.
    pub idempotent: bool,
    /// The roles `#[remote(role = "...")]` gives the method, for
    /// authorization policies to read (see `farcall::auth::AccessRules`).
    pub roles: &'static [&'static str],
}

impl MethodDescriptor {
    /// The word that travels in a call frame: name hash, then signature
    /// hash (not the word of a generic interface's instantiation).
    pub const fn word(&self) -> u64 {
        method_word(self.id, self.signature)
    }
}

/// The method word of a call frame: `id << 32 | signature`.
pub const fn method_word(id: u32, signature: u32) -> u64 {
    (id as u64) << 32 | signature as u64
}

/// A remote interface, as the catalogue knows it.
#[derive(Debug)]
pub struct InterfaceDescriptor {
    /// The trait's name.
    pub name: &'static str,
    /// Stable id: a hash of the name.
    pub id: u64,
    /// The trait's own methods (not its supertraits').
    pub methods: &'static [MethodDescriptor],
    /// The names of its remote supertraits.
    pub supertraits: &'static [&'static str],
    /// The ids of its remote supertraits.
    pub supertrait_ids: &'static [u64],
    /// A hash of every method signature (types' structure included).
    pub fingerprint: u64,
}

impl InterfaceDescriptor {
    /// The definitions of the named types its methods use, each once, in
    /// the order first met: what `describe` prints under the trait.
    ///
    /// ```
    /// # use farcall_runtime::rmi::InterfaceDescriptor;
    /// fn print(d: &InterfaceDescriptor) {
    ///     for t in d.types() {
    ///         println!("{t}"); // struct Parcel { width: u32, height: u32 }
    ///     }
    /// }
    /// ```
    pub fn types(&self) -> Vec<&TypeDef> {
        let mut out: Vec<&TypeDef> = Vec::new();
        for t in self.methods.iter().flat_map(|m| &m.types) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

/// The link-time registration of an interface (one per `#[remote]` trait).
#[derive(Debug)]
pub struct Registration(pub fn() -> &'static InterfaceDescriptor);

inventory::collect!(Registration);

/// Every remote interface linked into this binary.
pub fn catalogue() -> impl Iterator<Item = &'static InterfaceDescriptor> {
    inventory::iter::<Registration>.into_iter().map(|r| (r.0)())
}

/// The interface with this id, if it is linked into this binary.
pub fn find_interface(id: u64) -> Option<&'static InterfaceDescriptor> {
    catalogue().find(|d| d.id == id)
}

/// Whether interface `sub` is `sup` or inherits from it (directly or not),
/// as far as the interfaces linked into this binary tell.
pub fn is_subinterface(sub: u64, sup: u64) -> bool {
    if sub == sup {
        return true;
    }
    // Trait hierarchies are acyclic, so this terminates; the depth bound
    // guards against a catalogue that is not.
    fn walk(sub: u64, sup: u64, depth: usize) -> bool {
        if sub == sup {
            return true;
        }
        depth < 64
            && find_interface(sub)
                .is_some_and(|d| d.supertrait_ids.iter().any(|&s| walk(s, sup, depth + 1)))
    }
    walk(sub, sup, 0)
}

/// The ids of interface `id` and of all its supertraits (directly or
/// not), its own first, as far as the interfaces linked into this binary
/// tell.
pub(crate) fn lineage(id: u64) -> Vec<u64> {
    let mut ids = vec![id];
    let mut next = 0;
    // Trait hierarchies are acyclic; the bound guards against a catalogue
    // that is not.
    while next < ids.len() && ids.len() < 256 {
        if let Some(d) = find_interface(ids[next]) {
            for &s in d.supertrait_ids {
                if !ids.contains(&s) {
                    ids.push(s);
                }
            }
        }
        next += 1;
    }
    ids
}

/// Implemented by `#[remote]` for `dyn Trait`: how to make a stub, and how
/// to serve calls on an object.
pub trait Interface: Send + Sync + 'static {
    /// The interface's descriptor.
    fn descriptor() -> &'static InterfaceDescriptor;

    /// A stub that forwards every method through `core`.
    fn stub(core: StubCore) -> Arc<Self>;

    /// Serves `method` on `this`, or returns `None` if the interface (with
    /// its supertraits) has no method of that id.
    fn dispatch(
        this: &Arc<Self>,
        cx: CallContext,
        method: u64,
        payload: Bytes,
    ) -> Option<OutcomeFuture>;

    /// `this` as `Arc<dyn J>` (boxed as `Any`) where `to` is the id of `J`:
    /// this interface or one of its supertraits. `#[remote]` implements it
    /// with every supertrait; the default knows only the interface itself.
    fn upcast_to(this: &Arc<Self>, to: u64) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        (to == Self::descriptor().id)
            .then(|| Box::new(this.clone()) as Box<dyn std::any::Any + Send + Sync>)
    }
}

/// Turns an implementation into the interface's trait object.
/// `#[remote]` implements it for every `T: Trait`.
pub trait Coerce<T>: Interface {
    /// Wraps `obj`.
    fn coerce(obj: T) -> Arc<Self>;
}

/// Seeing an object through a supertrait: `#[remote]` implements
/// `Upcast<dyn Shape> for dyn Circle` when `trait Circle: Shape`.
pub trait Upcast<J: ?Sized>: Interface {
    /// The same object as `J`.
    fn upcast(this: Arc<Self>) -> Arc<J>;
}
