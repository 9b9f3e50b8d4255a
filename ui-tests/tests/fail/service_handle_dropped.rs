//! A handle that stops its service when dropped, dropped on the spot: each
//! statement below warns (made an error here so that the case fails).

#![deny(unused_must_use)]

use std::sync::Arc;

use farcall::RemoteError;
use farcall::dme::{Peer, Server};
use farcall::mme::Broker;

#[farcall::remote]
pub trait Echo {
    async fn echo(&self, n: u64) -> Result<u64, RemoteError>;
}

struct Same;

#[farcall::remote]
impl Echo for Same {
    async fn echo(&self, n: u64) -> Result<u64, RemoteError> {
        Ok(n)
    }
}

async fn dropped(node: farcall::Node, broker: Broker) -> farcall::Result<()> {
    node.export::<dyn Echo, _>(Same);
    node.export_arc::<dyn Echo>(Arc::new(Same));
    Server::listen("tcp://127.0.0.1:0", |n: u64| async move { n }).await?;
    Peer::<u64>::listen("tcp://127.0.0.1:0").await?;
    farcall::Node::listen("tcp://127.0.0.1:0").await?;
    broker.serve::<dyn Echo, _>("echo", Same).await.unwrap();
    Ok(())
}

fn main() {
    let _ = dropped;
}
