//! Handshake credentials: what a dialing node presents, the listener reads.

use std::time::{Duration, Instant};

use farcall::Node;

async fn server_side_credentials(server: &Node, client: &Node) -> Option<bytes::Bytes> {
    let conn = client
        .connection(server.local_addr().unwrap())
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(c) = server
            .connections()
            .into_iter()
            .find(|c| c.peer_id() == client.id())
        {
            // The dialer itself never sees credentials from the listener.
            assert!(conn.peer_credentials().is_none());
            return c.peer_credentials().cloned();
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialers_credentials_reach_the_listener() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let with = Node::builder().credentials(&b"s3cret"[..]).build();
    let without = Node::new();
    assert_eq!(
        server_side_credentials(&server, &with).await.as_deref(),
        Some(&b"s3cret"[..])
    );
    assert_eq!(server_side_credentials(&server, &without).await, None);
    with.shutdown().await;
    without.shutdown().await;
    server.shutdown().await;
}

#[farcall::remote]
pub trait Ping {
    async fn ping(&self) -> Result<u8, farcall::RemoteError>;
}

struct P;

#[farcall::remote]
impl Ping for P {
    async fn ping(&self) -> Result<u8, farcall::RemoteError> {
        Ok(1)
    }
}

/// The directory's token: with `TokenOnly`, a writer must present it even
/// from the same host; lookups stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_admits_writers_that_present_its_token() {
    use farcall::Remote;
    use farcall::directory::{DirectoryClient, DirectoryError};
    use farcall::directory::{WriteAccess, set_write_access};

    let dir_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    assert!(set_write_access(
        &dir_node,
        WriteAccess::TokenOnly(bytes::Bytes::from_static(b"tok"))
    ));
    let addr = dir_node.local_addr().unwrap();

    let stranger = Node::new();
    let obj: Remote<dyn Ping> = stranger.export(P);
    let dir = DirectoryClient::connect_on(&stranger, &addr).await.unwrap();
    match dir.bind("svc/ping", &obj).await {
        Err(DirectoryError::Unauthorized(why)) => assert!(why.contains("token"), "{why}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // It listens, so that the stranger can reach what it binds.
    let trusted = Node::builder()
        .credentials(&b"tok"[..])
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let obj2: Remote<dyn Ping> = trusted.export(P);
    let dir2 = DirectoryClient::connect_on(&trusted, &addr).await.unwrap();
    dir2.bind("svc/ping", &obj2).await.unwrap();

    // Lookups are open to all.
    let found: Remote<dyn Ping> = dir.lookup("svc/ping").await.unwrap();
    assert_eq!(found.ping().await.unwrap(), 1);
    stranger.shutdown().await;
    trusted.shutdown().await;
    dir_node.shutdown().await;
}
