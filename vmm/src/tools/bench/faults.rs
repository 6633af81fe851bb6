//! Case 3: fault service latency (p50/p99/max) for a guest touching pages that are not there,
//! served by (a) the built-in host pager (lazy RAM) and (b) a guest pager on vCPU 1 (a pager
//! VMO mapped at the aperture), vs a minimal raw userfaultfd handler in the bench
//! (`read_event` → `UFFDIO_COPY`) against the same kernel.
//!
//! Like is compared with like: the main figures are the **guest view** — the `bench_faults`
//! guest times every touch with the TSC (calibrated against `ClockGetMonotonic` over the loop),
//! and the raw handler serves *the same guest program* touching plain guest RAM whose pages the
//! bench registered with its own userfaultfd. So the only difference is who serves the fault.
//! Secondary figures: the **service view** (the kernel's own samples, fault event read →
//! request resolved, vs the raw handler's event read → copy done) and the raw handler serving a
//! host thread (the faulting thread's view, no KVM in the path).
//!
//! The VMs pin their threads, as `run` does (`KVMPAGER_BENCH_UNPINNED=1`: the host's own
//! placement). The raw handler is pinned where it is fastest for each view: beside its vCPU for
//! the guest view; on another CPU for its service view, since beside the vCPU the vCPU its copy
//! wakes preempts it inside the ioctl and its clock would count the vCPU's next round trip.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use kvmpager::abi::PAGE_SIZE;
use kvmpager::abi::layout::APERTURE_START;
use kvmpager::hostmem::HostMemory;
use kvmpager::uffd::{UffdEvent, Userfault};

use super::report::Distribution;
use super::{Figure, Finished, MAGIC, Options, Report, Target, all_ok, guest_config, run_guest};
use crate::config::VmConfig;
use crate::vm::Vm;

pub(crate) const MODE_TOUCH: u64 = 1;
pub(crate) const MODE_APERTURE: u64 = 2;
/// Guest RAM touched in TOUCH mode starts here (above the program, params and samples).
const TOUCH_BASE: u64 = 32 << 20;
const MEMORY: u64 = 256 << 20;
const RESULT_WORDS: usize = 10;

/// What a bench_faults run left in its results page.
pub(crate) struct GuestTouches {
    /// Pages touched.
    pub touched: u64,
    /// Per-touch latency in ns (first `MAX_SAMPLES` touches).
    pub samples_ns: Vec<f64>,
    /// From the start of the restore (or the loop) to the last touch, ns.
    pub total_ns: f64,
    /// When the toucher was let go, ns after the start.
    pub ready_ns: f64,
    /// Guest-pager call failures.
    pub errors: u64,
    /// The VM clock at the last touch, ns.
    pub end_clock_ns: u64,
}

impl GuestTouches {
    pub(crate) fn read(done: &Finished) -> Result<Self, String> {
        let r = done.results(RESULT_WORDS)?;
        let (touched, gpa, recorded) = (r[1], r[2], r[3] as usize);
        let (touch_ns, touch_tsc) = (r[5] as f64, r[6] as f64);
        let ns_per_cycle = if touch_tsc > 0.0 {
            touch_ns / touch_tsc
        } else {
            0.0
        };
        let samples_ns = done
            .words(gpa, recorded)?
            .into_iter()
            .map(|c| c as f64 * ns_per_cycle)
            .collect();
        Ok(GuestTouches {
            touched,
            samples_ns,
            total_ns: r[4] as f64,
            ready_ns: r[8] as f64,
            errors: r[7],
            end_clock_ns: r[9],
        })
    }
}

/// Parameters of a TOUCH-mode run: `run` bytes at every `stride` of guest RAM
/// `[base, base + size)`.
pub(crate) fn touch_params(base: u64, size: u64, run: u64, stride: u64) -> Vec<u64> {
    vec![MAGIC, MODE_TOUCH, 0, base, stride, size, run, 0]
}

/// Parameters of an APERTURE-mode run (guest pager on vCPU 1).
pub(crate) fn aperture_params(size: u64, run: u64, stride: u64, prefetch: u64) -> Vec<u64> {
    vec![
        MAGIC,
        MODE_APERTURE,
        0,
        APERTURE_START,
        stride,
        size,
        run,
        prefetch,
    ]
}

/// Runs case 3.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let n = opts.faults;
    let mut errors = Vec::new();
    let mut keep = |r: Result<(Vec<f64>, Vec<f64>), String>, what: &str| match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            None
        }
    };
    let host = keep(host_pager(n), "host pager");
    let guest = keep(guest_pager(n), "guest pager");
    let raw = keep(raw_guest(n, RawPlace::Beside), "raw handler, guest");
    let raw_apart = keep(raw_guest(n, RawPlace::Apart), "raw handler, apart");
    let raw_host = keep(
        raw_host_thread(n).map(|v| (v, Vec::new())),
        "raw handler, host",
    );

    let dist = |name: &str, view: &str, v: Option<&Vec<f64>>| {
        v.filter(|v| !v.is_empty())
            .map(|v| Distribution::new(name, view, v.clone()))
    };
    const GUEST: &str = "guest vCPU, TSC per touch";
    const SERVICE: &str = "service: fault event read -> resolved";
    let d_host = dist(
        "host pager (guest view)",
        GUEST,
        host.as_ref().map(|h| &h.0),
    );
    let d_guest = dist(
        "guest pager on vCPU 1 (guest view)",
        GUEST,
        guest.as_ref().map(|g| &g.0),
    );
    let d_raw = dist(
        "raw uffd handler (guest view)",
        GUEST,
        raw.as_ref().map(|r| &r.0),
    );
    let d_raw_host = dist(
        "raw uffd handler, host thread",
        "faulting host thread, Instant per touch",
        raw_host.as_ref().map(|r| &r.0),
    );
    let s_host = dist(
        "host pager (service view)",
        SERVICE,
        host.as_ref().map(|h| &h.1),
    );
    let s_guest = dist(
        "guest pager (service view)",
        SERVICE,
        guest.as_ref().map(|g| &g.1),
    );
    let s_raw = dist(
        "raw uffd handler (service view)",
        "handler on another CPU: read_event -> UFFDIO_COPY done",
        raw_apart.as_ref().map(|r| &r.1),
    );

    let stat = |d: &Option<Distribution>, q: &str| {
        d.as_ref().map(|d| match q {
            "p50" => d.p50_ns,
            "p99" => d.p99_ns,
            _ => d.max_ns,
        })
    };
    let count = |d: &Option<Distribution>| d.as_ref().map_or(0, |d| d.samples_ns.len());
    let raw_name = |q: &str| format!("raw uffd handler {q}, guest view");
    for q in ["p50", "p99", "max"] {
        let mut f = Figure::new(3, format!("host pager fault {q}"), "ns")
            .value(stat(&d_host, q))
            .baseline(raw_name(q), stat(&d_raw, q))
            .view(GUEST)
            .note(format!(
                "{} faults; lazy RAM, zero fill, read-ahead off (4 KiB)",
                count(&d_host)
            ));
        if q == "p50" {
            f = f.target(Target::AtMost(1.2));
        }
        report.push(f);
    }
    for q in ["p50", "p99", "max"] {
        report.push(
            Figure::new(3, format!("guest pager (vCPU 1) fault {q}"), "ns")
                .value(stat(&d_guest, q))
                .baseline(raw_name(q), stat(&d_raw, q))
                .view(GUEST)
                .note(format!(
                    "{} faults; PortWait -> SUPPLY from a pre-filled aux",
                    count(&d_guest)
                )),
        );
    }
    for (name, d) in [("host pager", &s_host), ("guest pager", &s_guest)] {
        let mut f = Figure::new(3, format!("{name} fault p50, service view"), "ns")
            .value(stat(d, "p50"))
            .baseline(
                "raw handler p50, read_event -> copy done",
                stat(&s_raw, "p50"),
            )
            .view("kernel fault_latency_ns vs the raw handler's own clock (on another CPU)");
        if name == "host pager" {
            f = f.target(Target::AtMost(2.0));
        }
        report.push(f);
    }
    report.push(
        Figure::new(3, "raw uffd fault p50 from a guest vCPU", "ns")
            .value(stat(&d_raw, "p50"))
            .baseline(
                "same handler, host thread faulting",
                stat(&d_raw_host, "p50"),
            )
            .view("faulting side")
            .note("what KVM adds to a userfaultfd round trip"),
    );
    report.distributions.extend(
        [d_host, d_guest, d_raw, d_raw_host, s_host, s_raw]
            .into_iter()
            .flatten(),
    );
    all_ok(errors)
}

/// Whether case 3's VMs pin their threads (the default; `KVMPAGER_BENCH_UNPINNED=1` measures
/// the host's own placement instead). The raw handler is then pinned beside its vCPU too.
pub(crate) fn pinned() -> bool {
    std::env::var_os("KVMPAGER_BENCH_UNPINNED").is_none()
}

/// The last `n` kernel fault-latency samples (the touch loop's faults come last).
fn last(v: &[u64], n: u64) -> Vec<f64> {
    let k = v.len().saturating_sub(n as usize);
    v[k..].iter().map(|&x| x as f64).collect()
}

/// (a): lazy RAM, the built-in host pager. Returns (guest view, service view).
fn host_pager(n: u64) -> Result<(Vec<f64>, Vec<f64>), String> {
    host_pager_with(n, |_, _| Ok(()))
}

/// [`host_pager`], calling `before_start` with the VM and its configuration before the vCPUs
/// start (case 6 starts the control socket there).
pub(crate) fn host_pager_with(
    n: u64,
    before_start: impl FnOnce(&Arc<Vm>, &VmConfig) -> Result<(), String>,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut cfg = guest_config("bench_faults", 1, MEMORY)?;
    // Every touch a fault of its own: no read-ahead around it.
    cfg.readahead = PAGE_SIZE;
    cfg.pin_threads = pinned();
    let params = touch_params(TOUCH_BASE, n * PAGE_SIZE, PAGE_SIZE, PAGE_SIZE);
    let done = run_guest(&cfg, &params, |vm| before_start(vm, &cfg))?;
    let t = GuestTouches::read(&done)?;
    let kernel = last(&done.vm.host().counters().fault_latency_ns, t.touched);
    Ok((t.samples_ns, kernel))
}

/// (b): a guest pager on vCPU 1 serving a VMO mapped at the aperture.
fn guest_pager(n: u64) -> Result<(Vec<f64>, Vec<f64>), String> {
    let cfg = guest_config("bench_faults", 2, MEMORY)?;
    let params = aperture_params(n * PAGE_SIZE, PAGE_SIZE, PAGE_SIZE, 0);
    let done = run_guest(&cfg, &params, |_| Ok(()))?;
    let t = GuestTouches::read(&done)?;
    if t.errors > 0 {
        return Err(format!("{} guest pager calls failed", t.errors));
    }
    let kernel = last(&done.vm.guest().counters().fault_latency_ns, t.touched);
    Ok((t.samples_ns, kernel))
}

/// Where the raw handler runs relative to the vCPU it serves (threads pinned).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawPlace {
    /// On the vCPU's CPU: its best guest view (the woken vCPU preempts it inside the copy,
    /// so its own read → copy-done clock also counts the vCPU's next round trip).
    Beside,
    /// On another CPU: its own clock then times the service alone (its service view).
    Apart,
}

/// Baseline: plain guest RAM whose touched pages are registered with the bench's own
/// userfaultfd and served by [`RawHandler`] placed at `place`. Returns (guest view, handler
/// view).
pub(crate) fn raw_guest(n: u64, place: RawPlace) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut cfg = guest_config("bench_faults", 1, MEMORY)?;
    cfg.lazy_ram = false;
    cfg.pin_threads = pinned();
    let uffd = Arc::new(Userfault::new().map_err(|e| format!("userfaultfd: {e}"))?);
    let len = n * PAGE_SIZE;
    let mut handler = None;
    let mut region = 0;
    let params = touch_params(TOUCH_BASE, n * PAGE_SIZE, PAGE_SIZE, PAGE_SIZE);
    let done = run_guest(&cfg, &params, |vm| {
        region = vm.ram().host_addr() + TOUCH_BASE;
        uffd.register_missing(region, len)
            .map_err(|e| format!("registering guest RAM: {e}"))?;
        let h = RawHandler::spawn(uffd.clone())?;
        if let Some(cpu) = raw_cpu(vm.pinned_cpus(), place) {
            h.pin(cpu);
        }
        handler = Some(h);
        Ok(())
    });
    let handler_ns = handler.map(RawHandler::finish).unwrap_or_default();
    if region != 0 {
        let _ = uffd.unregister(region, len);
    }
    let t = GuestTouches::read(&done?)?;
    Ok((t.samples_ns, handler_ns))
}

/// The CPU for a raw handler at `place` beside or apart from vCPU 0's CPU (`cpus[0]`).
fn raw_cpu(cpus: Option<&[usize]>, place: RawPlace) -> Option<usize> {
    let &vcpu = cpus?.first()?;
    match place {
        RawPlace::Beside => Some(vcpu),
        RawPlace::Apart => super::other_cpu(vcpu),
    }
}

/// Baseline without KVM: a host thread touching a registered region, timing each touch.
fn raw_host_thread(n: u64) -> Result<Vec<f64>, String> {
    let len = n * PAGE_SIZE;
    let mem = HostMemory::new(len, false).map_err(|e| e.to_string())?;
    let uffd = Arc::new(Userfault::new().map_err(|e| format!("userfaultfd: {e}"))?);
    uffd.register_missing(mem.host_addr(), len)
        .map_err(|e| format!("registering: {e}"))?;
    let handler = RawHandler::spawn(uffd.clone())?;
    let mut v = Vec::with_capacity(n as usize);
    for off in (0..len).step_by(PAGE_SIZE as usize) {
        let t = Instant::now();
        // SAFETY: `off` is inside `mem`, a live private mapping no Rust reference points
        // into; the write blocks until the handler supplies the page.
        unsafe { mem.as_ptr().add(off as usize).write_volatile(1) };
        v.push(t.elapsed().as_nanos() as f64);
    }
    handler.finish();
    let _ = uffd.unregister(mem.host_addr(), len);
    Ok(v)
}

/// A minimal userfaultfd handler: poll, `read_event`, `UFFDIO_COPY` of one page from a
/// populated source page (waking the faulting thread). Records read → copy-done per fault.
struct RawHandler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<f64>>,
}

impl RawHandler {
    fn spawn(uffd: Arc<Userfault>) -> Result<Self, String> {
        let src = HostMemory::new(PAGE_SIZE, false).map_err(|e| e.to_string())?;
        src.write(0, &[0xa5; PAGE_SIZE as usize])
            .map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-raw-uffd".into())
            .spawn(move || serve(&uffd, &src, &flag))
            .map_err(|e| e.to_string())?;
        Ok(RawHandler { stop, thread })
    }

    fn pin(&self, cpu: usize) {
        use std::os::unix::thread::JoinHandleExt;
        if let Err(e) = crate::kernel::pin_pthread(self.thread.as_pthread_t(), cpu) {
            log::debug!("pinning the raw handler to CPU {cpu}: {e}");
        }
    }

    fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

fn serve(uffd: &Userfault, src: &HostMemory, stop: &AtomicBool) -> Vec<f64> {
    let mut lat = Vec::new();
    while !stop.load(Ordering::Acquire) {
        if !wait_readable(uffd.raw_fd(), 20) {
            continue;
        }
        while let Ok(Some(ev)) = uffd.read_event() {
            if let UffdEvent::PageFault { addr, .. } = ev {
                let t = Instant::now();
                let page = addr & !(PAGE_SIZE - 1);
                match uffd.copy(page, src.host_addr(), PAGE_SIZE) {
                    Ok(_) => lat.push(t.elapsed().as_nanos() as f64),
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    Err(e) => log::error!("bench raw handler: UFFDIO_COPY at {page:#x}: {e}"),
                }
            }
        }
    }
    lat
}

/// Polls `fd` for input for up to `ms` milliseconds.
fn wait_readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd and the count says so.
    let rc = unsafe { libc::poll(&mut p, 1, ms) };
    rc > 0 && p.revents & libc::POLLIN != 0
}
