//! What the servers say on stderr: a JSON line per event with
//! `--log-format json`, the start with its address, and the stop on
//! SIGTERM (exit 0), for the directory and the broker alike.
//!
//! Time-outs here only keep a broken build from hanging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{BIN, line_where};

/// Starts `farcall ARGS` with JSON logs, reads its address, stops it with
/// SIGTERM and returns its exit status and everything it logged.
fn serve_and_stop(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--log-format", "json"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("farcall starts");
    let stdout = child.stdout.take().unwrap();
    let addr = line_where(stdout, "the address", |l| {
        l.strip_prefix("listening on ").map(str::to_owned)
    });
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut logged = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    (status, logged)
}

fn events(logged: &str) -> Vec<serde_json::Value> {
    logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn message(e: &serde_json::Value) -> &str {
    e["fields"]["message"].as_str().unwrap_or("")
}

#[test]
fn the_broker_logs_its_start_and_stop() {
    let (status, logged) = serve_and_stop(&["broker", "serve", "--listen", "tcp://127.0.0.1:0"]);
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
    let events = events(&logged);
    let start = events
        .iter()
        .find(|e| message(e) == "the broker serves")
        .unwrap_or_else(|| panic!("no start event in {logged}"));
    assert_eq!(start["level"], "INFO");
    assert!(
        start["fields"]["address"]
            .as_str()
            .unwrap()
            .starts_with("tcp://127.0.0.1:")
    );
    assert!(
        start["fields"]["fsync"].as_str().unwrap().contains("every"),
        "{start}"
    );
    assert!(
        events.iter().any(|e| message(e).starts_with("stopping")),
        "{logged}"
    );
}

#[test]
fn the_directory_logs_its_start_and_stops_on_sigterm() {
    let (status, logged) = serve_and_stop(&["directory", "serve", "--listen", "tcp://127.0.0.1:0"]);
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
    let events = events(&logged);
    assert!(
        events.iter().any(|e| message(e) == "the directory serves"),
        "{logged}"
    );
    assert!(
        events.iter().any(|e| message(e).starts_with("stopping")),
        "{logged}"
    );
}

/// `GET /metrics` on `addr`, as Prometheus scrapes it.
fn scrape(addr: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("the metrics endpoint listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The broker's metrics at `--metrics-listen`: what a send and a receive
/// did, and the calls that carried them.
#[test]
fn the_broker_serves_its_metrics_for_prometheus() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let served = common::process::Served::start_blocking(Command::new(BIN).args([
        "broker",
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--metrics-listen",
        &metrics,
    ]));
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--broker", &served.addr])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["send", "orders", "{\"id\": 1}"]);
    run(&["send", "orders", "{\"id\": 2}"]);
    run(&["recv", "orders", "--ack"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = scrape(&metrics);
        if body.contains("farcall_broker_messages_out_total{queue=\"orders\"}")
            || Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        body.contains("farcall_broker_messages_in_total{queue=\"orders\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("farcall_broker_messages_out_total{queue=\"orders\"} "),
        "{body}"
    );
    assert!(
        body.contains("farcall_broker_queue_depth{queue=\"orders\"} "),
        "{body}"
    );
    assert!(
        body.contains("farcall_calls_finished_total{side=\"server\",interface=\"BrokerApi\""),
        "{body}"
    );
    assert!(
        body.contains("# TYPE farcall_call_duration_seconds summary"),
        "{body}"
    );
}

#[test]
fn metrics_are_only_for_the_servers() {
    let out = Command::new(BIN)
        .args([
            "ls",
            "--directory",
            "tcp://127.0.0.1:1",
            "--metrics-listen",
            "127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-listen is for `directory serve` and `broker serve`"),
        "{err}"
    );
}

/// `--version` names the wire protocol too.
#[test]
fn the_version_names_the_protocol() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        line.trim(),
        format!(
            "farcall {} (wire protocol {})",
            env!("CARGO_PKG_VERSION"),
            farcall::__private::wire::PROTOCOL_VERSION
        )
    );
}

/// `farcall ping ADDR`: the node's id, the protocol, one line per pong;
/// a port where nothing listens is one line and a non-zero exit.
#[test]
fn ping_reports_the_round_trip() {
    let served = common::process::Served::start_blocking(Command::new(BIN).args([
        "directory",
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
    ]));
    let out = Command::new(BIN)
        .args(["ping", &served.addr, "--count", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("node "), "{text}");
    assert!(
        lines[0].ends_with(&format!("at {}: wire protocol 2", served.addr)),
        "{text}"
    );
    for (i, l) in lines[1..].iter().enumerate() {
        assert!(
            l.starts_with(&format!("pong {}: ", i + 1)) && l.ends_with(" µs"),
            "{text}"
        );
    }

    let port = free_port();
    let out = Command::new(BIN)
        .args(["ping", &format!("tcp://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("farcall: cannot reach the node at tcp://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
