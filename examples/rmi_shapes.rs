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

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/rmi_shapes.rs"]
mod rmi_shapes;

use std::process::ExitCode;

use farcall::node::Address;

use cli::Outcome;

const USAGE: &str = "usage: rmi_shapes [server ADDR | client ADDR]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    match cli::words(&args).as_slice() {
        [] => {
            println!("the canvas and two clients in one process, over TCP on free ports");
            rmi_shapes::one_process("tcp://127.0.0.1:0".parse()?, "tcp://127.0.0.1:0".parse()?)
                .await?;
        }
        ["server", addr] => {
            let addr: Address = addr.parse()?;
            let _node = rmi_shapes::start_server(addr).await?;
            cli::serve_until_stopped("server").await?;
        }
        ["client", addr] => rmi_shapes::run_client(addr.parse()?).await?,
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
