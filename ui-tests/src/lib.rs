//! Compile-time tests of `#[farcall::remote]`: `tests/ui.rs` runs the
//! trybuild cases in `tests/pass/` (must compile) and `tests/fail/` (must
//! fail with the error in the `.stderr` beside each case).
//!
//! Regenerate the expected errors with
//! `TRYBUILD=overwrite cargo test -p farcall-ui-tests`, then read them.
