//! The listening side: the accept loop, the TLS handshake where the
//! listener has it, and the answer to a dialer's hello (with the
//! authenticator's decision).

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{NodeInner, Peer, register};
use crate::auth::{Presented, Principal};
use crate::transport::{Listener, PeerAddr, Socket};
use crate::wire::handshake::{self, HandshakeError, Hello, Welcome};

pub(super) async fn accept_loop(node: Weak<NodeInner>, mut listener: Listener) {
    loop {
        let incoming = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(inner) = node.upgrade() else { return };
        if inner.shut.load(Ordering::Acquire) {
            return;
        }
        tokio::spawn(async move {
            let desc = incoming.peer_description();
            let timeout = inner.limits.handshake_timeout;
            let handshake = async {
                // TLS first, where the listener has it.
                let stream = incoming.establish().await.map_err(|e| e.to_string())?;
                // A socket whose peer cannot be named has already gone.
                let addr = stream
                    .peer_addr()
                    .map_err(|_| "the peer left before the handshake".to_owned())?;
                let (hello, principal) = answer_handshake(&inner, &stream, addr).await?;
                Ok::<_, String>((stream, addr, hello, principal))
            };
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok((stream, addr, hello, principal))) => {
                    register(
                        &inner,
                        Peer {
                            io: stream,
                            addr,
                            desc,
                            hello,
                            principal,
                        },
                    );
                }
                Ok(Err(e)) => tracing::debug!(peer = %desc, error = %e, "handshake refused"),
                Err(_) => tracing::debug!(peer = %desc, "handshake timed out"),
            }
        });
    }
}

/// Reads a hello, decides who sent it, and answers it. Refusals carry a
/// reason the dialer shows.
async fn answer_handshake(
    inner: &NodeInner,
    io: &Socket,
    addr: PeerAddr,
) -> std::result::Result<(Hello, Option<Principal>), String> {
    let mut prefix = [0u8; handshake::HELLO_PREFIX];
    io.read_exact(&mut prefix)
        .await
        .map_err(|e| e.to_string())?;
    let refuse = |e: HandshakeError| async move {
        let why = match &e {
            HandshakeError::VersionMismatch { ours, theirs } => format!(
                "protocol version {theirs} is not supported; this node speaks version {ours}"
            ),
            // Said as it is: the dialer adds that the peer refused.
            HandshakeError::Refused(why) => why.clone(),
            other => other.to_string(),
        };
        let _ = io.write_all(&handshake::encode_refusal(&why)).await;
        io.shutdown_write();
        Err(why)
    };
    let len = match handshake::decode_hello_prefix(&prefix) {
        Ok(len) => len,
        Err(e) => return refuse(e).await,
    };
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    let hello = match handshake::decode_hello_body(&body) {
        Ok(h) => h,
        Err(e) => return refuse(e).await,
    };
    if inner.shut.load(Ordering::Acquire) {
        return refuse(HandshakeError::Refused("the node is shutting down".into())).await;
    }
    let principal = match &inner.authenticator {
        None => None,
        Some(a) => {
            #[cfg(feature = "tls")]
            let identity = io.peer_identity();
            let presented = Presented {
                addr,
                token: hello.credentials.as_deref(),
                #[cfg(feature = "tls")]
                identity: identity.as_ref(),
            };
            match a.0.authenticate(&presented) {
                Ok(p) => Some(p),
                Err(why) => return refuse(HandshakeError::Refused(why)).await,
            }
        }
    };
    let welcome = handshake::encode_welcome(&Welcome {
        node: inner.id,
        max_frame_len: inner.limits.max_frame_len,
        max_in_flight: inner.limits.max_in_flight,
    });
    io.write_all(&welcome).await.map_err(|e| e.to_string())?;
    Ok((hello, principal))
}
