//! Transports: TCP, TLS over TCP, Unix sockets and in-process `mem://`
//! pipes, behind one readiness-based interface so that several tasks can
//! share one stream (a reader task, and callers that write directly when
//! the socket is idle).

pub mod mem;
mod peer;
#[cfg(feature = "tls")]
mod tls;

pub use peer::{IpNetwork, IpNetworkError, PeerAddr, TrustedNetworks};

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::address::Address;
#[cfg(feature = "tls")]
use crate::tls::{PeerIdentity, TlsConfig};
#[cfg(feature = "tls")]
use tls::TlsSocket;

/// A node's TLS settings where this build has them; nothing otherwise.
#[cfg(feature = "tls")]
pub(crate) type Tls = Option<TlsConfig>;
/// A node's TLS settings where this build has them; nothing otherwise.
#[cfg(not(feature = "tls"))]
pub(crate) type Tls = Option<std::convert::Infallible>;

#[cfg(not(feature = "tls"))]
fn tls_not_built() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "TLS is not built into this farcall (its `tls` feature is off)",
    )
}

/// A connected byte stream of any transport.
#[derive(Debug)]
pub enum Socket {
    /// TCP, with `TCP_NODELAY` set.
    Tcp(TcpStream),
    /// A Unix domain socket.
    Unix(UnixStream),
    /// An in-process pipe.
    Mem(mem::MemStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<TlsSocket>),
}

impl Socket {
    /// Dials an address; a `tls://` one with the node's TLS settings.
    pub(crate) async fn connect(addr: &Address, tls: &Tls) -> io::Result<Socket> {
        match addr {
            #[cfg(feature = "tls")]
            Address::Tls { host, port } => match tls {
                Some(config) => Ok(Socket::Tls(std::sync::Arc::new(
                    TlsSocket::connect(host, *port, config).await?,
                ))),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "this node has no TLS settings (NodeBuilder::tls) to dial a tls:// address with",
                )),
            },
            #[cfg(not(feature = "tls"))]
            Address::Tls { .. } => {
                let _ = tls;
                Err(tls_not_built())
            }
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.readable().await,
        }
    }

    /// Reads what is available into the spare capacity of `buf`.
    /// `Ok(0)` is end of stream; `WouldBlock` means wait for readiness.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
            Socket::Mem(s) => s.try_read_buf(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.try_read_buf(buf),
        }
    }

    /// Reads what is available into `buf`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read(buf),
            Socket::Unix(s) => s.try_read(buf),
            Socket::Mem(s) => s.try_read(buf),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.try_read(buf),
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.writable().await,
        }
    }

    /// Writes what the stream takes now, without waiting.
    pub fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(b),
            Socket::Unix(s) => s.try_write(b),
            Socket::Mem(s) => s.try_write(b),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.try_write(b),
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => {
                let _ = s.shutdown_write();
            }
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s.tcp()), std::net::Shutdown::Both);
            }
        }
    }

    /// The remote end, as the socket reports it.
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().map(|a| PeerAddr::Tcp(canonical(a))),
            Socket::Unix(_) => Ok(PeerAddr::Unix),
            Socket::Mem(_) => Ok(PeerAddr::Mem),
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s.tcp().peer_addr().map(|a| PeerAddr::Tcp(canonical(a))),
        }
    }

    /// Who the peer is, from the certificate it presented over TLS.
    #[cfg(feature = "tls")]
    pub fn peer_identity(&self) -> Option<PeerIdentity> {
        match self {
            Socket::Tls(s) => s.identity().cloned(),
            _ => None,
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => s
                .tcp()
                .peer_addr()
                .map(|a| format!("tls://{a}"))
                .unwrap_or_else(|_| "tls://?".into()),
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
            #[cfg(feature = "tls")]
            Socket::Tls(s) => (ReadHalf::Tls(s.clone()), WriteHalf::Tls(s)),
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
    /// TLS over TCP, shared with the other half.
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<TlsSocket>),
}

impl ReadHalf {
    /// Waits until the stream may be readable.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            ReadHalf::Tcp(s) => s.readable().await,
            ReadHalf::Unix(s) => s.readable().await,
            ReadHalf::Mem(s) => s.readable().await,
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => s.readable().await,
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
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => loop {
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
    /// TLS over TCP, shared with the other half.
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<TlsSocket>),
}

impl WriteHalf {
    /// Who the peer is, from the certificate it presented over TLS.
    #[cfg(feature = "tls")]
    pub fn peer_identity(&self) -> Option<PeerIdentity> {
        match self {
            WriteHalf::Tls(s) => s.identity().cloned(),
            _ => None,
        }
    }

    /// Waits until the stream may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(s) => s.writable().await,
            WriteHalf::Unix(s) => s.writable().await,
            WriteHalf::Mem(s) => s.writable().await,
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.writable().await,
        }
    }

    /// Writes what the stream takes now, without waiting.
    pub fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Tcp(s) => s.try_write(b),
            WriteHalf::Unix(s) => s.try_write(b),
            WriteHalf::Mem(s) => s.try_write(b),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => s.try_write(b),
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
            #[cfg(feature = "tls")]
            WriteHalf::Tls(s) => {
                let _ = shutdown_fd(std::os::fd::AsFd::as_fd(s.tcp()), std::net::Shutdown::Both);
            }
        }
    }
}

/// A bound listener of any transport.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// TLS over TCP, with the node's settings.
    #[cfg(feature = "tls")]
    Tls(TcpListener, TlsConfig),
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
    pub(crate) async fn bind(addr: &Address, tls: &Tls) -> io::Result<(Listener, Address)> {
        match addr {
            #[cfg(feature = "tls")]
            Address::Tls { host, port } => {
                let config = match tls {
                    Some(c) if c.server.is_some() => c.clone(),
                    _ => return Err(io::Error::other(crate::tls::TlsError::NoIdentity)),
                };
                let l = TcpListener::bind((host.as_str(), *port)).await?;
                let bound = Address::Tls {
                    host: host.clone(),
                    port: l.local_addr()?.port(),
                };
                Ok((Listener::Tls(l, config), bound))
            }
            #[cfg(not(feature = "tls"))]
            Address::Tls { .. } => {
                let _ = tls;
                Err(tls_not_built())
            }
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

    /// Accepts the next connection. A TLS one still has its TLS
    /// handshake to run ([`Incoming::establish`]), outside the accept loop.
    pub async fn accept(&mut self) -> io::Result<Incoming> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Incoming::Ready(Socket::Tcp(s)))
            }
            #[cfg(feature = "tls")]
            Listener::Tls(l, config) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Incoming::Tls(s, config.clone()))
            }
            Listener::Unix(l, _) => Ok(Incoming::Ready(Socket::Unix(l.accept().await?.0))),
            Listener::Mem(l) => l.accept().await.map(|s| Incoming::Ready(Socket::Mem(s))),
        }
    }
}

/// An accepted connection, before any farcall byte.
#[derive(Debug)]
pub enum Incoming {
    /// Ready for the farcall handshake.
    Ready(Socket),
    /// A TCP connection whose TLS handshake has yet to run.
    #[cfg(feature = "tls")]
    Tls(TcpStream, TlsConfig),
}

impl Incoming {
    /// The remote end, for logs, before any handshake.
    pub fn peer_description(&self) -> String {
        match self {
            Incoming::Ready(s) => s.peer_description(),
            #[cfg(feature = "tls")]
            Incoming::Tls(s, _) => s
                .peer_addr()
                .map(|a| format!("tls://{a}"))
                .unwrap_or_else(|_| "tls://?".into()),
        }
    }

    /// Runs what is left before the farcall handshake (the TLS handshake).
    pub async fn establish(self) -> io::Result<Socket> {
        match self {
            Incoming::Ready(s) => Ok(s),
            #[cfg(feature = "tls")]
            Incoming::Tls(s, config) => Ok(Socket::Tls(std::sync::Arc::new(
                TlsSocket::accept(s, &config).await?,
            ))),
        }
    }
}
