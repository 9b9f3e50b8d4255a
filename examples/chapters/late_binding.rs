//! Chapter: remote method invocation, late binding (the directory and
//! `LateBound<dyn Trait>`).
//!
//! Two greeters, one English and one French, live on two server nodes.
//! Neither client nor servers know each other's addresses: the servers add
//! their greeter to the group "greeters" in a directory (a third node's
//! directory; every node embeds one), and the client only knows the
//! directory. It calls through a late-bound stub, which asks the directory
//! which objects serve the name and picks one per call (round-robin here),
//! so both greeters answer in turn. Then the French server stops: the next
//! call to it fails over to the English one (`greet` is
//! `#[remote(idempotent)]`, so even a request already sent is retried),
//! and once the directory notices the server is gone it drops the member
//! and tells the stub, which stops trying it.
//!
//! Included with `#[path]` by `examples/late_binding.rs` and
//! `examples/tour.rs`.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use farcall::directory::{DirectoryClient, LateBound, Policy};
use farcall::node::{Address, Limits};
use farcall::{Node, Remote, RemoteError};
use serde::{Deserialize, Serialize};

/// The name the greeters are added under (a group: several objects).
pub(crate) const NAME: &str = "greeters";

/// The directory's lease time: a member whose node cannot be reached for
/// this long is dropped from the directory (60 s by default; short here so
/// that the example shows it).
pub(crate) const LEASE: Duration = Duration::from_secs(2);

/// A greeting, and who made it.
#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Greeting {
    /// The greeting itself.
    pub(crate) text: String,
    /// The greeter that answered, and where it lives.
    pub(crate) by: String,
}

/// The remote interface.
#[farcall::remote]
pub(crate) trait Greeter {
    /// Greets someone. Idempotent: safe to send again to another greeter
    /// if the first one dies before answering.
    #[remote(idempotent)]
    async fn greet(&self, name: String) -> Result<Greeting, RemoteError>;
}

/// A greeter's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// The language's tag, as on the command line.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::En => "English",
            Lang::Fr => "French",
        })
    }
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Lang::En),
            "fr" => Ok(Lang::Fr),
            other => Err(format!("unknown language {other:?} (en or fr)")),
        }
    }
}

/// The English implementation.
pub(crate) struct English {
    at: String,
}

#[farcall::remote]
impl Greeter for English {
    async fn greet(&self, name: String) -> Result<Greeting, RemoteError> {
        println!("  en     | greet({name:?})");
        Ok(Greeting {
            text: format!("Hello, {name}!"),
            by: format!("the English greeter at {}", self.at),
        })
    }
}

/// The French implementation.
pub(crate) struct French {
    at: String,
}

#[farcall::remote]
impl Greeter for French {
    async fn greet(&self, name: String) -> Result<Greeting, RemoteError> {
        println!("  fr     | greet({name:?})");
        Ok(Greeting {
            text: format!("Bonjour, {name} !"),
            by: format!("the French greeter at {}", self.at),
        })
    }
}

/// Starts the directory's node on `addr`. Any node's directory would do
/// (every node embeds one); this one only serves the directory, with a
/// short lease time so that members of dead nodes go quickly.
pub(crate) async fn start_directory(addr: Address) -> farcall::Result<Node> {
    let mut limits = Limits::default();
    limits.lease_time = LEASE;
    let node = Node::builder().limits(limits).listen(addr).await?;
    println!(
        "  dir    | directory on {}; members unreachable for {} s are dropped",
        node.local_addr().expect("listening"),
        LEASE.as_secs()
    );
    Ok(node)
}

/// Starts a server node on `addr` with a greeter in `lang`, and adds the
/// greeter to the group [`NAME`] in the directory at `directory`. Returns
/// the node and the greeter's reference: the server must keep it, since
/// an exported object that no local handle or remote lease holds is
/// unexported.
pub(crate) async fn start_server(
    addr: Address,
    directory: Address,
    lang: Lang,
) -> Result<(Node, Remote<dyn Greeter>), Box<dyn std::error::Error>> {
    let node = Node::listen(addr).await?;
    let at = node.local_addr().expect("listening").to_string();
    let greeter: Remote<dyn Greeter> = match lang {
        Lang::En => node.export(English { at: at.clone() }),
        Lang::Fr => node.export(French { at: at.clone() }),
    };
    let dir = DirectoryClient::connect_on(&node, directory.clone()).await?;
    dir.add(NAME, &greeter).await?;
    println!(
        "  {:<6} | {lang} greeter on {at}, added to {NAME:?} in the directory at {directory}",
        lang.tag()
    );
    Ok((node, greeter))
}

/// Greets `who` through the late-bound stub and says who answered.
async fn greet(
    late: &LateBound<dyn Greeter>,
    who: &str,
) -> Result<Greeting, Box<dyn std::error::Error>> {
    let g = late.greet(who.to_owned()).await?;
    println!("  client | greet({who:?}) = {:?}, by {}", g.text, g.by);
    Ok(g)
}

/// What the client sees in the directory: the group's members and their
/// interfaces.
async fn show_group(dir: &DirectoryClient) -> Result<usize, Box<dyn std::error::Error>> {
    let members = dir.lookup_all::<dyn Greeter>(NAME).await?;
    let entries = dir.list(NAME).await?;
    let interfaces = entries
        .iter()
        .find(|e| e.name == NAME)
        .map(|e| e.interfaces.join(", "))
        .unwrap_or_default();
    println!(
        "  client | {NAME:?} in the directory: {} member(s), interface {interfaces}",
        members.len()
    );
    Ok(members.len())
}

const NAMES: [&str; 6] = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Leslie"];

/// The client of separate processes: `calls` greetings through the
/// directory at `directory`, one every `every` (stop a server meanwhile:
/// the calls go on).
pub(crate) async fn run_client(
    directory: Address,
    calls: usize,
    every: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::new();
    println!(
        "  client | node {} using the directory at {directory}",
        node.id()
    );
    let dir = DirectoryClient::connect_on(&node, directory).await?;
    show_group(&dir).await?;
    let late: LateBound<dyn Greeter> = dir.late_bound(&node, NAME, Policy::RoundRobin);
    for i in 0..calls {
        greet(&late, NAMES[i % NAMES.len()]).await?;
        if i + 1 < calls {
            tokio::time::sleep(every).await;
        }
    }
    node.shutdown().await;
    Ok(())
}

/// Everything in one process: the directory on `dir_addr`, the English
/// greeter's node on `en_addr`, the French one's on `fr_addr`, and a
/// client.
pub(crate) async fn one_process(
    dir_addr: Address,
    en_addr: Address,
    fr_addr: Address,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir_node = start_directory(dir_addr).await?;
    let dir_addr = dir_node.local_addr().expect("listening");
    let (en, en_greeter) = start_server(en_addr, dir_addr.clone(), Lang::En).await?;
    let (fr, fr_greeter) = start_server(fr_addr, dir_addr.clone(), Lang::Fr).await?;

    // The client knows the directory's address, nothing else.
    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, dir_addr.clone()).await?;
    show_group(&dir).await?;

    // Early binding, for contrast: a lookup gives one object, for good.
    let first: Remote<dyn Greeter> = dir.lookup(NAME).await?;
    let g = first.greet("Ada".into()).await?;
    println!(
        "  client | lookup gives the first member; it answers {:?}, by {}",
        g.text, g.by
    );

    // Late binding: the object is chosen call by call.
    let late: LateBound<dyn Greeter> = dir.late_bound(&client, NAME, Policy::RoundRobin);
    println!("  client | late-bound stub on {NAME:?}, round-robin:");
    let mut by = Vec::new();
    for who in &NAMES[..4] {
        by.push(greet(&late, who).await?.by);
    }
    let both = by.iter().any(|b| b.contains("English")) && by.iter().any(|b| b.contains("French"));
    if !both {
        return Err(format!("round-robin reached only {by:?}").into());
    }
    println!("  client | both greeters answered, in turn");

    // The French server stops. The directory still lists it for a while;
    // the stub's next call to it fails and goes to the English one.
    drop(fr_greeter);
    fr.shutdown().await;
    println!("  fr     | stopped");
    let stopped = Instant::now();
    for who in &NAMES[..4] {
        let g = greet(&late, who).await?;
        if !g.by.contains("English") {
            return Err(format!("a stopped server answered: {}", g.by).into());
        }
    }
    println!(
        "  client | the calls go on: on the French greeter's turns the stub fails over to the English one"
    );

    // Within about a lease time the directory drops the member whose node
    // it cannot reach, and its watch tells the stub.
    while dir.lookup_all::<dyn Greeter>(NAME).await?.len() > 1 {
        if stopped.elapsed() > LEASE * 5 {
            return Err("the directory never dropped the stopped greeter".into());
        }
        tokio::time::sleep(LEASE / 2).await;
    }
    println!(
        "  dir    | dropped the French greeter {:.1} s after its server stopped",
        stopped.elapsed().as_secs_f64()
    );
    greet(&late, "Ada").await?;
    client.shutdown().await;

    // A newcomer, knowing only the directory, finds the English greeter.
    println!("  client | a new client:");
    run_client(dir_addr, 2, Duration::ZERO).await?;

    drop(en_greeter);
    en.shutdown().await;
    dir_node.shutdown().await;
    Ok(())
}
