//! The pager kernel as the VMM sees it: the process API (`kvmpager::process`), mappings and
//! statistics, under the names the VMM modules use.

pub use kvmpager::process::{FatalFault, OverdueRequest, Process};
pub use kvmpager::stats::StatsSnapshot as Stats;
pub use kvmpager::vmo::Mapping;
