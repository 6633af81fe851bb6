//! Panics on vCPU 0 with a message: the VM must exit with code 101 after printing
//! `panic at programs/src/bin/panics.rs:<line>: guest panic test`.
#![no_std]
#![no_main]

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    panic!("guest panic test");
}
