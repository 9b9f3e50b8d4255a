//! In-process `mem://` transport: a pair of bounded byte pipes with the
//! same readiness semantics as a socket, and no system call.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};

use bytes::{Buf, BufMut, BytesMut};
use tokio::sync::mpsc;

/// Bytes a pipe buffers before the writer must wait, like a socket buffer.
const PIPE_CAPACITY: usize = 256 * 1024;
/// Connections waiting to be accepted before dialers are refused.
const BACKLOG: usize = 1024;

#[derive(Debug, Default)]
struct PipeState {
    data: BytesMut,
    writer_closed: bool,
    reader_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Pipe(Mutex<PipeState>);

impl Pipe {
    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One end of an in-process connection.
#[derive(Debug)]
pub struct MemStream {
    rx: Arc<Pipe>,
    tx: Arc<Pipe>,
    name: Arc<str>,
}

impl MemStream {
    fn pair(name: &str) -> (MemStream, MemStream) {
        let a = Arc::new(Pipe::default());
        let b = Arc::new(Pipe::default());
        let name: Arc<str> = name.into();
        (
            MemStream {
                rx: a.clone(),
                tx: b.clone(),
                name: name.clone(),
            },
            MemStream { rx: b, tx: a, name },
        )
    }

    /// The name of the listener this stream belongs to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until data or end of stream is available.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut p = self.rx.lock();
            if !p.data.is_empty() || p.writer_closed {
                Poll::Ready(Ok(()))
            } else {
                p.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Reads what is buffered into the spare capacity of `buf`.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut p = self.rx.lock();
        if p.data.is_empty() {
            return if p.writer_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let room = buf.capacity() - buf.len();
        let n = p.data.len().min(room.max(1));
        buf.put_slice(&p.data[..n]);
        p.data.advance(n);
        if let Some(w) = p.write_waker.take() {
            w.wake();
        }
        Ok(n)
    }

    /// Reads what is buffered into `buf`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.rx.lock();
        if p.data.is_empty() {
            return if p.writer_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = p.data.len().min(buf.len());
        buf[..n].copy_from_slice(&p.data[..n]);
        p.data.advance(n);
        if let Some(w) = p.write_waker.take() {
            w.wake();
        }
        Ok(n)
    }

    /// Waits until the pipe has room (or the reader is gone).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut p = self.tx.lock();
            if p.data.len() < PIPE_CAPACITY || p.reader_closed {
                Poll::Ready(Ok(()))
            } else {
                p.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Writes what fits now.
    pub fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        let mut p = self.tx.lock();
        if p.reader_closed || p.writer_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = PIPE_CAPACITY.saturating_sub(p.data.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = b.len().min(room);
        p.data.extend_from_slice(&b[..n]);
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
        Ok(n)
    }

    /// Ends the write direction: the peer reads end of stream.
    pub fn shutdown_write(&self) {
        let mut p = self.tx.lock();
        p.writer_closed = true;
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
    }
}

impl MemStream {
    /// Closes both directions: the peer reads end of stream, its writes fail.
    pub fn close(&self) {
        self.shutdown_write();
        let mut p = self.rx.lock();
        p.reader_closed = true;
        p.data.clear();
        if let Some(w) = p.write_waker.take() {
            w.wake();
        }
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        self.close();
    }
}

type Registry = Mutex<HashMap<String, (u64, mpsc::Sender<MemStream>)>>;

static NEXT_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(Default::default)
}

/// A bound `mem://` name; unbinds on drop.
#[derive(Debug)]
pub struct MemListener {
    name: String,
    token: u64,
    rx: mpsc::Receiver<MemStream>,
}

/// Binds `mem://name`.
pub fn bind(name: &str) -> io::Result<MemListener> {
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    if reg.get(name).is_some_and(|(_, tx)| !tx.is_closed()) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another listener holds this name",
        ));
    }
    let (tx, rx) = mpsc::channel(BACKLOG);
    let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    reg.insert(name.to_owned(), (token, tx));
    Ok(MemListener {
        name: name.to_owned(),
        token,
        rx,
    })
}

/// Connects to `mem://name`.
pub fn connect(name: &str) -> io::Result<MemStream> {
    let tx = {
        let reg = registry().lock().unwrap_or_else(|p| p.into_inner());
        reg.get(name).map(|(_, tx)| tx.clone())
    };
    let refused = || {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "nothing listens on this name",
        )
    };
    let tx = tx.ok_or_else(refused)?;
    let (ours, theirs) = MemStream::pair(name);
    tx.try_send(theirs).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "the listener's accept backlog is full",
        ),
        mpsc::error::TrySendError::Closed(_) => refused(),
    })?;
    Ok(ours)
}

impl MemListener {
    /// Accepts the next in-process connection.
    pub async fn accept(&mut self) -> io::Result<MemStream> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| io::Error::other("mem listener closed"))
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
        if reg.get(&self.name).is_some_and(|(t, _)| *t == self.token) {
            reg.remove(&self.name);
        }
    }
}
