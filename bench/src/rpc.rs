//! `rpc`: farcall's `#[remote]` calls against tarpc 0.38 and the raw limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall::{Node, Remote, RemoteError};
use futures::{StreamExt, future};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};

use crate::Budget;
use crate::measure::{concurrent, interleaved, seq_op};
use crate::raw::{self, RawConn};
use crate::report::Report;

/// The benchmark's interface, for farcall.
#[farcall::remote]
pub trait Bench {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError>;
    /// Returns its argument.
    async fn echo(&self, data: Bytes) -> Result<Bytes, RemoteError>;
}

struct Server;

#[farcall::remote]
impl Bench for Server {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RemoteError> {
        Ok(a + b)
    }
    async fn echo(&self, data: Bytes) -> Result<Bytes, RemoteError> {
        Ok(data)
    }
}

/// The same interface, for tarpc.
#[tarpc::service]
pub trait TarpcBench {
    /// Adds two numbers.
    async fn add(a: i64, b: i64) -> i64;
    /// Returns its argument.
    async fn echo(data: Bytes) -> Bytes;
}

#[derive(Clone)]
struct TarpcServer;

impl TarpcBench for TarpcServer {
    async fn add(self, _: context::Context, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn echo(self, _: context::Context, data: Bytes) -> Bytes {
        data
    }
}

const INFLIGHT: [usize; 4] = [1, 16, 128, 256];
/// Echoes in flight at once in the byte-throughput scenarios.
const ECHO_INFLIGHT: usize = 4;
const SIZES: [(&str, usize); 2] = [("echo64k", 64 * 1024), ("echo4m", 4 * 1024 * 1024)];

fn ctx() -> context::Context {
    let mut c = context::current();
    c.deadline = Instant::now() + Duration::from_secs(60);
    c
}

/// Payload bytes echoed per second, in MB/s, with `inflight` echoes at once.
async fn echo_rate<F, Fut>(b: Budget, size: usize, op: F) -> f64
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let data = Bytes::from(vec![0x5a; size]);
    let rate = concurrent(ECHO_INFLIGHT, b.window, move || op(data.clone())).await;
    rate * size as f64 / 1e6
}

pub(crate) async fn run(b: Budget) {
    let mut r = Report::default();

    // Over TCP: farcall, tarpc and raw, side by side.
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _svc: Remote<dyn Bench> = server.serve("bench", Server);
    let client_node = Node::new();
    let stub: Remote<dyn Bench> = client_node
        .connect_service(server.local_addr().expect("addr"), "bench")
        .await
        .expect("connect");
    // The same server over TLS (rustls, TLS 1.3), certificates made here.
    let (server_tls, client_tls) = tls_configs();
    let tls_server = Node::builder()
        .tls(server_tls)
        .listen("tls://127.0.0.1:0")
        .await
        .expect("listen tls");
    let _tls_svc: Remote<dyn Bench> = tls_server.serve("bench", Server);
    let tls_node = Node::builder().tls(client_tls).build();
    let tls_stub: Remote<dyn Bench> = tls_node
        .connect_service(tls_server.local_addr().expect("addr"), "bench")
        .await
        .expect("connect tls");
    let tclient = tarpc_tcp().await;
    let raw_server = raw::server(None).await;
    let small = {
        let mut m = 16u32.to_le_bytes().to_vec();
        m.extend_from_slice(&[1; 16]);
        m
    };
    let conn = Arc::new(tokio::sync::Mutex::new(RawConn::connect(&raw_server).await));

    let (s, t, c, m) = (stub.clone(), tclient.clone(), conn.clone(), small.clone());
    let ts = tls_stub.clone();
    let lat = interleaved(
        b.seq_samples,
        vec![
            seq_op(move || {
                let s = s.clone();
                async move {
                    s.add(1, 2).await.unwrap();
                }
            }),
            seq_op(move || {
                let t = t.clone();
                async move {
                    t.add(ctx(), 1, 2).await.unwrap();
                }
            }),
            seq_op(move || {
                let (c, m) = (c.clone(), m.clone());
                async move {
                    let mut buf = Vec::new();
                    c.lock().await.ping(&m, &mut buf).await;
                }
            }),
            seq_op(move || {
                let s = ts.clone();
                async move {
                    s.add(1, 2).await.unwrap();
                }
            }),
        ],
    )
    .await;
    let columns = [
        ("farcall", "tcp"),
        ("tarpc", "tcp"),
        ("raw", "tcp"),
        ("farcall", "tls"),
    ];
    for ((system, transport), l) in columns.into_iter().zip(lat) {
        r.add(system, transport, "seq", "p50_us", l.p50_us);
        r.add(system, transport, "seq", "p99_us", l.p99_us);
    }

    // farcall over both transports, then its peers.
    let farcall = [("tcp", &stub), ("tls", &tls_stub)];
    for n in INFLIGHT {
        for (transport, stub) in farcall {
            let s = stub.clone();
            let rate = concurrent(n, b.window, move || {
                let s = s.clone();
                async move {
                    s.add(1, 2).await.unwrap();
                }
            })
            .await;
            let scenario = format!("inflight{n}");
            r.add("farcall", transport, &scenario, "calls_per_s", rate);
        }
        let t = tclient.clone();
        let rate = concurrent(n, b.window, move || {
            let t = t.clone();
            async move {
                t.add(ctx(), 1, 2).await.unwrap();
            }
        })
        .await;
        r.add("tarpc", "tcp", &format!("inflight{n}"), "calls_per_s", rate);
        let rate = raw::pipelined(&raw_server, small.clone(), n, b.window).await;
        r.add("raw", "tcp", &format!("inflight{n}"), "calls_per_s", rate);
    }

    for (name, size) in SIZES {
        for (transport, stub) in farcall {
            let s = stub.clone();
            let mbps = echo_rate(b, size, move |d| {
                let s = s.clone();
                async move {
                    s.echo(d).await.unwrap();
                }
            })
            .await;
            r.add("farcall", transport, name, "mb_per_s", mbps);
        }
        let t = tclient.clone();
        let mbps = echo_rate(b, size, move |d| {
            let t = t.clone();
            async move {
                t.echo(ctx(), d).await.unwrap();
            }
        })
        .await;
        r.add("tarpc", "tcp", name, "mb_per_s", mbps);
        let mut m = (size as u32).to_le_bytes().to_vec();
        m.resize(4 + size, 0x5a);
        let rate = raw::pipelined(&raw_server, m, ECHO_INFLIGHT, b.window).await;
        r.add("raw", "tcp", name, "mb_per_s", rate * size as f64 / 1e6);
    }
    client_node.shutdown().await;
    server.shutdown().await;
    tls_node.shutdown().await;
    tls_server.shutdown().await;

    // In process: farcall mem://, farcall collocated, tarpc's channel.
    let server = Node::listen("mem://bench-rpc").await.expect("listen mem");
    let local: Remote<dyn Bench> = server.serve("bench", Server);
    let client_node = Node::new();
    let mem: Remote<dyn Bench> = client_node
        .connect_service("mem://bench-rpc", "bench")
        .await
        .expect("connect mem");
    let (ct, st) = tarpc::transport::channel::unbounded();
    tokio::spawn(
        BaseChannel::with_defaults(st)
            .execute(TarpcServer.serve())
            .for_each(|f| async move {
                tokio::spawn(f);
            }),
    );
    let tc = TarpcBenchClient::new(client::Config::default(), ct).spawn();
    let add = |s: Remote<dyn Bench>| {
        seq_op(move || {
            let s = s.clone();
            async move {
                s.add(1, 2).await.unwrap();
            }
        })
    };
    let lat = interleaved(
        b.seq_samples,
        vec![
            add(mem),
            add(local),
            seq_op(move || {
                let c = tc.clone();
                async move {
                    c.add(ctx(), 1, 2).await.unwrap();
                }
            }),
        ],
    )
    .await;
    for ((system, transport), l) in [("farcall", "mem"), ("farcall", "local"), ("tarpc", "mem")]
        .into_iter()
        .zip(lat)
    {
        r.add(system, transport, "seq", "p50_us", l.p50_us);
        r.add(system, transport, "seq", "p99_us", l.p99_us);
    }
    client_node.shutdown().await;
    server.shutdown().await;

    r.print(
        "rpc: add(i64, i64) and echo(bytes) (4 echoes in flight), one connection",
        &[
            (
                "tcp seq p50, farcall / tarpc (goal <= 0.5)",
                "farcall.tcp.seq.p50_us",
                "tarpc.tcp.seq.p50_us",
            ),
            (
                "tcp seq p50, farcall / raw (goal <= 1.3)",
                "farcall.tcp.seq.p50_us",
                "raw.tcp.seq.p50_us",
            ),
            (
                "tcp 256 in flight, farcall / tarpc (goal >= 4)",
                "farcall.tcp.inflight256.calls_per_s",
                "tarpc.tcp.inflight256.calls_per_s",
            ),
            (
                "tcp 256 in flight, farcall / raw",
                "farcall.tcp.inflight256.calls_per_s",
                "raw.tcp.inflight256.calls_per_s",
            ),
            (
                "echo 4 MiB, farcall / tarpc",
                "farcall.tcp.echo4m.mb_per_s",
                "tarpc.tcp.echo4m.mb_per_s",
            ),
            (
                "echo 4 MiB, farcall / raw",
                "farcall.tcp.echo4m.mb_per_s",
                "raw.tcp.echo4m.mb_per_s",
            ),
            (
                "tls seq p50, farcall tls / tcp (goal <= 1.15)",
                "farcall.tls.seq.p50_us",
                "farcall.tcp.seq.p50_us",
            ),
            (
                "tls 256 in flight, farcall tls / tcp (goal >= 0.8)",
                "farcall.tls.inflight256.calls_per_s",
                "farcall.tcp.inflight256.calls_per_s",
            ),
            (
                "echo 4 MiB, farcall tls / tcp",
                "farcall.tls.echo4m.mb_per_s",
                "farcall.tcp.echo4m.mb_per_s",
            ),
            (
                "in-process seq p50, farcall mem / tarpc channel",
                "farcall.mem.seq.p50_us",
                "tarpc.mem.seq.p50_us",
            ),
        ],
    );
}

/// The server's and the client's TLS settings, from a CA made now.
fn tls_configs() -> (farcall::tls::TlsConfig, farcall::tls::TlsConfig) {
    let pki = crate::pki::Pki::new("bench CA");
    let id = pki.issue("bench", &["localhost", "127.0.0.1"]);
    let server = farcall::tls::TlsConfig::builder()
        .identity_pem(id.chain.as_bytes(), id.key.as_bytes())
        .build()
        .expect("server TLS settings");
    let client = farcall::tls::TlsConfig::builder()
        .trust_pem(pki.ca_pem.as_bytes())
        .build()
        .expect("client TLS settings");
    (server, client)
}

/// A tarpc server on a free TCP port, and a client connected to it.
async fn tarpc_tcp() -> TarpcBenchClient {
    let mut listener = tarpc::serde_transport::tcp::listen(("127.0.0.1", 0), Bincode::default)
        .await
        .expect("tarpc listen");
    listener.config_mut().max_frame_length(64 << 20);
    let addr = listener.local_addr();
    tokio::spawn(
        listener
            .filter_map(|t| future::ready(t.ok()))
            .map(BaseChannel::with_defaults)
            .map(|ch| {
                ch.execute(TarpcServer.serve()).for_each(|f| async move {
                    tokio::spawn(f);
                })
            })
            .buffer_unordered(64)
            .for_each(|_| async {}),
    );
    let mut connect = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
    connect.config_mut().max_frame_length(64 << 20);
    let transport = connect.await.expect("tarpc connect");
    TarpcBenchClient::new(client::Config::default(), transport).spawn()
}

/// `hot`: farcall alone, 256 calls in flight over TCP, for a profiler.
pub(crate) async fn hot(b: Budget) {
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _svc: Remote<dyn Bench> = server.serve("bench", Server);
    let client_node = Node::new();
    let stub: Remote<dyn Bench> = client_node
        .connect_service(server.local_addr().expect("addr"), "bench")
        .await
        .expect("connect");
    let rate = concurrent(256, b.window * 3, move || {
        let s = stub.clone();
        async move {
            s.add(1, 2).await.unwrap();
        }
    })
    .await;
    println!("farcall tcp inflight256: {rate:.0} calls/s");
}

/// `hot-echo`: farcall alone, 4 MiB echoes over TCP, for a profiler.
pub(crate) async fn hot_echo(b: Budget) {
    let server = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
    let _svc: Remote<dyn Bench> = server.serve("bench", Server);
    let client_node = Node::new();
    let stub: Remote<dyn Bench> = client_node
        .connect_service(server.local_addr().expect("addr"), "bench")
        .await
        .expect("connect");
    let mbps = echo_rate(
        Budget {
            window: b.window * 3,
            ..b
        },
        4 << 20,
        move |d| {
            let s = stub.clone();
            async move {
                s.echo(d).await.unwrap();
            }
        },
    )
    .await;
    println!("farcall tcp echo4m: {mbps:.0} MB/s");
}
