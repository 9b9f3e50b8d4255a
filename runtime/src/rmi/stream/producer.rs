//! The producing end: the pump that sends a source's items as the
//! consumer grants credit.

use super::*;

#[derive(Clone)]
pub(super) enum Stop {
    /// The consumer dropped the stream.
    Cancelled,
    /// The connection died.
    Dead(String),
}

#[derive(Default)]
pub(super) struct OutState {
    pub(super) credit: u64,
    pub(super) claimed: bool,
    pub(super) stop: Option<Stop>,
}

/// What the reader tells a producer: credit, cancel, death.
#[derive(Default)]
pub(super) struct Outbound {
    pub(super) state: Mutex<OutState>,
    pub(super) wake: Notify,
}

impl Outbound {
    pub(super) fn update(&self, f: impl FnOnce(&mut OutState)) {
        f(&mut lock(&self.state));
        // One waiter (the pump); a wake-up without one is kept for it.
        self.wake.notify_one();
    }

    /// Waits until `ready` says something, re-checking after each wake-up.
    pub(super) async fn wait<R>(&self, mut ready: impl FnMut(&mut OutState) -> Option<R>) -> R {
        loop {
            let r = ready(&mut lock(&self.state));
            if let Some(r) = r {
                return r;
            }
            self.wake.notified().await;
        }
    }
}

/// Sends a stream's items on `conn` as credit allows. One task per stream
/// sent; it owns the source, and drops it when the stream ends.
pub(super) async fn pump<T: Serialize + Send + 'static>(
    conn: Connection,
    id: u64,
    out: Arc<Outbound>,
    mut source: Source<T>,
) {
    let mut guard = PumpGuard {
        conn: conn.clone(),
        id,
        claimed: false,
        ended: false,
    };
    let claim = out.wait(|s| match &s.stop {
        Some(stop) => Some(Err((stop.clone(), s.claimed))),
        None => s.claimed.then_some(Ok(())),
    });
    match tokio::time::timeout(CLAIM_TIMEOUT, claim).await {
        Ok(Ok(())) => guard.claimed = true,
        Ok(Err((stop, claimed))) => {
            // A cancel always follows the claim's credit; without one, the
            // peer does not know the stream, and no end is owed.
            guard.claimed = claimed;
            return guard.stopped(stop, &mut source);
        }
        // Never claimed (the reply or call carrying it was dropped): the
        // consumer does not know the id, so nothing is sent.
        Err(_) => {
            guard.ended = true;
            return source.close(RemoteError::Rejected(
                "the stream was not claimed by its receiver".into(),
            ));
        }
    }
    loop {
        let credit = out.wait(|s| {
            if let Some(stop) = &s.stop {
                return Some(Err(stop.clone()));
            }
            (s.credit > 0).then(|| {
                s.credit -= 1;
                Ok(())
            })
        });
        let credit = {
            let mut credit = pin!(credit);
            match poll_once(credit.as_mut()).await {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    // Out of credit: what is queued goes out now.
                    conn.flush();
                    credit.await
                }
            }
        };
        if let Err(stop) = credit {
            return guard.stopped(stop, &mut source);
        }
        let item = {
            let mut next = pin!(source.next());
            match poll_once(next.as_mut()).await {
                Poll::Ready(item) => Ok(item),
                Poll::Pending => {
                    // Waiting for the source: what is queued goes out now.
                    conn.flush();
                    let stopped = out.wait(|s| s.stop.clone());
                    tokio::select! {
                        biased;
                        stop = stopped => Err(stop),
                        item = next => Ok(item),
                    }
                }
            }
        };
        let item = match item {
            Ok(item) => item,
            Err(stop) => return guard.stopped(stop, &mut source),
        };
        let end = match item {
            Some(Ok(v)) => {
                let mut why = None;
                let (c, w) = (&conn, &mut why);
                // The item moves in: only `T: Send` is asked of it.
                let sent = conn
                    .send_frame(true, move |b, max| {
                        let payload = |b: &mut bytes::BytesMut| {
                            let (r, failure) =
                                encode_in(Some(c.clone()), || codec::encode_into(&v, b));
                            *w = failure;
                            r
                        };
                        frame::encode_stream_item(b, id, payload, max)
                    })
                    .await;
                match sent {
                    Ok(()) => {
                        tokio::task::coop::consume_budget().await;
                        continue;
                    }
                    Err(Error::Encode(e)) => Some(Fault::Rejected(format!(
                        "a stream item does not encode: {}",
                        why.map_or_else(|| e.to_string(), |w| w.to_string())
                    ))),
                    Err(Error::Frame(e)) => {
                        Some(Fault::Rejected(format!("a stream item is too large: {e}")))
                    }
                    Err(e) => {
                        // The connection is gone: nothing more is sent.
                        guard.ended = true;
                        return source.close(RemoteError::from(e));
                    }
                }
            }
            Some(Err(e)) => Some(fault_of(e)),
            None => None,
        };
        guard.end(end);
        return source.close(RemoteError::Closed);
    }
}

/// Polls `fut` once.
pub(super) async fn poll_once<F: Future + Unpin>(mut fut: F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut fut).poll(cx))).await
}

/// Unregisters a producer however its pump ends; a pump that dies without
/// ending a claimed stream (a panicking source) ends it with a fault.
pub(super) struct PumpGuard {
    pub(super) conn: Connection,
    pub(super) id: u64,
    pub(super) claimed: bool,
    pub(super) ended: bool,
}

impl PumpGuard {
    pub(super) fn end(&mut self, fault: Option<Fault>) {
        self.ended = true;
        let _ = self.conn.send_control(&Frame::StreamEnd {
            stream: self.id,
            fault,
        });
    }

    pub(super) fn stopped<T>(&mut self, stop: Stop, source: &mut Source<T>) {
        match stop {
            Stop::Cancelled if self.claimed => {
                // The consumer keeps counting items until this end.
                self.end(None);
                source.close(RemoteError::Closed);
            }
            Stop::Cancelled => {
                self.ended = true;
                source.close(RemoteError::Closed);
            }
            Stop::Dead(reason) => {
                self.ended = true;
                source.close(RemoteError::Disconnected(reason));
            }
        }
    }
}

impl Drop for PumpGuard {
    fn drop(&mut self) {
        if self.claimed && !self.ended {
            self.end(Some(Fault::Panicked));
        }
        self.conn.streams().unregister(self.id);
    }
}

/// How an error item travels: as the fault it stands for, or, for an
/// error of the caller's side only, `Rejected` with its text.
pub(super) fn fault_of(e: RemoteError) -> Fault {
    e.fault().unwrap_or_else(|| Fault::Rejected(e.to_string()))
}
