//! Remote procedure call: a calculator service and an early-bound object.
//!
//! ```text
//! cargo run --example rpc_calculator                                   # both sides, one process
//! cargo run --example rpc_calculator -- server tcp://127.0.0.1:7010    # until Ctrl-C
//! cargo run --example rpc_calculator -- client tcp://127.0.0.1:7010 [OBJECT_ID]
//! ```

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/rpc_calculator.rs"]
mod rpc_calculator;

use std::process::ExitCode;

use farcall::node::Address;
use farcall::rmi::ObjectId;

use cli::Outcome;

const USAGE: &str = "usage: rpc_calculator [server ADDR | client ADDR [OBJECT_ID]]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    match cli::words(&args).as_slice() {
        [] => {
            println!("server and client in one process, over TCP on a free port");
            rpc_calculator::one_process("tcp://127.0.0.1:0".parse()?).await?;
        }
        ["server", addr] => {
            let addr: Address = addr.parse()?;
            let (_node, _exported) = rpc_calculator::start_server(addr).await?;
            cli::serve_until_stopped("server").await?;
        }
        ["client", addr] => rpc_calculator::run_client(addr.parse()?, None).await?,
        ["client", addr, object] => {
            let id = u128::from_str_radix(object, 16).map_err(|e| format!("bad object id: {e}"))?;
            rpc_calculator::run_client(addr.parse()?, Some(ObjectId(id))).await?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
