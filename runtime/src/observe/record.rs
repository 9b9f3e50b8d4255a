//! Recording farcall's metrics (see [`super::names`]) through the
//! `metrics` facade; without the `telemetry` feature every function here
//! does nothing. The broker and the directory record theirs with these.

/// Adds `n` to the counter `name`, labelled `labels`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn counter(name: &'static str, labels: &[(&'static str, &str)], n: u64) {
    #[cfg(feature = "telemetry")]
    metrics::counter!(name, owned(labels)).increment(n);
}

/// Moves the gauge `name` by `delta`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn gauge_add(name: &'static str, labels: &[(&'static str, &str)], delta: f64) {
    #[cfg(feature = "telemetry")]
    metrics::gauge!(name, owned(labels)).increment(delta);
}

/// Sets the gauge `name` to `value`.
#[cfg_attr(not(feature = "telemetry"), allow(unused_variables))]
pub fn gauge_set(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    #[cfg(feature = "telemetry")]
    metrics::gauge!(name, owned(labels)).set(value);
}

#[cfg(feature = "telemetry")]
fn owned(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
        .collect()
}
