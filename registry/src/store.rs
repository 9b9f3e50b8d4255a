//! The directory's bindings on disk: [`DirectoryStore`].
//!
//! A directory keeps its bindings in memory; a standalone directory that
//! must survive a restart keeps them in a folder too. The file is
//! `DIR/bindings.json`, one JSON object naming each binding's members by
//! owner, object, interface and addresses:
//!
//! ```json
//! { "version": 1,
//!   "bindings": { "shop/cart": [ { "owner": "…", "object": "…",
//!                                  "interface": "…", "addrs": ["tcp://127.0.0.1:7000"] } ] } }
//! ```
//!
//! Every save writes a temporary file, syncs it, renames it over the old
//! one and syncs the folder, so a crash at any moment leaves the old file
//! or the new one, whole. [`DirectoryStore::keep`] ties a store to a
//! node's directory: it binds again what was saved, then saves after every
//! change.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use farcall_runtime::rmi::{AnyRemote, WireRef};
use farcall_runtime::{Address, Node, NodeId, ObjectId, Stream};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::client::{DirectoryClient, DirectoryExt};
use crate::error::DirectoryError;
use crate::protocol::Change;

/// The bindings as saved: each name with its members, in order.
pub type SavedBindings = BTreeMap<String, Vec<WireRef>>;

/// The version of the file format this build reads and writes.
const VERSION: u64 = 1;

/// The file's name inside the store's folder.
const FILE: &str = "bindings.json";

/// How long a burst of changes may settle before one save takes them all.
const SETTLE: Duration = Duration::from_millis(20);

/// How long to wait before watching again after a watch broke.
const REWATCH: Duration = Duration::from_millis(100);

/// Why the bindings could not be read, saved or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryStoreError {
    /// The folder or the file could not be created, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a bindings file this build can read.
    #[error("{}: {why}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The directory refused to be read or watched.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// A folder that holds a directory's bindings (`DIR/bindings.json`).
///
/// ```no_run
/// use farcall_registry::DirectoryStore;
/// use farcall_runtime::Node;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = Node::listen("tcp://127.0.0.1:0").await?;
/// let store = DirectoryStore::open("/var/lib/farcall")?;
/// // Binds again what was saved, then saves after every change.
/// let kept = store.keep(&node, |e| eprintln!("saving the bindings: {e}")).await?;
/// for (name, why) in kept.not_restored() {
///     eprintln!("not restoring a member of {name}: {why}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DirectoryStore {
    folder: PathBuf,
    file: PathBuf,
}

impl DirectoryStore {
    /// Opens (and creates, if need be) the folder `folder`.
    pub fn open(folder: impl AsRef<Path>) -> Result<DirectoryStore, DirectoryStoreError> {
        let folder = folder.as_ref().to_path_buf();
        std::fs::create_dir_all(&folder).map_err(|source| DirectoryStoreError::Io {
            path: folder.clone(),
            source,
        })?;
        let file = folder.join(FILE);
        Ok(DirectoryStore { folder, file })
    }

    /// The file the bindings are kept in.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The bindings saved last; none if nothing was ever saved.
    pub fn load(&self) -> Result<SavedBindings, DirectoryStoreError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SavedBindings::new()),
            Err(source) => return Err(self.io(source)),
        };
        decode(&text).map_err(|why| DirectoryStoreError::Corrupt {
            path: self.file.clone(),
            why,
        })
    }

    /// Saves `bindings` in place of what was saved before: written to a
    /// temporary file, synced, renamed over the old file, and the folder
    /// synced, so a crash leaves one file or the other, whole.
    pub fn save(&self, bindings: &SavedBindings) -> Result<(), DirectoryStoreError> {
        let mut text = serde_json::to_string_pretty(&encode(bindings))
            .expect("a map of strings always serializes");
        text.push('\n');
        let tmp = self.file.with_extension("json.tmp");
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        written
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|source| self.io(source))?;
        sync_folder(&self.folder).map_err(|source| DirectoryStoreError::Io {
            path: self.folder.clone(),
            source,
        })
    }

    /// Keeps `node`'s directory in this store: binds again what was
    /// saved (a member that cannot be added is left out and listed in
    /// [`Kept::not_restored`]), saves what is bound now, then saves after
    /// every change until the returned [`Kept`] is dropped. A save that
    /// fails later is passed to `on_failure`, and the next change tries
    /// again.
    pub async fn keep(
        self,
        node: &Node,
        on_failure: impl Fn(&DirectoryStoreError) + Send + 'static,
    ) -> Result<Kept, DirectoryStoreError> {
        let saved = self.load()?;
        let dir = node.directory();
        // Watch before restoring, so that nothing bound meanwhile is missed.
        let changes = dir.watch("").await?;
        let mut names = BTreeSet::new();
        let mut not_restored = Vec::new();
        for (name, wires) in saved {
            for wire in wires {
                let r = AnyRemote::bind(node, wire, None);
                if let Err(e) = dir.add_any(&name, r).await {
                    not_restored.push((name.clone(), e));
                }
            }
            names.insert(name);
        }
        names.extend(bound_names(&dir).await?);
        let mut state = SavedBindings::new();
        refresh(&dir, &mut state, names).await?;
        self.save(&state)?;
        let task = tokio::spawn(persist(dir, self, state, changes, on_failure));
        Ok(Kept { task, not_restored })
    }

    fn io(&self, source: std::io::Error) -> DirectoryStoreError {
        DirectoryStoreError::Io {
            path: self.file.clone(),
            source,
        }
    }
}

/// A directory kept in a [`DirectoryStore`]; saving stops when it is
/// dropped.
#[derive(Debug)]
pub struct Kept {
    task: JoinHandle<()>,
    not_restored: Vec<(String, DirectoryError)>,
}

impl Kept {
    /// The saved members that could not be bound again, by name, with
    /// the reason.
    pub fn not_restored(&self) -> &[(String, DirectoryError)] {
        &self.not_restored
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(unix)]
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    File::open(folder)?.sync_all()
}

#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> std::io::Result<()> {
    // Folders cannot be opened for syncing here; the rename is as
    // durable as the platform makes it.
    Ok(())
}

/// Every name bound now.
async fn bound_names(dir: &DirectoryClient) -> Result<BTreeSet<String>, DirectoryError> {
    Ok(dir.list("").await?.into_iter().map(|e| e.name).collect())
}

/// Reads the members of `names` into `state` again (a name no longer
/// bound leaves it).
async fn refresh(
    dir: &DirectoryClient,
    state: &mut SavedBindings,
    names: BTreeSet<String>,
) -> Result<(), DirectoryError> {
    for name in names {
        match dir.lookup_any(&name).await {
            Ok(members) => {
                state.insert(name, members.iter().map(|r| r.wire().clone()).collect());
            }
            Err(DirectoryError::NotBound(_)) => {
                state.remove(&name);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Saves the bindings after every change (changes coming together are
/// saved once). A watch that breaks (it fell behind) is started again and
/// everything read anew.
async fn persist(
    dir: DirectoryClient,
    store: DirectoryStore,
    mut state: SavedBindings,
    mut changes: Stream<Change>,
    on_failure: impl Fn(&DirectoryStoreError),
) {
    loop {
        let mut dirty = BTreeSet::new();
        let mut rescan = !note(changes.next().await, &mut dirty);
        if !rescan {
            // Let a burst of changes settle, then take what has come.
            tokio::time::sleep(SETTLE).await;
            while let Ok(next) = tokio::time::timeout(Duration::ZERO, changes.next()).await {
                if !note(next, &mut dirty) {
                    rescan = true;
                    break;
                }
            }
        }
        let result = if rescan {
            // Not in a tight loop if watching keeps failing.
            tokio::time::sleep(REWATCH).await;
            match dir.watch("").await {
                Ok(s) => changes = s,
                Err(e) => {
                    on_failure(&DirectoryStoreError::Directory(e));
                    continue;
                }
            }
            let mut fresh = SavedBindings::new();
            match bound_names(&dir).await {
                Ok(names) => refresh(&dir, &mut fresh, names)
                    .await
                    .map(|()| state = fresh),
                Err(e) => Err(e),
            }
        } else {
            refresh(&dir, &mut state, dirty).await
        };
        if let Err(e) = result
            .map_err(DirectoryStoreError::from)
            .and_then(|()| store.save(&state))
        {
            on_failure(&e);
        }
    }
}

/// Adds the name a change touched to `dirty`; false if the watch ended
/// or broke instead.
fn note(
    next: Option<Result<Change, farcall_runtime::RemoteError>>,
    dirty: &mut BTreeSet<String>,
) -> bool {
    match next {
        Some(Ok(c)) => {
            dirty.insert(c.name().to_owned());
            true
        }
        _ => false,
    }
}

/// The file's form.
#[derive(Serialize, Deserialize)]
struct File1 {
    version: u64,
    bindings: BTreeMap<String, Vec<Member>>,
}

/// One member, ids in hexadecimal.
#[derive(Serialize, Deserialize)]
struct Member {
    owner: String,
    object: String,
    interface: String,
    addrs: Vec<String>,
}

fn encode(bindings: &SavedBindings) -> File1 {
    let bindings = bindings
        .iter()
        .map(|(name, members)| {
            let members = members
                .iter()
                .map(|w| Member {
                    owner: format!("{:032x}", w.owner.0),
                    object: format!("{:032x}", w.object.0),
                    interface: format!("{:016x}", w.interface),
                    addrs: w.addrs.iter().map(ToString::to_string).collect(),
                })
                .collect();
            (name.clone(), members)
        })
        .collect();
    File1 {
        version: VERSION,
        bindings,
    }
}

fn decode(text: &str) -> Result<SavedBindings, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("version").and_then(serde_json::Value::as_u64) != Some(VERSION) {
        return Err(format!("not a bindings file of version {VERSION}"));
    }
    let file: File1 = serde_json::from_value(v).map_err(|e| format!("not a bindings file: {e}"))?;
    let mut out = SavedBindings::new();
    for (name, members) in file.bindings {
        let wires = members
            .iter()
            .map(member)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| format!("binding `{name}`: {why}"))?;
        out.insert(name, wires);
    }
    Ok(out)
}

fn member(m: &Member) -> Result<WireRef, String> {
    let hex = |key: &str, s: &str| -> Result<u128, String> {
        u128::from_str_radix(s, 16).map_err(|_| format!("`{key}` is not hexadecimal: `{s}`"))
    };
    let interface =
        u64::try_from(hex("interface", &m.interface)?).map_err(|_| "`interface` is too large")?;
    let addrs = m
        .addrs
        .iter()
        .map(|a| a.parse::<Address>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WireRef {
        owner: NodeId(hex("owner", &m.owner)?),
        addrs,
        object: ObjectId(hex("object", &m.object)?),
        interface,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_folder(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!(
            "farcall-store-{tag}-{}-{nanos}",
            std::process::id()
        ))
    }

    fn one_binding() -> SavedBindings {
        let wire = WireRef {
            owner: NodeId(0x1234),
            addrs: vec!["tcp://127.0.0.1:7000".parse().unwrap()],
            object: ObjectId(0xabcd),
            interface: 0xfeed,
        };
        SavedBindings::from([("shop/cart".to_owned(), vec![wire])])
    }

    #[test]
    fn what_is_saved_loads_again_and_no_temporary_file_is_left() {
        let folder = temp_folder("roundtrip");
        let store = DirectoryStore::open(&folder).unwrap();
        assert!(store.load().unwrap().is_empty());
        let saved = one_binding();
        store.save(&saved).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        let w = &loaded["shop/cart"][0];
        assert_eq!(
            (w.owner, w.object, w.interface),
            (NodeId(0x1234), ObjectId(0xabcd), 0xfeed)
        );
        assert_eq!(w.addrs[0].to_string(), "tcp://127.0.0.1:7000");
        let names: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["bindings.json"]);
        std::fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn saved_bindings_round_trip() {
        let mut saved = SavedBindings::new();
        saved.insert(
            "shop/cart".into(),
            vec![WireRef {
                owner: NodeId(u128::MAX - 5),
                addrs: vec!["tcp://127.0.0.1:7400".parse().unwrap()],
                object: ObjectId(1 << 100),
                interface: u64::MAX - 1,
            }],
        );
        let text = serde_json::to_string(&encode(&saved)).unwrap();
        assert_eq!(decode(&text).unwrap(), saved);
        assert!(decode("{}").is_err());
        assert!(decode("not json").is_err());
    }

    #[test]
    fn a_file_that_is_not_a_bindings_file_is_refused_with_its_path() {
        let folder = temp_folder("corrupt");
        let store = DirectoryStore::open(&folder).unwrap();
        for (text, why) in [
            ("{ not json", "not JSON"),
            (
                "{\"version\": 7, \"bindings\": {}}",
                "not a bindings file of version 1",
            ),
            (
                "{\"version\": 1, \"bindings\": {\"a\": [{\"owner\": \"zz\", \"object\": \"1\", \"interface\": \"1\", \"addrs\": []}]}}",
                "binding `a`: `owner` is not hexadecimal: `zz`",
            ),
        ] {
            std::fs::write(store.path(), text).unwrap();
            let e = store.load().unwrap_err().to_string();
            assert!(e.contains("bindings.json") && e.contains(why), "{e}");
        }
        std::fs::remove_dir_all(folder).unwrap();
    }

    use farcall_runtime::{Remote, RemoteError};

    #[farcall_macros::remote(crate = "::farcall_runtime")]
    pub trait Probe {
        async fn ping(&self) -> Result<u32, RemoteError>;
    }

    struct Answer;

    #[farcall_macros::remote(crate = "::farcall_runtime")]
    impl Probe for Answer {
        async fn ping(&self) -> Result<u32, RemoteError> {
            Ok(42)
        }
    }

    #[tokio::test]
    async fn a_kept_directory_is_saved_after_a_change_and_restored_on_another_node() {
        let folder = temp_folder("keep");
        let owner = Node::listen("mem://store-owner").await.unwrap();
        let probe: Remote<dyn Probe> = owner.export(Answer);

        let first = Node::new();
        let kept = DirectoryStore::open(&folder)
            .unwrap()
            .keep(&first, |e| panic!("{e}"))
            .await
            .unwrap();
        first.directory().bind("kept/one", &probe).await.unwrap();
        let store = DirectoryStore::open(&folder).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !store.load().unwrap().contains_key("kept/one") {
            assert!(std::time::Instant::now() < deadline, "never saved");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(kept);

        // Another node restores the binding, and the reference works.
        let second = Node::new();
        let kept = store.keep(&second, |e| panic!("{e}")).await.unwrap();
        assert!(kept.not_restored().is_empty());
        let found: Remote<dyn Probe> = second.directory().lookup("kept/one").await.unwrap();
        assert_eq!(found.ping().await.unwrap(), 42);
        drop(kept);
        std::fs::remove_dir_all(folder).unwrap();
    }
}
