//! Visible progress for the control-socket tests (`vmm/tests/api_*.rs`): vCPU 0 prints
//! `tick 1` … `tick N`, one every 20 ms of guest clock (napping in a `PortWait` with a
//! deadline in between, so it is inside a hypercall most of the time), then exits with 7;
//! N = 300 × (vCPUs − 1), so 2 vCPUs tick for 6 s and 4 for 18 s. The other vCPUs spin in
//! guest code. A pause must stop the ticks, a resume must
//! continue them with the next number (none skipped, none repeated), and a restored snapshot
//! goes on from the tick after the last one printed before it.
#![no_std]
#![no_main]

use rt::{Port, println, sys};

rt::entry!(main);

/// Ticks printed before the exit, per vCPU beyond the first.
const TICKS_PER_VCPU: u64 = 300;
/// Guest-clock nanoseconds between ticks.
const PERIOD_NS: i64 = 20_000_000;
/// The exit code after the last tick.
const EXIT_CODE: i64 = 7;

fn main(vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let Ok(port) = Port::create(0) else {
        println!("ticker: cannot create a port");
        return 1;
    };
    let ticks = TICKS_PER_VCPU * (ncpus.max(2) as u64 - 1);
    for tick in 1..=ticks {
        let deadline = sys::clock_monotonic() + PERIOD_NS;
        // Nothing ever queues a packet: the wait ends at its deadline.
        let _ = port.wait(deadline);
        println!("tick {tick}");
    }
    EXIT_CODE
}
