//! Mediated message exchange: a shop whose parties know only a broker.
//!
//! A producer sends orders to a durable queue; two workers compete for
//! them, each reserving stock through a warehouse reached by mediated RPC
//! (a `#[farcall::remote]` trait served through a broker queue) and
//! acknowledging; an order refused once is delivered again, one that can
//! never be filled ends in the dead-letter queue; a price feed publishes on
//! subjects that desks subscribe to with wildcards (`prices.eu.*`,
//! `prices.>`).
//!
//! ```text
//! cargo run --example mme_orders                 # a broker embedded in this process
//! farcall broker serve --listen tcp://127.0.0.1:7040 --data /tmp/farcall-broker
//! cargo run --example mme_orders -- --broker tcp://127.0.0.1:7040
//! ```
//!
//! With no arguments the broker is embedded, its durable queues in a
//! temporary directory, and it restarts once the orders are in to show
//! that they survive. With `--broker ADDR` every party of this process
//! goes through the standalone broker at `ADDR` instead; watch it with
//! `farcall broker stats --broker ADDR`.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/mme.rs"]
mod mme;

use std::process::ExitCode;

use farcall::mme::Broker;
use farcall::node::Address;

use cli::Outcome;

const USAGE: &str = "usage: mme_orders [--broker ADDR]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    match cli::words(&args).as_slice() {
        [] => {
            println!("producer, workers, warehouse and desks in one process, the broker embedded");
            let data = mme::DataDir::new("mme-orders")?;
            mme::one_process(data.path()).await?;
        }
        ["--broker", addr] => {
            let addr: Address = addr.parse()?;
            let broker = Broker::connect(addr.clone()).await?;
            println!(
                "producer, workers, warehouse and desks in one process, through the broker at {addr}"
            );
            mme::run(broker, None).await?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
