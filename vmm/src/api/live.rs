//! [`Control`] for a running [`Vm`]: what each action reads from or asks of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvmpager::abi::packet::ZX_PAGER_VMO_DIRTY;

use super::action::Control;
use super::metrics::{self, MetricsReading};
use super::wire::{
    API_VERSION, PageRequestInfo, PagerVmoInfo, PagersInfo, Then, VcpuState, VmInfo, VmSettings,
    VmState,
};
use crate::config::{SnapshotThen, VmConfig};
use crate::exit::StopReason;
use crate::kernel::{OverdueRequest, PagerVmoRequests};
use crate::summary::RunSummary;
use crate::vm::{VcpuActivity, Vm};

/// How long `PUT /snapshot` waits for the runner to write the snapshot.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(600);

/// The running VM and the settings it was started with.
pub struct LiveVm {
    vm: Arc<Vm>,
    settings: VmSettings,
    fault_timeout: Option<Duration>,
    snapshot_dir: Option<PathBuf>,
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_millis() as u64)
}

impl LiveVm {
    /// `vm`, started with `cfg` (`restored_from`: the snapshot it resumes, if any).
    pub fn new(vm: Arc<Vm>, cfg: &VmConfig, restored_from: Option<&std::path::Path>) -> LiveVm {
        let settings = VmSettings {
            vcpus: vm.vcpus(),
            memory_bytes: vm.ram().size(),
            lazy_ram: vm.pager_counters().is_some(),
            restored_from: restored_from.map(|p| p.display().to_string()),
            image: cfg.image.as_ref().map(|p| p.display().to_string()),
            supply: format!("{:?}", cfg.supply).to_lowercase(),
            readahead_bytes: cfg.readahead,
            huge_pages: cfg.huge_pages,
            snapshot_dir: cfg.snapshot.as_ref().map(|s| s.dir.display().to_string()),
            timeout_ms: ms(cfg.timeout),
            fault_timeout_ms: ms(cfg.fault_timeout),
        };
        LiveVm {
            vm,
            settings,
            fault_timeout: cfg.fault_timeout,
            snapshot_dir: cfg.snapshot.as_ref().map(|s| s.dir.clone()),
        }
    }

    fn state(&self, vcpus: &[VcpuState]) -> VmState {
        if self.vm.stopping() {
            VmState::Stopped
        } else if !self.vm.held() {
            VmState::Running
        } else if vcpus.iter().all(|v| *v == VcpuState::Parked) {
            VmState::Paused
        } else {
            VmState::Pausing
        }
    }

    fn vcpus(&self) -> Vec<VcpuState> {
        let map = |a| match a {
            VcpuActivity::Running => VcpuState::Running,
            VcpuActivity::InHypercall => VcpuState::InHypercall,
            VcpuActivity::Parked => VcpuState::Parked,
            VcpuActivity::Faulted => VcpuState::Faulted,
        };
        self.vm.vcpu_activity().into_iter().map(map).collect()
    }

    fn uptime_ns(&self) -> u64 {
        self.vm.uptime().as_nanos() as u64
    }

    fn request(&self, r: &OverdueRequest) -> PageRequestInfo {
        PageRequestInfo {
            command: if r.command == ZX_PAGER_VMO_DIRTY {
                "DIRTY"
            } else {
                "READ"
            }
            .into(),
            offset: r.offset,
            len: r.len,
            guest_physical: self.vm.guest_physical(r.vmo_koid, r.offset),
            age_ms: r.waited.as_millis() as u64,
            faulting: r.faulting,
            overdue: self.fault_timeout.is_some_and(|t| r.waited >= t),
        }
    }

    fn vmo(&self, pager: &str, v: PagerVmoRequests) -> PagerVmoInfo {
        PagerVmoInfo {
            pager: pager.into(),
            vmo_koid: v.vmo_koid,
            size: v.size,
            requests: v.requests.iter().map(|r| self.request(r)).collect(),
        }
    }
}

impl Control for LiveVm {
    fn info(&self) -> VmInfo {
        let vcpus = self.vcpus();
        let state = self.state(&vcpus);
        let stop_reason = self
            .vm
            .wait_stop(Some(Instant::now()))
            .map(|r| self.vm.locate_stop(r).to_string());
        VmInfo {
            api_version: API_VERSION,
            state,
            stop_reason,
            vcpus,
            memory_bytes: self.vm.ram().size(),
            uptime_ns: self.uptime_ns(),
            pid: std::process::id(),
            config: self.settings.clone(),
        }
    }

    fn pause(&self) {
        self.vm.hold();
    }

    fn resume(&self) {
        self.vm.resume();
    }

    fn stop(&self) {
        self.vm.request_stop(StopReason::Requested);
    }

    fn snapshot(&self, dir: PathBuf, then: Then) -> Result<u64, String> {
        let then = match then {
            Then::Continue => SnapshotThen::Continue,
            Then::Stop => SnapshotThen::Stop,
        };
        let rx = self.vm.request_snapshot_to(dir, then);
        match rx.recv_timeout(SNAPSHOT_WAIT) {
            Ok(Ok(w)) => Ok(w.ram_data_bytes),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the VM stopped before the snapshot was written".into()),
        }
    }

    fn default_snapshot_dir(&self) -> Option<PathBuf> {
        self.snapshot_dir.clone()
    }

    fn stats(&self) -> RunSummary {
        crate::stats(&self.vm)
    }

    fn pagers(&self) -> PagersInfo {
        let host = self.vm.host().pager_vmos();
        let guest = self.vm.guest().pager_vmos();
        let mut vmos: Vec<_> = host.into_iter().map(|v| self.vmo("host", v)).collect();
        vmos.extend(guest.into_iter().map(|v| self.vmo("guest", v)));
        PagersInfo {
            api_version: API_VERSION,
            fault_timeout_ms: ms(self.fault_timeout),
            vmos,
        }
    }

    fn metrics(&self) -> MetricsReading {
        // Counter totals only: no latency samples are copied and no percentile is computed.
        let mut k = self.vm.host().counter_totals();
        k.merge(&self.vm.guest().counter_totals());
        let mut totals = RunSummary {
            faults: k.faults,
            requests: k.requests,
            pages_supplied: k.pages_supplied,
            bytes_moved: k.bytes_moved,
            bytes_copied: k.bytes_copied,
            bytes_remapped: k.bytes_remapped,
            ..Default::default()
        };
        if let Some(c) = self.vm.pager_counters() {
            totals.add_pager(c);
        }
        let latency = k.latency_histogram;
        let (outstanding, oldest) = self.outstanding();
        MetricsReading {
            state: Some(self.state(&self.vcpus())),
            uptime_ns: self.uptime_ns(),
            vcpus: self.vm.vcpus(),
            memory_bytes: self.vm.ram().size(),
            totals,
            latency,
            outstanding_requests: outstanding,
            oldest_request_ns: oldest,
            rss_bytes: metrics::rss_bytes(),
        }
    }
}

impl LiveVm {
    /// Outstanding page requests now, and the oldest one's age (ns).
    fn outstanding(&self) -> (u64, u64) {
        let all = [self.vm.host().pager_vmos(), self.vm.guest().pager_vmos()];
        let requests = all.iter().flatten().flat_map(|v| &v.requests);
        requests.fold((0, 0), |(n, oldest), r| {
            (n + 1, oldest.max(r.waited.as_nanos() as u64))
        })
    }
}
