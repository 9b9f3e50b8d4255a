//! [`Topic`]: each message to every subscriber, and what it hands out.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use serde::Serialize;

use super::{Broker, Decode};
use crate::backend::{MessageSource, Subject};
use crate::error::BrokerError;
use crate::polled::Polled;

/// What a subscription's source gives next: a message and its subject.
type NextMessage = Result<Option<(Subject, Bytes)>, BrokerError>;

/// A typed handle to publish messages of type `T` on one subject.
pub struct Topic<T> {
    pub(super) broker: Broker,
    pub(super) subject: String,
    pub(super) _t: PhantomData<fn(T)>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            broker: self.broker.clone(),
            subject: self.subject.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("subject", &self.subject)
            .finish()
    }
}

impl<T: Serialize> Topic<T> {
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Publishes `msg` on the subject.
    pub async fn publish(&self, msg: &T) -> Result<(), BrokerError> {
        self.broker.publish(&self.subject, msg).await
    }
}

/// A message received on a subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Message<T> {
    /// The subject it was published on.
    pub subject: String,
    /// The message.
    pub body: T,
}

/// The messages published on subjects matching a pattern. Dropping it
/// unsubscribes.
pub struct Subscription<T> {
    pub(super) source: Polled<dyn MessageSource, NextMessage>,
    /// What the source said last of the messages it dropped.
    pub(super) dropped: u64,
    pub(super) decode: Decode<T>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("source", &self.source.source())
            .finish()
    }
}

impl<T> Subscription<T> {
    /// The next message; `None` once the subscription ended. An error
    /// item: a message that does not decode as `T` (the subscription goes
    /// on), or the end of a subscriber cut off as slow.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future before it completes (in
    /// `tokio::select!`, say) loses no message; the next call (or poll,
    /// as a `futures_core::Stream`) gets it.
    pub async fn next(&mut self) -> Option<Result<Message<T>, BrokerError>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message<T>, BrokerError>>> {
        // A message already here is taken without a future.
        let here = self.source.at_rest().and_then(|s| s.try_next());
        let got = match here {
            Some(m) => Ok(Some(m)),
            None => ready!(self.source.poll_step(cx, |mut source| {
                Box::pin(async move {
                    let got = source.next().await;
                    (source, got)
                })
            })),
        };
        if let Some(source) = self.source.source() {
            self.dropped = source.dropped();
        }
        Poll::Ready(match got {
            Ok(Some((subject, payload))) => Some((self.decode)(&payload).map(|body| Message {
                subject: subject.into_string(),
                body,
            })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// Messages dropped from this subscription's buffer because it fell
    /// behind (policy [`SlowPolicy::DropOldest`](crate::SlowPolicy::DropOldest)).
    /// The buffer of a remote broker's subscriber is at the broker: its
    /// count arrives with the messages that follow a drop.
    pub fn dropped(&self) -> u64 {
        self.source.source().map_or(self.dropped, |s| s.dropped())
    }
}

/// A subscription is a `futures_core::Stream` of its messages, the same
/// as [`Subscription::next`] gives.
impl<T> futures_core::Stream for Subscription<T> {
    type Item = Result<Message<T>, BrokerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}
