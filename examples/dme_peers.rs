//! Direct message exchange, symmetric: peers, one of them a super-peer.
//!
//! ```text
//! cargo run --example dme_peers                # A, B (super-peer) and C in one process
//! cargo run --example dme_peers -- peer tcp://127.0.0.1:7001 --super
//! cargo run --example dme_peers -- peer tcp://127.0.0.1:7002 --connect tcp://127.0.0.1:7001
//! cargo run --example dme_peers -- peer tcp://127.0.0.1:7003 --connect tcp://127.0.0.1:7001
//! ```
//!
//! With no arguments, three peers run in one process on free TCP ports:
//! B is a super-peer, A and C connect only to B, and B relays between them.
//!
//! `peer ADDR` runs one peer in this process: it listens on ADDR, prints
//! its id, connects to every `--connect ADDR` and greets the peer there,
//! greets through its super-peers the peers they reach, then prints what
//! it receives and answers requests until the process is stopped (Ctrl-C).
//! `--super` makes it a super-peer that relays for the peers connected to it.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/dme_symmetric.rs"]
mod dme_symmetric;

use std::process::ExitCode;

use farcall::dme::{Peer, PeerId};
use farcall::node::Address;

use cli::Outcome;

const USAGE: &str = "usage: dme_peers [peer ADDR [--connect ADDR]... [--super]]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    let Some((mode, rest)) = args.split_first() else {
        println!("three peers in one process, over TCP on free ports");
        let any: Address = "tcp://127.0.0.1:0".parse()?;
        dme_symmetric::one_process(any.clone(), any.clone(), any).await?;
        return Ok(());
    };
    if mode != "peer" {
        return Err(USAGE.into());
    }
    let Some((listen, options)) = rest.split_first() else {
        return Err(USAGE.into());
    };
    let mut connect = Vec::new();
    let mut super_peer = false;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--super" => super_peer = true,
            "--connect" => match options.next() {
                Some(addr) => connect.push(addr.parse::<Address>()?),
                None => return Err(USAGE.into()),
            },
            _ => return Err(USAGE.into()),
        }
    }
    run_peer(listen.parse()?, connect, super_peer).await
}

/// One peer as its own process: runs until stopped.
async fn run_peer(listen: Address, connect: Vec<Address>, super_peer: bool) -> Outcome {
    let peer = Peer::<String>::builder()
        .super_peer(super_peer)
        .listen(listen)
        .await?;
    let me = peer.id().to_string();
    let role = if super_peer { "super-peer" } else { "peer" };
    println!("  {me} | {role} {me} listening on {}", peer.local_addr());

    let mut greeted: Vec<PeerId> = Vec::new();
    for addr in connect {
        let other = peer.connect(&addr).await?;
        println!("  {me} | connected to peer {other} at {addr}");
        peer.send(other, format!("hello from {me}")).await?;
        println!("  {me} | -> greeting to {other}");
        greeted.push(other);
    }
    // Peers reachable only through a super-peer are greeted through it.
    for other in peer.discover().await? {
        if !greeted.contains(&other) {
            peer.send(other, format!("hello from {me}, relayed"))
                .await?;
            println!("  {me} | -> greeting to {other}, through a super-peer");
            greeted.push(other);
        }
    }

    println!("  {me} | receiving until stopped (Ctrl-C)");
    while dme_symmetric::receive_and_answer(&peer, &me, |id| id.to_string()).await? {}
    Ok(())
}
