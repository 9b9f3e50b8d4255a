//! The streams of one connection, both ways: credit, claims, and the
//! flood guards.

use super::*;

/// The streams of one connection: those this side consumes (numbered by
/// the peer) and those it produces (numbered here).
#[derive(Default)]
pub(crate) struct Streams {
    table: Mutex<Table>,
    next_id: AtomicU64,
}

#[derive(Default)]
pub(super) struct Table {
    pub(super) consumers: HashMap<u64, Inbound>,
    pub(super) producers: HashMap<u64, Arc<Outbound>>,
    pub(super) dead: Option<String>,
}

pub(super) struct Inbound {
    /// `None` once the consumer cancelled: items still in flight are
    /// counted and dropped until the producer's `StreamEnd`.
    pub(super) tx: Option<mpsc::UnboundedSender<Event>>,
    /// Items the producer may still send.
    pub(super) credit: u64,
}

impl fmt::Debug for Streams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = lock(&self.table);
        f.debug_struct("Streams")
            .field("consuming", &t.consumers.len())
            .field("producing", &t.producers.len())
            .finish()
    }
}

impl Streams {
    /// Handles a stream frame from the peer. An error is a protocol
    /// violation: the connection is cut off with this reason.
    pub(crate) fn on_frame(&self, f: Frame) -> Result<(), String> {
        let mut t = lock(&self.table);
        match f {
            Frame::StreamItem { stream, payload } => {
                let Some(c) = t.consumers.get_mut(&stream) else {
                    return Err(format!(
                        "stream item for stream {stream}, which this side does not consume"
                    ));
                };
                if c.credit == 0 {
                    return Err(format!(
                        "stream item for stream {stream} beyond the credit granted"
                    ));
                }
                c.credit -= 1;
                if let Some(tx) = &c.tx {
                    let _ = tx.send(Event::Item(payload));
                }
            }
            Frame::StreamEnd { stream, fault } => {
                let Some(c) = t.consumers.remove(&stream) else {
                    return Err(format!(
                        "stream end for stream {stream}, which this side does not consume"
                    ));
                };
                streams_open(-1.0);
                if let Some(tx) = c.tx {
                    let _ = tx.send(Event::End(fault));
                }
            }
            // Credit and cancel may cross the end of the stream: for a
            // stream no longer produced here they are ignored.
            Frame::StreamCredit { stream, items } => {
                if let Some(p) = t.producers.get(&stream) {
                    p.update(|s| {
                        s.credit = s.credit.saturating_add(u64::from(items));
                        s.claimed = true;
                    });
                }
            }
            Frame::StreamCancel { stream } => {
                if let Some(p) = t.producers.get(&stream) {
                    p.update(|s| {
                        s.stop.get_or_insert(Stop::Cancelled);
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The connection died: every stream on it ends.
    pub(crate) fn fail(&self, reason: &str) {
        let (consumers, producers) = {
            let mut t = lock(&self.table);
            t.dead = Some(reason.to_owned());
            (
                std::mem::take(&mut t.consumers),
                std::mem::take(&mut t.producers),
            )
        };
        streams_open(-((consumers.len() + producers.len()) as f64));
        for (_, c) in consumers {
            if let Some(tx) = c.tx {
                let _ = tx.send(Event::Dead(reason.to_owned()));
            }
        }
        for (_, p) in producers {
            p.update(|s| {
                s.stop = Some(Stop::Dead(reason.to_owned()));
            });
        }
    }

    /// Whether no stream is open on the connection.
    pub(crate) fn is_empty(&self) -> bool {
        let t = lock(&self.table);
        t.consumers.is_empty() && t.producers.is_empty()
    }

    /// Registers a stream the peer produces, with `window` items of credit
    /// (which the caller then grants). `Ok(false)`: the connection is
    /// dead, and the receiver already holds the news.
    pub(super) fn claim(
        &self,
        id: u64,
        window: u32,
    ) -> Result<(mpsc::UnboundedReceiver<Event>, bool), RemoteError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut t = lock(&self.table);
        if let Some(reason) = &t.dead {
            let _ = tx.send(Event::Dead(reason.clone()));
            return Ok((rx, false));
        }
        if t.consumers.contains_key(&id) {
            return Err(RemoteError::Decode(format!(
                "stream {id} is already open on this connection"
            )));
        }
        if t.consumers.len() >= MAX_STREAMS {
            return Err(RemoteError::Rejected(format!(
                "the peer already has {MAX_STREAMS} streams open toward this node"
            )));
        }
        t.consumers.insert(
            id,
            Inbound {
                tx: Some(tx),
                credit: u64::from(window),
            },
        );
        streams_open(1.0);
        Ok((rx, true))
    }

    /// Adds `items` to the credit of a stream still consumed here.
    pub(super) fn grant(&self, id: u64, items: u32) -> bool {
        match lock(&self.table).consumers.get_mut(&id) {
            Some(c) if c.tx.is_some() => {
                c.credit += u64::from(items);
                crate::observe::record::counter(
                    crate::observe::names::STREAM_CREDIT,
                    &[],
                    u64::from(items),
                );
                true
            }
            _ => false,
        }
    }

    /// Marks a consumed stream cancelled; true if a cancel must be sent.
    pub(super) fn cancel(&self, id: u64) -> bool {
        match lock(&self.table).consumers.get_mut(&id) {
            Some(c) if c.tx.is_some() => {
                c.tx = None;
                true
            }
            _ => false,
        }
    }

    /// Numbers a new stream produced here.
    pub(super) fn register(&self) -> Result<(u64, Arc<Outbound>), RemoteError> {
        let mut t = lock(&self.table);
        if let Some(reason) = &t.dead {
            return Err(RemoteError::Disconnected(reason.clone()));
        }
        if t.producers.len() >= MAX_STREAMS {
            return Err(RemoteError::Rejected(format!(
                "this side already produces {MAX_STREAMS} streams on the connection"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let p = Arc::new(Outbound::default());
        t.producers.insert(id, p.clone());
        streams_open(1.0);
        Ok((id, p))
    }

    pub(super) fn unregister(&self, id: u64) {
        if lock(&self.table).producers.remove(&id).is_some() {
            streams_open(-1.0);
        }
    }
}

/// Moves the gauge of streams open on this process's connections.
fn streams_open(delta: f64) {
    crate::observe::record::gauge_add(crate::observe::names::STREAMS_OPEN, &[], delta);
}
