//! Creates 1 MiB VMOs until the VMM's per-guest VMO limit says `ZX_ERR_NO_MEMORY`, prints how
//! many it got, frees one and checks that one more fits again. Exits 0 when the limit held.
#![no_std]
#![no_main]

use rt::{Status, Vec, Vmo, println};

rt::entry!(main);

const MIB: u64 = 1 << 20;

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let mut vmos = Vec::new();
    let last = loop {
        match Vmo::create(MIB, 0) {
            Ok(v) => vmos.push(v),
            Err(s) => break s,
        }
        if vmos.len() > 1 << 16 {
            println!("vmo_limit: no limit after {} MiB", vmos.len());
            return 1;
        }
    };
    println!("vmo_limit: {} VMOs of 1 MiB, then {:?}", vmos.len(), last);
    if last != Status::ERR_NO_MEMORY {
        return 2;
    }
    vmos.pop();
    if Vmo::create(MIB, 0).is_err() {
        println!("vmo_limit: a freed VMO's bytes did not come back");
        return 3;
    }
    0
}
