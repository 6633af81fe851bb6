//! Executes `ud2` on vCPU 0: the VMM's exception stub must report vector 6 (#UD) and stop.
#![no_std]
#![no_main]

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    rt::println!("triple_fault: executing ud2");
    // SAFETY: raising #UD on purpose; the VMM stops the VM, so nothing runs afterwards.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}
