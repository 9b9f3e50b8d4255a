//! Chapter: remote procedure call and early-bound objects (`#[farcall::remote]`).
//!
//! A trait becomes a remote interface. The server publishes a calculator
//! under a well-known name (plain RPC: the caller names the node and the
//! service) and exports a second one under an unguessable object id (early
//! binding: the caller names the object). Calls look like local method
//! calls; the parameters are the message.
//!
//! Included with `#[path]` by `examples/rpc_calculator.rs` and
//! `examples/tour.rs`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use farcall::node::{Address, NodeId};
use farcall::rmi::ObjectId;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError};
use serde::{Deserialize, Serialize};

/// What can go wrong in a calculation: the application's own error, which
/// also carries the runtime's (a remote call can always fail).
#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub(crate) enum CalcError {
    /// The divisor was zero.
    DivisionByZero,
    /// The call itself failed (deadline, disconnection, ...).
    Remote(RemoteError),
}

impl From<RemoteError> for CalcError {
    fn from(e: RemoteError) -> Self {
        CalcError::Remote(e)
    }
}

impl fmt::Display for CalcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalcError::DivisionByZero => f.write_str("division by zero"),
            CalcError::Remote(e) => write!(f, "remote call failed: {e}"),
        }
    }
}

impl std::error::Error for CalcError {}

/// What a calculator knows about its use.
#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub(crate) struct Stats {
    /// Calls served so far.
    pub(crate) calls: u64,
    /// Notes received (one-way).
    pub(crate) notes: Vec<String>,
    /// The node that made this call, as the server sees it.
    pub(crate) caller: Option<NodeId>,
}

/// The remote interface.
#[farcall::remote]
pub(crate) trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Divides; a zero divisor is an application error.
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Sums a list.
    async fn sum(&self, values: Vec<i64>) -> Result<i64, CalcError>;
    /// Leaves a note. One-way: nobody waits for an answer.
    #[remote(oneway)]
    async fn note(&self, text: String) -> Result<(), CalcError>;
    /// Takes its time (to show deadlines).
    async fn slow(&self, millis: u64) -> Result<(), CalcError>;
    /// Counters, and who is calling.
    async fn stats(&self) -> Result<Stats, CalcError>;
}

/// The implementation: a plain struct.
#[derive(Default)]
pub(crate) struct Calc {
    name: &'static str,
    calls: Mutex<u64>,
    notes: Mutex<Vec<String>>,
}

impl Calc {
    fn count(&self) {
        *self.calls.lock().unwrap() += 1;
    }
}

#[farcall::remote]
impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        self.count();
        println!("  server | {}: add({a}, {b})", self.name);
        Ok(a + b)
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        self.count();
        println!("  server | {}: div({a}, {b})", self.name);
        if b == 0 {
            return Err(CalcError::DivisionByZero);
        }
        Ok(a / b)
    }

    async fn sum(&self, values: Vec<i64>) -> Result<i64, CalcError> {
        self.count();
        println!("  server | {}: sum of {} values", self.name, values.len());
        Ok(values.iter().sum())
    }

    async fn note(&self, text: String) -> Result<(), CalcError> {
        println!("  server | {}: note {text:?}", self.name);
        self.notes.lock().unwrap().push(text);
        Ok(())
    }

    async fn slow(&self, millis: u64) -> Result<(), CalcError> {
        println!("  server | {}: slow({millis} ms) starts", self.name);
        // Dropped by the runtime if the caller's deadline passes first.
        tokio::time::sleep(Duration::from_millis(millis)).await;
        println!("  server | {}: slow({millis} ms) done", self.name);
        Ok(())
    }

    async fn stats(&self) -> Result<Stats, CalcError> {
        Ok(Stats {
            calls: *self.calls.lock().unwrap(),
            notes: self.notes.lock().unwrap().clone(),
            caller: CallContext::current().map(|cx| cx.caller),
        })
    }
}

/// The name the calculator service is published under.
pub(crate) const SERVICE: &str = "calculator";

/// Starts a node on `addr` serving the calculator service, and exports a
/// second calculator by id. Returns the node and the reference to that
/// object: the server must keep it, since an exported object that no
/// local handle or remote lease holds is unexported.
pub(crate) async fn start_server(addr: Address) -> farcall::Result<(Node, Remote<dyn Calculator>)> {
    let node = Node::listen(addr).await?;
    let _: Remote<dyn Calculator> = node.serve(
        SERVICE,
        Calc {
            name: "service",
            ..Calc::default()
        },
    );
    let private: Remote<dyn Calculator> = node.export(Calc {
        name: "exported",
        ..Calc::default()
    });
    println!(
        "  server | listening on {}; service {SERVICE:?}; exported object {}",
        node.local_addr().expect("listening"),
        private.id()
    );
    Ok((node, private))
}

/// The client's side: calls the service, then (if given) the exported object.
pub(crate) async fn run_client(
    addr: Address,
    object: Option<ObjectId>,
) -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::new();
    println!("  client | node {} calling {addr}", node.id());

    // Plain RPC: the caller names the node and the service.
    let calc: Remote<dyn Calculator> = node.connect_service(&addr, SERVICE).await?;
    println!("  client | add(2, 3) = {}", calc.add(2, 3).await?);
    println!(
        "  client | sum(1..=100) = {}",
        calc.sum((1..=100).collect()).await?
    );
    match calc.div(1, 0).await {
        Err(CalcError::DivisionByZero) => {
            println!("  client | div(1, 0): the application's error, DivisionByZero")
        }
        other => return Err(format!("div(1, 0) gave {other:?}").into()),
    }
    // Calls in flight together on the one connection.
    let (a, b, c) = tokio::join!(calc.add(1, 1), calc.add(2, 2), calc.add(3, 3));
    println!(
        "  client | three calls in flight together: {}, {}, {}",
        a?, b?, c?
    );
    calc.note("hello from the client".into()).await?;
    // A deadline for one call: the server drops the handler when it passes.
    match calc
        .with_deadline(Duration::from_millis(50))
        .slow(500)
        .await
    {
        Err(CalcError::Remote(RemoteError::DeadlineExceeded)) => {
            println!("  client | slow(500 ms) with a 50 ms deadline: DeadlineExceeded")
        }
        other => return Err(format!("slow(500) gave {other:?}").into()),
    }
    let stats = calc.stats().await?;
    println!(
        "  client | the service served {} calls; it sees the caller as {:?} (this node: {})",
        stats.calls,
        stats.caller.map(|c| c.to_string()),
        node.id()
    );

    // Early binding: the caller names the object itself.
    if let Some(id) = object {
        let private: Remote<dyn Calculator> = node.connect(&addr, id).await?;
        println!(
            "  client | exported object {id}: add(40, 2) = {}",
            private.add(40, 2).await?
        );
        println!(
            "  client | one connection carries both: {} connection(s) open",
            node.connections().len()
        );
    }
    node.shutdown().await;
    Ok(())
}

/// Server and client in one process, then a call to a local object that
/// skips the network altogether.
pub(crate) async fn one_process(addr: Address) -> Result<(), Box<dyn std::error::Error>> {
    let (server, private) = start_server(addr).await?;
    let object = private.id();
    let addr = server.local_addr().expect("listening");
    run_client(addr.clone(), Some(object)).await?;

    // Collocation: a reference to an object of this very node calls it
    // directly, with no encoding and no socket.
    let local: Remote<dyn Calculator> = server.connect(&addr, object).await?;
    println!(
        "  local  | the server's own reference is local: {}; add(1, 2) = {}",
        local.is_local(),
        local.add(1, 2).await?
    );
    server.shutdown().await;
    Ok(())
}
