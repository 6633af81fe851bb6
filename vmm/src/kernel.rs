//! The pager kernel as the VMM sees it: the process API (`kvmpager::process`), mappings and
//! statistics, under the names the VMM modules use.

pub use kvmpager::account::FatalFault;
pub use kvmpager::process::Process;
pub use kvmpager::request::OverdueRequest;
pub use kvmpager::stats::StatsSnapshot as Stats;
pub use kvmpager::vmo::Mapping;
