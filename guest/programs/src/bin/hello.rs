//! Prints `hello from vCPU 0` and exits with 0; the other vCPUs park.
#![no_std]
#![no_main]

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    rt::println!("hello from vCPU {vcpu}");
    0
}
