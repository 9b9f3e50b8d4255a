//! Remote objects (RMI, early binding) through the facade, as a user writes
//! them: references as arguments and results nested anywhere, callbacks
//! where only one side can dial, third-party references, identity,
//! inheritance and narrowing, and bad references (wrong interfaces, forged
//! and stale ids).
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP and
//! in-process `mem://`). Time-outs here only keep a broken build from
//! hanging; nothing asserts speed.

mod common;
mod rmi;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use farcall::__private::codec;
use farcall::__private::service::{OutcomeFuture, Service};
use farcall::node::NodeId;
use farcall::rmi::ObjectId;
use farcall::rpc::{CallContext, Fault};
use farcall::{Node, Remote, RemoteError};
// `farcall::remote` does not re-export these two (yet): they come from the
// runtime crate, a dependency of the facade.
use farcall_runtime::rmi::{WireRef, decode_in};

use common::transport::{Transport, on_transports};
use common::wait::within;
use rmi::{Board, Canvas, Circle, Directory, Disc, Labeled, Registry, Shape, Square, Tile, close};

on_transports!([tcp, mem] within 20;
    references_as_arguments_and_results_nested_anywhere,
    callbacks_where_only_the_client_can_dial,
    third_party_references_connect_directly_to_the_owner,
    identity_equality_hashing_and_round_trips,
    inheritance_upcast_and_narrow,
    forged_and_stale_references,
);

/// A server serving a fresh canvas as "canvas", and a client node that does
/// not listen, with a stub for it.
async fn canvas_pair(t: Transport) -> (Node, Board, Node, Remote<dyn Canvas>) {
    let server = t.node().await;
    let board = Board::default();
    let _: Remote<dyn Canvas> = server.serve("canvas", board.clone());
    let client = Node::new();
    let canvas = client
        .connect_service::<dyn Canvas>(server.local_addr().unwrap(), "canvas")
        .await
        .unwrap();
    assert!(!canvas.is_local());
    (server, board, client, canvas)
}
fn interface_id(name: &str) -> u64 {
    farcall::rmi::catalogue()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} is in the catalogue"))
        .id
}

// ---------------------------------------------------------------------------
// References as arguments and results, nested anywhere
// ---------------------------------------------------------------------------

async fn references_as_arguments_and_results_nested_anywhere(t: Transport) {
    let (server, board, client, canvas) = canvas_pair(t).await;

    assert!(canvas.largest().await.unwrap().is_none(), "an empty canvas");
    assert!(canvas.all().await.unwrap().is_empty());

    // The client's own objects, passed as arguments: the server calls them.
    let small_tile = Tile::new("small", 1.0);
    let big_tile = Tile::new("big", 3.0);
    let disc = Disc::new("disc", 1.0);
    let (small_probe, big_probe, disc_probe) = (
        small_tile.probe.clone(),
        big_tile.probe.clone(),
        disc.probe.clone(),
    );
    let small: Remote<dyn Shape> = client.export(small_tile);
    let big: Remote<dyn Shape> = client.export(big_tile);
    let round: Remote<dyn Shape> = client.export(disc);
    assert!(small.is_local() && big.is_local() && round.is_local());
    assert_eq!(small.owner(), client.id());

    assert_eq!(canvas.add(small.clone()).await.unwrap(), 1);
    assert_eq!(canvas.add(big.clone()).await.unwrap(), 2);
    assert_eq!(canvas.add(round.clone()).await.unwrap(), 3);
    for (p, what) in [
        (&small_probe, "small"),
        (&big_probe, "big"),
        (&disc_probe, "disc"),
    ] {
        assert_eq!(p.calls(), 1, "{what}: `add` called its area back");
        assert_eq!(
            p.callers(),
            [server.id()],
            "{what}: the callback came from the server"
        );
    }
    // The server holds stubs to the client's objects.
    for s in board.snapshot() {
        assert!(!s.is_local());
        assert_eq!(s.owner(), client.id());
    }

    // A result that is an `Option` of a reference: the largest.
    let largest = canvas.largest().await.unwrap().expect("shapes were added");
    assert_eq!(largest, big);
    assert_eq!(largest.name().await.unwrap(), "big");
    assert_eq!(largest.area().await.unwrap(), 9.0);

    // A result that is a `Vec` of references, in order.
    let all = canvas.all().await.unwrap();
    assert_eq!(all, [small.clone(), big.clone(), round.clone()]);
    let mut names = Vec::new();
    for s in &all {
        names.push(s.name().await.unwrap());
    }
    assert_eq!(names, ["small", "big", "disc"]);

    // Callbacks on every shape from a server computation.
    let total = canvas.total_area().await.unwrap();
    assert!(close(total, 1.0 + 9.0 + std::f64::consts::PI), "{total}");

    // A reference inside a struct, in both directions.
    let labeled = Labeled {
        label: "the big one".into(),
        shape: big.clone(),
    };
    assert_eq!(canvas.add_labeled(labeled).await.unwrap(), 1);
    let server_tile: Remote<dyn Square> = canvas.square(2.0).await.unwrap();
    let server_shape = server_tile.clone().upcast::<dyn Shape>();
    assert_eq!(server_shape.owner(), server.id());
    assert_eq!(
        canvas
            .add_labeled(Labeled {
                label: "theirs".into(),
                shape: server_shape.clone(),
            })
            .await
            .unwrap(),
        2
    );
    let back = canvas.labeled().await.unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].label, "the big one");
    assert_eq!(back[0].shape, big);
    assert!(back[0].shape.is_local(), "the client's own object");
    assert_eq!(back[1].label, "theirs");
    assert_eq!(back[1].shape, server_shape);
    assert!(!back[1].shape.is_local());
    assert_eq!(back[1].shape.area().await.unwrap(), 4.0);

    // The canvas made a shape of its own; it now leads.
    let largest = canvas.largest().await.unwrap().unwrap();
    assert_eq!(largest, big, "9 > 4");
    assert_eq!(server_tile.scale(2.0).await.unwrap(), 16.0);
    let largest = canvas.largest().await.unwrap().unwrap();
    assert_eq!(largest, server_shape, "16 > 9");
    assert!(!largest.is_local());

    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Callbacks where only one side can dial
// ---------------------------------------------------------------------------

async fn callbacks_where_only_the_client_can_dial(t: Transport) {
    let (server, board, client, canvas) = canvas_pair(t).await;
    assert!(
        client.local_addrs().is_empty(),
        "the client does not listen"
    );

    let tile = Tile::new("mine", 2.0);
    let probe = tile.probe.clone();
    let mine: Remote<dyn Shape> = client.export(tile);
    assert!(
        mine.owner_addrs().is_empty(),
        "nobody can dial the client: its references carry no address"
    );
    assert_eq!(canvas.add(mine.clone()).await.unwrap(), 1);
    assert_eq!(canvas.total_area().await.unwrap(), 4.0);
    assert_eq!(canvas.total_area().await.unwrap(), 4.0);
    assert_eq!(probe.calls(), 3, "three callbacks reached the client");
    assert_eq!(probe.callers(), [server.id(); 3]);

    // One connection, dialed by the client; the server never dialed.
    let conns = client.connections();
    assert_eq!(conns.len(), 1, "the client has exactly one connection");
    assert_eq!(conns[0].peer_id(), server.id());
    assert_eq!(server.connections().len(), 1, "the server never dialed");
    assert_eq!(server.connections()[0].peer_id(), client.id());

    // The server breaks the connection. The client's next call dials again,
    // and the server's references to the client's objects use the new
    // connection: still no dialing from the server.
    server.connections()[0].abort("test: break the only connection");
    within(5, "the client sees the break", conns[0].closed()).await;
    assert_eq!(canvas.total_area().await.unwrap(), 4.0);
    assert_eq!(probe.calls(), 4);
    assert_eq!(client.connections().len(), 1);
    assert_eq!(server.connections().len(), 1);
    assert_eq!(server.connections()[0].peer_id(), client.id());

    // With the client gone, the server's references to its objects fail
    // promptly instead of dialing nowhere.
    let held = board.snapshot();
    client.shutdown().await;
    match within(5, "a callback to a vanished client", held[0].area()).await {
        Err(RemoteError::Disconnected(_) | RemoteError::Closed) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Third-party references
// ---------------------------------------------------------------------------

async fn third_party_references_connect_directly_to_the_owner(t: Transport) {
    // B: a registry that only holds references.
    let b = t.node().await;
    let directory = Directory::default();
    let _: Remote<dyn Registry> = b.serve("registry", directory.clone());
    // C: owns the objects, listens.
    let c = t.node().await;
    let tile = Tile::new("on C", 3.0);
    let probe = tile.probe.clone();
    let exported: Remote<dyn Shape> = c.export(tile);
    assert_eq!(exported.owner_addrs(), c.local_addrs());
    let at_b = c
        .connect_service::<dyn Registry>(b.local_addr().unwrap(), "registry")
        .await
        .unwrap();
    at_b.bind("tile".into(), exported.clone()).await.unwrap();
    // A: the client, which has never heard of C.
    let a = Node::new();
    let registry = a
        .connect_service::<dyn Registry>(b.local_addr().unwrap(), "registry")
        .await
        .unwrap();
    assert!(registry.lookup("nothing".into()).await.unwrap().is_none());
    let shape = registry
        .lookup("tile".into())
        .await
        .unwrap()
        .expect("C's tile is bound");
    let b_calls = directory.calls.load(Ordering::SeqCst);
    assert_eq!(b_calls, 3, "bind and two lookups");
    assert_eq!(shape, exported, "the same object");
    assert_eq!(shape.owner(), c.id());
    assert_eq!(shape.owner_addrs(), c.local_addrs());
    assert!(!shape.is_local());
    assert_eq!(probe.calls(), 0);

    assert_eq!(shape.area().await.unwrap(), 9.0);
    assert_eq!(shape.name().await.unwrap(), "on C");
    assert!(
        a.connections().iter().any(|conn| conn.peer_id() == c.id()),
        "A connected to C directly"
    );
    assert_eq!(
        probe.callers(),
        [a.id(), a.id()],
        "C's object was called by A itself"
    );
    assert_eq!(
        directory.calls.load(Ordering::SeqCst),
        b_calls,
        "B saw nothing of it"
    );
    // B has connections from A and C only; C's has one from B and one from A.
    let mut b_peers: Vec<NodeId> = b.connections().iter().map(|x| x.peer_id()).collect();
    b_peers.sort();
    let mut expected = vec![a.id(), c.id()];
    expected.sort();
    assert_eq!(b_peers, expected);
    assert!(c.connections().iter().any(|x| x.peer_id() == a.id()));

    // B may go away: A's reference does not need it.
    b.shutdown().await;
    assert_eq!(shape.scale(2.0).await.unwrap(), 36.0);
    assert_eq!(probe.callers().last(), Some(&a.id()));
    assert_eq!(exported.area().await.unwrap(), 36.0, "C sees the change");

    a.shutdown().await;
    c.shutdown().await;
}

// ---------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------

// `Remote` hashes by identity only (owner and object id), never by its
// stub's state, so clippy's `mutable_key_type` is a false positive here
// (it sees the `Mutex` inside the stub's link).
#[allow(clippy::mutable_key_type)]
async fn identity_equality_hashing_and_round_trips(t: Transport) {
    let (server, _board, client, canvas) = canvas_pair(t).await;

    // Objects of the server, received through different calls.
    let sq = canvas.square(5.0).await.unwrap().upcast::<dyn Shape>();
    let ci = canvas.circle(1.0).await.unwrap().upcast::<dyn Shape>();
    assert_ne!(sq, ci, "different objects differ");
    let first = canvas.all().await.unwrap();
    let second = canvas.all().await.unwrap();
    let largest = canvas.largest().await.unwrap().unwrap();
    assert_eq!(first, second);
    assert_eq!(first, [sq.clone(), ci.clone()]);
    assert_eq!(largest, sq, "25 > π");
    assert_eq!(largest.id(), sq.id());
    assert_eq!(largest.owner(), server.id());

    let mut set: HashSet<Remote<dyn Shape>> = HashSet::new();
    for r in first.iter().chain(&second).chain([&largest, &sq, &ci]) {
        set.insert(r.clone());
    }
    assert_eq!(set.len(), 2, "received seven times, two objects");
    assert!(set.contains(&sq) && set.contains(&ci));

    // Another client sees the same identities.
    let other = Node::new();
    let canvas2 = other
        .connect_service::<dyn Canvas>(server.local_addr().unwrap(), "canvas")
        .await
        .unwrap();
    let theirs = canvas2.all().await.unwrap();
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|r| set.contains(r)));

    // A server object sent back to the server is local there: the very
    // object, whose state the client's stub changes.
    let exported: Remote<dyn Shape> = server.export(Tile::new("server's own", 2.0));
    let stub = client
        .connect::<dyn Shape>(server.local_addr().unwrap(), exported.id())
        .await
        .unwrap();
    assert!(!stub.is_local());
    assert_eq!(stub, exported);
    let seen = canvas.inspect(stub.clone()).await.unwrap();
    assert!(seen.is_local, "a reference back at its owner is local");
    assert!(!seen.held);
    assert_eq!(seen.area, 4.0);
    assert_eq!(seen.owner, server.id().0);
    assert_eq!(seen.interface.as_deref(), Some("Shape"));
    stub.scale(3.0).await.unwrap();
    assert_eq!(canvas.inspect(stub.clone()).await.unwrap().area, 36.0);
    assert_eq!(exported.area().await.unwrap(), 36.0);

    // The same for an object exported as a subtrait (a square) and sent
    // back as its supertrait: the server finds the very object it holds.
    // (That it is also `is_local` there is checked by
    // `round_trip_under_a_supertrait_is_local`.)
    let seen = canvas.inspect(sq.clone()).await.unwrap();
    assert!(seen.held);
    assert_eq!(seen.area, 25.0);
    assert_eq!(seen.owner, server.id().0);
    assert_eq!(seen.interface.as_deref(), Some("Square"));
    sq.scale(2.0).await.unwrap();
    assert_eq!(canvas.inspect(sq.clone()).await.unwrap().area, 100.0);

    // A client object round-tripped through the server is local again, and
    // the same instance: the same allocation, the same state.
    let tile = Tile::new("mine", 1.0);
    let side = tile.side.clone();
    let mine: Remote<dyn Shape> = client.export(tile);
    let twin: Remote<dyn Shape> = client.export(Tile::new("mine", 1.0));
    assert_ne!(mine, twin, "equal state, different objects");
    canvas.add(mine.clone()).await.unwrap();
    canvas.add(twin.clone()).await.unwrap();
    let seen = canvas.inspect(mine.clone()).await.unwrap();
    assert!(
        !seen.is_local,
        "the client's object is remote at the server"
    );
    assert!(seen.held);
    assert_eq!(seen.owner, client.id().0);
    let all = canvas.all().await.unwrap();
    let back = all.iter().find(|r| **r == mine).expect("held").clone();
    assert!(back.is_local(), "back at its owner, the reference is local");
    assert!(
        Arc::ptr_eq(back.as_arc(), mine.as_arc()),
        "the very object exported"
    );
    assert_eq!(back.scale(3.0).await.unwrap(), 9.0);
    assert_eq!(*side.lock().unwrap(), 3.0, "the original's state changed");
    assert_eq!(mine.area().await.unwrap(), 9.0);
    let twin_back = all.iter().find(|r| **r == twin).unwrap();
    assert_eq!(twin_back.area().await.unwrap(), 1.0, "the twin did not");
    let mut set: HashSet<Remote<dyn Shape>> = all.into_iter().collect();
    assert_eq!(set.len(), 4);
    assert!(!set.insert(mine.clone()), "already there");

    other.shutdown().await;
    client.shutdown().await;
    server.shutdown().await;
}

/// An object exported as a subtrait (`dyn Circle`), sent away and received
/// back as its supertrait (`Remote<dyn Shape>`), should be local at its
/// owner like any other round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_under_a_supertrait_is_local() {
    let (server, _board, client, canvas) = canvas_pair(Transport::Tcp).await;

    // A client object: exported as a circle, passed as a shape.
    let mine: Remote<dyn Circle> = client.export(Disc::new("mine", 1.0));
    let mine_shape = mine.clone().upcast::<dyn Shape>();
    canvas.add(mine_shape.clone()).await.unwrap();
    let back = canvas.all().await.unwrap().pop().unwrap();
    assert_eq!(back, mine_shape);
    assert!(back.is_local(), "back at its owner, the reference is local");
    assert!(
        Arc::ptr_eq(back.as_arc(), mine_shape.as_arc()),
        "the very object exported"
    );

    // A server object: exported as a square, sent back as a shape.
    let sq = canvas.square(1.0).await.unwrap().upcast::<dyn Shape>();
    let seen = canvas.inspect(sq).await.unwrap();
    assert!(seen.held);
    assert!(seen.is_local, "a reference back at its owner is local");

    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Inheritance: supertrait calls, upcast, narrow
// ---------------------------------------------------------------------------

async fn inheritance_upcast_and_narrow(t: Transport) {
    let (server, _board, client, canvas) = canvas_pair(t).await;

    // A stub of the subtrait calls the supertrait's methods.
    let c: Remote<dyn Circle> = canvas.circle(2.0).await.unwrap();
    assert!(!c.is_local());
    assert_eq!(c.radius().await.unwrap(), 2.0);
    assert_eq!(c.name().await.unwrap(), "server disc");
    assert!(close(c.area().await.unwrap(), 4.0 * std::f64::consts::PI));
    assert_eq!(c.interface_name(), Some("Circle"));

    // Upcast keeps the object and its most derived interface.
    let as_shape: Remote<dyn Shape> = c.clone().upcast::<dyn Shape>();
    assert_eq!(as_shape.id(), c.id());
    assert_eq!(as_shape.interface_name(), Some("Circle"));
    assert_eq!(as_shape.interface_id(), c.interface_id());
    assert_eq!(as_shape.name().await.unwrap(), "server disc");

    let s: Remote<dyn Square> = canvas.square(3.0).await.unwrap();
    assert_eq!(s.interface_name(), Some("Square"));
    assert_eq!(s.side().await.unwrap(), 3.0);

    // Shapes received as `Remote<dyn Shape>` narrow by what they are.
    let all = canvas.all().await.unwrap();
    assert_eq!(all.len(), 2);
    let (circle, square) = (&all[0], &all[1]);
    assert_eq!(circle.interface_name(), Some("Circle"));
    assert_eq!(square.interface_name(), Some("Square"));
    let narrowed = circle.narrow::<dyn Circle>().expect("a circle narrows");
    assert_eq!(narrowed, c);
    assert_eq!(narrowed.radius().await.unwrap(), 2.0);
    assert!(
        square.narrow::<dyn Circle>().is_none(),
        "a square is no circle"
    );
    assert!(
        circle.narrow::<dyn Square>().is_none(),
        "a circle is no square"
    );
    assert_eq!(
        square.narrow::<dyn Square>().unwrap().side().await.unwrap(),
        3.0
    );
    assert!(
        circle.narrow::<dyn Shape>().is_some(),
        "narrowing to itself"
    );

    // The client's own circle, passed as a shape: the server narrows it
    // and calls `radius` back.
    let mine: Remote<dyn Circle> = client.export(Disc::new("client disc", 5.0));
    assert_eq!(mine.interface_name(), Some("Circle"));
    let mine_shape = mine.clone().upcast::<dyn Shape>();
    assert!(mine_shape.is_local());
    let local_narrow = mine_shape.narrow::<dyn Circle>().unwrap();
    assert!(
        local_narrow.is_local(),
        "narrowing a local reference stays local"
    );
    assert_eq!(local_narrow.radius().await.unwrap(), 5.0);
    assert!(mine_shape.narrow::<dyn Square>().is_none());
    canvas.add(mine_shape.clone()).await.unwrap();
    assert_eq!(
        canvas.radii().await.unwrap(),
        [2.0, 5.0],
        "the server narrowed both circles (one of them a callback)"
    );
    let seen = canvas.inspect(mine_shape).await.unwrap();
    assert_eq!(seen.interface.as_deref(), Some("Circle"));

    // A shape-only object, received as a shape, does not narrow.
    let plain: Remote<dyn Shape> = client.export(Disc::new("plain", 1.0));
    assert_eq!(plain.interface_name(), Some("Shape"));
    assert!(plain.narrow::<dyn Circle>().is_none());
    canvas.add(plain.clone()).await.unwrap();
    let back = canvas.all().await.unwrap();
    assert!(back.contains(&plain));
    assert_eq!(canvas.radii().await.unwrap(), [2.0, 5.0]);

    client.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Bad input: wrong interfaces, forged and stale ids
// ---------------------------------------------------------------------------

/// Answers every call with the same bytes.
struct Liar(Bytes);

impl Service for Liar {
    fn call(&self, _: CallContext, _: u64, _: Bytes) -> OutcomeFuture {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

fn assert_mismatch<T: std::fmt::Debug>(r: Result<T, RemoteError>, what: &str) {
    match r {
        Err(RemoteError::InterfaceMismatch(msg)) => {
            assert!(
                msg.contains("Circle"),
                "{what}: `{msg}` names the wanted type"
            );
        }
        other => panic!("{what}: expected InterfaceMismatch, got {other:?}"),
    }
}

async fn forged_and_stale_references(t: Transport) {
    let (server, _board, client, canvas) = canvas_pair(t).await;
    let addr = server.local_addr().unwrap();
    let square_id = interface_id("Square");
    let circle_id = interface_id("Circle");

    // A real square of the server, described as it travels.
    let sq = canvas.square(2.0).await.unwrap();
    let wire = WireRef {
        owner: server.id(),
        addrs: vec![addr.clone()],
        object: sq.id(),
        interface: square_id,
    };
    let bytes = codec::encode(&wire).unwrap();

    // Decoded as what it is, or as a supertrait: fine.
    let as_square: Remote<dyn Square> = decode_in(Some(&client), None, &bytes).unwrap();
    assert_eq!(as_square.side().await.unwrap(), 2.0);
    let as_shape: Remote<dyn Shape> = decode_in(Some(&client), None, &bytes).unwrap();
    assert_eq!(as_shape.area().await.unwrap(), 4.0);
    // As a circle: refused at decode, on either node.
    assert_mismatch(
        decode_in::<Remote<dyn Circle>>(Some(&client), None, &bytes),
        "decode_in on the client",
    );
    assert_mismatch(
        decode_in::<Remote<dyn Circle>>(Some(&server), None, &bytes),
        "decode_in on the owner",
    );
    // Nested in a value, the mismatch is still reported as itself.
    let nested = codec::encode(&(7u8, vec![wire.clone()])).unwrap();
    assert_mismatch(
        decode_in::<(u8, Vec<Remote<dyn Circle>>)>(Some(&client), None, &nested),
        "decode_in, nested",
    );
    // An interface this binary has never heard of.
    let unknown = codec::encode(&WireRef {
        interface: 0x0123_4567_89ab_cdef,
        ..wire.clone()
    })
    .unwrap();
    match decode_in::<Remote<dyn Shape>>(Some(&client), None, &unknown) {
        Err(RemoteError::InterfaceMismatch(msg)) => assert!(msg.contains("unknown"), "{msg}"),
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
    // Without a node there is nothing to bind a reference to.
    assert!(decode_in::<Remote<dyn Shape>>(None, None, &bytes).is_err());

    // Through a real call, as an argument: hand-encoded calls of
    // `Canvas::add(Remote<dyn Shape>)`. The square is a shape: accepted. A
    // reference claiming an interface the server does not know is refused
    // with InterfaceMismatch before the method runs.
    let add = farcall::rmi::catalogue()
        .find(|d| d.name == "Canvas")
        .unwrap()
        .methods
        .iter()
        .find(|m| m.name == "add")
        .unwrap()
        .word();
    let conn = client.connection(&addr).await.unwrap();
    let service = ObjectId::for_service("canvas");
    let reply = conn.call_bytes(service, add, &bytes, None).await.unwrap();
    assert_eq!(codec::decode::<Result<u32, RemoteError>>(&reply), Ok(Ok(2)));
    match conn.call_bytes(service, add, &unknown, None).await {
        Err(farcall::Error::Remote(Fault::InterfaceMismatch(msg))) => {
            assert!(msg.contains("Shape"), "{msg}")
        }
        other => panic!("expected a Fault::InterfaceMismatch, got {other:?}"),
    }
    assert_eq!(canvas.all().await.unwrap().len(), 2, "nothing was added");

    // As a result: a server that answers a `Remote<dyn Circle>` with a
    // square is refused at the client's decode.
    let lie = codec::encode(&Ok::<WireRef, RemoteError>(wire.clone())).unwrap();
    server.serve_object(ObjectId::for_service("liar"), Arc::new(Liar(lie)));
    let liar = client
        .connect_service::<dyn Canvas>(&addr, "liar")
        .await
        .unwrap();
    assert_mismatch(liar.circle(1.0).await, "a lying result");
    // The honest circle is fine, and the connection was not harmed.
    let c = canvas.circle(1.0).await.unwrap();
    assert_eq!(c.radius().await.unwrap(), 1.0);
    assert_eq!(c.interface_id(), circle_id);

    // A forged object id: through `connect`, and in a decoded reference.
    let forged = client
        .connect::<dyn Shape>(&addr, ObjectId::random())
        .await
        .unwrap();
    assert_eq!(forged.area().await, Err(RemoteError::NoSuchObject));
    let forged_wire = codec::encode(&WireRef {
        object: ObjectId::random(),
        ..wire.clone()
    })
    .unwrap();
    let forged: Remote<dyn Shape> = decode_in(Some(&client), None, &forged_wire).unwrap();
    assert_eq!(forged.area().await, Err(RemoteError::NoSuchObject));
    // On the owner itself, a forged id is a stub that answers the same.
    let forged_here: Remote<dyn Shape> = decode_in(Some(&server), None, &forged_wire).unwrap();
    assert_eq!(forged_here.area().await, Err(RemoteError::NoSuchObject));
    // Sent to the owner in a call, it arrives as a local stub that fails.
    match canvas.add(forged.clone()).await {
        Err(RemoteError::NoSuchObject) => {}
        other => panic!("expected NoSuchObject from the server's call, got {other:?}"),
    }

    // A stale id: a real object, unexported.
    let stale = canvas.square(1.0).await.unwrap();
    assert_eq!(stale.side().await.unwrap(), 1.0);
    assert!(server.unexport(stale.id()));
    assert_eq!(stale.side().await, Err(RemoteError::NoSuchObject));
    assert_eq!(stale.area().await, Err(RemoteError::NoSuchObject));
    let stale_wire = codec::encode(&WireRef {
        object: stale.id(),
        ..wire.clone()
    })
    .unwrap();
    let decoded: Remote<dyn Shape> = decode_in(Some(&client), None, &stale_wire).unwrap();
    assert_eq!(decoded.area().await, Err(RemoteError::NoSuchObject));

    // An owner nobody can reach (no address, no connection): a prompt
    // failure, not a hang.
    let nowhere = codec::encode(&WireRef {
        owner: NodeId::random(),
        addrs: vec![],
        ..wire.clone()
    })
    .unwrap();
    let orphan: Remote<dyn Shape> = decode_in(Some(&client), None, &nowhere).unwrap();
    match within(5, "a reference to an unreachable owner", orphan.area()).await {
        Err(RemoteError::Disconnected(_)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }

    // None of this harmed the connection.
    assert_eq!(sq.side().await.unwrap(), 2.0);
    assert_eq!(client.connections().len(), 1);

    client.shutdown().await;
    server.shutdown().await;
}
