//! A source whose `next` is an async method, polled as a
//! `futures_core::Stream`: [`Polled`] keeps the future of the next item
//! (which owns the source meanwhile) across polls, so that dropping one
//! `next()` loses nothing and the next poll resumes it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of a source's next item; it gives the source back with it.
pub(crate) type Step<S, R> = Pin<Box<dyn Future<Output = (Box<S>, R)> + Send>>;

/// A source, either at rest or inside the future of its next item.
pub(crate) struct Polled<S: ?Sized, R> {
    source: Option<Box<S>>,
    step: Option<Step<S, R>>,
}

impl<S: ?Sized, R> Polled<S, R> {
    pub(crate) fn new(source: Box<S>) -> Self {
        Polled {
            source: Some(source),
            step: None,
        }
    }

    /// The source, unless a next item is on its way.
    pub(crate) fn at_rest(&mut self) -> Option<&mut S> {
        self.source.as_deref_mut()
    }

    /// The source, at rest or not: `None` only while a step is pending.
    pub(crate) fn source(&self) -> Option<&S> {
        self.source.as_deref()
    }

    /// Polls the pending step, first starting one with `start` if none
    /// is; the source is back at rest once it is ready.
    pub(crate) fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        start: impl FnOnce(Box<S>) -> Step<S, R>,
    ) -> Poll<R> {
        if self.step.is_none() {
            let source = self
                .source
                .take()
                .expect("a source at rest when no step is pending");
            self.step = Some(start(source));
        }
        let step = self.step.as_mut().expect("a pending step");
        match step.as_mut().poll(cx) {
            Poll::Ready((source, r)) => {
                self.step = None;
                self.source = Some(source);
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
