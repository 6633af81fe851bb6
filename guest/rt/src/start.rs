//! Program start: [`entry!`](crate::entry) and what `_start` calls.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sys;

static NCPUS: AtomicUsize = AtomicUsize::new(0);
static RAM_SIZE: AtomicU64 = AtomicU64::new(0);

/// Declares the program's entry function, `fn main(vcpu: usize, ncpus: usize, ram: u64) ->
/// i64`, and generates `_start` (placed in `.text._start`, first in the image, so it is the
/// ELF entry point 0x100000).
///
/// `_start` keeps the VMM's `rdi`/`rsi`/`rdx` as the first three arguments, clears `rbp` (end
/// of frame chain) and `call`s into Rust, which leaves the stack aligned as the SysV ABI
/// wants: the VMM's `rsp` is 16-byte aligned, so `rsp + 8` is at the callee's entry. `main`'s
/// return value is passed to the `Exit` hypercall.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        const _: () = {
            extern "C" fn __kvmpager_rt_start(vcpu: usize, ncpus: usize, ram: u64) -> ! {
                let main: fn(usize, usize, u64) -> i64 = $main;
                $crate::start::run(main, vcpu, ncpus, ram)
            }

            #[doc(hidden)]
            #[unsafe(no_mangle)]
            #[unsafe(naked)]
            #[unsafe(link_section = ".text._start")]
            pub unsafe extern "C" fn _start() -> ! {
                ::core::arch::naked_asm!(
                    "xor ebp, ebp",
                    "call {start}",
                    "ud2",
                    start = sym __kvmpager_rt_start,
                )
            }
        };
    };
}

/// Records the VM shape, runs `main` and exits with its return value. Called by `_start`.
#[doc(hidden)]
pub fn run(main: fn(usize, usize, u64) -> i64, vcpu: usize, ncpus: usize, ram: u64) -> ! {
    NCPUS.store(ncpus, Ordering::Relaxed);
    RAM_SIZE.store(ram, Ordering::Relaxed);
    let code = main(vcpu, ncpus, ram);
    sys::exit(code)
}

/// Number of vCPUs (as passed to `_start`).
pub fn ncpus() -> usize {
    NCPUS.load(Ordering::Relaxed)
}

/// Guest RAM size in bytes (as passed to `_start`).
pub fn ram_size() -> u64 {
    RAM_SIZE.load(Ordering::Relaxed)
}

/// Parks this vCPU for good: spins (with `pause`) until another vCPU's `Exit` stops the VM.
///
/// `hlt` would be the natural choice but is privileged at CPL 3.
pub fn park() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
