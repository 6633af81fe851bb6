//! Copy-on-write clones of pager VMOs (Zircon §4.6, `pager.cc`'s Clone* tests and
//! `snapshot.cc`): `ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE` children whose requests name the
//! root, which share the pages supplied to it, fork on write, see the root's writes through
//! unforked pages, keep forked pages after a detach, outlive the root's handle, and chain 1000
//! deep. vCPU 0 is the accessor and a job on vCPU 1 the pager, except in
//! `clone_simultaneous_read_test` (two accessors on vCPUs 1 and 2, vCPU 0 pages).
//!
//! As in `blocked`, nothing here touches an unforked clone page through a mapping after a
//! detach: that is a fatal fault that stops the VM (the host-side `tests/kernel_clone.rs`
//! covers it).

use core::sync::atomic::{AtomicU32, Ordering};

use rt::abi::VMO_INFO_FLAG_PAGER_BACKED;
use rt::abi::packet::ZX_PAGER_VMO_COMPLETE;
use rt::abi::rights::{ZX_RIGHT_RESIZE, ZX_RIGHT_WRITE};
use rt::abi::vmo_child::*;
use rt::abi::vmo_op::{ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{Handle, Vmo};
use rt::{Status, check, check_eq, check_err, check_ok, format};

use crate::conformance::fixtures::{
    Fx, check_content, check_page, committed, expect_no_packet, expect_packet, expect_read,
    fill_page, fixture, info, map, read_mapped_page, supply_fresh, write_mapped_page,
};
use crate::conformance::jobs::{
    SH, join_as, publish, sh_key, sh_pager, sh_port, sh_range, sh_seed, sh_vmo, spawn,
};
use crate::conformance::{BLOCK_DELAY_MS, PAGE, PAGE_US, nap_ms};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    clone_read_from_clone_test,
    clone_read_from_parent_test,
    clone_simultaneous_read_test,
    clone_write_to_clone_test,
    snapshot_root_vmo_write,
    clone_commit_test,
    clone_chain_commit_test,
    clone_detach_test,
    snapshot_close_root,
    decommit_test_on_clone,
    child_snapshot_not_supported,
    deep_hierarchy,
];

/// The clone option Zircon's `userpager` `Clone()` uses.
const COW: u32 = ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE | ZX_VMO_CHILD_RESIZABLE;

/// The clone a job reads (`clone_simultaneous_read_test`).
static CLONE: AtomicU32 = AtomicU32::new(0);

/// A clone of `[off, +len)` of `parent`.
fn clone_of(parent: &Vmo, off: u64, len: u64) -> Result<Vmo, rt::String> {
    Ok(check_ok!(parent.create_child(COW, off, len)))
}

/// Pager job: expects READ(off, len) for the published root and supplies it.
fn job_serve_read(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = sh_range();
    let r = expect_read(port, sh_key(), off, len);
    // Supply in any case, so the accessor never stays blocked.
    let s = supply_fresh(p, v, off, len, sh_seed());
    r.and(s)
}

/// Serves READ(off, len) of `fx`'s root on vCPU 1 while `access` runs on vCPU 0.
fn with_pager<T>(fx: &Fx, off: u64, len: u64, access: impl FnOnce() -> T) -> Result<T, rt::String> {
    publish(fx, off, len);
    spawn(1, job_serve_read)?;
    let out = access();
    join_as(1, "pager")?;
    Ok(out)
}

fn clone_read_from_clone_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let clone = clone_of(&fx.vmo, PAGE, 2 * PAGE)?;
    let m = map(clone.handle(), 0, 2 * PAGE)?;
    // Clone page 1 is root page 2: the request names the root and its range.
    let got = with_pager(&fx, 2 * PAGE, PAGE, || read_mapped_page(m.gpa + PAGE))?;
    check_page(&got, fx.seed, 2, "clone page 1 through a mapping")?;
    check_content(clone.handle(), PAGE, 1, fx.seed, 2, "VmoRead of the clone")?;
    check_content(fx.vmo.handle(), 2 * PAGE, 1, fx.seed, 2, "the root")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    check_eq!(committed(clone.handle())?, PAGE);
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

fn clone_read_from_parent_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    let clone = clone_of(&fx.vmo, 0, 2 * PAGE)?;
    let m = map(clone.handle(), 0, 2 * PAGE)?;
    check_page(&read_mapped_page(m.gpa), fx.seed, 0, "clone page 0 (mapping)")?;
    check_content(clone.handle(), PAGE, 1, fx.seed, 1, "clone page 1 (VmoRead)")?;
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

/// Accessor job: VmoRead of page 0 of the root (`cpu` 1) or of the clone (`cpu` 2).
fn job_read_page0(cpu: usize) -> TestResult {
    let vmo = if cpu == 1 {
        sh_vmo()
    } else {
        Handle(CLONE.load(Ordering::Acquire))
    };
    let mut buf = [0u8; PAGE_US];
    SH.arrived.fetch_add(1, Ordering::AcqRel);
    check_ok!(rt::sys::vmo_read(vmo, &mut buf, 0));
    check_page(&buf, sh_seed(), 0, "page 0")
}

fn clone_simultaneous_read_test(t: &mut TestCtx) -> TestResult {
    if t.ncpus < 3 {
        return Err(format!(
            "needs at least 3 vCPUs (2 accessors and a pager), the VM has {}",
            t.ncpus
        ));
    }
    let fx = fixture(1)?;
    let clone = clone_of(&fx.vmo, 0, PAGE)?;
    CLONE.store(clone.raw(), Ordering::Release);
    publish(&fx, 0, PAGE);
    spawn(1, job_read_page0)?;
    spawn(2, job_read_page0)?;
    let r = expect_read(fx.port.handle(), fx.key, 0, PAGE);
    while SH.arrived.load(Ordering::Acquire) < 2 {
        core::hint::spin_loop();
    }
    nap_ms(BLOCK_DELAY_MS);
    // Both readers wait on the one request.
    let r = r.and(expect_no_packet(fx.port.handle()));
    fx.supply_fresh(0, PAGE, fx.seed)?;
    let joined = join_as(1, "root reader").and(join_as(2, "clone reader"));
    r.and(joined)
}

fn clone_write_to_clone_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let clone = clone_of(&fx.vmo, 0, 2 * PAGE)?;
    let other = fx.seed ^ 0xc10e;
    // A VmoWrite to an absent clone page asks the root's pager first, then forks.
    let mut page = [0u8; PAGE_US];
    fill_page(&mut page, other, 0);
    let w = with_pager(&fx, 0, PAGE, || clone.write(&page, 0))?;
    check_ok!(w);
    check_content(clone.handle(), 0, 1, other, 0, "the clone's write")?;
    check_content(fx.vmo.handle(), 0, 1, fx.seed, 0, "the parent")?;
    // A write through the clone's mapping forks the page as well.
    let m = map(clone.handle(), 0, 2 * PAGE)?;
    with_pager(&fx, PAGE, PAGE, || write_mapped_page(m.gpa + PAGE, other, 1))?;
    check_page(&read_mapped_page(m.gpa + PAGE), other, 1, "clone page 1")?;
    check_content(fx.vmo.handle(), PAGE, 1, fx.seed, 1, "parent page 1")?;
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

fn snapshot_root_vmo_write(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    let clone = clone_of(&fx.vmo, 0, PAGE)?;
    let m = map(clone.handle(), 0, PAGE)?;
    check_page(&read_mapped_page(m.gpa), fx.seed, 0, "before the root's write")?;
    let other = fx.seed ^ 0x5a5a;
    let mut page = [0u8; PAGE_US];
    fill_page(&mut page, other, 0);
    check_ok!(fx.vmo.write(&page, 0));
    check_page(&read_mapped_page(m.gpa), other, 0, "mapped, after the root's write")?;
    check_content(clone.handle(), 0, 1, other, 0, "VmoRead, after the root's write")?;
    // Once the clone writes the page (through its mapping), the root's writes stay out.
    let mine = fx.seed ^ 0x3c3c;
    write_mapped_page(m.gpa, mine, 0);
    check_ok!(fx.vmo.write(&page, 0));
    check_page(&read_mapped_page(m.gpa), mine, 0, "the clone's own page")?;
    check_content(fx.vmo.handle(), 0, 1, other, 0, "the root")?;
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

/// COMMIT on `target` (a clone of `fx`'s root, maybe through others) while vCPU 1 serves one
/// READ for the whole root range.
fn commit_case(fx: &Fx, target: &Vmo, pages: u64) -> TestResult {
    let r = with_pager(fx, 0, pages * PAGE, || {
        target.op_range(ZX_VMO_OP_COMMIT, 0, pages * PAGE)
    })?;
    check_ok!(r);
    // COMMIT simulates write faults: every page is the clone's own.
    check_eq!(committed(target.handle())?, pages * PAGE);
    check_content(target.handle(), 0, pages, fx.seed, 0, "committed clone")?;
    expect_no_packet(fx.port.handle())
}

fn clone_commit_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let clone = clone_of(&fx.vmo, 0, 4 * PAGE)?;
    commit_case(&fx, &clone, 4)?;
    check_eq!(committed(fx.vmo.handle())?, 4 * PAGE);
    Ok(())
}

fn clone_chain_commit_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(3)?;
    let mid = clone_of(&fx.vmo, 0, 3 * PAGE)?;
    let leaf = clone_of(&mid, 0, 3 * PAGE)?;
    commit_case(&fx, &leaf, 3)?;
    check_eq!(committed(mid.handle())?, 0);
    Ok(())
}

fn clone_detach_test(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    let clone = clone_of(&fx.vmo, 0, 2 * PAGE)?;
    let m = map(clone.handle(), 0, 2 * PAGE)?;
    // Page 0 is read (a copy of the root's page), page 1 written (forked).
    check_page(&read_mapped_page(m.gpa), fx.seed, 0, "clone page 0")?;
    let other = fx.seed ^ 0xde7a;
    write_mapped_page(m.gpa + PAGE, other, 1);
    check_ok!(m.unmap());
    check_ok!(fx.pager.detach(&fx.vmo));
    expect_packet(fx.port.handle(), fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    check_eq!(committed(clone.handle())?, PAGE);
    check_content(clone.handle(), PAGE, 1, other, 1, "the forked page")?;
    let mut buf = [0u8; 8];
    check_err!(clone.read(&mut buf, 0), Status::ERR_BAD_STATE);
    check_err!(
        clone.op_range(ZX_VMO_OP_COMMIT, 0, PAGE),
        Status::ERR_BAD_STATE
    );
    expect_no_packet(fx.port.handle())
}

fn snapshot_close_root(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    let clone = clone_of(&fx.vmo, 0, 2 * PAGE)?;
    let grandchild = clone_of(&clone, PAGE, PAGE)?;
    let Fx { vmo, port, key, seed, pager } = fx;
    check_ok!(vmo.close());
    check_content(clone.handle(), 0, 2, seed, 0, "the clone after the root closed")?;
    check_content(grandchild.handle(), 0, 1, seed, 1, "its clone")?;
    expect_no_packet(port.handle())?;
    check_ok!(clone.close());
    check_content(grandchild.handle(), 0, 1, seed, 1, "the last clone")?;
    check_ok!(grandchild.close());
    // The last VMO of the tree is gone: COMPLETE.
    expect_packet(port.handle(), key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    drop(pager);
    Ok(())
}

fn decommit_test_on_clone(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    let clone = clone_of(&fx.vmo, 0, PAGE)?;
    check_ok!(clone.op_range(ZX_VMO_OP_COMMIT, 0, PAGE));
    check_err!(
        clone.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    check_eq!(committed(clone.handle())?, PAGE);
    Ok(())
}

fn child_snapshot_not_supported(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    check_err!(
        fx.vmo.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    check_err!(
        fx.vmo.create_child(ZX_VMO_CHILD_SLICE, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    check_err!(
        fx.vmo.create_child(COW | ZX_VMO_CHILD_SNAPSHOT, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    let clone = clone_of(&fx.vmo, 0, 2 * PAGE)?;
    check_err!(
        clone.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    let i = info(clone.handle())?;
    check_eq!(i.flags & VMO_INFO_FLAG_PAGER_BACKED, VMO_INFO_FLAG_PAGER_BACKED);
    check!(i.rights & ZX_RIGHT_RESIZE != 0, "RESIZABLE gives RESIZE");
    check_eq!(info(fx.vmo.handle())?.children, 1);
    let ro = check_ok!(
        fx.vmo
            .create_child(ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE | ZX_VMO_CHILD_NO_WRITE, 0, PAGE)
    );
    check_eq!(info(ro.handle())?.rights & ZX_RIGHT_WRITE, 0);
    check_err!(ro.write(&[1], 0), Status::ERR_ACCESS_DENIED);
    expect_no_packet(fx.port.handle())
}

fn deep_hierarchy(_t: &mut TestCtx) -> TestResult {
    const DEPTH: usize = 1000;
    let fx = fixture(1)?;
    fx.supply_fresh(0, PAGE, fx.seed)?;
    let mut chain: rt::Vec<Vmo> = rt::Vec::with_capacity(DEPTH);
    for depth in 0..DEPTH {
        let parent = chain.last().unwrap_or(&fx.vmo);
        let child = parent
            .create_child(COW, 0, PAGE)
            .map_err(|s| format!("clone {depth} of the chain: {s:?}"))?;
        chain.push(child);
    }
    let deepest = chain.pop().ok_or("empty chain")?;
    check_content(deepest.handle(), 0, 1, fx.seed, 0, "the deepest clone")?;
    // Tear the chain down from the root end: the deepest clone holds it all until it goes.
    for vmo in chain {
        check_ok!(vmo.close());
    }
    check_content(deepest.handle(), 0, 1, fx.seed, 0, "the deepest clone, alone")?;
    check_ok!(deepest.close());
    check_eq!(info(fx.vmo.handle())?.children, 0);
    expect_no_packet(fx.port.handle())
}
