//! The directory (late binding) through the facade: every operation, on a
//! node's own directory and on another node's over TCP; groups; name
//! validation; `NotBound` and `InterfaceMismatch`; find by supertrait;
//! paging over 100,000 bindings; watch; describe; leases (a bound object
//! stays alive; a binding vanishes when the process that made it is
//! killed). Who may write is in `directory_writes.rs`, the behaviours
//! every backend shares in `directory_backends.rs`.
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;
mod shapes;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use farcall::__private::codec;
use farcall::directory::{Change, DirectoryClient, DirectoryError, DirectoryExt};
use farcall::directory::{DIRECTORY_ENV, MAX_PAGE, validate_name};
use farcall::node::Limits;
use farcall::rmi::ObjectId;
use farcall::{Node, Remote};

use common::process::{line_where_async, rerun, run_child, stdin_closed};
use common::wait::{until, within};
use shapes::{Circle, Disc, English, Greeter, Shape, Square, Tile};

// ---------------------------------------------------------------------------
// 1. Every operation, on the node's own directory
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_lookup_rebind_unbind_on_the_local_directory() {
    let node = Node::new();
    let dir = node.directory();
    let one: Remote<dyn Circle> = node.export(Disc::new(1.0));
    let two: Remote<dyn Circle> = node.export(Disc::new(2.0));

    dir.bind("shapes/one", &one).await.unwrap();
    let got: Remote<dyn Circle> = dir.lookup("shapes/one").await.unwrap();
    assert_eq!(got, one);
    assert!(got.is_local(), "the node's own object comes back local");
    assert_eq!(got.radius().await.unwrap(), 1.0);
    // Looked up through a supertrait.
    let shape: Remote<dyn Shape> = dir.lookup("shapes/one").await.unwrap();
    assert_eq!(shape.area().await.unwrap(), 3.0);

    // bind fails on a taken name; rebind replaces.
    match dir.bind("shapes/one", &two).await {
        Err(DirectoryError::AlreadyBound(n)) => assert_eq!(n, "shapes/one"),
        other => panic!("expected AlreadyBound, got {other:?}"),
    }
    dir.rebind("shapes/one", &two).await.unwrap();
    let got: Remote<dyn Circle> = dir.lookup("shapes/one").await.unwrap();
    assert_eq!(got.radius().await.unwrap(), 2.0);
    assert_eq!(dir.lookup_any("shapes/one").await.unwrap().len(), 1);

    // unbind, then NotBound everywhere.
    dir.unbind("shapes/one").await.unwrap();
    match dir.lookup::<dyn Circle>("shapes/one").await {
        Err(DirectoryError::NotBound(n)) => assert_eq!(n, "shapes/one"),
        other => panic!("expected NotBound, got {other:?}"),
    }
    assert!(matches!(
        dir.unbind("shapes/one").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(matches!(
        dir.describe("shapes/one").await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(matches!(
        dir.remove("shapes/one", &one).await,
        Err(DirectoryError::NotBound(_))
    ));
    assert!(dir.list("").await.unwrap().is_empty());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_keep_their_order() {
    let node = Node::new();
    let dir = node.directory();
    let discs: Vec<Remote<dyn Circle>> =
        (1..=3).map(|r| node.export(Disc::new(r as f64))).collect();
    let tile: Remote<dyn Square> = node.export(Tile(5.0));
    for d in &discs {
        dir.add("pool", d).await.unwrap();
    }
    // Adding a member twice changes nothing.
    dir.add("pool", &discs[0]).await.unwrap();
    dir.add("pool", &tile).await.unwrap();

    let all: Vec<Remote<dyn Circle>> = dir.lookup_all("pool").await.unwrap();
    assert_eq!(all, discs, "the circles, in the order they were added");
    let shapes: Vec<Remote<dyn Shape>> = dir.lookup_all("pool").await.unwrap();
    assert_eq!(shapes.len(), 4);
    let squares: Vec<Remote<dyn Square>> = dir.lookup_all("pool").await.unwrap();
    assert_eq!(squares.len(), 1);
    assert_eq!(squares[0].side().await.unwrap(), 5.0);
    // The same order on every lookup.
    for _ in 0..3 {
        assert_eq!(dir.lookup_all::<dyn Circle>("pool").await.unwrap(), discs);
    }
    let entry = &dir.list("pool").await.unwrap()[0];
    assert_eq!(entry.members, 4);
    assert_eq!(entry.interfaces, ["Circle", "Square"]);

    // remove takes one member out; the rest keep their order.
    dir.remove("pool", &discs[1]).await.unwrap();
    let all: Vec<Remote<dyn Circle>> = dir.lookup_all("pool").await.unwrap();
    assert_eq!(all, [discs[0].clone(), discs[2].clone()]);
    match dir.remove("pool", &discs[1]).await {
        Err(DirectoryError::NoSuchMember { name, object }) => {
            assert_eq!(name, "pool");
            assert_eq!(object, discs[1].id());
        }
        other => panic!("expected NoSuchMember, got {other:?}"),
    }
    // The name goes with its last member.
    dir.remove("pool", &discs[0]).await.unwrap();
    dir.remove("pool", &discs[2]).await.unwrap();
    dir.remove("pool", &tile).await.unwrap();
    assert!(matches!(
        dir.lookup_any("pool").await,
        Err(DirectoryError::NotBound(_))
    ));
    // bind after add on a free name works again.
    dir.bind("pool", &tile).await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_validated() {
    let node = Node::new();
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
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
        match dir.bind(name, &disc).await {
            Err(DirectoryError::InvalidName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(reason.contains(why), "{name:?}: {reason}");
            }
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
        assert!(matches!(
            dir.lookup_any(name).await,
            Err(DirectoryError::InvalidName { .. })
        ));
        assert!(validate_name(name).is_err());
    }
    // The longest name, every allowed character, and a bad prefix.
    let max = "y".repeat(255);
    dir.bind(&max, &disc).await.unwrap();
    dir.bind("A-Z_a.z/0-9", &disc).await.unwrap();
    assert_eq!(dir.list("").await.unwrap().len(), 2);
    assert!(matches!(
        dir.list("bad prefix").await,
        Err(DirectoryError::InvalidName { .. })
    ));
    assert!(matches!(
        dir.watch("bad prefix").await,
        Err(DirectoryError::InvalidName { .. })
    ));
    let e = dir.bind("a b", &disc).await.unwrap_err().to_string();
    assert!(e.starts_with("invalid name \"a b\""), "{e}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_as_the_wrong_interface_is_a_mismatch() {
    let node = Node::new();
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
    let hello: Remote<dyn Greeter> = node.export(English);
    dir.add("mixed", &disc).await.unwrap();
    dir.add("mixed", &hello).await.unwrap();
    match dir.lookup::<dyn Square>("mixed").await {
        Err(DirectoryError::InterfaceMismatch {
            name,
            expected,
            found,
        }) => {
            assert_eq!(name, "mixed");
            assert_eq!(expected, "Square");
            assert_eq!(found, ["Circle", "Greeter"]);
        }
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
    assert!(matches!(
        dir.lookup_all::<dyn Square>("mixed").await,
        Err(DirectoryError::InterfaceMismatch { .. })
    ));
    // Each interface finds its own member.
    let g: Remote<dyn Greeter> = dir.lookup("mixed").await.unwrap();
    assert_eq!(g.greet("Ada".into()).await.unwrap(), "hello, Ada");
    let s: Remote<dyn Shape> = dir.lookup("mixed").await.unwrap();
    assert_eq!(s.area().await.unwrap(), 3.0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_by_interface_and_supertrait() {
    let node = Node::new();
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
    let tile: Remote<dyn Square> = node.export(Tile(2.0));
    let hello: Remote<dyn Greeter> = node.export(English);
    dir.bind("b/disc", &disc).await.unwrap();
    dir.bind("a/tile", &tile).await.unwrap();
    dir.bind("c/hello", &hello).await.unwrap();
    dir.add("d/both", &tile).await.unwrap();
    dir.add("d/both", &hello).await.unwrap();
    dir.add("d/both", &disc).await.unwrap();

    let shapes: Vec<(String, Remote<dyn Shape>)> = dir.find().await.unwrap();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a/tile", "b/disc", "d/both", "d/both"]);
    let mut total = 0.0;
    for (_, s) in &shapes {
        total += s.area().await.unwrap();
    }
    assert_eq!(total, 2.0 * (4.0 + 3.0));

    let circles: Vec<(String, Remote<dyn Circle>)> = dir.find().await.unwrap();
    assert_eq!(circles.len(), 2);
    assert!(circles.iter().all(|(_, c)| *c == disc));
    let greeters: Vec<(String, Remote<dyn Greeter>)> = dir.find().await.unwrap();
    let names: Vec<&str> = greeters.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c/hello", "d/both"]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_methods_and_supertraits() {
    let node = Node::new();
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
    dir.bind("disc", &disc).await.unwrap();
    shapes::assert_describes_circle(&dir.describe("disc").await.unwrap());
    node.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2. Another node's directory, over TCP
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_directory_over_tcp() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    // A writer on this host (a loopback connection) may bind.
    let owner = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let dir = DirectoryClient::connect_on(&owner, &addr).await.unwrap();
    assert!(!dir.is_local());
    assert_eq!(dir.reference().unwrap().id(), ObjectId::DIRECTORY);
    let drops;
    {
        let d = Disc::new(4.0);
        drops = d.drops.clone();
        let disc: Remote<dyn Circle> = owner.export(d);
        dir.bind("remote/disc", &disc).await.unwrap();
        let hello: Remote<dyn Greeter> = owner.export(English);
        dir.add("remote/group", &hello).await.unwrap();
        dir.add("remote/group", &disc).await.unwrap();
    }
    // The owner dropped its references: the directory's lease holds them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0);

    // A third node finds them and calls the owner directly.
    let rdir = DirectoryClient::connect(addr.to_string()).await.unwrap();
    let disc: Remote<dyn Circle> = rdir.lookup("remote/disc").await.unwrap();
    assert_eq!(disc.owner(), owner.id());
    assert_eq!(disc.radius().await.unwrap(), 4.0);
    let group = rdir.lookup_any("remote/group").await.unwrap();
    assert_eq!(group.len(), 2);
    assert_eq!(group[0].interface_name(), Some("Greeter"));
    assert_eq!(group[1].interface_name(), Some("Circle"));
    let entries = rdir.list("remote/").await.unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["remote/disc", "remote/group"]);
    let found: Vec<(String, Remote<dyn Shape>)> = rdir.find().await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(rdir.describe("remote/disc").await.unwrap().len(), 2);
    assert!(matches!(
        rdir.lookup::<dyn Square>("remote/disc").await,
        Err(DirectoryError::InterfaceMismatch { .. })
    ));
    // The reader (loopback too) may write.
    rdir.unbind("remote/group").await.unwrap();
    assert!(matches!(
        rdir.lookup_any("remote/group").await,
        Err(DirectoryError::NotBound(_))
    ));

    // The server sees the same bindings in its own directory.
    let local = server.directory();
    let here: Remote<dyn Circle> = local.lookup("remote/disc").await.unwrap();
    assert!(!here.is_local());
    assert_eq!(here.radius().await.unwrap(), 4.0);
    drop((here, disc, group, found));

    // Unbound and unreferenced, the object is freed.
    dir.unbind("remote/disc").await.unwrap();
    until(20, "the unbound disc is freed", || async {
        drops.load(Ordering::SeqCst) == 1
    })
    .await;

    // Connecting to one's own address gives the local directory.
    let own = DirectoryClient::connect_on(&server, &addr).await.unwrap();
    assert!(own.is_local());
    assert!(server.directory().is_local());
    owner.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_local_object_stays_alive_until_unbound() {
    let node = Node::new();
    let dir = node.directory();
    let d = Disc::new(1.0);
    let drops = d.drops.clone();
    {
        let disc: Remote<dyn Circle> = node.export(d);
        dir.bind("kept", &disc).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the directory holds it");
    let disc: Remote<dyn Circle> = dir.lookup("kept").await.unwrap();
    assert_eq!(disc.radius().await.unwrap(), 1.0);
    drop(disc);
    dir.unbind("kept").await.unwrap();
    until(20, "the unbound disc is freed", || async {
        drops.load(Ordering::SeqCst) == 1
    })
    .await;
    node.shutdown().await;
}

// ---------------------------------------------------------------------------
// 3. Paging
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_bindings_list_in_pages() {
    const N: usize = 100_000;
    // A smaller frame limit than the default (pages are kept under a
    // quarter of it, and under 64 KiB).
    let mut limits = Limits::default();
    limits.max_frame_len = 256 << 10;
    let node = Node::builder()
        .limits(limits)
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let max_frame = node.limits().max_frame_len as usize;
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
    let any = disc.clone().into_any();
    let started = Instant::now();
    for i in 0..N {
        dir.bind_any(&format!("svc/{:02}/{i:06}", i % 97), any.clone())
            .await
            .unwrap();
    }
    let bound = started.elapsed();

    // Every page, through the local client.
    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut pages = 0;
    let mut seen = 0;
    let mut last = String::new();
    loop {
        let page = dir
            .list_page("svc/", after.clone(), u32::MAX)
            .await
            .unwrap();
        let bytes = codec::encode(&page).unwrap().len();
        assert!(bytes < max_frame, "a page of {bytes} bytes");
        assert!(page.entries.len() <= MAX_PAGE as usize);
        for e in &page.entries {
            assert!(e.name > last, "sorted: {} after {last}", e.name);
            assert_eq!(e.members, 1);
            last = e.name.clone();
        }
        seen += page.entries.len();
        pages += 1;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, N);
    assert_eq!(pages, N / MAX_PAGE as usize);
    let listed = started.elapsed();

    // Over TCP, by another node with the default frame limit, all at once
    // through the client (which iterates the pages), and by prefix.
    let reader = Node::new();
    let rdir = DirectoryClient::connect_on(&reader, node.local_addr().unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    let all = rdir.list("").await.unwrap();
    assert_eq!(all.len(), N);
    let remote_listed = started.elapsed();
    let some = rdir.list("svc/05/").await.unwrap();
    assert_eq!(some.len(), (0..N).filter(|i| i % 97 == 5).count());
    assert!(some.iter().all(|e| e.name.starts_with("svc/05/")));
    let page = rdir
        .list_page("svc/05/", Some("svc/05/000500".into()), 3)
        .await
        .unwrap();
    let names: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["svc/05/000587", "svc/05/000684", "svc/05/000781"]);
    assert_eq!(page.next.as_deref(), Some("svc/05/000781"));
    println!(
        "directory: {N} binds in {:.0} ms, listed locally in {pages} pages in {:.0} ms, over TCP in {:.0} ms",
        bound.as_secs_f64() * 1e3,
        listed.as_secs_f64() * 1e3,
        remote_listed.as_secs_f64() * 1e3,
    );

    // Long names: the byte budget cuts pages short of 1,000 entries.
    for i in 0..400 {
        let name = format!("long/{i:03}/{}", "n".repeat(240));
        dir.bind_any(&name, any.clone()).await.unwrap();
    }
    let mut after = None;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let page = dir.list_page("long/", after, 1000).await.unwrap();
        let bytes = codec::encode(&page).unwrap().len();
        assert!(bytes < max_frame / 2, "a page of {bytes} bytes");
        seen += page.entries.len();
        pages += 1;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, 400);
    assert!(pages > 1, "{pages} pages");
    // find pages too: 100,400 matches.
    let circles: Vec<(String, Remote<dyn Circle>)> = dir.find().await.unwrap();
    assert_eq!(circles.len(), N + 400);
    reader.shutdown().await;
    node.shutdown().await;
}

// ---------------------------------------------------------------------------
// 4. Watch
// ---------------------------------------------------------------------------

async fn next_change(s: &mut farcall::Stream<Change>) -> Change {
    within(10, "a change", s.next())
        .await
        .expect("the stream goes on")
        .expect("a change, not an error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_binds_and_unbinds() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let dir = server.directory();
    let client = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let rdir = DirectoryClient::connect_on(&client, server.local_addr().unwrap())
        .await
        .unwrap();
    // One watcher on the node itself, one over TCP.
    let mut local = dir.watch("app/").await.unwrap();
    let mut remote = rdir.watch("app/").await.unwrap();

    let one: Remote<dyn Circle> = server.export(Disc::new(1.0));
    let two: Remote<dyn Square> = client.export(Tile(2.0));
    dir.bind("other/x", &one).await.unwrap(); // not watched
    dir.bind("app/one", &one).await.unwrap();
    rdir.add("app/one", &two).await.unwrap();
    dir.rebind("app/one", &two).await.unwrap();
    rdir.unbind("app/one").await.unwrap();

    let expected = [
        Change::Bound {
            name: "app/one".into(),
            owner: server.id(),
            object: one.id(),
            interface: one.interface_id(),
        },
        Change::Bound {
            name: "app/one".into(),
            owner: client.id(),
            object: two.id(),
            interface: two.interface_id(),
        },
        // rebind: every old member leaves, then the new one arrives.
        Change::Unbound {
            name: "app/one".into(),
            owner: server.id(),
            object: one.id(),
        },
        Change::Unbound {
            name: "app/one".into(),
            owner: client.id(),
            object: two.id(),
        },
        Change::Bound {
            name: "app/one".into(),
            owner: client.id(),
            object: two.id(),
            interface: two.interface_id(),
        },
        Change::Unbound {
            name: "app/one".into(),
            owner: client.id(),
            object: two.id(),
        },
    ];
    for want in &expected {
        assert_eq!(&next_change(&mut local).await, want);
        assert_eq!(&next_change(&mut remote).await, want);
    }
    // Nothing else came.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), local.next())
            .await
            .is_err()
    );
    // A dropped watcher is forgotten; the directory goes on.
    drop(remote);
    dir.bind("app/two", &one).await.unwrap();
    assert_eq!(next_change(&mut local).await.name(), "app/two");
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_gets_an_error() {
    let node = Node::new();
    let dir = node.directory();
    let disc: Remote<dyn Circle> = node.export(Disc::new(1.0));
    let mut slow = dir.watch("").await.unwrap();
    let n = farcall::directory::WATCH_BACKLOG + 1000;
    for i in 0..n {
        dir.bind(&format!("n/{i}"), &disc).await.unwrap();
    }
    let mut items = 0;
    let error = within(20, "the lagging watcher's error", async {
        loop {
            match slow.next().await {
                Some(Ok(_)) => items += 1,
                Some(Err(e)) => return e,
                None => panic!("the stream ended without an error"),
            }
        }
    })
    .await;
    assert!(
        (farcall::directory::WATCH_BACKLOG..n).contains(&items),
        "{items} changes before the error"
    );
    assert!(error.to_string().contains("watch again"), "{error}");
    assert!(slow.next().await.is_none());
    // The directory goes on, and a new watch works.
    let mut again = dir.watch("").await.unwrap();
    dir.unbind("n/0").await.unwrap();
    assert!(matches!(
        next_change(&mut again).await,
        Change::Unbound { .. }
    ));
    node.shutdown().await;
}

// ---------------------------------------------------------------------------
// 5. Leases: a binding vanishes when its process dies
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "FARCALL_DIRECTORY_CHILD";
const BOUND_LINE: &str = "FARCALL_DIRECTORY_BOUND";

/// The binding process of `a_binding_vanishes_when_its_process_dies`:
/// does nothing unless started by it (the test binary runs itself).
#[test]
#[ignore = "the child process of a_binding_vanishes_when_its_process_dies"]
fn child_binder() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    run_child(async {
        let node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        // The directory named by FARCALL_DIRECTORY: the parent's.
        let dir = DirectoryClient::from_env_on(&node).await.unwrap();
        let disc: Remote<dyn Circle> = node.export(Disc::new(7.0));
        dir.bind("leased/disc", &disc).await.unwrap();
        dir.add("leased/group", &disc).await.unwrap();
        drop(disc); // the directory's lease keeps it
        println!("{BOUND_LINE}");
        stdin_closed().await;
        node.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_vanishes_when_its_process_dies() {
    let mut limits = Limits::default();
    limits.lease_time = Duration::from_millis(300);
    let node = Node::builder()
        .limits(limits)
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let dir = node.directory();
    let mine: Remote<dyn Circle> = node.export(Disc::new(1.0));
    dir.add("leased/group", &mine).await.unwrap();
    let mut changes = dir.watch("leased/").await.unwrap();

    let addr = node.local_addr().unwrap().to_string();
    let mut child = rerun("child_binder", &[(CHILD_ENV, "1"), (DIRECTORY_ENV, &addr)]);
    line_where_async(child.stdout(), "the child binds", |line| {
        line.contains(BOUND_LINE).then_some(())
    })
    .await;

    let disc: Remote<dyn Circle> = dir.lookup("leased/disc").await.unwrap();
    assert_eq!(disc.radius().await.unwrap(), 7.0);
    let child_node = disc.owner();
    drop(disc);
    // Alive and renewed, it stays well past a lease time.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let disc: Remote<dyn Circle> = dir.lookup("leased/disc").await.unwrap();
    assert_eq!(disc.radius().await.unwrap(), 7.0);
    drop(disc);
    assert_eq!(dir.lookup_any("leased/group").await.unwrap().len(), 2);

    child.0.kill().unwrap();
    let killed = Instant::now();
    until(30, "the dead process's binding goes", || async {
        matches!(
            dir.lookup_any("leased/disc").await,
            Err(DirectoryError::NotBound(_))
        )
    })
    .await;
    println!(
        "directory: a killed binder's binding went {:.0} ms after the kill (lease time 300 ms)",
        killed.elapsed().as_secs_f64() * 1e3
    );
    // The group keeps its live member only.
    until(10, "the dead member leaves the group", || async {
        dir.lookup_any("leased/group").await.unwrap().len() == 1
    })
    .await;
    let left: Remote<dyn Circle> = dir.lookup("leased/group").await.unwrap();
    assert_eq!(left, mine);
    // Watchers heard of the bindings and of their end.
    let mut saw = Vec::new();
    while saw.len() < 4 {
        saw.push(next_change(&mut changes).await);
    }
    assert!(
        saw[..2]
            .iter()
            .all(|c| matches!(c, Change::Bound { owner, .. } if *owner == child_node))
    );
    let mut gone: Vec<&str> = saw[2..]
        .iter()
        .map(|c| match c {
            Change::Unbound { name, owner, .. } if *owner == child_node => name.as_str(),
            other => panic!("expected the child's Unbound, got {other:?}"),
        })
        .collect();
    gone.sort();
    assert_eq!(gone, ["leased/disc", "leased/group"]);
    node.shutdown().await;
}
