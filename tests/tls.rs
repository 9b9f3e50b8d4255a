//! TLS and mutual TLS on `tls://` addresses, over real sockets on
//! loopback, with certificates made in the test (rcgen): calls and the
//! identities both sides see; every refusal (a wrong server name, another
//! CA, no client certificate under mutual TLS, an expired certificate);
//! plain TCP and TLS crossed, a flood of TLS handshakes and garbage after
//! one, each failing fast while the server goes on serving; references to
//! objects on a TLS node, which third parties dial with TLS and never
//! without.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

#![cfg(feature = "tls")]

mod common;
mod shapes;

use std::sync::Arc;
use std::time::Duration;

use farcall::directory::{DirectoryClient, DirectoryExt};
use farcall::node::Address;
use farcall::rpc::CallContext;
use farcall::tls::{ClientAuth, PeerIdentity, TlsConfig, TlsError};
use farcall::{Node, Remote, RemoteError};
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::pki::{Issued, Pki};
use common::wait::within;
use shapes::{Circle, Disc};

/// Who is calling, as the handler sees it.
#[farcall::remote]
pub trait Whoami {
    /// The caller's certificate identity, as text ("nobody" without one).
    async fn whoami(&self) -> Result<String, RemoteError>;
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
}

struct Teller;

#[farcall::remote]
impl Whoami for Teller {
    async fn whoami(&self) -> Result<String, RemoteError> {
        let cx = CallContext::current().expect("a call's context");
        Ok(cx
            .peer_identity()
            .map_or_else(|| "nobody".to_owned(), |id| id.to_string()))
    }
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        Ok(a + b)
    }
}

/// The names a loopback server's certificate is valid for.
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1"];

fn config(identity: Option<&Issued>, roots: &[&Pki], auth: ClientAuth) -> TlsConfig {
    let mut b = TlsConfig::builder().client_auth(auth);
    if let Some(id) = identity {
        b = b.identity_pem(id.chain.as_bytes(), id.key.as_bytes());
    }
    for r in roots {
        b = b.trust_pem(r.ca_pem.as_bytes());
    }
    b.build().expect("a TLS configuration")
}

/// A node listening on `tls://127.0.0.1:0` with `identity`, serving
/// [`Whoami`] as "who".
async fn server(identity: &Issued, roots: &[&Pki], auth: ClientAuth) -> (Node, Address) {
    let node = Node::builder()
        .tls(config(Some(identity), roots, auth))
        .listen("tls://127.0.0.1:0")
        .await
        .expect("a TLS listener");
    let _: Remote<dyn Whoami> = node.serve("who", Teller);
    let addr = node.local_addr().unwrap();
    assert!(addr.to_string().starts_with("tls://127.0.0.1:"), "{addr}");
    (node, addr)
}

fn client(identity: Option<&Issued>, roots: &[&Pki]) -> Node {
    Node::builder()
        .tls(config(identity, roots, ClientAuth::None))
        .build()
}

/// The error of a connection that must fail, as text.
async fn refused(node: &Node, addr: &Address) -> String {
    match within(20, "a refused connection", node.connection(addr)).await {
        Ok(_) => panic!("the connection to {addr} was accepted"),
        Err(e) => {
            eprintln!("refused: {e}");
            e.to_string()
        }
    }
}

/// The server still serves a good client after whatever happened.
async fn still_serves(addr: &Address, pki: &Pki, identity: Option<&Issued>) {
    let c = client(identity, &[pki]);
    let who = c
        .connect_service::<dyn Whoami>(addr, "who")
        .await
        .expect("a good client still connects");
    assert_eq!(who.add(2, 3).await.unwrap(), 5);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tls_and_mutual_tls_with_identities() {
    let pki = Pki::new("test CA");
    let server_id = pki.issue("calculator", LOOPBACK);
    let alice = pki.issue("alice", &["alice.example"]);

    // Plain TLS: the client checks the server; the server asks nothing.
    let (s, addr) = server(&server_id, &[&pki], ClientAuth::None).await;
    let c = client(None, &[&pki]);
    let who = c.connect_service::<dyn Whoami>(&addr, "who").await.unwrap();
    assert_eq!(who.add(40, 2).await.unwrap(), 42);
    assert_eq!(who.whoami().await.unwrap(), "nobody");
    let conn = c.connection(&addr).await.unwrap();
    let seen: PeerIdentity = conn.peer_identity().expect("the server's identity");
    assert_eq!(seen.common_name.as_deref(), Some("calculator"));
    assert!(seen.has_name("localhost"), "{seen:?}");
    assert!(
        conn.remote_description().starts_with("tls://"),
        "{}",
        conn.remote_description()
    );
    // Many calls in flight, and large ones, over one session.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        let who = who.clone();
        calls.spawn(async move { who.add(i, i).await.unwrap() == 2 * i });
    }
    while let Some(ok) = calls.join_next().await {
        assert!(ok.unwrap());
    }
    c.shutdown().await;
    s.shutdown().await;

    // Mutual TLS: the handler sees the caller's certificate.
    let (s, addr) = server(&server_id, &[&pki], ClientAuth::Required).await;
    let c = client(Some(&alice), &[&pki]);
    let who = c.connect_service::<dyn Whoami>(&addr, "who").await.unwrap();
    assert_eq!(who.whoami().await.unwrap(), "CN=alice");
    c.shutdown().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_cross_a_tls_session_intact() {
    #[farcall::remote]
    pub trait Echo {
        async fn echo(&self, data: Vec<u8>) -> Result<Vec<u8>, RemoteError>;
    }
    struct Back;
    #[farcall::remote]
    impl Echo for Back {
        async fn echo(&self, data: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
            Ok(data)
        }
    }
    let pki = Pki::new("test CA");
    let node = Node::builder()
        .tls(config(
            Some(&pki.issue("echo", LOOPBACK)),
            &[&pki],
            ClientAuth::None,
        ))
        .listen("tls://127.0.0.1:0")
        .await
        .unwrap();
    let _: Remote<dyn Echo> = node.serve("echo", Back);
    let c = client(None, &[&pki]);
    let echo = c
        .connect_service::<dyn Echo>(node.local_addr().unwrap(), "echo")
        .await
        .unwrap();
    // 4 MiB, several at once: records, partial writes and full socket
    // buffers on both sides.
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (echo, data) = (echo.clone(), data.clone());
        calls.spawn(async move { echo.echo(data.clone()).await.unwrap() == data });
    }
    while let Some(ok) = calls.join_next().await {
        assert!(ok.unwrap(), "the echo came back intact");
    }
    c.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_says_why_and_the_server_goes_on() {
    let pki = Pki::new("test CA");
    let other_ca = Pki::new("another CA");
    let alice = pki.issue("alice", &["alice.example"]);

    // A certificate for another name.
    let (s, addr) = server(
        &pki.issue("elsewhere", &["elsewhere.example"]),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let why = refused(&client(None, &[&pki]), &addr).await;
    assert!(
        why.contains("not valid for `127.0.0.1`") && why.contains("elsewhere.example"),
        "{why}"
    );
    s.shutdown().await;

    // A certificate from a CA the client does not trust.
    let (s, addr) = server(
        &other_ca.issue("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let why = refused(&client(None, &[&pki]), &addr).await;
    assert!(
        why.contains("not signed by a root this node trusts"),
        "{why}"
    );
    still_serves_with(&addr, &other_ca).await;
    s.shutdown().await;

    // An expired certificate.
    let (s, addr) = server(
        &pki.issue_expired("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let why = refused(&client(None, &[&pki]), &addr).await;
    assert!(why.contains("certificate has expired"), "{why}");
    s.shutdown().await;

    // Mutual TLS: no client certificate, or one from another CA.
    let (s, addr) = server(
        &pki.issue("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::Required,
    )
    .await;
    let why = refused(&client(None, &[&pki]), &addr).await;
    assert!(why.contains("requires a client certificate"), "{why}");
    let mallory = other_ca.issue("mallory", &["mallory.example"]);
    let why = refused(&client(Some(&mallory), &[&pki]), &addr).await;
    assert!(
        why.contains("does not trust this node's certificate"),
        "{why}"
    );
    still_serves(&addr, &pki, Some(&alice)).await;
    s.shutdown().await;

    // A node without TLS settings cannot dial tls://, and says so.
    let (s, addr) = server(
        &pki.issue("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let why = refused(&Node::new(), &addr).await;
    assert!(why.contains("no TLS settings"), "{why}");
    // A node without an identity cannot listen on tls://.
    match Node::builder()
        .tls(config(None, &[&pki], ClientAuth::None))
        .listen("tls://127.0.0.1:0")
        .await
    {
        Err(e) => assert!(e.to_string().contains("certificate and key"), "{e}"),
        Ok(_) => panic!("a TLS listener without a certificate"),
    }
    s.shutdown().await;

    // Mutual TLS with no root to check clients against.
    let e = TlsConfig::builder()
        .identity_pem(alice.chain.as_bytes(), alice.key.as_bytes())
        .client_auth(ClientAuth::Required)
        .build()
        .unwrap_err();
    assert!(matches!(e, TlsError::NoClientRoots), "{e}");
    // A key that is not the certificate's.
    let bob = pki.issue("bob", &["bob.example"]);
    let e = TlsConfig::builder()
        .identity_pem(alice.chain.as_bytes(), bob.key.as_bytes())
        .build()
        .unwrap_err();
    assert!(
        !e.to_string().contains("PRIVATE KEY"),
        "no key material: {e}"
    );
}

async fn still_serves_with(addr: &Address, ca: &Pki) {
    still_serves(addr, ca, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_tls_crossed_fail_fast() {
    let pki = Pki::new("test CA");
    let (s, tls_addr) = server(
        &pki.issue("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let port = match &tls_addr {
        Address::Tls { port, .. } => *port,
        other => panic!("a tls address, not {other}"),
    };
    // A plain farcall client on the TLS port: refused at once (its hello
    // is not a TLS ClientHello), well within the handshake timeout.
    let plain = Node::new();
    let started = tokio::time::Instant::now();
    let why = refused(
        &plain,
        &Address::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
    )
    .await;
    assert!(
        started.elapsed() < plain.limits().handshake_timeout,
        "failed fast: {why}"
    );
    still_serves(&tls_addr, &pki, None).await;

    // A TLS client on a plain port: refused at once too.
    let plain_server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let plain_port = match plain_server.local_addr().unwrap() {
        Address::Tcp { port, .. } => port,
        other => panic!("a tcp address, not {other}"),
    };
    let c = client(None, &[&pki]);
    let started = tokio::time::Instant::now();
    let why = refused(
        &c,
        &Address::Tls {
            host: "127.0.0.1".into(),
            port: plain_port,
        },
    )
    .await;
    assert!(why.contains("does not speak TLS"), "{why}");
    assert!(
        started.elapsed() < c.limits().handshake_timeout,
        "failed fast: {why}"
    );
    // The plain server serves plain clients still.
    let plain_client = Node::new();
    let conn = plain_client
        .connection(plain_server.local_addr().unwrap())
        .await
        .unwrap();
    assert!(conn.is_open());
    plain_client.shutdown().await;
    plain_server.shutdown().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_and_garbage_after_the_handshake_leave_the_server_serving() {
    let pki = Pki::new("test CA");
    let (s, addr) = server(
        &pki.issue("calculator", LOOPBACK),
        &[&pki],
        ClientAuth::None,
    )
    .await;
    let port = match &addr {
        Address::Tls { port, .. } => *port,
        other => panic!("a tls address, not {other}"),
    };

    // 200 connections that open a TLS handshake and never finish it,
    // and 50 that send garbage where a ClientHello belongs.
    let mut held = Vec::new();
    for i in 0..250 {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if i < 200 {
            // The start of a TLS record carrying a ClientHello, cut short.
            tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
                .await
                .unwrap();
        } else {
            tcp.write_all(&[0xff; 64]).await.unwrap();
        }
        held.push(tcp);
    }
    still_serves(&addr, &pki, None).await;

    // A full TLS handshake (rustls as any client would run it), then
    // bytes that are not a farcall hello: refused, the server goes on.
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
            r.add(c.unwrap()).unwrap();
        }
        r
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![farcall::tls::ALPN.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for garbage in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0u8; 4096][..]] {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .expect("the TLS handshake");
        tls.write_all(garbage).await.unwrap();
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server closed the session");
        still_serves(&addr, &pki, None).await;
    }
    drop(held);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_to_a_tls_node_are_dialed_with_tls_and_never_without() {
    let pki = Pki::new("test CA");
    // The object's owner listens on TLS only.
    let owner = Node::builder()
        .tls(config(
            Some(&pki.issue("owner", LOOPBACK)),
            &[&pki],
            ClientAuth::None,
        ))
        .listen("tls://127.0.0.1:0")
        .await
        .unwrap();
    // A directory on another node, over plain TCP on loopback.
    let dir_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let dir_addr = dir_node.local_addr().unwrap();
    let disc: Remote<dyn Circle> = owner.export(Disc::new(2.0));
    DirectoryClient::connect_on(&owner, &dir_addr)
        .await
        .unwrap()
        .bind("shapes/disc", &disc)
        .await
        .unwrap();

    // A third party with TLS settings: the reference names the TLS
    // address, and the call dials it with TLS.
    let third = client(None, &[&pki]);
    let found: Remote<dyn Circle> = DirectoryClient::connect_on(&third, &dir_addr)
        .await
        .unwrap()
        .lookup("shapes/disc")
        .await
        .unwrap();
    assert!(
        found
            .owner_addrs()
            .iter()
            .all(|a| matches!(a, Address::Tls { .. })),
        "{:?}",
        found.owner_addrs()
    );
    assert_eq!(found.radius().await.unwrap(), 2.0);
    let conn = third
        .connection_to(owner.id())
        .expect("a connection to the owner");
    assert!(conn.peer_identity().is_some(), "dialed with TLS");

    // A third party without TLS settings cannot reach it: the reference
    // never falls back to plain TCP.
    let plain = Node::new();
    let found: Remote<dyn Circle> = DirectoryClient::connect_on(&plain, &dir_addr)
        .await
        .unwrap()
        .lookup("shapes/disc")
        .await
        .unwrap();
    match within(20, "a call without TLS settings", found.radius()).await {
        Err(RemoteError::Disconnected(why)) => assert!(why.contains("TLS"), "{why}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(dir_node.directory().list("").await.unwrap().len(), 1);
    for n in [third, plain, dir_node, owner] {
        n.shutdown().await;
    }
}
