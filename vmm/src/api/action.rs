//! What a client can ask of a VM, independent of the transport: [`VmAction`] in, a
//! [`VmResponse`] or an [`ActionError`] out, executed by [`execute`] against anything that
//! implements [`Control`] (the running VM in `live.rs`; a fake in the tests below).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::metrics::MetricsReading;
use super::wire::{PagersInfo, SnapshotDone, SnapshotRequest, Then, VcpuState, VmInfo, VmState};
use crate::summary::RunSummary;

/// How long `PUT /vm/pause` waits for every vCPU to park before it answers `pausing`.
pub const PAUSE_SETTLE: Duration = Duration::from_secs(2);

/// One request, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmAction {
    /// `GET /vm`.
    GetVm,
    /// `PUT /vm/pause`.
    Pause,
    /// `PUT /vm/resume`.
    Resume,
    /// `PUT /vm/stop`.
    Stop,
    /// `PUT /snapshot`.
    Snapshot(SnapshotRequest),
    /// `GET /stats`.
    GetStats,
    /// `GET /pagers`.
    GetPagers,
    /// `GET /metrics`.
    GetMetrics,
}

/// What an action answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmResponse {
    /// The VM (`GET /vm`, pause, resume, stop).
    Vm(VmInfo),
    /// A snapshot was written.
    Snapshot(SnapshotDone),
    /// Live statistics (the `stats` object of `--json`).
    Stats(RunSummary),
    /// Pager VMOs and their outstanding requests.
    Pagers(PagersInfo),
    /// Prometheus text.
    Metrics(String),
}

/// Why an action was refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The request itself is wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The VM is in a state that does not allow it (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// It was tried and failed (HTTP 500).
    #[error("{0}")]
    Failed(String),
}

/// A VM as the actions see it.
pub trait Control: Send + Sync {
    /// The VM now.
    fn info(&self) -> VmInfo;
    /// Holds every vCPU parked (returns at once).
    fn pause(&self);
    /// Lets a held VM go on.
    fn resume(&self);
    /// Stops the VM.
    fn stop(&self);
    /// Takes a snapshot to `dir` (blocks until written); the bytes of RAM data written.
    fn snapshot(&self, dir: PathBuf, then: Then) -> Result<u64, String>;
    /// The VM's `--snapshot-dir`, if any.
    fn default_snapshot_dir(&self) -> Option<PathBuf>;
    /// Live statistics.
    fn stats(&self) -> RunSummary;
    /// Pager VMOs and their outstanding requests.
    fn pagers(&self) -> PagersInfo;
    /// The numbers `/metrics` shows.
    fn metrics(&self) -> MetricsReading;
}

/// Executes `action` against `vm`.
pub fn execute(vm: &dyn Control, action: VmAction) -> Result<VmResponse, ActionError> {
    match action {
        VmAction::GetVm => Ok(VmResponse::Vm(vm.info())),
        VmAction::Pause => pause(vm),
        VmAction::Resume => resume(vm),
        VmAction::Stop => {
            vm.stop();
            Ok(VmResponse::Vm(vm.info()))
        }
        VmAction::Snapshot(req) => snapshot(vm, req),
        VmAction::GetStats => Ok(VmResponse::Stats(vm.stats())),
        VmAction::GetPagers => Ok(VmResponse::Pagers(vm.pagers())),
        VmAction::GetMetrics => Ok(VmResponse::Metrics(vm.metrics().render())),
    }
}

fn not_stopped(vm: &dyn Control, what: &str) -> Result<VmInfo, ActionError> {
    let info = vm.info();
    if info.state == VmState::Stopped {
        return Err(ActionError::Conflict(format!(
            "cannot {what}: the VM has stopped ({})",
            info.stop_reason.unwrap_or_default()
        )));
    }
    Ok(info)
}

/// Holds the VM, then waits up to [`PAUSE_SETTLE`] for every vCPU to park.
fn pause(vm: &dyn Control) -> Result<VmResponse, ActionError> {
    not_stopped(vm, "pause")?;
    vm.pause();
    let deadline = Instant::now() + PAUSE_SETTLE;
    loop {
        let info = vm.info();
        if info.state != VmState::Pausing || Instant::now() >= deadline {
            return Ok(VmResponse::Vm(info));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How long `PUT /vm/resume` waits for the parked vCPUs to leave before it answers.
const RESUME_SETTLE: Duration = Duration::from_millis(100);

/// Lets the VM go, then waits up to [`RESUME_SETTLE`] until no vCPU is parked.
fn resume(vm: &dyn Control) -> Result<VmResponse, ActionError> {
    not_stopped(vm, "resume")?;
    vm.resume();
    let deadline = Instant::now() + RESUME_SETTLE;
    loop {
        let info = vm.info();
        let parked = info.vcpus.contains(&VcpuState::Parked);
        if !parked || Instant::now() >= deadline {
            return Ok(VmResponse::Vm(info));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn snapshot(vm: &dyn Control, req: SnapshotRequest) -> Result<VmResponse, ActionError> {
    let dir = match (&req.path, vm.default_snapshot_dir()) {
        (Some(p), _) if p.is_empty() => {
            return Err(ActionError::BadRequest("`path` is empty".into()));
        }
        (Some(p), _) => PathBuf::from(p),
        (None, Some(d)) => d,
        (None, None) => {
            return Err(ActionError::BadRequest(
                "no `path` given and the VM has no --snapshot-dir".into(),
            ));
        }
    };
    not_stopped(vm, "snapshot")?;
    let bytes = vm
        .snapshot(dir.clone(), req.then)
        .map_err(ActionError::Failed)?;
    Ok(VmResponse::Snapshot(SnapshotDone {
        path: dir.display().to_string(),
        ram_data_bytes: bytes,
        state: vm.info().state,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::api::wire::{API_VERSION, VmSettings};

    /// A VM that is only a state.
    #[derive(Default)]
    struct Fake {
        state: Mutex<Option<VmState>>,
        snapshots: Mutex<Vec<(PathBuf, Then)>>,
    }

    impl Control for Fake {
        fn info(&self) -> VmInfo {
            let state = self.state.lock().unwrap().unwrap_or(VmState::Running);
            VmInfo {
                api_version: API_VERSION,
                state,
                stop_reason: (state == VmState::Stopped).then(|| "test".into()),
                vcpus: vec![VcpuState::Running],
                memory_bytes: 1 << 20,
                uptime_ns: 1,
                pid: 1,
                config: VmSettings::default(),
            }
        }
        fn pause(&self) {
            *self.state.lock().unwrap() = Some(VmState::Paused);
        }
        fn resume(&self) {
            *self.state.lock().unwrap() = Some(VmState::Running);
        }
        fn stop(&self) {
            *self.state.lock().unwrap() = Some(VmState::Stopped);
        }
        fn snapshot(&self, dir: PathBuf, then: Then) -> Result<u64, String> {
            self.snapshots.lock().unwrap().push((dir, then));
            Ok(4096)
        }
        fn default_snapshot_dir(&self) -> Option<PathBuf> {
            None
        }
        fn stats(&self) -> RunSummary {
            RunSummary::default()
        }
        fn pagers(&self) -> PagersInfo {
            PagersInfo {
                api_version: API_VERSION,
                fault_timeout_ms: None,
                vmos: Vec::new(),
            }
        }
        fn metrics(&self) -> MetricsReading {
            MetricsReading::default()
        }
    }

    fn state(r: Result<VmResponse, ActionError>) -> VmState {
        match r {
            Ok(VmResponse::Vm(info)) => info.state,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pause_resume_stop_walk_the_states() {
        let vm = Fake::default();
        assert_eq!(state(execute(&vm, VmAction::Pause)), VmState::Paused);
        assert_eq!(state(execute(&vm, VmAction::Resume)), VmState::Running);
        assert_eq!(state(execute(&vm, VmAction::Stop)), VmState::Stopped);
        for a in [VmAction::Pause, VmAction::Resume] {
            assert!(matches!(execute(&vm, a), Err(ActionError::Conflict(_))));
        }
    }

    #[test]
    fn snapshot_needs_a_path_and_a_live_vm() {
        let vm = Fake::default();
        let none = VmAction::Snapshot(SnapshotRequest::default());
        assert!(matches!(
            execute(&vm, none),
            Err(ActionError::BadRequest(_))
        ));
        let req = SnapshotRequest {
            path: Some("/tmp/x".into()),
            then: Then::Stop,
        };
        let r = execute(&vm, VmAction::Snapshot(req.clone())).unwrap();
        assert!(matches!(
            r,
            VmResponse::Snapshot(SnapshotDone {
                ram_data_bytes: 4096,
                ..
            })
        ));
        assert_eq!(
            vm.snapshots.lock().unwrap()[0],
            ("/tmp/x".into(), Then::Stop)
        );
        vm.stop();
        let r = execute(&vm, VmAction::Snapshot(req));
        assert!(matches!(r, Err(ActionError::Conflict(_))));
    }
}
