//! One VM: the KVM VM, its guest RAM (a VMO of the VM's host process), the guest's process
//! (its handle table), the VMO aperture, the console, and the stop state shared by its vCPUs.
//!
//! Each VM has two kernel processes: `host` owns the RAM VMO and the host pager's handles
//! (the guest can never name them) and `guest` is the table the guest's handles live in. No
//! VM can name another VM's objects.
//!
//! Submodules, by job: `memslots` (RAM pieces, aperture mappings, the slot gate), `pause`
//! (snapshot pauses and held pauses), `control` (what the control socket asks of the VM),
//! `stop` (stopping and waking the runner) and `faults` (fatal faults and the fault-timeout
//! watchdog).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VmFd};
use kvmpager::abi::Handle;

use crate::aperture::Aperture;
use crate::boot::{self, CpuFeatures};
use crate::config::{self, SnapshotConfig, VmConfig};
use crate::console::{Console, TestReports};
use crate::exit::StopReason;
use crate::host_pager::external::{Bridge, ExternalPager};
use crate::host_pager::{
    self, HostPager, ImageSource, PageSource, PagerCounters, PatternSource, SharedRoot,
    SupplyPolicy, ZeroFill,
};
use crate::kernel::{CallFailed, Process, Vmo, kernel};
use crate::layout;
use crate::loader;
use crate::memory::{self, GuestRam};
use crate::slot_gate::SlotGate;
use crate::snapshot::{self, Snapshot, VcpuState};
use crate::sync::lock;

mod control;
mod faults;
mod memslots;
mod pause;
mod placement;
pub(crate) use placement::usable_cpus;
mod stop;

use control::ControlState;
pub use control::{SnapshotJob, SnapshotOutcome, VcpuActivity};
use memslots::ApertureState;
use pause::PauseState;

/// Errors creating a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The guest program cannot be loaded.
    #[error("cannot load the guest program: {0}")]
    Load(#[from] loader::Error),
    /// `/dev/kvm` cannot be opened.
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    /// KVM lacks a capability the VMM needs.
    #[error("KVM lacks {0}")]
    MissingCap(&'static str),
    /// `KVM_CREATE_VM` failed.
    #[error("KVM_CREATE_VM failed: {0}")]
    CreateVm(kvm_ioctls::Error),
    /// `KVM_GET_SUPPORTED_CPUID` failed.
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    GetCpuid(kvm_ioctls::Error),
    /// `KVM_SET_USER_MEMORY_REGION` failed for RAM.
    #[error("cannot register guest RAM with KVM: {0}")]
    SetRamMemslot(kvm_ioctls::Error),
    /// A kernel call failed while building the VM.
    #[error(transparent)]
    Kernel(#[from] CallFailed),
    /// Guest memory could not be described.
    #[error(transparent)]
    Memory(#[from] memory::Error),
    /// The host pager could not be set up.
    #[error(transparent)]
    HostPager(#[from] host_pager::Error),
    /// A snapshot or working set is unusable.
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// RAM of a restore from a snapshot URL.
pub struct RemoteRam {
    /// Its page source (the snapshot's chunks).
    pub source: Arc<dyn PageSource>,
    /// The working set to prefetch (instead of `cfg.prefetch`).
    pub prefetch: Option<Vec<u64>>,
    /// Shared RAM: the root RAM maps copy-on-write, filled from `source` (`None`: private
    /// RAM, whatever `cfg.share` says).
    pub root: Option<Arc<SharedRoot>>,
}

/// Memslot of guest RAM; aperture mappings use the slots above it.
/// Guest RAM is registered with KVM in memslots of this size (slot i covers
/// `[i * RAM_CHUNK, (i + 1) * RAM_CHUNK)`), and only the pieces a VM starts in are registered
/// before it runs: the rest on first touch (see [`Vm::register_ram_at`]). On hosts whose KVM
/// allocates per-page metadata for each memslot up front (shadow paging) this keeps the time
/// to the first guest instruction flat in RAM size.
pub const RAM_CHUNK: u64 = 1 << 30;

/// The first stop reason wins; vCPUs and the runner watch the flag. The runner also waits
/// here for snapshot requests.
#[derive(Debug, Default)]
struct StopState {
    reason: Mutex<Option<StopReason>>,
    changed: Condvar,
    flag: AtomicBool,
    snapshot: AtomicBool,
}

/// What the runner is woken for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The VM stopped.
    Stop(StopReason),
    /// A snapshot was asked for (hypercall or SIGUSR1).
    Snapshot,
    /// Snapshots were asked for through the control socket ([`Vm::take_snapshot_jobs`]).
    SnapshotJobs,
}

/// Set by the SIGUSR1 handler: take a snapshot (of every VM with snapshots on).
pub static SNAPSHOT_SIGNAL: AtomicBool = AtomicBool::new(false);

/// A VM, shared by its vCPU threads.
pub struct Vm {
    fd: VmFd,
    cpuid: CpuId,
    features: CpuFeatures,
    host: Arc<Process>,
    guest: Arc<Process>,
    ram: GuestRam,
    aperture: Mutex<ApertureState>,
    vcpus: u32,
    entry: u64,
    start: Instant,
    console: Console,
    reports: TestReports,
    stop: StopState,
    pause: PauseState,
    control: ControlState,
    pager_thread: Mutex<Option<JoinHandle<()>>>,
    /// The background prefetch (`prefetch_while_running`), if any.
    prefetch_thread: Mutex<Option<JoinHandle<()>>>,
    /// The pager VMO behind RAM (lazy RAM only).
    ram_vmo: Option<Arc<Vmo>>,
    /// Where absent RAM pages come from (lazy RAM only).
    source: Option<Arc<dyn PageSource>>,
    counters: Option<Arc<PagerCounters>>,
    /// vCPU states to resume from (restore only).
    resume: Option<Vec<VcpuState>>,
    /// The guest clock at `start` (non-zero after a restore).
    clock_base_ns: i64,
    /// When building the VM began (for the time to the first guest instruction).
    t0: Instant,
    first_run: OnceLock<Duration>,
    stopped: OnceLock<Duration>,
    snapshot_cfg: Option<SnapshotConfig>,
    /// Keeps vCPUs out of `KVM_RUN` while memslots change.
    slot_gate: SlotGate,
    /// The pthread of each running vCPU thread, for kicks.
    vcpu_threads: Mutex<BTreeMap<u32, libc::pthread_t>>,
    /// vCPUs parked by a fatal page fault delivered as an exception packet.
    exceptions: Mutex<faults::Exceptions>,
    /// Which [`RAM_CHUNK`] pieces of RAM have their memslot.
    ram_chunks: Mutex<Vec<bool>>,
    /// Shared RAM: the snapshot's shared root the RAM maps copy-on-write.
    root: Option<Arc<SharedRoot>>,
    /// Host CPUs of vCPU `i` (`cpus[i % len]`) and of the fault threads (`cpus[0]`), when
    /// threads are pinned.
    cpus: Option<Vec<usize>>,
}

/// Guest-physical addresses the vCPUs touch first: the boot area, each vCPU's stack, and on
/// restore each vCPU's `rip` and `rsp`. Their RAM pieces are registered before the start.
fn start_addresses(vm: &Vm, snap: Option<&Snapshot>) -> Vec<u64> {
    let size = vm.ram.size();
    let mut gpas = vec![0, vm.entry];
    gpas.extend((0..vm.vcpus).map(|i| layout::vcpu_stack_top(size, i).saturating_sub(1)));
    if let Some(s) = snap {
        gpas.extend(
            s.meta
                .cpus
                .iter()
                .flat_map(|c| [c.regs.rip, c.regs.rsp.saturating_sub(1)]),
        );
    }
    gpas
}

/// What `Vm::new` learns from KVM before building anything.
struct KvmSetup {
    fd: VmFd,
    cpuid: CpuId,
    features: CpuFeatures,
    max_slots: u32,
}

fn open_kvm() -> Result<KvmSetup> {
    let kvm = Kvm::new().map_err(Error::OpenKvm)?;
    for (cap, what) in [
        (Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(Error::MissingCap(what));
        }
    }
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::GetCpuid)?;
    let features = cpu_features(&cpuid);
    let max_slots = kvm.get_nr_memslots() as u32;
    let fd = kvm.create_vm().map_err(Error::CreateVm)?;
    Ok(KvmSetup {
        fd,
        cpuid,
        features,
        max_slots,
    })
}

/// The aperture's book-keeping: memslots above the RAM pieces', at most `mappings` of them.
fn aperture(memory: u64, max_slots: u32, mappings: u32) -> Aperture {
    let first = memory.div_ceil(RAM_CHUNK) as u32;
    Aperture::new(first, max_slots.min(first.saturating_add(mappings)))
}

/// The features the boot state depends on, from KVM's supported CPUID.
fn cpu_features(cpuid: &CpuId) -> CpuFeatures {
    let ext = cpuid.as_slice().iter().find(|e| e.function == 0x8000_0001);
    let edx = ext.map_or(0, |e| e.edx);
    CpuFeatures {
        gib_pages: edx & (1 << 26) != 0,
        nx: edx & (1 << 20) != 0,
    }
}

/// Guest RAM as a VMO of `host`: plain, or a pager VMO with its (not yet started) pager,
/// mapping `root` copy-on-write if given.
fn create_ram(
    host: &Arc<Process>,
    cfg: &VmConfig,
    memory: u64,
    lazy: bool,
    root: Option<&Arc<SharedRoot>>,
) -> Result<(Handle, Option<HostPager>)> {
    if lazy {
        let policy = SupplyPolicy {
            readahead: cfg.readahead,
            huge_pages: cfg.huge_pages,
        };
        let pager = match root {
            Some(r) => HostPager::shared(host, r.clone(), policy)?,
            None => HostPager::with_policy(host, memory, policy)?,
        };
        Ok((pager.vmo(), Some(pager)))
    } else {
        let vmo = host
            .vmo_create(memory, 0)
            .map_err(kernel("zx_vmo_create"))?;
        Ok((vmo, None))
    }
}

/// The page source of lazy RAM: the snapshot's `ram.img`, the `--image`, or zeros.
fn page_source(
    cfg: &VmConfig,
    snap: Option<&Snapshot>,
    memory: u64,
) -> Result<Arc<dyn PageSource>> {
    Ok(match (snap, &cfg.image) {
        (Some(s), _) => Arc::new(ImageSource::open(&s.ram_path(), memory)?),
        (None, Some(path)) => Arc::new(ImageSource::open(path, memory)?),
        (None, None) => match cfg.demo_pattern {
            Some(len) => Arc::new(PatternSource::new(len)?),
            None => Arc::new(ZeroFill),
        },
    })
}

/// Prints a progress line (`\r`-updated) on stderr.
fn progress_line(what: &'static str) -> impl FnMut(u64, u64) {
    move |done, total| {
        if total >= 64 << 20 {
            let end = if done == total { "\n" } else { "" };
            eprint!("\r{what}: {} / {} MiB{end}", done >> 20, total >> 20);
        }
    }
}

/// Writes the boot image into RAM: through the pager (pre-supply) or with `vmo_write`.
fn write_boot_image(
    host: &Process,
    vmo: Handle,
    pager: Option<&HostPager>,
    img: &boot::BootImage,
) -> Result<()> {
    for (gpa, data) in img.runs() {
        match pager {
            Some(p) => p.supply(gpa, &data)?,
            None => host
                .vmo_write(vmo, &data, gpa)
                .map_err(kernel("zx_vmo_write"))?,
        }
    }
    Ok(())
}

impl Vm {
    /// Creates the VM, its RAM and boot state. vCPUs are created by [`crate::vcpu`].
    pub fn new(cfg: &VmConfig) -> Result<Arc<Vm>> {
        Self::build(cfg, None, Instant::now(), None)
    }

    /// Creates a VM that resumes `snap` with RAM served lazily from its `ram.img`. Of `cfg`
    /// only the pager, snapshot, record/prefetch and console settings are used; `t0` is when
    /// the restore began.
    pub fn restore(cfg: &VmConfig, snap: &Snapshot, t0: Instant) -> Result<Arc<Vm>> {
        Self::build(cfg, Some(snap), t0, None)
    }

    /// [`Vm::restore`] with RAM from `ram` (a chunked snapshot, maybe through its shared
    /// root) and its working set instead of `cfg.prefetch`.
    pub fn restore_from(
        cfg: &VmConfig,
        snap: &Snapshot,
        ram: RemoteRam,
        t0: Instant,
    ) -> Result<Arc<Vm>> {
        Self::build(cfg, Some(snap), t0, Some(ram))
    }

    fn build(
        cfg: &VmConfig,
        snap: Option<&Snapshot>,
        t0: Instant,
        remote: Option<RemoteRam>,
    ) -> Result<Arc<Vm>> {
        let (vcpus, memory, lazy) = match snap {
            Some(s) => (s.meta.vcpus, s.meta.ram_size, true),
            None => (cfg.vcpus, cfg.memory, cfg.lazy_ram),
        };
        let mut cfg = cfg.clone();
        (cfg.vcpus, cfg.memory, cfg.lazy_ram) = (vcpus, memory, lazy);
        cfg.validate()?;
        let program = match snap {
            None => Some(loader::load(&cfg.guest_elf, memory)?),
            Some(_) => None,
        };
        let (source, prefetch, remote_root) = match remote {
            Some(r) => (Some(r.source), r.prefetch, Some(r.root)),
            None => (
                lazy.then(|| page_source(&cfg, snap, memory)).transpose()?,
                match &cfg.prefetch {
                    Some(p) => Some(snapshot::read_working_set(p, memory)?),
                    None => None,
                },
                None,
            ),
        };
        let step = |what: &str| log::debug!("build: {what} at {:?}", t0.elapsed());
        step("validated");
        let k = open_kvm()?;
        step("KVM VM created");
        let (host, guest) = (Process::new(), Process::new());
        host.set_supply_strategy(cfg.supply);
        guest.set_supply_strategy(cfg.supply);
        guest.set_limits(cfg.limits.kernel_limits());
        let root = match (snap, remote_root) {
            (_, Some(root)) => root,
            (Some(s), None) if cfg.share => Some(Arc::new(SharedRoot::open(s)?)),
            _ => None,
        };
        let (ram_vmo, mut pager) = create_ram(&host, &cfg, memory, lazy, root.as_ref())?;
        step("RAM VMO created");
        if let Some(program) = &program {
            let img = boot::boot_image(program, vcpus, memory, k.features.gib_pages);
            write_boot_image(&host, ram_vmo, pager.as_ref(), &img)?;
        }
        let mut background = None;
        if let (Some(p), Some(src), Some(pages)) = (pager.as_mut(), &source, &prefetch) {
            if cfg.prefetch_while_running {
                background = Some((p.sibling(), src.clone(), pages.clone()));
            } else if cfg.progress {
                p.prefetch(src.as_ref(), pages, progress_line("prefetch"))?;
            } else {
                p.prefetch(src.as_ref(), pages, |_, _| {})?;
            }
        }
        let counters = pager.as_ref().map(|p| p.counters().clone());
        let remote_target = cfg.snapshot.as_ref().is_some_and(|s| s.is_url());
        if let (Some(c), true) = (&counters, cfg.record.is_some() || remote_target) {
            // Snapshots to a URL keep the first-touch order as their working set.
            c.start_recording();
        }
        let mapping = host
            .vmar_map(ram_vmo, 0, memory, true)
            .map_err(kernel("vmar_map"))?;
        let ram = GuestRam::new(mapping)?;
        step("RAM mapped");
        let vm = Arc::new(Vm {
            fd: k.fd,
            cpuid: k.cpuid,
            features: k.features,
            host,
            guest,
            ram,
            aperture: Mutex::new(ApertureState {
                ranges: aperture(memory, k.max_slots, cfg.limits.mappings),
                mappings: BTreeMap::new(),
            }),
            vcpus,
            entry: program.as_ref().map_or(0, |p| p.entry),
            start: Instant::now(),
            console: Console::new(cfg.echo_console),
            reports: TestReports::default(),
            stop: StopState::default(),
            pause: PauseState::default(),
            control: ControlState::default(),
            pager_thread: Mutex::new(None),
            prefetch_thread: Mutex::new(None),
            ram_vmo: pager.as_ref().map(|p| p.ram().clone()),
            source: source.clone(),
            counters,
            resume: snap.map(|s| s.meta.cpus.clone()),
            clock_base_ns: snap.map_or(0, |s| s.meta.clock_ns),
            t0,
            first_run: OnceLock::new(),
            stopped: OnceLock::new(),
            snapshot_cfg: cfg.snapshot.clone(),
            slot_gate: SlotGate::default(),
            vcpu_threads: Mutex::new(BTreeMap::new()),
            exceptions: Mutex::default(),
            ram_chunks: Mutex::new(vec![false; memory.div_ceil(RAM_CHUNK) as usize]),
            root,
            cpus: cfg.pin_threads.then(|| placement::choose_cpus(vcpus)),
        });
        vm.register_ram(&start_addresses(&vm, snap))?;
        step("RAM memslot set");
        vm.watch_fatal_faults();
        match (pager, source, &cfg.external_pager) {
            (Some(p), _, Some(ext)) => {
                let image = snap.map_or_else(|| cfg.image.clone(), |s| Some(s.ram_path()));
                vm.start_external(p, ext, image.as_deref())?
            }
            (Some(p), Some(src), None) => vm.start_pager(p, src)?,
            _ => {}
        }
        if let Some((sibling, src, pages)) = background {
            vm.start_prefetch(sibling, src, pages)?;
        }
        step("pager started");
        Ok(vm)
    }

    fn start_pager(
        self: &Arc<Self>,
        mut pager: HostPager,
        source: Arc<dyn PageSource>,
    ) -> Result<()> {
        if self.cpus.is_some() {
            // Pinned beside the vCPU and the fault service: hand off, don't poll.
            pager.set_spin(Duration::ZERO);
        }
        let weak = Arc::downgrade(self);
        let thread = pager.start(source, move |e| {
            if let Some(vm) = weak.upgrade() {
                vm.request_stop(StopReason::HostPager(e.to_string()));
            }
        })?;
        self.pin_fault_threads(&thread);
        *lock(&self.pager_thread) = Some(thread);
        Ok(())
    }

    /// Bridges RAM to an external pager process (two threads, joined like the pager's).
    fn start_external(
        self: &Arc<Self>,
        mut pager: HostPager,
        how: &ExternalPager,
        image: Option<&std::path::Path>,
    ) -> Result<()> {
        if self.cpus.is_some() {
            pager.set_spin(Duration::ZERO);
        }
        let weak = Arc::downgrade(self);
        let bridge = Bridge::connect(pager, how, image)?;
        if let Some(pid) = bridge.child_pid() {
            self.pin_fault_process(pid);
        }
        let [fwd, ops] = bridge.start(move |why| {
            if let Some(vm) = weak.upgrade() {
                vm.request_stop(StopReason::HostPager(why));
            }
        })?;
        self.pin_fault_threads(&fwd);
        self.pin_fault_helper(&ops);
        *lock(&self.pager_thread) = Some(fwd);
        *lock(&self.prefetch_thread) = Some(ops);
        Ok(())
    }

    /// The shared root RAM maps (shared RAM only).
    pub fn shared_root(&self) -> Option<&Arc<SharedRoot>> {
        self.root.as_ref()
    }

    /// The host pager's VMO behind RAM (lazy RAM only).
    pub fn ram_vmo(&self) -> Option<&Arc<Vmo>> {
        self.ram_vmo.as_ref()
    }

    /// The KVM VM.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// CPUID entries to give each vCPU.
    pub fn cpuid(&self) -> &CpuId {
        &self.cpuid
    }

    /// CPU features the boot state uses.
    pub fn features(&self) -> CpuFeatures {
        self.features
    }

    /// Guest RAM.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// The guest's process (its handle table).
    pub fn guest(&self) -> &Arc<Process> {
        &self.guest
    }

    /// The host-side process (RAM VMO, host pager).
    pub fn host(&self) -> &Arc<Process> {
        &self.host
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// Program entry point.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Nanoseconds since the VM was created (the guest's monotonic clock; it goes on from the
    /// snapshot's value after a restore).
    pub fn now_ns(&self) -> i64 {
        let ns = i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        ns.saturating_add(self.clock_base_ns)
    }

    /// The instant the guest clock reads `ns` (for deadlines).
    pub fn instant_at(&self, ns: i64) -> Instant {
        let ns = ns.saturating_sub(self.clock_base_ns);
        let d = std::time::Duration::from_nanos(ns.max(0) as u64);
        self.start
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + d.min(std::time::Duration::from_secs(1 << 30)))
    }

    /// The console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The test reports.
    pub fn reports(&self) -> &TestReports {
        &self.reports
    }

    /// The state vCPU `index` resumes from (restored VMs only).
    pub fn resume_state(&self, index: u32) -> Option<&VcpuState> {
        self.resume.as_ref().and_then(|r| r.get(index as usize))
    }

    /// Called by each vCPU thread just before its first `KVM_RUN`.
    pub fn mark_first_run(&self) {
        let _ = self.first_run.set(self.t0.elapsed());
    }

    /// Time from the start of VM creation (or restore) to the first `KVM_RUN`.
    pub fn time_to_first_run(&self) -> Option<Duration> {
        self.first_run.get().copied()
    }

    /// Records that the VM stopped (the first call counts).
    fn mark_stopped(&self) {
        let _ = self.stopped.set(self.t0.elapsed());
    }

    /// From the start of VM creation (or restore) to its stop, once stopped.
    pub fn time_to_stop(&self) -> Option<Duration> {
        self.stopped.get().copied()
    }

    /// The host pager's counters (lazy RAM only).
    pub fn pager_counters(&self) -> Option<&Arc<PagerCounters>> {
        self.counters.as_ref()
    }

    /// The snapshot settings, if snapshots are on.
    pub fn snapshot_config(&self) -> Option<&SnapshotConfig> {
        self.snapshot_cfg.as_ref()
    }

    /// Cancels every blocking kernel call of this VM (guest and host pager) and joins the
    /// host pager thread.
    pub fn kill_processes(&self) {
        if let Some(s) = &self.source {
            s.shut_down();
        }
        self.guest.kill();
        self.host.kill();
        let threads = [
            lock(&self.pager_thread).take(),
            lock(&self.prefetch_thread).take(),
        ];
        for t in threads.into_iter().flatten() {
            let _ = t.join();
        }
    }

    /// Supplies the working set `pages` on a background thread while the guest runs.
    fn start_prefetch(
        &self,
        mut pager: HostPager,
        source: Arc<dyn PageSource>,
        pages: Vec<u64>,
    ) -> Result<()> {
        let thread = std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                if let Err(e) = pager.prefetch(source.as_ref(), &pages, |_, _| {}) {
                    log::warn!("background prefetch stopped: {e}");
                }
            })
            .map_err(|e| Error::HostPager(host_pager::Error::Spawn(e)))?;
        *lock(&self.prefetch_thread) = Some(thread);
        Ok(())
    }
}
