//! Who may write to a directory: the write check admits this host only
//! (loopback, Unix sockets and `mem://` by default, or the trusted networks
//! configured), decided from the typed peer address before the call's
//! arguments are decoded; reads stay open.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;
mod shapes;

use farcall::__private::transport::{PeerAddr, TrustedNetworks};
use farcall::directory::{DIRECTORY_ENV, WRITE_METHODS, authorize_write, set_trusted_networks};
use farcall::directory::{DirectoryApi, DirectoryClient, DirectoryError, DirectoryExt};
use farcall::rmi::Interface;
use farcall::rmi::ObjectId;
use farcall::{Node, Remote};

use shapes::{Circle, Disc};

// ---------------------------------------------------------------------------
// Who may write
// ---------------------------------------------------------------------------

#[test]
fn the_write_check_admits_this_host_only() {
    let trusted = TrustedNetworks::default();
    let tcp = |s: &str| PeerAddr::Tcp(s.parse().unwrap());
    for ok in [
        tcp("127.0.0.1:4000"),
        tcp("127.3.2.1:1"),
        tcp("[::1]:4000"),
        tcp("[::ffff:127.0.0.1]:4000"),
        PeerAddr::Unix,
        PeerAddr::Mem,
    ] {
        assert!(authorize_write(&ok, &trusted).is_ok(), "{ok}");
    }
    for no in [
        tcp("10.0.0.1:4000"),
        tcp("192.168.1.20:4000"),
        tcp("0.0.0.0:4000"),
        tcp("[2001:db8::1]:4000"),
        tcp("[::ffff:10.0.0.1]:4000"),
    ] {
        let why = authorize_write(&no, &trusted).unwrap_err();
        assert!(why.contains("own host"), "{no}: {why}");
    }
    // Nothing trusted: not even this host.
    let why = authorize_write(&PeerAddr::Unix, &TrustedNetworks::none()).unwrap_err();
    assert!(why.contains("own host"), "{why}");
    assert_eq!(WRITE_METHODS, ["bind", "rebind", "add", "unbind", "remove"]);
}

/// The method word of a directory method, from its descriptor.
fn word(name: &str) -> u64 {
    <dyn DirectoryApi as Interface>::descriptor()
        .methods
        .iter()
        .find(|m| m.name == name)
        .unwrap()
        .word()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_another_address_are_refused_before_decoding() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let client = Node::new();
    // Over loopback, a garbage write payload reaches the decoder...
    let conn = client
        .connection(server.local_addr().unwrap())
        .await
        .unwrap();
    match conn
        .call_bytes(ObjectId::DIRECTORY, word("bind"), &[0xff; 8], None)
        .await
    {
        Err(farcall::Error::Remote(farcall::rpc::Fault::Decode(_))) => {}
        other => panic!("expected a decode fault, got {other:?}"),
    }

    // ... and from an untrusted address it is refused before that. The
    // directory trusts only 127.0.0.2, so a caller from 127.0.0.1 is
    // "another host" (all of it on loopback).
    assert!(set_trusted_networks(
        &server,
        TrustedNetworks::none().with_network("127.0.0.2/32".parse().unwrap())
    ));
    let bound = server.local_addr().unwrap();
    let outsider = Node::new();
    let conn = outsider.connection(&bound).await.unwrap();
    assert!(
        matches!(conn.peer_addr(), PeerAddr::Tcp(a) if a.ip().is_loopback()),
        "{}",
        conn.peer_addr()
    );
    for m in WRITE_METHODS {
        match conn
            .call_bytes(ObjectId::DIRECTORY, word(m), &[0xff; 8], None)
            .await
        {
            Err(farcall::Error::Remote(farcall::rpc::Fault::Unauthorized(why))) => {
                assert!(why.contains("own host"), "{m}: {why}");
                assert!(why.contains("127.0.0.1"), "{m}: {why}");
            }
            other => panic!("{m}: expected a refusal, got {other:?}"),
        }
    }
    // Through the typed client: Unauthorized for writes, reads open.
    let dir = DirectoryClient::connect_on(&outsider, &bound)
        .await
        .unwrap();
    let disc: Remote<dyn Circle> = outsider.export(Disc::new(1.0));
    match dir.bind("outside", &disc).await {
        Err(DirectoryError::Unauthorized(why)) => assert!(why.contains("own host"), "{why}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(matches!(
        dir.unbind("x").await,
        Err(DirectoryError::Unauthorized(_))
    ));
    let inside: Remote<dyn Circle> = server.export(Disc::new(2.0));
    server.directory().bind("inside", &inside).await.unwrap();
    let inside: Remote<dyn Circle> = dir.lookup("inside").await.unwrap();
    assert_eq!(inside.radius().await.unwrap(), 2.0);
    assert_eq!(dir.list("").await.unwrap().len(), 1);
    // Once its address is trusted, the same caller may write.
    assert!(set_trusted_networks(
        &server,
        TrustedNetworks::none().with_network("127.0.0.1/32".parse().unwrap())
    ));
    dir.bind("outside", &disc).await.unwrap();
    assert_eq!(dir.list("").await.unwrap().len(), 2);
    outsider.shutdown().await;
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn from_env_without_the_variable_says_so() {
    if std::env::var_os(DIRECTORY_ENV).is_some() {
        return;
    }
    let node = Node::new();
    match DirectoryClient::from_env_on(&node).await {
        Err(DirectoryError::Config(why)) => assert!(why.contains(DIRECTORY_ENV), "{why}"),
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_by_principal_and_prefix() {
    use farcall::auth::Tokens;
    use farcall::directory::{Permissions, set_permissions};

    let server = Node::builder()
        .authenticator(
            Tokens::new()
                .allow("token-of-shop", "shop")
                .allow("token-of-audit", "audit")
                .allow("token-of-eve", "eve"),
        )
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    assert!(set_permissions(
        &server,
        Permissions::new()
            .write("shop", "shop/")
            .read("audit", "")
            .restrict_reads()
    ));
    let addr = server.local_addr().unwrap();
    let as_ = |token: &str| Node::builder().credentials(token.to_owned()).build();
    let (shop, audit, eve) = (
        as_("token-of-shop"),
        as_("token-of-audit"),
        as_("token-of-eve"),
    );

    // The shop writes and reads under its prefix, and nowhere else.
    let dir = DirectoryClient::connect_on(&shop, &addr).await.unwrap();
    let disc: Remote<dyn Circle> = shop.export(Disc::new(1.0));
    dir.bind("shop/cart", &disc).await.unwrap();
    let got: Remote<dyn Circle> = dir.lookup("shop/cart").await.unwrap();
    assert_eq!(got.radius().await.unwrap(), 1.0);
    match dir.bind("billing/invoice", &disc).await {
        Err(DirectoryError::Unauthorized(why)) => {
            assert_eq!(why, "`shop` may not write under `billing/invoice`")
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(matches!(
        dir.list("").await,
        Err(DirectoryError::Unauthorized(_))
    ));
    assert_eq!(dir.list("shop/").await.unwrap().len(), 1);

    // The auditor reads everything and writes nothing.
    let audit_dir = DirectoryClient::connect_on(&audit, &addr).await.unwrap();
    assert_eq!(audit_dir.list("").await.unwrap().len(), 1);
    match audit_dir.unbind("shop/cart").await {
        Err(DirectoryError::Unauthorized(why)) => {
            assert_eq!(why, "`audit` may not write in this directory")
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // Eve has no permission: refused from the method word, before the
    // (garbage) arguments are decoded; reads too.
    let conn = eve.connection(&addr).await.unwrap();
    for m in ["bind", "lookup"] {
        match conn
            .call_bytes(ObjectId::DIRECTORY, word(m), &[0xff; 8], None)
            .await
        {
            Err(farcall::Error::Remote(farcall::rpc::Fault::Unauthorized(why))) => {
                assert!(why.starts_with("`eve` may not"), "{m}: {why}")
            }
            other => panic!("{m}: expected a refusal, got {other:?}"),
        }
    }
    // The directory's own node is not checked.
    server
        .directory()
        .bind("billing/local", &disc)
        .await
        .unwrap();
    assert_eq!(audit_dir.list("").await.unwrap().len(), 2);
    for n in [shop, audit, eve, server] {
        n.shutdown().await;
    }
}
