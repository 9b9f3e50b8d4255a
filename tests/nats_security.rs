//! The NATS backends (broker and directory) with credentials and TLS,
//! against real nats-servers on loopback: one that requires a token, one
//! that requires TLS with a certificate made in the test. Skipped with one
//! loud line without nats-server, unless `FARCALL_REQUIRE_NATS=1`.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use farcall::Node;
use farcall::directory::DirectoryClient;
use farcall::mme::{Broker, BrokerError, NatsAuth, NatsOptions};

use common::nats::NatsServer;
use common::pki::Pki;
use common::temp_dir::TempDir;
use common::wait::within;

const TOKEN: &str = "nats-token-made-for-this-test";

fn with_auth(auth: NatsAuth) -> NatsOptions {
    let mut o = NatsOptions::default();
    o.auth = auth;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_token() {
    let Some(nats) = tokio::task::spawn_blocking(|| {
        NatsServer::start_with(&["--auth".to_owned(), TOKEN.to_owned()])
    })
    .await
    .unwrap() else {
        return;
    };
    let url = nats.url();

    // The right token: queues work.
    let b = within(
        20,
        "connecting with the token",
        Broker::connect_nats(&url, with_auth(NatsAuth::Token(TOKEN.into()))),
    )
    .await
    .unwrap();
    let q = b.queue::<u32>("jobs").await.unwrap();
    q.send(&5).await.unwrap();
    let mut c = q.consume().await.unwrap();
    let d = within(20, "the job", c.next()).await.unwrap().unwrap();
    assert_eq!(*d.body(), 5);
    d.ack().await.unwrap();
    b.close().await.unwrap();

    // No token, or a wrong one: refused, and the error shows no token.
    for auth in [NatsAuth::None, NatsAuth::Token("wrong-token-123".into())] {
        match within(
            20,
            "a refused client",
            Broker::connect_nats(&url, with_auth(auth)),
        )
        .await
        {
            Err(e @ BrokerError::Backend(_)) => {
                let why = e.to_string();
                assert!(why.contains("cannot connect"), "{why}");
                assert!(
                    !why.contains("wrong-token-123") && !why.contains(TOKEN),
                    "{why}"
                );
            }
            other => panic!("expected a refused connection, got {other:?}"),
        }
    }

    // The directory on the same server, with the token.
    let node = Node::new();
    let dir = within(
        20,
        "the directory with the token",
        DirectoryClient::connect_nats_on(&node, &url, with_auth(NatsAuth::Token(TOKEN.into()))),
    )
    .await
    .unwrap();
    assert!(dir.list("").await.unwrap().is_empty());
    assert!(!format!("{:?}", with_auth(NatsAuth::Token(TOKEN.into()))).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_tls() {
    let pki = Pki::new("nats test CA");
    let files = TempDir::new("nats-tls");
    let id = pki.issue("nats", &["localhost", "127.0.0.1"]);
    let write = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (cert, key, ca) = (
        write("server.crt", &id.chain),
        write("server.key", &id.key),
        write("ca.crt", &pki.ca_pem),
    );
    let args = vec![
        "--tls".to_owned(),
        "--tlscert".to_owned(),
        cert.display().to_string(),
        "--tlskey".to_owned(),
        key.display().to_string(),
    ];
    let Some(nats) = tokio::task::spawn_blocking(move || NatsServer::start_with(&args))
        .await
        .unwrap()
    else {
        return;
    };
    let url = nats.url();

    let mut tls = NatsOptions::default();
    tls.tls.require = true;
    tls.tls.roots = Some(ca.clone());
    let b = within(
        20,
        "connecting with TLS",
        Broker::connect_nats(&url, tls.clone()),
    )
    .await
    .unwrap();
    let mut sub = b.subscribe::<u32>("t.>").await.unwrap();
    b.publish("t.x", &9u32).await.unwrap();
    b.flush().await.unwrap();
    let m = within(20, "the message", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body, 9);
    b.close().await.unwrap();

    // Without the root the server's certificate is not trusted.
    let mut untrusted = NatsOptions::default();
    untrusted.tls.require = true;
    match within(
        20,
        "an untrusted server",
        Broker::connect_nats(&url, untrusted),
    )
    .await
    {
        Err(BrokerError::Backend(why)) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("expected a refused connection, got {other:?}"),
    }
}
