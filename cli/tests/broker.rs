//! The broker commands of `farcall`, run as real binaries against a
//! standalone broker (`farcall broker serve --data DIR`): `pub` to a `sub`
//! with a wildcard pattern; `send` and `recv`, with and without `--ack`
//! (a message not acknowledged comes again, attempt 2); a durable queue
//! that survives the broker killed (SIGKILL) and stopped (SIGTERM, exit
//! 0); `broker stats --json`; and bad input, each a one-line error.
//!
//! Time-outs here only keep a broken build from hanging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::process::{BIN, Reaper, Served, fails, line_where, ok};
use common::temp_dir::TempDir;

const BROKER_ENV: &str = "FARCALL_BROKER";
/// The safety net of every wait.
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits for `child` to exit.
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("{what}: still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A broker process, killed when dropped.
struct BrokerProcess(Served);

impl BrokerProcess {
    /// Starts `farcall broker serve` on a free port with `data`, and reads
    /// its address from the line it prints.
    fn start(data: &Path) -> BrokerProcess {
        let process = Served::start_blocking(
            Command::new(BIN)
                .args(["broker", "serve", "--listen", "tcp://127.0.0.1:0", "--data"])
                .arg(data)
                .env_remove(BROKER_ENV),
        );
        let addr = &process.addr;
        assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");
        assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
        BrokerProcess(process)
    }

    /// Kills the broker without warning (SIGKILL).
    fn kill(mut self) {
        self.0.kill();
    }

    /// Stops the broker with SIGTERM: it closes and exits 0.
    fn terminate(mut self) {
        let pid = self.0.child.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = wait(&mut self.0.child.0, "the broker after SIGTERM");
        assert!(
            status.success(),
            "the broker exits 0 on SIGTERM: {status:?}"
        );
    }

    /// Runs `farcall ARGS --broker <this broker>`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--broker", &self.0.addr]);
        farcall(&all, None)
    }
}

/// Runs `farcall ARGS`, with `FARCALL_BROKER` set to `env` if given.
fn farcall(args: &[&str], env: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove(BROKER_ENV);
    if let Some(v) = env {
        cmd.env(BROKER_ENV, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the farcall binary runs");
    // The outputs are small: they fit in the pipes until the end.
    let status = wait(&mut child, &format!("farcall {}", args.join(" ")));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Lines of JSON, parsed.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// All that `child` printed on its stdout (piped), once it has exited.
fn stdout_of(child: &mut Child) -> String {
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_to_string(&mut out).unwrap();
    out
}

/// A `farcall sub` process, once it is subscribed.
fn subscriber(broker: &BrokerProcess, args: &[&str]) -> Reaper {
    let mut child = Command::new(BIN)
        .arg("sub")
        .args(args)
        .args(["--broker", &broker.0.addr])
        .env_remove(BROKER_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the farcall binary starts");
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let child = Reaper(child);
    let line = line_where(stderr, "farcall sub", |l| Some(l.to_owned()));
    assert_eq!(line.trim(), format!("subscribed to {}", args[0]));
    child
}

#[test]
fn pub_reaches_sub_through_a_wildcard() {
    let data = TempDir::new("cli-broker-pubsub");
    let broker = BrokerProcess::start(data.path());
    let mut text = subscriber(&broker, &["prices.*.acme", "--count", "2"]);
    let mut json = subscriber(&broker, &["prices.>", "--count", "3", "--json"]);

    // Whitespace goes, keys keep their order, numbers stay as written.
    ok(&broker.run(&["pub", "prices.eu.acme", r#"{"z": 1, "a": [1, 2, "x y"]}"#]));
    ok(&broker.run(&["pub", "prices.us.other", "\"not for acme\""]));
    ok(&broker.run(&["pub", "prices.us.acme", "123456789012345678901234567890"]));

    assert!(wait(&mut text.0, "sub --count 2").success());
    let out = stdout_of(&mut text.0);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            r#"prices.eu.acme {"z":1,"a":[1,2,"x y"]}"#,
            "prices.us.acme 123456789012345678901234567890",
        ]
    );

    assert!(wait(&mut json.0, "sub --json --count 3").success());
    let out = stdout_of(&mut json.0);
    let mut got = json_lines(&out);
    got.sort_by_key(|v| v["subject"].as_str().unwrap_or("").to_owned());
    assert_eq!(got.len(), 3, "{out}");
    assert_eq!(
        got[0],
        json!({"subject": "prices.eu.acme", "body": {"z": 1, "a": [1, 2, "x y"]}})
    );
    assert_eq!(got[1]["subject"], "prices.us.acme");
    assert_eq!(
        got[2],
        json!({"subject": "prices.us.other", "body": "not for acme"})
    );

    // The topics are counted.
    let stats: Value = serde_json::from_str(&ok(&broker.run(&["broker", "stats", "--json"])))
        .expect("stats as JSON");
    let topic = stats["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == "prices.eu.acme")
        .unwrap_or_else(|| panic!("no topic prices.eu.acme: {stats}"));
    assert_eq!(topic["published"], 1);
}

#[test]
fn send_then_recv_with_and_without_ack() {
    let data = TempDir::new("cli-broker-queues");
    let broker = BrokerProcess::start(data.path());
    ok(&broker.run(&["send", "orders", r#"{"id": 1}"#]));

    // Not acknowledged: given back, delivered again as attempt 2.
    let out = ok(&broker.run(&["recv", "orders", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "orders", "body": {"id": 1}, "attempt": 1})]
    );
    let out = ok(&broker.run(&["recv", "orders", "--ack"]));
    assert_eq!(out, "orders {\"id\":1}\n");

    // Acknowledged: gone.
    let out = broker.run(&["recv", "orders", "--timeout", "0.3"]);
    let err = fails(&out, 1);
    assert!(err.contains("no message on queue \"orders\""), "{err}");

    // Several, in order.
    ok(&broker.run(&["send", "orders", "2"]));
    ok(&broker.run(&["send", "orders", "[3]"]));
    let out = ok(&broker.run(&["recv", "orders", "--ack", "--count", "2", "--json"]));
    assert_eq!(
        json_lines(&out),
        [
            json!({"queue": "orders", "body": 2, "attempt": 1}),
            json!({"queue": "orders", "body": [3], "attempt": 1}),
        ]
    );

    // Stats: a queue nobody consumes, with its depth; the acks of orders.
    ok(&broker.run(&["send", "backlog", "1"]));
    ok(&broker.run(&["send", "backlog", "2"]));
    let stats: Value = serde_json::from_str(&ok(&broker.run(&["broker", "stats", "--json"])))
        .expect("stats as JSON");
    let queue = |name: &str| {
        stats["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("no queue {name}: {stats}"))
            .clone()
    };
    let backlog = queue("backlog");
    assert_eq!(backlog["depth"], 2, "{backlog}");
    assert_eq!(backlog["sent"], 2, "{backlog}");
    assert_eq!(backlog["durable"], false, "{backlog}");
    let orders = queue("orders");
    assert_eq!(orders["sent"], 3, "{orders}");
    assert_eq!(orders["acked"], 3, "{orders}");
    let text = ok(&broker.run(&["broker", "stats"]));
    let row = text
        .lines()
        .find(|l| l.starts_with("backlog "))
        .unwrap_or_else(|| panic!("no row for backlog: {text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], ["backlog", "no", "2"], "{text}");
    assert!(text.contains("subscriptions: 0"), "{text}");
}

#[test]
fn durable_queue_survives_a_kill_and_a_stop() {
    let data = TempDir::new("cli-broker-durable");
    let broker = BrokerProcess::start(data.path());
    ok(&broker.run(&["send", "jobs", r#"{"n": 1}"#, "--durable"]));
    // A crash loses nothing confirmed (written to the OS before).
    broker.kill();

    let broker = BrokerProcess::start(data.path());
    ok(&broker.run(&["send", "jobs", r#"{"n": 2}"#]));
    // SIGTERM: the broker closes (flushes) and exits 0.
    broker.terminate();

    let broker = BrokerProcess::start(data.path());
    let out = ok(&broker.run(&["recv", "jobs", "--ack", "--count", "2", "--json"]));
    assert_eq!(
        json_lines(&out),
        [
            json!({"queue": "jobs", "body": {"n": 1}, "attempt": 1}),
            json!({"queue": "jobs", "body": {"n": 2}, "attempt": 1}),
        ]
    );
    // --durable on an existing plain queue fails: its configuration
    // differs.
    ok(&broker.run(&["send", "plain", "1"]));
    let err = fails(&broker.run(&["send", "plain", "2", "--durable"]), 1);
    assert!(err.contains("plain"), "{err}");
}

#[test]
fn bad_input_is_one_clear_line() {
    let data = TempDir::new("cli-broker-errors");
    let broker = BrokerProcess::start(data.path());

    let err = fails(&broker.run(&["pub", "bad subject", "1"]), 1);
    assert!(err.contains("invalid subject \"bad subject\""), "{err}");
    let err = fails(&broker.run(&["send", "bad queue!", "1"]), 1);
    assert!(err.contains("invalid queue name \"bad queue!\""), "{err}");
    let err = fails(&broker.run(&["recv", "bad queue!"]), 1);
    assert!(err.contains("invalid queue name"), "{err}");
    let err = fails(&broker.run(&["sub", "a..b"]), 1);
    assert!(err.contains("invalid pattern"), "{err}");
    let err = fails(&broker.run(&["pub", "ok.subject", "not json"]), 2);
    assert!(err.contains("not JSON"), "{err}");

    // No broker named: a usage error that says how to name one.
    let err = fails(&farcall(&["pub", "a.b", "1"], None), 2);
    assert!(
        err.contains("--broker") && err.contains(BROKER_ENV),
        "{err}"
    );
    let err = fails(&farcall(&["broker", "stats"], Some("")), 2);
    assert!(err.contains("--broker"), "{err}");
    // The variable names it.
    ok(&farcall(&["send", "via-env", "1"], Some(&broker.0.addr)));
    let err = fails(&farcall(&["recv", "x", "--broker", "nonsense"], None), 2);
    assert!(err.contains("--broker"), "{err}");

    // Nothing there.
    let gone_data = TempDir::new("cli-broker-errors-gone");
    let gone = BrokerProcess::start(gone_data.path());
    let addr = gone.0.addr.clone();
    gone.kill();
    let err = fails(&farcall(&["broker", "stats", "--broker", &addr], None), 1);
    assert!(err.contains("cannot reach the broker"), "{err}");
}
