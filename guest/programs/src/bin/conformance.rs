//! Pager conformance suite: every sentence and error code of the seed (`zx_pager_vmo_op`,
//! ZX_PAGER_SUPPLY_PAGES) and Zircon's core pager tests, with exact statuses and bytes; 3+ vCPUs.
//!
//! vCPU 0 runs the harness and is the *accessor* (it touches pager VMOs through the aperture or
//! blocks in `VmoRead`/COMMIT); vCPU 1 is the *pager* in the cases that need one (it reads the
//! port and supplies or fails); vCPUs 2.. are extra accessors for ConcurrentOverlappingAccess.
//! Idle vCPUs wait for jobs in per-vCPU mailboxes (atomics in guest memory), napping in a
//! `PortWait` with a short deadline so they do not burn host CPU.
//!
//! Cases never FAIL or detach a page that a vCPU is touching through a mapping: that is a fatal
//! page fault which stops the VM (Zircon would crash the thread), so those paths are tested with
//! `VmoRead`/COMMIT waiters only here, and end to end in `tests/vmm_fatal_faults.rs`. When the
//! pager side of a case goes wrong it still supplies (or fails) the page the accessor waits for,
//! so one broken case cannot hang the suite.
//!
//! A pager may change KVM memslots (VmarMap/VmarUnmap of its aux VMO) while the accessor is
//! blocked inside KVM on an absent page: the VMM kicks the blocked vCPU out of `KVM_RUN` first
//! (see `memslot_deadlock.rs`), so the `*_aux_mapped_while_blocked` cases do exactly that.
//!
//! The `bad_pointers_*` cases pass the ABI's bad guest pointers (null, straddling the end of
//! RAM, in the hole, on a mapped VMO, wrapping) through the real hypercall path; the host-side
//! table of every call and case is `tests/hypercall_pointers.rs`.
//!
//! `ZX_ERR_NO_MEMORY` is not guest-triggerable: host memory is reserved lazily and a guest
//! cannot make the VMM's `UFFDIO_MOVE`/`COPY` fail with ENOMEM on purpose; the host-side
//! kernel tests (`tests/kernel_supply.rs`) inject it.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use rt::abi::packet::{
    ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_DIRTY, ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST,
};
use rt::abi::pager_op::{ZX_PAGER_OP_DIRTY, ZX_PAGER_OP_FAIL, ZX_PAGER_SUPPLY_PAGES};
use rt::abi::rights::{
    ZX_DEFAULT_PAGER_RIGHTS, ZX_DEFAULT_PORT_RIGHTS, ZX_DEFAULT_VMO_RIGHTS, ZX_RIGHT_ATTACH_VMO,
    ZX_RIGHT_MANAGE_VMO, ZX_RIGHT_READ, ZX_RIGHT_SAME_RIGHTS, ZX_RIGHT_WRITE,
};
use rt::abi::status::*;
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT;
use rt::abi::vmo_op::{ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use rt::abi::vmo_options::ZX_VMO_TRAP_DIRTY;
use rt::abi::{Call, PAGE_SIZE, VMO_INFO_FLAG_DETACHED, VMO_INFO_FLAG_PAGER_BACKED, layout};
use rt::harness::{TestCtx, TestResult};
use rt::sync::SpinLock;
use rt::sys::{self, Handle};
use rt::{Pager, Port, Status, String, Vmo, check, check_eq, check_err, check_ok, format};

rt::entry!(main);

const PAGE: u64 = PAGE_SIZE;
const PAGE_US: usize = PAGE_SIZE as usize;
/// Most vCPUs with a mailbox.
const MAX_CPUS: usize = 32;
/// How long a pager waits for a packet it expects.
const PACKET_WAIT_MS: i64 = 5_000;
/// How long "no packet" is waited for.
const NO_PACKET_MS: i64 = 20;
/// How long a pager gives an accessor to block before it acts without reading the port.
const BLOCK_DELAY_MS: i64 = 30;
/// How long vCPU 0 waits for a job on another vCPU.
const JOIN_MS: i64 = 20_000;

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        worker_loop(vcpu);
    }
    rt::harness::run(rt::cases![
        // --- the seed: ZX_PAGER_SUPPLY_PAGES through PagerVmoOp, one violation at a time ---
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
        // --- Zircon's core pager tests (shared/spec/zircon-pager-semantics.md §4) ---
        invalid_pager_create,
        invalid_pager_create_vmo,
        invalid_pager_detach_vmo,
        invalid_pager_supply_pages,
        invalid_pager_op_range,
        vmo_info_pager_backed,
        decommit_pager_vmo_not_supported,
        presupply,
        overlap_supply,
        supply_after_detach,
        detach_page_complete,
        close_page_complete,
        detach_close_pager,
        supply_after_port_closed,
        // --- blocked accessors: vCPU 0 accesses, vCPU 1 pages ---
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
        // --- guest pointers (abi "Guest pointers"), through the real hypercall path ---
        bad_pointers_out_handle,
        bad_pointers_vmo_read_buffer,
        bad_pointers_vmo_write_buffer,
        bad_pointers_port_wait_keeps_the_packet,
    ])
}

// ================================================================================================
// vCPU jobs: mailboxes, spawn and join
// ================================================================================================

/// A job for another vCPU; gets that vCPU's index.
type Job = fn(usize) -> TestResult;

struct Mailbox {
    job: SpinLock<Option<Job>>,
    result: SpinLock<Option<TestResult>>,
    posted: AtomicUsize,
    done: AtomicUsize,
}

impl Mailbox {
    const fn new() -> Self {
        Mailbox {
            job: SpinLock::new(None),
            result: SpinLock::new(None),
            posted: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }
}

static MAILBOXES: [Mailbox; MAX_CPUS] = [const { Mailbox::new() }; MAX_CPUS];

/// A port nothing is ever queued on: `PortWait` on it with a deadline is a sleep.
static NAP_PORT: AtomicU32 = AtomicU32::new(0);

fn nap_port() -> Handle {
    let h = NAP_PORT.load(Ordering::Acquire);
    if h != 0 {
        return Handle(h);
    }
    let new = sys::port_create(0).unwrap_or(Handle::INVALID);
    match NAP_PORT.compare_exchange(0, new.0, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => new,
        Err(existing) => {
            let _ = new.close();
            Handle(existing)
        }
    }
}

/// Sleeps about `ns` nanoseconds in the host (the vCPU thread blocks in `PortWait`).
fn nap_ns(ns: i64) {
    let port = nap_port();
    let deadline = sys::clock_monotonic() + ns;
    if port == Handle::INVALID || sys::port_wait(port, deadline) != Err(Status::ERR_TIMED_OUT) {
        while sys::clock_monotonic() < deadline {
            core::hint::spin_loop();
        }
    }
}

fn nap_ms(ms: i64) {
    nap_ns(ms * 1_000_000);
}

fn deadline_ms(ms: i64) -> i64 {
    sys::clock_monotonic() + ms * 1_000_000
}

fn worker_loop(cpu: usize) -> ! {
    if cpu >= MAX_CPUS {
        rt::park();
    }
    let mb = &MAILBOXES[cpu];
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        while mb.posted.load(Ordering::Acquire) == seen {
            spins += 1;
            if spins < 5_000 {
                core::hint::spin_loop();
            } else {
                nap_ns(200_000);
            }
        }
        seen = mb.posted.load(Ordering::Acquire);
        let job = mb.job.lock().take();
        let result = match job {
            Some(f) => f(cpu),
            None => Err(String::from("mailbox posted without a job")),
        };
        *mb.result.lock() = Some(result);
        mb.done.store(seen, Ordering::Release);
    }
}

/// Runs `job` on vCPU `cpu`.
fn spawn(cpu: usize, job: Job) -> TestResult {
    let n = rt::ncpus();
    if cpu == 0 || cpu >= n.min(MAX_CPUS) {
        return Err(format!(
            "this case needs vCPU {cpu} but the VM has {n} vCPUs (run the suite with --vcpus 3)"
        ));
    }
    let mb = &MAILBOXES[cpu];
    let posted = mb.posted.load(Ordering::Acquire);
    if mb.done.load(Ordering::Acquire) != posted {
        return Err(format!(
            "vCPU {cpu} is still busy with an earlier case's job"
        ));
    }
    *mb.result.lock() = None;
    *mb.job.lock() = Some(job);
    mb.posted.store(posted + 1, Ordering::Release);
    Ok(())
}

/// Waits for the job last spawned on `cpu` and returns its result.
fn join(cpu: usize) -> TestResult {
    let mb = &MAILBOXES[cpu];
    let deadline = deadline_ms(JOIN_MS);
    let mut spins = 0u32;
    while mb.done.load(Ordering::Acquire) != mb.posted.load(Ordering::Acquire) {
        spins += 1;
        if spins < 5_000 {
            core::hint::spin_loop();
        } else {
            if sys::clock_monotonic() > deadline {
                return Err(format!(
                    "the job on vCPU {cpu} did not finish in {JOIN_MS} ms"
                ));
            }
            nap_ns(100_000);
        }
    }
    mb.result
        .lock()
        .take()
        .unwrap_or_else(|| Err(String::from("job finished without a result")))
}

/// Joins `cpu` and prefixes its failure with its role.
fn join_as(cpu: usize, role: &str) -> TestResult {
    join(cpu).map_err(|e| format!("{role} (vCPU {cpu}): {e}"))
}

/// Parameters of the running case for the jobs (handles are process-wide).
struct Shared {
    pager: AtomicU32,
    vmo: AtomicU32,
    port: AtomicU32,
    key: AtomicU64,
    seed: AtomicU64,
    off: AtomicU64,
    len: AtomicU64,
    code: AtomicI64,
    gpa: AtomicU64,
    mode: AtomicU64,
    arrived: AtomicUsize,
    go: AtomicBool,
}

static SH: Shared = Shared {
    pager: AtomicU32::new(0),
    vmo: AtomicU32::new(0),
    port: AtomicU32::new(0),
    key: AtomicU64::new(0),
    seed: AtomicU64::new(0),
    off: AtomicU64::new(0),
    len: AtomicU64::new(0),
    code: AtomicI64::new(0),
    gpa: AtomicU64::new(0),
    mode: AtomicU64::new(0),
    arrived: AtomicUsize::new(0),
    go: AtomicBool::new(false),
};

fn sh_pager() -> Handle {
    Handle(SH.pager.load(Ordering::Acquire))
}
fn sh_vmo() -> Handle {
    Handle(SH.vmo.load(Ordering::Acquire))
}
fn sh_port() -> Handle {
    Handle(SH.port.load(Ordering::Acquire))
}
fn sh_key() -> u64 {
    SH.key.load(Ordering::Acquire)
}
fn sh_seed() -> u64 {
    SH.seed.load(Ordering::Acquire)
}

/// Publishes a fixture and the range the jobs work on.
fn publish(fx: &Fx, off: u64, len: u64) {
    SH.pager.store(fx.pager.raw(), Ordering::Release);
    SH.vmo.store(fx.vmo.raw(), Ordering::Release);
    SH.port.store(fx.port.raw(), Ordering::Release);
    SH.key.store(fx.key, Ordering::Release);
    SH.seed.store(fx.seed, Ordering::Release);
    SH.off.store(off, Ordering::Release);
    SH.len.store(len, Ordering::Release);
    SH.arrived.store(0, Ordering::Release);
    SH.go.store(false, Ordering::Release);
}

// ================================================================================================
// Fixtures, contents, packets, mappings
// ================================================================================================

/// A pager, a port and one pager VMO on it.
struct Fx {
    pager: Pager,
    port: Port,
    vmo: Vmo,
    key: u64,
    seed: u64,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0x5eed_0000_0000);

fn fixture(pages: u64) -> Result<Fx, String> {
    let pager = check_ok!(Pager::create(0));
    let port = check_ok!(Port::create(0));
    let key = NEXT_KEY.fetch_add(0x1_0000, Ordering::Relaxed);
    let vmo = check_ok!(pager.create_vmo(0, &port, key, pages * PAGE));
    // Contents are keyed like Zircon's helpers: u64 word i of the VMO holds `seed + i`.
    Ok(Fx {
        pager,
        port,
        vmo,
        key,
        seed: key << 8,
    })
}

/// The contents of logical page `page` for `seed`: u64 word i holds `seed + page * 512 + i`.
fn fill_page(buf: &mut [u8; PAGE_US], seed: u64, page: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        let v = seed.wrapping_add(page * (PAGE / 8)).wrapping_add(i as u64);
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Checks every byte of `got` against logical page `page` of `seed`.
fn check_page(got: &[u8; PAGE_US], seed: u64, page: u64, what: &str) -> TestResult {
    let mut want = [0u8; PAGE_US];
    fill_page(&mut want, seed, page);
    match got.iter().zip(want.iter()).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i:#x} of page {page} is {:#04x}, expected {:#04x} \
             (word there {:#018x}, expected {:#018x})",
            got[i],
            want[i],
            u64::from_le_bytes(got[i & !7..(i & !7) + 8].try_into().unwrap()),
            u64::from_le_bytes(want[i & !7..(i & !7) + 8].try_into().unwrap()),
        )),
    }
}

/// An aux VMO of `pages` pages, fully committed by `VmoWrite`: aux page k holds logical page
/// `first + k` of `seed`.
fn aux_filled(pages: u64, seed: u64, first: u64) -> Result<Vmo, String> {
    let aux = check_ok!(Vmo::create(pages * PAGE, 0));
    let mut buf = [0u8; PAGE_US];
    for k in 0..pages {
        fill_page(&mut buf, seed, first + k);
        check_ok!(aux.write(&buf, k * PAGE));
    }
    Ok(aux)
}

/// Reads `pages` pages of `vmo` from `offset` with `VmoRead` and checks every byte against
/// logical pages `first..` of `seed`.
fn check_content(
    vmo: Handle,
    offset: u64,
    pages: u64,
    seed: u64,
    first: u64,
    what: &str,
) -> TestResult {
    let mut buf = [0u8; PAGE_US];
    for k in 0..pages {
        if let Err(s) = sys::vmo_read(vmo, &mut buf, offset + k * PAGE) {
            return Err(format!(
                "{what}: VmoRead at {:#x}: {s:?}",
                offset + k * PAGE
            ));
        }
        check_page(&buf, seed, first + k, what)?;
    }
    Ok(())
}

/// Checks that `[offset, +len)` of an anonymous VMO reads as zeros.
fn check_zero(vmo: Handle, offset: u64, len: u64, what: &str) -> TestResult {
    let mut buf = [0xa5u8; PAGE_US];
    let mut at = offset;
    while at < offset + len {
        let n = ((offset + len - at) as usize).min(PAGE_US);
        if let Err(s) = sys::vmo_read(vmo, &mut buf[..n], at) {
            return Err(format!("{what}: VmoRead at {at:#x}: {s:?}"));
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(format!(
                "{what}: byte at {:#x} is {:#04x}, expected 0",
                at + i as u64,
                buf[i]
            ));
        }
        at += n as u64;
    }
    Ok(())
}

fn info(vmo: Handle) -> Result<rt::abi::VmoInfo, String> {
    sys::vmo_get_info(vmo).map_err(|s| format!("VmoGetInfo: {s:?}"))
}

fn committed(vmo: Handle) -> Result<u64, String> {
    Ok(info(vmo)?.committed_bytes)
}

/// The aux VMO is untouched: `pages` pages committed, holding logical pages `first..` of `seed`.
fn check_aux_untouched(aux: &Vmo, pages: u64, seed: u64, first: u64) -> TestResult {
    check_eq!(
        committed(aux.handle())?,
        pages * PAGE,
        "aux committed_bytes (aux must be untouched)"
    );
    check_content(
        aux.handle(),
        0,
        pages,
        seed,
        first,
        "aux (must be untouched)",
    )
}

/// The aux range `[off, +len)` is fully decommitted: it reads as zeros and `committed_bytes`
/// is `expect_committed`.
fn check_aux_decommitted(aux: &Vmo, off: u64, len: u64, expect_committed: u64) -> TestResult {
    check_eq!(
        committed(aux.handle())?,
        expect_committed,
        "aux committed_bytes after the supply"
    );
    check_zero(aux.handle(), off, len, "aux range after the supply")
}

/// `zx_pager_vmo_op(ZX_PAGER_SUPPLY_PAGES)` on raw handles.
fn supply(
    pager: Handle,
    vmo: Handle,
    off: u64,
    len: u64,
    aux: Handle,
    aux_off: u64,
) -> rt::Result<()> {
    sys::pager_vmo_op(pager, vmo, ZX_PAGER_SUPPLY_PAGES, off, len, aux, aux_off)
}

/// `ZX_PAGER_OP_FAIL` through `PagerVmoOp` (the status goes in `aux_offset`).
fn fail_op(pager: Handle, vmo: Handle, off: u64, len: u64, code: i32) -> rt::Result<()> {
    sys::pager_vmo_op(
        pager,
        vmo,
        ZX_PAGER_OP_FAIL,
        off,
        len,
        Handle::INVALID,
        code as i64 as u64,
    )
}

/// Supplies `[off, +len)` of `vmo` with logical pages of `seed` from a fresh aux VMO.
fn supply_fresh(pager: Handle, vmo: Handle, off: u64, len: u64, seed: u64) -> TestResult {
    let aux = aux_filled(len / PAGE, seed, off / PAGE)?;
    supply(pager, vmo, off, len, aux.handle(), 0)
        .map_err(|s| format!("supply [{off:#x}, +{len:#x}): {s:?}"))
}

/// `PortWait` into a raw 48-byte buffer (exactly what the VMM wrote).
fn port_wait_raw(port: Handle, deadline: i64) -> rt::Result<[u8; 48]> {
    let mut b = [0u8; 48];
    let args = [
        port.0 as u64,
        deadline as u64,
        b.as_mut_ptr() as u64,
        0,
        0,
        0,
        0,
        0,
    ];
    // SAFETY: the only pointer argument is `b`, 48 writable bytes owned by this frame, which is
    // exactly what `PortWait` writes.
    let rax = unsafe { rt::hypercall::hypercall(Call::PortWait as u64, args) };
    Status::from_rax(rax).ok().map(|_| b)
}

/// The 48 bytes of a page-request packet, built field by field from Zircon's layout.
fn packet_bytes(key: u64, command: u16, offset: u64, length: u64) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0..8].copy_from_slice(&key.to_le_bytes());
    b[8..12].copy_from_slice(&ZX_PKT_TYPE_PAGE_REQUEST.to_le_bytes());
    b[12..16].copy_from_slice(&0i32.to_le_bytes());
    b[16..18].copy_from_slice(&command.to_le_bytes());
    // flags (u16 @18) and reserved0 (u32 @20) are 0.
    b[24..32].copy_from_slice(&offset.to_le_bytes());
    b[32..40].copy_from_slice(&length.to_le_bytes());
    // reserved1 (u64 @40) is 0.
    b
}

fn describe(b: &[u8; 48]) -> String {
    let p = rt::abi::PortPacket::from_bytes(b);
    format!(
        "{{key {:#x} type {} status {} command {} flags {} reserved0 {} offset {:#x} length {:#x} \
         reserved1 {}}}",
        p.key,
        p.packet_type,
        p.status,
        p.page_request.command,
        p.page_request.flags,
        p.page_request.reserved0,
        p.page_request.offset,
        p.page_request.length,
        p.page_request.reserved1
    )
}

/// Waits for the next packet and checks all 48 bytes.
fn expect_packet(port: Handle, key: u64, command: u16, offset: u64, length: u64) -> TestResult {
    let want = packet_bytes(key, command, offset, length);
    match port_wait_raw(port, deadline_ms(PACKET_WAIT_MS)) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!(
            "packet {}, expected {}",
            describe(&got),
            describe(&want)
        )),
        Err(s) => Err(format!(
            "PortWait: {s:?}, expected packet {}",
            describe(&want)
        )),
    }
}

fn expect_read(port: Handle, key: u64, offset: u64, length: u64) -> TestResult {
    expect_packet(port, key, ZX_PAGER_VMO_READ, offset, length)
}

/// No packet arrives within [`NO_PACKET_MS`].
fn expect_no_packet(port: Handle) -> TestResult {
    match port_wait_raw(port, deadline_ms(NO_PACKET_MS)) {
        Err(s) if s == Status::ERR_TIMED_OUT => Ok(()),
        Ok(got) => Err(format!("unexpected packet {}", describe(&got))),
        Err(s) => Err(format!("PortWait: {s:?}, expected ZX_ERR_TIMED_OUT")),
    }
}

static NEXT_GPA: AtomicU64 = AtomicU64::new(layout::APERTURE_START);

/// A VMO range mapped into the aperture; unmapped on drop.
struct Mapped {
    gpa: u64,
    len: u64,
    live: bool,
}

impl Mapped {
    fn unmap(mut self) -> rt::Result<()> {
        self.live = false;
        sys::vmar_unmap(self.gpa, self.len)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.live {
            let _ = sys::vmar_unmap(self.gpa, self.len);
        }
    }
}

/// Maps `[off, +len)` of `vmo` read/write at a fresh aperture address (one guard page apart).
fn map(vmo: Handle, off: u64, len: u64) -> Result<Mapped, String> {
    let gpa = NEXT_GPA.fetch_add(len + PAGE, Ordering::Relaxed);
    sys::vmar_map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, gpa, vmo, off, len)
        .map_err(|s| format!("VmarMap at {gpa:#x}: {s:?}"))?;
    Ok(Mapped {
        gpa,
        len,
        live: true,
    })
}

/// Reads one page at guest-physical `gpa` (in the aperture) word by word.
fn read_mapped_page(gpa: u64) -> [u8; PAGE_US] {
    let mut out = [0u8; PAGE_US];
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let p = (gpa + i as u64 * 8) as *const u64;
        // SAFETY: `gpa` is a page of a live aperture mapping (identity mapped, so the address is
        // dereferenceable); the access may block in KVM until the pager supplies the page.
        let v = unsafe { core::ptr::read_volatile(p) };
        w.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes logical page `page` of `seed` at guest-physical `gpa` word by word.
fn write_mapped_page(gpa: u64, seed: u64, page: u64) {
    let mut buf = [0u8; PAGE_US];
    fill_page(&mut buf, seed, page);
    for (i, w) in buf.chunks_exact(8).enumerate() {
        let p = (gpa + i as u64 * 8) as *mut u64;
        // SAFETY: `gpa` is a page of a live, writable aperture mapping of an anonymous VMO.
        unsafe { core::ptr::write_volatile(p, u64::from_le_bytes(w.try_into().unwrap())) };
    }
}

/// A handle value that names nothing: a closed handle.
fn closed_handle() -> Result<Handle, String> {
    let v = check_ok!(Vmo::create(PAGE, 0));
    let h = v.handle();
    check_ok!(v.close());
    Ok(h)
}

/// The handles that must give BAD_HANDLE: invalid, closed, made up.
fn bad_handles() -> Result<[Handle; 3], String> {
    Ok([Handle::INVALID, closed_handle()?, Handle(0x7ead_beef)])
}

// ================================================================================================
// The seed: ZX_PAGER_SUPPLY_PAGES
// ================================================================================================

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
        check_err!(
            supply(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, bad, 0),
            Status::ERR_BAD_HANDLE
        );
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
        check_err!(
            supply(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, not_vmo, 0),
            Status::ERR_WRONG_TYPE
        );
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
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            no_read.handle(),
            0
        ),
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
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            no_write.handle(),
            0
        ),
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
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            2 * PAGE,
            aux.handle(),
            0
        ),
        Status::ERR_BAD_STATE
    );
    check_eq!(committed(aux.handle())?, PAGE, "aux must be untouched");
    check_content(aux.handle(), 0, 1, 7, 0, "aux page 0 (must be untouched)")?;
    // An aux with nothing committed at all.
    let empty = check_ok!(Vmo::create(PAGE, 0));
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            empty.handle(),
            0
        ),
        Status::ERR_BAD_STATE
    );
    check_eq!(committed(fx.vmo.handle())?, 0);
    expect_no_packet(fx.port.handle())
}

fn supply_bad_state_aux_mapped(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    let m = map(aux.handle(), 0, 2 * PAGE)?;
    check_eq!(info(aux.handle())?.mappings, 1);
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            2 * PAGE,
            aux.handle(),
            0
        ),
        Status::ERR_BAD_STATE
    );
    check_aux_untouched(&aux, 2, fx.seed, 0)?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    check_ok!(m.unmap());
    // Without the mapping the same supply works: it was the mapping.
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        0,
        2 * PAGE,
        aux.handle(),
        0
    ));
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)
}

fn supply_bad_state_aux_has_clone(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    let child = check_ok!(aux.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, 2 * PAGE));
    check_eq!(info(aux.handle())?.children, 1);
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            2 * PAGE,
            aux.handle(),
            0
        ),
        Status::ERR_BAD_STATE
    );
    check_aux_untouched(&aux, 2, fx.seed, 0)?;
    check_content(child.handle(), 0, 2, fx.seed, 0, "the clone")?;
    check_eq!(committed(fx.vmo.handle())?, 0);
    check_ok!(child.close());
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        0,
        2 * PAGE,
        aux.handle(),
        0
    ));
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)
}

fn supply_bad_state_aux_is_pager_vmo(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    let other = fixture(1)?;
    // Fully commit the other pager VMO, so the only violation is its kind.
    supply_fresh(
        other.pager.handle(),
        other.vmo.handle(),
        0,
        PAGE,
        other.seed,
    )?;
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            other.vmo.handle(),
            0
        ),
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
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), PAGE, PAGE, fx.seed)?;
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            fx.vmo.handle(),
            PAGE
        ),
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
    check_err!(
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            PAGE,
            child.handle(),
            0
        ),
        Status::ERR_BAD_STATE
    );
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
        supply(
            fx.pager.handle(),
            fx.vmo.handle(),
            0,
            2 * PAGE,
            aux.handle(),
            0
        ),
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
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        3 * PAGE,
        3 * PAGE,
        aux.handle(),
        PAGE
    ));
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
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), PAGE, PAGE, first)?;
    let aux = aux_filled(3, fx.seed, 0)?;
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        0,
        3 * PAGE,
        aux.handle(),
        0
    ));
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
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        0,
        2 * PAGE,
        aux.handle(),
        PAGE
    ));
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

// ================================================================================================
// Zircon §4.1: errors and API validation
// ================================================================================================

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
    supply_fresh(
        other.pager.handle(),
        other.vmo.handle(),
        0,
        PAGE,
        other.seed,
    )?;
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
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 0, 2 * PAGE, fx.seed)?;
    check_err!(
        fx.vmo.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE),
        Status::ERR_NOT_SUPPORTED
    );
    check_content(fx.vmo.handle(), 0, 2, fx.seed, 0, "pager VMO")
}

// ================================================================================================
// Zircon §4.2 / §4.5: supply semantics, detach, close (one vCPU)
// ================================================================================================

fn presupply(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 0, 2 * PAGE, fx.seed)?;
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
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, alt)?;
    let aux = aux_filled(2, fx.seed, 0)?;
    check_ok!(supply(
        fx.pager.handle(),
        fx.vmo.handle(),
        0,
        2 * PAGE,
        aux.handle(),
        0
    ));
    check_content(fx.vmo.handle(), 0, 1, alt, 0, "page 0 (alternate buffer)")?;
    check_content(fx.vmo.handle(), PAGE, 1, fx.seed, 1, "page 1")?;
    check_aux_decommitted(&aux, 0, 2 * PAGE, 0)?;
    expect_no_packet(fx.port.handle())
}

fn supply_after_detach(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(1)?;
    check_ok!(fx.pager.detach(&fx.vmo));
    let aux = aux_filled(1, fx.seed, 0)?;
    check_err!(
        supply(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, aux.handle(), 0),
        Status::ERR_BAD_STATE
    );
    // No page requests: just the detach's COMPLETE.
    expect_packet(fx.port.handle(), fx.key, ZX_PAGER_VMO_COMPLETE, 0, 0)?;
    expect_no_packet(fx.port.handle())
}

fn detach_page_complete(_t: &mut TestCtx) -> TestResult {
    let fx = fixture(2)?;
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 0, PAGE, fx.seed)?;
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

// ================================================================================================
// Blocked accessors (vCPU 0) and a pager on vCPU 1
// ================================================================================================

/// Pager job: expects READ(off, len), fills an aux VMO with `VmoWrite`, supplies.
fn job_serve_read(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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
    let pager = check_ok!(Pager::create(0));
    let port = check_ok!(Port::create(0));
    let key = NEXT_KEY.fetch_add(0x1_0000, Ordering::Relaxed);
    let vmo = check_ok!(pager.create_vmo(ZX_VMO_TRAP_DIRTY, &port, key, 2 * PAGE));
    let fx = Fx {
        pager,
        port,
        vmo,
        key,
        seed: key << 8,
    };
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 0, 2 * PAGE, fx.seed)?;
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
    supply_fresh(fx.pager.handle(), fx.vmo.handle(), 2 * PAGE, PAGE, fx.seed)?;
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

/// The five statuses FAIL may carry.
const FAIL_CODES: [i32; 5] = [
    ZX_ERR_IO,
    ZX_ERR_IO_DATA_INTEGRITY,
    ZX_ERR_BAD_STATE,
    ZX_ERR_NO_SPACE,
    ZX_ERR_BUFFER_TOO_SMALL,
];

/// Pager job: expects READ(off, len) and fails it with `SH.code` (through PagerVmoOp when
/// `SH.mode` is 0, else PagerOpRange).
fn job_fail(_cpu: usize) -> TestResult {
    let (p, v, port) = (sh_pager(), sh_vmo(), sh_port());
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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
    let (off, len) = (
        SH.off.load(Ordering::Acquire),
        SH.len.load(Ordering::Acquire),
    );
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

// ================================================================================================
// Guest pointers (abi "Guest pointers"): the same bad pointers as tests/hypercall_pointers.rs,
// from a real guest through the real hypercall path, for an out-handle call, a buffer the VMM
// writes, a buffer it reads, and PortWait. RAM ends at `t.ram` (RAM is identity mapped from 0).
// ================================================================================================

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
