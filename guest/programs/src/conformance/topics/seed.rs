//! The seed's contract: `ZX_PAGER_SUPPLY_PAGES` through `PagerVmoOp`, one violation at a
//! time (BAD_HANDLE, WRONG_TYPE, INVALID_ARGS, ACCESS_DENIED, BAD_STATE, OUT_OF_RANGE), then
//! what a good supply does to the pager VMO and to the aux VMO, byte for byte.

use rt::abi::rights::{
    ZX_DEFAULT_PAGER_RIGHTS, ZX_DEFAULT_VMO_RIGHTS, ZX_RIGHT_MANAGE_VMO, ZX_RIGHT_READ,
    ZX_RIGHT_SAME_RIGHTS, ZX_RIGHT_WRITE,
};
use rt::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT;
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Status, Vmo, check_eq, check_err, check_ok};

use crate::conformance::fixtures::{
    aux_filled, bad_handles, check_aux_decommitted, check_aux_untouched, check_content, check_zero,
    committed, expect_no_packet, fill_page, fixture, info, map, supply,
};
use crate::conformance::{PAGE, PAGE_US};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    supply_bad_handle_pager,
    supply_bad_handle_pager_vmo,
    supply_bad_handle_aux,
    supply_wrong_type_pager,
    supply_wrong_type_pager_vmo,
    supply_wrong_type_aux,
    supply_invalid_args_plain_vmo,
    supply_invalid_args_other_pagers_vmo,
    supply_invalid_args_unknown_op,
    supply_invalid_args_unaligned,
    supply_access_denied_aux_without_read,
    supply_access_denied_aux_without_write,
    supply_access_denied_pager_vmo_without_write,
    supply_access_denied_pager_without_manage_vmo,
    supply_bad_state_aux_not_committed,
    supply_bad_state_aux_mapped,
    supply_bad_state_aux_has_clone,
    supply_bad_state_aux_is_pager_vmo,
    supply_bad_state_aux_not_from_vmo_create,
    supply_bad_state_after_detach_decommits_aux,
    supply_out_of_range_destination_decommits_aux,
    supply_out_of_range_aux_leaves_aux_untouched,
    supply_moves_pages_to_the_right_offsets,
    supply_keeps_present_pages_and_frees_their_aux_pages,
    supply_decommits_the_aux_range,
    supply_zero_length_is_ok,
    supply_pages_call_matches_vmo_op,
];

fn supply_bad_handle_pager(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    for bad in bad_handles()? {
        check_err!(
            supply(bad, fx.vmo.handle(), 0, PAGE, aux.handle(), 0),
            Status::ERR_BAD_HANDLE
        );
    }
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_bad_handle_pager_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    for bad in bad_handles()? {
        check_err!(
            supply(fx.pager.handle(), bad, 0, PAGE, aux.handle(), 0),
            Status::ERR_BAD_HANDLE
        );
    }
    check_aux_untouched(&aux, 1, 7, 0)
}

fn supply_bad_handle_aux(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    for bad in bad_handles()? {
        check_err!(fx.supply(0, PAGE, bad, 0), Status::ERR_BAD_HANDLE);
    }
    check_eq!(committed(fx.vmo.handle())?, 0);
    expect_no_packet(fx.port.handle())
}

fn supply_wrong_type_pager(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    for not_pager in [fx.port.handle(), aux.handle(), fx.vmo.handle()] {
        check_err!(
            supply(not_pager, fx.vmo.handle(), 0, PAGE, aux.handle(), 0),
            Status::ERR_WRONG_TYPE
        );
    }
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_wrong_type_pager_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    for not_vmo in [fx.port.handle(), fx.pager.handle()] {
        check_err!(
            supply(fx.pager.handle(), not_vmo, 0, PAGE, aux.handle(), 0),
            Status::ERR_WRONG_TYPE
        );
    }
    check_aux_untouched(&aux, 1, 7, 0)
}

fn supply_wrong_type_aux(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    for not_vmo in [fx.port.handle(), fx.pager.handle()] {
        check_err!(fx.supply(0, PAGE, not_vmo, 0), Status::ERR_WRONG_TYPE);
    }
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_invalid_args_plain_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let plain = check_ok!(Vmo::create(2 * PAGE, 0));
    let aux = aux_filled(1, 7, 0)?;
    check_err!(
        supply(fx.pager.handle(), plain.handle(), 0, PAGE, aux.handle(), 0),
        Status::ERR_INVALID_ARGS
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(plain.handle())?, 0, "the plain VMO got pages");
    check_zero(plain.handle(), 0, 2 * PAGE, "plain VMO")
}

fn supply_invalid_args_other_pagers_vmo(_t: &mut TestCtx) -> TestResult {
    let a = fixture(2)?;
    let b = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    // B's VMO with pager A, and A's VMO with pager B.
    check_err!(
        supply(a.pager.handle(), b.vmo.handle(), 0, PAGE, aux.handle(), 0),
        Status::ERR_INVALID_ARGS
    );
    check_err!(
        supply(b.pager.handle(), a.vmo.handle(), 0, PAGE, aux.handle(), 0),
        Status::ERR_INVALID_ARGS
    );
    // Ownership is checked before the aux handle (Zircon's test passes ZX_HANDLE_INVALID).
    check_err!(
        supply(
            a.pager.handle(),
            b.vmo.handle(),
            0,
            PAGE,
            Handle::INVALID,
            0
        ),
        Status::ERR_INVALID_ARGS
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(a.vmo.handle())?, 0);
    check_eq!(committed(b.vmo.handle())?, 0);
    Ok(())
}

fn supply_invalid_args_unknown_op(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    for op in [0u32, 5, 0xf, 0x11, 0x20, 0x8000_0010, u32::MAX] {
        check_err!(
            sys::pager_vmo_op(
                fx.pager.handle(),
                fx.vmo.handle(),
                op,
                0,
                PAGE,
                aux.handle(),
                0
            ),
            Status::ERR_INVALID_ARGS,
        );
    }
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_invalid_args_unaligned(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let aux = aux_filled(2, 7, 0)?;
    let (p, v, a) = (fx.pager.handle(), fx.vmo.handle(), aux.handle());
    // offset, length, aux_offset: one unaligned at a time.
    for (off, len, aux_off) in [
        (1, PAGE, 0),
        (PAGE / 2, PAGE, 0),
        (PAGE + 8, PAGE, 0),
        (0, 1, 0),
        (0, PAGE + 1, 0),
        (0, 2 * PAGE - 512, 0),
        (0, PAGE, 1),
        (0, PAGE, PAGE - 1),
        (0, PAGE, PAGE + 2048),
    ] {
        check_err!(supply(p, v, off, len, a, aux_off), Status::ERR_INVALID_ARGS,);
    }
    check_aux_untouched(&aux, 2, 7, 0)?;
    check_eq!(committed(v)?, 0);
    Ok(())
}

fn supply_access_denied_aux_without_read(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    let no_read = check_ok!(aux.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_READ));
    check_err!(
        fx.supply(0, PAGE, no_read.handle(), 0),
        Status::ERR_ACCESS_DENIED
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_access_denied_aux_without_write(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    let dup = check_ok!(aux.duplicate(ZX_RIGHT_SAME_RIGHTS));
    let no_write = check_ok!(dup.replace(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE));
    check_err!(
        fx.supply(0, PAGE, no_write.handle(), 0),
        Status::ERR_ACCESS_DENIED
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_access_denied_pager_vmo_without_write(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    let no_write = check_ok!(fx.vmo.duplicate(ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE));
    check_err!(
        supply(
            fx.pager.handle(),
            no_write.handle(),
            0,
            PAGE,
            aux.handle(),
            0
        ),
        Status::ERR_ACCESS_DENIED
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_access_denied_pager_without_manage_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(1, 7, 0)?;
    // A pager handle has no DUPLICATE right; replace it with a weaker one.
    let weak = check_ok!(
        fx.pager
            .replace(ZX_DEFAULT_PAGER_RIGHTS & !ZX_RIGHT_MANAGE_VMO)
    );
    check_err!(
        supply(weak.handle(), fx.vmo.handle(), 0, PAGE, aux.handle(), 0),
        Status::ERR_ACCESS_DENIED
    );
    check_aux_untouched(&aux, 1, 7, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    drop(weak);
    drop(fx.vmo);
    Ok(())
}

fn supply_bad_state_aux_not_committed(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    // Page 0 written (committed), page 1 never touched.
    let aux = check_ok!(Vmo::create(2 * PAGE, 0));
    let mut buf = [0u8; PAGE_US];
    fill_page(&mut buf, 7, 0);
    check_ok!(aux.write(&buf, 0));
    check_err!(
        fx.supply(0, 2 * PAGE, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    check_eq!(committed(aux.handle())?, PAGE, "aux must be untouched");
    check_content(aux.handle(), 0, 1, 7, 0, "aux page 0 (must be untouched)")?;
    // An aux with nothing committed at all.
    let empty = check_ok!(Vmo::create(PAGE, 0));
    check_err!(fx.supply(0, PAGE, empty.handle(), 0), Status::ERR_BAD_STATE);
    check_eq!(committed(fx.vmo.handle())?, 0);
    expect_no_packet(fx.port.handle())
}

fn supply_bad_state_aux_mapped(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    let m = map(aux.handle(), 0, 2 * PAGE)?;
    check_eq!(info(aux.handle())?.mappings, 1);
    check_err!(
        fx.supply(0, 2 * PAGE, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    check_aux_untouched(&aux, 2, fx.seed, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    check_ok!(m.unmap());
    // Without the mapping the same supply works: it was the mapping.
    check_ok!(fx.supply(0, 2 * PAGE, aux.handle(), 0));
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)
}

fn supply_bad_state_aux_has_clone(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    let child = check_ok!(aux.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, 2 * PAGE));
    check_eq!(info(aux.handle())?.children, 1);
    check_err!(
        fx.supply(0, 2 * PAGE, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    check_aux_untouched(&aux, 2, fx.seed, 0)?;
    check_content(child.handle(), 0, 2, fx.seed, 0, "the clone")?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    check_ok!(child.close());
    check_ok!(fx.supply(0, 2 * PAGE, aux.handle(), 0));
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)
}

fn supply_bad_state_aux_is_pager_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let other = fixture(1)?;
    // Fully commit the other pager VMO, so the only violation is its kind.
    other.supply_fresh(0, PAGE, other.seed)?;
    check_err!(
        fx.supply(0, PAGE, other.vmo.handle(), 0),
        Status::ERR_BAD_STATE
    );
    check_content(
        other.vmo.handle(),
        0,
        1,
        other.seed,
        0,
        "the pager VMO used as aux",
    )?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    // The pager VMO as its own aux.
    fx.supply_fresh(PAGE, PAGE, fx.seed)?;
    check_err!(
        fx.supply(0, PAGE, fx.vmo.handle(), PAGE),
        Status::ERR_BAD_STATE
    );
    check_content(fx.vmo.handle(), PAGE, 1, fx.seed, 1, "the pager VMO")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    expect_no_packet(fx.port.handle())
}

fn supply_bad_state_aux_not_from_vmo_create(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    let parent = aux_filled(1, fx.seed, 0)?;
    // A snapshot child is made by VmoCreateChild, not VmoCreate; it is fully committed.
    let child = check_ok!(parent.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE));
    check_eq!(committed(child.handle())?, PAGE);
    check_err!(fx.supply(0, PAGE, child.handle(), 0), Status::ERR_BAD_STATE);
    check_content(
        child.handle(),
        0,
        1,
        fx.seed,
        0,
        "the child (must be untouched)",
    )?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_bad_state_after_detach_decommits_aux(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    check_ok!(fx.pager.detach(&fx.vmo));
    check_err!(
        fx.supply(0, 2 * PAGE, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    // The detached check comes after the aux is taken: the aux range is fully decommitted
    // (README check order; the contract allows untouched or fully decommitted, never half).
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    Ok(())
}

fn supply_out_of_range_destination_decommits_aux(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    // Entirely past the end.
    let aux = aux_filled(1, fx.seed, 2)?;
    check_err!(
        supply(p, v, 2 * PAGE, PAGE, aux.handle(), 0),
        Status::ERR_OUT_OF_RANGE
    );
    check_aux_decommitted(&aux, 0, PAGE, 0)?;
    // Straddling the end.
    let aux = aux_filled(2, fx.seed, 1)?;
    check_err!(
        supply(p, v, PAGE, 2 * PAGE, aux.handle(), 0),
        Status::ERR_OUT_OF_RANGE
    );
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)?;
    // offset + length overflows.
    let aux = aux_filled(1, fx.seed, 0)?;
    check_err!(
        supply(p, v, !(PAGE - 1), PAGE, aux.handle(), 0),
        Status::ERR_OUT_OF_RANGE
    );
    check_aux_decommitted(&aux, 0, PAGE, 0)?;
    // Only the given aux range is taken.
    let aux = aux_filled(3, fx.seed, 0)?;
    check_err!(
        supply(p, v, 2 * PAGE, PAGE, aux.handle(), PAGE),
        Status::ERR_OUT_OF_RANGE
    );
    check_aux_decommitted(&aux, PAGE, PAGE, 2 * PAGE)?;
    check_content(aux.handle(), 0, 1, fx.seed, 0, "aux page 0")?;
    check_content(aux.handle(), 2 * PAGE, 1, fx.seed, 2, "aux page 2")?;
    expect_no_packet(fx.port.handle())
}

fn supply_out_of_range_aux_leaves_aux_untouched(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    let aux = aux_filled(2, fx.seed, 0)?;
    for (aux_off, len) in [
        (PAGE, 2 * PAGE),
        (2 * PAGE, PAGE),
        (0, 3 * PAGE),
        (!(PAGE - 1), PAGE),
    ] {
        check_err!(
            supply(p, v, 0, len, aux.handle(), aux_off),
            Status::ERR_OUT_OF_RANGE
        );
        check_aux_untouched(&aux, 2, fx.seed, 0)?;
    }
    check_eq!(committed(v)?, 0);
    Ok(())
}

fn supply_moves_pages_to_the_right_offsets(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(8)?;
    // aux page 0: unrelated bytes; aux pages 1..4: logical pages 3..6 of the VMO.
    let aux = check_ok!(Vmo::create(4 * PAGE, 0));
    let mut buf = [0u8; PAGE_US];
    fill_page(&mut buf, 0xdead, 0);
    check_ok!(aux.write(&buf, 0));
    for k in 1..4 {
        fill_page(&mut buf, fx.seed, 2 + k);
        check_ok!(aux.write(&buf, k * PAGE));
    }
    check_ok!(fx.supply(3 * PAGE, 3 * PAGE, aux.handle(), PAGE));
    check_content(
        fx.vmo.handle(),
        3 * PAGE,
        3,
        fx.seed,
        3,
        "pager VMO pages 3..6",
    )?;
    check_eq!(
        committed(fx.vmo.handle())?,
        3 * PAGE,
        "only pages 3..6 arrived"
    );
    check_content(
        aux.handle(),
        0,
        1,
        0xdead,
        0,
        "aux page 0 (outside the range)",
    )?;
    check_aux_decommitted(&aux, PAGE, 3 * PAGE, PAGE)?;
    expect_no_packet(fx.port.handle())
}

fn supply_keeps_present_pages_and_frees_their_aux_pages(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(3)?;
    let first = fx.seed ^ 0xffff;
    fx.supply_fresh(PAGE, PAGE, first)?;
    let aux = aux_filled(3, fx.seed, 0)?;
    check_ok!(fx.supply(0, 3 * PAGE, aux.handle(), 0));
    check_content(fx.vmo.handle(), 0, 1, fx.seed, 0, "page 0")?;
    check_content(
        fx.vmo.handle(),
        PAGE,
        1,
        first,
        1,
        "page 1 (present: must be kept)",
    )?;
    check_content(fx.vmo.handle(), 2 * PAGE, 1, fx.seed, 2, "page 2")?;
    check_eq!(committed(fx.vmo.handle())?, 3 * PAGE);
    // The aux page that matched the present page was freed too.
    check_aux_decommitted(&aux, 0, 3 * PAGE, 0)
}

fn supply_decommits_the_aux_range(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(4, fx.seed, 0)?;
    check_eq!(committed(aux.handle())?, 4 * PAGE);
    check_ok!(fx.supply(0, 2 * PAGE, aux.handle(), PAGE));
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 1, "pager VMO")?;
    check_aux_decommitted(&aux, PAGE, 2 * PAGE, 2 * PAGE)?;
    check_content(aux.handle(), 0, 1, fx.seed, 0, "aux page 0")?;
    check_content(aux.handle(), 3 * PAGE, 1, fx.seed, 3, "aux page 3")
}

fn supply_zero_length_is_ok(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    let (p, v, a) = (fx.pager.handle(), fx.vmo.handle(), aux.handle());
    for (off, aux_off) in [(0, 0), (PAGE, PAGE), (2 * PAGE, 0), (0, 2 * PAGE)] {
        check_ok!(supply(p, v, off, 0, a, aux_off));
    }
    check_aux_untouched(&aux, 2, fx.seed, 0)?;
    check_eq!(committed(v)?, 0);
    // Zero length with an aux that has nothing committed: nothing to check, nothing to move.
    let empty = check_ok!(Vmo::create(PAGE, 0));
    check_ok!(supply(p, v, 0, 0, empty.handle(), 0));
    expect_no_packet(fx.port.handle())
}

fn supply_pages_call_matches_vmo_op(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let aux = aux_filled(3, fx.seed, 1)?;
    // Fuchsia's argument order: (pager, pager_vmo, offset, length, aux_vmo, aux_offset).
    check_ok!(sys::pager_supply_pages(
        fx.pager.handle(),
        fx.vmo.handle(),
        2 * PAGE,
        2 * PAGE,
        aux.handle(),
        PAGE
    ));
    check_content(fx.vmo.handle(), 2 * PAGE, 2, fx.seed, 2, "pager VMO")?;
    check_eq!(committed(fx.vmo.handle())?, 2 * PAGE);
    check_aux_decommitted(&aux, PAGE, 2 * PAGE, PAGE)?;
    check_content(aux.handle(), 0, 1, fx.seed, 1, "aux page 0")
}
