//! Code shared by several guest programs in `src/bin/` (each program is its own ELF; this
//! library is linked into the ones that use it).
#![no_std]

pub mod conformance;
pub mod fatal;
pub mod handoff;
