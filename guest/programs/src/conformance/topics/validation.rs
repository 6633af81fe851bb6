//! Zircon's core pager tests, §4.1 of `shared/spec/zircon-pager-semantics.md`: errors and API
//! validation of every pager call (`InvalidPagerCreate`, `InvalidPagerCreateVmo`, ...), pager
//! VMO info, and DECOMMIT on a pager VMO.

use rt::abi::VMO_INFO_FLAG_DETACHED;
use rt::abi::VMO_INFO_FLAG_PAGER_BACKED;
use rt::abi::packet::ZX_PAGER_VMO_COMPLETE;
use rt::abi::pager_op::{ZX_PAGER_OP_FAIL, ZX_PAGER_SUPPLY_PAGES};
use rt::abi::rights::{
    ZX_DEFAULT_PAGER_RIGHTS, ZX_DEFAULT_PORT_RIGHTS, ZX_DEFAULT_VMO_RIGHTS, ZX_RIGHT_ATTACH_VMO,
    ZX_RIGHT_MANAGE_VMO, ZX_RIGHT_READ, ZX_RIGHT_WRITE,
};
use rt::abi::status::{ZX_ERR_INTERNAL, ZX_ERR_IO};
use rt::abi::vmo_op::ZX_VMO_OP_DECOMMIT;
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Pager, Port, Status, Vmo, check_eq, check_err, check_ok};

use crate::conformance::PAGE;
use crate::conformance::fixtures::{
    FAIL_CODES, aux_filled, bad_handles, check_aux_decommitted, check_aux_untouched, check_content,
    committed, expect_no_packet, expect_packet, fail_op, fixture, info, supply_fresh,
};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    invalid_pager_create,
    invalid_pager_create_vmo,
    invalid_pager_detach_vmo,
    invalid_pager_supply_pages,
    invalid_pager_op_range,
    vmo_info_pager_backed,
    decommit_pager_vmo_not_supported,
];

fn invalid_pager_create(_t: &mut TestCtx) -> TestResult {
    for options in [1u32, 2, 0x8000_0000, u32::MAX] {
        check_err!(sys::pager_create(options), Status::ERR_INVALID_ARGS);
    }
    let p = check_ok!(Pager::create(0));
    check_ok!(p.close());
    Ok(())
}

fn invalid_pager_create_vmo(_t: &mut TestCtx) -> TestResult {
    let pager = check_ok!(Pager::create(0));
    let port = check_ok!(Port::create(0));
    let (p, q) = (pager.handle(), port.handle());
    check_err!(
        sys::pager_create_vmo(p, u32::MAX, q, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    for bad in bad_handles()? {
        check_err!(
            sys::pager_create_vmo(bad, 0, q, 0, PAGE),
            Status::ERR_BAD_HANDLE
        );
        check_err!(
            sys::pager_create_vmo(p, 0, bad, 0, PAGE),
            Status::ERR_BAD_HANDLE
        );
    }
    let port_no_write = check_ok!(port.duplicate(ZX_DEFAULT_PORT_RIGHTS & !ZX_RIGHT_WRITE));
    check_err!(
        sys::pager_create_vmo(p, 0, port_no_write.handle(), 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    let vmo = check_ok!(Vmo::create(PAGE, 0));
    check_err!(
        sys::pager_create_vmo(q, 0, q, 0, PAGE),
        Status::ERR_WRONG_TYPE
    );
    check_err!(
        sys::pager_create_vmo(p, 0, vmo.handle(), 0, PAGE),
        Status::ERR_WRONG_TYPE
    );
    check_err!(
        sys::pager_create_vmo(p, 0, q, 0, u64::MAX),
        Status::ERR_OUT_OF_RANGE
    );
    let weak = check_ok!(pager.replace(ZX_DEFAULT_PAGER_RIGHTS & !ZX_RIGHT_ATTACH_VMO));
    check_err!(
        sys::pager_create_vmo(weak.handle(), 0, q, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // Nothing above queued a packet, and a valid call works.
    let pager = check_ok!(Pager::create(0));
    let v = check_ok!(pager.create_vmo(0, &port, 1, PAGE));
    check_eq!(check_ok!(v.get_size()), PAGE);
    drop(v);
    expect_packet(q, 1, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    expect_no_packet(q)
}

fn invalid_pager_detach_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    let other = fixture(1)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    for bad in bad_handles()? {
        check_err!(sys::pager_detach_vmo(bad, v), Status::ERR_BAD_HANDLE);
        check_err!(sys::pager_detach_vmo(p, bad), Status::ERR_BAD_HANDLE);
    }
    check_err!(
        sys::pager_detach_vmo(fx.port.handle(), v),
        Status::ERR_WRONG_TYPE
    );
    check_err!(
        sys::pager_detach_vmo(p, fx.port.handle()),
        Status::ERR_WRONG_TYPE
    );
    let no_write = check_ok!(fx.vmo.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE));
    check_err!(
        sys::pager_detach_vmo(p, no_write.handle()),
        Status::ERR_ACCESS_DENIED
    );
    let plain = check_ok!(Vmo::create(PAGE, 0));
    check_err!(
        sys::pager_detach_vmo(p, plain.handle()),
        Status::ERR_INVALID_ARGS
    );
    check_err!(
        sys::pager_detach_vmo(p, other.vmo.handle()),
        Status::ERR_INVALID_ARGS
    );
    // Pager without ATTACH_VMO, and without MANAGE_VMO (each on a pager that owns the VMO).
    let a = fixture(1)?;
    let a_pager = check_ok!(
        a.pager
            .replace(ZX_DEFAULT_PAGER_RIGHTS & !ZX_RIGHT_ATTACH_VMO)
    );
    check_err!(
        sys::pager_detach_vmo(a_pager.handle(), a.vmo.handle()),
        Status::ERR_ACCESS_DENIED
    );
    let b = fixture(1)?;
    let b_pager = check_ok!(
        b.pager
            .replace(ZX_DEFAULT_PAGER_RIGHTS & !ZX_RIGHT_MANAGE_VMO)
    );
    check_err!(
        sys::pager_detach_vmo(b_pager.handle(), b.vmo.handle()),
        Status::ERR_ACCESS_DENIED
    );
    // None of the failed calls detached anything.
    for (vmo, port) in [
        (v, fx.port.handle()),
        (a.vmo.handle(), a.port.handle()),
        (b.vmo.handle(), b.port.handle()),
    ] {
        check_eq!(info(vmo)?.flags & VMO_INFO_FLAG_DETACHED, 0);
        expect_no_packet(port)?;
    }
    drop((a_pager, b_pager));
    Ok(())
}

fn invalid_pager_supply_pages(_t: &mut TestCtx) -> TestResult {
    // Zircon's InvalidPagerSupplyPages list, through PagerSupplyPages (Fuchsia's order).
    let fx = fixture(2)?;
    let other = fixture(1)?;
    let aux = aux_filled(1, 7, 0)?;
    let (p, v, a) = (fx.pager.handle(), fx.vmo.handle(), aux.handle());
    let s = sys::pager_supply_pages;
    for bad in bad_handles()? {
        check_err!(s(bad, v, 0, PAGE, a, 0), Status::ERR_BAD_HANDLE);
        check_err!(s(p, bad, 0, PAGE, a, 0), Status::ERR_BAD_HANDLE);
        check_err!(s(p, v, 0, PAGE, bad, 0), Status::ERR_BAD_HANDLE);
    }
    let port = fx.port.handle();
    check_err!(s(port, v, 0, PAGE, a, 0), Status::ERR_WRONG_TYPE);
    check_err!(s(p, port, 0, PAGE, a, 0), Status::ERR_WRONG_TYPE);
    check_err!(s(p, v, 0, PAGE, port, 0), Status::ERR_WRONG_TYPE);
    let plain = check_ok!(Vmo::create(PAGE, 0));
    check_err!(
        s(p, plain.handle(), 0, PAGE, a, 0),
        Status::ERR_INVALID_ARGS
    );
    check_err!(
        s(p, other.vmo.handle(), 0, PAGE, a, 0),
        Status::ERR_INVALID_ARGS
    );
    let aux_no_write = check_ok!(aux.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE));
    let aux_no_read = check_ok!(aux.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_READ));
    let vmo_no_write = check_ok!(fx.vmo.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE));
    check_err!(
        s(p, v, 0, PAGE, aux_no_write.handle(), 0),
        Status::ERR_ACCESS_DENIED
    );
    check_err!(
        s(p, v, 0, PAGE, aux_no_read.handle(), 0),
        Status::ERR_ACCESS_DENIED
    );
    check_err!(
        s(p, vmo_no_write.handle(), 0, PAGE, a, 0),
        Status::ERR_ACCESS_DENIED
    );
    check_err!(s(p, v, 1, PAGE, a, 0), Status::ERR_INVALID_ARGS);
    check_err!(s(p, v, 0, PAGE - 1, a, 0), Status::ERR_INVALID_ARGS);
    check_err!(s(p, v, 0, PAGE, a, 8), Status::ERR_INVALID_ARGS);
    check_err!(s(p, v, 0, PAGE, a, PAGE), Status::ERR_OUT_OF_RANGE);
    // A pager-backed aux (Zircon: NOT_SUPPORTED; the seed: BAD_STATE), fully committed: another
    // pager's VMO, and another VMO of this pager.
    other.supply_fresh(0, PAGE, other.seed)?;
    check_err!(
        s(p, v, 0, PAGE, other.vmo.handle(), 0),
        Status::ERR_BAD_STATE
    );
    let sibling = check_ok!(fx.pager.create_vmo(0, &fx.port, fx.key + 1, PAGE));
    supply_fresh(p, sibling.handle(), 0, PAGE, 1)?;
    check_err!(s(p, v, 0, PAGE, sibling.handle(), 0), Status::ERR_BAD_STATE);
    check_aux_untouched(&aux, 1, 7, 0)?;
    let weak = check_ok!(
        fx.pager
            .replace(ZX_DEFAULT_PAGER_RIGHTS & !ZX_RIGHT_MANAGE_VMO)
    );
    check_err!(
        s(weak.handle(), v, 0, PAGE, a, 0),
        Status::ERR_ACCESS_DENIED
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(v)?, 0);
    // Last, since it takes the aux: an out-of-range destination.
    let fx2 = fixture(1)?;
    check_err!(
        s(fx2.pager.handle(), fx2.vmo.handle(), PAGE, PAGE, a, 0),
        Status::ERR_OUT_OF_RANGE
    );
    check_aux_decommitted(&aux, 0, PAGE, 0)
}

fn invalid_pager_op_range(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let other = fixture(1)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    let io = ZX_ERR_IO as i64 as u64;
    let f = |pager: Handle, vmo: Handle, off: u64, len: u64, data: u64| {
        sys::pager_op_range(pager, ZX_PAGER_OP_FAIL, vmo, off, len, data)
    };
    for bad in bad_handles()? {
        check_err!(f(bad, v, 0, PAGE, io), Status::ERR_BAD_HANDLE);
        check_err!(f(p, bad, 0, PAGE, io), Status::ERR_BAD_HANDLE);
    }
    check_err!(f(fx.port.handle(), v, 0, PAGE, io), Status::ERR_WRONG_TYPE);
    check_err!(f(p, fx.port.handle(), 0, PAGE, io), Status::ERR_WRONG_TYPE);
    let plain = check_ok!(Vmo::create(PAGE, 0));
    check_err!(f(p, plain.handle(), 0, PAGE, io), Status::ERR_INVALID_ARGS);
    check_err!(
        f(p, other.vmo.handle(), 0, PAGE, io),
        Status::ERR_INVALID_ARGS
    );
    check_err!(f(p, v, 1, PAGE, io), Status::ERR_INVALID_ARGS);
    check_err!(f(p, v, 0, PAGE + 1, io), Status::ERR_INVALID_ARGS);
    check_err!(f(p, v, 2 * PAGE, PAGE, io), Status::ERR_OUT_OF_RANGE);
    check_err!(f(p, v, PAGE, 2 * PAGE, io), Status::ERR_OUT_OF_RANGE);
    for data in [
        0x11_ffff_ffffu64,
        ZX_ERR_INTERNAL as i64 as u64,
        10,
        0,
        ZX_ERR_IO as u32 as u64,
    ] {
        check_err!(f(p, v, 0, PAGE, data), Status::ERR_INVALID_ARGS,);
        // The same through the seed's call (the status goes in aux_offset).
        check_err!(
            sys::pager_vmo_op(p, v, ZX_PAGER_OP_FAIL, 0, PAGE, Handle::INVALID, data),
            Status::ERR_INVALID_ARGS,
        );
    }
    check_err!(
        sys::pager_op_range(p, 0, v, 0, PAGE, 0),
        Status::ERR_NOT_SUPPORTED
    );
    check_err!(
        sys::pager_op_range(p, ZX_PAGER_SUPPLY_PAGES, v, 0, PAGE, 0),
        Status::ERR_NOT_SUPPORTED
    );
    // A valid FAIL with nothing outstanding is an OK no-op, for each permitted code.
    for code in FAIL_CODES {
        check_ok!(f(p, v, 0, 2 * PAGE, code as i64 as u64));
        check_ok!(fail_op(p, v, 0, 2 * PAGE, code));
    }
    expect_no_packet(fx.port.handle())
}

fn vmo_info_pager_backed(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(3)?;
    let i = info(fx.vmo.handle())?;
    check_eq!(
        i.flags & VMO_INFO_FLAG_PAGER_BACKED,
        VMO_INFO_FLAG_PAGER_BACKED
    );
    check_eq!(i.size, 3 * PAGE);
    check_eq!(i.committed_bytes, 0);
    let plain = check_ok!(Vmo::create(PAGE, 0));
    check_eq!(info(plain.handle())?.flags & VMO_INFO_FLAG_PAGER_BACKED, 0);
    Ok(())
}

fn decommit_pager_vmo_not_supported(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    check_err!(
        fx.vmo.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")
}
