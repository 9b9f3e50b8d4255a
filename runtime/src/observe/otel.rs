//! W3C trace context in call metadata (feature `otel`): the client's span
//! context goes out as `traceparent` (and `tracestate`), and the server's
//! span takes what comes in as its parent. The two headers are written and
//! read here by hand (their format is a line of hex), so that the runtime
//! needs only the OpenTelemetry API and `tracing-opentelemetry`, not an
//! SDK.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Observed;
use crate::metadata::Metadata;

/// The W3C `traceparent` of `sc`.
fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{:032x}-{:016x}-{:02x}",
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
        sc.trace_flags().to_u8()
    )
}

/// The span context a `traceparent` (and `tracestate`) names, if valid.
fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if !hex(version, 2) || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace = TraceId::from_bytes(u128::from_str_radix(trace, 16).ok()?.to_be_bytes());
    let span = SpanId::from_bytes(u64::from_str_radix(span, 16).ok()?.to_be_bytes());
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & 1);
    let state = tracestate
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let sc = SpanContext::new(trace, span, flags, true, state);
    sc.is_valid().then_some(sc)
}

/// Writes the context of the call's span into `m`, if it has one.
pub(crate) fn inject(observed: &Observed, m: &mut Metadata) {
    let Some(span) = observed.span().filter(|s| !s.is_disabled()) else {
        return;
    };
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return;
    }
    let _ = m.insert("traceparent", traceparent(&sc));
    let state = sc.trace_state().header();
    if !state.is_empty() {
        let _ = m.insert("tracestate", state);
    }
}

/// Makes the context `m` carries the parent of the call's span.
pub(crate) fn adopt_parent(observed: &Observed, m: &Metadata) {
    let Some(span) = observed.span().filter(|s| !s.is_disabled()) else {
        return;
    };
    let Some(sc) = m
        .get_str("traceparent")
        .and_then(|tp| parse(tp, m.get_str("tracestate")))
    else {
        return;
    };
    let _ = span.set_parent(Context::new().with_remote_span_context(sc));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let sc = parse(tp, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(traceparent(&sc), tp);
        assert_eq!(sc.trace_state().header(), "congo=t61rcWkgMzE");
        assert!(sc.is_remote() && sc.is_sampled());
    }

    #[test]
    fn bad_traceparents_are_ignored() {
        for tp in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-xyz7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert!(parse(tp, None).is_none(), "{tp}");
        }
    }
}
