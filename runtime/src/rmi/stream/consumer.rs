//! The consuming end of a stream that arrived on a connection.

use super::*;

pub(super) enum Event {
    Item(Bytes),
    End(Option<Fault>),
    Dead(String),
}

/// The consumer of a stream produced at the other end of `conn`.
pub(super) struct Consumer<T> {
    pub(super) conn: Connection,
    pub(super) id: u64,
    pub(super) rx: mpsc::UnboundedReceiver<Event>,
    pub(super) window: u32,
    /// Items consumed since credit was last granted.
    pub(super) unacked: u32,
    pub(super) ended: bool,
    pub(super) decode: fn(&Connection, &[u8]) -> Result<T, RemoteError>,
}

pub(super) fn decode_item<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    bytes: &[u8],
) -> Result<T, RemoteError> {
    decode_in(conn.node().as_ref(), Some(conn), bytes)
}

impl<T> Consumer<T> {
    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, RemoteError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let event = ready!(self.rx.poll_recv(cx));
        Poll::Ready(match event {
            Some(Event::Item(bytes)) => {
                self.unacked += 1;
                if self.unacked >= (self.window / 2).max(1) {
                    let items = std::mem::take(&mut self.unacked);
                    if self.conn.streams().grant(self.id, items) {
                        let _ = self.conn.send_control(&Frame::StreamCredit {
                            stream: self.id,
                            items,
                        });
                    }
                }
                match (self.decode)(&self.conn, &bytes) {
                    Ok(v) => Some(Ok(v)),
                    Err(e) => {
                        self.cancel();
                        Some(Err(e))
                    }
                }
            }
            Some(Event::End(fault)) => {
                self.ended = true;
                // The end of a stream answers no call: a `NoSuchMethod`
                // there names none.
                fault.map(|f| Err(RemoteError::from_fault(f, "")))
            }
            Some(Event::Dead(reason)) => {
                self.ended = true;
                Some(Err(RemoteError::Disconnected(reason)))
            }
            None => {
                self.ended = true;
                Some(Err(RemoteError::Disconnected("connection lost".into())))
            }
        })
    }

    pub(super) fn cancel(&mut self) {
        self.ended = true;
        if self.conn.streams().cancel(self.id) {
            let _ = self
                .conn
                .send_control(&Frame::StreamCancel { stream: self.id });
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        if !self.ended {
            self.cancel();
        }
    }
}
