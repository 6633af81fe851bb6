//! Measures the hypercall round trip: 10000 `Null` calls through `rt::sys::null`, then 10000
//! bare `out 0xe1, eax` with only `rax` set, timed with `ClockGetMonotonic`. Prints one line
//! per loop: `null_calls: <loop>: <n> calls, <ns> ns total, <ns>.<frac> ns/call`.
#![no_std]
#![no_main]

use rt::{Status, println, sys};

rt::entry!(main);

const N: u64 = 10_000;

fn report(what: &str, ns: i64) {
    let ns = ns.max(0) as u64;
    println!(
        "null_calls: {what}: {N} calls, {ns} ns total, {}.{:03} ns/call",
        ns / N,
        (ns % N) * 1000 / N
    );
}

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let mut bad = 0u64;

    let t0 = sys::clock_monotonic();
    for _ in 0..N {
        if sys::null() != Status::OK {
            bad += 1;
        }
    }
    let t1 = sys::clock_monotonic();
    report("sys::null", t1 - t0);

    let t0 = sys::clock_monotonic();
    for _ in 0..N {
        if rt::hypercall::null_bare() != 0 {
            bad += 1;
        }
    }
    let t1 = sys::clock_monotonic();
    report("bare out", t1 - t0);

    if bad != 0 {
        println!("null_calls: {bad} calls did not return ZX_OK");
        return 1;
    }
    0
}
