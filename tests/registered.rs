//! Static registration: `#[farcall::export(name = "...")]` and
//! `node.export_registered()`.

use farcall::directory::{DirectoryClient, DirectoryExt};
use farcall::rmi::ExportRegistered;
use farcall::{Node, Remote, RemoteError};

#[farcall::remote]
pub trait Greeter {
    async fn greet(&self, who: String) -> Result<String, RemoteError>;
}

#[derive(Default)]
struct English;

#[farcall::export(name = "greeters/en")]
#[farcall::remote]
impl Greeter for English {
    async fn greet(&self, who: String) -> Result<String, RemoteError> {
        Ok(format!("hello, {who}"))
    }
}

struct French {
    polite: bool,
}

fn french() -> French {
    French { polite: true }
}

#[farcall::remote]
#[farcall::export(name = "greeters/fr", with = "french")]
impl Greeter for French {
    async fn greet(&self, who: String) -> Result<String, RemoteError> {
        Ok(if self.polite {
            format!("bonjour, {who}")
        } else {
            format!("salut, {who}")
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_object_is_published_with_one_call() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let published = server.export_registered().await.unwrap();
    let names: Vec<&str> = published.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["greeters/en", "greeters/fr"]);
    assert_eq!(published[0].1.interface_name(), Some("Greeter"));

    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, server.local_addr().unwrap())
        .await
        .unwrap();
    let en: Remote<dyn Greeter> = dir.lookup("greeters/en").await.unwrap();
    let fr: Remote<dyn Greeter> = dir.lookup("greeters/fr").await.unwrap();
    assert_eq!(en.greet("Ada".into()).await.unwrap(), "hello, Ada");
    assert_eq!(fr.greet("Ada".into()).await.unwrap(), "bonjour, Ada");

    // Publishing again replaces the bindings (a restarted server's way).
    drop(published);
    let again = server.export_registered().await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(server.directory().list("greeters/").await.unwrap().len(), 2);
    client.shutdown().await;
    server.shutdown().await;
}
