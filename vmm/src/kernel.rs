//! The pager kernel as the VMM sees it: every kernel type a VMM module uses (the process API,
//! VMOs and their mappings, limits, counters, fatal faults) comes through here, plus the one
//! `kernel(call)` helper that turns a failing kernel call into an error naming the call. The
//! ABI (`kvmpager::abi`) is used directly, as guests use it. Only the bench's raw baselines
//! reach below the kernel (`kvmpager::hostmem`, `kvmpager::uffd`), on purpose: they measure
//! the bare mechanisms.

pub use kvmpager::account::{FatalFault, Limits, MAX_UNREAD_PACKETS};
pub use kvmpager::counters::{CounterValues, LATENCY_BUCKETS_NS, LatencyHistogram};
pub use kvmpager::fault::pin_pthread;
pub use kvmpager::hostmem::RegionUsage;
pub use kvmpager::process::Process;
pub use kvmpager::request::{OverdueRequest, PagerVmoRequests};
pub use kvmpager::vmo::{Mapping, SupplyStrategy, Vmo};

use kvmpager::abi::Status;
use kvmpager::abi::status::name;

/// A kernel call the VMM made for itself failed (building a VM, serving lazy RAM): which
/// call, and the status it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed: {}", name(*.status))]
pub struct CallFailed {
    /// Which call.
    pub call: &'static str,
    /// Its status.
    pub status: Status,
}

/// `result.map_err(kernel("zx_vmo_create"))`: names the call a failing status came from.
pub fn kernel(call: &'static str) -> impl FnOnce(Status) -> CallFailed {
    move |status| CallFailed { call, status }
}
