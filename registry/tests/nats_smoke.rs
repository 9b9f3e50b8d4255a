//! The directory on a nats-server already running at `FARCALL_TEST_NATS_URL`
//! (skipped without it; the behaviour suite at the facade starts its own).
#![cfg(feature = "nats")]

use std::time::Duration;

use farcall_registry::{Change, DirectoryClient, DirectoryError};
use farcall_runtime::{Node, Remote, RemoteError};

#[farcall_macros::remote(crate = "::farcall_runtime")]
pub trait Echo {
    async fn echo(&self, s: String) -> Result<String, RemoteError>;
}

struct E;

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl Echo for E {
    async fn echo(&self, s: String) -> Result<String, RemoteError> {
        Ok(s)
    }
}

#[tokio::test]
async fn kv_directory() {
    let Ok(url) = std::env::var("FARCALL_TEST_NATS_URL") else {
        eprintln!("kv_directory: skipped: FARCALL_TEST_NATS_URL is not set");
        return;
    };
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let dir = DirectoryClient::connect_on(&server, url.as_str())
        .await
        .unwrap();
    let name = format!("smoke/{}.x", std::process::id());
    let _ = dir.raw().unbind(name.clone()).await;
    let mut watch = dir.watch("smoke/").await.unwrap();
    let e: Remote<dyn Echo> = server.export(E);
    dir.bind(&name, &e).await.unwrap();
    assert!(matches!(
        dir.bind(&name, &e).await,
        Err(DirectoryError::AlreadyBound(_))
    ));

    let client = Node::new();
    let cdir = DirectoryClient::connect_on(&client, url.as_str())
        .await
        .unwrap();
    let found: Remote<dyn Echo> = cdir.lookup(&name).await.unwrap();
    assert_eq!(found.echo("hi".into()).await.unwrap(), "hi");
    let c = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(matches!(c, Some(Ok(Change::Bound { .. }))), "{c:?}");
    assert!(
        cdir.list("smoke/")
            .await
            .unwrap()
            .iter()
            .any(|x| x.name == name)
    );
    dir.unbind(&name).await.unwrap();
    assert!(matches!(
        cdir.lookup::<dyn Echo>(&name).await,
        Err(DirectoryError::NotBound(_))
    ));
    let c = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(matches!(c, Some(Ok(Change::Unbound { .. }))), "{c:?}");
}
