//! `kvmpager bench` cases 3 and 5: a vCPU touching pages that are not there yet, timing each
//! touch with the TSC.
//!
//! The bench writes a parameter block at `PARAMS_GPA` before the vCPUs start (u64 words):
//! `magic, mode, unused, base, stride, size, run, prefetch`.
//!
//! - Mode `TOUCH` (vCPU 0 only): writes one byte to each page of the working set in guest
//!   RAM: `run` bytes at every `stride` bytes of `[base, base + size)`. Whoever serves guest
//!   RAM (the built-in host pager, or the bench's raw userfaultfd handler) serves the faults.
//! - Mode `APERTURE` (two vCPUs): vCPU 1 is a guest pager: it creates a pager VMO of `size`
//!   bytes, maps it at `base` (in the aperture), and serves its READ requests (`PortWait`, then
//!   SUPPLY from an aux VMO it keeps filled ahead). Before it lets vCPU 0 start it supplies
//!   nothing (`prefetch` 0, on demand), the working set (1, batched: one `VmoWrite` per 2 MiB
//!   of working set, one SUPPLY per run) or the whole VMO (2, eager: 2 MiB at a time). vCPU 0
//!   then touches the working set: `run` bytes at every `stride` bytes of the VMO.
//!
//! Per-touch TSC deltas go to `SAMPLES_GPA` (at most `MAX_SAMPLES`); the TSC is calibrated
//! against `ClockGetMonotonic` over the touch loop. Results at `RESULTS_GPA` (u64 words):
//! `magic, touched, samples_gpa, samples, total_ns, touch_ns, touch_tsc, pager_errors,
//! ready_ns, end_clock_ns` — `total_ns` runs from the start of the restore (vCPU 1's clock before any
//! prefetch) to the last touch; `ready_ns` is when vCPU 0 was let go.
#![no_std]
#![no_main]

use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rt::abi::ZX_TIME_INFINITE;
use rt::abi::packet::{ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::{Pager, Port, Vmo, sys};

rt::entry!(main);

const PAGE: u64 = 4096;
const TWO_MIB: u64 = 2 << 20;
const PARAMS_GPA: u64 = 0xc0_0000;
const RESULTS_GPA: u64 = PARAMS_GPA + 0x1000;
const SAMPLES_GPA: u64 = 0xd0_0000;
const MAX_SAMPLES: u64 = 16384;
/// Source of the bytes the guest pager writes into its aux VMO (2 MiB of RAM).
const FILL_GPA: u64 = 0x80_0000;
const MAGIC: u64 = 0x6b76_6d70_6265_6e63; // "kvmpbenc"
const MODE_TOUCH: u64 = 1;
const MODE_APERTURE: u64 = 2;
const KEY: u64 = 0xbe4c;

static READY: AtomicU64 = AtomicU64::new(0);
static START_NS: AtomicI64 = AtomicI64::new(0);
static READY_NS: AtomicI64 = AtomicI64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

fn param(i: u64) -> u64 {
    // SAFETY: the parameter page is guest RAM (identity mapped) that the bench wrote.
    unsafe { read_volatile((PARAMS_GPA + 8 * i) as *const u64) }
}

fn put(gpa: u64, v: u64) {
    // SAFETY: callers pass bench-owned guest RAM (results, samples) or pages of the VMO the
    // bench maps; RAM and the aperture are identity mapped.
    unsafe { write_volatile(gpa as *mut u64, v) }
}

fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc is allowed at CPL 3 (CR4.TSD is clear); the fences only order it.
    unsafe {
        asm!("lfence", "rdtsc", "lfence", out("eax") lo, out("edx") hi, options(nostack, nomem))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Touches `gpa` (one byte written) and returns the TSC cycles it took.
fn touch(gpa: u64) -> u64 {
    let t0 = rdtsc();
    // SAFETY: `gpa` is a page of guest RAM or of the mapped pager VMO (identity mapped).
    unsafe { write_volatile(gpa as *mut u8, 1) };
    rdtsc() - t0
}

fn pages_of(base: u64, len: u64) -> impl Iterator<Item = u64> {
    (0..len / PAGE).map(move |i| base + i * PAGE)
}

fn fill(len: u64) -> &'static [u8] {
    // SAFETY: FILL_GPA..+2 MiB is guest RAM that nothing writes while the guest pager reads.
    unsafe { core::slice::from_raw_parts(FILL_GPA as *const u8, len.min(TWO_MIB) as usize) }
}

fn main(vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    if param(0) != MAGIC {
        rt::park();
    }
    match (param(1), vcpu) {
        (MODE_TOUCH, 0) => toucher(touch_runs),
        (MODE_APERTURE, 0) if ncpus >= 2 => {
            while READY.load(Ordering::Acquire) == 0 {
                core::hint::spin_loop();
            }
            toucher(touch_runs)
        }
        (MODE_APERTURE, 1) => guest_pager(),
        (_, 0) => 2,
        _ => rt::park(),
    }
}

/// Touches the working set: `run` bytes at every `stride` bytes of `[base, base + size)`.
fn touch_runs(f: &mut dyn FnMut(u64)) {
    let (base, size, run, stride) = (param(3), param(5), param(6), param(4));
    for off in (0..size).step_by(stride.max(PAGE) as usize) {
        pages_of(base + off, run.min(size - off)).for_each(&mut *f);
    }
}

/// Runs `body` with a per-touch function that records samples; writes the results.
fn toucher(body: impl FnOnce(&mut dyn FnMut(u64))) -> i64 {
    for i in 0..16 {
        put(RESULTS_GPA + 8 * i, 0);
    }
    for p in pages_of(SAMPLES_GPA, MAX_SAMPLES * 8) {
        put(p, 0);
    }
    let (c0, t0) = (sys::clock_monotonic(), rdtsc());
    let mut n = 0u64;
    body(&mut |gpa| {
        let dt = touch(gpa);
        if n < MAX_SAMPLES {
            put(SAMPLES_GPA + 8 * n, dt);
        }
        n += 1;
    });
    let (t1, c1) = (rdtsc(), sys::clock_monotonic());
    let start = match START_NS.load(Ordering::Acquire) {
        0 => c0,
        s => s,
    };
    let r = |i: u64, v: u64| put(RESULTS_GPA + 8 * i, v);
    r(1, n);
    r(2, SAMPLES_GPA);
    r(3, n.min(MAX_SAMPLES));
    r(4, (c1 - start).max(0) as u64);
    r(5, (c1 - c0).max(0) as u64);
    r(6, t1 - t0);
    r(7, ERRORS.load(Ordering::Acquire));
    r(8, (READY_NS.load(Ordering::Acquire) - start).max(0) as u64);
    r(9, c1.max(0) as u64);
    r(0, MAGIC);
    0
}

fn err<T>(r: rt::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(_) => {
            ERRORS.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

/// vCPU 1: the guest pager of the aperture VMO.
fn guest_pager() -> i64 {
    let (base, size, run, stride, prefetch) = (param(3), param(5), param(6), param(4), param(7));
    let Some((port, pager, vmo, aux)) = err(setup(base, size)) else {
        READY.store(1, Ordering::Release);
        rt::park();
    };
    for p in pages_of(FILL_GPA, TWO_MIB) {
        put(p, 0); // fault the fill source in before the clock starts
    }
    START_NS.store(sys::clock_monotonic(), Ordering::Release);
    match prefetch {
        1 => prefetch_runs(&pager, &vmo, &aux, size, run, stride),
        2 => {
            for off in (0..size).step_by(TWO_MIB as usize) {
                let len = TWO_MIB.min(size - off);
                err(aux.write(fill(len), 0));
                err(pager.supply_pages(&vmo, off, len, &aux, 0));
            }
        }
        _ => {}
    }
    READY_NS.store(sys::clock_monotonic(), Ordering::Release);
    READY.store(1, Ordering::Release);
    serve(&port, &pager, &vmo, &aux)
}

fn setup(base: u64, size: u64) -> rt::Result<(Port, Pager, Vmo, Vmo)> {
    let port = Port::create(0)?;
    let pager = Pager::create(0)?;
    let vmo = pager.create_vmo(0, &port, KEY, size)?;
    vmo.map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, base, 0, size)?;
    let aux = Vmo::create(TWO_MIB, 0)?;
    Ok((port, pager, vmo, aux))
}

/// Supplies the working set: runs packed into the aux VMO 2 MiB at a time (one `VmoWrite`),
/// then one SUPPLY per run.
fn prefetch_runs(pager: &Pager, vmo: &Vmo, aux: &Vmo, size: u64, run: u64, stride: u64) {
    let runs: u64 = size.div_ceil(stride);
    let per_batch = (TWO_MIB / run).max(1);
    let mut i = 0;
    while i < runs {
        let k = per_batch.min(runs - i);
        err(aux.write(fill(k * run), 0));
        for j in 0..k {
            let off = (i + j) * stride;
            let len = run.min(size - off);
            err(pager.supply_pages(vmo, off, len, aux, j * run));
        }
        i += k;
    }
}

/// Serves READ requests; keeps one page of aux filled ahead so a one-page fault costs one
/// SUPPLY after the wait returns.
fn serve(port: &Port, pager: &Pager, vmo: &Vmo, aux: &Vmo) -> i64 {
    let mut primed = 0u64;
    loop {
        if primed == 0 && err(aux.write(fill(PAGE), 0)).is_some() {
            primed = PAGE;
        }
        let Ok(p) = port.wait(ZX_TIME_INFINITE) else {
            rt::park();
        };
        if p.packet_type != ZX_PKT_TYPE_PAGE_REQUEST || p.page_request.command != ZX_PAGER_VMO_READ
        {
            continue;
        }
        let (mut off, end) = (
            p.page_request.offset,
            p.page_request.offset + p.page_request.length,
        );
        while off < end {
            let len = (end - off).min(TWO_MIB);
            if len > primed {
                err(aux.write(fill(len - primed), primed));
            }
            err(pager.supply_pages(vmo, off, len, aux, 0));
            primed = 0;
            off += len;
        }
    }
}
