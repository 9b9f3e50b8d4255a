//! The tour: every paradigm, in one process, narrated.
//!
//! ```text
//! cargo run --example tour
//! ```
//!
//! Each chapter runs on in-process `mem://` addresses (the last one's broker
//! is embedded, its durable queues in a temporary directory), so the tour
//! needs no free port and no other process. The chapters are the same code
//! as the paradigm's own example (`examples/chapters/`), which also runs
//! over TCP and Unix sockets and as separate processes.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/dme_asymmetric.rs"]
mod dme_asymmetric;
#[path = "chapters/dme_symmetric.rs"]
mod dme_symmetric;
#[path = "chapters/late_binding.rs"]
mod late_binding;
#[path = "chapters/mme.rs"]
mod mme;
#[path = "chapters/rmi_shapes.rs"]
mod rmi_shapes;
#[path = "chapters/rpc_calculator.rs"]
mod rpc_calculator;

use std::process::ExitCode;

use cli::Outcome;

fn chapter(n: usize, title: &str, module: &str, summary: &str) {
    println!();
    println!("Chapter {n}. {title} ({module})");
    println!("  {summary}");
    println!();
}

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    if !args.is_empty() {
        return Err("usage: tour (it takes no arguments)".into());
    }
    println!("farcall tour: the paradigms of distributed computing, one chapter each.");

    chapter(
        1,
        "Direct message exchange, asymmetric",
        "farcall::dme::{Server, Client}",
        "A server waits for requests and answers each; a client sends one and waits for the answer.",
    );
    dme_asymmetric::one_process("mem://tour-dme-server".parse()?).await?;

    chapter(
        2,
        "Direct message exchange, symmetric",
        "farcall::dme::Peer",
        "Peers all send and receive; a super-peer relays between peers that have no connection.",
    );
    dme_symmetric::one_process(
        "mem://tour-peer-a".parse()?,
        "mem://tour-peer-b".parse()?,
        "mem://tour-peer-c".parse()?,
    )
    .await?;

    chapter(
        3,
        "Remote procedure call, and early-bound objects",
        "#[farcall::remote], farcall::Remote<dyn Trait>",
        "A trait is the interface; the caller names a service or an object and calls its methods.",
    );
    rpc_calculator::one_process("mem://tour-rpc".parse()?).await?;

    chapter(
        4,
        "RMI, early binding: remote objects",
        "farcall::Remote<dyn Trait>",
        "References travel as arguments and results: callbacks, third parties kept by leases, narrowing, a stream read and dropped.",
    );
    rmi_shapes::one_process("mem://tour-rmi".parse()?, "mem://tour-rmi-other".parse()?).await?;

    chapter(
        5,
        "RMI, late binding: the directory",
        "farcall::directory::DirectoryClient, farcall::directory::LateBound<dyn Trait>",
        "Servers add their objects to a name in a directory; a late-bound stub picks one per call and fails over when one stops.",
    );
    late_binding::one_process(
        "mem://tour-directory".parse()?,
        "mem://tour-greeter-en".parse()?,
        "mem://tour-greeter-fr".parse()?,
    )
    .await?;

    chapter(
        6,
        "Mediated message exchange",
        "farcall::mme::{Broker, Queue, Topic}",
        "A broker sits between the parties: durable queues with competing workers, acks and dead letters; topics with wildcards; RPC through a queue.",
    );
    let data = mme::DataDir::new("tour-broker")?;
    mme::one_process(data.path()).await?;

    println!();
    println!("End of the tour.");
    Ok(())
}
