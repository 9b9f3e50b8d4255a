//! The typed client: what applications call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "nats")]
use farcall_runtime::NatsOptions;
use farcall_runtime::rmi::{
    AnyRemote, Interface, WireRef, catalogue, find_interface, is_subinterface,
};
use farcall_runtime::{Address, IntoAddress, Node, ObjectId, Remote, Stream};

use crate::DirectoryError;
use crate::backend::embedded::{Embedded, MAX_PAGE};
use crate::protocol::{Change, DirectoryApi, Entry, InterfaceInfo, Page, interface_name};

/// The environment variable [`DirectoryClient::from_env`] reads: the
/// address of the node whose directory to use.
pub const DIRECTORY_ENV: &str = "FARCALL_DIRECTORY";

/// A directory, local or remote, with typed operations.
///
/// Get one with [`DirectoryExt::directory`] (this node's own),
/// [`DirectoryClient::connect_on`] (another node's, called from yours),
/// [`DirectoryClient::connect`] (from a node of the client's own) or
/// [`DirectoryClient::from_env`] (the node named by `FARCALL_DIRECTORY`).
/// Clones share the reference.
#[derive(Clone)]
pub struct DirectoryClient {
    target: Target,
    /// The node this client made for itself (`connect`, `from_env`,
    /// `connect_nats`), kept alive as long as the client.
    own_node: Option<Node>,
}

#[derive(Clone)]
enum Target {
    /// This process's own directory, called directly.
    Local(Arc<dyn DirectoryApi>),
    /// A reference to a directory (a stub, or one of this node's objects
    /// served through its dispatcher).
    Remote(Box<Remote<dyn DirectoryApi>>),
    /// A directory kept elsewhere than on a farcall node (a NATS bucket),
    /// reached by a client in this process.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Backend(Arc<dyn DirectoryApi>),
}

impl fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Local(_) => f
                .debug_struct("DirectoryClient")
                .field("local", &true)
                .finish(),
            Target::Remote(r) => f
                .debug_struct("DirectoryClient")
                .field("owner", &r.owner())
                .field("addrs", &r.owner_addrs())
                .finish(),
            Target::Backend(_) => f
                .debug_struct("DirectoryClient")
                .field("backend", &"nats")
                .finish(),
        }
    }
}

fn mismatch<I: ?Sized + Interface>(name: &str, members: &[AnyRemote]) -> DirectoryError {
    let mut found: Vec<String> = Vec::new();
    for m in members {
        let n = interface_name(m.interface_id());
        if !found.contains(&n) {
            found.push(n);
        }
    }
    DirectoryError::InterfaceMismatch {
        name: name.to_owned(),
        expected: I::descriptor().name.to_owned(),
        found,
    }
}

impl DirectoryClient {
    /// A client over a reference to a directory.
    pub fn new(remote: Remote<dyn DirectoryApi>) -> DirectoryClient {
        DirectoryClient {
            target: Target::Remote(Box::new(remote)),
            own_node: None,
        }
    }

    /// The directory embedded in `node` (the same as `node.directory()`):
    /// calls are direct, without encoding or socket.
    pub fn local(node: &Node) -> DirectoryClient {
        if let Some(embedded) = Embedded::of(node) {
            return DirectoryClient {
                target: Target::Local(Arc::new(embedded)),
                own_node: None,
            };
        }
        // Not one of ours (replaced by hand?): through the dispatcher.
        let wire = WireRef {
            owner: node.id(),
            addrs: node.local_addrs(),
            object: ObjectId::DIRECTORY,
            interface: <dyn DirectoryApi as Interface>::descriptor().id,
        };
        let remote = AnyRemote::bind(node, wire, None)
            .narrow::<dyn DirectoryApi>()
            .expect("a reference to a live node's own object narrows to its interface");
        DirectoryClient::new(remote)
    }

    /// The directory of the node at `addr`, called from a node of its own
    /// (which dials it now, and again if the connection breaks). A
    /// `nats://` address is the directory on NATS, as with
    /// [`DirectoryClient::connect_nats`] and the options of the
    /// environment.
    ///
    /// References looked up through this client call from its node, which
    /// lives as long as the client (or a clone of it): keep the client
    /// while you use them, or use [`DirectoryClient::connect_on`] with a
    /// node of yours.
    pub async fn connect(addr: impl IntoAddress) -> Result<DirectoryClient, DirectoryError> {
        let node = Node::new();
        Ok(Self::connect_on(&node, addr).await?.owning(node))
    }

    /// This client, keeping `node` alive as long as it lives.
    fn owning(mut self, node: Node) -> DirectoryClient {
        self.own_node = Some(node);
        self
    }

    /// The directory of the node at `addr`, called from `node` (which dials
    /// it now, and again if the connection breaks). References looked up
    /// through it are called from `node`, and objects it binds are
    /// `node`'s.
    pub async fn connect_on(
        node: &Node,
        addr: impl IntoAddress,
    ) -> Result<DirectoryClient, DirectoryError> {
        let addr = addr
            .into_address()
            .map_err(|e| DirectoryError::Config(format!("not a directory address: {e}")))?;
        if let Address::Nats { .. } = &addr {
            return Self::connect_nats_address(node, &addr).await;
        }
        let remote = node
            .connect::<dyn DirectoryApi>(addr, ObjectId::DIRECTORY)
            .await?;
        if remote.owner() == node.id() {
            return Ok(DirectoryClient::local(node));
        }
        Ok(DirectoryClient::new(remote))
    }

    #[cfg(feature = "nats")]
    async fn connect_nats_address(
        node: &Node,
        addr: &Address,
    ) -> Result<DirectoryClient, DirectoryError> {
        Self::connect_nats_on(node, &addr.to_string(), NatsOptions::from_env()).await
    }

    #[cfg(not(feature = "nats"))]
    async fn connect_nats_address(
        _: &Node,
        addr: &Address,
    ) -> Result<DirectoryClient, DirectoryError> {
        Err(DirectoryError::Config(format!(
            "{addr}: this build has no NATS backend (enable the `nats` feature of farcall-registry)"
        )))
    }

    /// The directory in the JetStream key-value bucket of a NATS server or
    /// cluster, called from a node of its own: `urls` is `nats://host:port`,
    /// or several servers of one cluster separated by commas
    /// (`nats://a:4222,nats://b:4222`), tried in turn and failed over to.
    /// `options` sets the replicas of the bucket if this call creates it.
    #[cfg(feature = "nats")]
    pub async fn connect_nats(
        urls: &str,
        options: NatsOptions,
    ) -> Result<DirectoryClient, DirectoryError> {
        let node = Node::new();
        Ok(Self::connect_nats_on(&node, urls, options)
            .await?
            .owning(node))
    }

    /// [`DirectoryClient::connect_nats`] from an existing node. A
    /// `nats://` address given to [`DirectoryClient::connect_on`] comes
    /// here with [`NatsOptions::from_env`].
    #[cfg(feature = "nats")]
    pub async fn connect_nats_on(
        node: &Node,
        urls: &str,
        options: NatsOptions,
    ) -> Result<DirectoryClient, DirectoryError> {
        let kv = crate::backend::nats::KvDirectory::connect(node, urls, &options).await?;
        Ok(DirectoryClient {
            target: Target::Backend(Arc::new(kv)),
            own_node: None,
        })
    }

    /// The directory whose address is in the environment variable
    /// `FARCALL_DIRECTORY` (e.g. `tcp://10.0.0.5:7400`), called from a
    /// node of its own.
    pub async fn from_env() -> Result<DirectoryClient, DirectoryError> {
        let node = Node::new();
        Ok(Self::from_env_on(&node).await?.owning(node))
    }

    /// The directory whose address is in the environment variable
    /// `FARCALL_DIRECTORY`, called from `node`.
    pub async fn from_env_on(node: &Node) -> Result<DirectoryClient, DirectoryError> {
        let value = std::env::var(DIRECTORY_ENV).map_err(|_| {
            DirectoryError::Config(format!(
                "{DIRECTORY_ENV} is not set (it names the directory's node, e.g. tcp://127.0.0.1:7400)"
            ))
        })?;
        let addr: Address = value.trim().parse().map_err(|e| {
            DirectoryError::Config(format!("{DIRECTORY_ENV}={value:?} is not an address: {e}"))
        })?;
        Self::connect_on(node, addr).await
    }

    /// The wire-level operations ([`DirectoryApi`]'s methods, untyped).
    pub fn remote(&self) -> &dyn DirectoryApi {
        match &self.target {
            Target::Local(d) | Target::Backend(d) => &**d,
            Target::Remote(r) => &***r,
        }
    }

    /// The wire-level operations (the same as [`DirectoryClient::remote`]).
    pub fn raw(&self) -> &dyn DirectoryApi {
        self.remote()
    }

    /// The reference to the directory, for a directory of another node
    /// (`None` for this node's own, which is called directly).
    pub fn reference(&self) -> Option<&Remote<dyn DirectoryApi>> {
        match &self.target {
            Target::Local(_) | Target::Backend(_) => None,
            Target::Remote(r) => Some(r),
        }
    }

    /// Whether this is the calling node's own directory (called directly).
    pub fn is_local(&self) -> bool {
        matches!(self.target, Target::Local(_))
    }

    /// The same directory with another deadline for every call (a local
    /// directory answers at once and ignores it).
    pub fn with_deadline(&self, deadline: Duration) -> DirectoryClient {
        match &self.target {
            Target::Local(_) | Target::Backend(_) => self.clone(),
            Target::Remote(r) => DirectoryClient {
                target: Target::Remote(Box::new(r.with_deadline(deadline))),
                own_node: self.own_node.clone(),
            },
        }
    }

    fn dir(&self) -> &dyn DirectoryApi {
        self.remote()
    }

    /// Binds `name` to `r`; `AlreadyBound` if the name is taken. The
    /// directory holds a lease on `r`: the object stays exported while it
    /// is bound.
    pub async fn bind<I: ?Sized + Interface>(
        &self,
        name: &str,
        r: &Remote<I>,
    ) -> Result<(), DirectoryError> {
        self.dir().bind(name.to_owned(), r.clone().into_any()).await
    }

    /// Binds `name` to `r` alone, replacing whatever was bound there.
    pub async fn rebind<I: ?Sized + Interface>(
        &self,
        name: &str,
        r: &Remote<I>,
    ) -> Result<(), DirectoryError> {
        self.dir()
            .rebind(name.to_owned(), r.clone().into_any())
            .await
    }

    /// Adds `r` to the group under `name` (creating it if need be).
    pub async fn add<I: ?Sized + Interface>(
        &self,
        name: &str,
        r: &Remote<I>,
    ) -> Result<(), DirectoryError> {
        self.dir().add(name.to_owned(), r.clone().into_any()).await
    }

    /// Binds an untyped reference (`bind` of an [`AnyRemote`]).
    pub async fn bind_any(&self, name: &str, r: AnyRemote) -> Result<(), DirectoryError> {
        self.dir().bind(name.to_owned(), r).await
    }

    /// Adds an untyped reference to the group under `name`.
    pub async fn add_any(&self, name: &str, r: AnyRemote) -> Result<(), DirectoryError> {
        self.dir().add(name.to_owned(), r).await
    }

    /// Removes everything bound under `name`; `NotBound` if nothing is.
    pub async fn unbind(&self, name: &str) -> Result<(), DirectoryError> {
        self.dir().unbind(name.to_owned()).await
    }

    /// Removes `r` from the group under `name`.
    pub async fn remove<I: ?Sized + Interface>(
        &self,
        name: &str,
        r: &Remote<I>,
    ) -> Result<(), DirectoryError> {
        self.dir().remove(name.to_owned(), r.owner(), r.id()).await
    }

    /// Removes the member `r` (untyped) from the group under `name`.
    pub async fn remove_any(&self, name: &str, r: &AnyRemote) -> Result<(), DirectoryError> {
        self.dir().remove(name.to_owned(), r.owner(), r.id()).await
    }

    /// The first object under `name` that implements `I`: `NotBound` if
    /// nothing is bound there, `InterfaceMismatch` if no member is an `I`.
    pub async fn lookup<I: ?Sized + Interface>(
        &self,
        name: &str,
    ) -> Result<Remote<I>, DirectoryError> {
        let members = self.lookup_any(name).await?;
        members
            .iter()
            .find_map(AnyRemote::narrow::<I>)
            .ok_or_else(|| mismatch::<I>(name, &members))
    }

    /// Every object under `name` that implements `I`, in the order they
    /// were added (the group's order, stable across lookups).
    pub async fn lookup_all<I: ?Sized + Interface>(
        &self,
        name: &str,
    ) -> Result<Vec<Remote<I>>, DirectoryError> {
        let members = self.lookup_any(name).await?;
        let typed: Vec<Remote<I>> = members.iter().filter_map(AnyRemote::narrow::<I>).collect();
        if typed.is_empty() {
            return Err(mismatch::<I>(name, &members));
        }
        Ok(typed)
    }

    /// The group under `name`, untyped, in the order it was added.
    pub async fn lookup_any(&self, name: &str) -> Result<Vec<AnyRemote>, DirectoryError> {
        self.dir().lookup(name.to_owned()).await
    }

    /// Every binding whose name starts with `prefix`, sorted by name
    /// (fetched page by page).
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>, DirectoryError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(prefix, after, MAX_PAGE).await?;
            out.extend(page.entries);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// One page of `list`: up to `limit` entries after the name `after`.
    pub async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page, DirectoryError> {
        self.dir().list(prefix.to_owned(), after, limit).await
    }

    /// Every bound object that implements `I` (or a subtrait of it), with
    /// its name, sorted by name. A directory judges "implements" with its
    /// own catalogue of interfaces, which may lack the application's
    /// subtraits (a standalone `farcall directory serve` links none of
    /// them): so the client also asks for each subtrait of `I` that this
    /// process links, and merges the answers. An object this process cannot
    /// narrow to `I` is left out.
    pub async fn find<I: ?Sized + Interface>(
        &self,
    ) -> Result<Vec<(String, Remote<I>)>, DirectoryError> {
        // The directory may not link `I`'s subtraits (a standalone one
        // links none of the application's): ask for each one this process
        // knows as well, and merge.
        let id = I::descriptor().id;
        let mut ids = vec![id];
        ids.extend(
            catalogue()
                .map(|d| d.id)
                .filter(|&d| d != id && is_subinterface(d, id)),
        );
        let mut out: Vec<(String, Remote<I>)> = Vec::new();
        for id in ids {
            let mut after = None;
            loop {
                let page = self.dir().find(id, after, MAX_PAGE).await?;
                for (n, r) in page.matches {
                    let seen = out
                        .iter()
                        .any(|(m, x)| *m == n && x.owner() == r.owner() && x.id() == r.id());
                    if !seen && let Some(t) = r.narrow::<I>() {
                        out.push((n, t));
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        // By name, each name's members in the order found.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The changes to come under names starting with `prefix`.
    pub async fn watch(&self, prefix: &str) -> Result<Stream<Change>, DirectoryError> {
        self.dir().watch(prefix.to_owned()).await
    }

    /// The interfaces of the objects under `name` (each followed by its
    /// supertraits) with their methods, argument names and types. An
    /// interface the directory does not link is described from this
    /// process's catalogue when it links it.
    pub async fn describe(&self, name: &str) -> Result<Vec<InterfaceInfo>, DirectoryError> {
        let infos = self.dir().describe(name.to_owned()).await?;
        let mut out: Vec<InterfaceInfo> = Vec::new();
        for info in infos {
            let more = if !info.known && find_interface(info.id).is_some() {
                InterfaceInfo::with_supertraits(info.id)
            } else {
                vec![info]
            };
            for i in more {
                match out.iter_mut().find(|o| o.id == i.id) {
                    Some(o) if !o.known && i.known => *o = i,
                    Some(_) => {}
                    None => out.push(i),
                }
            }
        }
        Ok(out)
    }
}

/// `node.directory()`: the directory every node embeds.
pub trait DirectoryExt {
    /// This node's own directory (served at [`ObjectId::DIRECTORY`] to
    /// every peer, called here without a socket).
    fn directory(&self) -> DirectoryClient;
}

impl DirectoryExt for Node {
    fn directory(&self) -> DirectoryClient {
        DirectoryClient::local(self)
    }
}
