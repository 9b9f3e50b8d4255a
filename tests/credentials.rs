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
