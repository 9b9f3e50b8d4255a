//! Remote method invocation, early binding: a canvas server holding shapes
//! that its clients create and pass in, a listener called back on each
//! change, a stream of the canvas's events (read, then dropped: the canvas
//! notices at its next send), and a shape narrowed at run time.
//!
//! ```text
//! cargo run --example rmi_shapes                                   # everything, one process
//! cargo run --example rmi_shapes -- server tcp://127.0.0.1:7020    # until Ctrl-C
//! cargo run --example rmi_shapes -- client tcp://127.0.0.1:7020
//! ```

#[path = "chapters/rmi_shapes.rs"]
mod rmi_shapes;

use std::error::Error;
use std::process::ExitCode;

use farcall::node::Address;

const USAGE: &str = "usage: rmi_shapes [server ADDR | client ADDR]";

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
            println!("the canvas and two clients in one process, over TCP on free ports");
            rmi_shapes::one_process("tcp://127.0.0.1:0".parse()?, "tcp://127.0.0.1:0".parse()?)
                .await?;
        }
        ["server", addr] => {
            let addr: Address = addr.parse()?;
            let _node = rmi_shapes::start_server(addr).await?;
            println!("  server | serving until stopped (Ctrl-C)");
            std::future::pending::<()>().await;
        }
        ["client", addr] => rmi_shapes::run_client(addr.parse()?).await?,
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
