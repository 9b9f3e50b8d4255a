//! A stream as it travels inside a payload: encoding numbers it on the
//! connection, decoding claims it.

use super::*;

/// A stream as it travels: the producer's number for it on this
/// connection, and the credit window it asks for.
#[derive(Serialize, Deserialize)]
pub(super) struct WireStream {
    pub(super) id: u64,
    pub(super) window: u32,
}

impl<T: Serialize + Send + 'static> Serialize for Stream<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::rmi::scope::refuse_if_carried("a farcall::Stream")?;
        let Some(target) = encode_target() else {
            return Err(encode_failure(RemoteError::Encode(
                "a farcall::Stream can only be sent as an argument or a result of a remote method"
                    .into(),
            )));
        };
        let mut slot = lock(&self.source);
        if matches!(*slot, Source::Sent) {
            return Err(encode_failure(RemoteError::Encode(
                "this stream was sent already".into(),
            )));
        }
        let id = match target {
            Some(conn) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Err(encode_failure(RemoteError::Encode(
                        "a stream can only be sent from within a tokio runtime".into(),
                    )));
                };
                let (id, out) = conn.streams().register().map_err(encode_failure)?;
                let source = std::mem::replace(&mut *slot, Source::Sent);
                runtime.spawn(pump(conn, id, out, source));
                id
            }
            None => local::put(std::mem::replace(&mut *slot, Source::Sent)),
        };
        drop(slot);
        WireStream {
            id,
            window: self.window,
        }
        .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Stream<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireStream::deserialize(d)?;
        let window = w.window.clamp(1, MAX_WINDOW);
        with_scope(|scope| {
            let Some(scope) = scope else {
                return Err(serde::de::Error::custom(
                    "a farcall::Stream can only be decoded by farcall's runtime",
                ));
            };
            let r = match &scope.connection {
                Some(conn) => claim::<T>(conn, w.id, window),
                None => local::take::<T>(w.id),
            };
            r.map(|source| Stream::from_source(source, window))
                .map_err(|e| {
                    let msg = e.to_string();
                    scope.failure.get_or_insert(e);
                    serde::de::Error::custom(msg)
                })
        })
    }
}

/// Takes on a stream the peer produces: registers it and grants the
/// first credit.
pub(super) fn claim<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    id: u64,
    window: u32,
) -> Result<Source<T>, RemoteError> {
    let (rx, open) = conn.streams().claim(id, window)?;
    if open {
        let _ = conn.send_control(&Frame::StreamCredit {
            stream: id,
            items: window,
        });
    }
    Ok(Source::Wire(Consumer {
        conn: conn.clone(),
        id,
        rx,
        window,
        unacked: 0,
        ended: false,
        decode: decode_item::<T>,
    }))
}

/// Streams handed to an object of this very node: no connection, no
/// credit; the receiver takes the source itself.
mod local {
    use super::*;

    type Parked = Box<dyn Any + Send>;

    static PARKED: LazyLock<Mutex<HashMap<u64, Parked>>> = LazyLock::new(Default::default);
    static NEXT: AtomicU64 = AtomicU64::new(1);

    pub(super) fn put<T: Send + 'static>(source: Source<T>) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        lock(&PARKED).insert(id, Box::new(source));
        // A payload that is never decoded (its call abandoned) must not
        // keep the source forever.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(CLAIM_TIMEOUT).await;
                lock(&PARKED).remove(&id);
            });
        }
        id
    }

    pub(super) fn take<T: 'static>(id: u64) -> Result<Source<T>, RemoteError> {
        let parked = lock(&PARKED).remove(&id).ok_or_else(|| {
            RemoteError::Decode(format!("no stream {id} was handed over on this node"))
        })?;
        parked
            .downcast::<Source<T>>()
            .map(|b| *b)
            .map_err(|_| RemoteError::Decode(format!("stream {id} has another item type")))
    }
}
