//! A request followed through two services: metadata that flows on, a span
//! per call on each side, and an interceptor that checks a token.
//!
//! ```text
//! cargo run --example traced     # both services and a client, one process
//! ```
//!
//! A front service takes orders and asks a stock service, passing on the
//! caller's metadata and deadline with `propagate`. The stock node lets in
//! only calls that carry a token, which the front node's outgoing
//! interceptor adds. Every span closing is printed (the `tracing`
//! subscriber of `tracing-subscriber`, spans at close): the client span of
//! each call, the server span inside which its handler ran, and their
//! fields (`rpc.service`, `rpc.method`, `farcall.outcome`, ...).

#[path = "chapters/cli.rs"]
mod cli;

use std::process::ExitCode;

use farcall::observe::{CallInfo, InterceptFuture, Interceptor, Metadata, propagate};
use farcall::rpc::{CallContext, Fault};
use farcall::{Node, Remote, RemoteError};
use tracing_subscriber::fmt::format::FmtSpan;

use cli::Outcome;

/// How many of an item are left.
#[farcall::remote]
pub trait Stock {
    /// Takes one of `item`; what is left.
    async fn take(&self, item: String) -> Result<u32, RemoteError>;
}

struct Shelf;

#[farcall::remote]
impl Stock for Shelf {
    async fn take(&self, item: String) -> Result<u32, RemoteError> {
        let cx = CallContext::current().ok_or(RemoteError::Rejected("no call".into()))?;
        let order = cx.metadata().get_str("order-id").unwrap_or("?").to_owned();
        println!("  stock  | order {order}: one {item} taken");
        Ok(41)
    }
}

/// Takes orders.
#[farcall::remote]
pub trait Orders {
    /// Orders one `item`; what is left of it.
    async fn order(&self, item: String) -> Result<u32, RemoteError>;
}

struct Front {
    stock: Remote<dyn Stock>,
}

#[farcall::remote]
impl Orders for Front {
    async fn order(&self, item: String) -> Result<u32, RemoteError> {
        // The order id and the time left go on to the stock service.
        propagate(self.stock.take(item)).await
    }
}

/// The stock node's door: a token or nothing.
struct NeedsToken;

impl Interceptor for NeedsToken {
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async move {
            match call.metadata.remove("token").as_deref() {
                Some(b"front-token") => Ok(()),
                _ => Err(Fault::Unauthorized(format!(
                    "{} needs a token",
                    call.method
                ))),
            }
        })
    }
}

/// The front node's calls carry its token.
struct AddsToken;

impl Interceptor for AddsToken {
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async move {
            call.metadata
                .insert("token", "front-token")
                .map(drop)
                .map_err(|e| Fault::Rejected(e.to_string()))
        })
    }
}

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    if !args.is_empty() {
        return Err("usage: traced (it takes no arguments)".into());
    }
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .with_writer(std::io::stdout)
        .init();

    let stock_node = Node::builder()
        .intercept(NeedsToken)
        .listen("tcp://127.0.0.1:0")
        .await?;
    stock_node.serve::<dyn Stock, _>("stock", Shelf);
    let stock_addr = stock_node.local_addr().ok_or("no address")?;

    let front_node = Node::builder()
        .intercept_outgoing(AddsToken)
        .listen("tcp://127.0.0.1:0")
        .await?;
    let stock = front_node
        .connect_service::<dyn Stock>(&stock_addr, "stock")
        .await?;
    front_node.serve::<dyn Orders, _>("orders", Front { stock });
    let front_addr = front_node.local_addr().ok_or("no address")?;

    let client = Node::new();
    let orders = client
        .connect_service::<dyn Orders>(&front_addr, "orders")
        .await?
        .with_metadata(Metadata::new().with("order-id", "A-17"));
    println!(
        "  client | order(widget) = {}",
        orders.order("widget".into()).await?
    );

    // Straight to the stock node, without the front's token: refused
    // before the handler runs.
    let direct = client
        .connect_service::<dyn Stock>(&stock_addr, "stock")
        .await?;
    match direct.take("widget".into()).await {
        Err(RemoteError::Unauthorized(why)) => println!("  client | direct take refused: {why}"),
        other => return Err(format!("the direct call should be refused, got {other:?}").into()),
    }

    for n in [client, front_node, stock_node] {
        n.shutdown().await;
    }
    Ok(())
}
