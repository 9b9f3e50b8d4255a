//! One behaviour suite for the directory, run against every backend:
//!
//! - `embedded`: a node's own directory (`node.directory()`), which other
//!   nodes reach over TCP;
//! - `standalone`: a `farcall directory serve` process;
//! - `nats`: a JetStream key-value bucket on a nats-server started for the
//!   test (skipped with one loud line without nats-server, unless
//!   `FARCALL_REQUIRE_NATS=1`).
//!
//! Every behaviour is one `async fn` taking the [`Backend`]; `suite!` makes
//! one `#[tokio::test]` per behaviour and backend (`embedded::groups`,
//! `nats::groups`, ...), so that nothing works on one backend and silently
//! not on another. Each test has a backend of its own (a fresh node,
//! process or nats-server), so names never collide.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;
mod shapes;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use farcall::directory::DIRECTORY_ENV;
use farcall::directory::{
    Change, DirectoryClient, DirectoryError, DirectoryExt, LateBound, Policy,
};
use farcall::node::Limits;
use farcall::rmi::Interface;
use farcall::{Node, Remote, RemoteError};

use common::nats::NatsServer;
use common::process::{BIN, Served, line_where_async, rerun, run_child, stdin_closed};
use common::wait::{until, within};
use shapes::{Circle, Disc, English, Greeter, Shape, Square, Tile};

// ---------------------------------------------------------------------------
// Interfaces and objects
// ---------------------------------------------------------------------------

/// A server of a late-bound group.
#[farcall::remote]
pub trait Worker {
    /// Who answers; safe to retry anywhere.
    #[remote(idempotent)]
    async fn who(&self) -> Result<String, RemoteError>;
}

struct Named(String);

#[farcall::remote]
impl Worker for Named {
    async fn who(&self) -> Result<String, RemoteError> {
        Ok(self.0.clone())
    }
}

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// Where the directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// The main node's own directory.
    Embedded,
    /// A `farcall directory serve` process.
    Standalone,
    /// A JetStream key-value bucket.
    Nats,
}

/// A directory backend for one test, and the main node that uses it.
/// Everything it started stops when it is dropped.
struct World {
    /// The main node (for `Embedded`, the directory's own).
    node: Node,
    /// The main node's client of the directory.
    dir: DirectoryClient,
    /// Where other nodes and processes reach the directory.
    addr: String,
    /// The limits every node of the test is built with.
    limits: Limits,
    _process: Option<Served>,
    _nats: Option<NatsServer>,
}

impl World {
    /// The backend with the default lease time. `None` when it cannot run
    /// here (NATS without nats-server: already said, loudly).
    async fn start(backend: Backend) -> Option<World> {
        World::with_limits(backend, Limits::default()).await
    }

    /// The backend, and nodes built with `limits` (for the standalone
    /// directory: its lease time too).
    async fn with_limits(backend: Backend, limits: Limits) -> Option<World> {
        let node = listening(&limits).await;
        let (addr, process, nats) = match backend {
            Backend::Embedded => (node.local_addr().unwrap().to_string(), None, None),
            Backend::Standalone => {
                let lease = limits.lease_time.as_secs_f64().to_string();
                let p = Served::start(
                    Command::new(BIN)
                        .args(["directory", "serve", "--listen", "tcp://127.0.0.1:0"])
                        .args(["--lease-time", &lease]),
                )
                .await;
                (p.addr.clone(), Some(p), None)
            }
            Backend::Nats => {
                let nats = tokio::task::spawn_blocking(NatsServer::start)
                    .await
                    .unwrap()?;
                (nats.url(), None, Some(nats))
            }
        };
        let dir = match backend {
            Backend::Embedded => node.directory(),
            _ => within(
                20,
                "connect",
                DirectoryClient::connect_on(&node, addr.as_str()),
            )
            .await
            .unwrap(),
        };
        Some(World {
            node,
            dir,
            addr,
            limits,
            _process: process,
            _nats: nats,
        })
    }

    /// Another node, listening on loopback, with the test's limits.
    async fn node(&self) -> Node {
        listening(&self.limits).await
    }

    /// `node`'s client of the directory.
    async fn client(&self, node: &Node) -> DirectoryClient {
        within(
            20,
            "connect",
            DirectoryClient::connect_on(node, self.addr.as_str()),
        )
        .await
        .unwrap()
    }
}

async fn listening(limits: &Limits) -> Node {
    Node::builder()
        .limits(limits.clone())
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap()
}

/// One `#[tokio::test]` per behaviour and backend, in a module per
/// backend.
macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        suite!(@backend embedded, Embedded; $($behaviour),*);
        suite!(@backend standalone, Standalone; $($behaviour),*);
        #[cfg(feature = "nats")]
        suite!(@backend nats, Nats; $($behaviour),*);
    };
    (@backend $module:ident, $backend:ident; $($behaviour:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::$behaviour(super::Backend::$backend).await;
                }
            )*
        }
    };
}

suite!(
    bind_and_lookup_typed,
    bind_a_taken_name_is_already_bound,
    rebind_replaces,
    groups_keep_their_order,
    unbind_then_not_bound,
    names_are_validated,
    list_by_prefix_in_pages,
    find_by_interface,
    find_by_supertrait,
    watch_sees_binds_and_unbinds,
    describe_lists_methods_and_supertraits,
    a_bound_object_stays_alive_until_unbound,
    late_bound_survives_a_dead_member,
    a_dead_owners_binding_goes_within_a_lease,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async fn next_change(s: &mut farcall::Stream<Change>) -> Change {
    within(10, "a change", s.next())
        .await
        .expect("the stream goes on")
        .expect("a change, not an error")
}

/// The names `dir` lists under `prefix`, in its order.
async fn listed(dir: &DirectoryClient, prefix: &str) -> Vec<String> {
    let entries = dir.list(prefix).await.unwrap();
    entries.into_iter().map(|e| e.name).collect()
}

/// How a directory names interface `I` in a listing: its name when it
/// links `I`, else `#` and its id in hex (a standalone directory does not
/// link the application's interfaces).
fn listed_as<I: ?Sized + Interface>(name: &str) -> bool {
    name == I::descriptor().name || name == format!("#{:016x}", I::descriptor().id)
}

// ---------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------

async fn bind_and_lookup_typed(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let one: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    w.dir.bind("shapes/one", &one).await.unwrap();
    let got: Remote<dyn Circle> = w.dir.lookup("shapes/one").await.unwrap();
    assert_eq!(got, one);
    assert!(got.is_local(), "the node's own object comes back local");
    assert_eq!(got.radius().await.unwrap(), 1.0);
    // Through a supertrait.
    let shape: Remote<dyn Shape> = w.dir.lookup("shapes/one").await.unwrap();
    assert_eq!(shape.area().await.unwrap(), 3.0);
    // Not as another interface.
    match w.dir.lookup::<dyn Square>("shapes/one").await {
        Err(DirectoryError::InterfaceMismatch {
            name,
            expected,
            found,
        }) => {
            assert_eq!(name, "shapes/one");
            assert_eq!(expected, "Square");
            assert_eq!(found, ["Circle"]);
        }
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
    // Another node finds it and calls its owner.
    let reader = w.node().await;
    let rdir = w.client(&reader).await;
    let there: Remote<dyn Circle> = rdir.lookup("shapes/one").await.unwrap();
    assert!(!there.is_local());
    assert_eq!(there.owner(), w.node.id());
    assert_eq!(there.radius().await.unwrap(), 1.0);
    let names = listed(&rdir, "").await;
    assert_eq!(names, ["shapes/one"]);
}

async fn bind_a_taken_name_is_already_bound(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let one: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let two: Remote<dyn Circle> = w.node.export(Disc::new(2.0));
    w.dir.bind("taken", &one).await.unwrap();
    match w.dir.bind("taken", &two).await {
        Err(DirectoryError::AlreadyBound(n)) => assert_eq!(n, "taken"),
        other => panic!("expected AlreadyBound, got {other:?}"),
    }
    // The same object again is taken too; another node sees the first.
    assert!(matches!(
        w.dir.bind("taken", &one).await,
        Err(DirectoryError::AlreadyBound(_))
    ));
    let other = w.node().await;
    let odir = w.client(&other).await;
    let three: Remote<dyn Circle> = other.export(Disc::new(3.0));
    assert!(matches!(
        odir.bind("taken", &three).await,
        Err(DirectoryError::AlreadyBound(_))
    ));
    let got: Remote<dyn Circle> = odir.lookup("taken").await.unwrap();
    assert_eq!(got.radius().await.unwrap(), 1.0);
    assert_eq!(w.dir.lookup_any("taken").await.unwrap().len(), 1);
}

async fn rebind_replaces(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let one: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let two: Remote<dyn Circle> = w.node.export(Disc::new(2.0));
    let tile: Remote<dyn Square> = w.node.export(Tile(3.0));
    // On a free name, rebind binds.
    w.dir.rebind("re", &one).await.unwrap();
    assert_eq!(
        w.dir.lookup::<dyn Circle>("re").await.unwrap(),
        one,
        "rebind on a free name binds"
    );
    w.dir.rebind("re", &two).await.unwrap();
    let got: Remote<dyn Circle> = w.dir.lookup("re").await.unwrap();
    assert_eq!(got.radius().await.unwrap(), 2.0);
    assert_eq!(w.dir.lookup_any("re").await.unwrap().len(), 1);
    // A whole group is replaced by one member, of another interface.
    w.dir.add("re", &one).await.unwrap();
    assert_eq!(w.dir.lookup_any("re").await.unwrap().len(), 2);
    w.dir.rebind("re", &tile).await.unwrap();
    let all = w.dir.lookup_any("re").await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].interface_name(), Some("Square"));
    assert!(matches!(
        w.dir.lookup::<dyn Circle>("re").await,
        Err(DirectoryError::InterfaceMismatch { .. })
    ));
}

async fn groups_keep_their_order(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let discs: Vec<Remote<dyn Circle>> = (1..=3)
        .map(|r| w.node.export(Disc::new(r as f64)))
        .collect();
    let tile: Remote<dyn Square> = w.node.export(Tile(5.0));
    for d in &discs {
        w.dir.add("pool", d).await.unwrap();
    }
    // Adding a member twice changes nothing.
    w.dir.add("pool", &discs[0]).await.unwrap();
    w.dir.add("pool", &tile).await.unwrap();

    let all: Vec<Remote<dyn Circle>> = w.dir.lookup_all("pool").await.unwrap();
    assert_eq!(all, discs, "the circles, in the order they were added");
    let shapes: Vec<Remote<dyn Shape>> = w.dir.lookup_all("pool").await.unwrap();
    assert_eq!(shapes.len(), 4);
    let squares: Vec<Remote<dyn Square>> = w.dir.lookup_all("pool").await.unwrap();
    assert_eq!(squares.len(), 1);
    assert_eq!(squares[0].side().await.unwrap(), 5.0);
    for _ in 0..3 {
        assert_eq!(w.dir.lookup_all::<dyn Circle>("pool").await.unwrap(), discs);
    }
    // Another node sees the same group in the same order.
    let reader = w.node().await;
    let rdir = w.client(&reader).await;
    let theirs: Vec<Remote<dyn Circle>> = rdir.lookup_all("pool").await.unwrap();
    let ids: Vec<_> = theirs.iter().map(|r| (r.owner(), r.id())).collect();
    let want: Vec<_> = discs.iter().map(|r| (r.owner(), r.id())).collect();
    assert_eq!(ids, want);
    let entry = &w.dir.list("pool").await.unwrap()[0];
    assert_eq!(entry.members, 4);
    assert_eq!(entry.interfaces.len(), 2, "{:?}", entry.interfaces);
    assert!(
        listed_as::<dyn Circle>(&entry.interfaces[0]),
        "{:?}",
        entry.interfaces
    );
    assert!(
        listed_as::<dyn Square>(&entry.interfaces[1]),
        "{:?}",
        entry.interfaces
    );

    // remove takes one member out; the rest keep their order.
    w.dir.remove("pool", &discs[1]).await.unwrap();
    let all: Vec<Remote<dyn Circle>> = w.dir.lookup_all("pool").await.unwrap();
    assert_eq!(all, [discs[0].clone(), discs[2].clone()]);
    match w.dir.remove("pool", &discs[1]).await {
        Err(DirectoryError::NoSuchMember { name, object }) => {
            assert_eq!(name, "pool");
            assert_eq!(object, discs[1].id());
        }
        other => panic!("expected NoSuchMember, got {other:?}"),
    }
    // The name goes with its last member; bind works on it again.
    w.dir.remove("pool", &discs[0]).await.unwrap();
    w.dir.remove("pool", &discs[2]).await.unwrap();
    w.dir.remove("pool", &tile).await.unwrap();
    assert!(matches!(
        w.dir.lookup_any("pool").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(w.dir.list("").await.unwrap().is_empty());
    w.dir.bind("pool", &tile).await.unwrap();
}

async fn unbind_then_not_bound(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let one: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    w.dir.bind("gone", &one).await.unwrap();
    let hello: Remote<dyn Greeter> = w.node.export(English);
    w.dir.add("gone", &hello).await.unwrap();
    w.dir.unbind("gone").await.unwrap();
    match w.dir.lookup::<dyn Circle>("gone").await {
        Err(DirectoryError::NotBound(n)) => assert_eq!(n, "gone"),
        other => panic!("expected NotBound, got {other:?}"),
    }
    assert!(matches!(
        w.dir.unbind("gone").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(matches!(
        w.dir.describe("gone").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(matches!(
        w.dir.remove("gone", &one).await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(matches!(
        w.dir.lookup_any("never").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(w.dir.list("").await.unwrap().is_empty());
    // Another node unbinds what this one bound.
    w.dir.bind("gone", &one).await.unwrap();
    let other = w.node().await;
    w.client(&other).await.unbind("gone").await.unwrap();
    assert!(matches!(
        w.dir.lookup_any("gone").await,
        Err(DirectoryError::NotBound(_))
    ));
}

async fn names_are_validated(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let disc: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let long = "x".repeat(256);
    let cases: [(&str, &str); 8] = [
        ("", "empty"),
        ("/a", "leading"),
        ("a/", "trailing"),
        ("a//b", "'//'"),
        ("a b", "' '"),
        ("caf\u{e9}", "'\u{e9}'"),
        ("a:b", "':'"),
        (&long, "256 bytes"),
    ];
    for (name, why) in cases {
        match w.dir.bind(name, &disc).await {
            Err(DirectoryError::InvalidName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(reason.contains(why), "{name:?}: {reason}");
            }
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
        for r in [
            w.dir.lookup_any(name).await.map(drop),
            w.dir.rebind(name, &disc).await,
            w.dir.add(name, &disc).await,
            w.dir.unbind(name).await,
            w.dir.remove(name, &disc).await,
            w.dir.describe(name).await.map(drop),
        ] {
            assert!(
                matches!(r, Err(DirectoryError::InvalidName { .. })),
                "{name:?}: {r:?}"
            );
        }
    }
    // The longest name, every allowed character (dots too), and bad
    // prefixes.
    let max = "y".repeat(255);
    w.dir.bind(&max, &disc).await.unwrap();
    w.dir.bind("A-Z_a.z/0-9", &disc).await.unwrap();
    w.dir.bind("a.b.c", &disc).await.unwrap();
    let names = listed(&w.dir, "").await;
    assert_eq!(names, ["A-Z_a.z/0-9", "a.b.c", max.as_str()]);
    assert_eq!(w.dir.list("a.b").await.unwrap().len(), 1);
    let got: Remote<dyn Circle> = w.dir.lookup("a.b.c").await.unwrap();
    assert_eq!(got, disc);
    assert!(matches!(
        w.dir.list("bad prefix").await,
        Err(DirectoryError::InvalidName { .. })
    ));
    assert!(matches!(
        w.dir.watch("bad prefix").await,
        Err(DirectoryError::InvalidName { .. })
    ));
    let e = w.dir.bind("a b", &disc).await.unwrap_err().to_string();
    assert!(e.starts_with("invalid name \"a b\""), "{e}");
}

async fn list_by_prefix_in_pages(b: Backend) {
    const N: usize = 250;
    let Some(w) = World::start(b).await else {
        return;
    };
    let disc: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let any = disc.clone().into_any();
    // Bound out of order; other prefixes around them.
    for i in (0..N).rev() {
        w.dir
            .bind_any(&format!("p/{i:03}"), any.clone())
            .await
            .unwrap();
    }
    w.dir.bind("o/before", &disc).await.unwrap();
    w.dir.bind("q/after", &disc).await.unwrap();
    w.dir.bind("p", &disc).await.unwrap();

    let mut after: Option<String> = None;
    let mut sizes = Vec::new();
    let mut names: Vec<String> = Vec::new();
    loop {
        let page = w.dir.list_page("p/", after.clone(), 100).await.unwrap();
        sizes.push(page.entries.len());
        for e in &page.entries {
            assert_eq!(e.members, 1);
            assert_eq!(e.interfaces.len(), 1);
            assert!(listed_as::<dyn Circle>(&e.interfaces[0]), "{e:?}");
        }
        names.extend(page.entries.into_iter().map(|e| e.name));
        match page.next {
            Some(n) => {
                assert_eq!(Some(&n), names.last(), "next is the last name given");
                after = Some(n);
            }
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    let want: Vec<String> = (0..N).map(|i| format!("p/{i:03}")).collect();
    assert_eq!(names, want, "every name once, sorted");

    // Through the client's own paging, from another node.
    let reader = w.node().await;
    let rdir = w.client(&reader).await;
    assert_eq!(rdir.list("p/").await.unwrap().len(), N);
    assert_eq!(rdir.list("p").await.unwrap().len(), N + 1);
    assert_eq!(rdir.list("").await.unwrap().len(), N + 3);
    let some = rdir.list("p/1").await.unwrap();
    assert_eq!(some.len(), 100);
    assert!(some.iter().all(|e| e.name.starts_with("p/1")));
    let page = rdir.list_page("p/", Some("p/099".into()), 3).await.unwrap();
    let names: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["p/100", "p/101", "p/102"]);
    assert_eq!(page.next.as_deref(), Some("p/102"));
    let last = rdir
        .list_page("p/", Some("p/247".into()), 100)
        .await
        .unwrap();
    assert_eq!(last.entries.len(), 2);
    assert_eq!(last.next, None);
    assert!(rdir.list("z/").await.unwrap().is_empty());
}

/// Binds a disc, a tile, a greeter and a group of all three.
async fn shapes_and_more(
    w: &World,
) -> (Remote<dyn Circle>, Remote<dyn Square>, Remote<dyn Greeter>) {
    let disc: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let tile: Remote<dyn Square> = w.node.export(Tile(2.0));
    let hello: Remote<dyn Greeter> = w.node.export(English);
    w.dir.bind("b/disc", &disc).await.unwrap();
    w.dir.bind("a/tile", &tile).await.unwrap();
    w.dir.bind("c/hello", &hello).await.unwrap();
    w.dir.add("d/both", &tile).await.unwrap();
    w.dir.add("d/both", &hello).await.unwrap();
    w.dir.add("d/both", &disc).await.unwrap();
    (disc, tile, hello)
}

async fn find_by_interface(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let (disc, tile, _) = shapes_and_more(&w).await;
    let circles: Vec<(String, Remote<dyn Circle>)> = w.dir.find().await.unwrap();
    let names: Vec<&str> = circles.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b/disc", "d/both"]);
    assert!(circles.iter().all(|(_, c)| *c == disc));
    let squares: Vec<(String, Remote<dyn Square>)> = w.dir.find().await.unwrap();
    assert!(squares.iter().all(|(_, s)| *s == tile));
    assert_eq!(squares.len(), 2);
    // From another node, which calls what it finds.
    let reader = w.node().await;
    let greeters: Vec<(String, Remote<dyn Greeter>)> =
        w.client(&reader).await.find().await.unwrap();
    let names: Vec<&str> = greeters.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c/hello", "d/both"]);
    for (_, g) in &greeters {
        assert_eq!(g.greet("Ada".into()).await.unwrap(), "hello, Ada");
    }
}

async fn find_by_supertrait(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    shapes_and_more(&w).await;
    // Circles and squares are shapes: found when asking for shapes.
    let shapes: Vec<(String, Remote<dyn Shape>)> = w.dir.find().await.unwrap();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["a/tile", "b/disc", "d/both", "d/both"],
        "{b:?}: find::<dyn Shape>() finds the objects of its subtraits"
    );
    let mut total = 0.0;
    for (_, s) in &shapes {
        total += s.area().await.unwrap();
    }
    assert_eq!(total, 2.0 * (4.0 + 3.0));
}

async fn watch_sees_binds_and_unbinds(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let client = w.node().await;
    let rdir = w.client(&client).await;
    // One watcher on the main node, one on another.
    let mut mine = w.dir.watch("app/").await.unwrap();
    let mut theirs = rdir.watch("app/").await.unwrap();

    let one: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    let two: Remote<dyn Square> = client.export(Tile(2.0));
    w.dir.bind("other/x", &one).await.unwrap(); // not watched
    w.dir.bind("app/one", &one).await.unwrap();
    rdir.add("app/one", &two).await.unwrap();
    w.dir.rebind("app/one", &two).await.unwrap();
    rdir.remove("app/one", &two).await.unwrap();
    rdir.add("app/one", &one).await.unwrap();
    rdir.unbind("app/one").await.unwrap();

    let bound = |owner, object, interface| Change::Bound {
        name: "app/one".into(),
        owner,
        object,
        interface,
    };
    let unbound = |owner, object| Change::Unbound {
        name: "app/one".into(),
        owner,
        object,
    };
    let (n1, o1, i1) = (w.node.id(), one.id(), one.interface_id());
    let (n2, o2, i2) = (client.id(), two.id(), two.interface_id());
    let expected = [
        bound(n1, o1, i1),
        bound(n2, o2, i2),
        // rebind: every old member leaves, then the new one arrives.
        unbound(n1, o1),
        unbound(n2, o2),
        bound(n2, o2, i2),
        // remove, add, unbind.
        unbound(n2, o2),
        bound(n1, o1, i1),
        unbound(n1, o1),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&next_change(&mut mine).await, want, "{b:?}: change {i}");
        assert_eq!(&next_change(&mut theirs).await, want, "{b:?}: change {i}");
    }
    // Nothing else came.
    let more = tokio::time::timeout(Duration::from_millis(200), mine.next()).await;
    assert!(more.is_err(), "{b:?}: an extra change: {more:?}");
    // A dropped watcher is forgotten; the directory goes on.
    drop(theirs);
    w.dir.bind("app/two", &one).await.unwrap();
    assert_eq!(next_change(&mut mine).await.name(), "app/two");
}

async fn describe_lists_methods_and_supertraits(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let disc: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    w.dir.bind("disc", &disc).await.unwrap();
    let reader = w.node().await;
    let rdir = w.client(&reader).await;
    for dir in [&w.dir, &rdir] {
        shapes::assert_describes_circle(&dir.describe("disc").await.unwrap());
    }
    // A group: each interface once, in the order of the members.
    let hello: Remote<dyn Greeter> = w.node.export(English);
    let other: Remote<dyn Circle> = w.node.export(Disc::new(2.0));
    w.dir.add("disc", &hello).await.unwrap();
    w.dir.add("disc", &other).await.unwrap();
    let infos = rdir.describe("disc").await.unwrap();
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Circle", "Shape", "Greeter"]);
}

async fn a_bound_object_stays_alive_until_unbound(b: Backend) {
    // A short lease: a reference its owner sends (the embedded directory
    // answering a lookup) keeps the object for one lease time.
    let mut limits = Limits::default();
    limits.lease_time = LEASE;
    let Some(w) = World::with_limits(b, limits).await else {
        return;
    };
    let d = Disc::new(1.0);
    let drops = d.drops.clone();
    {
        let disc: Remote<dyn Circle> = w.node.export(d);
        w.dir.bind("kept", &disc).await.unwrap();
    }
    // Past a few renewals: the directory's hold keeps it exported.
    tokio::time::sleep(2 * LEASE).await;
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "{b:?}: the binding holds it"
    );
    let reader = w.node().await;
    let there: Remote<dyn Circle> = w.client(&reader).await.lookup("kept").await.unwrap();
    assert_eq!(there.radius().await.unwrap(), 1.0);
    drop(there);
    w.dir.unbind("kept").await.unwrap();
    until(30, "the unbound disc is freed", || async {
        drops.load(Ordering::SeqCst) == 1
    })
    .await;
}

async fn late_bound_survives_a_dead_member(b: Backend) {
    let Some(w) = World::start(b).await else {
        return;
    };
    let mut servers = Vec::new();
    for i in 0..3 {
        let s = w.node().await;
        let worker: Remote<dyn Worker> = s.export(Named(format!("server {i}")));
        let dir = w.client(&s).await;
        dir.add("workers", &worker).await.unwrap();
        servers.push((s, dir));
    }
    let client = w.node().await;
    let dir = w.client(&client).await;
    let late: LateBound<dyn Worker> = dir.late_bound(&client, "workers", Policy::RoundRobin);
    let mut seen = HashSet::new();
    for _ in 0..9 {
        seen.insert(late.who().await.unwrap());
    }
    assert_eq!(seen.len(), 3, "{b:?}: {seen:?}");

    // One server dies (its node and its directory client) during the
    // calls; every idempotent call still succeeds.
    let calls = {
        let late = late.clone();
        tokio::spawn(async move {
            let mut by: HashMap<String, u32> = HashMap::new();
            for i in 0..300u32 {
                let who = late
                    .who()
                    .await
                    .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
                *by.entry(who).or_default() += 1;
            }
            by
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (dead, dead_dir) = servers.remove(1);
    drop(dead_dir);
    dead.shutdown().await;
    let by = within(60, "300 calls", calls).await.unwrap();
    assert_eq!(by.values().sum::<u32>(), 300);
    assert!(
        by.contains_key("server 0") && by.contains_key("server 2"),
        "{b:?}: {by:?}"
    );
    println!("directory suite ({b:?}): late-bound answers by server: {by:?}");
}

// --- Leases: a binding vanishes when the process that made it dies --------

const CHILD_ENV: &str = "FARCALL_SUITE_CHILD";
const LEASE_ENV: &str = "FARCALL_SUITE_LEASE_MS";
const BOUND_LINE: &str = "FARCALL_SUITE_BOUND";
/// The lease of the lease test: short, yet several heartbeats long.
const LEASE: Duration = Duration::from_millis(1000);

/// The binding process of `a_dead_owners_binding_goes_within_a_lease`:
/// does nothing unless started by it (the test binary runs itself).
#[test]
#[ignore = "the child process of a_dead_owners_binding_goes_within_a_lease"]
fn child_binder() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let lease: u64 = std::env::var(LEASE_ENV).unwrap().parse().unwrap();
    run_child(async {
        let mut limits = Limits::default();
        limits.lease_time = Duration::from_millis(lease);
        let node = listening(&limits).await;
        // The directory named by FARCALL_DIRECTORY: the parent's.
        let dir = DirectoryClient::from_env_on(&node).await.unwrap();
        let disc: Remote<dyn Circle> = node.export(Disc::new(7.0));
        dir.bind("leased/disc", &disc).await.unwrap();
        dir.add("leased/group", &disc).await.unwrap();
        drop(disc); // the binding keeps it
        println!("{BOUND_LINE}");
        stdin_closed().await;
        node.shutdown().await;
    });
}

async fn a_dead_owners_binding_goes_within_a_lease(b: Backend) {
    let mut limits = Limits::default();
    limits.lease_time = LEASE;
    let Some(w) = World::with_limits(b, limits).await else {
        return;
    };
    let mine: Remote<dyn Circle> = w.node.export(Disc::new(1.0));
    w.dir.add("leased/group", &mine).await.unwrap();
    let mut changes = w.dir.watch("leased/").await.unwrap();

    let lease = LEASE.as_millis().to_string();
    let env = [
        (CHILD_ENV, "1"),
        (LEASE_ENV, &lease),
        (DIRECTORY_ENV, &w.addr),
    ];
    let mut child = rerun("child_binder", &env);
    line_where_async(child.stdout(), "the child binds", |line| {
        line.contains(BOUND_LINE).then_some(())
    })
    .await;

    let disc: Remote<dyn Circle> = w.dir.lookup("leased/disc").await.unwrap();
    assert_eq!(disc.radius().await.unwrap(), 7.0);
    let child_node = disc.owner();
    drop(disc);
    // Alive and renewed, it stays past several lease times.
    tokio::time::sleep(3 * LEASE).await;
    let disc: Remote<dyn Circle> = w.dir.lookup("leased/disc").await.unwrap();
    assert_eq!(disc.radius().await.unwrap(), 7.0);
    drop(disc);
    assert_eq!(w.dir.lookup_any("leased/group").await.unwrap().len(), 2);

    child.0.kill().unwrap();
    let killed = Instant::now();
    until(60, "the dead process's binding goes", || async {
        matches!(
            w.dir.lookup_any("leased/disc").await,
            Err(DirectoryError::NotBound(_))
        )
    })
    .await;
    println!(
        "directory suite ({b:?}): a killed binder's binding went {:.0} ms after the kill (lease time {} ms)",
        killed.elapsed().as_secs_f64() * 1e3,
        LEASE.as_millis()
    );
    // The group keeps its live member only.
    until(30, "the dead member leaves the group", || async {
        w.dir.lookup_any("leased/group").await.unwrap().len() == 1
    })
    .await;
    let left: Remote<dyn Circle> = w.dir.lookup("leased/group").await.unwrap();
    assert_eq!(left, mine);
    let names = listed(&w.dir, "leased/").await;
    assert_eq!(names, ["leased/group"]);
    // Watchers heard of the bindings and of their end.
    let mut saw = Vec::new();
    while saw.len() < 4 {
        saw.push(next_change(&mut changes).await);
    }
    assert!(
        saw[..2]
            .iter()
            .all(|c| matches!(c, Change::Bound { owner, .. } if *owner == child_node)),
        "{b:?}: {saw:?}"
    );
    let mut gone: Vec<&str> = saw[2..]
        .iter()
        .map(|c| match c {
            Change::Unbound { name, owner, .. } if *owner == child_node => name.as_str(),
            other => panic!("{b:?}: expected the child's Unbound, got {other:?}"),
        })
        .collect();
    gone.sort();
    assert_eq!(gone, ["leased/disc", "leased/group"]);
}
