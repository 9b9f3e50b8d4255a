//! Procedural macros of farcall.
//!
//! This crate will hold `#[farcall::remote]`, which turns a trait into a
//! remote interface (stub, dispatcher, request/response types, interface
//! descriptor). It is structured as parse → validate → expand, one module
//! each. Until that lands, the crate is empty; use it through the
//! `farcall` facade, never directly.
