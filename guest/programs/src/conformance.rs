//! The pager conformance suite, split the way Zircon splits its pager tests; the
//! `conformance` program (`src/bin/conformance.rs`) registers the topics and runs them.
//!
//! - [`fixtures`]: Zircon's `userpager.{h,cc}` — a pager, a port and a pager VMO ([`Fx`]), the
//!   keyed page contents and their checks, aux VMOs, SUPPLY/FAIL on raw handles, page-request
//!   packets byte for byte, aperture mappings, bad handles.
//! - [`jobs`]: Zircon's `test_thread.{h,cc}` — jobs on other vCPUs (per-vCPU mailboxes,
//!   [`spawn`]/[`join`]) and the parameters a case publishes for them ([`SH`]).
//! - [`topics`]: the cases, one file per feature (the seed's SUPPLY contract, Zircon §4.1,
//!   §4.2/§4.5, blocked accessors, guest pointers), each with its `CASES` in order.
//! - here: the suite's constants and clock helpers (deadlines, naps), which all of them use.
//!
//! [`Fx`]: fixtures::Fx
//! [`spawn`]: jobs::spawn
//! [`join`]: jobs::join
//! [`SH`]: jobs::SH

use core::sync::atomic::{AtomicU32, Ordering};

use rt::Status;
use rt::abi::PAGE_SIZE;
use rt::sys::{self, Handle};

pub mod fixtures;
pub mod jobs;
pub mod topics;

/// One page, as a `u64` (offsets and lengths).
pub const PAGE: u64 = PAGE_SIZE;
/// One page, as a `usize` (buffer sizes).
pub const PAGE_US: usize = PAGE_SIZE as usize;
/// Most vCPUs with a mailbox.
pub const MAX_CPUS: usize = 32;
/// How long a pager waits for a packet it expects.
pub const PACKET_WAIT_MS: i64 = 5_000;
/// How long "no packet" is waited for.
pub const NO_PACKET_MS: i64 = 20;
/// How long a pager gives an accessor to block before it acts without reading the port.
pub const BLOCK_DELAY_MS: i64 = 30;
/// How long vCPU 0 waits for a job on another vCPU.
pub const JOIN_MS: i64 = 20_000;

/// A port nothing is ever queued on: `PortWait` on it with a deadline is a sleep.
static NAP_PORT: AtomicU32 = AtomicU32::new(0);

fn nap_port() -> Handle {
    let h = NAP_PORT.load(Ordering::Acquire);
    if h != 0 {
        return Handle(h);
    }
    let new = sys::port_create(0).unwrap_or(Handle::INVALID);
    match NAP_PORT.compare_exchange(0, new.0, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => new,
        Err(existing) => {
            let _ = new.close();
            Handle(existing)
        }
    }
}

/// Sleeps about `ns` nanoseconds in the host (the vCPU thread blocks in `PortWait`).
pub fn nap_ns(ns: i64) {
    let port = nap_port();
    let deadline = sys::clock_monotonic() + ns;
    if port == Handle::INVALID || sys::port_wait(port, deadline) != Err(Status::ERR_TIMED_OUT) {
        while sys::clock_monotonic() < deadline {
            core::hint::spin_loop();
        }
    }
}

/// Sleeps about `ms` milliseconds (see [`nap_ns`]).
pub fn nap_ms(ms: i64) {
    nap_ns(ms * 1_000_000);
}

/// The monotonic clock `ms` milliseconds from now, for `PortWait` and bounded spins.
pub fn deadline_ms(ms: i64) -> i64 {
    sys::clock_monotonic() + ms * 1_000_000
}
