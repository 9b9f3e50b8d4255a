//! `AnyRemote`: references of any interface, as a directory stores them.

mod shapes;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use farcall::remote::AnyRemote;
use farcall::{Node, Remote, RemoteError};

use shapes::{Circle, Disc, Shape, Square};

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
