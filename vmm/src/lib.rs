//! The kvmpager micro-VMM: runs a guest program on KVM with Zircon's user-pager model.
//!
//! Guest RAM and every VMO a guest maps are VMOs of the pager kernel (`kvmpager`); pages are
//! supplied on demand and moved zero-copy. Modules, one job each:
//! - [`config`]: what a VM is made of.
//! - [`layout`], [`boot`]: the guest-physical layout and boot-time CPU structures (pure).
//! - [`loader`]: ELF program loading (pure).
//! - [`memory`]: bounds-checked guest RAM access for hypercall handlers.
//! - [`aperture`]: aperture ranges and memslot book-keeping (pure).
//! - [`vm`]: one VM (KVM VM, RAM VMO, processes, stop state); [`host_pager`] serves lazy RAM.
//! - [`vcpu`]: vCPU threads; [`exit`]: what an exit means; [`hypercall`]: the guest ABI.
//! - [`console`]: console output and test reports; [`stats`]: the run summary.
#![warn(missing_docs)]

pub mod aperture;
pub mod boot;
pub mod config;
pub mod console;
pub mod exit;
pub mod guests;
pub mod host_pager;
pub mod hypercall;
pub mod kernel;
pub mod layout;
pub mod loader;
pub mod memory;
pub mod stats;
pub mod vcpu;
pub mod vm;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::VmConfig;
pub use console::TestReport;
pub use exit::StopReason;
pub use stats::Stats;

/// Errors that keep a VM from running (guest misbehaviour is a [`StopReason`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The VM could not be built.
    #[error(transparent)]
    Vm(#[from] vm::Error),
    /// A vCPU could not be created or started.
    #[error(transparent)]
    Vcpu(#[from] vcpu::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The outcome of running a VM.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The guest's exit code, if it called `Exit`.
    pub exit_code: Option<i64>,
    /// Why the VM stopped.
    pub stop: StopReason,
    /// Everything the guest wrote to the console.
    pub console: Vec<u8>,
    /// Test cases the guest reported.
    pub test_reports: Vec<TestReport>,
    /// Kernel and pager statistics.
    pub stats: Stats,
}

impl RunResult {
    /// The console output as text (lossy).
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&self.console).into_owned()
    }
}

/// How long stopping vCPUs may take before they are abandoned.
const VCPU_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the VM described by `config`, runs it until it stops, and reports the outcome.
pub fn run(config: &VmConfig) -> Result<RunResult> {
    vcpu::install_kick_handler()?;
    let vm = vm::Vm::new(config)?;
    let vcpus = (0..config.vcpus)
        .map(|i| vcpu::Vcpu::new(&vm, i))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut handles = Vec::new();
    for v in vcpus {
        match v.spawn() {
            Ok(h) => handles.push(h),
            Err(e) => {
                vm.request_stop(StopReason::Timeout);
                shut_down(&vm, handles);
                return Err(e.into());
            }
        }
    }
    let deadline = config.timeout.map(|t| Instant::now() + t);
    if vm.wait_stop(deadline).is_none() {
        vm.request_stop(StopReason::Timeout);
    }
    shut_down(&vm, handles);
    Ok(result(&vm))
}

/// Cancels blocking kernel calls, stops every vCPU thread and the host pager.
fn shut_down(vm: &Arc<vm::Vm>, handles: Vec<vcpu::VcpuHandle>) {
    vm.kill_processes();
    for h in handles {
        if !h.stop(VCPU_STOP_TIMEOUT) {
            log::error!("a vCPU thread did not stop within {VCPU_STOP_TIMEOUT:?}; abandoning it");
        }
    }
}

fn result(vm: &vm::Vm) -> RunResult {
    let stop = vm
        .wait_stop(Some(Instant::now()))
        .unwrap_or(StopReason::Timeout);
    let exit_code = match stop {
        StopReason::Exit(c) => Some(c),
        _ => None,
    };
    RunResult {
        exit_code,
        stop,
        console: vm.console().contents(),
        test_reports: vm.reports().all(),
        stats: Stats::collect(&vm.host().stats(), &vm.guest().stats()),
    }
}
