//! Leases: the distributed garbage collector. Exported objects live while a
//! local handle, a remote lease or a pin holds them, a reference of any
//! interface (`AnyRemote`) as much as a typed one; these tests count the
//! drops of the objects themselves.

mod shapes;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use farcall::__private::wire::Frame;
use farcall::__private::wire::frame;
use farcall::__private::wire::handshake::{self, ANSWER_PREFIX, Hello, encode_hello};
use farcall::node::{Limits, NodeId};
use farcall::rmi::AnyRemote;
use farcall::rmi::ObjectId;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use shapes::{Circle, Disc, Shape, Square};

#[farcall::remote]
pub trait Probe {
    /// Answers with the probe's number.
    async fn ping(&self) -> Result<u32, RemoteError>;
}

#[farcall::remote]
pub trait Factory {
    /// Exports a new probe and returns a reference to it; the factory keeps
    /// no handle of its own.
    async fn make(&self, n: u32) -> Result<Remote<dyn Probe>, RemoteError>;
}

struct Tracked {
    n: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[farcall::remote]
impl Probe for Tracked {
    async fn ping(&self) -> Result<u32, RemoteError> {
        Ok(self.n)
    }
}

struct Maker {
    drops: Arc<AtomicUsize>,
}

#[farcall::remote]
impl Factory for Maker {
    async fn make(&self, n: u32) -> Result<Remote<dyn Probe>, RemoteError> {
        let node = CallContext::current()
            .and_then(|cx| cx.connection)
            .and_then(|c| c.node())
            .ok_or_else(|| RemoteError::Rejected("no node".into()))?;
        Ok(node.export(Tracked {
            n,
            drops: self.drops.clone(),
        }))
    }
}

async fn owner(limits: Limits) -> (Node, Arc<AtomicUsize>) {
    let node = Node::builder()
        .limits(limits)
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let _: Remote<dyn Factory> = node.serve(
        "factory",
        Maker {
            drops: drops.clone(),
        },
    );
    (node, drops)
}

/// Waits (at most `secs`) until `drops` reaches `n`; returns how long it took.
async fn until_dropped(drops: &AtomicUsize, n: usize, secs: u64) -> Duration {
    let t = Instant::now();
    while drops.load(Ordering::SeqCst) < n {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{} of {n} objects dropped after {secs} s",
            drops.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_lives_while_leased_and_is_freed_after_release() {
    let (server, drops) = owner(Limits::default()).await;
    let client = Node::new();
    let factory: Remote<dyn Factory> = client
        .connect_service(server.local_addr().unwrap(), "factory")
        .await
        .unwrap();
    let probe = factory.make(7).await.unwrap();
    let copy = probe.clone();
    // The owner kept no handle: only the client's lease holds the object.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(copy.ping().await.unwrap(), 7);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(probe);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a clone still lives");
    assert_eq!(copy.ping().await.unwrap(), 7);
    drop(copy);
    let took = until_dropped(&drops, 1, 10).await;
    println!("freed {took:?} after the last reference dropped");
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_received_twice_share_one_lease() {
    let (server, drops) = owner(Limits::default()).await;
    let client = Node::new();
    let factory: Remote<dyn Factory> = client
        .connect_service(server.local_addr().unwrap(), "factory")
        .await
        .unwrap();
    let many: Vec<Remote<dyn Probe>> = {
        let mut v = Vec::new();
        for n in 0..50 {
            v.push(factory.make(n).await.unwrap());
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    for (n, p) in many.iter().enumerate() {
        assert_eq!(p.ping().await.unwrap(), n as u32);
    }
    drop(many);
    until_dropped(&drops, 50, 10).await;
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_an_object_past_many_lease_times() {
    let mut limits = Limits::default();
    limits.lease_time = Duration::from_millis(200);
    let (server, drops) = owner(limits.clone()).await;
    let client = Node::builder().limits(limits).build();
    let factory: Remote<dyn Factory> = client
        .connect_service(server.local_addr().unwrap(), "factory")
        .await
        .unwrap();
    let probe = factory.make(3).await.unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(probe.ping().await.unwrap(), 3);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0, "renewed every 100 ms");
    drop(probe);
    until_dropped(&drops, 1, 10).await;
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_connection_dying_ends_its_leases() {
    let (server, drops) = owner(Limits::default()).await;
    let client = Node::new();
    let factory: Remote<dyn Factory> = client
        .connect_service(server.local_addr().unwrap(), "factory")
        .await
        .unwrap();
    let probe = factory.make(1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    for c in server.connections() {
        c.abort("the test cuts the holder off");
    }
    until_dropped(&drops, 1, 10).await;
    drop(probe);
    client.shutdown().await;
    server.shutdown().await;
}

/// A raw client that completes the handshake, sends `frames`, and keeps the
/// socket open without a word more (no pings answered, no renewals).
async fn raw_holder(addr: &str, frames: &[Frame]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let hello = encode_hello(&Hello {
        node: NodeId(0xdead_beef),
        max_frame_len: 1 << 20,
        max_in_flight: 16,
        credentials: None,
    });
    s.write_all(&hello).await.unwrap();
    let mut p = [0u8; ANSWER_PREFIX];
    s.read_exact(&mut p).await.unwrap();
    let (status, len) = handshake::decode_answer_prefix(&p).unwrap();
    assert_eq!(status, 0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let mut buf = BytesMut::new();
    for f in frames {
        frame::encode(&mut buf, f, 1 << 20).unwrap();
    }
    s.write_all(&buf).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_expires_when_its_holder_vanishes_without_a_word() {
    // Long keepalive: the connection stays up; only the lease can expire.
    let mut limits = Limits::default();
    limits.lease_time = Duration::from_millis(300);
    let (server, drops) = owner(limits).await;
    let probe: Remote<dyn Probe> = server.export(Tracked {
        n: 9,
        drops: drops.clone(),
    });
    let id: ObjectId = probe.id();
    let addr = server.local_addr().unwrap().to_string();
    let addr = addr.trim_start_matches("tcp://");
    let silent = raw_holder(addr, &[Frame::LeaseRenew { objects: vec![id] }]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(probe); // the owner's own handle goes: only the lease holds it now
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0, "leased");
    let took = until_dropped(&drops, 1, 10).await;
    println!("freed {took:?} after the holder fell silent (lease time 300 ms)");
    drop(silent);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_lease_renewals_is_cut_off_and_others_go_on() {
    let (server, drops) = owner(Limits::default()).await;
    let keeper = Node::new();
    let factory: Remote<dyn Factory> = keeper
        .connect_service(server.local_addr().unwrap(), "factory")
        .await
        .unwrap();
    let kept = factory.make(5).await.unwrap();

    let addr = server.local_addr().unwrap().to_string();
    let addr = addr.trim_start_matches("tcp://");
    let flood: Vec<Frame> = (0..5_000)
        .map(|_| Frame::LeaseRenew {
            objects: vec![ObjectId(1 << 40)],
        })
        .collect();
    let mut s = raw_holder(addr, &flood).await;
    // The server closes the flooding connection.
    let mut sink = BytesMut::with_capacity(1 << 16);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            sink.clear();
            match s.read_buf(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the flooding peer was not cut off");
    let mut b = BytesMut::new();
    b.put_u8(0);
    // Everyone else goes on.
    assert_eq!(kept.ping().await.unwrap(), 5);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(kept);
    keeper.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// References of any interface (`AnyRemote`), as a directory stores them
// ---------------------------------------------------------------------------

/// Keeps references of any interface.
#[farcall::remote]
pub trait Shelf {
    async fn put(&self, r: AnyRemote) -> Result<(), RemoteError>;
    async fn take(&self) -> Result<Option<AnyRemote>, RemoteError>;
}

#[derive(Default)]
struct Box_(Mutex<Vec<AnyRemote>>);

#[farcall::remote]
impl Shelf for Box_ {
    async fn put(&self, r: AnyRemote) -> Result<(), RemoteError> {
        self.0.lock().unwrap().push(r);
        Ok(())
    }
    async fn take(&self) -> Result<Option<AnyRemote>, RemoteError> {
        Ok(self.0.lock().unwrap().pop())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_remote_round_trips_narrows_and_holds_its_object() {
    let shelf_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _: Remote<dyn Shelf> = shelf_node.serve("shelf", Box_::default());
    let owner = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let shelf: Remote<dyn Shelf> = owner
        .connect_service(shelf_node.local_addr().unwrap(), "shelf")
        .await
        .unwrap();
    {
        let disc: Remote<dyn Circle> = owner.export(Disc {
            r: 2.0,
            drops: drops.clone(),
        });
        let any: AnyRemote = disc.into_any();
        assert_eq!(any.interface_name(), Some("Circle"));
        assert!(any.implements::<dyn Shape>());
        assert!(!any.implements::<dyn Square>());
        shelf.put(any).await.unwrap();
    }
    // Only the shelf's lease holds the disc now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the shelf's lease holds it"
    );

    let other = Node::new();
    let shelf2: Remote<dyn Shelf> = other
        .connect_service(shelf_node.local_addr().unwrap(), "shelf")
        .await
        .unwrap();
    let any = shelf2.take().await.unwrap().expect("a reference");
    assert!(!any.is_local());
    assert!(any.narrow::<dyn Square>().is_none());
    let circle = any.narrow::<dyn Circle>().expect("a circle");
    assert_eq!(circle.radius().await.unwrap(), 2.0);
    let shape = any.narrow::<dyn Shape>().expect("a shape");
    assert_eq!(shape.area().await.unwrap(), 12.0);
    // The shelf gave its reference away; once ours go, the disc is freed.
    drop((any, circle, shape));
    let t = Instant::now();
    while drops.load(Ordering::SeqCst) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the disc was never freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other.shutdown().await;
    owner.shutdown().await;
    shelf_node.shutdown().await;
}
