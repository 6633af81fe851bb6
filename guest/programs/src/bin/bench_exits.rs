//! `kvmpager bench` case 1: the hypercall round trip vs the raw port-I/O exit.
//!
//! The bench writes a parameter block at `PARAMS_GPA` before the vCPUs start (words: magic,
//! mode, iterations). Mode `NULL`: `iterations` `Null` hypercalls timed with
//! `ClockGetMonotonic` (the host clock read while handling the exit, the same clock the raw
//! mode is timed with), then the same number of bare `out 0xe1, eax` with only `rax` set; the
//! results go to `RESULTS_GPA` (words: magic, iterations, ns for `sys::null`, ns for the bare
//! form). Mode `RAW`: a bare `out` in a loop for ever; the bench's raw vCPU loop does nothing
//! but re-enter and stops it after counting its exits.
#![no_std]
#![no_main]

use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};

use rt::{Status, sys};

rt::entry!(main);

const PARAMS_GPA: u64 = 0xc0_0000;
const RESULTS_GPA: u64 = PARAMS_GPA + 0x1000;
const MAGIC: u64 = 0x6b76_6d70_6265_6e63; // "kvmpbenc"
const MODE_NULL: u64 = 1;
const MODE_RAW: u64 = 2;
const WARMUP: u64 = 200;

fn param(i: u64) -> u64 {
    // SAFETY: the parameter page is guest RAM (identity mapped) that the bench wrote.
    unsafe { read_volatile((PARAMS_GPA + 8 * i) as *const u64) }
}

fn result(i: u64, v: u64) {
    // SAFETY: the results page is guest RAM (identity mapped) that only this vCPU writes.
    unsafe { write_volatile((RESULTS_GPA + 8 * i) as *mut u64, v) }
}

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 || param(0) != MAGIC {
        rt::park();
    }
    match param(1) {
        MODE_RAW => loop {
            // SAFETY: a bare exit on the hypercall port; the raw loop only re-enters.
            unsafe { asm!("out 0xe1, eax", in("eax") 0u32, options(nostack, nomem)) };
        },
        MODE_NULL => {}
        _ => return 2,
    }
    let n = param(2).max(1);
    for i in 0..8 {
        result(i, 0); // fault the results page in before timing
    }
    let mut bad = 0;
    for _ in 0..WARMUP {
        bad += u64::from(sys::null() != Status::OK);
    }
    let t0 = sys::clock_monotonic();
    for _ in 0..n {
        bad += u64::from(sys::null() != Status::OK);
    }
    let t1 = sys::clock_monotonic();
    for _ in 0..n {
        bad += u64::from(rt::hypercall::null_bare() != 0);
    }
    let t2 = sys::clock_monotonic();
    result(1, n);
    result(2, (t1 - t0).max(0) as u64);
    result(3, (t2 - t1).max(0) as u64);
    result(4, bad);
    result(0, MAGIC);
    if bad != 0 { 1 } else { 0 }
}
