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
//! farcall send QUEUE JSON [--durable] [--broker ADDR]
//! farcall recv QUEUE [--ack] [--count N] [--timeout SECONDS] [--json] [--broker ADDR]
//! ```
//!
//! `--directory` defaults to the `FARCALL_DIRECTORY` environment variable,
//! `--broker` to `FARCALL_BROKER`. Messages are JSON values, carried as
//! their text (the broker's `*_raw` calls); a payload that is not JSON
//! text prints as {"bytes_hex": "..."}. Every error is one line on stderr
//! and a non-zero exit status (2 for a wrong command line, 1 for anything
//! else).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use farcall::mme::{
    Broker, BrokerConfig, BrokerError, Fsync, QueueConfig, Stats, SubscribeOptions,
};
use farcall::registry::{DIRECTORY_ENV, WriteAccess, set_write_access};
use farcall::remote::{AnyRemote, WireRef};
use farcall::{
    Address, Change, DirectoryClient, DirectoryError, DirectoryExt, Entry, InterfaceInfo, Limits,
    Node, NodeId, ObjectId,
};
use serde_json::{Value, json};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "farcall",
    version,
    about = "farcall from the command line: serve a directory, list its bindings, describe their \
             interfaces; serve a broker, publish and subscribe, send to and receive from its \
             queues, read its figures.",
    after_help = "Addresses look like tcp://127.0.0.1:7400 or unix:///run/farcall.sock. \
                  `ls` and `describe` read the directory's address from --directory, \
                  or else from the FARCALL_DIRECTORY environment variable; `pub`, `sub`, \
                  `send`, `recv` and `broker stats` read the broker's from --broker, or else \
                  from FARCALL_BROKER. Messages are JSON values.\n\n\
                  Examples:\n  \
                  farcall directory serve --listen tcp://127.0.0.1:7400 --data ./directory-data\n  \
                  FARCALL_DIRECTORY=tcp://127.0.0.1:7400 farcall ls shop/\n  \
                  farcall describe shop/cart --directory tcp://127.0.0.1:7400 --json\n  \
                  farcall broker serve --listen tcp://127.0.0.1:7500 --data ./broker-data\n  \
                  export FARCALL_BROKER=tcp://127.0.0.1:7500\n  \
                  farcall sub 'prices.>' --json    # in another shell\n  \
                  farcall pub prices.eu.acme '{\"price\": 12.5}'\n  \
                  farcall send orders '{\"id\": 7}' --durable\n  \
                  farcall recv orders --ack --json\n  \
                  farcall broker stats"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a standalone directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Lists the bindings under a prefix, with their interfaces.
    ///
    /// A table of name, number of members and interfaces, sorted by name
    /// (`--json`: an array of {name, members, interfaces}). Interfaces the
    /// directory does not link show as `#` and their id.
    Ls(LsArgs),
    /// Describes the interfaces of what is bound under a name.
    ///
    /// Each interface, followed by its supertraits, as a Rust-like trait:
    /// methods with argument names and types, result types, and
    /// `#[remote(oneway)]` or `#[remote(idempotent)]` (`--json`: an array
    /// of {name, id, known, supertraits, methods}).
    Describe(DescribeArgs),
    /// Runs a standalone broker, or reads its figures.
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Publishes a JSON value on a subject.
    ///
    /// The value is checked to be JSON and sent as its text without the
    /// whitespace between tokens (keys in their order, numbers as
    /// written). Every subscription whose pattern matches SUBJECT gets it;
    /// with none, it is gone.
    Pub(PubArgs),
    /// Prints the messages published on subjects matching a pattern.
    ///
    /// One line per message: `SUBJECT JSON`, where JSON is the payload if
    /// it is JSON text, else {"bytes_hex": "..."} (`--json`: one object
    /// {"subject", "body"} per line). Once subscribed, `subscribed to
    /// PATTERN` goes to stderr; only messages published from then on
    /// arrive. Runs until killed, or until --count messages.
    Sub(SubArgs),
    /// Sends a JSON value to a queue, once the broker has it.
    ///
    /// The queue is created if it does not exist (durable with
    /// --durable); an existing queue is used as it is, except that
    /// --durable on a queue that is not fails. Returns once the broker
    /// accepted the message (for a durable queue: written to disk under
    /// the broker's --fsync).
    Send(SendArgs),
    /// Receives messages from a queue and prints them.
    ///
    /// Prints --count messages (default 1) like `sub`, as `QUEUE JSON`
    /// (`--json`: {"queue", "body", "attempt"}, attempt 1 for a first
    /// delivery). With --ack each is acknowledged once printed: done.
    /// Without it they are given back when the command exits, to be
    /// delivered again at once (their attempt goes up by one, and a
    /// message out of attempts moves to the dead-letter queue QUEUE.dlq).
    /// A queue that does not exist is created (not durable).
    Recv(RecvArgs),
}

#[derive(Debug, Subcommand)]
enum BrokerCommand {
    /// Serves a broker on ADDR until killed.
    ///
    /// A node listening on ADDR that serves a broker in this process.
    /// Prints `listening on <address>` once ready (the real port when
    /// ADDR's port is 0). On SIGTERM or ctrl-c the broker is closed
    /// (durable queues flushed to disk) and the command exits 0.
    Serve(BrokerServeArgs),
    /// Prints the broker's figures: its queues, topics and subscriptions.
    ///
    /// A table of queues (name, durable, depth: messages waiting, in
    /// flight: delivered and not acknowledged, consumers, and since the
    /// broker started: sent, acked, redelivered, dead-lettered), a table
    /// of topics (subject, messages published, rate in messages per second
    /// over the last ten seconds), then the subscriptions open and the
    /// messages dropped from slow subscribers (`--json`: one object
    /// {queues, topics, subscriptions, dropped}).
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
struct BrokerArg {
    /// The broker's address (default: $FARCALL_BROKER): one served by
    /// `farcall broker serve` (tcp://HOST:PORT, unix://PATH), or a NATS
    /// server (nats://HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    broker: Option<String>,
}

#[derive(Debug, Args)]
struct StatsArgs {
    #[command(flatten)]
    target: BrokerArg,
    /// Prints JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PubArgs {
    /// The subject, e.g. `prices.eu.acme` (tokens separated by dots).
    #[arg(value_name = "SUBJECT")]
    subject: String,
    /// The message: a JSON value, e.g. '{"price": 12.5}' or '"text"'.
    #[arg(value_name = "JSON")]
    json: String,
    #[command(flatten)]
    target: BrokerArg,
}

#[derive(Debug, Args)]
struct SubArgs {
    /// The pattern, e.g. `prices.*.acme` (`*`: one token) or `prices.>`
    /// (`>`: all the tokens left).
    #[arg(value_name = "PATTERN")]
    pattern: String,
    /// Exits after N messages.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    count: Option<u64>,
    /// Prints one JSON object per message.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: BrokerArg,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    queue: String,
    /// The message: a JSON value, sent as `pub` sends it.
    #[arg(value_name = "JSON")]
    json: String,
    /// Creates the queue durable (kept on the broker's disk, surviving a
    /// restart) if it does not exist.
    #[arg(long)]
    durable: bool,
    #[command(flatten)]
    target: BrokerArg,
}

#[derive(Debug, Args)]
struct RecvArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    queue: String,
    /// Acknowledges each message once printed (without it, the messages
    /// are given back on exit and delivered again at once).
    #[arg(long)]
    ack: bool,
    /// How many messages to receive (default 1; at most 1024 without
    /// --ack).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    count: Option<u64>,
    /// Fails (exit 1) if the messages have not all arrived within SECONDS
    /// (those that did are printed); waits forever by default.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// Prints one JSON object per message.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: BrokerArg,
}

#[derive(Debug, Args)]
struct BrokerServeArgs {
    /// Where to listen, e.g. tcp://0.0.0.0:7500 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Address,
    /// Keeps durable queues in DIR (one sub-directory per queue); they
    /// come back on start with every message not acknowledged. Without
    /// it, asking for a durable queue fails.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// When durable queues' writes reach the disk: `always` (fsync before
    /// a send is confirmed; survives power loss) or MILLIS (confirm once
    /// written to the operating system, which survives a crash of the
    /// broker, and fsync every MILLIS ms; a power cut may lose that much).
    /// Default: 50.
    #[arg(long, value_name = "always|MILLIS", value_parser = parse_fsync)]
    fsync: Option<Fsync>,
    /// The largest message accepted, in bytes (default 1048576, 1 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_message: Option<u64>,
}

fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("the count must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a count of messages")),
    }
}

fn parse_fsync(s: &str) -> Result<Fsync, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("always") {
        return Ok(Fsync::Always);
    }
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("`{s}` is neither `always` nor a number of milliseconds"))?;
    if !(1..=60_000).contains(&ms) {
        return Err(format!("{ms} ms is out of range: 1 to 60000"));
    }
    Ok(Fsync::Every(Duration::from_millis(ms)))
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Serves a directory on ADDR until killed.
    ///
    /// A node listening on ADDR whose embedded directory is the service.
    /// Prints `listening on <address>` once ready (the real port when
    /// ADDR's port is 0). Writes are accepted from the same host only.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Where to listen, e.g. tcp://0.0.0.0:7400 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Address,
    /// Keeps the bindings in DIR/bindings.json, rewritten after every
    /// change and bound again on start: a binding whose owner is still
    /// alive answers again after a restart; one whose owner is gone is
    /// dropped within a lease time.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// How long a lease lasts, in seconds (default 60): a binding whose
    /// owner cannot be reached for this long is dropped.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    lease_time: Option<Duration>,
    /// Admits writers from other hosts that present the token in FILE
    /// (its content, without the final newline) as their handshake
    /// credentials. It travels in clear: for trusted networks.
    #[arg(long, value_name = "FILE")]
    write_token_file: Option<PathBuf>,
    /// With --write-token-file: every writer must present the token, even
    /// from the same host.
    #[arg(long, requires = "write_token_file")]
    token_only: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.02..=86_400.0).contains(&secs) {
        return Err(format!("{s} s is out of range: 0.02 to 86400"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, Args)]
struct DirectoryArg {
    /// The directory's address (default: $FARCALL_DIRECTORY).
    #[arg(long, value_name = "ADDR")]
    directory: Option<String>,
    /// Prints JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Only names starting with PREFIX (e.g. `shop/`); all by default.
    #[arg(value_name = "PREFIX")]
    prefix: Option<String>,
    #[command(flatten)]
    target: DirectoryArg,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// The name to describe (e.g. `shop/cart`).
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    target: DirectoryArg,
}

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
                "broker",
                "stats",
                "pub",
                "sub",
                "send",
                "recv",
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
    match cli.command {
        Command::Directory(DirectoryCommand::Serve(args)) => serve(args).await,
        Command::Ls(args) => ls(args).await,
        Command::Describe(args) => describe(args).await,
        Command::Broker(BrokerCommand::Serve(args)) => broker_serve(args).await,
        Command::Broker(BrokerCommand::Stats(args)) => broker_stats(args).await,
        Command::Pub(args) => publish(args).await,
        Command::Sub(args) => subscribe(args).await,
        Command::Send(args) => send(args).await,
        Command::Recv(args) => recv(args).await,
    }
}

// ---------------------------------------------------------------------------
// ls and describe
// ---------------------------------------------------------------------------

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

/// The directory named by `--directory` or `FARCALL_DIRECTORY`, from a
/// node of this process that only dials.
async fn connect(target: &DirectoryArg) -> Result<(Node, DirectoryClient), Fail> {
    let addr = target_address(
        &target.directory,
        "--directory",
        DIRECTORY_ENV,
        "directory",
        "tcp://127.0.0.1:7400",
    )?;
    let node = Node::new();
    let dir = reach(
        "the directory",
        &addr,
        DirectoryClient::connect(&node, &addr),
    )
    .await?;
    Ok((node, dir.with_deadline(CALL_DEADLINE)))
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

fn directory_failure(e: DirectoryError) -> Fail {
    Fail::new(one_line(&e.to_string()))
}

async fn ls(args: LsArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    let prefix = args.prefix.as_deref().unwrap_or("");
    let entries = dir.list(prefix).await.map_err(directory_failure)?;
    let out = if args.target.json {
        format!("{}\n", entries_json(&entries))
    } else {
        entries_table(&entries)
    };
    print_out(&out)
}

async fn describe(args: DescribeArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    let infos = dir.describe(&args.name).await.map_err(directory_failure)?;
    let out = if args.target.json {
        format!("{}\n", interfaces_json(&infos))
    } else {
        interfaces_text(&infos)
    };
    print_out(&out)
}

fn print_out(s: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(s.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Fail::new(format!("cannot write the output: {e}")))
}

/// `ls` as a table: name, members, interfaces.
fn entries_table(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "no bindings\n".to_owned();
    }
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  MEMBERS  INTERFACES", "NAME");
    for e in entries {
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {}",
            e.name,
            e.members,
            e.interfaces.join(", ")
        );
    }
    out
}

fn entries_json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "interfaces": e.interfaces,
                    "members": e.members,
                })
            })
            .collect(),
    )
}

/// `describe` as Rust-like trait declarations.
fn interfaces_text(infos: &[InterfaceInfo]) -> String {
    let mut out = String::new();
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "// interface id {:016x}", info.id);
        if !info.known {
            let _ = writeln!(
                out,
                "// {}: neither the directory nor this program links this interface; \
                 its methods are unknown",
                info.name
            );
            continue;
        }
        let supers = if info.supertraits.is_empty() {
            String::new()
        } else {
            format!(": {}", info.supertraits.join(" + "))
        };
        if info.methods.is_empty() {
            let _ = writeln!(out, "trait {}{supers} {{}}", info.name);
            continue;
        }
        let _ = writeln!(out, "trait {}{supers} {{", info.name);
        for m in &info.methods {
            let mut marks = Vec::new();
            if m.oneway {
                marks.push("oneway");
            }
            if m.idempotent {
                marks.push("idempotent");
            }
            if !marks.is_empty() {
                let _ = writeln!(out, "    #[remote({})]", marks.join(", "));
            }
            let mut args = String::from("&self");
            for a in &m.args {
                let _ = write!(args, ", {}: {}", a.name, a.ty);
            }
            let _ = writeln!(out, "    async fn {}({args}) -> {};", m.name, m.result);
        }
        out.push_str("}\n");
    }
    out
}

fn interfaces_json(infos: &[InterfaceInfo]) -> Value {
    Value::Array(
        infos
            .iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "id": format!("{:016x}", i.id),
                    "known": i.known,
                    "supertraits": i.supertraits,
                    "methods": i.methods.iter().map(|m| json!({
                        "name": m.name,
                        "args": m.args.iter().map(|a| json!({"name": a.name, "type": a.ty})).collect::<Vec<_>>(),
                        "result": m.result,
                        "oneway": m.oneway,
                        "idempotent": m.idempotent,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// directory serve
// ---------------------------------------------------------------------------

async fn serve(args: ServeArgs) -> Result<(), Fail> {
    let mut limits = Limits::default();
    if let Some(lease) = args.lease_time {
        limits = limits.lease_time(lease);
    }
    // The token is read, and write access set, before the node listens:
    // no writer comes in under the default meanwhile.
    let access = match &args.write_token_file {
        Some(file) => {
            let token = read_token(file)?;
            Some(if args.token_only {
                WriteAccess::TokenOnly(token.into())
            } else {
                WriteAccess::SameHostOrToken(token.into())
            })
        }
        None => None,
    };
    let node = Node::builder().limits(limits).build();
    if let Some(access) = access
        && !set_write_access(&node, access)
    {
        return Err(Fail::new("this node has no directory to guard"));
    }
    let addr = node.listen_on(args.listen.clone()).await.map_err(|e| {
        Fail::new(format!(
            "cannot listen on {}: {}",
            args.listen,
            one_line(&e.to_string())
        ))
    })?;
    let dir = node.directory();
    if let Some(data) = &args.data {
        let store = Store::open(data)?;
        let saved = store.load()?;
        // Watch before restoring, so that nothing bound meanwhile is missed.
        let changes = dir.watch("").await.map_err(directory_failure)?;
        let mut names = restore(&node, &dir, saved).await;
        names.extend(snapshot_names(&dir).await?);
        let state = snapshot(&dir, names).await?;
        store.save(&state)?;
        tokio::spawn(persist(dir.clone(), store, state, changes));
    }
    print_out(&format!("listening on {addr}\n"))?;
    std::future::pending::<()>().await;
    drop(node);
    Ok(())
}

/// The token in `file`, without its final line break.
fn read_token(file: &Path) -> Result<Vec<u8>, Fail> {
    let mut token = std::fs::read(file)
        .map_err(|e| Fail::new(format!("--write-token-file {}: {e}", file.display())))?;
    while token.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        token.pop();
    }
    if token.is_empty() {
        return Err(Fail::new(format!(
            "--write-token-file {}: the file is empty",
            file.display()
        )));
    }
    Ok(token)
}

/// The bindings as saved: name -> members.
type Saved = BTreeMap<String, Vec<WireRef>>;

/// Where the bindings are kept: `DIR/bindings.json`.
#[derive(Debug)]
struct Store {
    file: PathBuf,
}

const STORE_VERSION: u64 = 1;

impl Store {
    fn open(dir: &Path) -> Result<Store, Fail> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail::new(format!("--data {}: {e}", dir.display())))?;
        Ok(Store {
            file: dir.join("bindings.json"),
        })
    }

    fn load(&self) -> Result<Saved, Fail> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::new()),
            Err(e) => return Err(Fail::new(format!("{}: {e}", self.file.display()))),
        };
        decode_saved(&text).map_err(|why| Fail::new(format!("{}: {why}", self.file.display())))
    }

    /// Writes the bindings to a temporary file and renames it over the
    /// old one, so that a crash leaves one or the other whole.
    fn save(&self, saved: &Saved) -> Result<(), Fail> {
        let tmp = self.file.with_extension("json.tmp");
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&encode_saved(saved)).unwrap_or_default()
        );
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|e| Fail::new(format!("{}: {e}", self.file.display())))
    }
}

fn encode_saved(saved: &Saved) -> Value {
    let bindings: serde_json::Map<String, Value> = saved
        .iter()
        .map(|(name, members)| {
            let members = members
                .iter()
                .map(|w| {
                    json!({
                        "owner": format!("{:032x}", w.owner.0),
                        "object": format!("{:032x}", w.object.0),
                        "interface": format!("{:016x}", w.interface),
                        "addrs": w.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })
                })
                .collect();
            (name.clone(), Value::Array(members))
        })
        .collect();
    json!({ "version": STORE_VERSION, "bindings": bindings })
}

fn decode_saved(text: &str) -> Result<Saved, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("version").and_then(Value::as_u64) != Some(STORE_VERSION) {
        return Err(format!("not a bindings file of version {STORE_VERSION}"));
    }
    let bindings = v
        .get("bindings")
        .and_then(Value::as_object)
        .ok_or("no `bindings` object")?;
    let mut out = Saved::new();
    for (name, members) in bindings {
        let members = members
            .as_array()
            .ok_or_else(|| format!("{name:?}: not a list of members"))?;
        let mut wires = Vec::new();
        for m in members {
            wires.push(decode_wire(m).map_err(|why| format!("{name:?}: {why}"))?);
        }
        out.insert(name.clone(), wires);
    }
    Ok(out)
}

fn decode_wire(m: &Value) -> Result<WireRef, String> {
    let hex = |key: &str| -> Result<u128, String> {
        let s = m
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("member without `{key}`"))?;
        u128::from_str_radix(s, 16).map_err(|_| format!("`{key}` is not hexadecimal: {s:?}"))
    };
    let interface = u64::try_from(hex("interface")?).map_err(|_| "`interface` too large")?;
    let addrs = m
        .get("addrs")
        .and_then(Value::as_array)
        .ok_or("member without `addrs`")?
        .iter()
        .map(|a| {
            let s = a.as_str().ok_or("an address is not a string")?;
            s.parse::<Address>().map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WireRef {
        owner: NodeId(hex("owner")?),
        addrs,
        object: ObjectId(hex("object")?),
        interface,
    })
}

/// Binds again what was saved; returns the names it touched. A member
/// that cannot be added is reported on stderr and left out.
async fn restore(node: &Node, dir: &DirectoryClient, saved: Saved) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, wires) in saved {
        for wire in wires {
            let r = AnyRemote::bind(node, wire, None);
            if let Err(e) = dir.add_any(&name, r).await {
                eprintln!(
                    "farcall: not restoring a member of {name:?}: {}",
                    one_line(&e.to_string())
                );
            }
        }
        names.insert(name);
    }
    names
}

/// Every name bound now.
async fn snapshot_names(dir: &DirectoryClient) -> Result<BTreeSet<String>, Fail> {
    Ok(dir
        .list("")
        .await
        .map_err(directory_failure)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// The members of `names` as they are now (a name no longer bound is
/// left out).
async fn snapshot(dir: &DirectoryClient, names: BTreeSet<String>) -> Result<Saved, Fail> {
    let mut out = Saved::new();
    refresh(dir, &mut out, names).await?;
    Ok(out)
}

/// Reads the members of `names` into `state` again.
async fn refresh(
    dir: &DirectoryClient,
    state: &mut Saved,
    names: BTreeSet<String>,
) -> Result<(), Fail> {
    for name in names {
        match dir.lookup_any(&name).await {
            Ok(members) => {
                state.insert(name, members.iter().map(|r| r.wire().clone()).collect());
            }
            Err(DirectoryError::NotBound(_)) => {
                state.remove(&name);
            }
            Err(e) => return Err(directory_failure(e)),
        }
    }
    Ok(())
}

/// Saves the bindings after every change (changes coming together are
/// saved once). A watch that breaks (it fell behind) is started again
/// and everything read anew.
async fn persist(
    dir: DirectoryClient,
    store: Store,
    mut state: Saved,
    mut changes: farcall::Stream<Change>,
) {
    loop {
        let mut dirty = BTreeSet::new();
        let mut rescan = false;
        match changes.next().await {
            Some(Ok(c)) => {
                dirty.insert(c.name().to_owned());
            }
            _ => rescan = true,
        }
        // Let a burst of changes settle, then take what has come.
        if !rescan {
            tokio::time::sleep(Duration::from_millis(20)).await;
            while let Ok(next) = tokio::time::timeout(Duration::ZERO, changes.next()).await {
                match next {
                    Some(Ok(c)) => {
                        dirty.insert(c.name().to_owned());
                    }
                    _ => {
                        rescan = true;
                        break;
                    }
                }
            }
        }
        let result = if rescan {
            // Not in a tight loop if watching keeps failing.
            tokio::time::sleep(Duration::from_millis(100)).await;
            match dir.watch("").await {
                Ok(s) => changes = s,
                Err(e) => {
                    eprintln!(
                        "farcall: cannot watch the directory ({}); no longer saving bindings",
                        one_line(&e.to_string())
                    );
                    return;
                }
            }
            match snapshot_names(&dir).await {
                Ok(names) => match snapshot(&dir, names).await {
                    Ok(s) => {
                        state = s;
                        Ok(())
                    }
                    Err(f) => Err(f),
                },
                Err(f) => Err(f),
            }
        } else {
            refresh(&dir, &mut state, dirty).await
        };
        if let Err(f) = result.and_then(|()| store.save(&state)) {
            eprintln!("farcall: saving the bindings: {}", f.message);
        }
    }
}

// ---------------------------------------------------------------------------
// pub, sub, send, recv and broker stats
// ---------------------------------------------------------------------------

/// The environment variable that names the broker when `--broker` is not
/// given.
const BROKER_ENV: &str = "FARCALL_BROKER";

/// The most messages `recv` holds unacknowledged (the broker's largest
/// prefetch over a connection).
const RECV_MAX_HELD: u64 = 1024;

/// The broker named by `--broker` or `FARCALL_BROKER`, from a node of this
/// process that only dials. Close both ([`Broker::close`],
/// [`Node::shutdown`]) before exiting: that sends what is still queued (a
/// publish is one-way).
async fn connect_broker(target: &BrokerArg) -> Result<(Node, Broker), Fail> {
    let addr = target_address(
        &target.broker,
        "--broker",
        BROKER_ENV,
        "broker",
        "tcp://127.0.0.1:7500",
    )?;
    let node = Node::new();
    let broker = reach("the broker", &addr, Broker::connect_with(&node, &addr)).await?;
    Ok((node, broker))
}

/// Runs `work` with the broker, then closes the node gracefully whatever
/// the outcome.
async fn with_broker<F, Fut>(target: &BrokerArg, work: F) -> Result<(), Fail>
where
    F: FnOnce(Broker) -> Fut,
    Fut: Future<Output = Result<(), Fail>>,
{
    let (node, broker) = connect_broker(target).await?;
    let result = work(broker.clone()).await;
    // A client's close flushes what it still holds (NATS); then the
    // node's connections close gracefully, sending what is queued.
    let closed = call(broker.close()).await;
    node.shutdown().await;
    result.and(closed)
}

/// A call to the broker, within [`CALL_DEADLINE`].
async fn call<T>(f: impl Future<Output = Result<T, BrokerError>>) -> Result<T, Fail> {
    match tokio::time::timeout(CALL_DEADLINE, f).await {
        Ok(r) => r.map_err(broker_failure),
        Err(_) => Err(Fail::new(format!(
            "the broker gave no answer within {} s",
            CALL_DEADLINE.as_secs()
        ))),
    }
}

/// The message argument: checked to be JSON, as compact text.
fn json_argument(text: &str) -> Result<Vec<u8>, Fail> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        Fail::usage(format!(
            "the message is not JSON ({e}); quote it for the shell, e.g. '{{\"n\": 1}}' or '\"text\"'"
        ))
    })?;
    Ok(compact_json(text).into_bytes())
}

/// `text`, valid JSON, without whitespace between tokens: one line, with
/// keys in their order and numbers as written (a round trip through
/// [`Value`] would sort keys and round large numbers).
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// A payload as one line of JSON: itself if it is JSON text, else
/// {"bytes_hex": "..."}.
fn payload_json(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) if serde_json::from_str::<Value>(text).is_ok() => compact_json(text),
        _ => {
            let mut hex = String::with_capacity(payload.len() * 2);
            for b in payload {
                let _ = write!(hex, "{b:02x}");
            }
            json!({ "bytes_hex": hex }).to_string()
        }
    }
}

/// One message as `sub` and `recv` print it: `WHERE BODY`, or with
/// `json` an object {"<key>": WHERE, "body": BODY, ...more}.
fn message_line(
    json: bool,
    key: &str,
    place: &str,
    payload: &[u8],
    more: &[(&str, Value)],
) -> String {
    let body = payload_json(payload);
    if !json {
        return format!("{place} {body}\n");
    }
    // Built by hand so that the body keeps its keys' order.
    let mut line = format!(
        "{{{}:{},\"body\":{body}",
        Value::from(key),
        Value::from(place)
    );
    for (k, v) in more {
        let _ = write!(line, ",{}:{v}", Value::from(*k));
    }
    line.push_str("}\n");
    line
}

async fn publish(args: PubArgs) -> Result<(), Fail> {
    let payload = json_argument(&args.json)?;
    // The publish is one-way: the graceful close in `with_broker` sends
    // it before the process exits.
    with_broker(&args.target, |broker| async move {
        call(broker.publish_raw(&args.subject, payload.into())).await
    })
    .await
}

async fn subscribe(args: SubArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let mut sub =
            call(broker.subscribe_raw(&args.pattern, SubscribeOptions::default())).await?;
        eprintln!("subscribed to {}", args.pattern);
        let mut seen = 0u64;
        while args.count.is_none_or(|n| seen < n) {
            let msg = match sub.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(broker_failure(e)),
                None => {
                    return Err(Fail::new(format!(
                        "the subscription to {} ended: the broker closed",
                        args.pattern
                    )));
                }
            };
            print_out(&message_line(
                args.json,
                "subject",
                &msg.subject,
                &msg.body,
                &[],
            ))?;
            seen += 1;
        }
        Ok(())
    })
    .await
}

async fn send(args: SendArgs) -> Result<(), Fail> {
    let payload = json_argument(&args.json)?;
    with_broker(&args.target, |broker| async move {
        let config = args.durable.then(QueueConfig::durable);
        let queue = call(broker.queue_raw(&args.queue, config)).await?;
        call(queue.send(&payload.into())).await
    })
    .await
}

async fn recv(args: RecvArgs) -> Result<(), Fail> {
    let count = args.count.unwrap_or(1);
    if !args.ack && count > RECV_MAX_HELD {
        return Err(Fail::usage(format!(
            "--count {count}: without --ack, recv holds at most {RECV_MAX_HELD} messages"
        )));
    }
    with_broker(&args.target, |broker| async move {
        let queue = call(broker.queue_raw(&args.queue, None)).await?;
        // With --ack, one at a time: each ack lets the next one come. The
        // broker hands over the next message as soon as the last one is
        // acked, so one message past the last may be delivered here and
        // given back (its attempt goes up by one): the broker has no way
        // yet to stop a consumer before its last ack. Without --ack, all
        // at once: they are held until the consumer goes, which gives
        // them back; a nack would have them delivered to this consumer
        // again, counting an attempt each time.
        let prefetch = if args.ack { 1 } else { count as u32 };
        let mut consumer = call(queue.consume_with(prefetch)).await?;
        let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut got = 0u64;
        while got < count {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, consumer.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let secs = args.timeout.unwrap_or_default().as_secs_f64();
                        return Err(Fail::new(if got == 0 {
                            format!("no message on queue {:?} within {secs} s", args.queue)
                        } else {
                            format!(
                                "only {got} of {count} messages on queue {:?} within {secs} s",
                                args.queue
                            )
                        }));
                    }
                },
                None => consumer.next().await,
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(broker_failure(e)),
                None => {
                    return Err(Fail::new(format!(
                        "the broker closed while receiving from queue {:?}",
                        args.queue
                    )));
                }
            };
            print_out(&message_line(
                args.json,
                "queue",
                &args.queue,
                delivery.body(),
                &[("attempt", Value::from(delivery.attempt()))],
            ))?;
            if args.ack {
                call(delivery.ack()).await?;
            }
            got += 1;
        }
        drop(consumer);
        Ok(())
    })
    .await
}

async fn broker_stats(args: StatsArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let stats = call(broker.stats()).await?;
        let out = if args.json {
            let v = serde_json::to_value(&stats)
                .map_err(|e| Fail::new(format!("cannot write the figures as JSON: {e}")))?;
            format!("{v}\n")
        } else {
            stats_text(&stats)
        };
        print_out(&out)
    })
    .await
}

/// Rows as columns: each as wide as its widest cell, the first one to the
/// left and the others to the right.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(text, "{cell:<w$}");
            } else {
                let _ = write!(text, "  {cell:>w$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// `broker stats` as text.
fn stats_text(stats: &Stats) -> String {
    let mut out = String::new();
    if stats.queues.is_empty() {
        out.push_str("no queues\n");
    } else {
        let rows: Vec<Vec<String>> = stats
            .queues
            .iter()
            .map(|q| {
                vec![
                    q.name.clone(),
                    if q.durable { "yes" } else { "no" }.to_owned(),
                    q.depth.to_string(),
                    q.in_flight.to_string(),
                    q.consumers.to_string(),
                    q.sent.to_string(),
                    q.acked.to_string(),
                    q.redelivered.to_string(),
                    q.dead_lettered.to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "QUEUE",
                "DURABLE",
                "DEPTH",
                "IN FLIGHT",
                "CONSUMERS",
                "SENT",
                "ACKED",
                "REDELIVERED",
                "DEAD-LETTERED",
            ],
            &rows,
        );
    }
    out.push('\n');
    if stats.topics.is_empty() {
        out.push_str("no topics\n");
    } else {
        let rows: Vec<Vec<String>> = stats
            .topics
            .iter()
            .map(|t| {
                vec![
                    t.subject.clone(),
                    t.published.to_string(),
                    format!("{:.1}", t.rate),
                ]
            })
            .collect();
        table(&mut out, &["SUBJECT", "PUBLISHED", "MSGS/S"], &rows);
    }
    let _ = writeln!(
        out,
        "\nsubscriptions: {}, messages dropped from slow subscribers: {}",
        stats.subscriptions, stats.dropped
    );
    out
}

// ---------------------------------------------------------------------------
// broker serve
// ---------------------------------------------------------------------------

fn broker_failure(e: BrokerError) -> Fail {
    Fail::new(one_line(&e.to_string()))
}

async fn broker_serve(args: BrokerServeArgs) -> Result<(), Fail> {
    let mut config = BrokerConfig {
        data: args.data.clone(),
        ..BrokerConfig::default()
    };
    if let Some(fsync) = args.fsync {
        config.fsync = fsync;
    }
    if let Some(max) = args.max_message {
        config.max_message = max;
    }
    let broker = Broker::open(config).map_err(|e| match &args.data {
        Some(dir) => Fail::new(format!(
            "--data {}: {}",
            dir.display(),
            one_line(&e.to_string())
        )),
        None => broker_failure(e),
    })?;
    let node = Node::new();
    broker.expose(&node).map_err(broker_failure)?;
    let addr = node.listen_on(args.listen.clone()).await.map_err(|e| {
        Fail::new(format!(
            "cannot listen on {}: {}",
            args.listen,
            one_line(&e.to_string())
        ))
    })?;
    // Caught before the address is printed: whoever reads it may stop
    // the broker at once.
    let stopped = stop_signals()?;
    print_out(&format!("listening on {addr}\n"))?;
    stopped.await;
    // Close the broker first: it takes no more messages and its durable
    // queues reach the disk; then the connections go.
    let closed = broker.close().await;
    node.shutdown().await;
    closed.map_err(broker_failure)
}

/// SIGTERM and ctrl-c (SIGINT), caught from now on; the future ends at
/// the first.
#[cfg(unix)]
fn stop_signals() -> Result<impl Future<Output = ()>, Fail> {
    use tokio::signal::unix::{SignalKind, signal};
    let catch = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Fail::new(format!("cannot catch {name}: {e}")))
    };
    let mut term = catch(SignalKind::terminate(), "SIGTERM")?;
    let mut int = catch(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Ctrl-c, caught from the first poll on.
#[cfg(not(unix))]
fn stop_signals() -> Result<impl Future<Output = ()>, Fail> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use farcall::registry::{ArgInfo, MethodInfo};

    #[test]
    fn describe_text_shows_methods_and_supertraits() {
        let infos = vec![
            InterfaceInfo {
                name: "Circle".into(),
                id: 0xab,
                known: true,
                methods: vec![MethodInfo {
                    name: "scale".into(),
                    args: vec![
                        ArgInfo {
                            name: "k".into(),
                            ty: "f64".into(),
                        },
                        ArgInfo {
                            name: "center".into(),
                            ty: "(f64, f64)".into(),
                        },
                    ],
                    result: "Result<f64, RemoteError>".into(),
                    oneway: false,
                    idempotent: true,
                }],
                supertraits: vec!["Shape".into(), "Named".into()],
            },
            InterfaceInfo {
                name: "#00000000000000cd".into(),
                id: 0xcd,
                known: false,
                methods: vec![],
                supertraits: vec![],
            },
        ];
        let text = interfaces_text(&infos);
        assert!(text.contains("trait Circle: Shape + Named {"), "{text}");
        assert!(text.contains("    #[remote(idempotent)]\n"), "{text}");
        assert!(
            text.contains(
                "    async fn scale(&self, k: f64, center: (f64, f64)) -> Result<f64, RemoteError>;"
            ),
            "{text}"
        );
        assert!(text.contains("#00000000000000cd: neither"), "{text}");
        let json = interfaces_json(&infos);
        assert_eq!(json[0]["supertraits"], json!(["Shape", "Named"]));
        assert_eq!(json[0]["methods"][0]["args"][1]["type"], "(f64, f64)");
        assert_eq!(json[1]["known"], false);
    }

    #[test]
    fn saved_bindings_round_trip() {
        let mut saved = Saved::new();
        saved.insert(
            "shop/cart".into(),
            vec![WireRef {
                owner: NodeId(u128::MAX - 5),
                addrs: vec!["tcp://127.0.0.1:7400".parse().unwrap()],
                object: ObjectId(1 << 100),
                interface: u64::MAX - 1,
            }],
        );
        let text = encode_saved(&saved).to_string();
        assert_eq!(decode_saved(&text).unwrap(), saved);
        assert!(decode_saved("{}").is_err());
        assert!(decode_saved("not json").is_err());
    }

    #[test]
    fn messages_are_compact_json_or_hex() {
        assert_eq!(
            compact_json(" { \"b\" : [1, 2.50] ,\n\t\"a\": \"x \\\" y\" } "),
            r#"{"b":[1,2.50],"a":"x \" y"}"#
        );
        assert_eq!(compact_json(r#""a\\" "#), r#""a\\""#);
        assert_eq!(payload_json(b"[1, 2]"), "[1,2]");
        assert_eq!(payload_json(b"\xff\x00a"), r#"{"bytes_hex":"ff0061"}"#);
        assert_eq!(payload_json(b""), r#"{"bytes_hex":""}"#);
        assert_eq!(payload_json(b"1 2"), r#"{"bytes_hex":"312032"}"#);
        assert!(json_argument("{").is_err());
        assert_eq!(
            message_line(
                true,
                "queue",
                "q",
                b"{\"z\":1,\"a\":2}",
                &[("attempt", json!(3))]
            ),
            "{\"queue\":\"q\",\"body\":{\"z\":1,\"a\":2},\"attempt\":3}\n"
        );
        assert_eq!(
            message_line(false, "subject", "a.b", b"\"x\"", &[]),
            "a.b \"x\"\n"
        );
    }

    #[test]
    fn fsync_and_stats() {
        assert_eq!(parse_fsync("always"), Ok(Fsync::Always));
        assert_eq!(
            parse_fsync("200"),
            Ok(Fsync::Every(Duration::from_millis(200)))
        );
        assert!(parse_fsync("0").is_err());
        assert!(parse_fsync("soon").is_err());
        let stats = Stats {
            queues: vec![farcall::mme::QueueStats {
                name: "orders".into(),
                durable: true,
                depth: 12,
                sent: 30,
                ..Default::default()
            }],
            topics: vec![],
            subscriptions: 2,
            dropped: 1,
        };
        let text = stats_text(&stats);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("QUEUE   DURABLE  DEPTH  IN FLIGHT"),
            "{text}"
        );
        let row = lines.next().unwrap();
        assert_eq!(row.len(), header.len(), "columns line up: {text}");
        assert!(row.starts_with("orders      yes     12"), "{text}");
        assert!(text.contains("no topics"), "{text}");
        assert!(text.contains("subscriptions: 2, messages dropped from slow subscribers: 1"));
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = Cli::try_parse_from(["farcall", "directory", "serve"]).unwrap_err();
        let line = one_line_clap_error(&e.to_string(), &[]);
        assert!(!line.contains('\n'));
        assert!(line.contains("--listen"), "{line}");
        assert!(
            line.ends_with("(see `farcall directory serve --help`)"),
            "{line}"
        );
        let argv = ["directory", "serve", "--lease-time", "x"];
        let e = Cli::try_parse_from(std::iter::once("farcall").chain(argv)).unwrap_err();
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let line = one_line_clap_error(&e.to_string(), &argv);
        assert!(line.contains("not a number of seconds"), "{line}");
        assert!(
            line.ends_with("(see `farcall directory serve --help`)"),
            "{line}"
        );
        Cli::try_parse_from(["farcall", "ls", "--directory", "tcp://127.0.0.1:1"]).unwrap();
        let argv = ["recv", "q", "--count", "0"];
        let e = Cli::try_parse_from(std::iter::once("farcall").chain(argv)).unwrap_err();
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let line = one_line_clap_error(&e.to_string(), &argv);
        assert!(line.contains("at least 1"), "{line}");
        assert!(line.ends_with("(see `farcall recv --help`)"), "{line}");
    }
}
