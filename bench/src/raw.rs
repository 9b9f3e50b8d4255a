//! The raw limit: a hand-written length-prefixed echo over tokio sockets,
//! carrying the same bytes as farcall's payloads and nothing else.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Mutex, Semaphore, oneshot};

/// A raw echo server's address.
pub(crate) enum RawAddr {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

/// Echoes every byte back as it arrives: one read, one write. Frames are
/// length-prefixed, so echoing the bytes echoes the frames, and a batch of
/// pipelined frames costs one system call each way: the loopback limit.
/// The buffer starts small (idle connections stay cheap) and doubles, up
/// to 1 MiB, whenever a read fills it.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if n == buf.len() && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Starts a raw echo server.
pub(crate) async fn server(unix: Option<std::path::PathBuf>) -> RawAddr {
    match unix {
        None => {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    s.set_nodelay(true).unwrap();
                    tokio::spawn(echo(s));
                }
            });
            RawAddr::Tcp(a)
        }
        Some(p) => {
            let _ = std::fs::remove_file(&p);
            let l = UnixListener::bind(&p).unwrap();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    tokio::spawn(echo(s));
                }
            });
            RawAddr::Unix(p)
        }
    }
}

/// One raw connection, for the sequential ping-pong.
pub(crate) enum RawConn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl RawConn {
    pub(crate) async fn connect(a: &RawAddr) -> RawConn {
        match a {
            RawAddr::Tcp(a) => {
                let s = TcpStream::connect(a).await.unwrap();
                s.set_nodelay(true).unwrap();
                RawConn::Tcp(s)
            }
            RawAddr::Unix(p) => RawConn::Unix(UnixStream::connect(p).await.unwrap()),
        }
    }

    /// Sends one framed message and reads the echo.
    pub(crate) async fn ping(&mut self, msg: &[u8], buf: &mut Vec<u8>) {
        match self {
            RawConn::Tcp(s) => ping(s, msg, buf).await,
            RawConn::Unix(s) => ping(s, msg, buf).await,
        }
    }
}

async fn ping<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, msg: &[u8], buf: &mut Vec<u8>) {
    s.write_all(msg).await.unwrap();
    buf.resize(msg.len(), 0);
    s.read_exact(buf).await.unwrap();
}

/// A pipelined raw client: a writer keeps up to `inflight` messages
/// outstanding; a reader counts echoes and frees slots. Returns echoes/s.
pub(crate) async fn pipelined(
    a: &RawAddr,
    msg: Vec<u8>,
    inflight: usize,
    window: std::time::Duration,
) -> f64 {
    match RawConn::connect(a).await {
        RawConn::Tcp(s) => {
            let (r, w) = s.into_split();
            pipeline(r, w, msg, inflight, window).await
        }
        RawConn::Unix(s) => {
            let (r, w) = s.into_split();
            pipeline(r, w, msg, inflight, window).await
        }
    }
}

async fn pipeline<R, W>(
    mut r: R,
    mut w: W,
    msg: Vec<u8>,
    inflight: usize,
    window: std::time::Duration,
) -> f64
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(inflight));
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let writer_slots = slots.clone();
    let m = msg.clone();
    let writer = tokio::spawn(async move {
        // Writes as many messages as there are free slots, in one write.
        let mut batch = Vec::new();
        loop {
            let p = tokio::select! {
                p = writer_slots.acquire() => p.unwrap(),
                _ = &mut stop_rx => return,
            };
            p.forget();
            let mut n = 1;
            while let Ok(p) = writer_slots.try_acquire() {
                p.forget();
                n += 1;
            }
            batch.clear();
            for _ in 0..n {
                batch.extend_from_slice(&m);
            }
            if w.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    let count = Arc::new(Mutex::new(0u64));
    let reader_count = count.clone();
    let len = msg.len();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending = 0usize;
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending += n;
            let done = pending / len;
            pending %= len;
            if done > 0 {
                *reader_count.lock().await += done as u64;
                slots.add_permits(done);
            }
        }
    });
    tokio::time::sleep(window / 5).await;
    let start = *count.lock().await;
    let t = std::time::Instant::now();
    tokio::time::sleep(window).await;
    let end = *count.lock().await;
    let secs = t.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = writer.await;
    reader.abort();
    (end - start) as f64 / secs
}
