//! Command-line parsing and the run summary of `kvmpager`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kvmpager_vmm::config::{DEFAULT_VCPUS, GuestLimits, SnapshotConfig, SnapshotThen, parse_size};
use kvmpager_vmm::host_pager::external::ExternalPager;
use kvmpager_vmm::kernel::SupplyStrategy;
use kvmpager_vmm::tools::{demo, sdk};
use kvmpager_vmm::{RunResult, StopReason, VmConfig, api, guests, snapshot};

mod remote;

/// kvmpager: a KVM micro-VMM whose guests get Zircon's user-pager model.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a guest program. With no arguments: the default micro-VM (the `demo` guest, which
    /// checksums a memory image that the host pager supplies page by page on first touch).
    Run(RunArgs),
    /// Resume a snapshot with RAM served lazily from it (or by an external pager:
    /// --pager-socket, --pager-exec).
    Restore(RestoreArgs),
    /// Ask a running VM to snapshot: through its API socket (`--api-socket`), or with SIGUSR1
    /// (`--pid`, for `kvmpager run|restore --snapshot-dir DIR`); `snapshot ls|gc|copy` list a
    /// store's snapshots, delete its unreferenced chunks, copy a snapshot between directories
    /// and URLs.
    Snapshot(SnapshotArgs),
    /// Remove the shared root of a snapshot (`restore --share`); running VMs keep their copy.
    Unshare(UnshareArgs),
    /// Print one reading of a VM (state and statistics) from its API socket.
    Stat(StatArgs),
    /// Show a live view of one or more VMs from their API sockets.
    Top(TopArgs),
    /// Measure the hypercall, SUPPLY, fault, start and restore paths against baselines.
    Bench(kvmpager_vmm::tools::bench::BenchArgs),
    /// Run the guest-side pager conformance suite (the `conformance` guest), print each case
    /// and `N passed, N failed`; exit 1 if any case failed or did not run. `--suite zircon`:
    /// build Zircon's pager tests (guest/sdk/tests) with the C/C++ SDK and run them instead.
    Test(TestArgs),
    /// The C/C++ guest SDK: print its directory or the flags to build a guest with it, e.g.
    /// `gcc $(kvmpager sdk --cflags) hello.c $(kvmpager sdk --ldflags) -o hello`.
    Sdk(SdkArgs),
}

/// `kvmpager test --suite`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Suite {
    /// The built-in conformance guest (Rust).
    Conformance,
    /// Zircon's pager.cc and pager-writeback.cc tests, built with the C/C++ SDK.
    Zircon,
}

/// Arguments of `kvmpager sdk`.
#[derive(Debug, Args)]
struct SdkArgs {
    /// Print the SDK's directory (include/, src/, sdk.ld, tests/).
    #[arg(long)]
    path: bool,
    /// Print the flags to compile C guest code.
    #[arg(long)]
    cflags: bool,
    /// Print the flags to compile C++ guest code.
    #[arg(long)]
    cxxflags: bool,
    /// Print the flags to link a guest (builds the SDK runtime for --cc first, cached).
    #[arg(long)]
    ldflags: bool,
    /// The compiler the runtime is built with for --ldflags: gcc or clang.
    #[arg(long, default_value = "gcc")]
    cc: String,
}

/// Arguments of `kvmpager test`.
#[derive(Debug, Args)]
struct TestArgs {
    /// Number of vCPUs (ConcurrentOverlappingAccess needs 3).
    #[arg(long)]
    vcpus: Option<usize>,
    /// Stop the suite after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Which suite: the conformance guest, or Zircon's pager tests built with the C/C++ SDK
    /// (these use 32 vCPUs unless --vcpus is given).
    #[arg(long, value_enum, default_value = "conformance")]
    suite: Suite,
    /// For --suite zircon: the compiler, gcc or clang.
    #[arg(long, default_value = "gcc")]
    cc: String,
}

/// Runs the conformance suite; exit code 0 only if every registered case ran and passed.
fn test(args: &TestArgs) -> Result<i32, String> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(format!("invalid timeout {}", args.timeout));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    if let Suite::Zircon = args.suite {
        let tc = toolchain(&args.cc)?;
        let vcpus = args.vcpus.unwrap_or(sdk::ZIRCON_VCPUS);
        let r = sdk::run_zircon_suite(tc, vcpus, timeout, &mut std::io::stdout())
            .map_err(|e| e.to_string())?;
        return Ok(if r.ok() { 0 } else { 1 });
    }
    let vcpus = args
        .vcpus
        .unwrap_or(kvmpager_vmm::tools::conformance::DEFAULT_VCPUS);
    let r =
        kvmpager_vmm::tools::conformance::run_suite(vcpus, timeout).map_err(|e| e.to_string())?;
    Ok(if r.ok() { 0 } else { 1 })
}

fn toolchain(name: &str) -> Result<sdk::Toolchain, String> {
    sdk::Toolchain::parse(name).ok_or_else(|| format!("unknown compiler {name:?} (gcc or clang)"))
}

/// `kvmpager sdk`: prints the SDK's directory or one line of flags.
fn sdk_cmd(args: &SdkArgs) -> Result<i32, String> {
    let chosen = [args.path, args.cflags, args.cxxflags, args.ldflags];
    if chosen.iter().filter(|b| **b).count() != 1 {
        return Err("give exactly one of --path, --cflags, --cxxflags, --ldflags".into());
    }
    let dir = sdk::sdk_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let flags = if args.path {
        vec![dir.display().to_string()]
    } else if args.cflags {
        sdk::cflags(&dir)
    } else if args.cxxflags {
        sdk::cxxflags(&dir)
    } else {
        let lib = sdk::build_runtime(toolchain(&args.cc)?).map_err(|e| e.to_string())?;
        sdk::ldflags(&dir, &lib)
    };
    println!("{}", flags.join(" "));
    Ok(0)
}

/// Default embedded guest.
const DEFAULT_GUEST: &str = "demo";

/// The value of `--record` / `--prefetch` given without a file: DIR/workingset.bin.
const DEFAULT_FILE: &str = "<DIR/workingset.bin>";

/// `--supply`: the kernel's supply strategy.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Supply {
    /// Remap whole 2 MiB chunks of small-page aux VMOs, move everything else (the default).
    Auto,
    /// Move host pages with UFFDIO_MOVE (zero copy).
    Move,
    /// Remap whole 2 MiB chunks of aux memory over the pager VMO (zero copy).
    Remap,
    /// Copy with UFFDIO_COPY (the baseline).
    Copy,
}

/// What to do after a snapshot.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Then {
    /// Stop the VM (exit code 0).
    Stop,
    /// Let the guest go on.
    Continue,
}

/// Options of lazy RAM, snapshots and reporting shared by `run` and `restore`.
#[derive(Debug, Args)]
struct PagerArgs {
    /// Stop the VM after this many seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// Allow snapshots (the guest's `Snapshot` hypercall, or SIGUSR1 / `kvmpager snapshot`),
    /// written atomically to this directory, or to a snapshot URL (file:///DIR/NAME,
    /// http(s)://HOST/PATH/NAME, s3://BUCKET/PREFIX/NAME) as content-addressed chunks.
    #[arg(long, value_name = "DIR|URL")]
    snapshot_dir: Option<PathBuf>,
    /// After a snapshot: stop the VM or let it continue.
    #[arg(long, value_enum, default_value = "stop")]
    snapshot_then: Then,
    /// Record the pages the guest faults on into FILE at exit (default for `restore`:
    /// DIR/workingset.bin).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = DEFAULT_FILE)]
    record: Option<PathBuf>,
    /// Supply a recorded working set in large batches before the guest starts (default for
    /// `restore`: DIR/workingset.bin).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = DEFAULT_FILE)]
    prefetch: Option<PathBuf>,
    /// With --prefetch: supply the working set on a background thread while the guest runs
    /// (it starts at once; faults on pages not yet prefetched are served on demand).
    #[arg(long, requires = "prefetch")]
    prefetch_while_running: bool,
    /// Widen each page request to an aligned window of this size (4K..16M, a power of two).
    #[arg(long, default_value = "2M", value_parser = parse_size_arg)]
    readahead: u64,
    /// Never supply huge pages (2 MiB runs move as 4 KiB pages).
    #[arg(long)]
    no_huge_pages: bool,
    /// How SUPPLY fills pager VMOs (host pager and guest pagers alike): auto (remap whole
    /// 2 MiB chunks of small-page aux VMOs, move the rest), move host pages (UFFDIO_MOVE),
    /// remap 2 MiB chunks of host memory (mremap), or copy (UFFDIO_COPY).
    #[arg(long, value_enum, default_value = "auto")]
    supply: Supply,
    /// Most bytes of VMOs the guest may have alive at once (K/M/G suffixes); past it
    /// `zx_vmo_create` and `zx_pager_create_vmo` give the guest ZX_ERR_NO_MEMORY.
    #[arg(long, default_value = "4G", value_parser = parse_size_arg)]
    guest_vmo_limit: u64,
    /// Most handles the guest may hold at once; past it calls give ZX_ERR_NO_RESOURCES.
    #[arg(long, value_name = "N", default_value_t = GuestLimits::default().handles)]
    max_handles: usize,
    /// Most VMOs (pager VMOs and children included) the guest may have alive at once; past it
    /// ZX_ERR_NO_RESOURCES.
    #[arg(long, value_name = "N", default_value_t = GuestLimits::default().vmos)]
    max_vmos: usize,
    /// Most page-request/COMPLETE packets the guest's pagers may leave unread; at it
    /// zx_pager_create_vmo gives ZX_ERR_NO_MEMORY.
    #[arg(long, value_name = "N", default_value_t = GuestLimits::default().queued_packets)]
    max_queued_packets: usize,
    /// Most VMOs the guest may have mapped with VmarMap at once (each is a KVM memslot); past
    /// it ZX_ERR_NO_RESOURCES.
    #[arg(long, value_name = "N", default_value_t = GuestLimits::default().mappings)]
    max_mappings: u32,
    /// Stop the VM, naming the VMO and offset, when a page request (of the host pager or a
    /// guest pager) has gone unanswered this many seconds; by default it waits forever, as
    /// in Zircon.
    #[arg(long, value_name = "SECONDS")]
    fault_timeout: Option<f64>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// When the VM stops, print a BLAKE3 hash of all guest RAM (`ram_blake3` in --json), to
    /// compare restores.
    #[arg(long)]
    ram_hash: bool,
    /// Do not pin the VM's threads (vCPUs, fault service, host pager or external pager
    /// bridge) to host CPUs (by default vCPU 0 and the threads serving its faults share one
    /// CPU, and the pager thread hands off instead of polling).
    #[arg(long)]
    no_pin: bool,
    /// Serve the control API (HTTP/1.1, JSON, Prometheus metrics) on this Unix socket while
    /// the VM runs (mode 0600; a stale socket is replaced, a live one refused).
    #[arg(long, value_name = "PATH")]
    api_socket: Option<PathBuf>,
}

/// An external pager serving RAM (`run` and `restore`).
#[derive(Debug, Args)]
struct ExternalArgs {
    /// Serve guest RAM with an external pager listening on this Unix socket (the wire
    /// protocol is in the README); the VM stops, explained, if it disconnects.
    #[arg(long, value_name = "PATH", conflicts_with = "pager_exec")]
    pager_socket: Option<PathBuf>,
    /// Serve guest RAM with an external pager started as `sh -c CMD`, its stdin the connected
    /// socket (KVMPAGER_PAGER_FD=0) and KVMPAGER_IMAGE the RAM image (`run`: the --image or
    /// the demo image; `restore`: the snapshot's DIR/ram.img); the VM stops, explained, if it
    /// exits.
    #[arg(long, value_name = "CMD")]
    pager_exec: Option<String>,
}

impl ExternalArgs {
    fn pager(&self) -> Option<ExternalPager> {
        match (&self.pager_socket, &self.pager_exec) {
            (Some(p), _) => Some(ExternalPager::Socket(p.clone())),
            (None, Some(cmd)) => Some(ExternalPager::Exec(cmd.clone())),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// The snapshot directory, or a snapshot URL (file://, http(s)://, s3://).
    dir: PathBuf,
    /// Back RAM with the snapshot's host-wide shared copy (under /dev/shm/kvmpager, or
    /// $KVMPAGER_SHARE_DIR), mapped copy-on-write: VMs restored from one snapshot with
    /// --share, in this process or others, hold its pages once. From a snapshot URL the copy
    /// is filled with verified chunks as pages are first touched.
    #[arg(long)]
    share: bool,
    /// Restore N VMs from the snapshot in this process (each with its own vCPUs and RAM);
    /// clone i > 0 records to FILE.i and snapshots to DIR.i. From a snapshot URL the clones
    /// share one fetcher and chunk cache (one fetch per chunk for all of them).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    clones: u32,
    #[command(flatten)]
    external: ExternalArgs,
    #[command(flatten)]
    pager: PagerArgs,
    #[command(flatten)]
    remote: remote::RemoteArgs,
}

#[derive(Debug, Args)]
struct UnshareArgs {
    /// The snapshot directory or snapshot URL whose shared root to remove.
    dir: PathBuf,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SnapshotArgs {
    /// Process id of the running kvmpager (sends SIGUSR1; the VM writes to its --snapshot-dir).
    #[arg(long, conflicts_with = "api_socket")]
    pid: Option<i32>,
    /// The VM's API socket (`PUT /snapshot`; waits until the snapshot is written).
    #[arg(long, value_name = "PATH")]
    api_socket: Option<PathBuf>,
    /// With --api-socket: the snapshot directory (default: the VM's --snapshot-dir).
    #[arg(long, value_name = "DIR", requires = "api_socket")]
    path: Option<PathBuf>,
    /// With --api-socket: stop the VM after the snapshot (default: it goes on).
    #[arg(long, requires = "api_socket")]
    stop: bool,
    #[command(subcommand)]
    action: Option<remote::SnapshotAction>,
}

/// Arguments of `kvmpager stat`.
#[derive(Debug, Args)]
struct StatArgs {
    /// The VM's API socket.
    socket: PathBuf,
    /// Print `{"vm": …, "stats": …}` as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `kvmpager top`.
#[derive(Debug, Args)]
struct TopArgs {
    /// The VMs' API sockets.
    #[arg(required = true)]
    sockets: Vec<PathBuf>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Guest ELF file, or `embedded:NAME` for a program built into kvmpager.
    #[arg(long)]
    guest: Option<String>,
    /// Number of vCPUs.
    #[arg(long, default_value_t = DEFAULT_VCPUS)]
    vcpus: u32,
    /// Guest RAM size (e.g. 256M, 1G).
    #[arg(long, default_value = "256M", value_parser = parse_size_arg)]
    memory: u64,
    /// Back guest RAM with this raw, sparse memory image (byte i of the file is guest-physical
    /// byte i; holes and the rest of RAM read as zero). Default with no --guest: a generated
    /// demo image.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Back guest RAM with the built-in pattern pager instead of an image file: the demo
    /// image's bytes are computed page by page on first touch.
    #[arg(long, conflicts_with_all = ["pager_socket", "pager_exec"])]
    pattern: bool,
    #[command(flatten)]
    external: ExternalArgs,
    #[command(flatten)]
    pager: PagerArgs,
    /// Serve guest RAM on demand with the built-in host pager (default).
    #[arg(long, overrides_with = "no_lazy_ram")]
    lazy_ram: bool,
    /// Back guest RAM with a plain VMO instead.
    #[arg(long)]
    no_lazy_ram: bool,
}

/// A positive number of seconds as a duration.
fn seconds(s: Option<f64>, what: &str) -> Result<Option<Duration>, String> {
    match s {
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(format!("invalid {what} {s}")),
        None => Ok(None),
    }
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let result = match Cli::parse().command {
        Command::Run(args) => run(&args),
        Command::Restore(args) => restore(&args),
        Command::Snapshot(args) => snapshot(&args),
        Command::Unshare(args) => unshare(&args),
        Command::Stat(a) => api::commands::stat(&a.socket, a.json),
        Command::Top(a) => match seconds(Some(a.interval), "interval") {
            Ok(i) => api::commands::top(&a.sockets, i.unwrap_or_default(), a.count),
            Err(e) => Err(e),
        },
        Command::Bench(args) => return kvmpager_vmm::tools::bench::main(&args),
        Command::Test(args) => test(&args),
        Command::Sdk(args) => sdk_cmd(&args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("kvmpager: {e}");
        1
    })
}

fn run(args: &RunArgs) -> Result<i32, String> {
    let mut c = config(args)?;
    let mut demo_image = None;
    if args.pattern {
        if args.image.is_some() {
            return Err("--pattern and --image both say what RAM holds; give one".into());
        }
        let p = demo::DemoPattern::new(demo::DEFAULT_DATA_LEN).map_err(|e| e.to_string())?;
        c.demo_pattern = Some(demo::DEFAULT_DATA_LEN);
        eprintln!(
            "kvmpager: RAM holds the demo image computed by the built-in pattern pager ({} MiB of data, checksum {:#018x}); served on demand",
            demo::DEFAULT_DATA_LEN >> 20,
            p.image().checksum
        );
    } else if args.guest.is_none() && args.image.is_none() {
        let path = std::env::temp_dir().join(format!("kvmpager-demo-{}.img", std::process::id()));
        let img = demo::write_image(&path, demo::DEFAULT_DATA_LEN)
            .map_err(|e| format!("cannot write the demo image {}: {e}", path.display()))?;
        eprintln!(
            "kvmpager: demo image {} ({} MiB of data, {} MiB stored, holes elsewhere; checksum {:#018x}); guest RAM served on demand",
            path.display(),
            img.data_len >> 20,
            img.data_bytes >> 20,
            img.checksum
        );
        c.image = Some(path.clone());
        demo_image = Some(path);
    }
    let r = kvmpager_vmm::run(&c).map_err(|e| e.to_string());
    if let Some(p) = demo_image {
        let _ = std::fs::remove_file(p);
    }
    Ok(report(&r?, args.pager.json))
}

fn restore(args: &RestoreArgs) -> Result<i32, String> {
    if let Some(url) = args.dir.to_str().filter(|d| kvmpager_vmm::store::is_url(d)) {
        return restore_url(url, args);
    }
    let mut c = VmConfig::new(Vec::new());
    pager_config(&mut c, &args.pager, Some(&args.dir))?;
    c.external_pager = args.external.pager();
    c.share = args.share;
    if args.clones > 1 {
        c.echo_console = false;
        let rs = kvmpager_vmm::restore_clones(&args.dir, &c, args.clones as usize);
        return Ok(report_clones(&rs, args.pager.json));
    }
    let r = kvmpager_vmm::restore(&args.dir, &c).map_err(|e| e.to_string())?;
    Ok(report(&r, args.pager.json))
}

/// `restore URL`: `--prefetch` without a FILE prefetches the manifest's working set.
fn restore_url(url: &str, args: &RestoreArgs) -> Result<i32, String> {
    let mut c = VmConfig::new(Vec::new());
    pager_config(&mut c, &args.pager, Some(&args.dir))?;
    c.external_pager = args.external.pager();
    let marker = args.dir.join(snapshot::WORKING_SET_FILE);
    if c.record.as_ref() == Some(&marker) {
        return Err("--record needs a FILE when restoring from a URL".into());
    }
    let prefetch = c.prefetch.as_ref() == Some(&marker);
    if prefetch {
        c.prefetch = None;
    }
    c.share = args.share;
    c.pin_threads = args.share && !args.pager.no_pin;
    let opts = args.remote.options(prefetch);
    if args.clones > 1 {
        c.echo_console = false;
        let rs = kvmpager_vmm::restore_url_clones(url, &c, &opts, args.clones as usize)
            .map_err(|e| e.to_string())?;
        return Ok(report_clones(&rs, args.pager.json));
    }
    let r = kvmpager_vmm::restore_url(url, &c, &opts).map_err(|e| e.to_string())?;
    Ok(report(&r, args.pager.json))
}

/// `unshare DIR|URL`: removes the snapshot's shared root.
fn unshare(args: &UnshareArgs) -> Result<i32, String> {
    use kvmpager_vmm::host_pager::shared_root::{self, RootKey};
    let key = match args.dir.to_str().filter(|d| kvmpager_vmm::store::is_url(d)) {
        Some(url) => kvmpager_vmm::store::root_key(url).map_err(|e| e.to_string())?,
        None => {
            let snap = snapshot::Snapshot::open(&args.dir).map_err(|e| e.to_string())?;
            RootKey::of_dir(&snap).map_err(|e| e.to_string())?
        }
    };
    let path = key.path();
    match shared_root::remove_key(key).map_err(|e| e.to_string())? {
        true => eprintln!("kvmpager: removed the shared root {}", path.display()),
        false => eprintln!("kvmpager: no shared root at {}", path.display()),
    }
    Ok(0)
}

/// Reports every clone (JSON: `{"clones": [...], "totals": {...}}` on stdout) and returns
/// the first non-zero exit code (0 when every clone's is 0).
fn report_clones(rs: &[kvmpager_vmm::Result<RunResult>], json: bool) -> i32 {
    let totals = kvmpager_vmm::summary::CloneTotals::of(rs.iter().filter_map(|r| r.as_ref().ok()));
    let mut code = 0;
    let mut out = Vec::new();
    for (i, r) in rs.iter().enumerate() {
        let c = match r {
            Ok(r) => {
                if !json {
                    eprintln!("=== clone {i}");
                }
                if json {
                    out.push(run_json(r));
                    exit_code(r)
                } else {
                    report(r, false)
                }
            }
            Err(e) => {
                eprintln!("kvmpager: clone {i}: {e}");
                if json {
                    out.push(serde_json::json!({ "error": e.to_string() }));
                }
                1
            }
        };
        if code == 0 {
            code = c;
        }
    }
    if json {
        let v = serde_json::json!({ "clones": out, "totals": totals });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        eprintln!("=== {} clones: {}", rs.len(), totals.summary());
    }
    code
}

/// `snapshot`: a store action (`ls`, `gc`, `copy`), or a snapshot of a running VM.
fn snapshot(args: &SnapshotArgs) -> Result<i32, String> {
    if let Some(a) = &args.action {
        return remote::snapshot_action(a);
    }
    match (&args.api_socket, args.pid) {
        (Some(socket), _) => api::commands::snapshot(socket, args.path.as_deref(), args.stop),
        (None, Some(pid)) => signal_snapshot(pid),
        (None, None) => Err(
            "give --api-socket PATH or --pid PID, or `snapshot ls|gc ROOT-URL` / `snapshot copy SRC DST`"
                .into(),
        ),
    }
}

fn signal_snapshot(pid: i32) -> Result<i32, String> {
    if pid <= 0 {
        return Err(format!("invalid pid {pid}"));
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number touches no memory.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        return Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    eprintln!("kvmpager: asked process {pid} for a snapshot");
    Ok(0)
}

/// Applies the shared options; `dir` is the snapshot being restored (default file names).
fn pager_config(
    c: &mut VmConfig,
    a: &PagerArgs,
    dir: Option<&std::path::Path>,
) -> Result<(), String> {
    c.echo_console = !a.json;
    c.api_socket = a.api_socket.clone();
    c.progress = true;
    c.timeout = seconds(a.timeout, "timeout")?;
    c.fault_timeout = seconds(a.fault_timeout, "fault timeout")?;
    c.readahead = a.readahead;
    c.huge_pages = !a.no_huge_pages;
    c.pin_threads = !a.no_pin;
    c.supply = match a.supply {
        Supply::Auto => SupplyStrategy::Auto,
        Supply::Move => SupplyStrategy::Move,
        Supply::Remap => SupplyStrategy::Remap,
        Supply::Copy => SupplyStrategy::Copy,
    };
    let default_file = |p: &PathBuf| -> Result<PathBuf, String> {
        if p.as_os_str() != DEFAULT_FILE {
            return Ok(p.clone());
        }
        dir.map(|d| d.join(snapshot::WORKING_SET_FILE))
            .ok_or_else(|| "--record and --prefetch need a FILE with `run`".to_string())
    };
    c.record = a.record.as_ref().map(default_file).transpose()?;
    c.prefetch = a.prefetch.as_ref().map(default_file).transpose()?;
    c.prefetch_while_running = a.prefetch_while_running;
    c.ram_hash = a.ram_hash;
    c.limits = GuestLimits {
        handles: a.max_handles,
        vmos: a.max_vmos,
        vmo_bytes: a.guest_vmo_limit,
        queued_packets: a.max_queued_packets,
        mappings: a.max_mappings,
    };

    c.snapshot = a.snapshot_dir.as_ref().map(|d| SnapshotConfig {
        dir: d.clone(),
        then: match a.snapshot_then {
            Then::Stop => SnapshotThen::Stop,
            Then::Continue => SnapshotThen::Continue,
        },
    });
    if c.snapshot.is_some() {
        kvmpager_vmm::install_snapshot_signal().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn guest_elf(guest: Option<&str>) -> Result<Vec<u8>, String> {
    let name = match guest {
        None => DEFAULT_GUEST,
        Some(g) => match g.strip_prefix("embedded:") {
            Some(n) => n,
            None => {
                let path = PathBuf::from(g);
                return std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()));
            }
        },
    };
    guests::by_name(name)
        .map(|p| p.elf.to_vec())
        .ok_or_else(|| format!("no embedded guest named {name:?}"))
}

fn config(a: &RunArgs) -> Result<VmConfig, String> {
    let mut c = VmConfig::new(guest_elf(a.guest.as_deref())?);
    c.vcpus = a.vcpus;
    c.memory = a.memory;
    c.lazy_ram = !a.no_lazy_ram;
    c.image = a.image.clone();
    c.external_pager = a.external.pager();
    pager_config(&mut c, &a.pager, None)?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Prints the summary (text on stderr, or JSON on stdout) and returns the exit code: the
/// guest's (`code & 0xff`), 0 after a snapshot that stopped the VM, else 1.
fn report(r: &RunResult, json: bool) -> i32 {
    for w in &r.warnings {
        eprintln!("kvmpager: warning: {w}");
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run_json(r)).unwrap_or_default()
        );
    } else {
        eprintln!("--- kvmpager: {}", r.stop);
        for w in &r.snapshots {
            eprintln!(
                "snapshot: {} ({:.1} MiB of RAM data)",
                w.dir.display(),
                w.ram_data_bytes as f64 / (1 << 20) as f64
            );
            if let Some(u) = &w.upload {
                eprintln!(
                    "upload: {} chunks: {} new, {} already stored ({:.1} % new), {} zero; {:.1} MiB sent in {:.1} ms",
                    u.chunks,
                    u.new_chunks,
                    u.reused_chunks,
                    u.new_percent(),
                    u.zero_chunks,
                    u.bytes_uploaded as f64 / (1 << 20) as f64,
                    u.elapsed_ns as f64 / 1e6
                );
            }
        }
        eprintln!("{}", r.stats.summary());
        if let Some(h) = &r.ram_blake3 {
            eprintln!("guest RAM blake3: {h}");
        }
    }
    exit_code(r)
}

/// The JSON report of one VM.
fn run_json(r: &RunResult) -> serde_json::Value {
    let snapshots: Vec<String> = r
        .snapshots
        .iter()
        .map(|w| w.dir.display().to_string())
        .collect();
    serde_json::json!({
        "stop": r.stop.to_string(),
        "exit_code": r.exit_code,
        "console": r.console_text(),
        "snapshots": snapshots,
        "uploads": r.snapshots.iter().filter_map(|w| w.upload.as_ref()).collect::<Vec<_>>(),
        "warnings": r.warnings,
        "ram_blake3": r.ram_blake3,
        "stats": r.stats,
    })
}

/// The exit code of one VM: the guest's (`code & 0xff`), 0 after a snapshot that stopped
/// the VM, else 1.
fn exit_code(r: &RunResult) -> i32 {
    match r.stop {
        StopReason::Exit(code) => (code & 0xff) as i32,
        StopReason::Snapshotted(_) | StopReason::Requested => 0,
        _ => {
            eprintln!("kvmpager: VM stopped: {}", r.stop);
            1
        }
    }
}
