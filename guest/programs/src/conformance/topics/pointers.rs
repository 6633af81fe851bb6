//! Guest pointers (abi "Guest pointers"): the same bad pointers as
//! `vmm/tests/hypercall_pointers.rs` (null, straddling the end of RAM, in the hole, on a mapped
//! VMO, wrapping), from a real guest through the real hypercall path, for an out-handle call, a
//! buffer the VMM writes, a buffer it reads, and PortWait. RAM ends at `t.ram` (RAM is identity
//! mapped from 0).

use rt::abi::packet::ZX_PAGER_VMO_COMPLETE;
use rt::abi::{Call, layout};
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Status, String, Vmo, check, check_eq, check_ok};

use crate::conformance::fixtures::{
    Mapped, check_zero, committed, expect_no_packet, fixture, map, packet_bytes,
};
use crate::conformance::{PACKET_WAIT_MS, PAGE, PAGE_US, deadline_ms};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    bad_pointers_out_handle,
    bad_pointers_vmo_read_buffer,
    bad_pointers_vmo_write_buffer,
    bad_pointers_port_wait_keeps_the_packet,
];

/// Makes `call` with raw arguments (pointers the VMM must reject, or buffers this case owns).
fn raw_call(call: Call, args: &[u64]) -> Status {
    // SAFETY: each pointer passed is either one the ABI says the VMM rejects before touching
    // memory (null page, past the end of RAM, hole, aperture, wrapping) or a buffer of the
    // calling case, borrowed mutably for as long as the call, that the VMM may write.
    Status::from_rax(unsafe { rt::hypercall::hypercall_n(call as u64, args) })
}

/// Pointers to `n` bytes that every call must reject with INVALID_ARGS: `(case, pointer)`.
/// `mapped` is a page of a VMO mapped in the aperture.
fn bad_pointers(ram: u64, n: u64, mapped: u64) -> [(&'static str, u64); 9] {
    [
        ("null", 0),
        ("inside the null page", 0x800),
        ("straddling the end of the null page", PAGE - 1),
        ("exactly at the end of RAM", ram),
        ("straddling the end of RAM", ram - n / 2),
        ("in the hole above RAM", ram + PAGE),
        (
            "straddling the start of the aperture",
            layout::APERTURE_START - n / 2,
        ),
        ("on a VMO mapped in the aperture", mapped),
        ("wrapping past 2^64", u64::MAX - n / 2),
    ]
}

/// A one-page VMO mapped in the aperture (for the "mapped" bad pointer), holding `0x5a`s.
fn mapped_page() -> Result<(Vmo, Mapped), String> {
    let vmo = check_ok!(Vmo::create(PAGE, 0));
    check_ok!(vmo.write(&[0x5a; PAGE_US], 0));
    let m = map(vmo.handle(), 0, PAGE)?;
    Ok((vmo, m))
}

/// The mapped VMO still holds only `0x5a`s.
fn mapped_untouched(vmo: &Vmo) -> TestResult {
    let mut b = [0u8; PAGE_US];
    check_ok!(vmo.read(&mut b, 0));
    check!(b.iter().all(|&x| x == 0x5a), "the mapped VMO changed");
    Ok(())
}

/// `VmoCreate` (an out-handle call): bad out-pointers are INVALID_ARGS; an unaligned one works.
fn bad_pointers_out_handle(t: &mut TestCtx) -> TestResult {
    let (mapped_vmo, m) = mapped_page()?;
    for (case, ptr) in bad_pointers(t.ram, 4, m.gpa) {
        let st = raw_call(Call::VmoCreate, &[PAGE, 0, ptr]);
        check_eq!(
            st,
            Status::ERR_INVALID_ARGS,
            "VmoCreate, out {case} ({ptr:#x})"
        );
    }
    mapped_untouched(&mapped_vmo)?;
    // Unaligned: stored byte-wise, the bytes around it untouched.
    let mut buf = [0xeeu8; 16];
    let out = buf.as_mut_ptr() as u64 + 3;
    check_eq!(raw_call(Call::VmoCreate, &[2 * PAGE, 0, out]), Status::OK);
    let h = Handle(u32::from_le_bytes(buf[3..7].try_into().unwrap()));
    check!(
        buf[..3].iter().chain(&buf[7..]).all(|&b| b == 0xee),
        "bytes around the out-value changed: {buf:x?}"
    );
    check_eq!(sys::vmo_get_size(h), Ok(2 * PAGE), "the stored handle");
    check_ok!(sys::handle_close(h));
    check_ok!(m.unmap());
    Ok(())
}

/// `VmoRead` (the VMM writes the buffer): bad buffers are INVALID_ARGS and nothing is written;
/// a zero-length buffer is fine anywhere; an unaligned one gets exactly the right bytes.
fn bad_pointers_vmo_read_buffer(t: &mut TestCtx) -> TestResult {
    let (mapped_vmo, m) = mapped_page()?;
    let vmo = check_ok!(Vmo::create(PAGE, 0));
    let data: [u8; 16] = core::array::from_fn(|i| 0x30 + i as u8);
    check_ok!(vmo.write(&data, 0));
    let v = u64::from(vmo.raw());
    for (case, ptr) in bad_pointers(t.ram, 16, m.gpa) {
        let st = raw_call(Call::VmoRead, &[v, ptr, 0, 16]);
        check_eq!(
            st,
            Status::ERR_INVALID_ARGS,
            "VmoRead into {case} ({ptr:#x})"
        );
        let st = raw_call(Call::VmoRead, &[v, ptr, 0, 0]);
        check_eq!(st, Status::OK, "zero-length VmoRead into {case} ({ptr:#x})");
    }
    mapped_untouched(&mapped_vmo)?;
    let mut buf = [0xeeu8; 32];
    let at = buf.as_mut_ptr() as u64 + 5;
    check_eq!(raw_call(Call::VmoRead, &[v, at, 0, 13]), Status::OK);
    check_eq!(buf[5..18], data[..13], "the unaligned buffer");
    check!(
        buf[..5].iter().chain(&buf[18..]).all(|&b| b == 0xee),
        "bytes around the buffer changed: {buf:x?}"
    );
    check_ok!(m.unmap());
    Ok(())
}

/// `VmoWrite` (the VMM reads the buffer): bad buffers are INVALID_ARGS and the VMO keeps its
/// contents; an unaligned buffer is written exactly.
fn bad_pointers_vmo_write_buffer(t: &mut TestCtx) -> TestResult {
    let (mapped_vmo, m) = mapped_page()?;
    let vmo = check_ok!(Vmo::create(PAGE, 0));
    let v = u64::from(vmo.raw());
    for (case, ptr) in bad_pointers(t.ram, 16, m.gpa) {
        let st = raw_call(Call::VmoWrite, &[v, ptr, 0, 16]);
        check_eq!(
            st,
            Status::ERR_INVALID_ARGS,
            "VmoWrite from {case} ({ptr:#x})"
        );
        let st = raw_call(Call::VmoWrite, &[v, ptr, 0, 0]);
        check_eq!(
            st,
            Status::OK,
            "zero-length VmoWrite from {case} ({ptr:#x})"
        );
    }
    check_eq!(
        committed(vmo.handle())?,
        0,
        "the VMO after the failed writes"
    );
    check_zero(vmo.handle(), 0, PAGE, "the VMO after the failed writes")?;
    mapped_untouched(&mapped_vmo)?;
    let buf: [u8; 32] = core::array::from_fn(|i| 0x40 + i as u8);
    let at = buf.as_ptr() as u64 + 7;
    check_eq!(raw_call(Call::VmoWrite, &[v, at, 0x10, 11]), Status::OK);
    let mut got = [0u8; 32];
    check_ok!(vmo.read(&mut got, 0));
    check_eq!(
        got[0x10..0x1b],
        buf[7..18],
        "the VMO after the unaligned write"
    );
    check!(
        got[..0x10].iter().chain(&got[0x1b..]).all(|&b| b == 0),
        "bytes around the write changed: {got:x?}"
    );
    check_ok!(m.unmap());
    Ok(())
}

/// `PortWait` with a bad out-pointer fails without taking the queued packet: a following good
/// (unaligned) `PortWait` still gets it.
fn bad_pointers_port_wait_keeps_the_packet(t: &mut TestCtx) -> TestResult {
    let (_mapped_vmo, m) = mapped_page()?;
    let fx = fixture(1)?;
    check_ok!(fx.pager.detach(&fx.vmo)); // queues a COMPLETE packet
    let port = u64::from(fx.port.raw());
    for (case, ptr) in bad_pointers(t.ram, 48, m.gpa) {
        let st = raw_call(
            Call::PortWait,
            &[port, deadline_ms(PACKET_WAIT_MS) as u64, ptr],
        );
        check_eq!(
            st,
            Status::ERR_INVALID_ARGS,
            "PortWait into {case} ({ptr:#x})"
        );
    }
    let mut buf = [0xeeu8; 64];
    let at = buf.as_mut_ptr() as u64 + 1;
    let st = raw_call(
        Call::PortWait,
        &[port, deadline_ms(PACKET_WAIT_MS) as u64, at],
    );
    check_eq!(st, Status::OK, "the good PortWait after the bad ones");
    let want = packet_bytes(fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0);
    check_eq!(buf[1..49], want[..], "the packet");
    check!(
        buf[0] == 0xee && buf[49..].iter().all(|&b| b == 0xee),
        "bytes around the packet changed: {buf:x?}"
    );
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}
