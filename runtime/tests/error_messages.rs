//! The runtime's errors as people read them: whole sentences, each piece
//! of context once, no Rust `Debug` output. Loopback and `mem://` only.

use std::error::Error as _;
use std::time::Duration;

use farcall_runtime::dme::Peer;
use farcall_runtime::wire::frame::EncodeError;
use farcall_runtime::wire::{Frame, FrameError};
use farcall_runtime::{Error, Node, NodeId};

#[tokio::test]
async fn a_listen_on_a_port_in_use_says_so_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let addr = format!("tcp://127.0.0.1:{port}");
    let node = Node::new();
    let e = node.add_listener(addr.as_str()).await.unwrap_err();
    let Error::Listen { addr: at, source } = &e else {
        panic!("expected Error::Listen, got {e:?}");
    };
    assert_eq!(at.to_string(), addr);
    assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
    let text = e.to_string();
    assert_eq!(text, format!("cannot listen on {addr}: {source}"));
    assert_eq!(text.matches("cannot listen on").count(), 1, "{text}");
    #[cfg(target_os = "linux")]
    assert_eq!(
        text,
        format!("cannot listen on {addr}: Address already in use (os error 98)")
    );
    // The cause stays reachable, for reporters that walk the chain.
    assert!(e.source().is_some());
    node.shutdown().await;
}

#[tokio::test]
async fn a_listen_on_a_mem_name_in_use() {
    let first = Node::listen("mem://errors-in-use").await.unwrap();
    let node = Node::new();
    let e = node.add_listener("mem://errors-in-use").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot listen on mem://errors-in-use: another listener holds this name"
    );
    node.shutdown().await;
    first.shutdown().await;
}

#[tokio::test]
async fn a_dial_to_nobody_names_the_address_once() {
    let node = Node::new();
    let e = node.connection("mem://errors-nobody").await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "cannot connect to mem://errors-nobody: nothing listens on this name"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_super_peer_without_a_route_gives_the_same_typed_error() {
    let hub = Peer::<String>::builder()
        .super_peer(true)
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let a = Peer::<String>::listen("tcp://127.0.0.1:0").await.unwrap();
    a.connect(hub.local_addr()).await.unwrap();
    assert_eq!(a.super_peers(), vec![hub.id()]);
    let nowhere = NodeId::random();
    let asked = a.request_within(nowhere, "lost".into(), Some(Duration::from_secs(10)));
    match asked.await {
        Err(Error::NoRoute(to)) => assert_eq!(to, nowhere),
        other => panic!("expected NoRoute from the super-peer, got {other:?}"),
    }
    let e = Error::NoRoute(nowhere);
    assert_eq!(e.to_string(), format!("no route to peer {nowhere}"));
    a.shutdown().await;
    hub.shutdown().await;
}

#[test]
fn a_malformed_header_names_its_kind_as_the_protocol_does() {
    let e = Frame::decode(bytes::Bytes::from_static(&[5])).unwrap_err();
    let FrameError::BadHeader { ref reason, .. } = e else {
        panic!("expected BadHeader, got {e:?}");
    };
    assert_eq!(
        e.to_string(),
        format!("malformed StreamEnd header: {reason}")
    );
}

#[test]
fn a_frame_that_does_not_encode_keeps_its_cause() {
    let too_large = EncodeError::<postcard::Error>::Frame(FrameError::TooLarge { len: 10, max: 4 });
    assert_eq!(
        too_large.to_string(),
        "frame of 10 bytes exceeds the limit of 4 bytes"
    );
    let e = Error::from(too_large);
    assert!(
        matches!(e, Error::Frame(FrameError::TooLarge { .. })),
        "{e:?}"
    );

    let payload = EncodeError::Payload(postcard::Error::SerializeBufferFull);
    assert_eq!(
        payload.to_string(),
        format!(
            "the payload does not encode: {}",
            postcard::Error::SerializeBufferFull
        )
    );
    let e = Error::from(payload);
    assert!(matches!(e, Error::Encode(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "could not encode the message: {}",
            postcard::Error::SerializeBufferFull
        )
    );
    assert!(e.source().is_some(), "the encoder's error is the source");
}
