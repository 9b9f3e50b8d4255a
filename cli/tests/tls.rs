//! The `farcall` command over TLS, as real binaries on loopback: a broker
//! served on `tls://` with a certificate made in the test, reached by
//! `send` and `recv` with `--tls-ca` (or `FARCALL_TLS_CA`); refused, in
//! one line, without the root or with mutual TLS and no client
//! certificate; a directory served with mutual TLS.
//!
//! Time-outs here only keep a broken build from hanging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::pki::{Issued, Pki};
use common::process::{BIN, Served, fails, ok};
use common::temp_dir::TempDir;

/// PEM files in a temporary directory.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new(name: &str) -> Files {
        Files {
            dir: TempDir::new(name),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn identity(&self, name: &str, id: &Issued) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.crt"), &id.chain),
            self.write(&format!("{name}.key"), &id.key),
        )
    }
}

fn farcall(args: &[&str], extra: &[&Path]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).args(extra).env_remove("FARCALL_TLS_CA");
    c.output().expect("farcall runs")
}

#[test]
fn a_broker_over_tls_and_mutual_tls() {
    let pki = Pki::new("cli test CA");
    let files = Files::new("cli-tls");
    let ca = files.write("ca.crt", &pki.ca_pem);
    let (cert, key) = files.identity("broker", &pki.issue("broker", &["localhost", "127.0.0.1"]));
    let (alice_cert, alice_key) = files.identity("alice", &pki.issue("alice", &["alice.example"]));

    // Plain TLS.
    let broker = Served::start_blocking(
        Command::new(BIN)
            .args([
                "broker",
                "serve",
                "--listen",
                "tls://127.0.0.1:0",
                "--tls-cert",
            ])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key),
    );
    assert!(
        broker.addr.starts_with("tls://127.0.0.1:"),
        "{}",
        broker.addr
    );
    let send = |extra: &[&Path], env_ca: Option<&Path>| {
        let mut c = Command::new(BIN);
        c.args(["send", "jobs", "{\"n\": 1}", "--broker", &broker.addr])
            .env_remove("FARCALL_TLS_CA");
        if let Some((flag, rest)) = extra.split_first() {
            c.arg(flag).args(rest);
        }
        if let Some(ca) = env_ca {
            c.env("FARCALL_TLS_CA", ca);
        }
        c.output().expect("farcall runs")
    };
    ok(&send(&[Path::new("--tls-ca"), &ca], None));
    ok(&send(&[], Some(&ca)));
    let out = farcall(
        &[
            "recv",
            "jobs",
            "--count",
            "2",
            "--ack",
            "--json",
            "--broker",
            &broker.addr,
            "--tls-ca",
        ],
        &[&ca],
    );
    assert_eq!(ok(&out).lines().count(), 2);
    // Without the root: one line that says why.
    let err = fails(&send(&[], None), 1);
    assert!(err.contains("no TLS settings"), "{err}");
    drop(broker);

    // Mutual TLS: a client certificate is required.
    let broker = Served::start_blocking(
        Command::new(BIN)
            .args([
                "broker",
                "serve",
                "--listen",
                "tls://127.0.0.1:0",
                "--tls-cert",
            ])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--tls-client-ca")
            .arg(&ca),
    );
    let addr = broker.addr.clone();
    let err = fails(
        &farcall(
            &["send", "jobs", "1", "--broker", &addr, "--tls-ca"],
            &[&ca],
        ),
        1,
    );
    assert!(err.contains("requires a client certificate"), "{err}");
    let out = Command::new(BIN)
        .args(["send", "jobs", "1", "--broker", &addr, "--tls-ca"])
        .arg(&ca)
        .arg("--tls-cert")
        .arg(&alice_cert)
        .arg("--tls-key")
        .arg(&alice_key)
        .output()
        .unwrap();
    ok(&out);
}

#[test]
fn bad_tls_options_are_one_line_errors() {
    let files = Files::new("cli-tls-bad");
    let junk = files.write("junk.pem", "not a certificate");
    let err = fails(
        &farcall(
            &["ls", "--directory", "tls://127.0.0.1:1", "--tls-ca"],
            &[&junk],
        ),
        2,
    );
    assert!(
        err.contains("the TLS options") && err.contains("trusted roots"),
        "{err}"
    );
    let err = fails(
        &farcall(
            &["ls", "--directory", "tls://127.0.0.1:1", "--tls-ca"],
            &[Path::new("/nonexistent/ca.pem")],
        ),
        2,
    );
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn a_broker_policy_file() {
    let files = Files::new("cli-policy");
    let policy = files.write(
        "policy.json",
        r#"{
            "tokens": { "shop": "token-of-shop", "warehouse": "token-of-warehouse" },
            "principals": {
                "*": { "send": ["orders"] },
                "warehouse": { "consume": ["orders"] }
            }
        }"#,
    );
    let broker = Served::start_blocking(
        Command::new(BIN)
            .args([
                "broker",
                "serve",
                "--listen",
                "tcp://127.0.0.1:0",
                "--policy",
            ])
            .arg(&policy),
    );
    let run = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(args)
            .args(["--broker", &broker.addr])
            .env_remove("FARCALL_TOKEN");
        if let Some(t) = token {
            c.env("FARCALL_TOKEN", t);
        }
        c.output().expect("farcall runs")
    };
    ok(&run(&["send", "orders", "1"], Some("token-of-shop")));
    let err = fails(&run(&["recv", "orders", "--ack"], Some("token-of-shop")), 1);
    assert!(
        err.contains("`shop` may not consume from `orders`"),
        "{err}"
    );
    let err = fails(&run(&["send", "orders", "2"], None), 1);
    assert!(err.contains("requires a token"), "{err}");
    let err = fails(&run(&["send", "orders", "2"], Some("token-of-eve")), 1);
    assert!(
        err.contains("not accepted") && !err.contains("token-of-eve"),
        "{err}"
    );
    let out = run(
        &["recv", "orders", "--ack", "--json"],
        Some("token-of-warehouse"),
    );
    assert_eq!(ok(&out).lines().count(), 1);

    // A policy that is not one: a usage error that shows no token.
    let bad = files.write(
        "bad.json",
        r#"{ "tokens": { "x": "secret-x" }, "roles": [] }"#,
    );
    let out = Command::new(BIN)
        .args([
            "broker",
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--policy",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    let err = fails(&out, 2);
    assert!(
        err.contains("not a policy") && !err.contains("secret-x"),
        "{err}"
    );
}

#[test]
fn a_directory_policy_file() {
    let files = Files::new("cli-directory-policy");
    let policy = files.write(
        "policy.json",
        r#"{
            "tokens": { "shop": "token-of-shop", "audit": "token-of-audit" },
            "write": { "shop": ["shop/"] },
            "read": { "audit": [""] },
            "restrict_reads": true
        }"#,
    );
    let dir = Served::start_blocking(
        Command::new(BIN)
            .args([
                "directory",
                "serve",
                "--listen",
                "tcp://127.0.0.1:0",
                "--policy",
            ])
            .arg(&policy),
    );
    let ls = |token: &str, prefix: &str| {
        Command::new(BIN)
            .args(["ls", prefix, "--directory", &dir.addr])
            .env("FARCALL_TOKEN", token)
            .output()
            .expect("farcall runs")
    };
    ok(&ls("token-of-audit", ""));
    ok(&ls("token-of-shop", "shop/"));
    let err = fails(&ls("token-of-shop", ""), 1);
    assert!(err.contains("`shop` may not read under ``"), "{err}");
    let err = fails(&ls("token-of-nobody", ""), 1);
    assert!(err.contains("not accepted"), "{err}");
}
