//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use farcall::mme::Fsync;
use farcall::node::Address;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "farcall",
    version = version_line(),
    about = "farcall from the command line: serve a directory, list its bindings, describe their \
             interfaces; serve a broker, publish and subscribe, send to and receive from its \
             queues, administer them, read its figures.",
    after_help = "Addresses look like tcp://127.0.0.1:7400 or unix:///run/farcall.sock. \
                  `ls` and `describe` read the directory's address from --directory, \
                  or else from the FARCALL_DIRECTORY environment variable; `pub`, `sub`, \
                  `send`, `recv`, `queue` and `broker stats` read the broker's from --broker, \
                  or else from FARCALL_BROKER. Messages are JSON values.\n\n\
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
                  farcall queue peek orders.dlq\n  \
                  farcall queue move orders.dlq --to orders\n  \
                  farcall broker stats"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) security: crate::security::SecurityArgs,
    /// What is logged on stderr: error, warn, info, debug or trace
    /// (default: info for `serve`, warn otherwise); RUST_LOG, when set,
    /// takes precedence (e.g. RUST_LOG=farcall_broker=debug).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub(crate) log_level: Option<tracing::Level>,
    /// How log lines look: text or json (one object per line).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
    /// Serve the process's metrics for Prometheus at http://ADDR/metrics
    /// (`directory serve` and `broker serve`), e.g. 127.0.0.1:9464.
    #[arg(long, global = true, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// of {name, id, known, supertraits, types, methods}, `id` being the
    /// 64-bit interface id as 16 lowercase hex digits).
    Describe(DescribeArgs),
    /// Prints the directory's changes under a prefix as they happen.
    ///
    /// One line per change, `bound NAME OWNER OBJECT` or `unbound NAME
    /// OWNER OBJECT` (`--json`: one object per line, {change, name, owner,
    /// object}), until stopped (ctrl-c) or the directory goes away.
    Watch(LsArgs),
    /// Removes every member bound under a name.
    ///
    /// A write: the directory allows it as it allows any other (from this
    /// host, with its write token, or by its policy).
    Unbind(DescribeArgs),
    /// Measures the round trip to any farcall node.
    ///
    /// Dials ADDR (the handshake checks that it speaks this wire
    /// protocol), then sends COUNT pings, each answered by the node's
    /// connection without running any handler; prints one line per pong
    /// with its round-trip time, and the node's id.
    Ping(PingArgs),
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
    /// The queue is created if it does not exist, with the default
    /// configuration or the one --durable, --ack-wait, --max-deliver and
    /// --max-depth give; an existing queue is used as it is, and must
    /// agree with those of them that are given (else the command fails,
    /// saying both configurations). Returns once the broker accepted the
    /// message (for a durable queue: written to disk under the broker's
    /// --fsync).
    Send(SendArgs),
    /// Receives messages from a queue and prints them.
    ///
    /// Prints --count messages (default 1) like `sub`, as `QUEUE JSON`
    /// (`--json`: {"queue", "body", "attempt"}, attempt 1 for a first
    /// delivery). With --ack each is acknowledged once printed: done.
    /// Without it they are given back when the command exits, to be
    /// delivered again at once (their attempt goes up by one, and a
    /// message out of attempts moves to the dead-letter queue QUEUE.dlq).
    /// The broker hands over exactly --count messages: the one after them
    /// is not delivered, and its attempt does not grow. A queue that does
    /// not exist is an error naming it: recv never creates one.
    Recv(RecvArgs),
    /// Administers the broker's queues: list, describe, look into,
    /// purge, delete, move messages between them.
    #[command(subcommand)]
    Queue(QueueCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Lists the queues.
    ///
    /// A table of name, durable, depth (messages waiting), in flight
    /// (delivered, not acknowledged), consumers and the age of the oldest
    /// message (`--json`: an array of the objects `queue info --json`
    /// prints).
    Ls(QueueLsArgs),
    /// Describes a queue: its configuration and what it holds.
    ///
    /// Its configuration (durable, ack-wait, max-deliver, max-depth),
    /// depth, messages in flight, consumers and the age of its oldest
    /// message (`--json`: {"name", "durable", "ack_wait_ms",
    /// "max_deliver", "max_depth", "depth", "in_flight", "consumers",
    /// "oldest_age_ms"}, the last null when the queue is empty).
    Info(QueueNameArgs),
    /// Removes every message of a queue, those in flight too.
    ///
    /// Prints how many. The queue and its configuration stay.
    Purge(QueueNameArgs),
    /// Deletes a queue: its messages and configuration.
    ///
    /// Its consumers end; its dead-letter queue, if any, stays.
    Delete(QueueNameArgs),
    /// Prints messages of a queue without taking them.
    ///
    /// Up to --count messages (default 10), oldest first, as `recv`
    /// prints them (`--json`: {"queue", "body", "attempts", "age_ms"},
    /// attempts being the deliveries so far: 0 for a message never
    /// delivered, null where the broker cannot tell). Nothing changes:
    /// no message is delivered, acknowledged or moved, and no attempt is
    /// counted.
    Peek(QueuePeekArgs),
    /// Moves the messages waiting in one queue to the end of another.
    ///
    /// `farcall queue move orders.dlq --to orders` replays the dead
    /// letters of `orders`: they start again there, attempt 1 on their
    /// next delivery. Both queues must exist. Prints how many moved.
    Move(QueueMoveArgs),
}

#[derive(Debug, Args)]
pub(crate) struct QueueLsArgs {
    /// Prints JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct QueueNameArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    pub(crate) queue: String,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct QueuePeekArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    pub(crate) queue: String,
    /// How many messages to show at most (default 10).
    #[arg(long, value_name = "N", value_parser = parse_peek_count)]
    pub(crate) count: Option<u32>,
    /// Prints one JSON object per message.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct QueueMoveArgs {
    /// The queue the messages leave, e.g. `orders.dlq`.
    #[arg(value_name = "FROM")]
    pub(crate) from: String,
    /// The queue they go to, e.g. `orders`.
    #[arg(long, value_name = "QUEUE")]
    pub(crate) to: String,
    /// Moves at most N messages (all of those waiting by default).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) count: Option<u64>,
    /// Prints JSON ({"moved": N}) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BrokerCommand {
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
pub(crate) struct BrokerArg {
    /// The broker's address (default: $FARCALL_BROKER): one served by
    /// `farcall broker serve` (tcp://HOST:PORT, unix://PATH), or a NATS
    /// server (nats://HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    pub(crate) broker: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    pub(crate) target: BrokerArg,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    /// The subject, e.g. `prices.eu.acme` (tokens separated by dots).
    #[arg(value_name = "SUBJECT")]
    pub(crate) subject: String,
    /// The message: a JSON value, e.g. '{"price": 12.5}' or '"text"'.
    #[arg(value_name = "JSON")]
    pub(crate) json: String,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// The pattern, e.g. `prices.*.acme` (`*`: one token) or `prices.>`
    /// (`>`: all the tokens left).
    #[arg(value_name = "PATTERN")]
    pub(crate) pattern: String,
    /// Exits after N messages.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) count: Option<u64>,
    /// Prints one JSON object per message.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    pub(crate) queue: String,
    /// The message: a JSON value, sent as `pub` sends it.
    #[arg(value_name = "JSON")]
    pub(crate) json: String,
    /// Creates the queue durable (kept on the broker's disk, surviving a
    /// restart) if it does not exist.
    #[arg(long)]
    pub(crate) durable: bool,
    /// Creates the queue with this ack-wait (default 30): a delivery not
    /// acknowledged within SECONDS is delivered again.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) ack_wait: Option<Duration>,
    /// Creates the queue with this max-deliver (default 5): after N
    /// deliveries a message moves to the dead-letter queue QUEUE.dlq (0:
    /// never).
    #[arg(long, value_name = "N")]
    pub(crate) max_deliver: Option<u32>,
    /// Creates the queue holding at most N messages, waiting and in
    /// flight (default 1000000): past that, sending fails.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) max_depth: Option<u64>,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// The queue, e.g. `orders`.
    #[arg(value_name = "QUEUE")]
    pub(crate) queue: String,
    /// Acknowledges each message once printed (without it, the messages
    /// are given back on exit and delivered again at once).
    #[arg(long)]
    pub(crate) ack: bool,
    /// How many messages to receive (default 1; at most 1024 without
    /// --ack).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(crate) count: Option<u64>,
    /// Fails (exit 1) if the messages have not all arrived within SECONDS
    /// (those that did are printed); waits forever by default.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) timeout: Option<Duration>,
    /// Prints one JSON object per message.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) target: BrokerArg,
}

#[derive(Debug, Args)]
pub(crate) struct BrokerServeArgs {
    /// Where to listen, e.g. tcp://0.0.0.0:7500 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Address,
    /// Keeps durable queues in DIR (one sub-directory per queue); they
    /// come back on start with every message not acknowledged. Without
    /// it, asking for a durable queue fails.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// When durable queues' writes reach the disk: `always` (fsync before
    /// a send is confirmed; survives power loss) or MILLIS (confirm once
    /// written to the operating system, which survives a crash of the
    /// broker, and fsync every MILLIS ms; a power cut may lose that much).
    /// Default: 50.
    #[arg(long, value_name = "always|MILLIS", value_parser = parse_fsync)]
    pub(crate) fsync: Option<Fsync>,
    /// The largest message accepted, in bytes (default 1048576, 1 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_message: Option<u64>,
    /// Who may connect and what each may do, from a JSON file: "tokens"
    /// (principal to token), "certificates" (names admitted by their
    /// client certificate, with --tls-client-ca) and "principals"
    /// (principal, or "*", to its "publish", "subscribe", "send" and
    /// "consume" patterns). See docs/guide/security.md.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
}

pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("the count must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a count of messages")),
    }
}

pub(crate) fn parse_peek_count(s: &str) -> Result<u32, String> {
    let n = parse_count(s)?;
    u32::try_from(n).map_err(|_| format!("{n} is more messages than a peek shows ({})", u32::MAX))
}

pub(crate) fn parse_fsync(s: &str) -> Result<Fsync, String> {
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
pub(crate) enum DirectoryCommand {
    /// Serves a directory on ADDR until killed.
    ///
    /// A node listening on ADDR whose embedded directory is the service.
    /// Prints `listening on <address>` once ready (the real port when
    /// ADDR's port is 0). Writes are accepted from the same host only.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen, e.g. tcp://0.0.0.0:7400 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Address,
    /// Keeps the bindings in DIR/bindings.json, rewritten after every
    /// change and bound again on start: a binding whose owner is still
    /// alive answers again after a restart; one whose owner is gone is
    /// dropped within a lease time.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// How long a lease lasts, in seconds (default 60): a binding whose
    /// owner cannot be reached for this long is dropped.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) lease_time: Option<Duration>,
    /// Admits writers from other hosts that present the token in FILE
    /// (its content, without the final newline) as their handshake
    /// credentials. It travels in clear: for trusted networks.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_token_file: Option<PathBuf>,
    /// With --write-token-file: every writer must present the token, even
    /// from the same host.
    #[arg(long, requires = "write_token_file")]
    pub(crate) token_only: bool,
    /// Who may connect and which names each may write and read, from a
    /// JSON file: "tokens", "certificates", "write" and "read" (principal
    /// to name prefixes), "restrict_reads". Replaces the same-host rule
    /// and the write token. See docs/guide/security.md.
    #[arg(long, value_name = "FILE", conflicts_with = "write_token_file")]
    pub(crate) policy: Option<PathBuf>,
}

pub(crate) fn parse_seconds(s: &str) -> Result<Duration, String> {
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
pub(crate) struct DirectoryArg {
    /// The directory's address (default: $FARCALL_DIRECTORY).
    #[arg(long, value_name = "ADDR")]
    pub(crate) directory: Option<String>,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Only names starting with PREFIX (e.g. `shop/`); all by default.
    #[arg(value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,
    #[command(flatten)]
    pub(crate) target: DirectoryArg,
}

#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    /// The node's address (e.g. tcp://127.0.0.1:7400).
    #[arg(value_name = "ADDR")]
    pub(crate) addr: String,
    /// How many pings.
    #[arg(long, short = 'c', default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) count: u32,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The name to describe (e.g. `shop/cart`).
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) target: DirectoryArg,
}

/// What `farcall --version` prints after the name: the release and the
/// wire protocol version it speaks.
fn version_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (wire protocol {})",
            env!("CARGO_PKG_VERSION"),
            farcall::__private::wire::PROTOCOL_VERSION
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one_line_clap_error;

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

    #[test]
    fn fsync_is_always_or_milliseconds() {
        assert_eq!(parse_fsync("always"), Ok(Fsync::Always));
        assert_eq!(
            parse_fsync("200"),
            Ok(Fsync::Every(Duration::from_millis(200)))
        );
        assert!(parse_fsync("0").is_err());
        assert!(parse_fsync("soon").is_err());
    }
}
