//! One call as the node observes it: its span, its metrics, its timer.
//! Without the `telemetry` feature all of it compiles to nothing.

use std::fmt;
use std::future::Future;
#[cfg(feature = "telemetry")]
use std::time::Instant;

use super::Side;
use crate::id::{NodeId, ObjectId};
use crate::rmi::InterfaceDescriptor;
use crate::wire::Fault;

/// The interface and method names of `word` on an object served as `d`
/// (`"unknown"` for what this binary cannot name).
pub fn method_names(
    d: Option<&'static InterfaceDescriptor>,
    word: u64,
) -> (&'static str, &'static str) {
    let Some(d) = d else {
        return ("unknown", "unknown");
    };
    if let Some(m) = d.methods.iter().find(|m| m.word() == word) {
        return (d.name, m.name);
    }
    if word == crate::rmi::PROBE {
        return (d.name, "probe");
    }
    let inherited = crate::rmi::lineage(d.id)
        .into_iter()
        .skip(1)
        .filter_map(crate::rmi::find_interface)
        .find_map(|s| s.methods.iter().find(|m| m.word() == word));
    (d.name, inherited.map_or("unknown", |m| m.name))
}

/// One call under observation: its span, metrics and timer. The runtime
/// observes the calls it makes and serves; a crate that carries calls
/// another way (the broker's mediated RPC) observes those it serves with
/// this. Dropped before [`Observed::finish`], the call counts as
/// cancelled.
pub struct Observed {
    #[cfg(feature = "telemetry")]
    inner: Option<Inner>,
}

impl fmt::Debug for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

#[cfg(feature = "telemetry")]
struct Inner {
    span: tracing::Span,
    started: Instant,
    side: Side,
    interface: &'static str,
    method: &'static str,
    /// A metrics recorder was installed when the call started.
    recording: bool,
}

impl Observed {
    /// Starts observing a call of `interface.method` on `object`.
    #[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
    pub fn start(
        side: Side,
        interface: &'static str,
        method: &'static str,
        object: ObjectId,
        peer: Option<NodeId>,
    ) -> Observed {
        #[cfg(feature = "telemetry")]
        {
            let span = tracing::info_span!(
                target: "farcall::call",
                "farcall.call",
                otel.name = tracing::field::Empty,
                otel.kind = side.name(),
                otel.status_code = tracing::field::Empty,
                rpc.system = "farcall",
                rpc.service = interface,
                rpc.method = method,
                farcall.object = tracing::field::Empty,
                farcall.peer = tracing::field::Empty,
                farcall.outcome = tracing::field::Empty,
                farcall.duration_us = tracing::field::Empty,
            );
            let recording = super::record::recording();
            if !recording && span.is_disabled() {
                // Nobody listens: no clock, no labels.
                return Observed { inner: None };
            }
            if recording {
                let labels = [
                    ("side", side.name()),
                    ("interface", interface),
                    ("method", method),
                ];
                metrics::counter!(super::names::CALLS_STARTED, &labels).increment(1);
                metrics::gauge!(super::names::CALLS_IN_FLIGHT, &labels).increment(1.0);
            }
            if !span.is_disabled() {
                span.record("otel.name", format!("{interface}/{method}"));
                span.record("farcall.object", tracing::field::display(object));
                if let Some(p) = peer {
                    span.record("farcall.peer", tracing::field::display(p));
                }
            }
            Observed {
                inner: Some(Inner {
                    span,
                    started: Instant::now(),
                    side,
                    interface,
                    method,
                    recording,
                }),
            }
        }
        #[cfg(not(feature = "telemetry"))]
        Observed {}
    }

    /// The call's span, to run its work in (`None` without telemetry).
    #[cfg(feature = "telemetry")]
    pub fn span(&self) -> Option<&tracing::Span> {
        self.inner.as_ref().map(|i| &i.span)
    }

    /// Names the peer, once known (a client learns it from its connection).
    #[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
    pub fn peer(&self, peer: NodeId) {
        #[cfg(feature = "telemetry")]
        if let Some(i) = &self.inner
            && !i.span.is_disabled()
        {
            i.span.record("farcall.peer", tracing::field::display(peer));
        }
    }

    /// Runs `fut` inside the call's span.
    pub fn instrument<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        #[cfg(feature = "telemetry")]
        {
            use tracing::Instrument;
            let span = self.span().cloned().unwrap_or_else(tracing::Span::none);
            fut.instrument(span)
        }
        #[cfg(not(feature = "telemetry"))]
        fut
    }

    /// Takes the trace context in `metadata` (feature `otel`) as the
    /// parent of this call's span: the server's side of a call.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub fn adopt_parent(&self, metadata: &crate::Metadata) {
        #[cfg(feature = "otel")]
        super::otel::adopt_parent(self, metadata);
    }

    /// The call ended with `outcome`.
    #[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
    #[cfg_attr(not(feature = "telemetry"), allow(unused_mut))]
    pub fn finish(mut self, outcome: Result<(), &Fault>) {
        #[cfg(feature = "telemetry")]
        if let Some(i) = self.inner.take() {
            let label = match outcome {
                Ok(()) => "ok",
                Err(f) => super::names::fault_label(f),
            };
            i.end(label, outcome.err());
        }
    }
}

#[cfg(feature = "telemetry")]
impl Inner {
    fn end(self, outcome: &'static str, fault: Option<&Fault>) {
        let elapsed = self.started.elapsed();
        if self.recording {
            let labels = [
                ("side", self.side.name()),
                ("interface", self.interface),
                ("method", self.method),
            ];
            metrics::gauge!(super::names::CALLS_IN_FLIGHT, &labels).decrement(1.0);
            metrics::histogram!(super::names::CALL_DURATION, &labels).record(elapsed.as_secs_f64());
            let finished = [
                ("side", self.side.name()),
                ("interface", self.interface),
                ("method", self.method),
                ("outcome", outcome),
            ];
            metrics::counter!(super::names::CALLS_FINISHED, &finished).increment(1);
        }
        if !self.span.is_disabled() {
            self.span.record("farcall.outcome", outcome);
            self.span
                .record("farcall.duration_us", elapsed.as_micros() as u64);
            self.span.record(
                "otel.status_code",
                if fault.is_some() { "ERROR" } else { "OK" },
            );
            if let Some(f) = fault {
                let _enter = self.span.enter();
                tracing::debug!(target: "farcall::call", error = %f, "the call failed");
            }
        }
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        #[cfg(feature = "telemetry")]
        if let Some(i) = self.inner.take() {
            i.end("cancelled", None);
        }
    }
}
