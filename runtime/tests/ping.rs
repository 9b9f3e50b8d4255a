//! `Connection::ping`: a round trip of a ping frame, answered by the
//! peer's reader, and a clear error once the connection is gone.

use std::time::Duration;

use farcall_runtime::{Error, Node};

#[tokio::test]
async fn a_ping_comes_back_and_a_closed_connection_says_so() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let client = Node::new();
    let conn = client.dial(&server.local_addr().unwrap()).await.unwrap();
    for _ in 0..3 {
        let rtt = conn.ping(Duration::from_secs(10)).await.unwrap();
        assert!(rtt < Duration::from_secs(10));
    }
    assert_eq!(conn.peer_id(), server.id());
    server.shutdown().await;
    // The close reaches the client within a few round trips; a bound
    // keeps a broken build from spinning.
    let mut e = None;
    for _ in 0..500 {
        match conn.ping(Duration::from_secs(10)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(err) => {
                e = Some(err);
                break;
            }
        }
    }
    let e = e.expect("the ping fails once the server is gone");
    assert!(matches!(e, Error::Closed | Error::Disconnected(_)), "{e}");
    client.shutdown().await;
}
