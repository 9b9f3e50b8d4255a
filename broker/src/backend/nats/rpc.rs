//! Mediated RPC on NATS: calls are NATS requests on `_FARCALL.rpc.<queue>`
//! to the queue group `farcall`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use farcall_runtime::rmi::{Carrier, CarrierFuture, InterfaceDescriptor};
use farcall_runtime::{Fault, Metadata, NodeId, RemoteError, Service};
use futures_util::StreamExt;

use super::headers::{from_headers, to_headers};
use super::{CONSUMER, Nats, backend_err, rpc_subject};
use crate::backend::{Fut, NativeRpc};
use crate::rpc::{Reply, Request, run};

/// The first pause before a call that found no server tries again.
const NO_RESPONDERS_PAUSE: Duration = Duration::from_millis(20);

/// Carries calls as NATS requests to a queue group.
struct NatsCarrier {
    client: async_nats::Client,
    subject: String,
    caller: NodeId,
    next: AtomicU64,
}

impl fmt::Debug for NatsCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsCarrier")
            .field("subject", &self.subject)
            .finish()
    }
}

impl NatsCarrier {
    fn envelope(
        &self,
        method: u64,
        args: Bytes,
        reply: bool,
        deadline: Duration,
        idempotent: bool,
    ) -> Result<Bytes, RemoteError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // NATS carries the reply subject: an empty one says "answer".
        let reply_to = reply.then(String::new);
        Request::new(
            id,
            self.caller,
            method,
            args,
            reply_to,
            deadline,
            idempotent,
        )
        .encode()
    }
}

impl Carrier for NatsCarrier {
    fn call(
        &self,
        method: u64,
        metadata: &Metadata,
        payload: Bytes,
        deadline: Duration,
        idempotent: bool,
    ) -> CarrierFuture<'_, Result<Bytes, Fault>> {
        let headers = to_headers(metadata);
        Box::pin(async move {
            let until = Instant::now() + deadline;
            let bytes = self.envelope(method, payload, true, deadline, idempotent)?;
            let mut pause = NO_RESPONDERS_PAUSE;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(RemoteError::DeadlineExceeded);
                }
                let mut req = async_nats::Request::new()
                    .payload(bytes.clone())
                    .timeout(Some(left));
                if let Some(h) = &headers {
                    req = req.headers(h.clone());
                }
                match self.client.send_request(self.subject.clone(), req).await {
                    Ok(msg) => {
                        let reply: Reply = farcall_runtime::codec::decode(&msg.payload)
                            .map_err(|e| RemoteError::Decode(e.to_string()))?;
                        return Ok(reply.outcome);
                    }
                    Err(e) => match e.kind() {
                        async_nats::RequestErrorKind::NoResponders => {
                            // No server yet: the call waits for one.
                            tokio::time::sleep(pause.min(left)).await;
                            pause = (pause * 2).min(Duration::from_millis(250));
                        }
                        async_nats::RequestErrorKind::TimedOut => {
                            return Err(RemoteError::DeadlineExceeded);
                        }
                        _ => return Err(RemoteError::Disconnected(e.to_string())),
                    },
                }
            }
        })
    }

    fn send(&self, method: u64, metadata: &Metadata, payload: Bytes) -> CarrierFuture<'_, ()> {
        let headers = to_headers(metadata);
        Box::pin(async move {
            let bytes = self.envelope(method, payload, false, Duration::from_secs(30), false)?;
            let sent = match headers {
                Some(h) => {
                    self.client
                        .publish_with_headers(self.subject.clone(), h, bytes)
                        .await
                }
                None => self.client.publish(self.subject.clone(), bytes).await,
            };
            sent.map_err(|e| RemoteError::Disconnected(e.to_string()))
        })
    }
}

impl NativeRpc for Nats {
    fn carrier(&self, queue: &str) -> Arc<dyn Carrier> {
        Arc::new(NatsCarrier {
            client: self.client.clone(),
            subject: rpc_subject(queue),
            caller: self.caller,
            next: AtomicU64::new(1),
        })
    }

    fn serve<'a>(
        &'a self,
        queue: &'a str,
        interface: &'static InterfaceDescriptor,
        service: Arc<dyn Service>,
    ) -> Fut<'a, tokio::task::JoinHandle<()>> {
        Box::pin(async move {
            let mut sub = self
                .client
                .queue_subscribe(rpc_subject(queue), CONSUMER.to_owned())
                .await
                .map_err(backend_err)?;
            let client = self.client.clone();
            Ok(tokio::spawn(async move {
                while let Some(msg) = sub.next().await {
                    let service = service.clone();
                    let client = client.clone();
                    tokio::spawn(async move {
                        let req: Request = match farcall_runtime::codec::decode(&msg.payload) {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!(error = %e, "a request that does not decode; dropped");
                                return;
                            }
                        };
                        let id = req.id;
                        let wants_reply = req.reply_to.is_some();
                        let outcome: Result<Bytes, Fault> = match from_headers(msg.headers.as_ref())
                        {
                            Ok(m) => run(&service, Some(interface), None, req, Some(m)).await,
                            Err(e) => Err(Fault::Rejected(format!(
                                "the request's metadata is refused: {e}"
                            ))),
                        };
                        if let (true, Some(to)) = (wants_reply, msg.reply) {
                            let reply = Reply { id, outcome };
                            if let Ok(b) = postcard::to_stdvec(&reply) {
                                let _ = client.publish(to, Bytes::from(b)).await;
                            }
                        }
                    });
                }
            }))
        })
    }
}
