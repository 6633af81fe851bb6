//! Case 9: external pagers (`--pager-exec`), against the raw userfaultfd handler of case 3
//! measured in the same run.
//!
//! - Fault latency: the C example pager (`vmm/examples/pagers/image_pager.c`, embedded here,
//!   compiled with `cc` into a temporary directory; the case is skipped with a note when there
//!   is no C compiler) serves the `bench_faults` guest's 4 KiB faults (`KVMPAGER_WINDOW=4096`)
//!   from a sparse image; guest view (TSC per touch) and service view (the kernel's fault
//!   event read → request resolved, which here spans the socket round trip to the pager).
//! - Supply throughput: the bridge's data path ([`RegionSupplier`]) moving 2 MiB runs from a
//!   data region (memfd) into a pager VMO, vs `memcpy` of the same 2 MiB runs out of the same
//!   region into a resident buffer.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kvmpager::abi::vmo_op::{ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use kvmpager::abi::vmo_options::KVMPAGER_VMO_HUGE;
use kvmpager::abi::{HUGE_PAGE_SIZE, PAGE_SIZE, status::ZX_OK};

use super::faults::{GuestTouches, RawPlace, pinned, raw_guest, touch_params};
use super::report::Distribution;
use super::{Figure, Options, Report, Target, all_ok, guest_config, median, run_guest};
use crate::host_pager::HostPager;
use crate::host_pager::external::{ExternalPager, REGION_SIZE, RegionSupplier, memfd};
use crate::kernel::Process;

/// The C example pager's source.
const C_PAGER: &str = include_str!("../../../examples/pagers/image_pager.c");
/// Guest RAM of the latency VM (as case 3).
const MEMORY: u64 = 256 << 20;
/// Guest RAM touched starts here (as case 3).
const TOUCH_BASE: u64 = 32 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// Rounds of the latency comparison (raw handler, then C pager, each round).
const ROUNDS: usize = 3;

/// Runs case 9.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let n = opts.faults;
    let mut errors = Vec::new();
    let dir = TempDir::new()?;
    let raw_apart = raw_guest(n, RawPlace::Apart).map_err(|e| format!("raw handler: {e}"));
    let bin = compile_c_pager(dir.path());
    let mut c = match &bin {
        Ok(Some(_)) => Some(Ok((Vec::new(), Vec::new()))),
        Ok(None) => {
            report.note("case 9: no C compiler (`cc`): the C pager's rows are skipped");
            None
        }
        Err(e) => Some(Err(e.clone())),
    };
    // The raw handler and the C pager take turns, ROUNDS times, and each pools its samples:
    // the outer host's noise drifts over seconds, and a ratio of two runs taken at different
    // moments would measure the drift.
    let mut raw = Ok((Vec::new(), Vec::new()));
    for _ in 0..ROUNDS {
        pool(
            &mut raw,
            raw_guest(n, RawPlace::Beside).map_err(|e| format!("raw handler: {e}")),
        );
        if let (Ok(Some(bin)), Some(acc)) = (&bin, c.as_mut()) {
            pool(acc, c_pager_faults(n, bin, dir.path()));
        }
    }
    let p50 = |v: &[f64]| Distribution::new("", "", v.to_vec()).p50_ns;
    let p99 = |v: &[f64]| Distribution::new("", "", v.to_vec()).p99_ns;
    let raw_g = raw.as_ref().ok().map(|r| r.0.clone());
    let raw_s = raw_apart.as_ref().ok().map(|r| r.1.clone());
    if let Some(c) = c {
        let (g, s) = match c {
            Ok((g, s)) => (Some(g), Some(s)),
            Err(e) => {
                errors.push(format!("C pager: {e}"));
                (None, None)
            }
        };
        let note = format!(
            "{ROUNDS} x {n} faults, 4 KiB each (KVMPAGER_WINDOW=4096), from a sparse image; \
             rounds alternate with the raw handler's"
        );
        report.push(
            Figure::new(9, "C pager fault p50", "ns")
                .value(g.as_deref().map(p50))
                .baseline(
                    "raw uffd handler p50, guest view",
                    raw_g.as_deref().map(p50),
                )
                .target(Target::AtMost(1.5))
                .view("guest vCPU, TSC per touch")
                .note(note.clone()),
        );
        report.push(
            Figure::new(9, "C pager fault p99", "ns")
                .value(g.as_deref().map(p99))
                .baseline(
                    "raw uffd handler p99, guest view",
                    raw_g.as_deref().map(p99),
                )
                .view("guest vCPU, TSC per touch")
                .note(note),
        );
        report.push(
            Figure::new(9, "C pager fault p50, service view", "ns")
                .value(s.as_deref().map(p50))
                .baseline(
                    "raw handler p50, read_event -> copy done",
                    raw_s.as_deref().map(p50),
                )
                .view("kernel fault_latency_ns (socket round trip included) vs the raw handler's clock (on another CPU)"),
        );
        if let Some(g) = g {
            report.distributions.push(Distribution::new(
                "C pager (guest view)",
                "guest vCPU, TSC per touch",
                g,
            ));
        }
    }
    for r in [raw, raw_apart] {
        if let Err(e) = r {
            errors.push(e);
        }
    }
    match throughput(opts) {
        Ok(t) => {
            report.push(
                Figure::new(
                    9,
                    "external SUPPLY 2 MiB runs from the data region",
                    "GiB/s",
                )
                .value(t.supply)
                .baseline(
                    "memcpy of the same 2 MiB runs (resident destination)",
                    t.copy,
                )
                .target(Target::AtLeast(0.8))
                .view("host: bridge data path, median over runs")
                .note(format!(
                    "{} runs of 2 MiB; region -> huge aux page (one copy) -> RAM: {}",
                    t.runs, t.paths
                )),
            );
            report.push(
                Figure::new(
                    9,
                    "external SUPPLY 2 MiB runs, aux committed ahead",
                    "GiB/s",
                )
                .value(t.ahead)
                .baseline(
                    "memcpy of the same 2 MiB runs (resident destination)",
                    t.copy,
                )
                .view("host: bridge data path without page allocation, median over runs")
                .note(
                    "each run's aux pages committed before it is timed, as the bridge's \
                     ext-pager-aux thread does in the background: memcpy + move",
                ),
            );
            report.push(
                Figure::new(9, "fresh 2 MiB aux page (kernel zeroing)", "GiB/s")
                    .value(t.fresh)
                    .baseline(
                        "memcpy of the same 2 MiB runs (resident destination)",
                        t.copy,
                    )
                    .view("host: COMMIT of a huge-page aux run, median")
                    .note("part of every supply: each supplied page is a fresh page"),
            );
        }
        Err(e) => errors.push(format!("throughput: {e}")),
    }
    all_ok(errors)
}

/// Appends a round's (guest view, service view) samples to `acc`; the first error sticks.
fn pool(
    acc: &mut Result<(Vec<f64>, Vec<f64>), String>,
    round: Result<(Vec<f64>, Vec<f64>), String>,
) {
    match (acc.as_mut(), round) {
        (Ok(a), Ok((g, s))) => {
            a.0.extend(g);
            a.1.extend(s);
        }
        (Ok(_), Err(e)) => *acc = Err(e),
        (Err(_), _) => {}
    }
}

/// Compiles the C example into `dir`; `None` when there is no C compiler.
fn compile_c_pager(dir: &Path) -> Result<Option<PathBuf>, String> {
    let src = dir.join("image_pager.c");
    let bin = dir.join("image_pager");
    std::fs::write(&src, C_PAGER).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("running cc: {e}")),
        Ok(o) if !o.status.success() => {
            Err(format!("cc failed: {}", String::from_utf8_lossy(&o.stderr)))
        }
        Ok(_) => Ok(Some(bin)),
    }
}

/// The C pager serving `n` 4 KiB faults: (guest view, service view) in ns.
fn c_pager_faults(n: u64, bin: &Path, dir: &Path) -> Result<(Vec<f64>, Vec<f64>), String> {
    let image = dir.join("ram.img");
    File::create(&image)
        .and_then(|f| f.set_len(MEMORY))
        .map_err(|e| format!("creating {}: {e}", image.display()))?;
    let mut cfg = guest_config("bench_faults", 1, MEMORY)?;
    cfg.pin_threads = pinned();
    cfg.external_pager = Some(ExternalPager::Exec(format!(
        "KVMPAGER_WINDOW=4096 exec '{}' '{}'",
        bin.display(),
        image.display()
    )));
    let params = touch_params(TOUCH_BASE, n * PAGE_SIZE, PAGE_SIZE, PAGE_SIZE);
    let done = run_guest(&cfg, &params, |_| Ok(()))?;
    let t = GuestTouches::read(&done)?;
    let lat = &done.vm.host().counters().fault_latency_ns;
    let k = lat.len().saturating_sub(t.touched as usize);
    Ok((t.samples_ns, lat[k..].iter().map(|&x| x as f64).collect()))
}

/// Throughputs of case 9's data path (GiB/s).
struct Throughput {
    /// How the supplies got the pages in (the kernel's counters).
    paths: String,
    supply: f64,
    /// The same supplies with their aux pages committed first (untimed).
    ahead: f64,
    copy: f64,
    fresh: f64,
    runs: u64,
}

/// 2 MiB runs through the bridge's data path into a fresh pager VMO vs `memcpy` from the same
/// region, and the cost of a fresh huge page alone.
fn throughput(opts: &Options) -> Result<Throughput, String> {
    // At most 64 MiB: on a nested host, memory the host VM never touched before costs ~10 us
    // per 4 KiB page at the outer level on first touch (5 ms per 2 MiB run), which would
    // measure the host's memory, not the data path, once the runs outgrow recycled memory.
    let runs = (opts.supply_budget / HUGE_PAGE_SIZE).clamp(4, 32);
    let size = runs * HUGE_PAGE_SIZE;
    let region = memfd(REGION_SIZE).map_err(|e| format!("data region: {e}"))?;
    let map = Mapped::new(&region, REGION_SIZE)?;
    // Distinct, non-zero bytes in every page the runs use.
    let window = map.slice_mut(0, HUGE_PAGE_SIZE);
    for (i, b) in window.iter_mut().enumerate() {
        *b = (i / PAGE_SIZE as usize) as u8 ^ 0x5a;
    }
    let p = Process::new();
    let pager = HostPager::create(&p, size).map_err(|e| e.to_string())?;
    let mut supplier = RegionSupplier::new(&region).map_err(|e| format!("data region: {e}"))?;
    let before = p.counters();
    // As in the bridge: the supplying thread is pinned (ext-pager-ops is), its refill thread
    // (started unpinned by `RegionSupplier::new`) runs wherever a CPU is free.
    let mut supply_ns = on_this_cpu(|| {
        let mut ns = Vec::new();
        for r in 0..runs {
            let t = Instant::now();
            let st = supplier.supply(&pager, r * HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, 0);
            ns.push(t.elapsed().as_nanos() as f64);
            if st != ZX_OK {
                return Err(format!("SUPPLY of run {r}: status {st}"));
            }
        }
        Ok(ns)
    })?;
    let after = p.counters();
    let paths = super::supply_paths(&before, &after);
    check_supplied(&pager, runs, map.slice_mut(0, HUGE_PAGE_SIZE))?;
    let pager = HostPager::create(&p, size).map_err(|e| e.to_string())?;
    let mut supplier = RegionSupplier::new(&region).map_err(|e| format!("data region: {e}"))?;
    let mut ahead_ns = on_this_cpu(|| supplies_committed_ahead(&pager, &mut supplier, runs))?;
    // The baseline: the same runs copied into memory that is already there (no allocation).
    let mut dst = vec![1u8; size as usize];
    let mut copy_ns = Vec::new();
    for r in 0..runs {
        let src = map.slice_mut(0, HUGE_PAGE_SIZE);
        let at = (r * HUGE_PAGE_SIZE) as usize;
        let t = Instant::now();
        dst[at..at + HUGE_PAGE_SIZE as usize].copy_from_slice(std::hint::black_box(&*src));
        std::hint::black_box(&mut dst);
        copy_ns.push(t.elapsed().as_nanos() as f64);
    }
    let mut fresh_ns = fresh_pages(&p, runs)?;
    let gib_s = |ns: f64| HUGE_PAGE_SIZE as f64 / GIB / (ns.max(1.0) / 1e9);
    Ok(Throughput {
        paths,
        supply: gib_s(median(&mut supply_ns)),
        ahead: gib_s(median(&mut ahead_ns)),
        copy: gib_s(median(&mut copy_ns)),
        fresh: gib_s(median(&mut fresh_ns)),
        runs,
    })
}

/// Runs `f` on a scoped thread pinned to the CPU the caller runs on now (the caller's own
/// CPU mask stays as it was).
fn on_this_cpu<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    // SAFETY: sched_getcpu has no arguments; -1 on failure.
    let cpu = unsafe { libc::sched_getcpu() };
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Ok(cpu) = usize::try_from(cpu) {
                // SAFETY: pthread_self has no arguments and names the calling thread.
                let me = unsafe { libc::pthread_self() };
                let _ = crate::kernel::pin_pthread(me, cpu);
            }
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// ns per SUPPLY of a 2 MiB run into a fresh pager VMO, each timed after the supplier's huge
/// aux VMO was committed whole (untimed).
fn supplies_committed_ahead(
    pager: &HostPager,
    supplier: &mut RegionSupplier,
    runs: u64,
) -> Result<Vec<f64>, String> {
    let mut ns = Vec::new();
    for r in 0..runs {
        supplier
            .commit_ahead(pager, true)
            .map_err(|s| format!("committing the aux VMO: status {s}"))?;
        let t = Instant::now();
        let st = supplier.supply(pager, r * HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, 0);
        ns.push(t.elapsed().as_nanos() as f64);
        if st != ZX_OK {
            return Err(format!("SUPPLY of run {r} (committed ahead): status {st}"));
        }
    }
    Ok(ns)
}

/// ns per COMMIT (then DECOMMIT) of a 2 MiB run of a huge-page aux VMO, `runs` times.
fn fresh_pages(p: &Process, runs: u64) -> Result<Vec<f64>, String> {
    let st = |call: &'static str| move |s: i32| format!("{call}: status {s}");
    let aux = p
        .vmo_create(HUGE_PAGE_SIZE, KVMPAGER_VMO_HUGE)
        .map_err(st("zx_vmo_create"))?;
    let mut ns = Vec::new();
    let r = (0..runs).try_for_each(|_| {
        let t = Instant::now();
        p.vmo_op_range(aux, ZX_VMO_OP_COMMIT, 0, HUGE_PAGE_SIZE)
            .map_err(st("COMMIT"))?;
        ns.push(t.elapsed().as_nanos() as f64);
        p.vmo_op_range(aux, ZX_VMO_OP_DECOMMIT, 0, HUGE_PAGE_SIZE)
            .map_err(st("DECOMMIT"))
    });
    let _ = p.handle_close(aux);
    r.map(|_| ns)
}

/// Checks that a page of every run of the pager VMO holds the region's bytes.
fn check_supplied(pager: &HostPager, runs: u64, window: &[u8]) -> Result<(), String> {
    for r in 0..runs {
        let page = (r % (HUGE_PAGE_SIZE / PAGE_SIZE)) * PAGE_SIZE;
        let mut got = vec![0u8; PAGE_SIZE as usize];
        pager
            .ram()
            .peek(r * HUGE_PAGE_SIZE + page, &mut got)
            .map_err(|s| format!("reading back run {r}: status {s}"))?;
        let want = &window[page as usize..(page + PAGE_SIZE) as usize];
        if got != want {
            return Err(format!("run {r}: RAM holds other bytes than the region"));
        }
    }
    Ok(())
}

/// A shared read-write mapping of a file.
struct Mapped {
    addr: *mut u8,
    len: usize,
}

impl Mapped {
    fn new(f: &File, len: u64) -> Result<Self, String> {
        // SAFETY: a new shared mapping of `len` bytes of an open file; no memory of ours is
        // touched, and the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Mapped {
            addr: addr.cast(),
            len: len as usize,
        })
    }

    #[allow(clippy::mut_from_ref)]
    fn slice_mut(&self, at: u64, len: u64) -> &mut [u8] {
        assert!(at as usize + len as usize <= self.len);
        // SAFETY: inside the live mapping; the bench uses one slice at a time and the
        // mapping's other user (the supplier) only reads the file through its descriptor.
        unsafe { std::slice::from_raw_parts_mut(self.addr.add(at as usize), len as usize) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; no slice of it outlives `self`.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        let p = std::env::temp_dir().join(format!(
            "kvmpager-bench-ext-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
