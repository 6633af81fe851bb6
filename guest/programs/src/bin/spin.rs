//! Spins for ever on every vCPU (for testing `kvmpager run --timeout`).
#![no_std]
#![no_main]

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu == 0 {
        rt::println!("spin: looping for ever");
    }
    rt::park()
}
