//! Blocked accessors: vCPU 0 touches a pager VMO through the aperture or blocks in
//! `VmoRead`/COMMIT while a job on vCPU 1 pages (READ and DIRTY requests, supplies from aux
//! VMOs filled with `VmoWrite` or through a mapping, FAIL, detach, closing the port or the
//! pager); vCPUs 2.. are extra accessors for ConcurrentOverlappingAccess.
//!
//! Cases never FAIL or detach a page that a vCPU is touching through a mapping: that is a fatal
//! page fault which stops the VM (Zircon would crash the thread), so those paths are tested with
//! `VmoRead`/COMMIT waiters only here, and end to end in `vmm/tests/vmm_fatal_faults.rs`. When the
//! pager side of a case goes wrong it still supplies (or fails) the page the accessor waits for,
//! so one broken case cannot hang the suite.
//!
//! A pager may change KVM memslots (VmarMap/VmarUnmap of its aux VMO) while the accessor is
//! blocked inside KVM on an absent page: the VMM kicks the blocked vCPU out of `KVM_RUN` first
//! (see `memslot_deadlock.rs`), so the `*_aux_mapped_while_blocked` cases do exactly that.

use core::sync::atomic::{AtomicU64, Ordering};

use rt::abi::VMO_INFO_FLAG_DETACHED;
use rt::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_DIRTY};
use rt::abi::pager_op::{ZX_PAGER_OP_DIRTY, ZX_PAGER_OP_FAIL};
use rt::abi::status::ZX_ERR_IO;
use rt::abi::vmo_op::ZX_VMO_OP_COMMIT;
use rt::abi::vmo_options::ZX_VMO_TRAP_DIRTY;
use rt::harness::{Case, TestCtx, TestResult};
use rt::sys::{self, Handle};
use rt::{Status, String, Vmo, check, check_eq, check_err, check_ok, format};

use crate::conformance::fixtures::{
    FAIL_CODES, bad_handles, check_aux_decommitted, check_aux_untouched, check_content, check_page,
    committed, expect_no_packet, expect_packet, expect_read, fail_op, fixture, fixture_with, info,
    map, read_mapped_page, supply, supply_fresh, write_mapped_page,
};
use crate::conformance::jobs::{
    Job, SH, join_as, publish, sh_key, sh_pager, sh_port, sh_range, sh_seed, sh_vmo, spawn,
};
use crate::conformance::{
    BLOCK_DELAY_MS, MAX_CPUS, PACKET_WAIT_MS, PAGE, PAGE_US, deadline_ms, nap_ms, nap_ns,
};

/// This topic's cases, in the order they run.
pub const CASES: &[Case] = rt::cases![
    single_page_mapping,
    single_page_mapping_aux_filled_through_mapping,
    single_page_mapping_aux_mapped_while_blocked,
    sequential_multipage_mapping_aux_mapped_while_blocked,
    single_page_vmo_read,
    single_page_vmo_read_aux_filled_through_mapping,
    sequential_multipage_vmo_read,
    zero_length_vmo_read_and_write_check_the_handle,
    trap_dirty_write_through_mapping,
    present_page_splits_range,
    concurrent_overlapping_access,
    early_supply_withdraws_packet,
    fail_error_code,
    fail_redundant,
    supply_after_fail,
    fail_after_detach,
    detach_non_mapping_access,
    close_port_blocked_reader,
    close_pager_releases_blocked_reader,
];

/// Pager job: expects READ(off, len), fills an aux VMO with `VmoWrite`, supplies.
fn job_serve_read(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = sh_range();
    let r = expect_read(port, sh_key(), off, len);
    // Supply in any case, so the accessor never stays blocked.
    let s = supply_fresh(p, v, off, len, sh_seed());
    r.and(s)
}

/// Fills a fresh aux VMO for `[off, +len)` through a VmarMap mapping, checks that SUPPLY fails
/// with BAD_STATE while the mapping lives, and unmaps it. The aux is then fully committed.
fn aux_filled_through_mapping(
    p: Handle,
    v: Handle,
    off: u64,
    len: u64,
    seed: u64,
) -> Result<Vmo, String> {
    let aux = check_ok!(Vmo::create(len, 0));
    let m = map(aux.handle(), 0, len)?;
    for k in 0..len / PAGE {
        write_mapped_page(m.gpa + k * PAGE, seed, off / PAGE + k);
    }
    // The seed's rule: an aux VMO with mappings cannot be supplied from, and stays untouched.
    check_err!(
        supply(p, v, off, len, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    check_eq!(info(aux.handle())?.mappings, 1);
    for k in 0..len / PAGE {
        let got = read_mapped_page(m.gpa + k * PAGE);
        check_page(
            &got,
            seed,
            off / PAGE + k,
            "aux through its mapping after the refused SUPPLY",
        )?;
    }
    check_ok!(m.unmap());
    check_eq!(info(aux.handle())?.mappings, 0);
    check_aux_untouched(&aux, len / PAGE, seed, off / PAGE)?;
    Ok(aux)
}

/// Pager job: expects READ(off, len), then fills the aux through a mapping (map, write,
/// SUPPLY → BAD_STATE, unmap) and supplies. The accessor may be blocked in a hypercall or in a
/// KVM fault (VmarMap/VmarUnmap kick it out of `KVM_RUN` first).
fn job_serve_read_mapped_aux(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = sh_range();
    let r = (|| -> TestResult {
        expect_read(port, sh_key(), off, len)?;
        let aux = aux_filled_through_mapping(p, v, off, len, sh_seed())?;
        check_ok!(supply(p, v, off, len, aux.handle(), 0));
        check_aux_decommitted(&aux, 0, len, 0)
    })();
    if r.is_err() {
        let _ = supply_fresh(p, v, off, len, sh_seed());
    }
    r
}

/// Pager job: fills the aux through a mapping *before* the accessor touches (then sets
/// `SH.go`), waits for READ(off, len) and supplies from it.
fn job_serve_read_premapped_aux(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = sh_range();
    let aux = aux_filled_through_mapping(p, v, off, len, sh_seed());
    SH.go.store(true, Ordering::Release);
    let r = (|| -> TestResult {
        let aux = aux?;
        expect_read(port, sh_key(), off, len)?;
        check_ok!(supply(p, v, off, len, aux.handle(), 0));
        check_aux_decommitted(&aux, 0, len, 0)
    })();
    if r.is_err() {
        let _ = supply_fresh(p, v, off, len, sh_seed());
    }
    r
}

/// vCPU 0 touches page `page` of `fx.vmo` through a mapping while `job` pages on vCPU 1;
/// checks every byte.
fn mapped_touch_case(pages: u64, page: u64, job: Job, wait_for_aux: bool) -> TestResult {
    let fx = fixture(pages)?;
    let m = map(fx.vmo.handle(), 0, pages * PAGE)?;
    publish(&fx, page * PAGE, PAGE);
    spawn(1, job)?;
    if wait_for_aux {
        // The aux is mapped and unmapped before vCPU 0 touches (the "blocked" variant is
        // `single_page_mapping_aux_mapped_while_blocked`).
        let deadline = deadline_ms(PACKET_WAIT_MS);
        while !SH.go.load(Ordering::Acquire) && sys::clock_monotonic() < deadline {
            core::hint::spin_loop();
        }
    }
    let got = read_mapped_page(m.gpa + page * PAGE);
    join_as(1, "pager")?;
    check_page(&got, fx.seed, page, "page read through the mapping")?;
    // The rest of the page is there for VmoRead too, and nothing else was requested.
    check_content(
        fx.vmo.handle(),
        page * PAGE,
        1,
        fx.seed,
        page,
        "VmoRead after the fault",
    )?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

fn single_page_mapping(_t: &mut TestCtx) -> TestResult {
    mapped_touch_case(4, 2, job_serve_read, false)
}

fn single_page_mapping_aux_filled_through_mapping(_t: &mut TestCtx) -> TestResult {
    mapped_touch_case(3, 1, job_serve_read_premapped_aux, true)
}

/// Pages vCPU 0 has finished reading in a `mapped_walk_case` (it is blocked on the next one).
static PAGES_READ: AtomicU64 = AtomicU64::new(0);

/// Pager job for `mapped_walk_case`: for each page of `[off, +len)` in order, expects exactly
/// one one-page READ while vCPU 0 is blocked on that page (it has read the pages before it and
/// no more), fills an aux VMO through a VmarMap mapping, checks that SUPPLY with the aux still
/// mapped fails with BAD_STATE and leaves the aux untouched, unmaps it (vCPU 0 is still
/// blocked: both memslot changes happened with it inside KVM), and supplies with ZX_OK.
fn job_serve_walk_mapped_aux(_cpu: usize) -> TestResult {
    let (p, v, port, key, seed) = (sh_pager(), sh_vmo(), sh_port(), sh_key(), sh_seed());
    let (off, len) = sh_range();
    let r = (|| -> TestResult {
        for k in 0..len / PAGE {
            let at = off + k * PAGE;
            expect_read(port, key, at, PAGE).map_err(|e| format!("page {k} of the walk: {e}"))?;
            check_eq!(
                PAGES_READ.load(Ordering::Acquire),
                k,
                "pages vCPU 0 had read when READ({at:#x}) came"
            );
            let aux = aux_filled_through_mapping(p, v, at, PAGE, seed)?;
            check_eq!(
                PAGES_READ.load(Ordering::Acquire),
                k,
                "vCPU 0 got past page {k} before it was supplied"
            );
            check_ok!(supply(p, v, at, PAGE, aux.handle(), 0));
            check_aux_decommitted(&aux, 0, PAGE, 0)?;
        }
        Ok(())
    })();
    if r.is_err() {
        // Release the accessor whatever is missing (present pages are kept).
        let _ = supply_fresh(p, v, off, len, seed);
    }
    r
}

/// vCPU 0 reads `count` pages of a `pages`-page pager VMO from page `first` on, one after the
/// other through one mapping, blocking inside KVM on each, while vCPU 1 serves each from an
/// aux VMO it maps and unmaps meanwhile; vCPU 0 checks every byte it read.
fn mapped_walk_case(pages: u64, first: u64, count: u64) -> TestResult {
    let fx = fixture(pages)?;
    let m = map(fx.vmo.handle(), 0, pages * PAGE)?;
    publish(&fx, first * PAGE, count * PAGE);
    PAGES_READ.store(0, Ordering::Release);
    spawn(1, job_serve_walk_mapped_aux)?;
    let mut bytes = Ok(());
    for k in 0..count {
        let got = read_mapped_page(m.gpa + (first + k) * PAGE);
        PAGES_READ.store(k + 1, Ordering::Release);
        if bytes.is_ok() {
            bytes = check_page(&got, fx.seed, first + k, "page read through the mapping");
        }
    }
    join_as(1, "pager")?;
    bytes?;
    check_content(
        fx.vmo.handle(),
        first * PAGE,
        count,
        fx.seed,
        first,
        "VmoRead after the faults",
    )?;
    check_eq!(committed(fx.vmo.handle())?, count * PAGE);
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

fn single_page_mapping_aux_mapped_while_blocked(_t: &mut TestCtx) -> TestResult {
    mapped_walk_case(4, 2, 1)
}

/// Zircon's SequentialMultipage (the mapping half): 8 pages touched in order give 8 one-page
/// READ packets in order.
fn sequential_multipage_mapping_aux_mapped_while_blocked(_t: &mut TestCtx) -> TestResult {
    mapped_walk_case(8, 0, 8)
}

fn single_page_vmo_read(_t: &mut TestCtx) -> TestResult {
    vmo_read_case(job_serve_read)
}

fn single_page_vmo_read_aux_filled_through_mapping(_t: &mut TestCtx) -> TestResult {
    vmo_read_case(job_serve_read_mapped_aux)
}

/// vCPU 0 blocks in `VmoRead` of page 3 while `job` pages on vCPU 1; checks every byte.
fn vmo_read_case(job: Job) -> TestResult {
    let fx = fixture(4)?;
    publish(&fx, 3 * PAGE, PAGE);
    spawn(1, job)?;
    let mut buf = [0u8; PAGE_US];
    let r = fx.vmo.read(&mut buf, 3 * PAGE);
    join_as(1, "pager")?;
    check_ok!(r);
    check_page(&buf, fx.seed, 3, "VmoRead")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    expect_no_packet(fx.port.handle())
}

/// Pager job for [`trap_dirty_write_through_mapping`]: exactly one DIRTY request for page
/// `SH.off` while vCPU 0's write waits, acknowledged with `ZX_PAGER_OP_DIRTY`.
fn job_ack_dirty(_cpu: usize) -> TestResult {
    let (p, v, port, key) = (sh_pager(), sh_vmo(), sh_port(), sh_key());
    let off = SH.off.load(Ordering::Acquire);
    let r = expect_packet(port, key, ZX_PAGER_VMO_DIRTY, off, PAGE);
    // Acknowledge in any case, so the writer never stays blocked.
    let d = sys::pager_op_range(p, ZX_PAGER_OP_DIRTY, v, off, PAGE, 0)
        .map_err(|s| format!("op_range(DIRTY): {s:?}"));
    r.and(d)
}

/// SimpleTrapDirty through a mapping: with `ZX_VMO_TRAP_DIRTY`, reading a supplied page raises
/// nothing; the first write to it blocks vCPU 0 inside KVM until vCPU 1 answers the DIRTY
/// request; the write then lands.
fn trap_dirty_write_through_mapping(_t: &mut TestCtx) -> TestResult {
    let fx = fixture_with(2, ZX_VMO_TRAP_DIRTY)?;
    fx.supply_fresh(0, 2 * PAGE, fx.seed)?;
    let m = map(fx.vmo.handle(), 0, 2 * PAGE)?;
    let before = read_mapped_page(m.gpa + PAGE);
    check_page(&before, fx.seed, 1, "page read through the mapping")?;
    expect_no_packet(fx.port.handle())?;
    publish(&fx, PAGE, PAGE);
    spawn(1, job_ack_dirty)?;
    // SAFETY: page 1 of a live, writable aperture mapping (identity mapped); the write blocks
    // in KVM until the pager acknowledges the DIRTY request.
    unsafe { core::ptr::write_volatile((m.gpa + PAGE) as *mut u64, 0xfeed_f00d) };
    join_as(1, "pager")?;
    let mut word = [0u8; 8];
    check_ok!(fx.vmo.read(&mut word, PAGE));
    check_eq!(u64::from_le_bytes(word), 0xfeed_f00d);
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

/// Pager job for [`sequential_multipage_vmo_read`]: exactly one 32-page READ, one supply.
fn job_serve_multipage(_cpu: usize) -> TestResult {
    let (p, v, port, key, seed) = (sh_pager(), sh_vmo(), sh_port(), sh_key(), sh_seed());
    let r = expect_read(port, key, 0, 32 * PAGE);
    let s = supply_fresh(p, v, 0, 32 * PAGE, seed);
    r.and(s).and_then(|_| expect_no_packet(port))
}

/// Zircon's SequentialMultipage, `vmo_read` half: one `VmoRead` of 32 absent pages (128 KiB,
/// more than the VMM copies at once) raises a single 32-page READ request.
fn sequential_multipage_vmo_read(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(32)?;
    publish(&fx, 0, 32 * PAGE);
    spawn(1, job_serve_multipage)?;
    let mut buf = rt::vec![0u8; 32 * PAGE_US];
    let r = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    check_ok!(r);
    for (page, chunk) in buf.chunks_exact(PAGE_US).enumerate() {
        let got: &[u8; PAGE_US] = chunk
            .try_into()
            .map_err(|_| rt::String::from("chunk size"))?;
        check_page(got, fx.seed, page as u64, "VmoRead of 32 pages")?;
    }
    Ok(())
}

/// A zero-length `VmoRead`/`VmoWrite` still checks the handle and its rights.
fn zero_length_vmo_read_and_write_check_the_handle(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    for bad in bad_handles()? {
        check_err!(sys::vmo_read(bad, &mut [], 0), Status::ERR_BAD_HANDLE);
        check_err!(sys::vmo_write(bad, &[], 0), Status::ERR_BAD_HANDLE);
    }
    check_err!(
        sys::vmo_read(fx.port.handle(), &mut [], 0),
        Status::ERR_WRONG_TYPE
    );
    check_ok!(sys::vmo_read(fx.vmo.handle(), &mut [], 0));
    expect_no_packet(fx.port.handle())
}

fn job_split_range(_cpu: usize) -> TestResult {
    let (p, v, port, key, seed) = (sh_pager(), sh_vmo(), sh_port(), sh_key(), sh_seed());
    let a = expect_read(port, key, 0, 2 * PAGE);
    let sa = supply_fresh(p, v, 0, 2 * PAGE, seed);
    let b = expect_read(port, key, 3 * PAGE, 2 * PAGE);
    let sb = supply_fresh(p, v, 3 * PAGE, 2 * PAGE, seed);
    a.and(sa)
        .and(b)
        .and(sb)
        .and_then(|_| expect_no_packet(port))
}

fn present_page_splits_range(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(5)?;
    fx.supply_fresh(2 * PAGE, PAGE, fx.seed)?;
    publish(&fx, 0, 0);
    spawn(1, job_split_range)?;
    let r = fx.vmo.op_range(ZX_VMO_OP_COMMIT, 0, 5 * PAGE);
    join_as(1, "pager")?;
    check_ok!(r);
    check_eq!(committed(fx.vmo.handle())?, 5 * PAGE);
    check_content(fx.vmo.handle(), 0, 5, fx.seed, 0, "pager VMO")
}

/// Accessor job (vCPUs 2..): announces itself and reads page 0, through the mapping at
/// `SH.gpa` on odd vCPUs and with `VmoRead` on even ones; checks every byte.
fn job_overlap_accessor(cpu: usize) -> TestResult {
    SH.arrived.fetch_add(1, Ordering::AcqRel);
    let seed = sh_seed();
    if cpu % 2 == 1 {
        let got = read_mapped_page(SH.gpa.load(Ordering::Acquire));
        check_page(&got, seed, 0, "accessor through the mapping")
    } else {
        let mut buf = [0u8; PAGE_US];
        check_ok!(sys::vmo_read(sh_vmo(), &mut buf, 0));
        check_page(&buf, seed, 0, "accessor in VmoRead")
    }
}

/// Pager job: one READ packet for page 0; once every accessor has announced itself (and had
/// time to block), still no second packet; then one supply.
fn job_overlap_pager(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let want = rt::ncpus() - 1;
    let r = (|| -> TestResult {
        expect_read(port, sh_key(), 0, PAGE)?;
        let deadline = deadline_ms(PACKET_WAIT_MS);
        while SH.arrived.load(Ordering::Acquire) < want {
            if sys::clock_monotonic() > deadline {
                return Err(format!(
                    "only {} of {want} accessors arrived",
                    SH.arrived.load(Ordering::Acquire)
                ));
            }
            nap_ns(100_000);
        }
        nap_ms(BLOCK_DELAY_MS);
        expect_no_packet(port).map_err(|e| format!("a second request for the same page: {e}"))
    })();
    let s = supply_fresh(p, v, 0, PAGE, sh_seed());
    r.and(s)
}

fn concurrent_overlapping_access(t: &mut TestCtx) -> TestResult {
    if t.ncpus < 3 {
        return Err(format!(
            "needs at least 3 vCPUs (2 accessors and a pager), the VM has {}",
            t.ncpus
        ));
    }
    let fx = fixture(2)?;
    let m = map(fx.vmo.handle(), 0, 2 * PAGE)?;
    publish(&fx, 0, PAGE);
    SH.gpa.store(m.gpa, Ordering::Release);
    spawn(1, job_overlap_pager)?;
    let accessors = rt::ncpus().min(MAX_CPUS);
    for cpu in 2..accessors {
        spawn(cpu, job_overlap_accessor)?;
    }
    SH.arrived.fetch_add(1, Ordering::AcqRel);
    let got = read_mapped_page(m.gpa);
    let mut result = join_as(1, "pager");
    for cpu in 2..accessors {
        result = result.and(join_as(cpu, "accessor"));
    }
    result?;
    check_page(&got, fx.seed, 0, "vCPU 0 through the mapping")?;
    check_eq!(committed(fx.vmo.handle())?, PAGE);
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

/// Pager job: waits until vCPU 0 is touching, gives it time to block, then supplies without
/// reading the port; the READ packet must have been withdrawn.
fn job_early_supply(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let deadline = deadline_ms(PACKET_WAIT_MS);
    while !SH.go.load(Ordering::Acquire) && sys::clock_monotonic() < deadline {
        core::hint::spin_loop();
    }
    nap_ms(BLOCK_DELAY_MS);
    supply_fresh(p, v, 0, PAGE, sh_seed())?;
    expect_no_packet(port).map_err(|e| format!("the request was not withdrawn: {e}"))
}

fn early_supply_withdraws_packet(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    let m = map(fx.vmo.handle(), 0, PAGE)?;
    publish(&fx, 0, PAGE);
    spawn(1, job_early_supply)?;
    let start = sys::clock_monotonic();
    SH.go.store(true, Ordering::Release);
    let got = read_mapped_page(m.gpa);
    let blocked_ns = sys::clock_monotonic() - start;
    join_as(1, "pager")?;
    check_page(&got, fx.seed, 0, "page read through the mapping")?;
    // The touch could only finish after the supply, so vCPU 0 was blocked when it came.
    check!(
        blocked_ns >= BLOCK_DELAY_MS * 1_000_000,
        "the access returned after {blocked_ns} ns, before the supply"
    );
    check_ok!(m.unmap());
    expect_no_packet(fx.port.handle())
}

/// Pager job: expects READ(off, len) and fails it with `SH.code` (through PagerVmoOp when
/// `SH.mode` is 0, else PagerOpRange).
fn job_fail(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = sh_range();
    let code = SH.code.load(Ordering::Acquire) as i32;
    let r = expect_read(port, sh_key(), off, len);
    let f = if SH.mode.load(Ordering::Acquire) == 0 {
        fail_op(p, v, off, len, code)
    } else {
        sys::pager_op_range(p, ZX_PAGER_OP_FAIL, v, off, len, code as i64 as u64)
    };
    let f = f.map_err(|s| format!("FAIL({}): {s:?}", Status(code)));
    if f.is_err() {
        let _ = sys::pager_detach_vmo(p, v); // release the accessor
    }
    r.and(f)
}

fn fail_error_code(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    for code in FAIL_CODES {
        for via_commit in [false, true] {
            publish(&fx, PAGE, PAGE);
            SH.code.store(code.into(), Ordering::Release);
            SH.mode.store(via_commit as u64, Ordering::Release);
            spawn(1, job_fail)?;
            let r = if via_commit {
                fx.vmo.op_range(ZX_VMO_OP_COMMIT, PAGE, PAGE)
            } else {
                let mut buf = [0u8; 64];
                fx.vmo.read(&mut buf, PAGE)
            };
            join_as(1, "pager")?;
            let what = if via_commit { "COMMIT" } else { "VmoRead" };
            check_eq!(r, Err(Status(code)), "{what} after FAIL({})", Status(code));
        }
    }
    check_eq!(committed(fx.vmo.handle())?, 0);
    expect_no_packet(fx.port.handle())
}

fn job_fail_redundant(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let r = expect_read(port, sh_key(), 0, 4 * PAGE);
    let first = fail_op(p, v, 0, 4 * PAGE, ZX_ERR_IO).map_err(|s| format!("first FAIL: {s:?}"));
    if first.is_err() {
        let _ = sys::pager_detach_vmo(p, v); // release the accessor
    }
    r.and(first)
}

fn fail_redundant(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(4)?;
    let (p, v) = (fx.pager.handle(), fx.vmo.handle());
    publish(&fx, 0, 4 * PAGE);
    spawn(1, job_fail_redundant)?;
    let mut buf = [0u8; 4 * PAGE_US];
    let r = sys::vmo_read(v, &mut buf, 0);
    join_as(1, "pager")?;
    check_eq!(r, Err(Status::ERR_IO), "VmoRead of the failed range");
    // Later FAILs over the same range and sub-ranges are OK no-ops.
    for (off, len) in [
        (0, 4 * PAGE),
        (0, PAGE),
        (PAGE, PAGE),
        (2 * PAGE, 2 * PAGE),
        (3 * PAGE, PAGE),
    ] {
        check_ok!(fail_op(p, v, off, len, ZX_ERR_IO));
        check_ok!(sys::pager_op_range(
            p,
            ZX_PAGER_OP_FAIL,
            v,
            off,
            len,
            ZX_ERR_IO as i64 as u64
        ));
    }
    check_eq!(committed(v)?, 0);
    expect_no_packet(fx.port.handle())?;
    // Nothing sticky: the pages can still be supplied and read.
    supply_fresh(p, v, 0, 4 * PAGE, fx.seed)?;
    check_content(v, 0, 4, fx.seed, 0, "pager VMO after redundant FAILs")
}

fn job_supply_after_fail(_cpu: usize) -> TestResult {
    let (p, v, port, key) = (sh_pager(), sh_vmo(), sh_port(), sh_key());
    let r = expect_read(port, key, 0, PAGE);
    let f = fail_op(p, v, 0, PAGE, ZX_ERR_IO).map_err(|s| format!("FAIL: {s:?}"));
    if f.is_err() {
        let _ = supply_fresh(p, v, 0, PAGE, sh_seed());
        return r.and(f);
    }
    // The failed request is gone; the retry asks again and a supply satisfies it.
    let r2 = expect_read(port, key, 0, PAGE).map_err(|e| format!("after the FAIL: {e}"));
    let s = supply_fresh(p, v, 0, PAGE, sh_seed());
    r.and(r2).and(s)
}

fn supply_after_fail(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    publish(&fx, 0, PAGE);
    spawn(1, job_supply_after_fail)?;
    let mut buf = [0u8; PAGE_US];
    let first = fx.vmo.read(&mut buf, 0);
    let second = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    check_eq!(
        first,
        Err(Status::ERR_IO),
        "VmoRead while the request is failed"
    );
    check_ok!(second);
    check_page(&buf, fx.seed, 0, "VmoRead after the supply")?;
    expect_no_packet(fx.port.handle())
}

fn job_fail_after_detach(_cpu: usize) -> TestResult {
    let (p, v, port, key) = (sh_pager(), sh_vmo(), sh_port(), sh_key());
    let r = expect_read(port, key, 0, PAGE);
    let d = sys::pager_detach_vmo(p, v).map_err(|s| format!("detach: {s:?}"));
    let f = match fail_op(p, v, 0, PAGE, ZX_ERR_IO) {
        Err(s) if s == Status::ERR_BAD_STATE => Ok(()),
        other => Err(format!(
            "FAIL after detach: {other:?}, expected ZX_ERR_BAD_STATE"
        )),
    };
    let c = expect_packet(port, key, ZX_PAGER_VMO_COMPLETE, 0, 0);
    r.and(d).and(f).and(c)
}

fn fail_after_detach(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    publish(&fx, 0, PAGE);
    spawn(1, job_fail_after_detach)?;
    let mut buf = [0u8; 64];
    let r = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    check_eq!(
        r,
        Err(Status::ERR_BAD_STATE),
        "VmoRead released by the detach"
    );
    expect_no_packet(fx.port.handle())
}

fn job_detach_non_mapping(_cpu: usize) -> TestResult {
    let (p, v, port, key) = (sh_pager(), sh_vmo(), sh_port(), sh_key());
    let r = expect_read(port, key, 0, 2 * PAGE);
    let s = supply_fresh(p, v, 0, PAGE, sh_seed());
    nap_ms(BLOCK_DELAY_MS);
    let n = expect_no_packet(port);
    let d = sys::pager_detach_vmo(p, v).map_err(|s| format!("detach: {s:?}"));
    let c = expect_packet(port, key, ZX_PAGER_VMO_COMPLETE, 0, 0);
    r.and(s).and(n).and(d).and(c)
}

fn detach_non_mapping_access(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    publish(&fx, 0, 2 * PAGE);
    spawn(1, job_detach_non_mapping)?;
    let mut buf = [0u8; 2 * PAGE_US];
    let r = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    check_eq!(
        r,
        Err(Status::ERR_BAD_STATE),
        "a 2-page VmoRead half supplied, then detached"
    );
    Ok(())
}

/// Pager job for a VMO whose port is closed: waits for vCPU 0, gives it time to block, then
/// supplies `SH.off` (or detaches when `SH.len` is 0).
fn job_dead_port(_cpu: usize) -> TestResult {
    let (p, v) = (sh_pager(), sh_vmo());
    let deadline = deadline_ms(PACKET_WAIT_MS);
    while !SH.go.load(Ordering::Acquire) && sys::clock_monotonic() < deadline {
        core::hint::spin_loop();
    }
    nap_ms(BLOCK_DELAY_MS);
    let (off, len) = sh_range();
    if len == 0 {
        sys::pager_detach_vmo(p, v).map_err(|s| format!("detach: {s:?}"))
    } else {
        supply_fresh(p, v, off, len, sh_seed())
    }
}

fn close_port_blocked_reader(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let port = fx.port.handle();
    publish(&fx, 0, PAGE);
    check_ok!(sys::handle_close(port));
    // A reader blocks on the dead port; a supply still releases it.
    spawn(1, job_dead_port)?;
    SH.go.store(true, Ordering::Release);
    let mut buf = [0u8; PAGE_US];
    let r = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    check_ok!(r);
    check_page(&buf, fx.seed, 0, "VmoRead")?;
    // And a detach releases the next one with BAD_STATE.
    publish(&fx, PAGE, 0);
    spawn(1, job_dead_port)?;
    SH.go.store(true, Ordering::Release);
    let r = fx.vmo.read(&mut buf, PAGE);
    join_as(1, "pager")?;
    check_eq!(r, Err(Status::ERR_BAD_STATE));
    let _ = fx.port.into_handle(); // already closed
    Ok(())
}

fn job_close_pager(_cpu: usize) -> TestResult {
    let (p, port, key) = (sh_pager(), sh_port(), sh_key());
    let r = expect_read(port, key, 0, PAGE);
    let c = sys::handle_close(p).map_err(|s| format!("closing the pager: {s:?}"));
    r.and(c)
}

fn close_pager_releases_blocked_reader(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    publish(&fx, 0, PAGE);
    spawn(1, job_close_pager)?;
    let mut buf = [0u8; 64];
    let r = fx.vmo.read(&mut buf, 0);
    join_as(1, "pager")?;
    let _ = fx.pager.into_handle(); // closed by the job
    check_eq!(
        r,
        Err(Status::ERR_BAD_STATE),
        "VmoRead released by closing the pager"
    );
    // Closing the pager sends no COMPLETE.
    expect_no_packet(fx.port.handle())?;
    check_eq!(
        info(fx.vmo.handle())?.flags & VMO_INFO_FLAG_DETACHED,
        VMO_INFO_FLAG_DETACHED
    );
    Ok(())
}
