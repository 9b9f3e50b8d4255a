//! Late binding: `LateBound<dyn T>` picks an object per call from a
//! resolver's candidates and fails over when the one picked is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use farcall::directory::Candidates;
use farcall::directory::{LateBound, Policy, Resolve};
use farcall::rmi::AnyRemote;
use farcall::{Node, Remote, RemoteError};

#[farcall::remote]
pub trait Worker {
    /// Who answers; safe to retry anywhere.
    #[remote(idempotent)]
    async fn who(&self) -> Result<String, RemoteError>;
    /// Counts a job: not idempotent.
    async fn count(&self) -> Result<u64, RemoteError>;
    /// Takes its time (to be caught mid-call).
    #[remote(idempotent)]
    async fn slow_who(&self, millis: u64) -> Result<String, RemoteError>;
}

struct Named {
    name: String,
    n: AtomicU64,
}

#[farcall::remote]
impl Worker for Named {
    async fn who(&self) -> Result<String, RemoteError> {
        Ok(self.name.clone())
    }
    async fn count(&self) -> Result<u64, RemoteError> {
        Ok(self.n.fetch_add(1, Ordering::SeqCst) + 1)
    }
    async fn slow_who(&self, millis: u64) -> Result<String, RemoteError> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(self.name.clone())
    }
}

/// A fixed list of candidates (the directory supplies a live one).
struct Fixed(Mutex<Vec<AnyRemote>>);

impl Resolve for Fixed {
    fn candidates(&self) -> Candidates<'_> {
        let v = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(v) })
    }
}

async fn three_servers(client: &Node) -> (Vec<Node>, Arc<Fixed>) {
    let mut servers = Vec::new();
    let mut cands = Vec::new();
    for i in 0..3 {
        let s = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let _: Remote<dyn Worker> = s.serve(
            "worker",
            Named {
                name: format!("server {i}"),
                n: AtomicU64::new(0),
            },
        );
        let r: Remote<dyn Worker> = client
            .connect_service(s.local_addr().unwrap(), "worker")
            .await
            .unwrap();
        cands.push(r.into_any());
        servers.push(s);
    }
    (servers, Arc::new(Fixed(Mutex::new(cands))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_reaches_every_object() {
    let client = Node::new();
    let (servers, resolver) = three_servers(&client).await;
    let late: LateBound<dyn Worker> = LateBound::new(&client, resolver, Policy::RoundRobin);
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..30 {
        *seen.entry(late.who().await.unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|&n| n == 10), "{seen:?}");
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_healthy_sticks_and_random_spreads() {
    let client = Node::new();
    let (servers, resolver) = three_servers(&client).await;
    let first: LateBound<dyn Worker> =
        LateBound::new(&client, resolver.clone(), Policy::FirstHealthy);
    for _ in 0..10 {
        assert_eq!(first.who().await.unwrap(), "server 0");
    }
    let random: LateBound<dyn Worker> = LateBound::new(&client, resolver, Policy::Random);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        seen.insert(random.who().await.unwrap());
    }
    assert_eq!(seen.len(), 3);
    for s in servers {
        s.shutdown().await;
    }
}

/// Three servers, one killed during 1,000 idempotent
/// calls: all 1,000 succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idempotent_calls_survive_a_dead_server() {
    let client = Node::new();
    let (mut servers, resolver) = three_servers(&client).await;
    let late: LateBound<dyn Worker> = LateBound::new(&client, resolver, Policy::RoundRobin);
    let calls = {
        let late = late.clone();
        tokio::spawn(async move {
            let mut by: HashMap<String, u32> = HashMap::new();
            for i in 0..1000u32 {
                // A few slow calls are in flight when the server dies.
                let who = if i % 50 == 0 {
                    late.slow_who(30).await
                } else {
                    late.who().await
                };
                *by.entry(who.unwrap_or_else(|e| panic!("call {i} failed: {e}")))
                    .or_default() += 1;
            }
            by
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dead = servers.remove(1);
    dead.shutdown().await;
    let by = calls.await.unwrap();
    assert_eq!(by.values().sum::<u32>(), 1000);
    assert!(
        by.contains_key("server 0") && by.contains_key("server 2"),
        "{by:?}"
    );
    println!("answers by server: {by:?}");
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_reached_its_object_fails_over_whatever_the_method() {
    let client = Node::new();
    let (mut servers, resolver) = three_servers(&client).await;
    let late: LateBound<dyn Worker> = LateBound::new(&client, resolver, Policy::FirstHealthy);
    assert_eq!(late.who().await.unwrap(), "server 0");
    let dead = servers.remove(0);
    let dead_id = dead.id();
    dead.shutdown().await;
    // Once the client has seen server 0 go (its connection closed), server 0
    // is unreachable. (A request sent while the server was closing could
    // have run: that case fails over only for idempotent methods.)
    let t = std::time::Instant::now();
    while client.connection_to(dead_id).is_some() {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // `count` is not idempotent, but server 0 is unreachable: the request
    // never left, so it goes to the next one.
    assert_eq!(late.count().await.unwrap(), 1);
    assert_eq!(late.who().await.unwrap(), "server 1");
    for s in servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_candidates_is_not_bound() {
    let client = Node::new();
    let late: LateBound<dyn Worker> = LateBound::new(
        &client,
        Arc::new(Fixed(Mutex::new(Vec::new()))),
        Policy::RoundRobin,
    );
    let e = late.who().await.unwrap_err();
    assert_eq!(e, RemoteError::NotBound(String::new()));
    assert_eq!(
        e.to_string(),
        "the late-bound stub's resolver offers no object to call"
    );
}

/// Through the directory, a name with nothing bound is named in the error,
/// before and after something was bound there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_name_with_nothing_bound_is_not_bound_naming_it() {
    use farcall::directory::{DirectoryClient, DirectoryExt};

    let dir_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, dir_node.local_addr().unwrap())
        .await
        .unwrap();
    let late: LateBound<dyn Worker> = dir.late_bound(&client, "workers/none", Policy::RoundRobin);
    let e = late.who().await.unwrap_err();
    assert_eq!(e, RemoteError::NotBound("workers/none".into()));
    assert_eq!(
        e.to_string(),
        "nothing is bound under \"workers/none\": bind an object there before calling it"
    );

    // Bound, then unbound again: the view follows, and the error is back.
    let w: Remote<dyn Worker> = dir_node.export(Named {
        name: "only".into(),
        n: AtomicU64::new(0),
    });
    dir_node.directory().bind("workers/none", &w).await.unwrap();
    let t = std::time::Instant::now();
    while late.who().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "never bound");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dir_node.directory().unbind("workers/none").await.unwrap();
    let t = std::time::Instant::now();
    loop {
        match late.who().await {
            Err(RemoteError::NotBound(n)) => {
                assert_eq!(n, "workers/none");
                break;
            }
            other => assert!(t.elapsed() < Duration::from_secs(10), "still {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await;
    dir_node.shutdown().await;
}

/// Through the directory: the members of a binding, kept fresh by watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_bound_through_the_directory_follows_its_changes() {
    use farcall::directory::DirectoryExt;

    let dir_node = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let mut servers = Vec::new();
    let mut kept = Vec::new();
    for i in 0..3 {
        let s = Node::listen("tcp://127.0.0.1:0").await.unwrap();
        let w: Remote<dyn Worker> = s.export(Named {
            name: format!("server {i}"),
            n: AtomicU64::new(0),
        });
        let dir =
            farcall::directory::DirectoryClient::connect_on(&s, dir_node.local_addr().unwrap())
                .await
                .unwrap();
        dir.add("workers", &w).await.unwrap();
        kept.push(w);
        servers.push(s);
    }
    let client = Node::new();
    let dir =
        farcall::directory::DirectoryClient::connect_on(&client, dir_node.local_addr().unwrap())
            .await
            .unwrap();
    let late: LateBound<dyn Worker> = dir.late_bound(&client, "workers", Policy::RoundRobin);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..9 {
        seen.insert(late.who().await.unwrap());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // One member leaves the binding: the view follows.
    dir_node
        .directory()
        .remove("workers", &kept[1])
        .await
        .unwrap();
    let t = std::time::Instant::now();
    loop {
        let mut now = std::collections::HashSet::new();
        for _ in 0..6 {
            now.insert(late.who().await.unwrap());
        }
        if !now.contains("server 1") {
            assert_eq!(now.len(), 2);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the view never followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await;
    for s in servers {
        s.shutdown().await;
    }
    dir_node.shutdown().await;
}
