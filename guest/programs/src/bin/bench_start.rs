//! `kvmpager bench` case 4: lazy start time. The first thing the program does is read the
//! VM's monotonic clock; it leaves it at `RESULTS_GPA` (words: magic, entry ns) and exits.
#![no_std]
#![no_main]

use core::ptr::write_volatile;

use rt::sys;

rt::entry!(main);

const RESULTS_GPA: u64 = 0xc0_1000;
const MAGIC: u64 = 0x6b76_6d70_6265_6e63; // "kvmpbenc"

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    let t = sys::clock_monotonic();
    if vcpu != 0 {
        rt::park();
    }
    // SAFETY: the results page is guest RAM (identity mapped) that only vCPU 0 writes.
    unsafe {
        write_volatile((RESULTS_GPA + 8) as *mut u64, t.max(0) as u64);
        write_volatile(RESULTS_GPA as *mut u64, MAGIC);
    }
    0
}
