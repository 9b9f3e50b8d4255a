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
