//! The C memory functions the host target's prebuilt `libcore` calls (on `*-linux-gnu` they
//! come from libc, which guests don't have), and the unwinding symbols the prebuilt `libcore`
//! and `liballoc` refer to (`rust_eh_personality`, `_Unwind_Resume`).
//!
//! They use `rep movsb`/`rep stosb`/`repe cmpsb` so the compiler cannot turn them back into
//! calls to themselves. The direction flag is clear on entry (SysV ABI; the VMM starts guests
//! with DF = 0).

use core::arch::asm;

/// `memcpy`.
///
/// # Safety
/// `dest` and `src` must be valid for `n` bytes and must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// `memmove`: like [`memcpy`], but the ranges may overlap.
///
/// # Safety
/// `dest` and `src` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // `dest` is below `src` or past its end: a forward copy never reads a byte it wrote.
        // SAFETY: forwarded from the caller.
        return unsafe { memcpy(dest, src, n) };
    }
    // `dest` overlaps the tail of `src`: copy backwards.
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes (n > 0 here, since
    // the forward branch takes n == 0); DF is restored before returning.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack),
        );
    }
    dest
}

/// `memset`.
///
/// # Safety
/// `dest` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid for `n` bytes.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// `memcmp`: compares bytes as unsigned values.
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (a_end, b_end): (*const u8, *const u8);
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes; `repe cmpsb` reads
    // at most `n` bytes of each and stops after the first difference.
    unsafe {
        asm!(
            "repe cmpsb",
            inout("rcx") n => _,
            inout("rsi") a => a_end,
            inout("rdi") b => b_end,
            options(nostack, readonly),
        );
    }
    // Both pointers are one past the last byte compared: equal there means equal throughout.
    // SAFETY: `a_end - 1` and `b_end - 1` are the last bytes compared, inside both ranges.
    let (x, y) = unsafe { (*a_end.sub(1), *b_end.sub(1)) };
    i32::from(x) - i32::from(y)
}

/// `bcmp`: zero if the ranges are equal (what LLVM emits for `==` on slices).
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe { memcmp(a, b, n) }
}

/// The prebuilt `libcore` (built with `panic = "unwind"`) refers to this; guests use
/// `panic = "abort"` and never unwind, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// The prebuilt `liballoc` (built with `panic = "unwind"`) has landing pads that end in this;
/// with `panic = "abort"` nothing unwinds, so it is never reached. If it were, the VM exits
/// with code 134 (SIGABRT's shell status).
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::sys::exit(134)
}
