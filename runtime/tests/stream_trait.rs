//! `Stream<T>` as a `futures_core::Stream`, and built from one.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use farcall_runtime::{RemoteError, Stream};

/// The next item of any `futures_core::Stream`, polled by hand.
async fn next_of<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Counts down from `n`, waiting a turn of the executor between items.
struct Countdown {
    n: u32,
    yielded: bool,
}

impl futures_core::Stream for Countdown {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        if self.n == 0 {
            return Poll::Ready(None);
        }
        self.n -= 1;
        Poll::Ready(Some(self.n + 1))
    }
}

#[tokio::test]
async fn a_stream_is_a_futures_stream() {
    let mut s = Stream::iter([1, 2]);
    assert_eq!(next_of(&mut s).await, Some(Ok(1)));
    assert_eq!(next_of(&mut s).await, Some(Ok(2)));
    assert_eq!(next_of(&mut s).await, None);

    let (tx, mut s) = Stream::channel(1);
    tokio::spawn(async move {
        tx.send("a").await.unwrap();
        tx.fail(RemoteError::Rejected("no more".into()));
    });
    assert_eq!(next_of(&mut s).await, Some(Ok("a")));
    assert!(matches!(
        next_of(&mut s).await,
        Some(Err(RemoteError::Rejected(_)))
    ));
    assert_eq!(next_of(&mut s).await, None);
}

#[tokio::test]
async fn a_stream_is_built_from_any_futures_stream() {
    let mut s = Stream::from_stream(Countdown {
        n: 3,
        yielded: false,
    });
    let mut got = Vec::new();
    while let Some(item) = s.next().await {
        got.push(item.unwrap());
    }
    assert_eq!(got, [3, 2, 1]);
    assert_eq!(s.next().await, None);
}

#[farcall_macros::remote(crate = "::farcall_runtime")]
pub trait Counter {
    async fn count_down(&self, from: u32) -> Result<Stream<u32>, RemoteError>;
}

struct Server;

#[farcall_macros::remote(crate = "::farcall_runtime")]
impl Counter for Server {
    async fn count_down(&self, from: u32) -> Result<Stream<u32>, RemoteError> {
        Ok(Stream::from_stream(Countdown {
            n: from,
            yielded: false,
        }))
    }
}

/// A stream built from a `futures_core::Stream` travels as a result like
/// any other, and arrives as one.
#[tokio::test]
async fn a_stream_from_a_futures_stream_crosses_a_connection() {
    use farcall_runtime::{Node, Remote};

    let server = Node::listen("mem://stream-trait").await.unwrap();
    let _served: Remote<dyn Counter> = server.serve("counter", Server);
    let client = Node::new();
    let counter: Remote<dyn Counter> = client
        .connect_service(server.local_addr().unwrap(), "counter")
        .await
        .unwrap();
    let mut s = counter.count_down(4).await.unwrap();
    let mut got = Vec::new();
    while let Some(item) = next_of(&mut s).await {
        got.push(item.unwrap());
    }
    assert_eq!(got, [4, 3, 2, 1]);
}
