//! Child processes of the tests, each killed when its guard drops:
//!
//! - [`Served`]: `farcall … serve`, its address read from the
//!   `listening on ADDR` line it prints first;
//! - [`rerun`]: this test binary run again as a child, running only one
//!   of its ignored tests (which does nothing unless its environment says
//!   so), and [`run_child`] and [`stdin_closed`] for that test's body;
//! - [`line_where`]: the line of a child's output a test waits for;
//! - [`ok`] and [`fails`]: the output of a `farcall` run, checked.
//!
//! ```ignore
//! let args = ["directory", "serve", "--listen", "tcp://127.0.0.1:0"];
//! let dir = Served::start(Command::new(BIN).args(args)).await;
//! let client = DirectoryClient::connect_on(&node, dir.addr.as_str()).await?;
//!
//! let mut child = rerun("child_binder", &[(CHILD_ENV, "1")]);
//! line_where_async(child.stdout(), "the child binds", |l| (l == "BOUND").then_some(())).await;
//! ```

#![allow(dead_code)]

use std::ffi::OsStr;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The `farcall` command of this build (package `farcall-cli`), as a
/// program for [`Command::new`]: built on first use, once per test binary,
/// into the target directory this test binary runs from.
pub(crate) const BIN: Bin = Bin;

/// See [`BIN`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bin;

impl AsRef<OsStr> for Bin {
    fn as_ref(&self) -> &OsStr {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(build_cli).as_os_str()
    }
}

/// Builds the `farcall` binary with the cargo that runs the tests (a
/// no-op when `cargo test --workspace` built it already) and gives its
/// path.
fn build_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary under target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "farcall-cli", "--bin", "farcall"])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cannot build the farcall command");
    let bin = profile_dir.join(format!("farcall{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "no farcall command at {}", bin.display());
    bin
}

/// A safety net only: how long a child may take to print what a test
/// waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// A child process, killed (and waited for) when dropped, whatever happens
/// to the test.
#[derive(Debug)]
pub(crate) struct Reaper(pub(crate) Child);

impl Reaper {
    /// Its stdout (piped), taken.
    pub(crate) fn stdout(&mut self) -> ChildStdout {
        self.0.stdout.take().expect("a piped stdout, not yet taken")
    }

    /// kill -9, and wait until it is gone.
    pub(crate) fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `farcall … serve` process (listening on `tcp://127.0.0.1:0`, say),
/// killed when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    /// The process.
    pub(crate) child: Reaper,
    /// Its address, from the `listening on ADDR` line it printed.
    pub(crate) addr: String,
}

impl Served {
    /// Starts `command` (stdin closed, stdout piped, stderr inherited) and
    /// reads its address from the line it prints, on a blocking thread.
    pub(crate) async fn start(command: &mut Command) -> Served {
        let (child, stdout) = Served::spawn(command);
        let addr = tokio::task::spawn_blocking(move || listening_on(stdout))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        Served { child, addr }
    }

    /// [`Served::start`], for a test without a runtime: blocks.
    pub(crate) fn start_blocking(command: &mut Command) -> Served {
        let (child, stdout) = Served::spawn(command);
        let addr = listening_on(stdout);
        Served { child, addr }
    }

    fn spawn(command: &mut Command) -> (Reaper, ChildStdout) {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the farcall binary starts");
        let mut child = Reaper(child);
        let stdout = child.stdout();
        (child, stdout)
    }

    /// kill -9, and wait until it is gone.
    pub(crate) fn kill(&mut self) {
        self.child.kill();
    }
}

/// The address in the first line of `stdout`, `listening on ADDR`.
fn listening_on(stdout: ChildStdout) -> String {
    let line = line_where(stdout, "the server prints its address", |l| {
        Some(l.to_owned())
    });
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// What `pick` makes of the first line of `from` it picks, reading on a
/// thread of its own; panics (naming `what`) when `from` ends first or
/// nothing is picked in 30 s.
pub(crate) fn line_where<T, P>(from: impl Read + Send + 'static, what: &str, mut pick: P) -> T
where
    T: Send + 'static,
    P: FnMut(&str) -> Option<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if let Some(v) = pick(&line) {
                let _ = tx.send(v);
                return;
            }
        }
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: no such line within {PATIENCE:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the output ended first"),
    }
}

/// [`line_where`], from async code: the wait is on a blocking thread.
pub(crate) async fn line_where_async<T, P>(
    from: impl Read + Send + 'static,
    what: &str,
    pick: P,
) -> T
where
    T: Send + 'static,
    P: FnMut(&str) -> Option<T> + Send + 'static,
{
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || line_where(from, &what, pick))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A command running this test binary again, only its ignored test
/// `test`, showing what it prints.
pub(crate) fn test_binary(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", test, "--ignored", "--nocapture"]);
    command
}

/// This test binary run again as a child ([`test_binary`]) with `env`
/// set: stdin and stdout piped (the child lives until its stdin closes,
/// see [`stdin_closed`]), stderr inherited; killed when dropped.
pub(crate) fn rerun(test: &str, env: &[(&str, &str)]) -> Reaper {
    let child = test_binary(test)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary starts as a child");
    Reaper(child)
}

/// Runs `body` to its end on a runtime of two worker threads: the body of
/// a child's test, which is a plain `#[test]`.
pub(crate) fn run_child<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body)
}

/// Waits until the parent closes this process's stdin (or kills it).
pub(crate) async fn stdin_closed() {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .unwrap();
}

/// The stdout of a `farcall` run that must succeed.
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The one-line error of a `farcall` run that must fail with `code`.
pub(crate) fn fails(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8(out.stderr.clone()).expect("UTF-8 error");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("farcall: "), "{err}");
    err
}
