//! The pager kernel as the VMM sees it: the process API (`kvmpager::process`), mappings and
//! statistics, under the names the VMM modules use.

pub use kvmpager::account::FatalFault;
pub use kvmpager::counters::CounterValues;
pub use kvmpager::process::Process;
pub use kvmpager::request::OverdueRequest;
pub use kvmpager::vmo::Mapping;

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
