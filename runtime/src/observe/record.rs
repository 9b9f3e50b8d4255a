//! Recording farcall's metrics (see [`super::names`]) through the
//! `metrics` facade; without the `telemetry` feature every function here
//! does nothing. The broker and the directory record theirs with these.

/// Whether a metrics recorder is installed (the process's, or a local one
/// on this thread). The facade's stand-in when none is, its no-op
/// recorder, is the one recorder without state: with it, farcall skips
/// building labels and reading the clock for metrics.
pub fn recording() -> bool {
    #[cfg(feature = "telemetry")]
    {
        metrics::with_recorder(|r| std::mem::size_of_val(r) > 0)
    }
    #[cfg(not(feature = "telemetry"))]
    false
}

/// Adds `n` to the counter `name`, labelled `labels`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn counter(name: &'static str, labels: &[(&'static str, &str)], n: u64) {
    #[cfg(feature = "telemetry")]
    if recording() {
        metrics::counter!(name, owned(labels)).increment(n);
    }
}

/// Moves the gauge `name` by `delta`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn gauge_add(name: &'static str, labels: &[(&'static str, &str)], delta: f64) {
    #[cfg(feature = "telemetry")]
    if recording() {
        metrics::gauge!(name, owned(labels)).increment(delta);
    }
}

/// Sets the gauge `name` to `value`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn gauge_set(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    #[cfg(feature = "telemetry")]
    if recording() {
        metrics::gauge!(name, owned(labels)).set(value);
    }
}

#[cfg(feature = "telemetry")]
fn owned(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
        .collect()
}

#[cfg(all(test, feature = "telemetry"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    /// Counts every increment of every counter.
    #[derive(Default)]
    struct Tally(Arc<Total>);

    #[derive(Default)]
    struct Total(AtomicU64);

    impl CounterFn for Total {
        fn increment(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn absolute(&self, _: u64) {}
    }

    impl Recorder for Tally {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.0.clone())
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn metrics_are_recorded_only_when_a_recorder_listens() {
        assert!(!super::recording(), "no recorder in this test binary");
        super::counter("farcall_test_total", &[], 5);
        let tally = Tally::default();
        metrics::with_local_recorder(&tally, || {
            assert!(super::recording());
            super::counter("farcall_test_total", &[("k", "v")], 2);
        });
        assert_eq!(tally.0.0.load(Ordering::Relaxed), 2);
    }
}
