//! The `queue` commands of `farcall`, and what `recv` and `send` do with
//! queues, run as real binaries against a standalone broker (`farcall
//! broker serve`): a peek leaves attempts unchanged; `queue move` replays
//! dead letters; `recv` of a missing queue fails naming it and creates
//! nothing; `recv --ack --count 2` of 3 leaves the third untouched
//! (attempt 1 when it comes); `send` creates a queue with its
//! configuration flags; `queue ls`, `info`, `purge` and `delete`; and the
//! same commands against a nats-server (`--broker nats://...`).
//!
//! Time-outs here only keep a broken build from hanging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::process::{BIN, Served, fails, ok};
use common::temp_dir::TempDir;

const BROKER_ENV: &str = "FARCALL_BROKER";
/// The safety net of every wait.
const PATIENCE: Duration = Duration::from_secs(20);

/// A `farcall broker serve` process (or a nats-server), killed when
/// dropped.
struct Broker {
    served: Served,
    _data: TempDir,
}

/// The NATS server of a test, reached with `--broker nats://...`.
struct Nats {
    server: common::nats::NatsServer,
}

impl Broker {
    fn start(name: &str) -> Broker {
        let data = TempDir::new(name);
        let served = Served::start_blocking(
            Command::new(BIN)
                .args(["broker", "serve", "--listen", "tcp://127.0.0.1:0", "--data"])
                .arg(data.path())
                .env_remove(BROKER_ENV),
        );
        assert!(
            served.addr.starts_with("tcp://127.0.0.1:"),
            "{}",
            served.addr
        );
        Broker {
            served,
            _data: data,
        }
    }

    /// Runs `farcall ARGS --broker <this broker>` to its end.
    fn run(&self, args: &[&str]) -> Output {
        farcall(args, &self.served.addr)
    }

    /// `queue info NAME --json`, parsed.
    fn info(&self, queue: &str) -> Value {
        let out = ok(&self.run(&["queue", "info", queue, "--json"]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"))
    }

    /// Polls `queue info` until `ok` holds; panics with the last answer
    /// after the safety net.
    fn info_until(&self, queue: &str, what: &str, ok: impl Fn(&Value) -> bool) {
        let start = Instant::now();
        loop {
            let info = self.info(queue);
            if ok(&info) {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "{what}: {info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Nats {
    fn run(&self, args: &[&str]) -> Output {
        farcall(args, &self.server.url())
    }
}

/// Runs `farcall ARGS --broker BROKER` to its end (killed after the
/// safety net).
fn farcall(args: &[&str], broker: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--broker", broker])
        .env_remove(BROKER_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the farcall binary runs");
    let start = Instant::now();
    while child.try_wait().expect("the child's status").is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!(
                "farcall {}: still running after {PATIENCE:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The outputs are small: they fit in the pipes until the end.
    child.wait_with_output().expect("the output")
}

/// Lines of JSON, parsed.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The peeked messages of `text`, without their ages (which grow).
fn peeked(text: &str) -> Vec<Value> {
    json_lines(text)
        .into_iter()
        .map(|mut v| {
            let age = v.as_object_mut().unwrap().remove("age_ms");
            assert!(age.is_some_and(|a| a.is_u64()), "an age in ms: {v}");
            v
        })
        .collect()
}

#[test]
fn peek_leaves_attempts_unchanged() {
    let broker = Broker::start("cli-queue-peek");
    ok(&broker.run(&["send", "orders", r#"{"id": 1}"#]));
    ok(&broker.run(&["send", "orders", r#"{"id": 2}"#]));

    let never = [
        json!({"queue": "orders", "body": {"id": 1}, "attempts": 0}),
        json!({"queue": "orders", "body": {"id": 2}, "attempts": 0}),
    ];
    let out = ok(&broker.run(&["queue", "peek", "orders", "--json"]));
    assert_eq!(peeked(&out), never);
    // Again: nothing changed.
    let out = ok(&broker.run(&["queue", "peek", "orders", "--json"]));
    assert_eq!(peeked(&out), never);
    let out = ok(&broker.run(&["queue", "peek", "orders", "--count", "1"]));
    assert_eq!(out, "orders {\"id\":1}\n");
    let info = broker.info("orders");
    assert_eq!((&info["depth"], &info["in_flight"]), (&json!(2), &json!(0)));

    // Delivered after the peeks: a first attempt.
    let out = ok(&broker.run(&["recv", "orders", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "orders", "body": {"id": 1}, "attempt": 1})]
    );
    // Not acknowledged: given back, and the peek shows its one delivery.
    broker.info_until("orders", "given back", |i| i["in_flight"] == 0);
    let out = ok(&broker.run(&["queue", "peek", "orders", "--json"]));
    assert_eq!(
        peeked(&out),
        [
            json!({"queue": "orders", "body": {"id": 1}, "attempts": 1}),
            json!({"queue": "orders", "body": {"id": 2}, "attempts": 0}),
        ]
    );
    let out = ok(&broker.run(&["recv", "orders", "--ack", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "orders", "body": {"id": 1}, "attempt": 2})]
    );
}

#[test]
fn move_replays_dead_letters() {
    let broker = Broker::start("cli-queue-move");
    ok(&broker.run(&["send", "orders", r#"{"id": 7}"#, "--max-deliver", "1"]));
    // Received and not acknowledged: given back on its last attempt, so
    // it moves to orders.dlq.
    let out = ok(&broker.run(&["recv", "orders", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "orders", "body": {"id": 7}, "attempt": 1})]
    );
    broker.info_until("orders.dlq", "dead-lettered", |i| i["depth"] == 1);
    assert_eq!(broker.info("orders")["depth"], 0);
    let out = ok(&broker.run(&["queue", "peek", "orders.dlq", "--json"]));
    assert_eq!(
        peeked(&out),
        [json!({"queue": "orders.dlq", "body": {"id": 7}, "attempts": 0})]
    );

    let out = ok(&broker.run(&["queue", "move", "orders.dlq", "--to", "orders"]));
    assert_eq!(
        out,
        "moved 1 message from queue orders.dlq to queue orders\n"
    );
    assert_eq!(broker.info("orders.dlq")["depth"], 0);
    let out = ok(&broker.run(&["recv", "orders", "--ack", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "orders", "body": {"id": 7}, "attempt": 1})]
    );
    // Nothing left to move; a missing target is named.
    let out = ok(&broker.run(&["queue", "move", "orders.dlq", "--to", "orders", "--json"]));
    assert_eq!(json_lines(&out), [json!({"moved": 0})]);
    let err = fails(
        &broker.run(&["queue", "move", "orders.dlq", "--to", "elsewhere"]),
        1,
    );
    assert!(err.contains("queue \"elsewhere\" does not exist"), "{err}");
}

#[test]
fn recv_of_a_missing_queue_fails_naming_it() {
    let broker = Broker::start("cli-queue-missing");
    let err = fails(&broker.run(&["recv", "nothere", "--timeout", "5"]), 1);
    assert_eq!(err.trim(), "farcall: queue \"nothere\" does not exist");
    let err = fails(
        &broker.run(&["recv", "nothere", "--ack", "--count", "3"]),
        1,
    );
    assert!(err.contains("queue \"nothere\" does not exist"), "{err}");
    let err = fails(&broker.run(&["queue", "peek", "nothere"]), 1);
    assert!(err.contains("queue \"nothere\" does not exist"), "{err}");
    for cmd in ["info", "purge", "delete"] {
        let err = fails(&broker.run(&["queue", cmd, "nothere"]), 1);
        assert!(
            err.contains("queue \"nothere\" does not exist"),
            "{cmd}: {err}"
        );
    }
    // None of them created it.
    assert_eq!(ok(&broker.run(&["queue", "ls"])), "no queues\n");
    assert_eq!(ok(&broker.run(&["queue", "ls", "--json"])), "[]\n");
}

#[test]
fn recv_ack_count_two_of_three_leaves_the_third_untouched() {
    let broker = Broker::start("cli-queue-exactly");
    for n in 1..=3 {
        ok(&broker.run(&["send", "jobs", &n.to_string()]));
    }
    let out = ok(&broker.run(&["recv", "jobs", "--ack", "--count", "2", "--json"]));
    assert_eq!(
        json_lines(&out),
        [
            json!({"queue": "jobs", "body": 1, "attempt": 1}),
            json!({"queue": "jobs", "body": 2, "attempt": 1}),
        ]
    );
    // The third was never delivered: not in flight, no attempt counted.
    let info = broker.info("jobs");
    assert_eq!((&info["depth"], &info["in_flight"]), (&json!(1), &json!(0)));
    let out = ok(&broker.run(&["queue", "peek", "jobs", "--json"]));
    assert_eq!(
        peeked(&out),
        [json!({"queue": "jobs", "body": 3, "attempts": 0})]
    );
    let out = ok(&broker.run(&["recv", "jobs", "--ack", "--json"]));
    assert_eq!(
        json_lines(&out),
        [json!({"queue": "jobs", "body": 3, "attempt": 1})]
    );
}

#[test]
fn send_configures_and_queue_commands_administer() {
    let broker = Broker::start("cli-queue-admin");
    ok(&broker.run(&[
        "send",
        "jobs",
        "1",
        "--durable",
        "--ack-wait",
        "2.5",
        "--max-deliver",
        "3",
        "--max-depth",
        "10",
    ]));
    ok(&broker.run(&["send", "jobs", "2"]));
    // Flags that agree with the queue are fine; one that does not fails,
    // saying both configurations.
    ok(&broker.run(&["send", "jobs", "3", "--max-deliver", "3"]));
    let err = fails(&broker.run(&["send", "jobs", "4", "--max-deliver", "4"]), 1);
    assert!(
        err.contains("queue \"jobs\" exists with another configuration")
            && err.contains("dead-lettered after 3 deliveries")
            && err.contains("asked for durable, ack-wait 2500 ms, dead-lettered after 4"),
        "{err}"
    );
    ok(&broker.run(&["send", "plain", "1"]));

    let mut info = broker.info("jobs");
    let age = info.as_object_mut().unwrap().remove("oldest_age_ms");
    assert!(age.is_some_and(|a| a.is_u64()), "an age in ms");
    assert_eq!(
        info,
        json!({
            "name": "jobs", "durable": true, "ack_wait_ms": 2500, "max_deliver": 3,
            "max_depth": 10, "depth": 3, "in_flight": 0, "consumers": 0,
        })
    );
    let text = ok(&broker.run(&["queue", "info", "jobs"]));
    assert!(
        text.contains(
            "config:     durable, ack-wait 2500 ms, dead-lettered after 3 deliveries, max depth 10"
        ) && text.contains("depth:      3"),
        "{text}"
    );

    let list: Value = serde_json::from_str(&ok(&broker.run(&["queue", "ls", "--json"]))).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jobs", "plain"]);
    let text = ok(&broker.run(&["queue", "ls"]));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "QUEUE",
            "DURABLE",
            "DEPTH",
            "IN",
            "FLIGHT",
            "CONSUMERS",
            "OLDEST"
        ]
    );
    assert_eq!(rows[1][..5], ["jobs", "yes", "3", "0", "0"], "{text}");
    assert_eq!(rows[2][..5], ["plain", "no", "1", "0", "0"], "{text}");

    let out = ok(&broker.run(&["queue", "purge", "jobs"]));
    assert_eq!(out, "purged 3 messages from queue jobs\n");
    let info = broker.info("jobs");
    assert_eq!(
        (&info["depth"], &info["oldest_age_ms"]),
        (&json!(0), &Value::Null)
    );
    let out = ok(&broker.run(&["queue", "delete", "jobs"]));
    assert_eq!(out, "deleted queue jobs\n");
    let err = fails(&broker.run(&["queue", "info", "jobs"]), 1);
    assert!(err.contains("queue \"jobs\" does not exist"), "{err}");
    // Gone with its configuration: sent to again, it is a new queue.
    ok(&broker.run(&["send", "jobs", "5", "--max-deliver", "4"]));
    assert_eq!(broker.info("jobs")["max_deliver"], 4);
}

#[test]
fn bad_queue_command_lines_are_usage_errors() {
    let broker = Broker::start("cli-queue-usage");
    let err = fails(&broker.run(&["queue", "move", "a.dlq"]), 2);
    assert!(err.contains("--to"), "{err}");
    let err = fails(&broker.run(&["queue", "peek", "a", "--count", "0"]), 2);
    assert!(err.contains("at least 1"), "{err}");
    let err = fails(&broker.run(&["send", "a", "1", "--ack-wait", "soon"]), 2);
    assert!(err.contains("not a number of seconds"), "{err}");
    let err = fails(&broker.run(&["queue", "info", "bad queue!"]), 1);
    assert!(err.contains("invalid queue name"), "{err}");
}

/// The same commands on NATS: `recv` of a missing queue fails, a peek
/// leaves attempts, `recv --ack --count 2` of 3 leaves the third
/// untouched, `send` configures, `info`, `purge` and `delete`.
#[test]
fn the_queue_commands_on_nats() {
    let Some(server) = common::nats::NatsServer::start() else {
        return;
    };
    let nats = Nats { server };
    let err = fails(&nats.run(&["recv", "jobs", "--timeout", "5"]), 1);
    assert!(err.contains("queue \"jobs\" does not exist"), "{err}");
    assert_eq!(ok(&nats.run(&["queue", "ls"])), "no queues\n");

    ok(&nats.run(&[
        "send",
        "jobs",
        "1",
        "--max-deliver",
        "3",
        "--ack-wait",
        "60",
    ]));
    ok(&nats.run(&["send", "jobs", "2"]));
    ok(&nats.run(&["send", "jobs", "3"]));
    let out = ok(&nats.run(&["queue", "peek", "jobs", "--json"]));
    let never: Vec<Value> = (1..=3)
        .map(|n| json!({"queue": "jobs", "body": n, "attempts": 0}))
        .collect();
    assert_eq!(peeked(&out), never);
    let out = ok(&nats.run(&["recv", "jobs", "--ack", "--count", "2", "--json"]));
    assert_eq!(
        json_lines(&out),
        [
            json!({"queue": "jobs", "body": 1, "attempt": 1}),
            json!({"queue": "jobs", "body": 2, "attempt": 1}),
        ]
    );
    // The third was never delivered (acks on NATS go one way: the first
    // two may still be in the stream a moment).
    let out = ok(&nats.run(&["queue", "peek", "jobs", "--json"]));
    let third = peeked(&out).into_iter().find(|m| m["body"] == 3);
    assert_eq!(
        third,
        Some(json!({"queue": "jobs", "body": 3, "attempts": 0}))
    );

    let out = ok(&nats.run(&["queue", "info", "jobs", "--json"]));
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&info["max_deliver"], &info["ack_wait_ms"], &info["durable"]),
        (&json!(3), &json!(60_000), &json!(false)),
        "{info}"
    );
    ok(&nats.run(&["queue", "purge", "jobs"]));
    assert_eq!(ok(&nats.run(&["queue", "peek", "jobs"])), "");
    assert_eq!(
        ok(&nats.run(&["queue", "delete", "jobs"])),
        "deleted queue jobs\n"
    );
    let err = fails(&nats.run(&["queue", "info", "jobs"]), 1);
    assert!(err.contains("queue \"jobs\" does not exist"), "{err}");
}
