//! A TLS session over TCP, with the readiness interface of every other
//! transport (`try_read`, `try_write`, `readable`, `writable`), so that a
//! connection's reader task and its writers share it as they share a TCP
//! socket.
//!
//! The TLS handshake runs with tokio-rustls; the established session is
//! then driven by hand: one rustls connection behind a mutex, fed from the
//! socket with non-blocking reads and flushed with non-blocking writes.
//!
//! One rule makes writes exact. A `try_write` that has handed bytes to
//! rustls but cannot flush their records answers `WouldBlock` and keeps
//! the count; the caller (the connection's single writer) retries with a
//! buffer that starts with the same bytes, as it does after any
//! `WouldBlock`, and the retry answers that count once the records are on
//! the socket.

use std::io::{self, BufRead, Read, Write};
use std::sync::Mutex;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::sync::lock;
use crate::tls::{ALPN, PeerIdentity, TlsConfig};

/// The most plaintext one `try_write` hands to rustls.
const MAX_WRITE: usize = 64 * 1024;

/// An established TLS session.
#[derive(Debug)]
pub struct TlsSocket {
    tcp: TcpStream,
    state: Mutex<State>,
    identity: Option<PeerIdentity>,
}

struct State {
    conn: rustls::Connection,
    /// Plaintext handed to rustls by a `try_write` that answered
    /// `WouldBlock`: reported by the retry once flushed.
    accepted: usize,
    /// The socket reached end of stream.
    eof: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("accepted", &self.accepted)
            .field("eof", &self.eof)
            .finish()
    }
}

/// The socket as `io::Read`, answering `WouldBlock` instead of waiting.
struct TryRead<'a>(&'a TcpStream);

impl Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// The socket as `io::Write`, answering `WouldBlock` instead of waiting.
struct TryWrite<'a>(&'a TcpStream);

impl Write for TryWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    /// Every record rustls has ready in one system call.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsSessionError(describe(&e)))
}

/// A TLS failure on an established or starting session.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TlsSessionError(String);

/// A rustls error as a sentence about the peer and this node.
fn describe(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::NotValidForNameContext { expected, presented } => {
                let names: Vec<String> = presented.iter().map(|n| unquote(n)).collect();
                format!(
                    "TLS: the peer's certificate is not valid for `{}` (it names {})",
                    expected.to_str(),
                    names.join(", ")
                )
            }
            C::NotValidForName => "TLS: the peer's certificate is not valid for the name dialed".into(),
            C::UnknownIssuer => {
                "TLS: the peer's certificate is not signed by a root this node trusts".into()
            }
            C::Expired | C::ExpiredContext { .. } => "TLS: the peer's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: the peer's certificate is not valid yet".into()
            }
            C::Revoked => "TLS: the peer's certificate is revoked".into(),
            C::BadSignature => "TLS: the peer's certificate has a bad signature".into(),
            other => format!("TLS: the peer's certificate is refused: {other}"),
        },
        E::AlertReceived(alert) => match alert {
            A::CertificateRequired => "TLS: the peer requires a client certificate (mutual TLS) and this node presented none".into(),
            A::UnknownCA | A::BadCertificate => {
                "TLS: the peer does not trust this node's certificate".into()
            }
            A::CertificateExpired => "TLS: the peer refused this node's certificate as expired".into(),
            A::NoApplicationProtocol => "TLS: the peer does not speak farcall/2 (ALPN)".into(),
            other => format!("TLS: the peer ended the session ({other:?} alert)"),
        },
        E::NoCertificatesPresented => "TLS: the peer presented no certificate".into(),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "TLS: the peer does not speak TLS here (is it a plain tcp:// port?)".into()
        }
        other => format!("TLS: {other}"),
    }
}

/// `DnsName("a.example")` as `a.example`: how rustls lists the names a
/// certificate holds.
fn unquote(n: &str) -> String {
    match (n.find("(\""), n.strip_suffix("\")")) {
        (Some(i), Some(head)) => head[i + 2..].to_owned(),
        _ => n.to_owned(),
    }
}

impl TlsSocket {
    /// Dials `host:port` over TCP and runs the client handshake, verifying
    /// the server's certificate for `host`.
    pub(crate) async fn connect(host: &str, port: u16, tls: &TlsConfig) -> io::Result<TlsSocket> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{host}` is not a name a TLS certificate can be checked against"),
            )
        })?;
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(handshake_error)?;
        let (tcp, conn) = stream.into_inner();
        TlsSocket::established(tcp, conn.into())
    }

    /// Runs the server handshake on an accepted TCP socket.
    pub(crate) async fn accept(tcp: TcpStream, tls: &TlsConfig) -> io::Result<TlsSocket> {
        let Some(server) = &tls.server else {
            return Err(io::Error::other(crate::tls::TlsError::NoIdentity));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
        let stream = acceptor.accept(tcp).await.map_err(handshake_error)?;
        let (tcp, conn) = stream.into_inner();
        TlsSocket::established(tcp, conn.into())
    }

    fn established(tcp: TcpStream, conn: rustls::Connection) -> io::Result<TlsSocket> {
        if conn.alpn_protocol() != Some(ALPN) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TlsSessionError(format!(
                    "the peer does not speak {} (ALPN)",
                    String::from_utf8_lossy(ALPN)
                )),
            ));
        }
        let identity = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| PeerIdentity::from_der(c));
        Ok(TlsSocket {
            tcp,
            state: Mutex::new(State {
                conn,
                accepted: 0,
                eof: false,
            }),
            identity,
        })
    }

    /// The TCP socket under the session.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Who the peer is, from its certificate.
    pub(crate) fn identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }

    /// Writes the records rustls has ready until none is left or the
    /// socket would block.
    fn flush(&self, st: &mut State) -> io::Result<()> {
        while st.conn.wants_write() {
            st.conn.write_tls(&mut TryWrite(&self.tcp))?;
        }
        Ok(())
    }

    /// Moves what the socket has into rustls and decrypts it. `Ok(false)`
    /// when the socket had nothing (and readiness is cleared).
    fn fill(&self, st: &mut State) -> io::Result<bool> {
        if st.eof {
            return Ok(false);
        }
        match st.conn.read_tls(&mut TryRead(&self.tcp)) {
            Ok(0) => st.eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
        let processed = st.conn.process_new_packets();
        // Alerts, key updates: out with them if the socket takes them now
        // (the next write flushes what it does not).
        let _ = self.flush(st);
        processed.map_err(tls_error)?;
        Ok(true)
    }

    /// Reads plaintext into `buf`; `Ok(0)` is end of stream, `WouldBlock`
    /// means wait for [`TlsSocket::readable`].
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = lock(&self.state);
        loop {
            match st.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.fill(&mut st)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Appends plaintext to `buf` (no zeroing: copied from rustls's
    /// buffer); `Ok(0)` is end of stream.
    pub(crate) fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut st = lock(&self.state);
        loop {
            let mut reader = st.conn.reader();
            match reader.fill_buf() {
                Ok([]) => return Ok(0),
                Ok(chunk) => {
                    let n = chunk.len();
                    buf.extend_from_slice(chunk);
                    reader.consume(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !self.fill(&mut st)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
    }

    /// Waits until a read may make progress: plaintext is waiting in
    /// rustls, the session ended, or the socket is readable.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        {
            let mut st = lock(&self.state);
            if st.eof {
                return Ok(());
            }
            match st.conn.process_new_packets() {
                Ok(io) if io.plaintext_bytes_to_read() > 0 || io.peer_has_closed() => {
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(tls_error(e)),
            }
        }
        self.tcp.readable().await
    }

    /// Writes plaintext: see the module's rule for `WouldBlock`.
    pub(crate) fn try_write(&self, b: &[u8]) -> io::Result<usize> {
        let mut st = lock(&self.state);
        if st.accepted > 0 {
            self.flush(&mut st)?;
            return Ok(std::mem::take(&mut st.accepted));
        }
        self.flush(&mut st)?;
        if b.is_empty() {
            return Ok(0);
        }
        let n = st.conn.writer().write(&b[..b.len().min(MAX_WRITE)])?;
        match self.flush(&mut st) {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                st.accepted = n;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until the socket may take more.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }

    /// Sends close_notify (as far as the socket takes it now) and shuts
    /// down the write half of the socket.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.close(std::net::Shutdown::Write)
    }

    /// Sends close_notify (as far as the socket takes it now) and shuts
    /// down both directions: the peer reads a clean end of the session.
    pub(crate) fn shutdown_both(&self) -> io::Result<()> {
        self.close(std::net::Shutdown::Both)
    }

    fn close(&self, how: std::net::Shutdown) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.conn.send_close_notify();
        let _ = self.flush(&mut st);
        drop(st);
        super::shutdown_fd(std::os::fd::AsFd::as_fd(&self.tcp), how)
    }
}

/// The handshake's error, as a sentence: rustls's reason (an unknown
/// issuer, a name mismatch, an expired certificate, no certificate) or
/// the socket's.
fn handshake_error(e: io::Error) -> io::Error {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<rustls::Error>() {
            Ok(tls) => tls_error(*tls),
            Err(other) => io::Error::new(kind, other),
        },
        None if kind == io::ErrorKind::UnexpectedEof => io::Error::new(
            kind,
            TlsSessionError("TLS: the peer closed the connection during the TLS handshake".into()),
        ),
        None => io::Error::new(
            kind,
            TlsSessionError(format!("TLS: the handshake failed: {kind}")),
        ),
    }
}
