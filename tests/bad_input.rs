//! Hostile clients against a real server: each talks raw TCP (or raw
//! bytes inside a valid TLS session: every attack runs on both, as
//! `tcp::<attack>` and `tls::<attack>`), breaks the protocol in one way,
//! and must be refused or dropped, while well-behaved clients (one kept
//! open throughout, and a fresh one after each attack) go on getting
//! correct answers.

mod common;

use std::io;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use farcall::__private::codec;
use farcall::__private::wire::frame::{self, Frame, Kind};
use farcall::__private::wire::handshake::{
    self, ANSWER_PREFIX, HELLO_PREFIX, HandshakeError, Hello, MAGIC, PROTOCOL_VERSION,
};
use farcall::Node;
use farcall::dme::{Client, Server};
use farcall::node::{Address, Limits, NodeId};
use farcall::rmi::ObjectId;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use common::pki::Pki;
use common::transport::unix_socket_path;
use farcall::tls::TlsConfig;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_FRAME: u32 = 64 * 1024;
/// How long a hostile connection may stay open after its offence: far
/// more than the server needs, so that a slow machine does not fail us.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

fn answer(n: u64) -> u64 {
    n * 2 + 1
}

/// What the attackers dial: plain TCP, or TLS with certificates made in
/// the test (the attacks then come inside a valid TLS session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Tcp,
    Tls,
}

/// A server with short limits, and a client that stays connected.
struct Fixture {
    server: Server<u64, u64>,
    dialer: Dialer,
    /// The TLS settings of the well-behaved clients, on `tls`.
    client_tls: Option<TlsConfig>,
    keeper: Client<u64, u64>,
}

impl Fixture {
    async fn start(wire: Wire) -> Fixture {
        let mut limits = Limits::default();
        limits.handshake_timeout = HANDSHAKE_TIMEOUT;
        limits.max_frame_len = MAX_FRAME;
        let pki = Pki::new("hostile input CA");
        let (node, client_tls, tls) = match wire {
            Wire::Tcp => (
                Node::builder()
                    .limits(limits)
                    .listen("tcp://127.0.0.1:0")
                    .await
                    .expect("the server listens"),
                None,
                None,
            ),
            Wire::Tls => {
                let id = pki.issue("server", &["localhost", "127.0.0.1"]);
                let server_tls = TlsConfig::builder()
                    .identity_pem(id.chain.as_bytes(), id.key.as_bytes())
                    .build()
                    .unwrap();
                let client_tls = TlsConfig::builder()
                    .trust_pem(pki.ca_pem.as_bytes())
                    .build()
                    .unwrap();
                let node = Node::builder()
                    .limits(limits)
                    .tls(server_tls)
                    .listen("tls://127.0.0.1:0")
                    .await
                    .expect("the server listens");
                (node, Some(client_tls), Some(raw_tls_connector(&pki)))
            }
        };
        let server =
            Server::listen_on(&node, |n: u64| async move { answer(n) }).expect("the node listens");
        let addr = match server.local_addr() {
            Address::Tcp { host, port } | Address::Tls { host, port } => format!("{host}:{port}"),
            other => panic!("a tcp server has a tcp address, not {other}"),
        };
        let keeper = Client::connect_on(&client_node(&client_tls), server.local_addr())
            .await
            .expect("a normal client connects")
            .with_deadline(Duration::from_secs(5));
        assert_eq!(keeper.request(1).await.unwrap(), answer(1));
        Fixture {
            server,
            dialer: Dialer { addr, tls },
            client_tls,
            keeper,
        }
    }

    async fn raw(&self) -> Raw {
        self.dialer.raw().await
    }

    /// The client kept open and a fresh one both get correct answers.
    async fn assert_healthy(&self) {
        for i in 0..3 {
            let got = self.keeper.request(i).await;
            assert_eq!(got.expect("the client kept open still works"), answer(i));
        }
        let fresh = Client::<u64, u64>::connect_on(
            &client_node(&self.client_tls),
            self.server.local_addr(),
        )
        .await
        .expect("a fresh client connects")
        .with_deadline(Duration::from_secs(5));
        let mut set = JoinSet::new();
        for i in 100..110 {
            let c = fresh.clone();
            set.spawn(async move { (i, c.request(i).await) });
        }
        while let Some(r) = set.join_next().await {
            let (i, got) = r.unwrap();
            assert_eq!(got.expect("a fresh client works"), answer(i));
        }
        fresh.close().await;
    }
}

/// A node of its own for a well-behaved client (each closes its own).
fn client_node(tls: &Option<TlsConfig>) -> Node {
    match tls {
        Some(tls) => Node::builder().tls(tls.clone()).build(),
        None => Node::new(),
    }
}

/// Opens the attackers' connections.
#[derive(Clone)]
struct Dialer {
    addr: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Dialer {
    /// A connection to the server: TCP, or a TLS session over it.
    async fn raw(&self) -> Raw {
        let s = TcpStream::connect(&self.addr).await.expect("raw connect");
        s.set_nodelay(true).unwrap();
        match &self.tls {
            None => Raw::Tcp(s),
            Some(c) => {
                let name = ServerName::try_from("localhost").unwrap();
                Raw::Tls(Box::new(c.connect(name, s).await.expect("a TLS session")))
            }
        }
    }
}

/// A TLS client as any other program would have, offering farcall's ALPN.
fn raw_tls_connector(pki: &Pki) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![farcall::tls::ALPN.to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// An attacker's connection.
enum Raw {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Raw {
    fn is_tls(&self) -> bool {
        matches!(self, Raw::Tls(_))
    }

    /// Makes the close a reset (RST), whatever rides on the socket.
    fn set_zero_linger(&self) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_zero_linger(),
            Raw::Tls(s) => s.get_ref().0.set_zero_linger(),
        }
    }
}

impl AsyncRead for Raw {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Raw::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Raw::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Raw {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Raw::Tcp(s) => Pin::new(s).poll_write(cx, b),
            Raw::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Raw::Tcp(s) => Pin::new(s).poll_flush(cx),
            Raw::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Raw::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Raw::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One test per attack and wire: `tcp::<attack>` and `tls::<attack>`.
macro_rules! on_wires {
    ($($attack:ident),* $(,)?) => {
        mod tcp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $attack() {
                    super::$attack(super::Wire::Tcp).await
                }
            )*
        }
        mod tls {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $attack() {
                    super::$attack(super::Wire::Tls).await
                }
            )*
        }
    };
}

on_wires!(
    raw_client_speaks_the_protocol,
    garbage_instead_of_a_handshake,
    wrong_magic,
    wrong_protocol_version,
    oversized_or_malformed_hello_body,
    http_get_request,
    slow_loris_is_dropped_at_the_handshake_timeout,
    four_gib_length_prefix,
    frame_one_byte_over_the_limit,
    truncated_frame_then_eof,
    frame_whose_header_does_not_decode,
    empty_frame,
    a_thousand_connections_reset_abruptly,
    mixed_attackers_at_once,
);

/// How a hostile connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server closed (FIN).
    Eof,
    /// The server reset the connection (it dropped it with unread input).
    Error(io::ErrorKind),
}

/// Reads until the server closes, failing the test if it does not within
/// [`CLOSE_WITHIN`]. Returns what the server sent before closing.
async fn read_until_closed(s: &mut Raw) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => return End::Eof,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => return End::Error(e.kind()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept a hostile connection open for {CLOSE_WITHIN:?}"));
    if let End::Error(kind) = end {
        assert!(
            matches!(
                kind,
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) || (s.is_tls() && kind == io::ErrorKind::UnexpectedEof),
            "unexpected read error {kind:?}"
        );
    }
    (got, end)
}

/// Decodes a handshake refusal the way a dialing node does, and returns
/// its reason.
fn refusal_reason(bytes: &[u8]) -> String {
    assert!(
        bytes.len() >= ANSWER_PREFIX,
        "expected a refusal, got {} bytes: {bytes:?}",
        bytes.len()
    );
    let p: &[u8; ANSWER_PREFIX] = bytes[..ANSWER_PREFIX].try_into().unwrap();
    let (status, len) = handshake::decode_answer_prefix(p).expect("a well-formed answer");
    assert_eq!(status, 1, "the answer is a refusal");
    let body = &bytes[ANSWER_PREFIX..];
    assert_eq!(body.len(), len, "the refusal is the last thing sent");
    match handshake::decode_answer_body(status, body) {
        Err(HandshakeError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Sends `bytes` as the whole conversation and returns the refusal reason.
async fn refused_after(fx: &Fixture, bytes: &[u8]) -> String {
    let mut s = fx.raw().await;
    s.write_all(bytes).await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    refusal_reason(&got)
}

fn hello() -> Bytes {
    handshake::encode_hello(&Hello {
        node: NodeId::random(),
        max_frame_len: 1 << 20,
        max_in_flight: 64,
        credentials: None,
    })
}

/// A raw connection past a valid handshake.
async fn handshaken(fx: &Fixture) -> Raw {
    let mut s = fx.raw().await;
    s.write_all(&hello()).await.unwrap();
    let mut p = [0u8; ANSWER_PREFIX];
    s.read_exact(&mut p).await.unwrap();
    let (status, len) = handshake::decode_answer_prefix(&p).unwrap();
    assert_eq!(status, 0, "welcomed");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let welcome = handshake::decode_answer_body(status, &body).unwrap();
    assert_eq!(welcome.node, fx.server.node().id());
    assert_eq!(welcome.max_frame_len, MAX_FRAME);
    s
}

fn encoded(f: &Frame) -> BytesMut {
    let mut b = BytesMut::new();
    frame::encode(&mut b, f, u32::MAX).unwrap();
    b
}

/// Every frame in `bytes` (a whole conversation from the server).
fn frames_in(bytes: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(body) = frame::split(&mut buf, u32::MAX).unwrap() {
        out.push(Frame::decode(body).unwrap());
    }
    assert!(buf.is_empty(), "the server sent half a frame: {buf:?}");
    out
}

/// The reason of the Close frame the server sent before closing.
fn close_reason(bytes: &[u8]) -> String {
    let frames = frames_in(bytes);
    match frames.last() {
        Some(Frame::Close { reason }) => reason.clone(),
        _ => panic!("expected a Close frame last, got {frames:?}"),
    }
}

/// Reads one frame from a raw connection.
async fn read_frame(s: &mut Raw, buf: &mut BytesMut) -> Frame {
    tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            if let Some(body) = frame::split(buf, u32::MAX).unwrap() {
                return Frame::decode(body).unwrap();
            }
            let n = s.read_buf(buf).await.unwrap();
            assert!(n > 0, "the server closed a healthy connection");
        }
    })
    .await
    .expect("a frame within the time-out")
}

// ------------------------------------------------------------------ control

/// The raw client used by the attacks below does speak the protocol: a
/// well-formed call gets its answer, and frames at exactly the limit pass.
async fn raw_client_speaks_the_protocol(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    let mut buf = BytesMut::new();

    let call = Frame::Call {
        id: 7,
        timeout_us: 0,
        object: ObjectId::DME,
        method: 0,
        flags: 0,
        metadata: Bytes::new(),
        payload: codec::encode(&20u64).unwrap(),
    };
    s.write_all(&encoded(&call)).await.unwrap();
    match read_frame(&mut s, &mut buf).await {
        Frame::Reply {
            id: 7,
            result: Ok(p),
        } => {
            assert_eq!(codec::decode::<u64>(&p).unwrap(), answer(20));
        }
        other => panic!("expected the reply to call 7, got {other:?}"),
    }

    // A frame of exactly max_frame_len bytes is accepted: an unknown kind
    // is skipped, and a ping padded to the limit is answered.
    let mut big = BytesMut::new();
    big.put_u32_le(MAX_FRAME);
    big.put_u8(200);
    big.put_bytes(0xAB, MAX_FRAME as usize - 1);
    s.write_all(&big).await.unwrap();
    let mut ping = BytesMut::new();
    ping.put_u32_le(MAX_FRAME);
    ping.put_u8(Kind::Ping as u8);
    ping.put_u8(42); // the nonce, then padding the decoder ignores
    ping.put_bytes(0, MAX_FRAME as usize - 2);
    s.write_all(&ping).await.unwrap();
    assert_eq!(
        read_frame(&mut s, &mut buf).await,
        Frame::Pong { nonce: 42 }
    );
    fx.assert_healthy().await;
}

// ------------------------------------------------------------ the handshake

async fn garbage_instead_of_a_handshake(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let garbage: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
    let reason = refused_after(&fx, &garbage).await;
    assert!(reason.contains("magic"), "{reason}");
    fx.assert_healthy().await;
}

async fn wrong_magic(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut h = hello().to_vec();
    h[..8].copy_from_slice(b"FARCALX\0");
    let reason = refused_after(&fx, &h).await;
    assert!(reason.contains("not a farcall peer"), "{reason}");
    // Only the prefix, nothing after it: the same answer.
    let reason = refused_after(&fx, &h[..HELLO_PREFIX]).await;
    assert!(reason.contains("magic"), "{reason}");
    fx.assert_healthy().await;
}

async fn wrong_protocol_version(wire: Wire) {
    let fx = Fixture::start(wire).await;
    // The bare prefix of a version 1 hello: a peer from before call
    // metadata, which this node refuses with a reason naming both.
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    let reason = refused_after(&fx, &p).await;
    assert!(reason.contains("version 1"), "{reason}");
    assert!(
        reason.contains(&format!("speaks version {PROTOCOL_VERSION}")),
        "{reason}"
    );

    // A whole hello, as a dialer of version 9 sends it, read back through
    // the decoders the dialer uses: the error the user sees names the
    // version.
    let mut h = hello().to_vec();
    h[8..10].copy_from_slice(&9u16.to_be_bytes());
    let mut s = fx.raw().await;
    s.write_all(&h).await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let p: &[u8; ANSWER_PREFIX] = got[..ANSWER_PREFIX].try_into().unwrap();
    let (status, len) = handshake::decode_answer_prefix(p).unwrap();
    let err = handshake::decode_answer_body(status, &got[ANSWER_PREFIX..ANSWER_PREFIX + len])
        .unwrap_err();
    let HandshakeError::Refused(reason) = &err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(reason.contains("version 9"), "{reason}");
    assert!(err.to_string().contains("version"), "{err}");
    fx.assert_healthy().await;
}

async fn oversized_or_malformed_hello_body(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p.extend_from_slice(&5000u16.to_be_bytes());
    let reason = refused_after(&fx, &p).await;
    assert!(reason.contains("5000"), "{reason}");

    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    h.extend_from_slice(&8u16.to_be_bytes());
    h.extend_from_slice(&[0xFF; 8]);
    let reason = refused_after(&fx, &h).await;
    assert!(reason.contains("malformed"), "{reason}");
    fx.assert_healthy().await;
}

async fn http_get_request(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let get = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    let reason = refused_after(&fx, get).await;
    assert!(reason.contains("magic"), "{reason}");
    fx.assert_healthy().await;
}

/// A TLS client on a plain listener (on a TLS one it is welcome).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_hello() {
    let fx = Fixture::start(Wire::Tcp).await;
    // A TLS 1.2/1.3 ClientHello as a browser starts it: record header
    // (handshake, TLS 1.0 record version, length), handshake header
    // (ClientHello, length), client version, random, session id, ciphers.
    let mut tls = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    tls.extend((0..32u8).map(|i| i.wrapping_mul(73)));
    tls.push(0x20);
    tls.extend((0..32u8).map(|i| i.wrapping_mul(29) ^ 0x5a));
    tls.extend_from_slice(&[0x00, 0x08, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2f]);
    tls.extend_from_slice(&[0x01, 0x00, 0x01, 0x93, 0x00, 0x00, 0x00, 0x0e]);
    let reason = refused_after(&fx, &tls).await;
    assert!(reason.contains("magic"), "{reason}");
    fx.assert_healthy().await;
}

async fn slow_loris_is_dropped_at_the_handshake_timeout(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let started = Instant::now();
    let s = fx.raw().await;
    let (mut rd, mut wr) = tokio::io::split(s);
    // One byte of a valid hello per second.
    let writer = tokio::spawn(async move {
        for b in hello().iter() {
            if wr.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut got = Vec::new();
    let end = tokio::time::timeout(HANDSHAKE_TIMEOUT + CLOSE_WITHIN, async {
        let mut chunk = [0u8; 64];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => return End::Eof,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => return End::Error(e.kind()),
            }
        }
    })
    .await
    .expect("the slow client was not dropped");
    let elapsed = started.elapsed();
    writer.abort();
    assert!(
        got.is_empty(),
        "a timed-out handshake gets no answer: {got:?}"
    );
    assert!(
        elapsed >= HANDSHAKE_TIMEOUT / 2,
        "dropped after {elapsed:?}, before the handshake time-out ({end:?})"
    );
    fx.assert_healthy().await;
}

// -------------------------------------------------------------- the frames

async fn four_gib_length_prefix(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, Kind::Call as u8, 1, 2, 3])
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let reason = close_reason(&got);
    assert!(reason.contains("4294967295"), "{reason}");
    assert!(reason.contains(&MAX_FRAME.to_string()), "{reason}");
    fx.assert_healthy().await;
}

async fn frame_one_byte_over_the_limit(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    let len = MAX_FRAME + 1;
    let mut f = BytesMut::new();
    f.put_u32_le(len);
    f.put_u8(200); // even a kind the server would skip
    f.put_bytes(0, len as usize - 1);
    // The server may close before it has read it all; a failed write is
    // part of being refused.
    let _ = s.write_all(&f).await;
    let (got, _) = read_until_closed(&mut s).await;
    let reason = close_reason(&got);
    assert!(
        reason.contains(&format!("{len} bytes exceeds the limit of {MAX_FRAME}")),
        "{reason}"
    );
    fx.assert_healthy().await;
}

async fn truncated_frame_then_eof(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    let call = encoded(&Frame::Call {
        id: 1,
        timeout_us: 0,
        object: ObjectId::DME,
        method: 0,
        flags: 0,
        metadata: Bytes::new(),
        payload: codec::encode(&5u64).unwrap(),
    });
    s.write_all(&call[..call.len() - 1]).await.unwrap();
    s.shutdown().await.unwrap();
    let (got, end) = read_until_closed(&mut s).await;
    assert!(
        got.is_empty(),
        "nothing is answered to half a call: {got:?}"
    );
    assert_eq!(end, End::Eof);
    fx.assert_healthy().await;
}

async fn frame_whose_header_does_not_decode(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    let mut f = BytesMut::new();
    f.put_u32_le(21);
    f.put_u8(Kind::Call as u8);
    f.put_bytes(0xFF, 20);
    s.write_all(&f).await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let reason = close_reason(&got);
    assert!(reason.contains("malformed Call header"), "{reason}");
    fx.assert_healthy().await;
}

async fn empty_frame(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut s = handshaken(&fx).await;
    s.write_all(&0u32.to_le_bytes()).await.unwrap();
    let (got, _) = read_until_closed(&mut s).await;
    let reason = close_reason(&got);
    assert!(reason.contains("empty frame"), "{reason}");
    fx.assert_healthy().await;
}

// ------------------------------------------------------------------ floods

/// Connections reset before, during and after the handshake leave the
/// server serving, and leave no connection behind in its table.
async fn a_thousand_connections_reset_abruptly(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let half_hello = hello().slice(..HELLO_PREFIX + 3);
    for batch in 0..10 {
        let mut set = JoinSet::new();
        for i in 0..100 {
            let dialer = fx.dialer.clone();
            let half_hello = half_hello.clone();
            set.spawn(async move {
                let mut s = dialer.raw().await;
                match i % 4 {
                    // Half a hello, then the reset.
                    1 => s.write_all(&half_hello).await.unwrap(),
                    // A whole hello, not waiting for the answer.
                    2 => s.write_all(&hello()).await.unwrap(),
                    // Reset right after connecting.
                    _ => {}
                }
                s.set_zero_linger().unwrap();
                drop(s);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        if batch % 5 == 4 {
            fx.assert_healthy().await;
        }
    }

    // Completed handshakes that are then reset, frames in flight or not.
    let mut set = JoinSet::new();
    for i in 0..50u64 {
        let mut s = handshaken(&fx).await;
        set.spawn(async move {
            if i % 2 == 0 {
                let call = encoded(&Frame::Call {
                    id: 1,
                    timeout_us: 0,
                    object: ObjectId::DME,
                    method: 0,
                    flags: 0,
                    metadata: Bytes::new(),
                    payload: codec::encode(&i).unwrap(),
                });
                let _ = s.write_all(&call[..call.len() - i as usize % 3]).await;
            }
            s.set_zero_linger().unwrap();
            drop(s);
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    fx.assert_healthy().await;

    // Every dead connection leaves the server's table: only the client
    // kept open remains.
    let node = fx.server.node();
    let deadline = Instant::now() + CLOSE_WITHIN;
    while node.connections().len() > 1 {
        assert!(
            Instant::now() < deadline,
            "{} connections are still registered: {:?}",
            node.connections().len(),
            node.connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fx.assert_healthy().await;
}

/// All of the above at once, on one server.
async fn mixed_attackers_at_once(wire: Wire) {
    let fx = Fixture::start(wire).await;
    let mut attacks = JoinSet::new();
    for round in 0..20u32 {
        let dialer = fx.dialer.clone();
        attacks.spawn(async move {
            let mut s = dialer.raw().await;
            let bytes: Vec<u8> = match round % 4 {
                0 => b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                1 => vec![
                    0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0,
                ],
                2 => {
                    let mut h = hello().to_vec();
                    h.extend_from_slice(&[0xFF; 8]);
                    h
                }
                _ => {
                    let mut h = hello().to_vec();
                    h.extend_from_slice(&[0, 0, 0, 0]);
                    h
                }
            };
            let _ = s.write_all(&bytes).await;
            read_until_closed(&mut s).await
        });
    }
    let mut set = JoinSet::new();
    for i in 0..200 {
        let c = fx.keeper.clone();
        set.spawn(async move { (i, c.request(i).await) });
    }
    while let Some(r) = set.join_next().await {
        let (i, got) = r.unwrap();
        assert_eq!(got.unwrap(), answer(i));
    }
    while let Some(r) = attacks.join_next().await {
        r.unwrap();
    }
    fx.assert_healthy().await;
}

// ------------------------------------------------------------ back-pressure

/// A peer that sends calls but never reads its replies must not make the
/// server queue replies without bound. Every reply the server has not yet
/// written answers a call the peer still waits for, so a well-behaved peer
/// never has more of them than its in-flight limit; past that, the server
/// cuts the peer off (or, short of it, the peer's writes stall). A Unix
/// socket keeps the kernel's buffers small and fixed, so that this is
/// visible from the client: its writes stop making progress, and the
/// one-way marker sent after the flood is never handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_replies_meets_back_pressure() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::net::UnixStream;

    let path = unix_socket_path();
    let mut limits = Limits::default();
    limits.write_buffer = 4096;
    let node = Node::builder()
        .limits(limits)
        .listen(format!("unix://{}", path.display()))
        .await
        .unwrap();
    let marker_seen = Arc::new(AtomicBool::new(false));
    let seen = marker_seen.clone();
    let server = Server::listen_on(&node, move |n: u64| {
        if n == u64::MAX {
            seen.store(true, Ordering::SeqCst);
        }
        async move { n }
    })
    .expect("the node listens");

    let mut s = UnixStream::connect(&path).await.unwrap();
    s.write_all(&hello()).await.unwrap();
    let mut p = [0u8; ANSWER_PREFIX];
    s.read_exact(&mut p).await.unwrap();
    let (status, len) = handshake::decode_answer_prefix(&p).unwrap();
    assert_eq!(status, 0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let (_rd, mut wr) = s.into_split(); // the read half is never read

    // 4 MiB of calls whose payload does not decode, then a one-way
    // message the handler notices. 400,000 replies of 50 bytes are 20 MB:
    // a server that honours write_buffer never gets to the message.
    let call = encoded(&Frame::Call {
        id: 1,
        timeout_us: 0,
        object: ObjectId::DME,
        method: 0,
        flags: 0,
        metadata: Bytes::new(),
        payload: Bytes::new(),
    });
    const CALLS: usize = 400_000;
    let mut flood = BytesMut::with_capacity(call.len() * 4096);
    for _ in 0..4096 {
        flood.extend_from_slice(&call);
    }
    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < CALLS {
            wr.write_all(&flood).await?;
            sent += 4096;
            progress.store(sent, Ordering::SeqCst);
        }
        let marker = encoded(&Frame::Message {
            object: ObjectId::DME,
            method: 0,
            flags: 0,
            metadata: Bytes::new(),
            payload: codec::encode(&u64::MAX).unwrap(),
        });
        wr.write_all(&marker).await?;
        Ok::<_, io::Error>(wr)
    });

    // Either the writer stalls (back-pressure works), or it gets everything
    // out and the server, having read it all, handles the marker.
    let mut last = 0;
    let mut still_since = Instant::now();
    let verdict = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if marker_seen.load(Ordering::SeqCst) {
            break Err(written.load(Ordering::SeqCst));
        }
        let now = written.load(Ordering::SeqCst);
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_secs(2) {
            break Ok(now);
        }
    };
    writer.abort();
    server.shutdown().await;
    let _ = std::fs::remove_file(&path);
    match verdict {
        Ok(n) => assert!(n < CALLS, "the writer stalled after {n} calls"),
        Err(n) => panic!(
            "the server read {n}+ calls from a peer that never read a reply, \
             queueing about {} MB of replies past a write_buffer of 4096 bytes",
            n * 50 / 1_000_000
        ),
    }
}

/// An argument whose `Deserialize` panics on one value: a user's bug that
/// arrives from the network.
#[derive(Debug, Clone, Copy, serde::Serialize, farcall::Schema)]
struct Touchy(u32);

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Touchy, D::Error> {
        let n = <u32 as serde::Deserialize>::deserialize(d)?;
        assert!(n != 13, "Touchy refuses to decode 13");
        Ok(Touchy(n))
    }
}

#[farcall::remote]
trait Fragile {
    async fn echo(&self, t: Touchy) -> Result<u32, farcall::RemoteError>;
    #[remote(oneway)]
    async fn note(&self, t: Touchy) -> Result<(), farcall::RemoteError>;
}

struct FragileImpl;

#[farcall::remote]
impl Fragile for FragileImpl {
    async fn echo(&self, t: Touchy) -> Result<u32, farcall::RemoteError> {
        Ok(t.0)
    }
    async fn note(&self, _t: Touchy) -> Result<(), farcall::RemoteError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deserialize_that_panics_fails_only_its_own_call() {
    let server = Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let _served: farcall::Remote<dyn Fragile> = server.serve("fragile", FragileImpl);
    let client = Node::new();
    let stub: farcall::Remote<dyn Fragile> = client
        .connect_service(server.local_addr().unwrap(), "fragile")
        .await
        .unwrap();
    let stub = stub.with_deadline(Duration::from_secs(30));
    assert_eq!(stub.echo(Touchy(1)).await.unwrap(), 1);

    // Another call in flight on the same connection while one panics.
    let slow = {
        let stub = stub.clone();
        tokio::spawn(async move { stub.echo(Touchy(2)).await })
    };
    // `Panicked`, not `DeadlineExceeded` after the stub's 30 s.
    assert_eq!(
        stub.echo(Touchy(13)).await,
        Err(farcall::RemoteError::Panicked)
    );
    assert_eq!(slow.await.unwrap().unwrap(), 2);
    // A one-way message that panics on decode leaves the connection be.
    stub.note(Touchy(13)).await.unwrap();
    // The connection and the next calls on the same stub go on.
    for n in [3, 4, 5] {
        assert_eq!(stub.echo(Touchy(n)).await.unwrap(), n);
    }
    assert_eq!(server.connections().len(), 1);
    assert!(server.connections()[0].is_open());
    client.shutdown().await;
    server.shutdown().await;
}
