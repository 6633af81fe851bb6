//! The kernel's memory stays the kernel's: the boot area (guest-physical `0..1 MiB`: page
//! tables, GDT, IDT, TSSs, the exception stub) is mapped supervisor-only and out of bounds for
//! guest pointers.
//!
//! Guest `boot_area`: hypercalls with out-pointers into the page tables get
//! `ZX_ERR_INVALID_ARGS`, then a CPL-3 store to 0x10000 ends in the ordinary page-fault report
//! naming the address (before the fix the store went through and the next instruction
//! triple-faulted with no hint of why). Host side: every hypercall pointer into the boot area
//! gives `ZX_ERR_INVALID_ARGS` and leaves the page tables as they were.

use std::time::Duration;

use kvmpager::abi::status::{ZX_ERR_INVALID_ARGS, ZX_OK};
use kvmpager::abi::{Call, Status};
use kvmpager_vmm::hypercall::{self, Hypercall, Outcome};
use kvmpager_vmm::vm::Vm;
use kvmpager_vmm::{StopReason, VmConfig, guests, skip_without_kvm};

const PAGE_TABLES: u64 = 0x1_0000;

#[test]
fn a_cpl3_store_to_the_page_tables_is_an_ordinary_page_fault() {
    if skip_without_kvm() {
        return;
    }
    let g = guests::by_name("boot_area").expect("the boot_area guest");
    let mut c = VmConfig::new(g.elf.to_vec());
    c.vcpus = 1;
    c.memory = 64 << 20;
    c.timeout = Some(Duration::from_secs(20));
    c.echo_console = false;
    let r = kvmpager_vmm::run(&c).expect("the VM runs");
    let console = r.console_text();
    eprintln!("--- console:\n{console}--- stop: {}", r.stop);
    for call in ["PortCreate", "VmoCreate", "ConsoleWrite"] {
        let line = format!("boot_area: {call} into the boot area: ZX_ERR_INVALID_ARGS");
        assert!(console.contains(&line), "{console}");
    }
    let StopReason::Exception { vcpu: 0, report } = &r.stop else {
        panic!("expected a page fault, got {}", r.stop);
    };
    assert_eq!(report.vector, 14, "{}", r.stop);
    assert_eq!(report.cr2, PAGE_TABLES, "{}", r.stop);
    // Present, write, user: a protection fault of a CPL-3 store, not a missing page.
    assert_eq!(report.error_code & 7, 7, "{}", r.stop);
    let text = r.stop.to_string();
    assert!(
        text.contains("#PF") && text.contains("cr2 0x10000"),
        "{text}"
    );
    assert!(!console.contains("the store went through"), "{console}");
}

fn call(vm: &Vm, call: Call, args: &[u64]) -> Status {
    let mut a = [0u64; 8];
    a[..args.len()].copy_from_slice(args);
    let hc = Hypercall {
        nr: call as u64,
        args: a,
    };
    match hypercall::handle(vm, 0, hc) {
        Outcome::Return(v) => v as Status,
        Outcome::Stop(r) => panic!("{call:?} stopped the VM: {r:?}"),
    }
}

/// The boot area's bytes, straight from the VMM's host mapping of RAM (`GuestRam` refuses it).
fn boot_area(vm: &Vm) -> Vec<u8> {
    let mut v = vec![0u8; 0x10_0000];
    // SAFETY: guest RAM (4 MiB) is mapped at `host_addr()` while `vm` lives; no vCPU runs; a
    // byte copy of plain memory has no invariants.
    unsafe {
        let src = vm.ram().host_addr() as *const u8;
        std::ptr::copy_nonoverlapping(src, v.as_mut_ptr(), v.len());
    }
    v
}

/// Pointers into each part of the boot area, and straddling its end, give INVALID_ARGS; the
/// page tables are unchanged; just above it works.
#[test]
fn hypercall_pointers_into_the_boot_area_are_invalid_args() {
    if skip_without_kvm() {
        return;
    }
    let mut cfg = VmConfig::new(guests::HELLO.elf.to_vec());
    cfg.vcpus = 1;
    cfg.memory = 4 << 20;
    let vm = Vm::new(&cfg).expect("the VM builds");
    let vmo = vm.guest().vmo_create(0x3000, 0).unwrap();
    let tables = boot_area(&vm);
    for at in [
        0x8,
        0x1000,
        0x2000,
        0x3000,
        0x5000,
        0x8000,
        PAGE_TABLES,
        PAGE_TABLES + 8,
        0xf_fffc,
    ] {
        assert_eq!(
            call(&vm, Call::PortCreate, &[0, at]),
            ZX_ERR_INVALID_ARGS,
            "{at:#x}"
        );
        assert_eq!(
            call(&vm, Call::VmoGetSize, &[vmo.into(), at]),
            ZX_ERR_INVALID_ARGS
        );
        let read = [vmo.into(), at, 0, 16];
        assert_eq!(
            call(&vm, Call::VmoRead, &read),
            ZX_ERR_INVALID_ARGS,
            "{at:#x}"
        );
    }
    assert_eq!(boot_area(&vm), tables, "the boot area changed");
    assert_eq!(vm.guest().handle_count(), 1, "a handle was created");
    assert_eq!(call(&vm, Call::VmoGetSize, &[vmo.into(), 0x10_0000]), ZX_OK);
    vm.kill_processes();
}
