//! Zircon's core pager tests, §4.2 and §4.5 of `shared/spec/zircon-pager-semantics.md`, on
//! one vCPU: supply semantics (presupply, overlapping supplies), detach and close (COMPLETE
//! packets, DecommitOnDetach), and supplies after the port is gone.

use rt::abi::VMO_INFO_FLAG_DETACHED;
use rt::abi::packet::ZX_PAGER_VMO_COMPLETE;
use rt::abi::rights::ZX_RIGHT_SAME_RIGHTS;
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys;
use rt::{Status, check_eq, check_err, check_ok};

use crate::conformance::PAGE;
use crate::conformance::fixtures::{
    aux_filled, check_aux_decommitted, check_content, check_page, committed, expect_no_packet,
    expect_packet, fixture, info, map, read_mapped_page, supply_fresh,
};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    presupply,
    overlap_supply,
    supply_after_detach,
    detach_page_complete,
    close_page_complete,
    detach_close_pager,
    supply_after_port_closed,
];

fn presupply(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "VmoRead")?;
    let m = map(fx.vmo.handle(), 0, 2 * PAGE)?;
    for page in 0..2 {
        check_page(
            &read_mapped_page(m.gpa + page * PAGE),
            fx.seed,
            page,
            "mapping",
        )?;
    }
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

fn overlap_supply(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let alt = fx.seed ^ 0xa1a1;
    fx.supply_fresh(0, PAGE, alt)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    check_ok!(fx.supply(0, 2 * PAGE, aux.handle(), 0));
    check_content(fx.vmo.handle(), 0, 1, alt, 0, "page 0 (alternate buffer)")?;
    check_content(fx.vmo.handle(), PAGE, 1, fx.seed, 1, "page 1")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)?;
    expect_no_packet(fx.port.handle())
}

fn supply_after_detach(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    check_ok!(fx.pager.detach(&fx.vmo));
    let aux = aux_filled(1, fx.seed, 0)?;
    check_err!(fx.supply(0, PAGE, aux.handle(), 0), Status::ERR_BAD_STATE);
    // No page requests: just the detach's COMPLETE.
    expect_packet(fx.port.handle(), fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    expect_no_packet(fx.port.handle())
}

fn detach_page_complete(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    check_ok!(fx.pager.detach(&fx.vmo));
    expect_packet(fx.port.handle(), fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    expect_no_packet(fx.port.handle())?;
    // Detaching again is OK and sends no second COMPLETE.
    check_ok!(fx.pager.detach(&fx.vmo));
    expect_no_packet(fx.port.handle())?;
    // DecommitOnDetach: clean pages are gone, accesses fail with BAD_STATE.
    let i = info(fx.vmo.handle())?;
    check_eq!(i.flags & VMO_INFO_FLAG_DETACHED, VMO_INFO_FLAG_DETACHED);
    check_eq!(i.committed_bytes, 0);
    let mut buf = [0u8; 16];
    check_err!(fx.vmo.read(&mut buf, 0), Status::ERR_BAD_STATE);
    check_err!(fx.vmo.read(&mut buf, PAGE), Status::ERR_BAD_STATE);
    Ok(())
}

fn close_page_complete(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    let dup = check_ok!(fx.vmo.duplicate(ZX_RIGHT_SAME_RIGHTS));
    check_ok!(fx.vmo.close());
    // Not the last handle yet: no COMPLETE.
    expect_no_packet(fx.port.handle())?;
    check_ok!(dup.close());
    expect_packet(fx.port.handle(), fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    expect_no_packet(fx.port.handle())
}

fn detach_close_pager(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    check_ok!(fx.pager.detach(&fx.vmo));
    check_ok!(fx.pager.close());
    let mut buf = [0u8; 8];
    check_err!(fx.vmo.read(&mut buf, 0), Status::ERR_BAD_STATE);
    check_ok!(fx.vmo.close());
    Ok(())
}

fn supply_after_port_closed(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    check_ok!(fx.port.close());
    supply_fresh(p, v, 0, 2 * PAGE, fx.seed)?;
    check_content(v, 0, 2, fx.seed, 0, "pager VMO after the port closed")?;
    check_eq!(committed(v)?, 2 * PAGE);
    check_ok!(sys::pager_detach_vmo(p, v));
    drop(fx.vmo);
    Ok(())
}
