//! Compile-time tests of `#[farcall::remote]` live in `tests/` as trybuild
//! cases (`pass/` and `fail/`); they arrive with the macro.
