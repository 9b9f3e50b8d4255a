//! The `farcall` command: a standalone directory and a look into any
//! directory; a standalone broker and its queues and topics from the shell.
//!
//! ```text
//! farcall directory serve --listen tcp://0.0.0.0:7400 [--data DIR]
//! farcall ls [PREFIX] [--directory ADDR] [--json]
//! farcall describe NAME [--directory ADDR] [--json]
//!
//! farcall broker serve --listen tcp://0.0.0.0:7500 [--data DIR] [--fsync always|MILLIS]
//!                      [--max-message BYTES]
//! farcall broker stats [--broker ADDR] [--json]
//! farcall pub SUBJECT JSON [--broker ADDR]
//! farcall sub PATTERN [--count N] [--json] [--broker ADDR]
//! farcall send QUEUE JSON [--durable] [--ack-wait SECONDS] [--max-deliver N]
//!              [--max-depth N] [--broker ADDR]
//! farcall recv QUEUE [--ack] [--count N] [--timeout SECONDS] [--json] [--broker ADDR]
//! farcall queue ls [--json] [--broker ADDR]
//! farcall queue info|purge|delete QUEUE [--json] [--broker ADDR]
//! farcall queue peek QUEUE [--count N] [--json] [--broker ADDR]
//! farcall queue move FROM --to QUEUE [--count N] [--json] [--broker ADDR]
//! ```
//!
//! `--directory` defaults to the `FARCALL_DIRECTORY` environment variable,
//! `--broker` to `FARCALL_BROKER`. Messages are JSON values, carried as
//! their text (the broker's `*_raw` calls); a payload that is not JSON
//! text prints as {"bytes_hex": "..."}. Every error is one line on stderr
//! and a non-zero exit status (2 for a wrong command line, 1 for anything
//! else).

mod args;
mod broker;
mod directory;
mod queue;
mod render;
mod security;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use farcall::node::Address;

use args::{BrokerCommand, Cli, Command, DirectoryCommand};

/// A failure: a one-line message and an exit status.
#[derive(Debug)]
struct Fail {
    message: String,
    code: u8,
}

impl Fail {
    fn new(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: 1,
        }
    }

    fn usage(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: 2,
        }
    }
}

/// How long `ls` and `describe` wait for the directory.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                // Help and version are printed as clap renders them; help
                // asked for by omission (`farcall`) is still an error.
                let code = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                };
                let _ = e.print();
                return ExitCode::from(code);
            }
            let argv: Vec<String> = std::env::args().skip(1).collect();
            return report(&Fail::usage(one_line_clap_error(&e.to_string(), &argv)));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&Fail::new(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => report(&fail),
    }
}

fn report(fail: &Fail) -> ExitCode {
    eprintln!("farcall: {}", fail.message);
    ExitCode::from(fail.code)
}

/// Clap's multi-line error as one line: the message and its indented
/// continuation (what is missing), without the usage block.
/// `argv` (without the program) names the command when clap's message
/// has no usage line.
fn one_line_clap_error(rendered: &str, argv: &[String]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    let mut msg = parts.join(" ");
    if msg.is_empty() {
        msg = "invalid command line".to_owned();
    }
    // The help to see: the command's, as the usage line names it.
    let command = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            let subcommands = [
                "directory",
                "serve",
                "ls",
                "describe",
                "ping",
                "watch",
                "unbind",
                "broker",
                "stats",
                "pub",
                "sub",
                "send",
                "recv",
                "queue",
                "info",
                "purge",
                "delete",
                "peek",
                "move",
            ];
            std::iter::once("farcall")
                .chain(
                    argv.iter()
                        .map(String::as_str)
                        .take_while(|w| subcommands.contains(w)),
                )
                .collect::<Vec<_>>()
                .join(" ")
        });
    format!("{msg} (see `{command} --help`)")
}

async fn run(cli: Cli) -> Result<(), Fail> {
    security::init(&cli.security)?;
    logs(&cli);
    if let Some(addr) = cli.metrics_listen {
        metrics_endpoint(&cli.command, addr)?;
    }
    match cli.command {
        Command::Directory(DirectoryCommand::Serve(args)) => directory::serve(args).await,
        Command::Ls(args) => directory::ls(args).await,
        Command::Describe(args) => directory::describe(args).await,
        Command::Ping(args) => ping(args).await,
        Command::Watch(args) => directory::watch(args).await,
        Command::Unbind(args) => directory::unbind(args).await,
        Command::Broker(BrokerCommand::Serve(args)) => broker::broker_serve(args).await,
        Command::Broker(BrokerCommand::Stats(args)) => broker::broker_stats(args).await,
        Command::Pub(args) => broker::publish(args).await,
        Command::Sub(args) => broker::subscribe(args).await,
        Command::Send(args) => broker::send(args).await,
        Command::Recv(args) => broker::recv(args).await,
        Command::Queue(command) => queue::run(command).await,
    }
}

/// The address given by the option `flag` (its value `given`), or else
/// by the environment variable `env`; a usage error naming both when
/// neither is there, and naming the source of an address that does not
/// parse.
fn target_address(
    given: &Option<String>,
    flag: &str,
    env: &str,
    what: &str,
    example: &str,
) -> Result<Address, Fail> {
    let (text, source) = match given {
        Some(a) => (a.clone(), flag),
        None => match std::env::var(env) {
            Ok(v) if !v.trim().is_empty() => (v, env),
            _ => {
                return Err(Fail::usage(format!(
                    "no {what} given: pass {flag} ADDR or set {env} (e.g. {example})"
                )));
            }
        },
    };
    text.trim()
        .parse()
        .map_err(|e| Fail::usage(format!("{source}: {e}")))
}

/// Connecting to `what` at `addr`, within [`CALL_DEADLINE`]; a failure
/// says which and why in one line.
async fn reach<T, E: std::fmt::Display>(
    what: &str,
    addr: &Address,
    connecting: impl Future<Output = Result<T, E>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(CALL_DEADLINE, connecting).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Fail::new(format!(
            "cannot reach {what} at {addr}: {}",
            one_line(&e.to_string())
        ))),
        Err(_) => Err(Fail::new(format!(
            "cannot reach {what} at {addr}: no answer within {} s",
            CALL_DEADLINE.as_secs()
        ))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print_out(s: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(s.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Fail::new(format!("cannot write the output: {e}")))
}

/// Installs the log subscriber: RUST_LOG if set, else `--log-level`, else
/// info for the servers and warn for the one-shot commands; text or JSON
/// lines on stderr (stdout carries the commands' output).
fn logs(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let serving = matches!(
        cli.command,
        Command::Directory(DirectoryCommand::Serve(_)) | Command::Broker(BrokerCommand::Serve(_))
    );
    let level = cli.log_level.unwrap_or(if serving {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    });
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(level.as_str().to_ascii_lowercase()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if cli.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Serves the process's metrics at `http://addr/metrics`, for a serve
/// command only.
fn metrics_endpoint(command: &Command, addr: std::net::SocketAddr) -> Result<(), Fail> {
    let serving = matches!(
        command,
        Command::Directory(DirectoryCommand::Serve(_)) | Command::Broker(BrokerCommand::Serve(_))
    );
    if !serving {
        return Err(Fail::usage(
            "--metrics-listen is for `directory serve` and `broker serve`".to_owned(),
        ));
    }
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Fail::new(format!("cannot serve metrics on {addr}: {e}")))?;
    tracing::info!(target: "farcall", address = %addr, "metrics served at /metrics");
    Ok(())
}

/// `farcall ping ADDR`: the handshake, then round trips of ping frames.
async fn ping(args: args::PingArgs) -> Result<(), Fail> {
    let addr: Address = args
        .addr
        .parse()
        .map_err(|e| Fail::usage(format!("{}: {e}", args.addr)))?;
    let node = security::node().build();
    let conn = reach("the node", &addr, node.dial(&addr)).await?;
    println!(
        "node {} at {addr}: wire protocol {}",
        conn.peer_id(),
        farcall::__private::wire::PROTOCOL_VERSION
    );
    for i in 1..=args.count {
        let rtt = conn.ping(CALL_DEADLINE).await.map_err(|e| {
            Fail::new(format!(
                "ping {i} to {addr} failed: {}",
                one_line(&e.to_string())
            ))
        })?;
        println!("pong {i}: {:.1} µs", rtt.as_secs_f64() * 1e6);
    }
    node.shutdown().await;
    Ok(())
}
