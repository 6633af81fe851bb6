//! The boot area is the VMM's: vCPU 0 passes hypercall out-pointers into the page tables at
//! guest-physical 0x10000 (each must fail with `ZX_ERR_INVALID_ARGS` and store nothing), then
//! makes a CPL-3 store to 0x10000, which must end in the ordinary page-fault report naming
//! that address (the boot area is mapped supervisor-only).
#![no_std]
#![no_main]

use rt::abi::{Call, status};
use rt::hypercall::hypercall;

rt::entry!(main);

/// The PML4 (`layout.rs`: page tables at 0x10000).
const PAGE_TABLES: u64 = 0x1_0000;

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let calls: [(Call, [u64; 8]); 3] = [
        (Call::PortCreate, [0, PAGE_TABLES + 8, 0, 0, 0, 0, 0, 0]),
        (Call::VmoCreate, [4096, 0, PAGE_TABLES, 0, 0, 0, 0, 0]),
        (Call::ConsoleWrite, [0x5000, 16, 0, 0, 0, 0, 0, 0]),
    ];
    for (call, args) in calls {
        // SAFETY: a hypercall with bad pointers; the VMM checks them and stores nothing.
        let rax = unsafe { hypercall(call as u64, args) };
        let st = rax as u32 as i32;
        rt::println!("boot_area: {call:?} into the boot area: {}", status::name(st));
        if st != status::ZX_ERR_INVALID_ARGS {
            return 1;
        }
    }
    rt::println!("boot_area: storing to {PAGE_TABLES:#x} at CPL 3");
    // SAFETY: a deliberate store into the supervisor-only boot area: it faults (#PF) and the
    // VMM stops the VM, so nothing runs afterwards.
    unsafe { core::ptr::write_volatile(PAGE_TABLES as *mut u64, 0) };
    rt::println!("boot_area: the store went through");
    2
}
