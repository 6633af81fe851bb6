//! A small harness run of cases that need no pager: the clock, `Null`, handle errors and a
//! VMO round trip. Exits with 0 when all pass (see `rt::harness` for the output format).
#![no_std]
#![no_main]

use rt::abi::{rights, vmo_op};
use rt::harness::{TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Status, Vmo, check, check_eq, check_err, check_ok};

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    rt::harness::run(rt::cases![
        clock_is_monotonic,
        null_returns_ok,
        vcpu_count_matches_entry,
        close_bad_handle,
        close_invalid_handle,
        vmo_round_trip,
        vmo_get_size,
        vmo_read_past_end,
        duplicate_and_close,
        unknown_call_number,
    ])
}

fn clock_is_monotonic(_t: &mut TestCtx) -> TestResult {
    let a = sys::clock_monotonic();
    let mut b = a;
    for _ in 0..100 {
        b = sys::clock_monotonic();
        check!(b >= a, "clock went back from {a} to {b}");
    }
    check!(a >= 0);
    check!(b > a, "100 reads all returned {a}");
    Ok(())
}

fn null_returns_ok(_t: &mut TestCtx) -> TestResult {
    check_eq!(sys::null(), Status::OK);
    Ok(())
}

fn vcpu_count_matches_entry(t: &mut TestCtx) -> TestResult {
    check_eq!(sys::vcpu_count(), t.ncpus);
    Ok(())
}

fn close_bad_handle(_t: &mut TestCtx) -> TestResult {
    check_err!(Handle(0x1234_5678).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

fn close_invalid_handle(_t: &mut TestCtx) -> TestResult {
    // Zircon: closing ZX_HANDLE_INVALID is a no-op that succeeds.
    check_eq!(Handle::INVALID.close(), Ok(()));
    Ok(())
}

fn vmo_round_trip(_t: &mut TestCtx) -> TestResult {
    let vmo = check_ok!(Vmo::create(4 * 4096, 0));
    let data: [u8; 100] = core::array::from_fn(|i| i as u8 ^ 0x5a);
    check_ok!(vmo.write(&data, 4096 - 50));
    let mut back = [0u8; 100];
    check_ok!(vmo.read(&mut back, 4096 - 50));
    check!(back == data, "read back {:?}", &back[..8]);
    // Untouched pages read as zero.
    let mut zero = [0xffu8; 64];
    check_ok!(vmo.read(&mut zero, 3 * 4096));
    check!(zero.iter().all(|&b| b == 0), "fresh page not zero");
    check_ok!(vmo.op_range(vmo_op::ZX_VMO_OP_DECOMMIT, 0, 4 * 4096));
    check_ok!(vmo.read(&mut back, 4096 - 50));
    check!(back.iter().all(|&b| b == 0), "decommitted page not zero");
    check_ok!(vmo.close());
    Ok(())
}

fn vmo_get_size(_t: &mut TestCtx) -> TestResult {
    let vmo = check_ok!(Vmo::create(8 * 4096, 0));
    check_eq!(vmo.get_size(), Ok(8 * 4096));
    let info = check_ok!(vmo.get_info());
    check_eq!(info.size, 8 * 4096);
    Ok(())
}

fn vmo_read_past_end(_t: &mut TestCtx) -> TestResult {
    let vmo = check_ok!(Vmo::create(4096, 0));
    let mut buf = [0u8; 16];
    check_err!(vmo.read(&mut buf, 4096 - 8), Status::ERR_OUT_OF_RANGE);
    Ok(())
}

fn duplicate_and_close(_t: &mut TestCtx) -> TestResult {
    let vmo = check_ok!(Vmo::create(4096, 0));
    let dup = check_ok!(vmo.duplicate(rights::ZX_RIGHT_SAME_RIGHTS));
    check!(dup.raw() != vmo.raw());
    check_ok!(dup.write(b"dup", 0));
    let mut b = [0u8; 3];
    check_ok!(vmo.read(&mut b, 0));
    check_eq!(&b, b"dup");
    let raw = dup.handle();
    check_ok!(dup.close());
    check_err!(raw.close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

fn unknown_call_number(_t: &mut TestCtx) -> TestResult {
    // SAFETY: call 1000 is not defined; no argument is a pointer.
    let rax = unsafe { rt::hypercall::hypercall(1000, [0; 8]) };
    check_eq!(Status::from_rax(rax), Status::ERR_BAD_SYSCALL);
    Ok(())
}
