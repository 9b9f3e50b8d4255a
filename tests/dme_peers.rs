//! Direct message exchange, symmetric (`farcall::dme::Peer`): peers that
//! request each other at once over one connection, a super-peer relaying
//! between peers that only know it, the list of connected peers, and no
//! route without a super-peer, and clones of a peer that share its inbox.
//!
//! Every scenario is one `async fn` taking a [`Transport`];
//! `on_transports!` turns each into one test per transport (TCP, Unix
//! sockets, in-process `mem://`). Time-outs here only keep a broken build
//! from hanging; nothing asserts speed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use farcall::Error;
use farcall::dme::Peer;
use tokio::task::{JoinHandle, JoinSet};

use common::transport::{Transport, on_transports};
use common::wait::within;

on_transports!([tcp, unix, mem];
    peers_request_each_other_at_once,
    super_peer_relays_between_peers_that_only_know_it,
    peers_lists_connected_peers,
    no_route_without_a_super_peer,
    clones_are_one_peer_until_the_last_is_dropped,
);

/// Answers every request `n` that `peer` receives with `n + add`, until
/// the peer shuts down.
fn answer_adding(peer: Arc<Peer<u64>>, add: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = peer.recv().await {
            let answer = incoming.message + add;
            incoming.reply(answer).unwrap();
        }
    })
}

async fn peers_request_each_other_at_once(t: Transport) {
    let p = Arc::new(Peer::<u64>::listen(t.addr()).await.unwrap());
    let q = Arc::new(Peer::<u64>::listen(t.addr()).await.unwrap());
    let q_id = p.connect(q.local_addr()).await.unwrap();
    assert_eq!(q_id, q.id());
    let p_answers = answer_adding(p.clone(), 1000);
    let q_answers = answer_adding(q.clone(), 2000);

    let mut calls = JoinSet::new();
    let p_id = p.id();
    for i in 0..500u64 {
        let p = p.clone();
        calls.spawn(async move { assert_eq!(p.request(q_id, i).await.unwrap(), i + 2000) });
        let q = q.clone();
        calls.spawn(async move { assert_eq!(q.request(p_id, i).await.unwrap(), i + 1000) });
    }
    within(60, "peers asking each other", async {
        while let Some(done) = calls.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert_eq!(
        p.node().connections().len(),
        1,
        "one connection carries both directions"
    );
    assert_eq!(q.node().connections().len(), 1);

    // Shutting down ends a `recv` that another task is waiting in.
    within(10, "peer shutdown", async {
        p.shutdown().await;
        q.shutdown().await;
        p_answers.await.unwrap();
        q_answers.await.unwrap();
    })
    .await;
}

async fn super_peer_relays_between_peers_that_only_know_it(t: Transport) {
    let b = Peer::<String>::builder()
        .super_peer(true)
        .listen(t.addr())
        .await
        .unwrap();
    let a = Arc::new(Peer::<String>::listen(t.addr()).await.unwrap());
    let c = Arc::new(Peer::<String>::listen(t.addr()).await.unwrap());
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());
    assert_eq!(c.connect(b.local_addr()).await.unwrap(), b.id());
    assert!(b.is_super_peer() && !a.is_super_peer());
    assert_eq!(a.peers(), vec![b.id()], "A knows only B");
    assert_eq!(c.peers(), vec![b.id()], "C knows only B");
    assert_eq!(a.super_peers(), vec![b.id()]);
    assert!(a.node().connection_to(c.id()).is_none());

    // Discovery: B tells each whom it reaches.
    assert_eq!(a.discover().await.unwrap(), vec![c.id()]);
    assert_eq!(c.discover().await.unwrap(), vec![a.id()]);

    // A one-way message, relayed: C sees A as the sender.
    a.send(c.id(), "hello C".into()).await.unwrap();
    let got = within(10, "the relayed message", c.recv()).await.unwrap();
    assert_eq!((got.from, got.message.as_str()), (a.id(), "hello C"));
    assert!(!got.is_request());

    // Requests, relayed both ways at once.
    let answer_one_each = async {
        // A and C each answer the one request they receive.
        for (peer, me) in [(&a, "A"), (&c, "C")] {
            let m = within(10, "a relayed request", peer.recv()).await.unwrap();
            assert!(m.is_request());
            let answer = format!("{me} answers: {}", m.message);
            m.reply(answer).unwrap();
        }
    };
    let (from_a, from_c, ()) = tokio::join!(
        within(10, "C's request to A", c.request(a.id(), "C asks A".into())),
        within(10, "A's request to C", a.request(c.id(), "A asks C".into())),
        answer_one_each,
    );
    assert_eq!(from_a.unwrap(), "A answers: C asks A");
    assert_eq!(from_c.unwrap(), "C answers: A asks C");

    // B is a peer too: it reaches both directly.
    b.send(a.id(), "from B".into()).await.unwrap();
    let got = within(10, "B's message", a.recv()).await.unwrap();
    assert_eq!((got.from, got.message.as_str()), (b.id(), "from B"));

    a.shutdown().await;
    c.shutdown().await;
    b.shutdown().await;
}

async fn peers_lists_connected_peers(t: Transport) {
    let a = Peer::<String>::listen(t.addr()).await.unwrap();
    let b = Peer::<String>::listen(t.addr()).await.unwrap();
    let c = Peer::<String>::listen(t.addr()).await.unwrap();
    assert!(a.peers().is_empty());
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());
    assert_eq!(a.connect(c.local_addr()).await.unwrap(), c.id());
    // Connecting again reuses the connection.
    assert_eq!(a.connect(b.local_addr()).await.unwrap(), b.id());

    let mut both = vec![b.id(), c.id()];
    both.sort();
    assert_eq!(a.peers(), both, "sorted, each once");
    assert_eq!(b.peers(), vec![a.id()], "whichever side dialed");
    assert_eq!(c.peers(), vec![a.id()]);
    assert!(a.super_peers().is_empty());

    // A peer that leaves drops out of the list.
    c.shutdown().await;
    within(10, "C leaving A's list", async {
        while a.peers() != vec![b.id()] {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

async fn no_route_without_a_super_peer(t: Transport) {
    // B is a plain peer: it does not relay, so A cannot reach C.
    let a = Peer::<String>::listen(t.addr()).await.unwrap();
    let b = Peer::<String>::listen(t.addr()).await.unwrap();
    let c = Peer::<String>::listen(t.addr()).await.unwrap();
    a.connect(b.local_addr()).await.unwrap();
    c.connect(b.local_addr()).await.unwrap();
    assert!(
        a.discover().await.unwrap().is_empty(),
        "no super-peer to ask"
    );
    match a.send(c.id(), "lost".into()).await {
        Err(Error::NoRoute(to)) => assert_eq!(to, c.id()),
        other => panic!("expected NoRoute, got {other:?}"),
    }
    match a.request(c.id(), "lost".into()).await {
        Err(Error::NoRoute(to)) => assert_eq!(to, c.id()),
        other => panic!("expected NoRoute, got {other:?}"),
    }
    for p in [&a, &b, &c] {
        p.shutdown().await;
    }
}

async fn clones_are_one_peer_until_the_last_is_dropped(t: Transport) {
    let p = Peer::<u64>::listen(t.addr()).await.unwrap();
    let q = Peer::<u64>::listen(t.addr()).await.unwrap();
    q.connect(p.local_addr()).await.unwrap();
    let p_id = p.id();

    // A clone answers one request, then goes: the peer lives on.
    let answerer = p.clone();
    assert_eq!(answerer.id(), p_id);
    let answered = tokio::spawn(async move {
        let incoming = answerer.recv().await.unwrap();
        let n = incoming.message;
        incoming.reply(n + 1).unwrap();
    });
    assert_eq!(
        within(10, "the clone's answer", q.request(p_id, 1))
            .await
            .unwrap(),
        2
    );
    answered.await.unwrap();
    q.send(p_id, 5).await.unwrap();
    let got = within(10, "the original receiving", p.recv())
        .await
        .unwrap();
    assert_eq!((got.from, got.message), (q.id(), 5));

    // The last clone goes: the peer stops serving.
    drop(p);
    let after = within(10, "a request to a dropped peer", q.request(p_id, 3)).await;
    assert!(after.is_err(), "a dropped peer answered: {after:?}");
    q.shutdown().await;
}
