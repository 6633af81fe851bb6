//! The raw hypercall: `out 0xe1, eax` with the call number in `rax`.
//!
//! See [`crate::abi`] for the convention: arguments in `rdi, rsi, rdx, r10, r8, r9, r12, r13`,
//! result in `rax`, every other register preserved by the VMM.

use core::arch::asm;

/// Makes hypercall `nr` with eight arguments and returns `rax` as the VMM left it.
///
/// Unused arguments should be 0. Most calls return a status (a sign-extended `i32`); some
/// (`ClockGetMonotonic`, `VcpuCount`) return a value. [`crate::sys`] has typed wrappers.
///
/// # Safety
/// The VMM reads and writes guest memory at the addresses passed as arguments, with the
/// lengths passed: the caller must make sure every buffer the call writes is memory it may
/// write (or an address outside guest RAM, which the VMM rejects). `Exit` does not return.
#[inline(always)]
pub unsafe fn hypercall(nr: u64, args: [u64; 8]) -> u64 {
    let ret: u64;
    // SAFETY: the caller vouches for the buffers; `out` itself only exits to the VMM, which
    // changes nothing but `rax` and the memory the caller handed over. The asm may read and
    // write memory (no `nomem`/`readonly`), so the compiler keeps buffers written before it.
    unsafe {
        asm!(
            "out 0xe1, eax",
            inout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            in("r12") args[6],
            in("r13") args[7],
            options(nostack),
        );
    }
    ret
}

/// [`hypercall`] with up to eight arguments given as a slice (missing ones are 0).
///
/// # Safety
/// As for [`hypercall`].
#[inline(always)]
pub unsafe fn hypercall_n(nr: u64, args: &[u64]) -> u64 {
    let mut a = [0u64; 8];
    let n = args.len().min(8);
    a[..n].copy_from_slice(&args[..n]);
    // SAFETY: forwarded from the caller.
    unsafe { hypercall(nr, a) }
}

/// Makes the `Null` hypercall through a bare `out` with nothing but `rax` set up (for
/// measuring the exit cost); returns `rax`.
#[inline(always)]
pub fn null_bare() -> u64 {
    let ret: u64;
    // SAFETY: `Null` takes no arguments and touches no guest memory.
    unsafe {
        asm!("out 0xe1, eax", inout("rax") 0u64 => ret, options(nostack, nomem));
    }
    ret
}
