//! Nesting bombs over a real connection: a payload nested past
//! `codec::MAX_DEPTH` is refused with a decode error that names the limit,
//! in either direction, and the node that got it goes on serving.
//!
//! Without the limit these payloads (a megabyte of `0x01` bytes, each one
//! more level of a recursive type) would overflow the decoding thread's
//! stack and abort the whole process.

mod common;

use farcall::__private::codec::MAX_DEPTH;
use farcall::dme::{Client, Server};
use farcall::rpc::Fault;
use farcall::{Error, Node, Remote, RemoteError};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize, Serializer};

use common::wait::within;

/// A recursive type: one level of nesting per link.
#[derive(Debug, PartialEq, Deserialize, farcall::Schema)]
pub enum Chain {
    /// The end of the chain.
    End,
    /// One more link.
    Link(Box<Chain>),
    /// `n` links and the end, made on the fly when encoded (never decoded:
    /// a million boxed links would take long to build and to drop).
    #[serde(skip_deserializing)]
    Bomb(u32),
}

/// Encodes a chain without recursion, as the flat run of variant indices
/// postcard would write for it: `0x01` for each link, `0x00` for the end.
impl Serialize for Chain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut links = 0usize;
        let mut c = self;
        while let Chain::Link(next) = c {
            links += 1;
            c = next;
        }
        if let Chain::Bomb(n) = c {
            links += *n as usize;
        }
        let mut t = s.serialize_tuple(links + 1)?;
        for _ in 0..links {
            t.serialize_element(&1u8)?;
        }
        t.serialize_element(&0u8)?;
        t.end()
    }
}

fn chain(links: u32) -> Chain {
    (0..links).fold(Chain::End, |c, _| Chain::Link(Box::new(c)))
}

fn links(mut c: &Chain) -> u32 {
    let mut n = 0;
    while let Chain::Link(next) = c {
        n += 1;
        c = next;
    }
    n
}

/// Chains in and out.
#[farcall::remote]
pub trait Chains {
    /// How many links `c` has.
    async fn count(&self, c: Chain) -> Result<u32, RemoteError>;
    /// A chain of `n` links; `bomb` sends it as a nesting bomb.
    async fn make(&self, n: u32, bomb: bool) -> Result<Chain, RemoteError>;
    /// Alive?
    async fn ping(&self) -> Result<u64, RemoteError>;
}

/// The server's side.
#[derive(Debug)]
pub struct Smith;

#[farcall::remote]
impl Chains for Smith {
    async fn count(&self, c: Chain) -> Result<u32, RemoteError> {
        Ok(links(&c))
    }
    async fn make(&self, n: u32, bomb: bool) -> Result<Chain, RemoteError> {
        Ok(if bomb { Chain::Bomb(n) } else { chain(n) })
    }
    async fn ping(&self) -> Result<u64, RemoteError> {
        Ok(7)
    }
}

/// A megabyte of nesting.
const BOMB: u32 = 1 << 20;

fn assert_too_deep<T: std::fmt::Debug>(r: Result<T, RemoteError>) {
    match r {
        Err(RemoteError::Decode(s)) => assert!(
            s.contains(&format!("nesting deeper than {MAX_DEPTH}")),
            "the error names the limit: {s}"
        ),
        other => panic!("expected a decode error naming the depth, got {other:?}"),
    }
}

async fn client_of(server: &Node) -> (Node, Remote<dyn Chains>) {
    let client = Node::new();
    let stub = client
        .connect_service::<dyn Chains>(server.local_addr().unwrap(), "chains")
        .await
        .unwrap();
    (client, stub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nesting_bomb_argument_is_refused_and_the_server_goes_on() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _: Remote<dyn Chains> = server.serve("chains", Smith);
    let (client, stub) = client_of(&server).await;
    let (other, bystander) = client_of(&server).await;

    within(30, "bombs and calls", async {
        // The arguments are one tuple: a level of their own.
        let most = (MAX_DEPTH - 2) as u32;
        assert_eq!(stub.count(chain(most)).await, Ok(most));
        assert_too_deep(stub.count(chain(most + 1)).await);

        for _ in 0..3 {
            assert_too_deep(stub.count(Chain::Bomb(BOMB)).await);
            // The same connection and another one are served as before.
            assert_eq!(stub.ping().await, Ok(7));
            assert_eq!(bystander.ping().await, Ok(7));
            assert_eq!(stub.count(chain(5)).await, Ok(5));
        }

        // Bombs from two connections at once, amid ordinary calls.
        let (a, b, c) = tokio::join!(
            stub.count(Chain::Bomb(BOMB)),
            bystander.count(Chain::Bomb(BOMB)),
            bystander.count(chain(100)),
        );
        assert_too_deep(a);
        assert_too_deep(b);
        assert_eq!(c, Ok(100));
    })
    .await;

    client.shutdown().await;
    other.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nesting_bomb_result_is_refused_by_the_client() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _: Remote<dyn Chains> = server.serve("chains", Smith);
    let (client, stub) = client_of(&server).await;

    within(30, "bombs back", async {
        // The reply is a `Result`: a level of its own.
        let most = (MAX_DEPTH - 2) as u32;
        assert_eq!(stub.make(most, false).await.map(|c| links(&c)), Ok(most));
        assert_too_deep(stub.make(most + 1, false).await);
        assert_too_deep(stub.make(BOMB, true).await);
        // The stub and its connection go on.
        assert_eq!(stub.ping().await, Ok(7));
        assert_eq!(stub.make(3, false).await, Ok(chain(3)));
    })
    .await;

    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nesting_bomb_request_to_a_dme_server_is_refused() {
    let server = Server::listen("tcp://127.0.0.1:0", |c: Chain| async move { links(&c) })
        .await
        .unwrap();
    let client = Client::<Chain, u32>::connect(server.local_addr())
        .await
        .unwrap();

    within(30, "dme bombs", async {
        match client.request(Chain::Bomb(BOMB)).await {
            Err(Error::Remote(Fault::Decode(s))) => assert!(
                s.contains(&format!("nesting deeper than {MAX_DEPTH}")),
                "the fault names the limit: {s}"
            ),
            other => panic!("expected a decode fault, got {other:?}"),
        }
        assert_eq!(client.request(chain(9)).await.unwrap(), 9);
    })
    .await;

    server.shutdown().await;
}
