//! The control API's JSON bodies, defined once for the server, the clients and the tests
//! (`openapi.json` describes the same shapes). Version [`API_VERSION`]: fields are only ever
//! added within a version; a renamed or removed field means a new version.

use serde::{Deserialize, Serialize};

/// The API version every `GET /vm` and `GET /pagers` reports.
pub const API_VERSION: u32 = 1;

/// The VM as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// vCPUs run guest code.
    Running,
    /// A pause is asked for; some vCPU is not parked yet (it is inside a hypercall).
    Pausing,
    /// Every vCPU is parked.
    Paused,
    /// The VM stopped (`stop_reason` says why); the process is about to exit.
    Stopped,
}

/// One vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VcpuState {
    /// Running guest code (or blocked in a page fault while no pause is on).
    Running,
    /// Inside a hypercall, which may block; it parks when the call returns.
    InHypercall,
    /// Parked outside `KVM_RUN`.
    Parked,
    /// Stopped for good by a fatal page fault delivered to the guest's exception port.
    Faulted,
}

/// `GET /vm` (and the answer to `PUT /vm/pause|resume|stop`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInfo {
    /// [`API_VERSION`].
    pub api_version: u32,
    /// The VM's state.
    pub state: VmState,
    /// Why it stopped (`state == stopped` only).
    pub stop_reason: Option<String>,
    /// Each vCPU's state, by index.
    pub vcpus: Vec<VcpuState>,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// Nanoseconds since the VM was built.
    pub uptime_ns: u64,
    /// The process id of the VMM.
    pub pid: u32,
    /// What the VM was started with.
    pub config: VmSettings,
}

/// The settings a VM was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSettings {
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// Whether guest RAM is a pager VMO served on demand.
    pub lazy_ram: bool,
    /// The snapshot this VM was restored from (`restore` only).
    pub restored_from: Option<String>,
    /// The RAM image file (`run --image`), if any.
    pub image: Option<String>,
    /// The supply strategy: `auto`, `move`, `remap` or `copy`.
    pub supply: String,
    /// The host pager's read-ahead window in bytes.
    pub readahead_bytes: u64,
    /// Whether huge pages are supplied.
    pub huge_pages: bool,
    /// `--snapshot-dir`, if any.
    pub snapshot_dir: Option<String>,
    /// `--timeout` in ms, if any.
    pub timeout_ms: Option<u64>,
    /// `--fault-timeout` in ms, if any.
    pub fault_timeout_ms: Option<u64>,
}

/// When a snapshot is done: stop the VM or let it go on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Let the VM go on (in the state it was in: running or paused).
    #[default]
    Continue,
    /// Stop the VM (it exits 0).
    Stop,
}

/// `PUT /snapshot` request body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// The snapshot directory to write; default: the VM's `--snapshot-dir`.
    #[serde(default)]
    pub path: Option<String>,
    /// What happens after the snapshot (default `continue`).
    #[serde(default)]
    pub then: Then,
}

/// `PUT /snapshot` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDone {
    /// The snapshot directory written.
    pub path: String,
    /// Bytes of RAM data written (non-zero pages).
    pub ram_data_bytes: u64,
    /// The VM's state afterwards.
    pub state: VmState,
}

/// One outstanding page request, as the fault-timeout watchdog sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequestInfo {
    /// `READ` or `DIRTY`.
    pub command: String,
    /// Offset in the VMO of the page a vCPU faulted on, or else of the request's first page.
    pub offset: u64,
    /// Bytes from `offset`.
    pub len: u64,
    /// Where `offset` is in guest-physical memory, if mapped.
    pub guest_physical: Option<u64>,
    /// How long it has waited (ms).
    pub age_ms: u64,
    /// Whether a vCPU is blocked in a fault on it (not only a kernel call).
    pub faulting: bool,
    /// Whether it has waited past `--fault-timeout` (always false without one).
    pub overdue: bool,
}

/// One pager VMO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerVmoInfo {
    /// `host` (guest RAM served by the VMM's host pager) or `guest` (a guest pager's VMO).
    pub pager: String,
    /// Koid of the VMO.
    pub vmo_koid: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Outstanding page requests, oldest first.
    pub requests: Vec<PageRequestInfo>,
}

/// `GET /pagers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagersInfo {
    /// [`API_VERSION`].
    pub api_version: u32,
    /// `--fault-timeout` in ms, if any.
    pub fault_timeout_ms: Option<u64>,
    /// Every pager VMO of the VM (host pager first, then the guest's, each by koid).
    pub vmos: Vec<PagerVmoInfo>,
}

/// Every error answer's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}
