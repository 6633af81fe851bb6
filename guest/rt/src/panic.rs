//! The panic handler: prints `panic at file:line: msg`, fails the running test case (if any)
//! and exits with code 101.

use core::panic::PanicInfo;

/// Exit code of a panicking guest (the same as a panicking Rust test binary).
pub const PANIC_EXIT_CODE: i64 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => crate::println!("panic at {}:{}: {}", loc.file(), loc.line(), info.message()),
        None => crate::println!("panic at <unknown>: {}", info.message()),
    }
    crate::harness::fail_current_case_on_panic();
    crate::sys::exit(PANIC_EXIT_CODE)
}
