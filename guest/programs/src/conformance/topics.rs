//! The conformance cases, one file per feature, as Zircon groups its pager tests (`pager.cc`,
//! then `snapshot.cc` for clones and `pager-writeback/` for writeback). Each topic exports its
//! cases in order as `CASES`; the `conformance` program (`src/bin/conformance.rs`) runs the
//! topics in its `TOPICS` order.
//!
//! | topic | cases |
//! |---|---|
//! | [`seed`] | the seed's SUPPLY contract, one violation at a time, then the good supplies |
//! | [`validation`] | Zircon §4.1: errors and API validation |
//! | [`detach_close`] | Zircon §4.2/§4.5 on one vCPU: supply semantics, detach, close |
//! | [`blocked`] | blocked accessors on vCPU 0, a pager job on vCPU 1 (FAIL, detach, close) |
//! | [`pointers`] | the ABI's bad guest pointers through the real hypercall path |
//! | [`clones`] | Zircon §4.6 / `snapshot.cc`: copy-on-write clones of pager VMOs |
//! | [`api_gaps`] | issue 15: set_size, eviction hints, dirty/stats queries, ClosePager, exception packets (last: it parks a vCPU) |
//!
//! A new topic (clones, writeback) is one more file here and one more line in `TOPICS`. The
//! case functions are private to their topic, so one left out of `CASES` is dead code and the
//! compiler says so.
//!
//! The topics are in the library rather than in `src/bin/conformance/`: a bin's crate root
//! looks for its `mod` files in `src/bin/` itself, where `vmm/build.rs` would take every
//! `*.rs` file for a guest program of its own (a `#[path]` per topic would avoid that, at the
//! price of a trap for the next topic).

pub mod api_gaps;
pub mod blocked;
pub mod clones;
pub mod detach_close;
pub mod pointers;
pub mod seed;
pub mod validation;
