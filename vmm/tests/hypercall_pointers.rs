//! Guest pointers, host side: the rules of `kvmpager::abi` ("Guest pointers") hold for every
//! hypercall that takes a guest pointer, and `VmarMap`/`VmarUnmap` give their documented
//! statuses for bad guest-physical addresses.
//!
//! The tests build a VM (plain and lazy RAM, 4 MiB, never run) and call
//! `kvmpager_vmm::hypercall::handle` directly, one table row at a time. A row names the call, the
//! pointer argument and the case; on a mismatch the message names the row. Which calls have an
//! out-pointer or a buffer, at which argument, storing how many bytes, read or written, comes from
//! the ABI's argument table (`Call::args`): a new call with a pointer gets rows by itself, or
//! `every_pointer_argument_has_rows` fails naming the call this file cannot set up. For each
//! pointer argument of each call the cases are: null with a non-zero length, inside and straddling
//! the end of the null page, just above it, unaligned (must succeed and store/read the right
//! bytes), the last bytes of RAM, exactly at the end of RAM, straddling it, in the hole between RAM
//! and the aperture, inside the aperture (unmapped, and on a VMO mapped there with `VmarMap`),
//! above the aperture, and wrapping past 2^64; buffers also get zero lengths anywhere (always
//! accepted) and overflowing lengths (`u64::MAX`, `ptr + len` wrapping, past the end of RAM).
//!
//! Besides the status, every row checks that a failed call had no effect: no new handle in the
//! guest's table, no RAM byte changed, nothing written to the console or the test reports, the
//! VMO unchanged (`VmoRead`/`VmoWrite`), the handle not consumed (`HandleReplace`), the queued
//! packet still there for the next good `PortWait`; and that a successful call changed exactly
//! the bytes it should, with the right value, at whatever alignment.
//!
//! Written against the ABI doc first, these rows found three places where the VMM disagreed
//! (short strings checked only up to their cut-off, `VmoRead`/`VmoWrite` asking the pager for
//! pages before checking the buffer, `VmoInfo` 40 bytes instead of 48); all three are fixed.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kvmpager::abi::layout::{APERTURE_SIZE, APERTURE_START};
use kvmpager::abi::rights::{ZX_DEFAULT_VMO_RIGHTS, ZX_RIGHT_SAME_RIGHTS};
use kvmpager::abi::status::*;
use kvmpager::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT;
use kvmpager::abi::{
    Call, Dir, Handle, PAGE_SIZE, PageRequest, PortPacket, Role, Status,
    VMO_INFO_FLAG_PAGER_BACKED, packet,
};
use kvmpager_vmm::console::{MAX_REPORT_TEXT, MAX_WRITE};
use kvmpager_vmm::hypercall::{self, Hypercall, Outcome};
use kvmpager_vmm::memory::POINTER_FLOOR;
use kvmpager_vmm::vm::Vm;
use kvmpager_vmm::{VmConfig, skip_without_kvm};

const PAGE: u64 = PAGE_SIZE;
/// Guest RAM of the test VMs.
const RAM: u64 = 4 << 20;
/// Free RAM between the (small) program at 1 MiB and the stack at the top.
const SCRATCH: u64 = 2 << 20;
/// A second free RAM area (the other string of `TestReport`, the good `PortWait`).
const SCRATCH2: u64 = 3 << 20;
const APERTURE_END: u64 = APERTURE_START + APERTURE_SIZE;
/// Where each VM has a VMO mapped (with `VmarMap`) for the "mapped aperture" cases.
const MAPPED: u64 = APERTURE_START + 0x10_0000;
const MAPPED_LEN: u64 = 2 * PAGE;
/// Size of the VMO whose handle the VMO calls use.
const VMO_SIZE: u64 = 0x3000;
/// Size of the VMO `VmoRead`/`VmoWrite` copy from/to: as large as RAM, so every RAM range that
/// is valid is also a valid VMO range and only the pointer decides.
const IO_VMO_SIZE: u64 = RAM;
const KEY: u64 = 0x5eed_1234;

// ================================================================================================
// The VM and raw calls
// ================================================================================================

/// A VM that is built but never run, with a VMO mapped at [`MAPPED`].
fn vm(lazy: bool) -> Arc<Vm> {
    let mut cfg = VmConfig::new(kvmpager_vmm::guests::HELLO.elf.to_vec());
    cfg.vcpus = 1;
    cfg.memory = RAM;
    cfg.lazy_ram = lazy;
    let vm = Vm::new(&cfg).expect("the VM builds");
    let g = vm.guest();
    let vmo = g.vmo_create(MAPPED_LEN, 0).unwrap();
    let rw = u64::from(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE);
    let st = call(&vm, Call::VmarMap, &[rw, MAPPED, vmo.into(), 0, MAPPED_LEN]);
    assert_eq!(st, ZX_OK, "setup: VmarMap at {MAPPED:#x}");
    g.handle_close(vmo).unwrap();
    vm
}

/// Makes hypercall `call` with `args` (missing ones 0) and returns its status.
fn call(vm: &Vm, call: Call, args: &[u64]) -> Status {
    let mut a = [0u64; 8];
    a[..args.len()].copy_from_slice(args);
    let hc = Hypercall {
        nr: call as u64,
        args: a,
    };
    match hypercall::handle(vm, 0, hc) {
        Outcome::Return(v) => Status::try_from(v).unwrap_or_else(|_| panic!("{call:?}: rax {v}")),
        Outcome::Stop(r) => panic!("{call:?} stopped the VM: {r:?}"),
    }
}

fn name(s: Status) -> String {
    format!("{} ({s})", kvmpager::abi::status::name(s))
}

/// Guest RAM `[gpa, gpa + len)`, read through `vm.ram()`; the part in the boot area, which
/// `GuestRam` refuses, straight from the VMM's host mapping of RAM.
fn ram(vm: &Vm, gpa: u64, len: u64) -> Vec<u8> {
    let end = gpa
        .checked_add(len)
        .filter(|&e| e <= RAM)
        .expect("a RAM range");
    let split = gpa.max(POINTER_FLOOR).min(end);
    let mut v = vec![0u8; (split - gpa) as usize];
    // SAFETY: `[gpa, split)` is inside guest RAM, which `vm` keeps mapped at `host_addr()`
    // while it lives; no vCPU runs, and a byte copy of plain memory has no invariants.
    unsafe {
        let src = (vm.ram().host_addr() + gpa) as *const u8;
        std::ptr::copy_nonoverlapping(src, v.as_mut_ptr(), v.len());
    }
    if split < end {
        v.extend(vm.ram().read(split, end - split).expect("a RAM range"));
    }
    v
}

/// Writes `bytes` to guest RAM at `gpa`, like [`ram`] (the boot area through the host mapping).
fn write_ram(vm: &Vm, gpa: u64, bytes: &[u8]) {
    let end = gpa
        .checked_add(bytes.len() as u64)
        .filter(|&e| e <= RAM)
        .expect("a RAM range");
    let split = gpa.max(POINTER_FLOOR).min(end);
    let (low, high) = bytes.split_at((split - gpa) as usize);
    // SAFETY: as in `ram`: `[gpa, split)` is mapped guest RAM and nothing else uses it now.
    unsafe {
        let dst = (vm.ram().host_addr() + gpa) as *mut u8;
        std::ptr::copy_nonoverlapping(low.as_ptr(), dst, low.len());
    }
    vm.ram().write(split, high).expect("a RAM range");
}

/// The RAM bytes a call with `ptr`/`len` could touch, with 16 bytes either side, clipped to
/// RAM: `(start, bytes)`.
fn ram_window(vm: &Vm, ptr: u64, len: u64) -> (u64, Vec<u8>) {
    let start = ptr.saturating_sub(16).min(RAM);
    let end = ptr.saturating_add(len).saturating_add(16).min(RAM);
    let start = start.min(end);
    (start, ram(vm, start, end - start))
}

/// Fills `[gpa, gpa + len)` with a byte pattern that no call stores by accident.
fn fill_ram(vm: &Vm, gpa: u64, len: u64, salt: u8) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ 0xa5 ^ salt)
        .collect();
    write_ram(vm, gpa, &bytes);
}

/// The VMO's whole contents.
fn vmo_bytes(vm: &Vm, vmo: Handle) -> Vec<u8> {
    let size = vm.guest().vmo_get_size(vmo).unwrap();
    let mut b = vec![0u8; size as usize];
    vm.guest().vmo_read(vmo, &mut b, 0).unwrap();
    b
}

// ================================================================================================
// The pointer cases
// ================================================================================================

/// One pointer (and length) a row passes.
#[derive(Clone, Copy, Debug)]
struct Ptr {
    case: &'static str,
    ptr: u64,
    len: u64,
    /// What the ABI says: `ZX_OK` or `ZX_ERR_INVALID_ARGS`.
    want: Status,
}

const fn ok(case: &'static str, ptr: u64, len: u64) -> Ptr {
    Ptr {
        case,
        ptr,
        len,
        want: ZX_OK,
    }
}

const fn bad(case: &'static str, ptr: u64, len: u64) -> Ptr {
    Ptr {
        case,
        ptr,
        len,
        want: ZX_ERR_INVALID_ARGS,
    }
}

/// The cases for a pointer to `n` bytes (an out-value of that size, or a buffer).
fn pointer_cases(n: u64) -> Vec<Ptr> {
    assert!(n >= 2);
    vec![
        bad("null", 0, n),
        bad("inside the null page", 0x800, n),
        bad("ending inside the null page", PAGE - n - 1, n),
        bad("straddling the end of the null page", PAGE - 1, n),
        bad("just above the null page (the GDT)", PAGE, n),
        bad("in the page tables", 0x1_0008, n),
        bad("ending inside the boot area", POINTER_FLOOR - n - 1, n),
        bad("straddling the end of the boot area", POINTER_FLOOR - 1, n),
        ok("just above the boot area", POINTER_FLOOR, n),
        ok("unaligned (+1)", SCRATCH + 1, n),
        ok("unaligned (+3)", SCRATCH + 0x103, n),
        ok("the last bytes of RAM", RAM - n, n),
        ok("the last bytes of RAM, unaligned", RAM - n - 1, n),
        bad("exactly at the end of RAM", RAM, n),
        bad("straddling the end of RAM by 1 byte", RAM - n + 1, n),
        bad("straddling the end of RAM", RAM - 1, n),
        bad("in the hole just above RAM", RAM + PAGE, n),
        bad(
            "at the top of the hole, ending at the aperture",
            APERTURE_START - n,
            n,
        ),
        bad(
            "straddling the start of the aperture",
            APERTURE_START - 1,
            n,
        ),
        bad("in the aperture, unmapped", APERTURE_START, n),
        bad("in the aperture, on a mapped VMO", MAPPED + 8, n),
        bad("straddling the end of the aperture", APERTURE_END - 1, n),
        bad("above the aperture", APERTURE_END, n),
        bad(
            "ending exactly at 2^64 (ptr + len wraps to 0)",
            0u64.wrapping_sub(n),
            n,
        ),
        bad("wrapping past 2^64", u64::MAX - 1, n),
        bad("u64::MAX", u64::MAX, n),
    ]
}

/// The cases for a buffer: [`pointer_cases`] for a 16-byte buffer, plus lengths.
fn buffer_cases() -> Vec<Ptr> {
    let mut v = pointer_cases(16);
    v.extend([
        ok("zero length at null", 0, 0),
        ok("zero length in the null page", 0x800, 0),
        ok("zero length exactly at the end of RAM", RAM, 0),
        ok("zero length in the hole", RAM + PAGE, 0),
        ok("zero length on a mapped VMO", MAPPED, 0),
        ok("zero length at u64::MAX", u64::MAX, 0),
        ok("one byte, the last of RAM", RAM - 1, 1),
        bad("one byte exactly at the end of RAM", RAM, 1),
        ok(
            "all of RAM above the boot area",
            POINTER_FLOOR,
            RAM - POINTER_FLOOR,
        ),
        bad("all of RAM above the null page", PAGE, RAM - PAGE),
        bad("all of RAM from null", 0, RAM),
        bad("length past the end of RAM", SCRATCH, RAM),
        bad("length u64::MAX", SCRATCH, u64::MAX),
        bad("length u64::MAX at null", 0, u64::MAX),
        bad(
            "length wrapping ptr + len to exactly 2^64",
            SCRATCH,
            0u64.wrapping_sub(SCRATCH),
        ),
        bad(
            "length wrapping ptr + len past 2^64",
            SCRATCH,
            u64::MAX - SCRATCH + 0x11,
        ),
    ]);
    v
}

// ================================================================================================
// Rows and their checks
// ================================================================================================

/// Mismatches found so far, one line per row.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, row: String, r: Result<(), String>) {
        if let Err(e) = r {
            self.0.push(format!("{row}: {e}"));
        }
    }

    fn assert_none(self, rows: usize, what: &str) {
        assert!(
            self.0.is_empty(),
            "{} of {rows} {what} rows failed:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
        eprintln!("{rows} {what} rows passed");
    }
}

fn row_name(call: Call, arg: &str, p: &Ptr, lazy: bool) -> String {
    format!(
        "{call:?} `{arg}` {} (ptr {:#x}, len {:#x}, lazy RAM {lazy})",
        p.case, p.ptr, p.len
    )
}

/// What a guest can see of the VM, to tell that a failed call had no effect.
#[derive(Debug, PartialEq, Eq)]
struct Visible {
    handles: usize,
    console: usize,
    reports: usize,
}

fn visible(vm: &Vm) -> Visible {
    Visible {
        handles: vm.guest().handle_count(),
        console: vm.console().contents().len(),
        reports: vm.reports().all().len(),
    }
}

/// Creates the objects an [`OutCall`] needs: its arguments and the handles to close after.
type Setup = fn(&Vm) -> (Vec<u64>, Vec<Handle>);
/// Checks the bytes an [`OutCall`] stored, given the setup's handles.
type Stored = fn(&Vm, &[Handle], &[u8]) -> Result<(), String>;
/// Checks that a failed [`OutCall`] left the setup's objects alone.
type Untouched = fn(&Vm, &[Handle]) -> Result<(), String>;

/// How to test a call that stores a value through an out-pointer. Which argument that is and
/// how many bytes it stores come from the ABI table ([`OutPtr`]); this says how to make the
/// call succeed and what success and failure look like.
struct OutCall {
    /// The arguments (the out-pointer's slot is overwritten) and handles to close after.
    setup: Setup,
    /// Checks the stored bytes after a success (and the objects' state).
    stored: Stored,
    /// Checks that a failed call left the objects alone.
    untouched: Untouched,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got:?}, expected {want:?}"))
    }
}

/// The stored handle names a VMO of `size` bytes; closes it.
fn stored_vmo(vm: &Vm, stored: &[u8], size: u64) -> Result<(), String> {
    let h = u32_at(stored, 0);
    let r = expect(
        "size of the stored VMO handle",
        vm.guest().vmo_get_size(h),
        Ok(size),
    );
    let _ = vm.guest().handle_close(h);
    r
}

/// The stored handle names an object that is not a VMO (a pager or a port); closes it.
fn stored_other(vm: &Vm, stored: &[u8], is_port: bool) -> Result<(), String> {
    let h = u32_at(stored, 0);
    let r = if is_port {
        expect(
            "PortWait on the stored handle",
            vm.guest().port_wait(h, Some(Instant::now())),
            Err(ZX_ERR_TIMED_OUT),
        )
    } else {
        expect(
            "VmoGetSize on the stored handle",
            vm.guest().vmo_get_size(h),
            Err(ZX_ERR_WRONG_TYPE),
        )
    };
    let closed = expect(
        "closing the stored handle",
        vm.guest().handle_close(h),
        Ok(()),
    );
    r.and(closed)
}

fn nothing_to_check(_: &Vm, _: &[Handle]) -> Result<(), String> {
    Ok(())
}

/// The first setup handle still names the VMO.
fn vmo_still_valid(vm: &Vm, h: &[Handle]) -> Result<(), String> {
    expect(
        "VmoGetSize of the original handle",
        vm.guest().vmo_get_size(h[0]),
        Ok(VMO_SIZE),
    )
}

fn one_vmo(vm: &Vm) -> (Vec<u64>, Vec<Handle>) {
    let vmo = vm.guest().vmo_create(VMO_SIZE, 0).unwrap();
    (vec![vmo.into()], vec![vmo])
}

/// A pager VMO detached at once: a COMPLETE packet is queued on the port.
/// Handles: port, pager, VMO.
fn queued_packet(vm: &Vm) -> (Vec<u64>, Vec<Handle>) {
    let g = vm.guest();
    let pager = g.pager_create(0).unwrap();
    let port = g.port_create(0).unwrap();
    let vmo = g.pager_create_vmo(pager, 0, port, KEY, PAGE).unwrap();
    g.pager_detach_vmo(pager, vmo).unwrap();
    // Deadline 0: the VM's clock start, long past, so a wait never blocks.
    (vec![port.into(), 0], vec![port, pager, vmo])
}

fn complete_packet() -> [u8; 48] {
    PortPacket {
        key: KEY,
        packet_type: packet::ZX_PKT_TYPE_PAGE_REQUEST,
        status: ZX_OK,
        page_request: PageRequest {
            command: packet::ZX_PAGER_VMO_COMPLETE,
            ..Default::default()
        },
    }
    .to_bytes()
}

/// The test of `call`'s out-pointer; `None` for a call this file cannot set up yet.
fn out_call(c: Call) -> Option<OutCall> {
    Some(match c {
        Call::HandleDuplicate => OutCall {
            setup: |vm| {
                let (mut a, h) = one_vmo(vm);
                a.push(ZX_RIGHT_SAME_RIGHTS.into());
                (a, h)
            },
            stored: |vm, _, b| stored_vmo(vm, b, VMO_SIZE),
            untouched: vmo_still_valid,
        },
        Call::HandleReplace => OutCall {
            setup: |vm| {
                let (mut a, h) = one_vmo(vm);
                a.push(ZX_RIGHT_SAME_RIGHTS.into());
                (a, h)
            },
            stored: |vm, h, b| {
                expect(
                    "the replaced handle",
                    vm.guest().vmo_get_size(h[0]),
                    Err(ZX_ERR_BAD_HANDLE),
                )?;
                stored_vmo(vm, b, VMO_SIZE)
            },
            // The handle must not be consumed by a call that failed its pointer check.
            untouched: vmo_still_valid,
        },
        Call::VmoCreate => OutCall {
            setup: |_| (vec![PAGE, 0], vec![]),
            stored: |vm, _, b| stored_vmo(vm, b, PAGE),
            untouched: nothing_to_check,
        },
        Call::VmoGetSize => OutCall {
            setup: one_vmo,
            stored: |_, _, b| expect("the stored size", u64_at(b, 0), VMO_SIZE),
            untouched: vmo_still_valid,
        },
        Call::VmoCreateChild => OutCall {
            setup: |vm| {
                let (mut a, h) = one_vmo(vm);
                a.extend([ZX_VMO_CHILD_SNAPSHOT.into(), 0, PAGE]);
                (a, h)
            },
            stored: |vm, h, b| {
                let children = vm.guest().vmo_get_info(h[0]).unwrap().children;
                expect("children of the parent", children, 1)?;
                stored_vmo(vm, b, PAGE)
            },
            untouched: |vm, h| {
                let children = vm.guest().vmo_get_info(h[0]).unwrap().children;
                expect("children of the parent", children, 0)
            },
        },
        Call::VmoGetInfo => OutCall {
            setup: one_vmo,
            stored: |_, _, b| {
                expect("VmoInfo.size", u64_at(b, 0), VMO_SIZE)?;
                expect("VmoInfo.rights", u32_at(b, 32), ZX_DEFAULT_VMO_RIGHTS)?;
                expect("VmoInfo.koid is set", u64_at(b, 40) != 0, true)
            },
            untouched: vmo_still_valid,
        },
        Call::PagerCreate => OutCall {
            setup: |_| (vec![0], vec![]),
            stored: |vm, _, b| stored_other(vm, b, false),
            untouched: nothing_to_check,
        },
        Call::PagerCreateVmo => OutCall {
            setup: |vm| {
                let pager = vm.guest().pager_create(0).unwrap();
                let port = vm.guest().port_create(0).unwrap();
                let args = vec![pager.into(), 0, port.into(), KEY, 2 * PAGE];
                (args, vec![pager, port])
            },
            stored: |vm, _, b| {
                let info = vm.guest().vmo_get_info(u32_at(b, 0));
                let flags = info.map(|i| i.flags & VMO_INFO_FLAG_PAGER_BACKED);
                expect("pager-backed flag", flags, Ok(VMO_INFO_FLAG_PAGER_BACKED))?;
                stored_vmo(vm, b, 2 * PAGE)
            },
            untouched: nothing_to_check,
        },
        Call::PortCreate => OutCall {
            setup: |_| (vec![0], vec![]),
            stored: |vm, _, b| stored_other(vm, b, true),
            untouched: nothing_to_check,
        },
        Call::PortWait => OutCall {
            setup: queued_packet,
            stored: |vm, h, b| {
                expect("the stored packet", b, &complete_packet()[..])?;
                expect(
                    "a second PortWait",
                    vm.guest().port_wait(h[0], Some(Instant::now())),
                    Err(ZX_ERR_TIMED_OUT),
                )
            },
            // The packet was not consumed: a good PortWait (unaligned, too) still gets it.
            untouched: |vm, h| {
                let out = SCRATCH2 + 5;
                let st = call(vm, Call::PortWait, &[h[0].into(), 0, out]);
                expect("the following good PortWait", name(st), name(ZX_OK))?;
                expect(
                    "the packet it got",
                    ram(vm, out, 48),
                    complete_packet().to_vec(),
                )
            },
        },
        Call::PagerQueryDirtyRanges => OutCall {
            setup: |vm| {
                let q = PagerQuery::new(vm);
                let args = vec![q.pager.into(), q.vmo.into(), 0, 2 * PAGE, SCRATCH2, 0];
                (args, vec![q.vmo, q.port, q.pager])
            },
            stored: |_, _, b| {
                expect("DirtyCounts.actual", u64_at(b, 0), 0)?;
                expect("DirtyCounts.avail", u64_at(b, 8), 1)
            },
            untouched: nothing_to_check,
        },
        _ => return None,
    })
}

/// A pager VMO of 2 pages whose page 0 was supplied and then written (one dirty run, and
/// modified), for the query calls.
struct PagerQuery {
    pager: Handle,
    port: Handle,
    vmo: Handle,
}

impl PagerQuery {
    fn new(vm: &Vm) -> PagerQuery {
        let g = vm.guest();
        let pager = g.pager_create(0).unwrap();
        let port = g.port_create(0).unwrap();
        let vmo = g.pager_create_vmo(pager, 0, port, KEY, 2 * PAGE).unwrap();
        let aux = g.vmo_create(PAGE, 0).unwrap();
        g.vmo_write(aux, &[7; PAGE as usize], 0).unwrap();
        g.pager_supply_pages(pager, vmo, 0, PAGE, aux, 0).unwrap();
        g.handle_close(aux).unwrap();
        g.vmo_write(vmo, &[9; 16], 0).unwrap();
        PagerQuery { pager, port, vmo }
    }

    fn close(self, vm: &Vm) {
        for h in [self.vmo, self.port, self.pager] {
            let _ = vm.guest().handle_close(h);
        }
    }
}

/// The one entry `PagerQueryDirtyRanges` finds in a [`PagerQuery`] VMO.
const DIRTY_ENTRY: [u64; 3] = [0, PAGE, 0];
/// Where the buffer rows of `PagerQueryDirtyRanges` put its out-pointer (away from every
/// buffer window).
const DIRTY_COUNTS_AT: u64 = SCRATCH2 + 0x800;

/// An out-pointer of the ABI table: the call, the argument's index and what it stores.
#[derive(Clone, Copy, Debug)]
struct OutPtr {
    call: Call,
    index: usize,
    role: Role,
}

impl OutPtr {
    /// Every call's out-pointer, from the ABI table ([`Call::out`]).
    fn all() -> Vec<OutPtr> {
        Call::ALL
            .into_iter()
            .filter_map(|call| call.out().map(|(index, role)| OutPtr { call, index, role }))
            .collect()
    }

    /// Bytes stored ([`Role::out_size`]).
    fn size(self) -> u64 {
        self.role.out_size().expect("an out-pointer role")
    }

    /// The argument as the docs write it, e.g. `*out: Handle`.
    fn label(self) -> String {
        let name = self.call.args()[self.index].name;
        format!(
            "*{name}: {}",
            self.role.out_type().expect("an out-pointer role")
        )
    }

    /// This file's test of the call; panics naming a call it does not know.
    fn test(self) -> OutCall {
        out_call(self.call).unwrap_or_else(|| {
            panic!(
                "{:?} has an out-pointer in the ABI table but no `out_call` setup here",
                self.call
            )
        })
    }
}

/// Runs every out-pointer row on `vm`; returns the number of rows.
fn run_out_rows(vm: &Vm, lazy: bool, f: &mut Failures) -> usize {
    let mut rows = 0;
    for out in OutPtr::all() {
        let oc = out.test();
        for p in pointer_cases(out.size()) {
            rows += 1;
            let row = row_name(out.call, &out.label(), &p, lazy);
            let (mut args, handles) = (oc.setup)(vm);
            args.resize(args.len().max(out.index + 1), 0);
            args[out.index] = p.ptr;
            let r = out_row(vm, out.call, &oc, &p, &args, &handles);
            for h in handles {
                let _ = vm.guest().handle_close(h);
            }
            f.check(row, r);
        }
    }
    rows
}

fn out_row(
    vm: &Vm,
    c: Call,
    oc: &OutCall,
    p: &Ptr,
    args: &[u64],
    handles: &[Handle],
) -> Result<(), String> {
    let (start, window) = ram_window(vm, p.ptr, p.len);
    fill_ram(vm, start, window.len() as u64, p.ptr as u8);
    let (_, before) = ram_window(vm, p.ptr, p.len);
    let seen = visible(vm);
    let st = call(vm, c, args);
    expect("status", name(st), name(p.want))?;
    let (_, after) = ram_window(vm, p.ptr, p.len);
    if st != ZX_OK {
        expect("RAM around the pointer", after == before, true)?;
        expect("what the guest can see", visible(vm), seen)?;
        return (oc.untouched)(vm, handles);
    }
    // Exactly the `size` bytes at the pointer changed (or kept their value by chance).
    let at = (p.ptr - start) as usize;
    let n = p.len as usize;
    expect("RAM before the out-value", &after[..at], &before[..at])?;
    expect(
        "RAM after the out-value",
        &after[at + n..],
        &before[at + n..],
    )?;
    (oc.stored)(vm, handles, &after[at..at + n])
}

/// A guest buffer of the ABI table: the call, which of its buffers it is (0-based), and the
/// indexes of its pointer and length arguments ([`Call::buffer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Buffer {
    call: Call,
    n: usize,
    ptr: usize,
    len: usize,
}

impl Buffer {
    /// Every buffer of every call, from the ABI table.
    fn all() -> Vec<Buffer> {
        let mut v = Vec::new();
        for call in Call::ALL {
            for n in 0.. {
                let Some((ptr, len)) = call.buffer(n) else {
                    break;
                };
                v.push(Buffer { call, n, ptr, len });
            }
        }
        v
    }

    /// The arguments as the docs name them, e.g. `buf, len`.
    fn label(self) -> String {
        let a = self.call.args();
        format!("{}, {}", a[self.ptr].name, a[self.len].name)
    }

    /// Whether the VMM reads the buffer or writes it.
    fn dir(self) -> Dir {
        self.call.args()[self.ptr].role.dir()
    }

    /// A row's arguments, by role: this buffer is `p`, the call's other buffers hold
    /// [`OTHER_TEXT`] (at [`SCRATCH2`]), handles are `vmo`, a boolean says whether this is the
    /// call's first buffer, and everything else is 0.
    fn args(self, p: &Ptr, vmo: Handle) -> Vec<u64> {
        let args = self.call.args();
        let mut a = vec![0; args.len()];
        for (i, arg) in args.iter().enumerate() {
            match arg.role {
                Role::Handle => a[i] = vmo.into(),
                Role::Bool => a[i] = u64::from(self.n == 0),
                r => {
                    if let Some(len) = r.buf_len() {
                        let (ptr, n) = if i == self.ptr {
                            (p.ptr, p.len)
                        } else {
                            (SCRATCH2, OTHER_TEXT.len() as u64)
                        };
                        (a[i], a[len]) = (ptr, n);
                    }
                }
            }
        }
        a
    }
}

/// The calls with a buffer whose effect `buffer_row` knows how to check.
fn buffer_effect_known(call: Call) -> bool {
    matches!(
        call,
        Call::ConsoleWrite
            | Call::TestReport
            | Call::VmoRead
            | Call::VmoWrite
            | Call::PagerQueryDirtyRanges
            | Call::PagerQueryVmoStats
    )
}

/// A buffer row's arguments: [`Buffer::args`], or for the pager queries the [`PagerQuery`]
/// objects (and the dirty-range counts' out-pointer at [`DIRTY_COUNTS_AT`]).
fn row_args(b: Buffer, p: &Ptr, io_vmo: Handle, q: &PagerQuery) -> Vec<u64> {
    match b.call {
        Call::PagerQueryDirtyRanges => vec![
            q.pager.into(),
            q.vmo.into(),
            0,
            2 * PAGE,
            p.ptr,
            p.len,
            DIRTY_COUNTS_AT,
        ],
        Call::PagerQueryVmoStats => vec![q.pager.into(), q.vmo.into(), 0, p.ptr, p.len],
        _ => b.args(p, io_vmo),
    }
}

/// What the ABI says a buffer row gives: the pointer's status, except that a valid buffer
/// shorter than a `VmoStats` is `ZX_ERR_BUFFER_TOO_SMALL`.
fn row_want(b: Buffer, p: &Ptr) -> Status {
    match b.call {
        Call::PagerQueryVmoStats if p.want == ZX_OK && p.len < 4 => ZX_ERR_BUFFER_TOO_SMALL,
        _ => p.want,
    }
}

/// The other string of a `TestReport` row.
const OTHER_TEXT: &[u8] = b"the other string";

/// Runs every buffer row on `vm`; returns the number of rows.
fn run_buffer_rows(vm: &Vm, lazy: bool, f: &mut Failures) -> usize {
    let io_vmo = vm.guest().vmo_create(IO_VMO_SIZE, 0).unwrap();
    let q = PagerQuery::new(vm);
    let mut rows = 0;
    for b in Buffer::all() {
        for p in buffer_cases() {
            rows += 1;
            let row = row_name(b.call, &b.label(), &p, lazy);
            f.check(row, buffer_row(vm, b, &p, io_vmo, &q));
        }
    }
    q.close(vm);
    vm.guest().handle_close(io_vmo).unwrap();
    rows
}

fn buffer_row(vm: &Vm, b: Buffer, p: &Ptr, io_vmo: Handle, q: &PagerQuery) -> Result<(), String> {
    let (start, window) = ram_window(vm, p.ptr, p.len);
    // Whole-RAM rows keep RAM as it is (their window is all of it).
    if window.len() <= 1 << 16 {
        fill_ram(vm, start, window.len() as u64, p.len as u8);
    }
    vm.ram().write(SCRATCH2, OTHER_TEXT).unwrap();
    let pattern: Vec<u8> = (0..IO_VMO_SIZE)
        .map(|i| (i % 251) as u8 ^ p.ptr as u8)
        .collect();
    let vmo_io = matches!(b.call, Call::VmoRead | Call::VmoWrite);
    if vmo_io {
        vm.guest().vmo_write(io_vmo, &pattern, 0).unwrap();
    }
    let (_, before) = ram_window(vm, p.ptr, p.len);
    let console = vm.console().contents();
    let seen = visible(vm);
    let st = call(vm, b.call, &row_args(b, p, io_vmo, q));
    expect("status", name(st), name(row_want(b, p)))?;
    let (_, after) = ram_window(vm, p.ptr, p.len);
    if st != ZX_OK {
        expect("RAM around the buffer", after == before, true)?;
        expect("what the guest can see", visible(vm), seen)?;
        if vmo_io {
            expect("the VMO's contents", vmo_bytes(vm, io_vmo) == pattern, true)?;
        }
        return Ok(());
    }
    let done = Done {
        start,
        before: &before,
        after: &after,
        console,
        seen,
        pattern: &pattern,
        io_vmo,
    };
    buffer_effect(vm, b, p, &done)?;
    if b.dir() == Dir::In {
        expect("RAM (the call only reads it)", after == before, true)?;
    }
    Ok(())
}

/// What a successful buffer row saw, for [`buffer_effect`].
struct Done<'a> {
    /// Start of the RAM window around the buffer, and the window before and after the call.
    start: u64,
    before: &'a [u8],
    after: &'a [u8],
    /// The console and what the guest could see before the call.
    console: Vec<u8>,
    seen: Visible,
    /// The I/O VMO's contents before the call.
    pattern: &'a [u8],
    io_vmo: Handle,
}

/// Checks that a successful call did exactly what it should with the buffer.
fn buffer_effect(vm: &Vm, b: Buffer, p: &Ptr, d: &Done) -> Result<(), String> {
    // What the buffer held (for VmoRead: what it holds now).
    let buf = |max: u64| {
        let n = p.len.min(max);
        if n == 0 {
            Vec::new()
        } else {
            ram(vm, p.ptr, n)
        }
    };
    let n = p.len as usize;
    match b.call {
        Call::ConsoleWrite => {
            let mut want = d.console.clone();
            want.extend(buf(MAX_WRITE));
            expect("the console", vm.console().contents() == want, true)
        }
        Call::TestReport => {
            let reports = vm.reports().all();
            expect("number of reports", reports.len(), d.seen.reports + 1)?;
            let r = reports.last().unwrap();
            let text = String::from_utf8_lossy(&buf(MAX_REPORT_TEXT)).into_owned();
            let other = String::from_utf8_lossy(OTHER_TEXT).into_owned();
            let (want_name, want_msg) = match b.n {
                0 => (text, other),
                _ => (other, text),
            };
            expect("report name", &r.name, &want_name)?;
            expect("report message", &r.message, &want_msg)?;
            expect("report passed", r.passed, b.n == 0)
        }
        Call::VmoRead => {
            expect("RAM read into", buf(u64::MAX) == d.pattern[..n], true)?;
            let at = (p.ptr.min(RAM) - d.start) as usize;
            let end = (at + n).min(d.after.len());
            expect("RAM before the buffer", &d.after[..at], &d.before[..at])?;
            expect("RAM after the buffer", &d.after[end..], &d.before[end..])
        }
        Call::VmoWrite => {
            let got = vmo_bytes(vm, d.io_vmo);
            let written = got[..n] == buf(u64::MAX)[..];
            expect("the VMO's written bytes", written, true)?;
            expect("the VMO's other bytes", got[n..] == d.pattern[n..], true)
        }
        Call::PagerQueryDirtyRanges => {
            // Entries that fit (24 bytes each; one is found) are stored at the buffer's start.
            let entry: Vec<u8> = DIRTY_ENTRY.iter().flat_map(|w| w.to_le_bytes()).collect();
            let counts = ram(vm, DIRTY_COUNTS_AT, 16);
            let mut want = d.before.to_vec();
            let at = (p.ptr.min(RAM) - d.start) as usize;
            if n >= 24 {
                want[at..at + 24].copy_from_slice(&entry);
            }
            // Whole-RAM windows hold the counts' out-pointer too.
            let counts_at = DIRTY_COUNTS_AT.checked_sub(d.start).map(|o| o as usize);
            if let Some(o) = counts_at.filter(|&o| o + 16 <= want.len()) {
                want[o..o + 16].copy_from_slice(&counts);
            }
            expect("RAM around the buffer", d.after == &want[..], true)?;
            expect("DirtyCounts.actual", u64_at(&counts, 0), u64::from(n >= 24))?;
            expect("DirtyCounts.avail", u64_at(&counts, 8), 1)
        }
        Call::PagerQueryVmoStats => stored_prefix(p, d, &1u32.to_le_bytes()),
        c => {
            assert!(!buffer_effect_known(c));
            Err(format!(
                "{c:?} has a buffer in the ABI table but `buffer_effect` cannot check it"
            ))
        }
    }
}

/// The RAM window changed exactly by `want` stored at the buffer's start.
fn stored_prefix(p: &Ptr, d: &Done, want: &[u8]) -> Result<(), String> {
    let at = (p.ptr.min(RAM) - d.start) as usize;
    let end = at + want.len();
    expect("RAM before the buffer", &d.after[..at], &d.before[..at])?;
    expect("the stored bytes", &d.after[at..end], want)?;
    expect(
        "RAM after the stored bytes",
        &d.after[end..],
        &d.before[end..],
    )
}

// ================================================================================================
// Tests
// ================================================================================================

/// Every RAM pointer of the ABI table has rows: this file knows how to set up each call with an
/// out-pointer and how to check each call with a buffer (a new call fails here, by name).
/// `VmarMap`/`VmarUnmap` take aperture addresses ([`Role::Gpa`]), not RAM pointers: see
/// `vmar_gpas_give_the_aperture_statuses`.
#[test]
fn every_pointer_argument_has_rows() {
    let outs = OutPtr::all();
    for out in &outs {
        let _ = out.test();
    }
    let buffers = Buffer::all();
    for b in &buffers {
        assert!(
            buffer_effect_known(b.call),
            "{:?} `{}` has no buffer check",
            b.call,
            b.label()
        );
    }
    let pointers: usize = Call::ALL
        .iter()
        .map(|c| c.args().iter().filter(|a| a.role.is_ram_pointer()).count())
        .sum();
    assert_eq!(outs.len() + buffers.len(), pointers);
    assert_eq!((outs.len(), buffers.len()), (11, 7));
}

#[test]
fn out_pointers_follow_the_abi_rules() {
    if skip_without_kvm() {
        return;
    }
    rows_on_plain_and_lazy_ram(run_out_rows, "out-pointer");
}

#[test]
fn buffers_follow_the_abi_rules() {
    if skip_without_kvm() {
        return;
    }
    rows_on_plain_and_lazy_ram(run_buffer_rows, "buffer");
}

/// Runs a group of rows on a VM with plain RAM and one with lazy RAM; fails on any mismatch.
fn rows_on_plain_and_lazy_ram(run: fn(&Vm, bool, &mut Failures) -> usize, what: &str) {
    let mut f = Failures::default();
    let mut rows = 0;
    for lazy in [false, true] {
        let vm = vm(lazy);
        rows += run(&vm, lazy, &mut f);
        vm.kill_processes();
    }
    f.assert_none(rows, what);
}

/// `VmoRead`/`VmoWrite` of a pager VMO with a bad buffer: the pointer check comes "before the
/// call has any effect", so no page request is sent and the call does not block.
#[test]
fn a_bad_buffer_sends_no_page_request() {
    if skip_without_kvm() {
        return;
    }
    let vm = vm(false);
    let g = vm.guest();
    let mut f = Failures::default();
    let cases = [
        bad("exactly at the end of RAM", RAM, PAGE),
        bad("null", 0, PAGE),
    ];
    for c in [Call::VmoRead, Call::VmoWrite] {
        for p in cases {
            let row = row_name(c, "buf, len (pager VMO, absent pages)", &p, false);
            let pager = g.pager_create(0).unwrap();
            let port = g.port_create(0).unwrap();
            let vmo = g.pager_create_vmo(pager, 0, port, KEY, PAGE).unwrap();
            let (tx, rx) = mpsc::channel();
            let vm2 = vm.clone();
            let args = [vmo.into(), p.ptr, 0, p.len];
            let t = std::thread::spawn(move || tx.send(call(&vm2, c, &args)).unwrap());
            let r = match rx.recv_timeout(Duration::from_secs(2)) {
                Ok(st) => expect("status", name(st), name(p.want)).and_then(|_| {
                    expect(
                        "packets queued",
                        g.port_wait(port, Some(Instant::now())).map(|_| ()),
                        Err(ZX_ERR_TIMED_OUT),
                    )
                }),
                Err(_) => {
                    let packet = g.port_wait(port, Some(Instant::now()));
                    g.pager_detach_vmo(pager, vmo).unwrap(); // releases the call
                    let st = rx
                        .recv_timeout(Duration::from_secs(5))
                        .expect("released by the detach");
                    Err(format!(
                        "the call blocked (sent {packet:?}) until the VMO was detached, \
                         then returned {}",
                        name(st)
                    ))
                }
            };
            t.join().unwrap();
            for h in [vmo, port, pager] {
                let _ = g.handle_close(h);
            }
            f.check(row, r);
        }
    }
    vm.kill_processes();
    f.assert_none(4, "pager-VMO buffer");
}

/// One `VmarMap`/`VmarUnmap` row.
struct GpaRow {
    call: Call,
    case: &'static str,
    gpa: u64,
    len: u64,
    want: Status,
}

const fn gpa_row(call: Call, case: &'static str, gpa: u64, len: u64, want: Status) -> GpaRow {
    GpaRow {
        call,
        case,
        gpa,
        len,
        want,
    }
}

/// `VmarMap`/`VmarUnmap` take guest-physical addresses in the aperture, not RAM pointers: their
/// statuses are `aperture.rs`'s (`Aperture::reserve`: zero or unaligned `gpa`/`len` is
/// INVALID_ARGS, outside the aperture or wrapping OUT_OF_RANGE, overlapping ALREADY_EXISTS;
/// `Aperture::find`: no mapping starting at `gpa` is NOT_FOUND, a `len` that is not the
/// mapping's INVALID_ARGS). A failed call leaves the mappings as they were.
#[test]
fn vmar_gpas_give_the_aperture_statuses() {
    if skip_without_kvm() {
        return;
    }
    use Call::{VmarMap as Map, VmarUnmap as Unmap};
    let (a, e, top) = (APERTURE_START, APERTURE_END, !(PAGE - 1)); // top: highest page
    let (inval, range) = (ZX_ERR_INVALID_ARGS, ZX_ERR_OUT_OF_RANGE);
    let (exists, none) = (ZX_ERR_ALREADY_EXISTS, ZX_ERR_NOT_FOUND);
    let len = MAPPED_LEN;
    let rows = [
        gpa_row(Map, "unaligned gpa", a + 1, PAGE, inval),
        gpa_row(
            Map,
            "unaligned gpa outside the aperture",
            RAM + 1,
            PAGE,
            inval,
        ),
        gpa_row(Map, "unaligned len", a, PAGE + 1, inval),
        gpa_row(Map, "zero len", a, 0, inval),
        gpa_row(Map, "null", 0, PAGE, range),
        gpa_row(Map, "in RAM", SCRATCH, PAGE, range),
        gpa_row(Map, "in the hole above RAM", RAM, PAGE, range),
        gpa_row(
            Map,
            "straddling the aperture start",
            a - PAGE,
            2 * PAGE,
            range,
        ),
        gpa_row(
            Map,
            "straddling the aperture end",
            e - PAGE,
            2 * PAGE,
            range,
        ),
        gpa_row(Map, "above the aperture", e, PAGE, range),
        gpa_row(Map, "gpa + len wrapping", top, 2 * PAGE, range),
        gpa_row(Map, "len wrapping", a, top, range),
        gpa_row(
            Map,
            "overlapping the mapped VMO",
            MAPPED + PAGE,
            PAGE,
            exists,
        ),
        gpa_row(Map, "the aperture's first page", a, PAGE, ZX_OK),
        gpa_row(Map, "the aperture's last page", e - PAGE, PAGE, ZX_OK),
        gpa_row(Unmap, "unaligned gpa", MAPPED + 1, len, none),
        gpa_row(Unmap, "null", 0, len, none),
        gpa_row(Unmap, "in RAM", SCRATCH, len, none),
        gpa_row(Unmap, "in the hole", RAM, len, none),
        gpa_row(Unmap, "inside the mapping", MAPPED + PAGE, PAGE, none),
        gpa_row(Unmap, "above the aperture", e, len, none),
        gpa_row(Unmap, "wrapping", top, len, none),
        gpa_row(Unmap, "len not the mapping's", MAPPED, PAGE, inval),
        gpa_row(Unmap, "len u64::MAX", MAPPED, u64::MAX, inval),
        gpa_row(Unmap, "zero len", MAPPED, 0, inval),
        gpa_row(Unmap, "the aperture's first page", a, PAGE, ZX_OK),
        gpa_row(Unmap, "the aperture's last page", e - PAGE, PAGE, ZX_OK),
        gpa_row(Unmap, "the mapped VMO", MAPPED, len, ZX_OK),
        gpa_row(Unmap, "the mapped VMO again", MAPPED, len, none),
    ];
    let mut f = Failures::default();
    let mut n = 0;
    for lazy in [false, true] {
        let vm = vm(lazy);
        let g = vm.guest();
        let vmo = g.vmo_create(2 * PAGE, 0).unwrap();
        let rw = u64::from(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE);
        let mut maps = 1; // the setup's mapping at MAPPED
        for r in &rows {
            n += 1;
            let row = format!(
                "{:?} `gpa, len` {} (gpa {:#x}, len {:#x}, lazy RAM {lazy})",
                r.call, r.case, r.gpa, r.len
            );
            let before = (g.vmo_get_info(vmo).unwrap().mappings, g.handle_count());
            let st = match r.call {
                Map => call(&vm, Map, &[rw, r.gpa, vmo.into(), 0, r.len]),
                _ => call(&vm, Unmap, &[r.gpa, r.len]),
            };
            let mut res = expect("status", name(st), name(r.want));
            if st == ZX_OK {
                maps = if r.call == Map { maps + 1 } else { maps - 1 };
            } else {
                let after = (g.vmo_get_info(vmo).unwrap().mappings, g.handle_count());
                res = res.and(expect("(VMO mappings, handles)", after, before));
            }
            f.check(row, res);
        }
        // Every mapping the rows made was unmapped again; the setup's one too.
        f.check(
            format!("aperture after the rows (lazy RAM {lazy})"),
            expect("live mappings", maps, 0),
        );
        g.handle_close(vmo).unwrap();
        vm.kill_processes();
    }
    f.assert_none(n, "VmarMap/VmarUnmap");
}
