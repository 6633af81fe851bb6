//! Code shared by the guest programs in `src/bin/` (each program is its own ELF; this library
//! is linked into the ones that use it):
//!
//! - [`conformance`]: the pager conformance suite's fixtures, jobs and topics (the program is
//!   `src/bin/conformance.rs`).
//! - [`fatal`]: the fatal-fault guests (`fatal_*`).
//! - [`handoff`]: hands the pager, pager-VMO and port handles from vCPU 0 to the pager vCPU.
//! - [`rng`]: the xorshift64* generator of `garbage` and `soak`.
#![no_std]
#![warn(missing_docs)]

pub mod conformance;
pub mod fatal;
pub mod handoff;
pub mod rng;
