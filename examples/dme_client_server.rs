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

#[path = "chapters/dme_asymmetric.rs"]
mod dme_asymmetric;

use std::error::Error;
use std::process::ExitCode;

use farcall::node::Address;

const USAGE: &str = "usage: dme_client_server [server ADDR | client ADDR]";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => {
            println!("server and client in one process, over TCP on a free port");
            dme_asymmetric::one_process("tcp://127.0.0.1:0".parse()?).await?;
        }
        ["server", addr] => {
            let addr: Address = addr.parse()?;
            let _server = dme_asymmetric::start_server(addr).await?;
            println!("  server | serving until stopped (Ctrl-C)");
            // Serves from tokio's worker threads; this task only keeps the
            // server alive. The default SIGINT action ends the process.
            std::future::pending::<()>().await;
        }
        ["client", addr] => {
            let addr: Address = addr.parse()?;
            dme_asymmetric::run_client(addr).await?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
