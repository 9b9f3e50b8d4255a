//! Chapter: direct message exchange, symmetric (`farcall::dme::Peer`).
//!
//! Peers are all alike: each listens and connects, sends and receives,
//! asks and answers. A super-peer (as in Skype) also relays between peers
//! that registered with it and have no connection of their own.
//!
//! Included with `#[path]` by `examples/dme_peers.rs` and `examples/tour.rs`.

use farcall::dme::{Peer, PeerId};
use farcall::node::Address;

/// Receives the next message or request for `peer`, prints it, and answers
/// it if it is a request. Returns `false` once the peer has shut down.
///
/// `me` names this peer in the output; `name_of` names the sender.
pub(crate) async fn receive_and_answer(
    peer: &Peer<String>,
    me: &str,
    name_of: impl Fn(PeerId) -> String,
) -> farcall::Result<bool> {
    let Some(incoming) = peer.recv().await else {
        return Ok(false);
    };
    let from = name_of(incoming.from);
    if incoming.is_request() {
        println!("  {me} | <- request from {from}: {:?}", incoming.message);
        let answer = format!("{me} here, got it");
        println!("  {me} | -> reply to {from}: {answer:?}");
        incoming.reply(answer)?;
    } else {
        println!("  {me} | <- message from {from}: {:?}", incoming.message);
    }
    Ok(true)
}

/// Three peers in one process: B is a super-peer; A and C know only B.
pub(crate) async fn one_process(
    a_addr: Address,
    b_addr: Address,
    c_addr: Address,
) -> farcall::Result<()> {
    let b = Peer::<String>::builder()
        .super_peer(true)
        .listen(b_addr)
        .await?;
    let a = Peer::<String>::listen(a_addr).await?;
    let c = Peer::<String>::listen(c_addr).await?;
    let names = [(a.id(), "A"), (b.id(), "B"), (c.id(), "C")];
    let name_of = move |id: PeerId| {
        names
            .iter()
            .find(|(known, _)| *known == id)
            .map_or_else(|| id.to_string(), |(_, n)| (*n).to_string())
    };
    println!("  A is peer {} on {}", a.id(), a.local_addr());
    println!(
        "  B is peer {} on {} (a super-peer)",
        b.id(),
        b.local_addr()
    );
    println!("  C is peer {} on {}", c.id(), c.local_addr());

    a.connect(b.local_addr()).await?;
    c.connect(b.local_addr()).await?;
    println!("  A and C each connect to B, and only to B");
    let list = |ids: Vec<PeerId>| ids.into_iter().map(name_of).collect::<Vec<_>>().join(", ");
    println!("  A's peers: [{}]", list(a.peers()));
    println!("  B's peers: [{}]", list(b.peers()));
    println!("  C's peers: [{}]", list(c.peers()));
    println!(
        "  A asks its super-peers whom they reach: [{}]",
        list(a.discover().await?)
    );

    println!("  A | -> message to C (no connection between them: B relays it)");
    a.send(c.id(), "hello C, this is A".into()).await?;
    receive_and_answer(&c, "C", name_of).await?;

    println!("  C | -> request to A, through B");
    let (answer, _) = tokio::join!(
        c.request(a.id(), "A, are you there?".into()),
        receive_and_answer(&a, "A", name_of),
    );
    println!("  C | <- {:?}", answer?);

    println!("  B | -> request to A, directly: a super-peer is a peer too");
    let (answer, _) = tokio::join!(
        b.request(a.id(), "A, this is B".into()),
        receive_and_answer(&a, "A", name_of),
    );
    println!("  B | <- {:?}", answer?);

    for (peer, name) in [(&a, "A"), (&c, "C"), (&b, "B")] {
        peer.shutdown().await;
        println!("  {name} | shut down");
    }
    Ok(())
}
