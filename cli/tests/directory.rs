//! The `farcall` command, run as a real binary: a standalone directory
//! (`farcall directory serve --data DIR`) that a node of this test binds
//! to; `farcall ls` and `farcall describe`, as text and JSON; the
//! directory killed and started again on the same data, its bindings back
//! and answering (their owner is alive), the binding of a node that died
//! meanwhile dropped within a lease time; and bad input, each a one-line
//! error and a non-zero exit.
//!
//! Time-outs here only keep a broken build from hanging.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use farcall::directory::DIRECTORY_ENV;
use farcall::directory::{DirectoryApi, DirectoryClient, DirectoryError};
use farcall::rmi::Interface;
use farcall::rmi::ObjectId;
use farcall::{Node, Remote, RemoteError};
use serde_json::Value;

use common::process::{BIN, Served, fails, ok};
use common::temp_dir::TempDir;
use common::wait::within;

/// A counter: an interface the `farcall` binary does not link.
#[farcall::remote]
pub trait Counter {
    /// The next number.
    async fn next(&self) -> Result<u64, RemoteError>;
}

struct Count(AtomicU64);

#[farcall::remote]
impl Counter for Count {
    async fn next(&self) -> Result<u64, RemoteError> {
        Ok(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// `farcall directory serve` on a free port with `data` (and `more`
/// arguments), killed when dropped.
async fn directory_process(data: &Path, more: &[&str]) -> Served {
    let process = Served::start(
        Command::new(BIN)
            .args([
                "directory",
                "serve",
                "--listen",
                "tcp://127.0.0.1:0",
                "--data",
            ])
            .arg(data)
            .args(more),
    )
    .await;
    let addr = &process.addr;
    assert!(addr.starts_with("tcp://127.0.0.1:"), "{addr}");
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
    process
}

/// Runs `farcall ARGS` (without `FARCALL_DIRECTORY` unless `env` sets it).
async fn farcall_env(args: &[&str], env: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env = env.map(str::to_owned);
    within(
        20,
        &format!("farcall {}", args.join(" ")),
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(BIN);
            cmd.args(&args).env_remove(DIRECTORY_ENV);
            if let Some(v) = env {
                cmd.env(DIRECTORY_ENV, v);
            }
            cmd.stdin(Stdio::null())
                .output()
                .expect("the farcall binary runs")
        }),
    )
    .await
    .unwrap()
}

async fn farcall(args: &[&str]) -> Output {
    farcall_env(args, None).await
}

/// Waits until the data file holds `present` and not `absent`.
async fn saved(data: &Path, present: &[&str], absent: &[&str]) {
    let file = data.join("bindings.json");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let b = &v["bindings"];
            if present.iter().all(|n| b.get(n).is_some())
                && absent.iter().all(|n| b.get(n).is_none())
            {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} never held {present:?} without {absent:?}: {text}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn counter_interface() -> String {
    format!("#{:016x}", <dyn Counter as Interface>::descriptor().id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ls_describe_and_restart_on_the_same_data() {
    let scratch = TempDir::new("cli-restart");
    let data = scratch.path();
    let mut first = directory_process(data, &[]).await;

    // A node of this test binds in the standalone directory: an object of
    // an interface the directory does not know, a reference to a
    // directory (an interface it does know), and a name it unbinds again.
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: Remote<dyn Counter> = server.export(Count(AtomicU64::new(0)));
    let own_dir: Remote<dyn DirectoryApi> = server
        .connect(server.local_addr().unwrap(), ObjectId::DIRECTORY)
        .await
        .unwrap();
    let dir = DirectoryClient::connect_on(&server, &first.addr)
        .await
        .unwrap();
    dir.bind("demo/counter", &counter).await.unwrap();
    dir.add("demo/counter", &counter).await.unwrap(); // already a member: no change
    dir.bind("demo/dir", &own_dir).await.unwrap();
    dir.bind("demo/gone", &counter).await.unwrap();
    dir.bind("other/counter", &counter).await.unwrap();
    dir.unbind("demo/gone").await.unwrap();
    // And a node that will be gone when the directory comes back.
    let doomed = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let doomed_counter: Remote<dyn Counter> = doomed.export(Count(AtomicU64::new(0)));
    DirectoryClient::connect_on(&doomed, &first.addr)
        .await
        .unwrap()
        .bind("zz/doomed", &doomed_counter)
        .await
        .unwrap();

    // ls, as a table.
    let table = ok(&farcall(&["ls", "--directory", &first.addr]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(lines[0].contains("MEMBERS") && lines[0].contains("INTERFACES"));
    assert!(lines[1].starts_with("demo/counter "), "{table}");
    assert!(lines[1].ends_with(&counter_interface()), "{table}");
    assert!(lines[2].starts_with("demo/dir "), "{table}");
    assert!(lines[2].ends_with(" Directory"), "{table}");
    assert!(lines[3].starts_with("other/counter "), "{table}");
    assert!(lines[4].starts_with("zz/doomed "), "{table}");

    // ls with a prefix, as JSON; the address from FARCALL_DIRECTORY.
    let json = ok(&farcall_env(&["ls", "demo/", "--json"], Some(&first.addr)).await);
    let v: Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo/counter", "demo/dir"]);
    assert_eq!(v[0]["members"], 1);
    assert_eq!(v[0]["interfaces"][0], counter_interface());
    assert_eq!(v[1]["interfaces"][0], "Directory");
    let empty = ok(&farcall(&["ls", "nothing/", "--directory", &first.addr, "--json"]).await);
    assert_eq!(empty.trim(), "[]");
    let empty = ok(&farcall(&["ls", "nothing/", "--directory", &first.addr]).await);
    assert_eq!(empty.trim(), "no bindings");

    // describe: a known interface in full, an unknown one by id.
    let text = ok(&farcall(&["describe", "demo/dir", "--directory", &first.addr]).await);
    assert!(text.contains("trait Directory {"), "{text}");
    assert!(
        text.contains(
            "    async fn bind(&self, name: String, r: AnyRemote) -> Result<(), DirectoryError>;"
        ),
        "{text}"
    );
    assert!(
        text.contains("    #[remote(idempotent)]\n    async fn lookup(&self, name: String)"),
        "{text}"
    );
    let json = ok(&farcall(&["describe", "demo/dir", "--directory", &first.addr, "--json"]).await);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "Directory");
    assert_eq!(v[0]["known"], true);
    assert_eq!(v[0]["supertraits"], serde_json::json!([]));
    let list = v[0]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "list")
        .expect("a list method");
    assert_eq!(list["args"][1]["name"], "after");
    assert_eq!(list["args"][1]["type"], "Option<String>");
    assert_eq!(list["idempotent"], true);
    assert!(list["result"].as_str().unwrap().contains("Page"), "{list}");
    let text = ok(&farcall(&["describe", "demo/counter", "--directory", &first.addr]).await);
    assert!(text.contains(&counter_interface()), "{text}");
    assert!(text.contains("methods are unknown"), "{text}");
    let json = ok(&farcall(&[
        "describe",
        "demo/counter",
        "--directory",
        &first.addr,
        "--json",
    ])
    .await);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["known"], false);

    // Bad input: a name bound to nothing, a bad name.
    let err = fails(
        &farcall(&["describe", "demo/none", "--directory", &first.addr]).await,
        1,
    );
    assert!(
        err.contains("nothing is bound under \"demo/none\""),
        "{err}"
    );
    let err = fails(
        &farcall(&["describe", "no spaces", "--directory", &first.addr]).await,
        1,
    );
    assert!(err.contains("invalid name"), "{err}");
    let err = fails(
        &farcall(&["ls", "bad prefix", "--directory", &first.addr]).await,
        1,
    );
    assert!(err.contains("invalid name"), "{err}");
    // The port is taken.
    let err = fails(
        &farcall(&["directory", "serve", "--listen", &first.addr]).await,
        1,
    );
    assert!(err.contains("cannot listen on"), "{err}");

    // The directory dies and starts again on the same data, on another
    // port, with a short lease: the bindings are back, and answer (their
    // owner is alive); the one of the node that died meanwhile goes within
    // a lease time (2 s here: long enough for `ls` to see it first).
    let all = ["demo/counter", "demo/dir", "other/counter", "zz/doomed"];
    saved(data, &all, &["demo/gone"]).await;
    first.kill();
    drop(doomed_counter);
    doomed.shutdown().await;
    drop(doomed);
    let second = directory_process(data, &["--lease-time", "2"]).await;
    let names = |table: &str| -> Vec<String> {
        table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let table = ok(&farcall(&["ls", "--directory", &second.addr]).await);
    assert_eq!(names(&table), all, "{table}");
    let client = Node::new();
    let dir = DirectoryClient::connect_on(&client, &second.addr)
        .await
        .unwrap();
    let found: Remote<dyn Counter> = within(10, "lookup", dir.lookup("demo/counter"))
        .await
        .unwrap();
    let before = within(10, "a call", found.next()).await.unwrap();
    assert_eq!(counter.next().await.unwrap(), before + 1, "the same object");
    let found: Remote<dyn DirectoryApi> = dir.lookup("demo/dir").await.unwrap();
    assert_eq!(found.owner(), server.id());
    saved(
        data,
        &["demo/counter", "demo/dir", "other/counter"],
        &["zz/doomed"],
    )
    .await;
    let table = ok(&farcall(&["ls", "--directory", &second.addr]).await);
    assert_eq!(names(&table), &all[..3], "{table}");

    // A change after the restart is saved too.
    DirectoryClient::connect_on(&server, &second.addr)
        .await
        .unwrap()
        .unbind("other/counter")
        .await
        .unwrap();
    saved(data, &["demo/counter", "demo/dir"], &["other/counter"]).await;
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_and_a_non_zero_exit() {
    // No directory at all.
    let err = fails(&farcall(&["ls"]).await, 2);
    assert!(
        err.contains("--directory") && err.contains(DIRECTORY_ENV),
        "{err}"
    );
    let err = fails(&farcall(&["describe", "x"]).await, 2);
    assert!(err.contains(DIRECTORY_ENV), "{err}");
    // Not an address, from the flag or from the environment.
    let err = fails(&farcall(&["ls", "--directory", "tcp://nohost"]).await, 2);
    assert!(err.contains("tcp://nohost"), "{err}");
    let err = fails(&farcall_env(&["ls"], Some("localhost:7400")).await, 2);
    assert!(
        err.contains(DIRECTORY_ENV) && err.contains("scheme"),
        "{err}"
    );
    // Nobody there.
    let err = fails(
        &farcall(&["ls", "--directory", "tcp://127.0.0.1:1"]).await,
        1,
    );
    assert!(
        err.contains("cannot reach the directory at tcp://127.0.0.1:1"),
        "{err}"
    );
    // A wrong command line.
    let err = fails(&farcall(&["directory", "serve"]).await, 2);
    assert!(err.contains("--listen"), "{err}");
    let err = fails(
        &farcall(&["directory", "serve", "--listen", "nowhere"]).await,
        2,
    );
    assert!(err.contains("nowhere"), "{err}");
    let err = fails(&farcall(&["frobnicate"]).await, 2);
    assert!(err.contains("frobnicate"), "{err}");
    let err = fails(
        &farcall(&["describe", "--directory", "tcp://127.0.0.1:1"]).await,
        2,
    );
    assert!(err.contains("<NAME>"), "{err}");
    // A data file that is not one.
    let scratch = TempDir::new("cli-corrupt");
    let data = scratch.path();
    std::fs::write(data.join("bindings.json"), "{ not json").unwrap();
    let args = [
        "directory",
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--data",
    ];
    let data_arg = data.to_str().unwrap();
    let err = fails(&farcall(&[&args[..], &[data_arg]].concat()).await, 1);
    assert!(
        err.contains("bindings.json") && err.contains("not JSON"),
        "{err}"
    );

    // Help is useful, and not an error.
    let help = ok(&farcall(&["--help"]).await);
    for word in ["directory", "ls", "describe", "FARCALL_DIRECTORY"] {
        assert!(help.contains(word), "{help}");
    }
    let help = ok(&farcall(&["directory", "serve", "--help"]).await);
    assert!(
        help.contains("--listen") && help.contains("--data"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_token_admits_the_writers_that_present_it() {
    let scratch = TempDir::new("cli-token");
    let dir = scratch.path();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let token_arg = token_file.to_str().unwrap();
    let data = dir.join("data");
    let directory =
        directory_process(&data, &["--write-token-file", token_arg, "--token-only"]).await;

    // Without the token, even from this host: refused.
    let stranger = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: Remote<dyn Counter> = stranger.export(Count(AtomicU64::new(0)));
    let err = DirectoryClient::connect_on(&stranger, &directory.addr)
        .await
        .unwrap()
        .bind("tok/counter", &counter)
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Unauthorized(_)), "{err}");

    // With it: admitted. Reads are open to everyone.
    let writer = Node::builder()
        .credentials(&b"s3cret"[..])
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let counter: Remote<dyn Counter> = writer.export(Count(AtomicU64::new(0)));
    DirectoryClient::connect_on(&writer, &directory.addr)
        .await
        .unwrap()
        .bind("tok/counter", &counter)
        .await
        .unwrap();
    let table = ok(&farcall(&["ls", "tok/", "--directory", &directory.addr]).await);
    assert!(table.contains("tok/counter"), "{table}");
    drop(directory);

    // A token file that is missing or empty, or --token-only alone.
    let serve = ["directory", "serve", "--listen", "tcp://127.0.0.1:0"];
    let missing = dir.join("missing");
    let err = fails(
        &farcall(
            &[
                &serve[..],
                &["--write-token-file", missing.to_str().unwrap()],
            ]
            .concat(),
        )
        .await,
        1,
    );
    assert!(err.contains("--write-token-file"), "{err}");
    std::fs::write(&token_file, "\n").unwrap();
    let err = fails(
        &farcall(&[&serve[..], &["--write-token-file", token_arg]].concat()).await,
        1,
    );
    assert!(err.contains("empty"), "{err}");
    let err = fails(&farcall(&[&serve[..], &["--token-only"]].concat()).await, 2);
    assert!(err.contains("--write-token-file"), "{err}");
}

/// `farcall watch` prints the changes under its prefix as they happen;
/// `farcall unbind` removes a name (a write from this host) and the watch
/// sees it go; unbinding a name that is not bound fails naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_binds_and_unbind_removes() {
    let scratch = TempDir::new("cli-watch");
    let directory = directory_process(scratch.path(), &[]).await;
    let mut watch = Command::new(BIN)
        .args(["watch", "shop/", "--json", "--directory", &directory.addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stdout = watch.stdout.take().unwrap();
    let seen = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            seen.lock().unwrap().push(l);
        }
    });

    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let counter: Remote<dyn Counter> = server.export(Count(AtomicU64::new(0)));
    let dir = DirectoryClient::connect_on(&server, &directory.addr)
        .await
        .unwrap();
    // The watch may start after a first bind: bind until it shows one.
    within(20, "the watch shows the bind", async {
        loop {
            let _ = dir.rebind("shop/counter", &counter).await;
            dir.rebind("other/ignored", &counter).await.unwrap();
            if lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("\"bound\""))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let out = Command::new(BIN)
        .args(["unbind", "shop/counter", "--directory", &directory.addr])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "unbound shop/counter\n");
    within(20, "the watch shows the unbind", async {
        while !lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("\"unbound\""))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    let lines = lines.lock().unwrap().clone();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["name"], "shop/counter", "only the watched prefix: {l}");
        assert_eq!(v["owner"], server.id().to_string());
        assert_eq!(v["object"], counter.id().to_string());
    }

    let out = Command::new(BIN)
        .args(["unbind", "shop/counter", "--directory", &directory.addr])
        .output()
        .unwrap();
    let err = fails(&out, 1);
    assert!(err.contains("shop/counter"), "{err}");
    server.shutdown().await;
}
