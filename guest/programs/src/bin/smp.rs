//! Every vCPU adds to a shared counter under a spin lock, then all meet at a barrier; vCPU 0
//! checks the total, prints `smp: <n> vCPUs ok` and exits with 0 (1 on a wrong total).
#![no_std]
#![no_main]

use rt::println;
use rt::sync::{Barrier, SpinLock};

rt::entry!(main);

const ROUNDS: u64 = 100_000;

static COUNTER: SpinLock<u64> = SpinLock::new(0);
/// All vCPUs.
static BARRIER: Barrier = Barrier::new(0);

fn main(vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    for _ in 0..ROUNDS {
        *COUNTER.lock() += 1;
    }
    BARRIER.wait();
    if vcpu != 0 {
        rt::park();
    }
    let total = *COUNTER.lock();
    let expected = ROUNDS * ncpus as u64;
    if total != expected {
        println!("smp: counter is {total}, expected {expected}");
        return 1;
    }
    println!("smp: {ncpus} vCPUs ok");
    0
}
