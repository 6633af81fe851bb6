//! The kvmpager micro-VMM: runs a guest program on KVM with Zircon's user-pager model.
//!
//! Guest RAM and every VMO a guest maps are VMOs of the pager kernel (`kvmpager`); pages are
//! supplied on demand and moved zero-copy. Every module, in reading order:
//! - [`config`]: what a VM is made of.
//! - [`kernel`]: the pager kernel as the VMM uses it (the process API, `kernel(call)` errors);
//!   [`sync`]: the one poison-tolerant `lock`.
//! - [`layout`], [`boot`]: the guest-physical layout and boot-time CPU structures (pure).
//! - [`loader`]: ELF program loading (pure); [`guests`]: the embedded guest programs.
//! - [`memory`]: bounds-checked guest RAM access for hypercall handlers.
//! - [`aperture`]: aperture ranges and memslot book-keeping (pure); [`slot_gate`]: keeping
//!   vCPUs out of `KVM_RUN` while a memslot changes.
//! - [`kvm_check`]: whether `/dev/kvm` can be opened.
//! - [`vm`]: one VM (KVM VM, RAM VMO, processes, stop state); [`host_pager`] serves lazy RAM
//!   (or bridges it to an external pager process speaking [`pager_proto`]).
//! - [`vcpu`]: vCPU threads; [`exit`]: what an exit means; [`hypercall`]: the guest ABI.
//! - [`console`]: console output and test reports; [`summary`]: the run summary.
//! - [`snapshot`]: snapshot files and working sets; [`store`]: snapshots in object storage
//!   (content-addressed chunks, manifests, the chunk cache and fetcher).
//! - [`api`]: the control socket (HTTP/1.1 + JSON over a Unix socket, Prometheus metrics)
//!   and its client.
//! - [`tools`]: what is built around the VMM, not into it: the demo image, the conformance
//!   runner, the bench and the fuzz harness.
//!
//! The `kvmpager` command (`main.rs`, `cli.rs`) is a thin front end over [`run`] and
//! [`restore`].
//!
//! Entry points: [`run`] boots a guest program; [`restore`] resumes a snapshot with RAM served
//! lazily from it (with [`VmConfig::share`], from the snapshot's host-wide shared root, copy on
//! write), [`restore_url`] one in object storage ([`store`]); [`restore_clones`] and
//! [`restore_url_clones`] resume N VMs from one snapshot in this process. All take snapshots
//! on request (the `Snapshot` hypercall, or SIGUSR1 after [`install_snapshot_signal`]) when
//! [`VmConfig::snapshot`] is set: to a directory, or to a snapshot URL; and through the
//! control socket (`PUT /snapshot`) when [`VmConfig::api_socket`] is.
#![warn(missing_docs)]

pub mod config;
pub mod kernel;
pub mod sync;

pub mod boot;
pub mod guests;
pub mod layout;
pub mod loader;

pub mod aperture;
pub mod kvm_check;
pub mod memory;
pub mod slot_gate;

pub mod exit;
pub mod host_pager;
pub mod hypercall;
pub mod pager_proto;
pub mod vcpu;
pub mod vm;

pub mod api;
pub mod console;
pub mod snapshot;
pub mod store;
pub mod summary;

pub mod tools;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kvmpager::abi::status::ZX_ERR_IO;

pub use config::VmConfig;
pub use console::TestReport;
pub use exit::StopReason;
pub use kvm_check::{kvm_available, skip_without_kvm};
pub use summary::RunSummary;

/// Errors that keep a VM from running (guest misbehaviour is a [`StopReason`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The VM could not be built.
    #[error(transparent)]
    Vm(#[from] vm::Error),
    /// A vCPU could not be created or started.
    #[error(transparent)]
    Vcpu(#[from] vcpu::Error),
    /// The snapshot cannot be restored.
    #[error(transparent)]
    Snapshot(#[from] snapshot::Error),
    /// A snapshot URL cannot be read.
    #[error("{0}")]
    Remote(String),
    /// The API socket cannot be bound.
    #[error(transparent)]
    ApiSocket(#[from] api::socket::Error),
    /// The API server could not start.
    #[error("cannot start the API server: {0}")]
    ApiServer(std::io::Error),
    /// The SIGUSR1 handler could not be installed.
    #[error("cannot install the SIGUSR1 snapshot handler: {0}")]
    Signal(vmm_sys_util::errno::Error),
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
    pub stats: RunSummary,
    /// Snapshots written during the run.
    pub snapshots: Vec<snapshot::Written>,
    /// Things that went wrong without stopping the VM (a failed snapshot, an unwritable
    /// working set).
    pub warnings: Vec<String>,
    /// BLAKE3 of all guest RAM when the VM stopped ([`VmConfig::ram_hash`]), hex.
    pub ram_blake3: Option<String>,
}

impl RunResult {
    /// The console output as text (lossy).
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&self.console).into_owned()
    }
}

/// How long stopping vCPUs may take before they are abandoned.
const VCPU_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a snapshot waits for every vCPU to park.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the VM described by `config`, runs it until it stops, and reports the outcome. With
/// `config.api_socket` the control API ([`api`]) is served on that socket while it runs.
pub fn run(config: &VmConfig) -> Result<RunResult> {
    let api = bind_api(config)?;
    vcpu::install_kick_handler()?;
    let vm = vm::Vm::new(config)?;
    run_vm(vm, config, api.map(|s| (s, None)))
}

/// Binds `config.api_socket` (before anything is built, so a live socket is refused early).
fn bind_api(config: &VmConfig) -> Result<Option<api::ApiSocket>> {
    let bind = |p: &std::path::PathBuf| api::ApiSocket::bind(p);
    Ok(config.api_socket.as_ref().map(bind).transpose()?)
}

/// Resumes the snapshot in `dir` with RAM served lazily from its `ram.img`, runs it until it
/// stops, and reports the outcome. The snapshot is validated before anything is built. From
/// `config` only the pager (`readahead`, `huge_pages`, `supply`), `snapshot`, `record`,
/// `prefetch`, `timeout`, `fault_timeout`, `limits`, `echo_console`, `progress`,
/// `api_socket` and `external_pager` settings are used; vCPUs and RAM come from the snapshot.
/// With an external pager, that process serves RAM instead (an exec'd one is told the path of
/// `ram.img` in `KVMPAGER_IMAGE`).
pub fn restore(dir: &Path, config: &VmConfig) -> Result<RunResult> {
    let t0 = Instant::now();
    let snap = snapshot::Snapshot::open(dir)?;
    let api = bind_api(config)?;
    vcpu::install_kick_handler()?;
    let vm = vm::Vm::restore(config, &snap, t0)?;
    run_vm(vm, config, api.map(|s| (s, Some(dir))))
}

/// How a restore from a snapshot URL finds and caches chunks.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// The chunk cache directory.
    pub cache_dir: std::path::PathBuf,
    /// The cache's bound in bytes.
    pub cache_bytes: u64,
    /// Prefetch the manifest's working set (`--prefetch` without a FILE).
    pub prefetch: bool,
    /// Chunk fetches the prefetch keeps in flight.
    pub prefetch_concurrency: usize,
}

/// Resumes the chunked snapshot at `url` (`file://`, `http(s)://`, `s3://`; see [`store`])
/// with RAM served lazily from its chunks through the cache (with [`VmConfig::share`], from
/// its host-wide shared root, filled with verified chunks); otherwise as [`restore`]. An
/// external pager cannot serve it (it has no file to read): a config error, before any fetch.
pub fn restore_url(url: &str, config: &VmConfig, opts: &RemoteOptions) -> Result<RunResult> {
    let mut rs = restore_url_clones(url, config, opts, 1)?;
    rs.pop()
        .unwrap_or_else(|| Err(Error::Remote("no VM was restored".into())))
}

/// Restores `n` clones of the chunked snapshot at `url` in this process, as
/// [`restore_clones`] does for a directory: the manifest is read once and the clones share
/// one fetcher and chunk cache (one fetch per chunk for all of them), and with
/// [`VmConfig::share`] one shared root. The outer error is a setup failure (manifest, cache,
/// root, an external pager); then one result per clone, in order. Every clone's
/// `stats.remote` is the shared fetcher's counters once all clones stopped.
pub fn restore_url_clones(
    url: &str,
    config: &VmConfig,
    opts: &RemoteOptions,
    n: usize,
) -> Result<Vec<Result<RunResult>>> {
    if config.external_pager.is_some() {
        let what =
            "a snapshot URL (copy it to a directory first: `kvmpager snapshot copy URL DIR`)";
        return Err(vm::Error::Config(config::Error::ExternalPager(what)).into());
    }
    let t0 = Instant::now();
    let setup = open_url(url, config, opts)?;
    let users = store::SourceUsers::new(setup.remote.source.clone(), n);
    let mut config = config.clone();
    config.prefetch = None;
    if n <= 1 {
        return Ok(vec![run_url_vm(&setup, &config, users.lease(), t0)]);
    }
    let mut rs = on_clone_threads(n, |i| {
        run_url_vm(&setup, &clone_config(&config, i), users.lease(), t0)
    });
    let stats = setup.remote.source.fetcher().stats();
    for r in rs.iter_mut().flatten() {
        r.stats.remote = Some(stats.clone());
    }
    Ok(rs)
}

/// What every VM restored from one snapshot URL shares.
struct UrlRestore {
    remote: store::RemoteSnapshot,
    snap: snapshot::Snapshot,
    pages: Option<Vec<u64>>,
    root: Option<Arc<host_pager::SharedRoot>>,
}

/// Reads the manifest, opens the shared root (`config.share`) and starts the working-set
/// prefetch (chunks whose pages the root holds already are not fetched).
fn open_url(url: &str, config: &VmConfig, opts: &RemoteOptions) -> Result<UrlRestore> {
    let fcfg = store::FetcherConfig {
        prefetch_concurrency: opts.prefetch_concurrency.max(1),
        ..Default::default()
    };
    let remote = store::open_snapshot(url, &opts.cache_dir, opts.cache_bytes, fcfg)
        .map_err(|e| Error::Remote(e.to_string()))?;
    let meta = remote.manifest.meta();
    meta.validate(std::path::Path::new(url))?;
    let snap = snapshot::Snapshot {
        dir: url.into(),
        meta,
    };
    let pages = match &config.prefetch {
        Some(p) => Some(snapshot::read_working_set(p, snap.meta.ram_size)?),
        None if opts.prefetch => Some(remote.manifest.working_set.clone()),
        None => None,
    };
    let root = if config.share {
        let source: Arc<dyn host_pager::PageSource> = remote.source.clone();
        let r = host_pager::SharedRoot::open_source(remote.root_key, snap.meta.ram_size, source)
            .map_err(vm::Error::from)?;
        Some(Arc::new(r))
    } else {
        None
    };
    if let Some(pages) = &pages {
        prefetch_chunks(&remote.source, root.as_deref(), pages, config.readahead);
    }
    Ok(UrlRestore {
        remote,
        snap,
        pages,
        root,
    })
}

/// Starts fetching the chunks of `pages`' read-ahead windows (`readahead` bytes), many in
/// flight, skipping windows whose data the shared root holds already; returns at once (the
/// pager's supplies wait per chunk).
fn prefetch_chunks(
    source: &store::ChunkSource,
    root: Option<&host_pager::SharedRoot>,
    pages: &[u64],
    readahead: u64,
) {
    use kvmpager::abi::PAGE_SIZE;
    let window = readahead.max(PAGE_SIZE).next_power_of_two();
    // Each window is looked up in the root once, however many of its pages are listed.
    let mut filled = std::collections::HashMap::new();
    let missing: Vec<u64> = pages
        .iter()
        .copied()
        .filter(|p| {
            let start = (p * PAGE_SIZE) & !(window - 1);
            let full = |r: &host_pager::SharedRoot| r.is_filled(start..start + window);
            !*filled
                .entry(start)
                .or_insert_with(|| root.is_some_and(full))
        })
        .collect();
    drop(
        source
            .fetcher()
            .prefetch(source.chunks_for_pages(&missing, window)),
    );
}

/// Builds and runs one VM of a URL restore, RAM from `source` (its lease on the chunks).
fn run_url_vm(
    setup: &UrlRestore,
    config: &VmConfig,
    source: Arc<dyn host_pager::PageSource>,
    t0: Instant,
) -> Result<RunResult> {
    let api = bind_api(config)?;
    vcpu::install_kick_handler()?;
    let source: Arc<dyn host_pager::PageSource> = match &setup.root {
        Some(root) => Arc::new(host_pager::shared_root::RootedSource::new(
            root.clone(),
            source,
        )),
        None => source,
    };
    let ram = vm::RemoteRam {
        source,
        prefetch: setup.pages.clone(),
        root: setup.root.clone(),
    };
    let vm = vm::Vm::restore_from(config, &setup.snap, ram, t0)?;
    let mut r = run_vm(vm, config, api.map(|s| (s, None)))?;
    r.stats.remote = Some(setup.remote.source.fetcher().stats());
    Ok(r)
}

/// Restores `n` clones of the snapshot in `dir` in this process, each on its own threads
/// with its own RAM mapping, and runs them until they all stop; one result per clone, in
/// order. With [`VmConfig::share`] they share one copy of the snapshot (its shared root).
/// Clone 0 uses `config` as given; clone `i > 0` records its working set to `FILE.i`, writes
/// snapshots to `DIR.i` and serves its control API on `SOCKET.i` (for `config.record = FILE`,
/// `config.snapshot.dir = DIR`, `config.api_socket = SOCKET`).
pub fn restore_clones(dir: &Path, config: &VmConfig, n: usize) -> Vec<Result<RunResult>> {
    on_clone_threads(n, |i| restore(dir, &clone_config(config, i)))
}

/// Runs `one(i)` for clones `0..n`, each on a thread of its own; their results in order (a
/// clone whose thread panicked gets an error).
fn on_clone_threads(
    n: usize,
    one: impl Fn(usize) -> Result<RunResult> + Sync,
) -> Vec<Result<RunResult>> {
    std::thread::scope(|s| {
        let one = &one;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || one(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(snapshot::Error::Vm("a clone's thread panicked".into()).into())
                })
            })
            .collect()
    })
}

/// The configuration of clone `i` (see [`restore_clones`]).
pub fn clone_config(config: &VmConfig, i: usize) -> VmConfig {
    let mut c = config.clone();
    if i == 0 {
        return c;
    }
    let suffixed = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(format!(".{i}"));
        std::path::PathBuf::from(s)
    };
    c.record = c.record.as_deref().map(suffixed);
    c.api_socket = c.api_socket.as_deref().map(suffixed);
    if let Some(snap) = c.snapshot.as_mut() {
        snap.dir = suffixed(&snap.dir);
    }
    c
}

extern "C" fn snapshot_signal_handler(
    _: libc::c_int,
    _: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    vm::SNAPSHOT_SIGNAL.store(true, Ordering::SeqCst);
}

/// Makes SIGUSR1 ask every VM of this process that has snapshots on for a snapshot.
pub fn install_snapshot_signal() -> Result<()> {
    vmm_sys_util::signal::register_signal_handler(libc::SIGUSR1, snapshot_signal_handler)
        .map_err(Error::Signal)
}

fn run_vm(
    vm: Arc<vm::Vm>,
    config: &VmConfig,
    api: Option<(api::ApiSocket, Option<&Path>)>,
) -> Result<RunResult> {
    let vcpus = (0..vm.vcpus())
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
    let server = match api {
        Some((socket, from)) => match api::serve(socket, &vm, config, from) {
            Ok(s) => Some(s),
            Err(e) => {
                vm.request_stop(StopReason::Timeout);
                shut_down(&vm, handles);
                return Err(Error::ApiServer(e));
            }
        },
        None => None,
    };
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let (mut snapshots, mut warnings) = (Vec::new(), Vec::new());
    loop {
        let watch = config
            .fault_timeout
            .map(|t| Instant::now() + watchdog_period(t));
        let wake = [deadline, watch].into_iter().flatten().min();
        match vm.wait_event(wake) {
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                vm.request_stop(StopReason::Timeout);
                break;
            }
            // A VM held paused is not watched: its guest pagers cannot answer while parked.
            None if vm.held() => {}
            None => {
                let overdue = config.fault_timeout.and_then(|t| vm.overdue_fault(t));
                if let Some(reason) = overdue {
                    vm.request_stop(reason);
                }
            }
            Some(vm::Event::Stop(_)) => break,
            Some(vm::Event::Snapshot) => match take_snapshot(&vm, &handles) {
                Ok(w) => snapshots.push(w),
                Err(e) => {
                    log::error!("{e}");
                    warnings.push(e.to_string());
                }
            },
            Some(vm::Event::SnapshotJobs) => {
                for job in vm.take_snapshot_jobs() {
                    let r = take_snapshot_to(&vm, &handles, &job.dir, job.then);
                    if let Ok(w) = &r {
                        snapshots.push(w.clone());
                    }
                    job.finish(r.map_err(|e| e.to_string()));
                }
            }
        }
    }
    for job in vm.take_snapshot_jobs() {
        job.finish(Err("the VM stopped before the snapshot was taken".into()));
    }
    shut_down(&vm, handles);
    if let (Some(path), Some(pages)) = (
        &config.record,
        vm.pager_counters().and_then(|c| c.recorded()),
    ) && let Err(e) = snapshot::write_working_set(path, vm.ram().size(), &pages)
    {
        warnings.push(format!("cannot write the working set: {e}"));
    }
    if vm.console().dropped() > 0 {
        warnings.push(format!(
            "{} bytes of console output past the {} MiB capture limit were not kept",
            vm.console().dropped(),
            console::MAX_CAPTURE >> 20
        ));
    }
    let mut r = result(&vm);
    if let Some(s) = server {
        s.shutdown();
    }
    // Only a VM that stopped in good order is hashed (a failed source would fail again).
    if config.ram_hash && matches!(r.stop, StopReason::Exit(_) | StopReason::Snapshotted(_)) {
        match vm.ram_blake3() {
            Ok(h) => r.ram_blake3 = h,
            Err(e) => warnings.push(format!("cannot hash guest RAM: {e}")),
        }
    }
    r.snapshots = snapshots;
    r.warnings = warnings;
    Ok(r)
}

/// How often the fault-timeout watchdog looks for overdue page requests: a tenth of the
/// limit, within 10 ms..=250 ms, so a request is reported at most ~10% late.
fn watchdog_period(limit: Duration) -> Duration {
    (limit / 10).clamp(Duration::from_millis(10), Duration::from_millis(250))
}

/// Pauses every vCPU, writes the snapshot, then stops the VM or lets it go on.
fn take_snapshot(
    vm: &Arc<vm::Vm>,
    handles: &[vcpu::VcpuHandle],
) -> std::result::Result<snapshot::Written, snapshot::Error> {
    let Some(cfg) = vm.snapshot_config().cloned() else {
        return Err(snapshot::Error::Vm("snapshots are off".into()));
    };
    take_snapshot_to(vm, handles, &cfg.dir, cfg.then)
}

/// Pauses every vCPU, writes the snapshot to `dir`, then stops the VM or lets it go on (a
/// VM held paused by the API stays paused).
fn take_snapshot_to(
    vm: &Arc<vm::Vm>,
    handles: &[vcpu::VcpuHandle],
    dir: &Path,
    then: config::SnapshotThen,
) -> std::result::Result<snapshot::Written, snapshot::Error> {
    vm.begin_pause();
    let states = vm.wait_paused(PAUSE_TIMEOUT, || handles.iter().for_each(|h| h.kick()));
    let r = match states {
        None if vm.stopping() => Err(snapshot::Error::Vm("the VM stopped".into())),
        None => Err(snapshot::Error::Vm(format!(
            "not every vCPU paused within {PAUSE_TIMEOUT:?} (one may be blocked in a hypercall)"
        ))),
        Some(states) => states
            .into_iter()
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(snapshot::Error::Vm)
            .and_then(|s| vm.write_snapshot(dir, s)),
    };
    match &r {
        Ok(w) if then == config::SnapshotThen::Stop => {
            vm.request_stop(StopReason::Snapshotted(w.dir.display().to_string()));
        }
        _ => {}
    }
    vm.end_pause(r.is_err().then_some(ZX_ERR_IO));
    r
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
        .map_or(StopReason::Timeout, |s| vm.locate_stop(s));
    let exit_code = match stop {
        StopReason::Exit(c) => Some(c),
        _ => None,
    };
    RunResult {
        exit_code,
        stop,
        console: vm.console().contents(),
        test_reports: vm.reports().all(),
        stats: stats(vm),
        snapshots: Vec::new(),
        warnings: Vec::new(),
        ram_blake3: None,
    }
}

/// The run summary of `vm` so far.
pub(crate) fn stats(vm: &vm::Vm) -> RunSummary {
    let mut s = RunSummary::collect(&vm.host().counters(), &vm.guest().counters());
    if let Some(c) = vm.pager_counters() {
        s.add_pager(c);
    }
    if let Some(usage) = vm.ram_vmo().and_then(|r| r.host_usage()) {
        s.add_ram_usage(usage, vm.shared_root().map(|r| r.resident_bytes()));
    }
    s.time_to_first_instruction_ns = vm.time_to_first_run().map_or(0, |d| d.as_nanos() as u64);
    s.time_to_stop_ns = vm.time_to_stop().map_or(0, |d| d.as_nanos() as u64);
    s
}
