//! The directory of farcall: late binding.
//!
//! A caller that does not know which object to invoke asks the directory
//! at run time, by name or by interface, and different objects may be
//! chosen at different times. The directory will be a remote object itself,
//! embedded in every node and runnable standalone; this crate is its home.
//! Nothing is implemented yet: see the project's issues for the plan.
#![warn(missing_docs)]
