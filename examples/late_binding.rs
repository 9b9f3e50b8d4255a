//! Remote method invocation, late binding: two greeters (English and
//! French) on two servers, added to one name in a directory; a client
//! calling through `LateBound<dyn Greeter>` reaches both in turn, and goes
//! on when one server stops.
//!
//! ```text
//! cargo run --example late_binding                  # everything, one process
//! cargo run --example late_binding -- directory tcp://127.0.0.1:7030
//! cargo run --example late_binding -- server tcp://127.0.0.1:7031 --directory tcp://127.0.0.1:7030 --lang en
//! cargo run --example late_binding -- server tcp://127.0.0.1:7032 --directory tcp://127.0.0.1:7030 --lang fr
//! cargo run --example late_binding -- client --directory tcp://127.0.0.1:7030 [--calls N]
//! ```
//!
//! Stop one server (Ctrl-C) while the client runs: its calls go on,
//! answered by the other.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/late_binding.rs"]
mod late_binding;

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use farcall::node::Address;

use cli::Outcome;

const USAGE: &str = "usage: late_binding [directory ADDR \
                     | server ADDR --directory DADDR --lang en|fr \
                     | client --directory DADDR [--calls N]]";

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    match cli::words(&args).as_slice() {
        [] => {
            println!("directory, two servers and a client in one process, over TCP on free ports");
            let any = || "tcp://127.0.0.1:0".parse::<Address>();
            late_binding::one_process(any()?, any()?, any()?).await?;
        }
        ["directory", addr] => {
            let _node = late_binding::start_directory(addr.parse()?).await?;
            cli::serve_until_stopped("dir").await?;
        }
        ["server", addr, rest @ ..] => {
            let directory: Address = option(rest, "--directory")?.ok_or(USAGE)?.parse()?;
            let lang: late_binding::Lang = option(rest, "--lang")?.ok_or(USAGE)?.parse()?;
            // The greeter is kept: an exported object nobody holds is freed.
            let (_node, _greeter) =
                late_binding::start_server(addr.parse()?, directory, lang).await?;
            cli::serve_until_stopped(lang.tag()).await?;
        }
        ["client", rest @ ..] => {
            let directory: Address = option(rest, "--directory")?.ok_or(USAGE)?.parse()?;
            let calls = match option(rest, "--calls")? {
                Some(n) => n.parse().map_err(|e| format!("bad --calls: {e}"))?,
                None => 10,
            };
            late_binding::run_client(directory, calls, Duration::from_millis(500)).await?;
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

/// The value of `--flag VALUE` in `args`, which must hold only such pairs.
fn option<'a>(args: &[&'a str], flag: &str) -> Result<Option<&'a str>, Box<dyn Error>> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))?;
        if !["--directory", "--lang", "--calls"].contains(a) {
            return Err(format!("unexpected {a:?}\n{USAGE}").into());
        }
        if *a == flag {
            found = Some(*value);
        }
    }
    Ok(found)
}
