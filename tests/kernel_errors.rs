//! Every error of `zx_pager_vmo_op(ZX_PAGER_SUPPLY_PAGES)` (shared/spec/zx_pager_vmo_op.md),
//! one violation at a time, plus the errors of the calls around it (semantics notes §2, §4.1).

mod kernel_util;

use kernel_util::*;
use kvmpager::abi::pager_op::*;
use kvmpager::abi::rights::*;
use kvmpager::abi::status::*;
use kvmpager::abi::vmo_options::*;
use kvmpager::abi::{Handle, PAGE_SIZE, ZX_HANDLE_INVALID};

const P: u64 = PAGE_SIZE;

fn supply(f: &Fixture, pager: Handle, vmo: Handle, aux: Handle) -> i32 {
    status(f.p.pager_vmo_op(pager, vmo, ZX_PAGER_SUPPLY_PAGES, 0, P, aux, 0))
}

fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(ZX_OK)
}

// ---- ZX_ERR_BAD_HANDLE -------------------------------------------------------------------

#[test]
fn bad_handle_pager() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    assert_eq!(supply(&f, ZX_HANDLE_INVALID, f.vmo, aux), ZX_ERR_BAD_HANDLE);
    assert_eq!(supply(&f, 0x1234_5677, f.vmo, aux), ZX_ERR_BAD_HANDLE);
}

#[test]
fn bad_handle_pager_vmo() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    assert_eq!(
        supply(&f, f.pager, ZX_HANDLE_INVALID, aux),
        ZX_ERR_BAD_HANDLE
    );
}

#[test]
fn bad_handle_aux_vmo() {
    let f = Fixture::new(2);
    assert_eq!(
        supply(&f, f.pager, f.vmo, ZX_HANDLE_INVALID),
        ZX_ERR_BAD_HANDLE
    );
}

#[test]
fn closed_handles_are_bad() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    f.p.handle_close(aux).unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_ERR_BAD_HANDLE);
    assert_eq!(f.p.handle_close(aux).err(), Some(ZX_ERR_BAD_HANDLE));
}

#[test]
fn handles_of_another_process_are_bad() {
    let f = Fixture::new(2);
    let other = Fixture::new(2);
    let aux = f.aux(1, 1);
    assert_eq!(supply(&f, other.pager, f.vmo, aux), ZX_ERR_BAD_HANDLE);
    assert_eq!(supply(&f, f.pager, other.vmo, aux), ZX_ERR_BAD_HANDLE);
}

// ---- ZX_ERR_WRONG_TYPE -------------------------------------------------------------------

#[test]
fn wrong_type_pager() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    assert_eq!(supply(&f, f.port, f.vmo, aux), ZX_ERR_WRONG_TYPE);
    assert_eq!(supply(&f, f.vmo, f.vmo, aux), ZX_ERR_WRONG_TYPE);
}

#[test]
fn wrong_type_pager_vmo() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    assert_eq!(supply(&f, f.pager, f.port, aux), ZX_ERR_WRONG_TYPE);
    assert_eq!(supply(&f, f.pager, f.pager, aux), ZX_ERR_WRONG_TYPE);
}

#[test]
fn wrong_type_aux_vmo() {
    let f = Fixture::new(2);
    assert_eq!(supply(&f, f.pager, f.vmo, f.port), ZX_ERR_WRONG_TYPE);
    assert_eq!(supply(&f, f.pager, f.vmo, f.pager), ZX_ERR_WRONG_TYPE);
}

// ---- ZX_ERR_INVALID_ARGS -----------------------------------------------------------------

#[test]
fn invalid_args_vmo_not_from_this_pager() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    // A plain VMO.
    let plain = f.p.vmo_create(2 * P, 0).unwrap();
    assert_eq!(supply(&f, f.pager, plain, aux), ZX_ERR_INVALID_ARGS);
    // A VMO of another pager of the same process.
    let pager2 = f.p.pager_create(0).unwrap();
    let vmo2 = f.p.pager_create_vmo(pager2, 0, f.port, 9, 2 * P).unwrap();
    assert_eq!(supply(&f, f.pager, vmo2, aux), ZX_ERR_INVALID_ARGS);
    // Ownership is checked before the aux handle (Zircon passes an invalid aux here).
    assert_eq!(
        supply(&f, f.pager, vmo2, ZX_HANDLE_INVALID),
        ZX_ERR_INVALID_ARGS
    );
    assert_eq!(f.committed(aux), P, "aux untouched");
}

#[test]
fn invalid_args_bad_op() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    for op in [0, 5, 0xf, 0x11, u32::MAX] {
        let r = f.p.pager_vmo_op(f.pager, f.vmo, op, 0, P, aux, 0);
        assert_eq!(r.err(), Some(ZX_ERR_INVALID_ARGS), "op {op:#x}");
    }
    assert_eq!(f.committed(aux), P);
}

#[test]
fn invalid_args_unaligned_offset_length_aux_offset() {
    let f = Fixture::new(4);
    let aux = f.aux(2, 1);
    let op = |off, len, aux_off| {
        status(f.p.pager_vmo_op(
            f.pager,
            f.vmo,
            ZX_PAGER_SUPPLY_PAGES,
            off,
            len,
            aux,
            aux_off,
        ))
    };
    assert_eq!(op(1, P, 0), ZX_ERR_INVALID_ARGS, "offset");
    assert_eq!(op(P + 8, P, 0), ZX_ERR_INVALID_ARGS, "offset");
    assert_eq!(op(0, P - 1, 0), ZX_ERR_INVALID_ARGS, "length");
    assert_eq!(op(0, 1, 0), ZX_ERR_INVALID_ARGS, "length");
    assert_eq!(op(0, P, 512), ZX_ERR_INVALID_ARGS, "aux_offset");
    // Alignment comes before every handle check.
    let r = f.p.pager_vmo_op(0, 0, ZX_PAGER_SUPPLY_PAGES, 3, P, 0, 0);
    assert_eq!(r.err(), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(f.committed(aux), 2 * P, "aux untouched");
}

// ---- ZX_ERR_ACCESS_DENIED ----------------------------------------------------------------

#[test]
fn access_denied_aux_without_write() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let ro =
        f.p.handle_duplicate(aux, ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE)
            .unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, ro), ZX_ERR_ACCESS_DENIED);
    assert_eq!(f.committed(aux), P);
}

#[test]
fn access_denied_aux_without_read() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let wo =
        f.p.handle_duplicate(aux, ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_READ)
            .unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, wo), ZX_ERR_ACCESS_DENIED);
    assert_eq!(f.committed(aux), P);
}

#[test]
fn access_denied_pager_without_manage_or_vmo_without_write() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let pager =
        f.p.handle_replace(f.pager, ZX_RIGHT_ATTACH_VMO | ZX_RIGHT_TRANSFER)
            .unwrap();
    assert_eq!(supply(&f, pager, f.vmo, aux), ZX_ERR_ACCESS_DENIED);
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let vmo =
        f.p.handle_duplicate(f.vmo, ZX_RIGHT_READ | ZX_RIGHT_MAP)
            .unwrap();
    assert_eq!(supply(&f, f.pager, vmo, aux), ZX_ERR_ACCESS_DENIED);
}

// ---- ZX_ERR_BAD_STATE --------------------------------------------------------------------

#[test]
fn bad_state_aux_not_fully_committed() {
    let f = Fixture::new(4);
    let aux = f.p.vmo_create(2 * P, 0).unwrap();
    f.p.vmo_write(aux, &pattern(1, 0), 0).unwrap(); // page 1 stays uncommitted
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * P, aux, 0);
    assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE));
    assert_eq!(f.committed(aux), P, "aux untouched on BAD_STATE");
    assert!(!f.p.vmo_object(f.vmo).unwrap().is_present(0));
    // Committing the rest makes the same supply succeed.
    f.p.vmo_op_range(aux, kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT, P, P)
        .unwrap();
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * P, aux, 0)
        .unwrap();
    assert_eq!(f.peek(0), pattern(1, 0));
    assert_eq!(f.peek(1), vec![0; PS]);
}

#[test]
fn bad_state_aux_decommitted_page() {
    let f = Fixture::new(4);
    let aux = f.aux(3, 1);
    f.p.vmo_op_range(aux, kvmpager::abi::vmo_op::ZX_VMO_OP_DECOMMIT, P, P)
        .unwrap();
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, 3 * P, aux, 0);
    assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE));
    // The committed sub-range alone is fine.
    f.p.pager_supply_pages(f.pager, f.vmo, 2 * P, P, aux, 2 * P)
        .unwrap();
    assert_eq!(f.peek(2), pattern(1, 2));
}

#[test]
fn bad_state_aux_with_clone() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let child =
        f.p.vmo_create_child(aux, kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT, 0, P)
            .unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_ERR_BAD_STATE);
    assert_eq!(f.committed(aux), P);
    f.p.handle_close(child).unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_OK, "no clone any more");
}

#[test]
fn bad_state_aux_is_a_clone_or_a_pager_vmo() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let child =
        f.p.vmo_create_child(aux, kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT, 0, P)
            .unwrap();
    assert_eq!(
        supply(&f, f.pager, f.vmo, child),
        ZX_ERR_BAD_STATE,
        "not from zx_vmo_create"
    );
    let other = f.p.pager_create_vmo(f.pager, 0, f.port, 7, P).unwrap();
    assert_eq!(
        supply(&f, f.pager, f.vmo, other),
        ZX_ERR_BAD_STATE,
        "pager-backed aux"
    );
    assert_eq!(
        supply(&f, f.pager, f.vmo, f.vmo),
        ZX_ERR_BAD_STATE,
        "aux is the pager VMO"
    );
}

#[test]
fn bad_state_aux_mapped() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let mapping = f.p.vmar_map(aux, 0, P, true).unwrap();
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_ERR_BAD_STATE);
    assert_eq!(f.committed(aux), P);
    drop(mapping);
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_OK, "unmapped");
    assert_eq!(f.peek(0), pattern(1, 0));
}

#[test]
fn bad_state_aux_pinned() {
    let f = Fixture::new(2);
    let aux = f.aux(2, 1);
    let pin = f.p.vmo_pin(aux, P, P).unwrap();
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * P, aux, 0);
    assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE));
    // The unpinned page alone may go.
    f.p.pager_supply_pages(f.pager, f.vmo, 0, P, aux, 0)
        .unwrap();
    drop(pin);
    f.p.pager_supply_pages(f.pager, f.vmo, P, P, aux, P)
        .unwrap();
    assert_eq!(f.peek(1), pattern(1, 1));
}

#[test]
fn bad_state_supply_after_detach_decommits_aux() {
    let f = Fixture::new(2);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    let aux = f.aux(1, 1);
    assert_eq!(supply(&f, f.pager, f.vmo, aux), ZX_ERR_BAD_STATE);
    assert_eq!(f.committed(aux), 0, "aux range fully decommitted");
}

// ---- ZX_ERR_OUT_OF_RANGE -----------------------------------------------------------------

#[test]
fn out_of_range_destination_still_decommits_aux() {
    let f = Fixture::new(2);
    let aux = f.aux(2, 1);
    let r = f.p.pager_supply_pages(f.pager, f.vmo, P, 2 * P, aux, 0);
    assert_eq!(r.err(), Some(ZX_ERR_OUT_OF_RANGE));
    assert_eq!(f.committed(aux), 0, "aux range fully decommitted");
    assert!(
        !f.p.vmo_object(f.vmo).unwrap().is_present(1),
        "nothing supplied"
    );
    let r =
        f.p.pager_supply_pages(f.pager, f.vmo, !(P - 1), P, f.aux(1, 1), 0);
    assert_eq!(r.err(), Some(ZX_ERR_OUT_OF_RANGE), "overflowing offset");
}

#[test]
fn out_of_range_aux_leaves_aux_untouched() {
    let f = Fixture::new(4);
    let aux = f.aux(2, 1);
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * P, aux, P);
    assert_eq!(r.err(), Some(ZX_ERR_OUT_OF_RANGE));
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, P, aux, !(P - 1));
    assert_eq!(r.err(), Some(ZX_ERR_OUT_OF_RANGE), "overflowing aux_offset");
    assert_eq!(f.committed(aux), 2 * P, "aux untouched");
}

// ---- ZX_ERR_NO_MEMORY ----------------------------------------------------------------------

#[test]
fn no_memory_when_the_host_cannot_map() {
    // The host refusing address space is the one NO_MEMORY trigger a test can force without
    // starving the machine: run it in a child with a small RLIMIT_AS.
    if std::env::var_os("KVMPAGER_NO_MEMORY_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "no_memory_when_the_host_cannot_map",
                "--nocapture",
            ])
            .env("KVMPAGER_NO_MEMORY_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {text}");
        assert!(
            text.contains("NO_MEMORY checked"),
            "child did not run: {text}"
        );
        return;
    }
    let p = kvmpager::Process::new();
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct; this is a child process of its own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    assert_eq!(p.vmo_create(64 << 30, 0).err(), Some(ZX_ERR_NO_MEMORY));
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    assert_eq!(
        p.pager_create_vmo(pager, 0, port, 1, 64 << 30).err(),
        Some(ZX_ERR_NO_MEMORY)
    );
    println!("NO_MEMORY checked");
}

// ---- ZX_OK edge cases and the calls around SUPPLY ------------------------------------------

#[test]
fn zero_length_is_ok_once_checks_pass() {
    let f = Fixture::new(2);
    let aux = f.aux(1, 1);
    let r = f.p.pager_supply_pages(f.pager, f.vmo, 0, 0, aux, 0);
    assert_eq!(r, Ok(()));
    assert_eq!(f.committed(aux), P, "nothing taken");
    let r =
        f.p.pager_supply_pages(f.pager, f.vmo, 0, 0, ZX_HANDLE_INVALID, 0);
    assert_eq!(r.err(), Some(ZX_ERR_BAD_HANDLE), "checks still apply");
}

#[test]
fn invalid_pager_create_and_port_create() {
    let p = kvmpager::Process::new();
    assert_eq!(p.pager_create(1).err(), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(p.port_create(1).err(), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(
        p.vmo_create(P, ZX_VMO_TRAP_DIRTY).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
}

#[test]
fn invalid_pager_create_vmo() {
    let f = Fixture::new(1);
    let p = &f.p;
    assert_eq!(
        p.pager_create_vmo(f.pager, !0, f.port, 0, P).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
    assert_eq!(
        p.pager_create_vmo(0, 0, f.port, 0, P).err(),
        Some(ZX_ERR_BAD_HANDLE)
    );
    assert_eq!(
        p.pager_create_vmo(f.pager, 0, 0, 0, P).err(),
        Some(ZX_ERR_BAD_HANDLE)
    );
    assert_eq!(
        p.pager_create_vmo(f.port, 0, f.port, 0, P).err(),
        Some(ZX_ERR_WRONG_TYPE)
    );
    assert_eq!(
        p.pager_create_vmo(f.pager, 0, f.vmo, 0, P).err(),
        Some(ZX_ERR_WRONG_TYPE)
    );
    let ro_port = p
        .handle_duplicate(f.port, ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE)
        .unwrap();
    assert_eq!(
        p.pager_create_vmo(f.pager, 0, ro_port, 0, P).err(),
        Some(ZX_ERR_ACCESS_DENIED)
    );
    assert_eq!(
        p.pager_create_vmo(f.pager, 0, f.port, 0, u64::MAX).err(),
        Some(ZX_ERR_OUT_OF_RANGE)
    );
    let no_attach = p.handle_replace(f.pager, ZX_RIGHT_MANAGE_VMO).unwrap();
    assert_eq!(
        p.pager_create_vmo(no_attach, 0, f.port, 0, P).err(),
        Some(ZX_ERR_ACCESS_DENIED)
    );
    for options in [ZX_VMO_RESIZABLE, ZX_VMO_TRAP_DIRTY, ZX_VMO_UNBOUNDED] {
        let pager = p.pager_create(0).unwrap();
        assert!(
            p.pager_create_vmo(pager, options, f.port, 0, P).is_ok(),
            "{options:#x}"
        );
    }
}

#[test]
fn invalid_pager_detach_vmo() {
    let f = Fixture::new(1);
    let p = &f.p;
    assert_eq!(p.pager_detach_vmo(0, f.vmo).err(), Some(ZX_ERR_BAD_HANDLE));
    assert_eq!(
        p.pager_detach_vmo(f.pager, 0).err(),
        Some(ZX_ERR_BAD_HANDLE)
    );
    assert_eq!(
        p.pager_detach_vmo(f.port, f.vmo).err(),
        Some(ZX_ERR_WRONG_TYPE)
    );
    assert_eq!(
        p.pager_detach_vmo(f.pager, f.port).err(),
        Some(ZX_ERR_WRONG_TYPE)
    );
    let plain = p.vmo_create(P, 0).unwrap();
    assert_eq!(
        p.pager_detach_vmo(f.pager, plain).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
    let ro = p.handle_duplicate(f.vmo, ZX_RIGHT_READ).unwrap();
    assert_eq!(
        p.pager_detach_vmo(f.pager, ro).err(),
        Some(ZX_ERR_ACCESS_DENIED)
    );
    let manage_only = p.handle_replace(f.pager, ZX_RIGHT_MANAGE_VMO).unwrap();
    assert_eq!(
        p.pager_detach_vmo(manage_only, f.vmo).err(),
        Some(ZX_ERR_ACCESS_DENIED)
    );
}

#[test]
fn invalid_pager_op_range() {
    let f = Fixture::new(2);
    let p = &f.p;
    let io = ZX_ERR_IO as i64 as u64;
    let fail = |pager, vmo, off, len, data| {
        p.pager_op_range(pager, ZX_PAGER_OP_FAIL, vmo, off, len, data)
            .err()
    };
    assert_eq!(fail(0, f.vmo, 0, P, io), Some(ZX_ERR_BAD_HANDLE));
    assert_eq!(fail(f.pager, 0, 0, P, io), Some(ZX_ERR_BAD_HANDLE));
    assert_eq!(fail(f.port, f.vmo, 0, P, io), Some(ZX_ERR_WRONG_TYPE));
    assert_eq!(fail(f.pager, f.port, 0, P, io), Some(ZX_ERR_WRONG_TYPE));
    let plain = p.vmo_create(P, 0).unwrap();
    assert_eq!(fail(f.pager, plain, 0, P, io), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(fail(f.pager, f.vmo, 1, P, io), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(fail(f.pager, f.vmo, 0, 1, io), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(
        fail(f.pager, f.vmo, P, 2 * P, io),
        Some(ZX_ERR_OUT_OF_RANGE)
    );
    for bad in [0x11_ffff_ffff, ZX_ERR_INTERNAL as i64 as u64, 10, 0] {
        assert_eq!(
            fail(f.pager, f.vmo, 0, P, bad),
            Some(ZX_ERR_INVALID_ARGS),
            "{bad:#x}"
        );
    }
    for good in [
        ZX_ERR_IO,
        ZX_ERR_IO_DATA_INTEGRITY,
        ZX_ERR_BAD_STATE,
        ZX_ERR_NO_SPACE,
        ZX_ERR_BUFFER_TOO_SMALL,
    ] {
        assert_eq!(
            fail(f.pager, f.vmo, 0, P, good as i64 as u64),
            None,
            "{good}"
        );
    }
    assert_eq!(
        p.pager_op_range(f.pager, 0, f.vmo, 0, P, 0).err(),
        Some(ZX_ERR_NOT_SUPPORTED)
    );
    assert_eq!(
        p.pager_op_range(f.pager, 99, f.vmo, 0, P, 0).err(),
        Some(ZX_ERR_NOT_SUPPORTED)
    );
    p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(
        fail(f.pager, f.vmo, 0, P, io),
        Some(ZX_ERR_BAD_STATE),
        "FailAfterDetach"
    );
}

#[test]
fn dirty_and_writeback_data_checks() {
    let f = Fixture::new(2);
    let p = &f.p;
    let op = |op, data| p.pager_vmo_op(f.pager, f.vmo, op, 0, P, 0, data).err();
    assert_eq!(op(ZX_PAGER_OP_DIRTY, 1), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(
        op(ZX_PAGER_OP_DIRTY, 0),
        Some(ZX_ERR_NOT_SUPPORTED),
        "no TRAP_DIRTY"
    );
    assert_eq!(
        op(ZX_PAGER_OP_WRITEBACK_BEGIN, 2),
        Some(ZX_ERR_INVALID_ARGS)
    );
    assert_eq!(
        op(ZX_PAGER_OP_WRITEBACK_BEGIN, ZX_VMO_DIRTY_RANGE_IS_ZERO),
        None
    );
    assert_eq!(op(ZX_PAGER_OP_WRITEBACK_END, 1), Some(ZX_ERR_INVALID_ARGS));
    assert_eq!(op(ZX_PAGER_OP_WRITEBACK_END, 0), None);
}

#[test]
fn handle_rights_only_shrink() {
    let p = kvmpager::Process::new();
    let vmo = p.vmo_create(P, 0).unwrap();
    let ro = p
        .handle_duplicate(vmo, ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE)
        .unwrap();
    assert_eq!(
        p.handle_duplicate(ro, ZX_RIGHT_WRITE).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
    let same = p.handle_duplicate(ro, ZX_RIGHT_SAME_RIGHTS).unwrap();
    assert_eq!(p.vmo_write(same, &[1], 0).err(), Some(ZX_ERR_ACCESS_DENIED));
    let none = p.handle_replace(same, 0).unwrap();
    assert_eq!(
        p.handle_close(same).err(),
        Some(ZX_ERR_BAD_HANDLE),
        "replace closed it"
    );
    assert_eq!(
        p.handle_duplicate(none, 0).err(),
        Some(ZX_ERR_ACCESS_DENIED),
        "no DUPLICATE"
    );
    let pager = p.pager_create(0).unwrap();
    assert_eq!(
        p.handle_duplicate(pager, 0).err(),
        Some(ZX_ERR_ACCESS_DENIED),
        "pagers lack DUPLICATE"
    );
}

#[test]
fn no_memory_past_the_process_vmo_limit() {
    let p = kvmpager::Process::new();
    p.set_vmo_memory_limit(8 * P);
    let a = p.vmo_create(6 * P, 0).unwrap();
    assert_eq!(p.vmo_create(3 * P, 0).err(), Some(ZX_ERR_NO_MEMORY));
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    assert_eq!(
        p.pager_create_vmo(pager, 0, port, 1, 3 * P).err(),
        Some(ZX_ERR_NO_MEMORY)
    );
    let b = p.pager_create_vmo(pager, 0, port, 1, 2 * P).unwrap();
    assert_eq!(p.vmo_memory(), 8 * P);
    assert_eq!(
        p.vmo_create_child(a, kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT, 0, P)
            .err(),
        Some(ZX_ERR_NO_MEMORY),
        "clones count too"
    );
    p.handle_close(a).unwrap();
    assert_eq!(
        p.vmo_memory(),
        2 * P,
        "a destroyed VMO gives its bytes back"
    );
    p.vmo_create(6 * P, 0).unwrap();
    p.handle_close(b).unwrap();
}

#[test]
fn unread_packets_of_closed_pager_vmos_are_bounded() {
    // Each pager VMO closed without a detach leaves a COMPLETE packet in its port until the
    // pager reads it. A process that never reads must not grow host memory without bound:
    // past a limit creating pager VMOs gives ZX_ERR_NO_MEMORY, and reading makes room again.
    let p = kvmpager::Process::new();
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    let mut refused = None;
    for i in 0..200_000u64 {
        match p.pager_create_vmo(pager, 0, port, i, 0) {
            Ok(vmo) => p.handle_close(vmo).unwrap(),
            Err(status) => {
                refused = Some((i, status));
                break;
            }
        }
    }
    let (made, status) = refused.expect("pager VMO creation is refused at some point");
    assert_eq!(status, ZX_ERR_NO_MEMORY);
    assert!(made >= 1000, "refused after only {made} VMOs");
    let packet = p.port_wait(port, Some(std::time::Instant::now())).unwrap();
    assert_eq!(
        packet.page_request.command,
        kvmpager::abi::packet::ZX_PAGER_VMO_COMPLETE
    );
    let vmo = p.pager_create_vmo(pager, 0, port, 7, 0).unwrap();
    p.handle_close(vmo).unwrap();
    // Another process (another VM) has a budget of its own.
    let q = kvmpager::Process::new();
    let (qpager, qport) = (q.pager_create(0).unwrap(), q.port_create(0).unwrap());
    q.pager_create_vmo(qpager, 0, qport, 1, 0).unwrap();
}

#[test]
fn snapshot_children_at_unaligned_offsets_copy_the_right_bytes() {
    let p = kvmpager::Process::new();
    let parent = p.vmo_create(2 * P, 0).unwrap();
    p.vmo_write(parent, &[0x5a; 8], P).unwrap(); // page 1 committed, page 0 not
    let snap = kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT;
    // Child page 0 is parent bytes [1, P + 1): its last byte comes from committed page 1.
    let child = p.vmo_create_child(parent, snap, 1, P).unwrap();
    let mut b = vec![0u8; P as usize];
    p.vmo_read(child, &mut b, 0).unwrap();
    assert_eq!(b[P as usize - 1], 0x5a);
    assert!(b[..P as usize - 1].iter().all(|&x| x == 0));
    // Child page 0 is parent bytes [P + 1, 2P + 1): runs past the parent's end, reads zero there.
    let child = p.vmo_create_child(parent, snap, P + 1, P).unwrap();
    p.vmo_read(child, &mut b, 0).unwrap();
    assert_eq!(&b[..7], &[0x5a; 7]);
    assert!(b[7..].iter().all(|&x| x == 0));
}
