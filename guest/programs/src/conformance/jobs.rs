//! Jobs on other vCPUs (Zircon's `test_thread`): vCPU 0 runs the harness and [`spawn`]s a job
//! on vCPU 1 (the pager) or 2.. (extra accessors), then [`join`]s it. Idle vCPUs sit in
//! [`worker_loop`], waiting on their mailbox (atomics in guest memory) and napping in a
//! `PortWait` with a short deadline so they do not burn host CPU. Handles are process-wide, so
//! a case hands its fixture and range to the jobs with [`publish`] through [`SH`].

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use rt::harness::TestResult;
use rt::sync::SpinLock;
use rt::sys::{self, Handle};
use rt::{String, format};

use super::fixtures::Fx;
use super::{JOIN_MS, MAX_CPUS, deadline_ms, nap_ns};

/// A job for another vCPU; gets that vCPU's index.
pub type Job = fn(usize) -> TestResult;

struct Mailbox {
    job: SpinLock<Option<Job>>,
    result: SpinLock<Option<TestResult>>,
    posted: AtomicUsize,
    done: AtomicUsize,
}

impl Mailbox {
    const fn new() -> Self {
        Mailbox {
            job: SpinLock::new(None),
            result: SpinLock::new(None),
            posted: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }
}

static MAILBOXES: [Mailbox; MAX_CPUS] = [const { Mailbox::new() }; MAX_CPUS];

/// What vCPUs other than 0 run: wait for a job in this vCPU's mailbox, run it, post the
/// result, forever. vCPUs past [`MAX_CPUS`] park.
pub fn worker_loop(cpu: usize) -> ! {
    if cpu >= MAX_CPUS {
        rt::park();
    }
    let mb = &MAILBOXES[cpu];
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        while mb.posted.load(Ordering::Acquire) == seen {
            spins += 1;
            if spins < 5_000 {
                core::hint::spin_loop();
            } else {
                nap_ns(200_000);
            }
        }
        seen = mb.posted.load(Ordering::Acquire);
        let job = mb.job.lock().take();
        let result = match job {
            Some(f) => f(cpu),
            None => Err(String::from("mailbox posted without a job")),
        };
        *mb.result.lock() = Some(result);
        mb.done.store(seen, Ordering::Release);
    }
}

/// Runs `job` on vCPU `cpu`.
pub fn spawn(cpu: usize, job: Job) -> TestResult {
    let n = rt::ncpus();
    if cpu == 0 || cpu >= n.min(MAX_CPUS) {
        return Err(format!(
            "this case needs vCPU {cpu} but the VM has {n} vCPUs (run the suite with --vcpus 3)"
        ));
    }
    let mb = &MAILBOXES[cpu];
    let posted = mb.posted.load(Ordering::Acquire);
    if mb.done.load(Ordering::Acquire) != posted {
        return Err(format!(
            "vCPU {cpu} is still busy with an earlier case's job"
        ));
    }
    *mb.result.lock() = None;
    *mb.job.lock() = Some(job);
    mb.posted.store(posted + 1, Ordering::Release);
    Ok(())
}

/// Waits for the job last spawned on `cpu` and returns its result.
pub fn join(cpu: usize) -> TestResult {
    let mb = &MAILBOXES[cpu];
    let deadline = deadline_ms(JOIN_MS);
    let mut spins = 0u32;
    while mb.done.load(Ordering::Acquire) != mb.posted.load(Ordering::Acquire) {
        spins += 1;
        if spins < 5_000 {
            core::hint::spin_loop();
        } else {
            if sys::clock_monotonic() > deadline {
                return Err(format!(
                    "the job on vCPU {cpu} did not finish in {JOIN_MS} ms"
                ));
            }
            nap_ns(100_000);
        }
    }
    mb.result
        .lock()
        .take()
        .unwrap_or_else(|| Err(String::from("job finished without a result")))
}

/// Joins `cpu` and prefixes its failure with its role.
pub fn join_as(cpu: usize, role: &str) -> TestResult {
    join(cpu).map_err(|e| format!("{role} (vCPU {cpu}): {e}"))
}

/// Parameters of the running case for the jobs (handles are process-wide). Set by
/// [`publish`]; the fields after `len` are set by the cases that use them.
pub struct JobParams {
    /// The fixture's pager handle.
    pub pager: AtomicU32,
    /// The fixture's pager VMO handle.
    pub vmo: AtomicU32,
    /// The fixture's port handle.
    pub port: AtomicU32,
    /// The pager VMO's port key.
    pub key: AtomicU64,
    /// The seed of the pager VMO's contents.
    pub seed: AtomicU64,
    /// Start of the range the jobs work on.
    pub off: AtomicU64,
    /// Length of the range the jobs work on.
    pub len: AtomicU64,
    /// A status for a FAIL job.
    pub code: AtomicI64,
    /// A guest-physical address (a mapping of the pager VMO).
    pub gpa: AtomicU64,
    /// A case-specific choice (e.g. which call a FAIL job uses).
    pub mode: AtomicU64,
    /// How many accessors have arrived.
    pub arrived: AtomicUsize,
    /// A start signal between vCPU 0 and a job.
    pub go: AtomicBool,
}

/// The running case's [`JobParams`].
pub static SH: JobParams = JobParams {
    pager: AtomicU32::new(0),
    vmo: AtomicU32::new(0),
    port: AtomicU32::new(0),
    key: AtomicU64::new(0),
    seed: AtomicU64::new(0),
    off: AtomicU64::new(0),
    len: AtomicU64::new(0),
    code: AtomicI64::new(0),
    gpa: AtomicU64::new(0),
    mode: AtomicU64::new(0),
    arrived: AtomicUsize::new(0),
    go: AtomicBool::new(false),
};

/// The published pager handle.
pub fn sh_pager() -> Handle {
    Handle(SH.pager.load(Ordering::Acquire))
}
/// The published pager VMO handle.
pub fn sh_vmo() -> Handle {
    Handle(SH.vmo.load(Ordering::Acquire))
}
/// The published port handle.
pub fn sh_port() -> Handle {
    Handle(SH.port.load(Ordering::Acquire))
}
/// The published port key.
pub fn sh_key() -> u64 {
    SH.key.load(Ordering::Acquire)
}
/// The published content seed.
pub fn sh_seed() -> u64 {
    SH.seed.load(Ordering::Acquire)
}
/// The published range `(off, len)`.
pub fn sh_range() -> (u64, u64) {
    (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    )
}

/// Publishes a fixture and the range the jobs work on.
pub fn publish(fx: &Fx, off: u64, len: u64) {
    SH.pager.store(fx.pager.raw(), Ordering::Release);
    SH.vmo.store(fx.vmo.raw(), Ordering::Release);
    SH.port.store(fx.port.raw(), Ordering::Release);
    SH.key.store(fx.key, Ordering::Release);
    SH.seed.store(fx.seed, Ordering::Release);
    SH.off.store(off, Ordering::Release);
    SH.len.store(len, Ordering::Release);
    SH.arrived.store(0, Ordering::Release);
    SH.go.store(false, Ordering::Release);
}
