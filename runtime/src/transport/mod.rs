//! Transports: TCP, Unix sockets and in-process `mem://` pipes, behind one
//! readiness-based interface so that several tasks can share one stream
//! (a reader task, and callers that write directly when the socket is idle).

pub mod mem;
mod peer;

pub use peer::{IpNetwork, IpNetworkError, PeerAddr, TrustedNetworks};

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::address::Address;

/// A connected byte stream of any transport.
#[derive(Debug)]
pub enum Socket {
    /// TCP, with `TCP_NODELAY` set.
    Tcp(TcpStream),
    /// A Unix domain socket.
    Unix(UnixStream),
    /// An in-process pipe.
    Mem(mem::MemStream),
}

impl Socket {
    /// Dials an address.
    pub async fn connect(addr: &Address) -> io::Result<Socket> {
        match addr {
            Address::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Ok(Socket::Tcp(s))
            }
            Address::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path).await?)),
            Address::Mem(name) => Ok(Socket::Mem(mem::connect(name)?)),
            Address::Nats { .. } => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the nats backend is not built into this farcall",
            )),
        }
    }

    /// Waits until the stream may be readable.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
            Socket::Mem(s) => s.readable().await,
        }
    }

    /// Reads what is available into the spare capacity of `buf`.
    /// `Ok(0)` is end of stream; `WouldBlock` means wait for readiness.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
            Socket::Mem(s) => s.try_read_buf(buf),
        }
    }

    /// Reads what is available into `buf`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read(buf),
            Socket::Unix(s) => s.try_read(buf),
            Socket::Mem(s) => s.try_read(buf),
        }
    }

    /// Reads exactly `buf.len()` bytes.
    pub async fn read_exact(&self, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.try_read(&mut buf[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.try_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits until the stream may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.writable().await,
            Socket::Unix(s) => s.writable().await,
            Socket::Mem(s) => s.writable().await,
        }
    }

    /// Writes what the stream takes now, without waiting.
    pub fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(b),
            Socket::Unix(s) => s.try_write(b),
            Socket::Mem(s) => s.try_write(b),
        }
    }

    /// Shuts down the write half (the peer reads end of stream).
    pub fn shutdown_write(&self) {
        match self {
            Socket::Tcp(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s), std::net::Shutdown::Write);
            }
            Socket::Unix(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s), std::net::Shutdown::Write);
            }
            Socket::Mem(s) => s.shutdown_write(),
        }
    }

    /// Shuts down both directions: the peer reads end of stream and its
    /// writes fail. The descriptor stays open until the stream drops.
    pub fn shutdown_both(&self) {
        match self {
            Socket::Tcp(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s), std::net::Shutdown::Both);
            }
            Socket::Unix(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s), std::net::Shutdown::Both);
            }
            Socket::Mem(s) => s.close(),
        }
    }

    /// The remote end, as the socket reports it.
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().map(|a| PeerAddr::Tcp(canonical(a))),
            Socket::Unix(_) => Ok(PeerAddr::Unix),
            Socket::Mem(_) => Ok(PeerAddr::Mem),
        }
    }

    /// A description of the remote end, for logs and errors.
    pub fn peer_description(&self) -> String {
        match self {
            Socket::Tcp(s) => s
                .peer_addr()
                .map(|a| format!("tcp://{a}"))
                .unwrap_or_else(|_| "tcp://?".into()),
            Socket::Unix(_) => "unix peer".into(),
            Socket::Mem(s) => format!("mem://{}", s.name()),
        }
    }
}

/// An IPv4 peer seen through an IPv6 socket (`::ffff:a.b.c.d`) as the
/// IPv4 address it is.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

// tokio shuts down only owned write halves; a shared stream shuts down
// through a duplicate of its descriptor (shutdown acts on the socket).
// (`shutdown(2)` is the same call for every socket family.)
fn shutdown_fd(fd: std::os::fd::BorrowedFd<'_>, how: std::net::Shutdown) -> io::Result<()> {
    let owned = fd.try_clone_to_owned()?;
    std::os::unix::net::UnixStream::from(owned).shutdown(how)
}

impl Socket {
    /// Splits the stream for a connection: one reader task owns the read
    /// half; any number of senders share the write half.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Socket::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Socket::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
            Socket::Mem(s) => {
                let s = std::sync::Arc::new(s);
                (ReadHalf::Mem(s.clone()), WriteHalf::Mem(s))
            }
        }
    }
}

/// The read half of a connection's stream.
///
/// Reads go through tokio's `AsyncRead`, which marks the socket not ready
/// after a short read: the next read waits for the reactor instead of
/// spending a system call to learn that nothing is there.
#[derive(Debug)]
pub enum ReadHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedReadHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedReadHalf),
    /// In-process.
    Mem(std::sync::Arc<mem::MemStream>),
}

impl ReadHalf {
    /// Waits until the stream may be readable.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ReadHalf::Tcp(s) => s.readable().await,
            ReadHalf::Unix(s) => s.readable().await,
            ReadHalf::Mem(s) => s.readable().await,
        }
    }

    /// Reads into the spare capacity of `buf`, waiting for data; `Ok(0)`
    /// is end of stream.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        match self {
            ReadHalf::Tcp(s) => s.read_buf(buf).await,
            ReadHalf::Unix(s) => s.read_buf(buf).await,
            ReadHalf::Mem(s) => loop {
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.readable().await?,
                    other => return other,
                }
            },
        }
    }
}

/// The write half of a connection's stream, shared by its senders.
#[derive(Debug)]
pub enum WriteHalf {
    /// TCP.
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    /// Unix socket.
    Unix(tokio::net::unix::OwnedWriteHalf),
    /// In-process.
    Mem(std::sync::Arc<mem::MemStream>),
}

impl WriteHalf {
    /// Waits until the stream may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(s) => s.writable().await,
            WriteHalf::Unix(s) => s.writable().await,
            WriteHalf::Mem(s) => s.writable().await,
        }
    }

    /// Writes what the stream takes now, without waiting.
    pub fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(s) => s.try_write(b),
            WriteHalf::Unix(s) => s.try_write(b),
            WriteHalf::Mem(s) => s.try_write(b),
        }
    }

    /// Shuts down both directions: the peer reads end of stream and its
    /// writes fail; our reader sees end of stream too.
    pub fn shutdown_both(&self) {
        match self {
            WriteHalf::Tcp(s) => {
                let _ = shutdown_fd(
                    std::os::fd::AsFd::as_fd(s.as_ref()),
                    std::net::Shutdown::Both,
                );
            }
            WriteHalf::Unix(s) => {
                let _ = shutdown_fd(
                    std::os::fd::AsFd::as_fd(s.as_ref()),
                    std::net::Shutdown::Both,
                );
            }
            WriteHalf::Mem(s) => s.close(),
        }
    }
}

/// A bound listener of any transport.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket, with its path (removed when the listener drops).
    Unix(UnixListener, UnixPathGuard),
    /// In-process.
    Mem(mem::MemListener),
}

/// Removes a Unix socket file when dropped.
#[derive(Debug)]
pub struct UnixPathGuard(std::path::PathBuf);

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    /// Binds an address; returns the listener and the address it really
    /// bound (with the port filled in for port 0).
    pub async fn bind(addr: &Address) -> io::Result<(Listener, Address)> {
        match addr {
            Address::Tcp { host, port } => {
                let l = TcpListener::bind((host.as_str(), *port)).await?;
                let local: SocketAddr = l.local_addr()?;
                let bound = Address::Tcp {
                    host: host.clone(),
                    port: local.port(),
                };
                Ok((Listener::Tcp(l), bound))
            }
            Address::Unix(path) => {
                if path.exists() {
                    // A live listener answers; a stale file from a dead one does not.
                    match UnixStream::connect(path).await {
                        Ok(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::AddrInUse,
                                "a live listener holds this socket path",
                            ));
                        }
                        Err(_) => {
                            let _ = std::fs::remove_file(path);
                        }
                    }
                }
                let l = UnixListener::bind(path)?;
                Ok((Listener::Unix(l, UnixPathGuard(path.clone())), addr.clone()))
            }
            Address::Mem(name) => Ok((Listener::Mem(mem::bind(name)?), addr.clone())),
            Address::Nats { .. } => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the nats backend is not built into this farcall",
            )),
        }
    }

    /// Accepts the next connection.
    pub async fn accept(&mut self) -> io::Result<Socket> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Socket::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Socket::Unix(l.accept().await?.0)),
            Listener::Mem(l) => l.accept().await.map(Socket::Mem),
        }
    }
}
