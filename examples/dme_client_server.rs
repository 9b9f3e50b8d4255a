//! Direct message exchange, asymmetric: a server answers, a client asks.
//!
//! ```text
//! cargo run --example dme_client_server                        # both sides in one process
//! cargo run --example dme_client_server -- server tcp://127.0.0.1:7000
//! cargo run --example dme_client_server -- client tcp://127.0.0.1:7000
//! ```
//!
//! With no arguments, the server listens on `tcp://127.0.0.1:0` (a free
//! port), the client runs its requests against it, and the program exits.
//! `server ADDR` serves until the process is stopped (Ctrl-C); `client ADDR`
//! runs the requests against that server and exits. ADDR is any farcall
//! address: `tcp://host:port`, `unix:///path/to.sock`.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/dme_asymmetric.rs"]
mod dme_asymmetric;

use std::process::ExitCode;

use farcall::node::Address;

use cli::Outcome;

const USAGE: &str = "usage: dme_client_server [server ADDR | client ADDR]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    match cli::words(&args).as_slice() {
        [] => {
            println!("server and client in one process, over TCP on a free port");
            dme_asymmetric::one_process("tcp://127.0.0.1:0".parse()?).await?;
        }
        ["server", addr] => {
            let addr: Address = addr.parse()?;
            let _server = dme_asymmetric::start_server(addr).await?;
            cli::serve_until_stopped("server").await?;
        }
        ["client", addr] => {
            let addr: Address = addr.parse()?;
            dme_asymmetric::run_client(addr).await?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
