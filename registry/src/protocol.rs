//! The directory's remote interface and the types it exchanges.
//!
//! These are the operations as they travel: untyped references
//! ([`AnyRemote`]) and interface ids. [`DirectoryClient`](crate::DirectoryClient)
//! is the typed API on top.

use farcall_runtime::rmi::AnyRemote;
use farcall_runtime::{NodeId, ObjectId, Stream};
use serde::{Deserialize, Serialize};

use crate::DirectoryError;

/// The directory: names bound to remote objects, served by every node at
/// the well-known [`ObjectId::DIRECTORY`].
///
/// Names are 1 to 255 bytes of `/`-separated segments of
/// `A-Z a-z 0-9 . _ -` ([`validate_name`](crate::validate_name)). A name
/// holds a group of one or more objects, in the order they were added.
/// Writes (`bind`, `rebind`, `add`, `unbind`, `remove`) are refused to
/// callers from other hosts; reads are open.
///
/// The interface keeps the name `Directory` on the wire (its id, its
/// method words, what `describe` and `ls` show); only the Rust trait is
/// `DirectoryApi`, so that its generated stub alias, `DirectoryApiClient`,
/// is not taken for the typed [`DirectoryClient`](crate::DirectoryClient).
#[farcall_macros::remote(crate = "::farcall_runtime", name = "Directory")]
pub trait DirectoryApi {
    /// Binds `name` to `r`; fails with `AlreadyBound` if the name is taken.
    async fn bind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError>;
    /// Binds `name` to `r` alone, replacing whatever was bound there.
    async fn rebind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError>;
    /// Adds `r` to the group under `name` (creating it); adding a member
    /// twice changes nothing.
    async fn add(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError>;
    /// Removes every object bound under `name`; `NotBound` if none is.
    async fn unbind(&self, name: String) -> Result<(), DirectoryError>;
    /// Removes one member (the object `object` of node `owner`) from the
    /// group under `name`; the name goes with its last member.
    async fn remove(
        &self,
        name: String,
        owner: NodeId,
        object: ObjectId,
    ) -> Result<(), DirectoryError>;
    /// The group bound under `name`, in the order its members were added.
    #[remote(idempotent)]
    async fn lookup(&self, name: String) -> Result<Vec<AnyRemote>, DirectoryError>;
    /// One page of the bindings whose names start with `prefix`, sorted by
    /// name, after the name `after` (exclusive). At most `limit` entries
    /// (capped at [`MAX_PAGE`](crate::MAX_PAGE), and to keep the reply far
    /// under the frame limit); `next` is the `after` of the next page.
    #[remote(idempotent)]
    async fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page, DirectoryError>;
    /// One page of the bound objects that implement the interface of id
    /// `interface` (or a subtrait of it, as far as the directory's catalogue
    /// knows), by name, after `after`; paged like `list`.
    #[remote(idempotent)]
    async fn find(
        &self,
        interface: u64,
        after: Option<String>,
        limit: u32,
    ) -> Result<Found, DirectoryError>;
    /// The changes to come under names starting with `prefix`, one item
    /// per member bound or unbound. A watcher that falls more than
    /// [`WATCH_BACKLOG`](crate::WATCH_BACKLOG) changes behind gets an
    /// error item and the stream ends: watch again, and list.
    async fn watch(&self, prefix: String) -> Result<Stream<Change>, DirectoryError>;
    /// The interfaces of the objects bound under `name`, each followed by
    /// its supertraits, as the directory's catalogue describes them.
    #[remote(idempotent)]
    async fn describe(&self, name: String) -> Result<Vec<InterfaceInfo>, DirectoryError>;
}

/// One binding, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct Entry {
    /// The name.
    pub name: String,
    /// The interfaces of its members (each once, in member order), by name
    /// (`#` and the id in hex if the directory does not link it).
    pub interfaces: Vec<String>,
    /// How many objects are bound under it.
    pub members: u32,
}

/// One page of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct Page {
    /// The bindings, sorted by name.
    pub entries: Vec<Entry>,
    /// Where the next page starts (its `after`), if there is one.
    pub next: Option<String>,
}

/// One page of `find`.
#[derive(Debug, Clone, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct Found {
    /// The matching objects with their names, sorted by name (a group's
    /// members in their order).
    pub matches: Vec<(String, AnyRemote)>,
    /// Where the next page starts (its `after`), if there is one.
    pub next: Option<String>,
}

/// A change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub enum Change {
    /// An object was bound under `name` (by `bind`, `rebind` or `add`).
    Bound {
        /// The name.
        name: String,
        /// The node that owns the object.
        owner: NodeId,
        /// The object.
        object: ObjectId,
        /// Its interface id.
        interface: u64,
    },
    /// An object left `name` (by `rebind`, `unbind` or `remove`, or
    /// because its owner was unreachable for a lease time).
    Unbound {
        /// The name.
        name: String,
        /// The node that owns the object.
        owner: NodeId,
        /// The object.
        object: ObjectId,
    },
}

impl Change {
    /// The name changed.
    pub fn name(&self) -> &str {
        match self {
            Change::Bound { name, .. } | Change::Unbound { name, .. } => name,
        }
    }
}

/// A remote interface as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct InterfaceInfo {
    /// The trait's name (`#` and the id in hex if unknown).
    pub name: String,
    /// Its id.
    pub id: u64,
    /// Whether the describing catalogue links it (if not, it knows only
    /// the id, and `methods` is empty).
    pub known: bool,
    /// Its own methods (not its supertraits').
    pub methods: Vec<MethodInfo>,
    /// The names of its remote supertraits.
    pub supertraits: Vec<String>,
    /// The definitions of the named types its methods use (each once, in
    /// the order first met), printed as Rust: `struct Parcel { width: u32,
    /// height: u32 }`. Empty for a generic interface, whose types depend
    /// on the instantiation.
    pub types: Vec<String>,
}

/// A method of a remote interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct MethodInfo {
    /// Its name.
    pub name: String,
    /// Its arguments, with their types as written.
    pub args: Vec<ArgInfo>,
    /// The result type, as written.
    pub result: String,
    /// One-way (no reply).
    pub oneway: bool,
    /// Safe to retry on another object.
    pub idempotent: bool,
}

/// An argument of a remote method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, farcall_macros::Schema)]
#[schema(crate = "::farcall_runtime")]
pub struct ArgInfo {
    /// Its name.
    pub name: String,
    /// Its type, as written.
    pub ty: String,
}

impl InterfaceInfo {
    /// The interface of id `id` as this binary's catalogue describes it.
    pub fn of(id: u64) -> InterfaceInfo {
        match farcall_runtime::rmi::find_interface(id) {
            Some(d) => InterfaceInfo {
                name: d.name.to_owned(),
                id,
                known: true,
                methods: d
                    .methods
                    .iter()
                    .map(|m| MethodInfo {
                        name: m.name.to_owned(),
                        args: m
                            .args
                            .iter()
                            .map(|a| ArgInfo {
                                name: a.name.to_owned(),
                                ty: a.ty.to_owned(),
                            })
                            .collect(),
                        result: m.result.to_owned(),
                        oneway: m.oneway,
                        idempotent: m.idempotent,
                    })
                    .collect(),
                supertraits: d.supertraits.iter().map(|s| (*s).to_owned()).collect(),
                types: d.types().iter().map(ToString::to_string).collect(),
            },
            None => InterfaceInfo {
                name: unknown_name(id),
                id,
                known: false,
                methods: Vec::new(),
                supertraits: Vec::new(),
                types: Vec::new(),
            },
        }
    }

    /// The interface of id `id` followed by its supertraits (each once,
    /// depth first), as far as this binary's catalogue knows them.
    pub fn with_supertraits(id: u64) -> Vec<InterfaceInfo> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        fn walk(id: u64, out: &mut Vec<InterfaceInfo>, seen: &mut Vec<u64>) {
            if seen.contains(&id) || seen.len() > 256 {
                return;
            }
            seen.push(id);
            out.push(InterfaceInfo::of(id));
            if let Some(d) = farcall_runtime::rmi::find_interface(id) {
                for &s in d.supertrait_ids {
                    walk(s, out, seen);
                }
            }
        }
        walk(id, &mut out, &mut seen);
        out
    }
}

/// How an interface the catalogue does not link is named.
pub(crate) fn unknown_name(id: u64) -> String {
    format!("#{id:016x}")
}

/// The name of an interface: from the catalogue, or `#` and its id.
pub(crate) fn interface_name(id: u64) -> String {
    farcall_runtime::rmi::find_interface(id).map_or_else(|| unknown_name(id), |d| d.name.to_owned())
}
