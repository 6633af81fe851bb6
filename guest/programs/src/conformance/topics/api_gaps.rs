//! The calls Zircon's `pager.cc` and `pager-writeback.cc` need beyond the seed (issue 15):
//! `zx_vmo_set_size` on resizable pager VMOs, the `zx_vmo_op_range` eviction hints,
//! `zx_pager_query_dirty_ranges` / `zx_pager_query_vmo_stats`, a closed pager keeping the
//! supplied pages (ClosePagerTest), and kvmpager's exception packets: a fatal page fault of a
//! vCPU other than the harness's arrives on a port and parks that vCPU.
//!
//! [`exception_packet_parks_the_faulting_vcpu`] must stay the suite's last case: the vCPU it
//! parks never runs a job again.

use rt::abi::packet::{KVMPAGER_PKT_TYPE_EXCEPTION, ZX_EXCP_FATAL_PAGE_FAULT};
use rt::abi::pager_op::{
    ZX_PAGER_OP_WRITEBACK_BEGIN, ZX_PAGER_OP_WRITEBACK_END, ZX_PAGER_RESET_VMO_STATS,
    ZX_PAGER_VMO_STATS_MODIFIED,
};
use rt::abi::status::ZX_ERR_IO;
use rt::abi::vmo_op::{ZX_VMO_OP_ALWAYS_NEED, ZX_VMO_OP_DONT_NEED, ZX_VMO_OP_PREFETCH};
use rt::abi::vmo_options::ZX_VMO_RESIZABLE;
use rt::abi::{DirtyRange, ExceptionPacket};
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Port, Status, Vmo, check, check_eq, check_err, check_ok, format};

use crate::conformance::fixtures::{
    check_content, committed, expect_no_packet, expect_read, fail_op, fixture, fixture_with, map,
    read_mapped_page, supply_fresh,
};
use crate::conformance::jobs::{join_as, publish, sh_key, sh_pager, sh_port, sh_seed, sh_vmo, spawn};
use crate::conformance::{PACKET_WAIT_MS, PAGE, deadline_ms};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    resize_nonresizable_vmo,
    read_resize_fails_a_blocked_read_with_out_of_range,
    eviction_hints_request_absent_pages_only,
    query_dirty_ranges_and_vmo_stats,
    close_pager_keeps_supplied_pages,
    exception_packet_parks_the_faulting_vcpu,
];

/// ResizeNonresizableVmo, and kvmpager's bound: a VMO grows back at most to its creation size.
fn resize_nonresizable_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    check_err!(fx.vmo.set_size(PAGE), Status::ERR_UNAVAILABLE);
    let anon = check_ok!(Vmo::create(2 * PAGE, 0));
    check_err!(anon.set_size(PAGE), Status::ERR_UNAVAILABLE);
    let fx = fixture_with(2, ZX_VMO_RESIZABLE)?;
    check_err!(fx.vmo.set_size(3 * PAGE), Status::ERR_OUT_OF_RANGE);
    check_ok!(fx.vmo.set_size(1));
    check_eq!(check_ok!(fx.vmo.get_size()), PAGE);
    check_ok!(fx.vmo.set_size(2 * PAGE));
    check_eq!(check_ok!(fx.vmo.get_size()), 2 * PAGE);
    check_err!(sys::vmo_set_size(Handle::INVALID, 0), Status::ERR_BAD_HANDLE);
    expect_no_packet(fx.port.handle())
}

/// Pager job: expects READ of page 1, then shrinks the VMO to one page under the reader.
fn job_shrink_under_reader(_cpu: usize) -> TestResult {
    let r = expect_read(sh_port(), sh_key(), PAGE, PAGE);
    let s = sys::vmo_set_size(sh_vmo(), PAGE).map_err(|s| format!("set_size: {s:?}"));
    r.and(s)
}

/// ReadResizeTest: a `VmoRead` blocked on page 1 fails with OUT_OF_RANGE when the VMO shrinks
/// below it; page 0 stays.
fn read_resize_fails_a_blocked_read_with_out_of_range(_t: &mut TestCtx) -> TestResult {
    let fx = fixture_with(2, ZX_VMO_RESIZABLE)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    publish(&fx, PAGE, PAGE);
    spawn(1, job_shrink_under_reader)?;
    let mut buf = [0u8; 16];
    let r = fx.vmo.read(&mut buf, PAGE);
    join_as(1, "pager")?;
    check_eq!(r, Err(Status::ERR_OUT_OF_RANGE), "VmoRead of a page cut off");
    check_eq!(check_ok!(fx.vmo.get_size()), PAGE);
    check_content(fx.vmo.handle(), 0, 1, fx.seed, 0, "page 0 after the shrink")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    expect_no_packet(fx.port.handle())
}

/// Pager job: serves READ(0, 1 page) then READ(2, 2 pages) — the absent runs of the hint.
fn job_serve_absent_runs(_cpu: usize) -> TestResult {
    let (p, v, port, key, seed) = (sh_pager(), sh_vmo(), sh_port(), sh_key(), sh_seed());
    let first = expect_read(port, key, 0, PAGE);
    let a = supply_fresh(p, v, 0, PAGE, seed);
    let second = expect_read(port, key, 2 * PAGE, 2 * PAGE);
    let b = supply_fresh(p, v, 2 * PAGE, 2 * PAGE, seed);
    first.and(a).and(second).and(b)
}

/// EvictionHint* / Prefetch: ALWAYS_NEED and PREFETCH request only the absent pages (a present
/// page splits the range), DONT_NEED requests nothing, and a hint on present pages neither.
fn eviction_hints_request_absent_pages_only(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    fx.supply_fresh(PAGE, PAGE, fx.seed)?;
    check_ok!(fx.vmo.op_range(ZX_VMO_OP_DONT_NEED, 0, 4 * PAGE));
    expect_no_packet(fx.port.handle())?;
    publish(&fx, 0, 4 * PAGE);
    spawn(1, job_serve_absent_runs)?;
    let r = fx.vmo.op_range(ZX_VMO_OP_ALWAYS_NEED, 0, 4 * PAGE);
    join_as(1, "pager")?;
    check_ok!(r);
    check_eq!(committed(fx.vmo.handle())?, 4 * PAGE);
    check_ok!(fx.vmo.op_range(ZX_VMO_OP_PREFETCH, 0, 4 * PAGE));
    check_ok!(fx.vmo.op_range(ZX_VMO_OP_ALWAYS_NEED, 0, 4 * PAGE));
    check_err!(
        fx.vmo.op_range(ZX_VMO_OP_PREFETCH, 0, 5 * PAGE),
        Status::ERR_OUT_OF_RANGE
    );
    check_content(fx.vmo.handle(), 0, 4, fx.seed, 0, "after the hints")?;
    expect_no_packet(fx.port.handle())
}

/// OpDirtyNoWrite-style checks without TRAP_DIRTY: writes make runs of dirty pages, writeback
/// cleans them; the stats say whether the VMO was modified, and RESET clears that.
fn query_dirty_ranges_and_vmo_stats(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    fx.supply_fresh(0, 4 * PAGE, fx.seed)?;
    let (pager, vmo) = (&fx.pager, &fx.vmo);
    let mut ranges = [DirtyRange::default(); 4];
    let n = check_ok!(pager.query_dirty_ranges(vmo, 0, 4 * PAGE, &mut ranges));
    check_eq!((n.actual, n.avail), (0, 0));
    check_eq!(check_ok!(pager.query_vmo_stats(vmo, 0)).modified, 0);
    check_ok!(vmo.write(&[1; 16], PAGE + 8));
    check_ok!(vmo.write(&[2; 16], 3 * PAGE));
    let n = check_ok!(pager.query_dirty_ranges(vmo, 0, 4 * PAGE, &mut ranges));
    check_eq!((n.actual, n.avail), (2, 2));
    check_eq!((ranges[0].offset, ranges[0].length), (PAGE, PAGE));
    check_eq!((ranges[1].offset, ranges[1].length, ranges[1].options), (3 * PAGE, PAGE, 0));
    // A short buffer: one written, two found; unaligned ranges are rounded out to pages.
    let n = check_ok!(pager.query_dirty_ranges(vmo, 1, 4 * PAGE - 1, &mut ranges[..1]));
    check_eq!((n.actual, n.avail), (1, 2));
    check_err!(
        pager.query_dirty_ranges(vmo, 0, 5 * PAGE, &mut ranges),
        Status::ERR_OUT_OF_RANGE
    );
    let reset = ZX_PAGER_RESET_VMO_STATS;
    check_eq!(check_ok!(pager.query_vmo_stats(vmo, reset)).modified, ZX_PAGER_VMO_STATS_MODIFIED);
    check_eq!(check_ok!(pager.query_vmo_stats(vmo, 0)).modified, 0);
    let mut small = [0u8; 3];
    check_err!(
        sys::pager_query_vmo_stats_raw(pager.handle(), vmo.handle(), 2, &mut small),
        Status::ERR_BUFFER_TOO_SMALL
    );
    check_err!(pager.query_vmo_stats(vmo, 2), Status::ERR_INVALID_ARGS);
    let wb = |op| pager.op_range(op, vmo, 0, 4 * PAGE, 0);
    check_ok!(wb(ZX_PAGER_OP_WRITEBACK_BEGIN));
    check_ok!(wb(ZX_PAGER_OP_WRITEBACK_END));
    let n = check_ok!(pager.query_dirty_ranges(vmo, 0, 4 * PAGE, &mut ranges));
    check_eq!((n.actual, n.avail), (0, 0));
    let anon = check_ok!(Vmo::create(PAGE, 0));
    check_err!(
        pager.query_dirty_ranges(&anon, 0, PAGE, &mut ranges),
        Status::ERR_INVALID_ARGS
    );
    expect_no_packet(fx.port.handle())
}

/// ClosePagerTest: after the pager handle closes, a supplied page stays readable (and
/// committed); an absent one fails with BAD_STATE at once.
fn close_pager_keeps_supplied_pages(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    check_ok!(fx.pager.close());
    check_content(fx.vmo.handle(), 0, 1, fx.seed, 0, "supplied page after the pager closed")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    let mut buf = [0u8; 16];
    check_err!(fx.vmo.read(&mut buf, PAGE), Status::ERR_BAD_STATE);
    let m = map(fx.vmo.handle(), 0, PAGE)?;
    crate::conformance::fixtures::check_page(&read_mapped_page(m.gpa), fx.seed, 0, "mapped")?;
    expect_no_packet(fx.port.handle())
}

/// Accessor job: reads the first page of the published mapping (its gpa is the range's
/// offset); the fault is made fatal, so this vCPU is parked and never returns.
fn job_touch_mapped(_cpu: usize) -> TestResult {
    let (gpa, _) = crate::conformance::jobs::sh_range();
    let _ = read_mapped_page(gpa);
    Err(format!("the read at {gpa:#x} returned after a FAIL"))
}

/// FailSinglePage through a mapping, as Zircon sees it: the faulting vCPU's crash arrives as an
/// exception packet (synth_code ZX_ERR_IO, the address) and the VM goes on.
fn exception_packet_parks_the_faulting_vcpu(_t: &mut TestCtx) -> TestResult {
    let victim = rt::ncpus() - 1;
    check!(victim >= 1, "needs a second vCPU");
    let exc = check_ok!(Port::create(0));
    check_ok!(exc.set_exception_port(0xe4c));
    let fx = fixture(1)?;
    let m = map(fx.vmo.handle(), 0, PAGE)?;
    publish(&fx, m.gpa, PAGE);
    spawn(victim, job_touch_mapped)?;
    expect_read(fx.port.handle(), fx.key, 0, PAGE)?;
    check_ok!(fail_op(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, ZX_ERR_IO));
    let p = check_ok!(exc.wait(deadline_ms(PACKET_WAIT_MS)));
    let e = ExceptionPacket::from_port_packet(&p);
    check!(e.is_some(), "packet type {:#x}", p.packet_type);
    let e = e.unwrap_or_default();
    check_eq!(p.packet_type, KVMPAGER_PKT_TYPE_EXCEPTION);
    check_eq!(e.key, 0xe4c);
    check_eq!(e.status, ZX_ERR_IO, "synth_code");
    check_eq!(e.vcpu as usize, victim);
    check_eq!(e.exception, ZX_EXCP_FATAL_PAGE_FAULT);
    check_eq!(e.address, m.gpa);
    check_eq!(e.vmo_offset, 0);
    check_ok!(sys::set_exception_port(Handle::INVALID, 0));
    expect_no_packet(exc.handle())
}
