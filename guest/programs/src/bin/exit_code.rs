//! Exits with code 42 (vCPU 0; the other vCPUs park).
#![no_std]
#![no_main]

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    42
}
