//! The channel behind `Stream::channel`: a bounded queue its sender fills.

use super::*;

#[derive(Default)]
pub(super) struct ChannelShared {
    /// Set by [`StreamSender::fail`]: the last item.
    pub(super) failure: Mutex<Option<RemoteError>>,
    /// Why the consumer went away, for the sender's errors.
    pub(super) closed: Mutex<Option<RemoteError>>,
}

pub(super) struct ChannelRx<T> {
    pub(super) rx: mpsc::Receiver<T>,
    pub(super) shared: Arc<ChannelShared>,
}

impl<T> ChannelRx<T> {
    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, RemoteError>>> {
        Poll::Ready(match ready!(self.rx.poll_recv(cx)) {
            Some(v) => Some(Ok(v)),
            None => lock(&self.shared.failure).take().map(Err),
        })
    }
}

impl<T> Drop for ChannelRx<T> {
    fn drop(&mut self) {
        lock(&self.shared.closed).get_or_insert(RemoteError::Closed);
    }
}

/// The producer's end of [`Stream::channel`].
pub struct StreamSender<T> {
    pub(super) tx: mpsc::Sender<T>,
    pub(super) shared: Arc<ChannelShared>,
}

impl<T> fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("item", &std::any::type_name::<T>())
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl<T> StreamSender<T> {
    /// Sends one item, waiting while the channel is full (that is, while
    /// the consumer has no credit to give). Fails once the consumer is
    /// gone: it dropped the stream ([`RemoteError::Closed`]), or the
    /// connection died ([`RemoteError::Disconnected`]); the item is lost.
    pub async fn send(&self, item: T) -> Result<(), RemoteError> {
        self.tx.send(item).await.map_err(|_| self.why_closed())
    }

    /// Ends the stream with an error item, after the items already sent.
    pub fn fail(self, error: RemoteError) {
        *lock(&self.shared.failure) = Some(error);
    }

    /// Whether the consumer is gone (a `send` would fail).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the consumer is gone, and says why.
    pub async fn closed(&self) -> RemoteError {
        self.tx.closed().await;
        self.why_closed()
    }

    pub(super) fn why_closed(&self) -> RemoteError {
        lock(&self.shared.closed)
            .clone()
            .unwrap_or(RemoteError::Closed)
    }
}
