//! Hypercalls: decode the call number and arguments from the registers, then handle the call
//! on the guest's [`Process`](crate::kernel::Process), writing results to guest memory
//! (out-pointers) and the status to `rax`.
//!
//! Guest pointers are guest-physical and are checked against guest RAM *before* the kernel
//! call, so an invalid out-pointer fails with `ZX_ERR_INVALID_ARGS` without side effects.
//! Which register holds a call's out-pointer or buffer, and how many bytes the out-value has,
//! comes from the ABI's argument table ([`Call::args`]); the handlers name only the plain
//! arguments (handles, values, options) by position.

use kvm_bindings::kvm_regs;
use kvmpager::abi::status::*;
use kvmpager::abi::{
    Call, Dir, DirtyCounts, DirtyRange, Handle, Status, VmoStats, ZX_TIME_INFINITE,
};
use vm_memory::ByteValued;

use crate::console::{MAX_REPORT_TEXT, MAX_WRITE, TestReport};
use crate::exit::StopReason;
use crate::vm::Vm;

/// A decoded hypercall: the raw call number and its eight arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hypercall {
    /// `rax`.
    pub nr: u64,
    /// `rdi, rsi, rdx, r10, r8, r9, r12, r13`.
    pub args: [u64; 8],
}

/// Reads a hypercall from the registers.
pub fn decode(r: &kvm_regs) -> Hypercall {
    Hypercall {
        nr: r.rax,
        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9, r.r12, r.r13],
    }
}

/// What the vCPU does after a hypercall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put this value in `rax` and resume.
    Return(i64),
    /// Stop the VM.
    Stop(StopReason),
}

type CallResult = Result<i64, Status>;

/// Bytes copied per step by `VmoRead`/`VmoWrite` (bounds host memory per call).
const COPY_CHUNK: u64 = 64 << 10;

/// Wrapper so `VmoInfo` can go through `Bytes::write_obj` (`PortPacket` is written as its
/// `to_bytes()` instead).
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
struct Plain<T>(T);
// SAFETY: `VmoInfo` is `repr(C)` with only integer fields and no padding (48 bytes, asserted
// in `abi.rs`).
unsafe impl ByteValued for Plain<kvmpager::abi::VmoInfo> {}
// SAFETY: `DirtyRange` is `repr(C)`, three `u64`s, no padding (24 bytes, asserted in `abi.rs`).
unsafe impl ByteValued for Plain<DirtyRange> {}
// SAFETY: `DirtyCounts` is `repr(C)`, two `u64`s, no padding (16 bytes, asserted in `abi.rs`).
unsafe impl ByteValued for Plain<DirtyCounts> {}
// SAFETY: `VmoStats` is `repr(C)`, one `u32`, no padding.
unsafe impl ByteValued for Plain<VmoStats> {}

fn h(v: u64) -> Handle {
    v as Handle
}

/// Handles `hc` for vCPU `vcpu` of `vm`.
pub fn handle(vm: &Vm, vcpu: u32, hc: Hypercall) -> Outcome {
    let Some(call) = Call::from_nr(hc.nr) else {
        return Outcome::Return(ZX_ERR_BAD_SYSCALL.into());
    };
    if let Call::Exit = call {
        return Outcome::Stop(StopReason::Exit(hc.args[0] as i64));
    }
    let a = hc.args;
    let r = match call {
        Call::Null => Ok(0),
        Call::ConsoleWrite => console_write(vm, buffer(call, &a, 0)),
        Call::ClockGetMonotonic => Ok(vm.now_ns()),
        Call::VcpuCount => Ok(vm.vcpus().into()),
        Call::TestReport => test_report(vm, call, a),
        Call::Snapshot => vm.request_snapshot(vcpu).map(|_| 0),
        Call::VmarMap => vm
            .map_vmo(a[0] as u32, a[1], h(a[2]), a[3], a[4])
            .map(|_| 0),
        Call::VmarUnmap => vm.unmap_vmo(a[0], a[1]).map(|_| 0),
        _ => kernel_call(vm, call, a),
    };
    log::trace!("vCPU {vcpu}: {call:?}{:x?} -> {r:?}", &a[..]);
    Outcome::Return(r.unwrap_or_else(i64::from))
}

/// Calls that go straight to the guest's process.
fn kernel_call(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let p = vm.guest();
    match call {
        Call::HandleClose => p.handle_close(h(a[0])).map(ok),
        Call::HandleDuplicate => {
            out_handle(vm, call, a, || p.handle_duplicate(h(a[0]), a[1] as u32))
        }
        Call::HandleReplace => out_handle(vm, call, a, || p.handle_replace(h(a[0]), a[1] as u32)),
        Call::VmoCreate => out_handle(vm, call, a, || p.vmo_create(a[0], a[1] as u32)),
        Call::VmoRead | Call::VmoWrite => vmo_copy(vm, h(a[0]), buffer(call, &a, 0), a[2], call),
        Call::VmoGetSize => out_u64(vm, call, a, || p.vmo_get_size(h(a[0]))),
        Call::VmoOpRange => p.vmo_op_range(h(a[0]), a[1] as u32, a[2], a[3]).map(ok),
        Call::VmoCreateChild => out_handle(vm, call, a, || {
            p.vmo_create_child(h(a[0]), a[1] as u32, a[2], a[3])
        }),
        Call::VmoGetInfo => vmo_get_info(vm, call, a),
        Call::VmoSetSize => p.vmo_set_size(h(a[0]), a[1]).map(ok),
        _ => pager_call(vm, call, a),
    }
}

/// Pager and port calls.
fn pager_call(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let p = vm.guest();
    match call {
        Call::PagerCreate => out_handle(vm, call, a, || p.pager_create(a[0] as u32)),
        Call::PagerCreateVmo => out_handle(vm, call, a, || {
            p.pager_create_vmo(h(a[0]), a[1] as u32, h(a[2]), a[3], a[4])
        }),
        Call::PagerDetachVmo => p.pager_detach_vmo(h(a[0]), h(a[1])).map(ok),
        Call::PagerVmoOp => p
            .pager_vmo_op(h(a[0]), h(a[1]), a[2] as u32, a[3], a[4], h(a[5]), a[6])
            .map(ok),
        Call::PagerSupplyPages => p
            .pager_supply_pages(h(a[0]), h(a[1]), a[2], a[3], h(a[4]), a[5])
            .map(ok),
        Call::PagerOpRange => p
            .pager_op_range(h(a[0]), a[1] as u32, h(a[2]), a[3], a[4], a[5])
            .map(ok),
        Call::PortCreate => out_handle(vm, call, a, || p.port_create(a[0] as u32)),
        Call::PortWait => port_wait(vm, call, a),
        Call::PagerQueryDirtyRanges => query_dirty_ranges(vm, call, a),
        Call::PagerQueryVmoStats => query_vmo_stats(vm, call, a),
        Call::KvmpagerSetExceptionPort => p.set_exception_port(h(a[0]), a[1]).map(ok),
        _ => Err(ZX_ERR_BAD_SYSCALL),
    }
}

fn ok(_: ()) -> i64 {
    0
}

/// The call's out-pointer, checked against RAM for the size of its out-value: the register
/// and the size are the ABI table's ([`Call::out`], [`Role::out_size`](kvmpager::abi::Role)).
fn checked_out(vm: &Vm, call: Call, a: &[u64; 8]) -> Result<u64, Status> {
    let (index, role) = call.out().ok_or(ZX_ERR_INTERNAL)?;
    vm.ram()
        .check(a[index], role.out_size().ok_or(ZX_ERR_INTERNAL)?)?;
    Ok(a[index])
}

/// The call's `n`-th guest buffer `(pointer, length)`, from the registers the ABI table names
/// ([`Call::buffer`]); 0-length when the call has none (the handlers only ask for real ones).
fn buffer(call: Call, a: &[u64; 8], n: usize) -> (u64, u64) {
    call.buffer(n).map_or((0, 0), |(ptr, len)| (a[ptr], a[len]))
}

/// Runs `f` (which creates a handle) after checking the out-pointer, then stores the handle.
fn out_handle(
    vm: &Vm,
    call: Call,
    a: [u64; 8],
    f: impl FnOnce() -> Result<Handle, Status>,
) -> CallResult {
    let out = checked_out(vm, call, &a)?;
    let handle = f()?;
    if let Err(s) = vm.ram().write_obj(out, handle) {
        let _ = vm.guest().handle_close(handle);
        return Err(s);
    }
    Ok(0)
}

fn out_u64(
    vm: &Vm,
    call: Call,
    a: [u64; 8],
    f: impl FnOnce() -> Result<u64, Status>,
) -> CallResult {
    let out = checked_out(vm, call, &a)?;
    vm.ram().write_obj(out, f()?)?;
    Ok(0)
}

/// `ConsoleWrite`: the whole buffer must be valid; at most [`MAX_WRITE`] bytes of it are kept.
fn console_write(vm: &Vm, (buf, len): (u64, u64)) -> CallResult {
    vm.ram().check(buf, len)?;
    let data = vm.ram().read(buf, len.min(MAX_WRITE))?;
    vm.console().write(&data);
    Ok(0)
}

/// A `TestReport` string: the whole buffer must be valid; at most [`MAX_REPORT_TEXT`] bytes
/// of it are kept.
fn read_text(vm: &Vm, gpa: u64, len: u64) -> Result<String, Status> {
    vm.ram().check(gpa, len)?;
    let bytes = vm.ram().read(gpa, len.min(MAX_REPORT_TEXT))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn test_report(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let ((name, name_len), (msg, msg_len)) = (buffer(call, &a, 0), buffer(call, &a, 1));
    vm.ram().check(msg, msg_len)?;
    let name = read_text(vm, name, name_len)?;
    let message = read_text(vm, msg, msg_len)?;
    vm.reports().push(TestReport {
        name,
        passed: a[2] != 0,
        message,
    });
    Ok(0)
}

/// Which way `vmo_copy` copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `VmoRead`: from the VMO into guest RAM.
    VmoToRam,
    /// `VmoWrite`: from guest RAM into the VMO.
    RamToVmo,
}

impl Direction {
    /// The way `call`'s buffer goes: written (`BufOut`, `VmoRead`) or read (`BufIn`,
    /// `VmoWrite`), as the ABI table says.
    fn of(call: Call) -> Direction {
        let out = call
            .buffer(0)
            .is_some_and(|(i, _)| call.args()[i].role.dir() == Dir::Out);
        if out {
            Direction::VmoToRam
        } else {
            Direction::RamToVmo
        }
    }
}

/// `VmoRead`/`VmoWrite`: checks the RAM range, then the whole VMO range (asking for its pages),
/// then copies `len` bytes between `vmo[offset..]` and RAM at `buf` in pieces of at
/// most [`COPY_CHUNK`].
fn vmo_copy(vm: &Vm, vmo: Handle, (buf, len): (u64, u64), offset: u64, call: Call) -> CallResult {
    let dir = Direction::of(call);
    vm.ram().check(buf, len)?;
    vm.guest()
        .vmo_prepare_io(vmo, offset, len, dir == Direction::RamToVmo)?;
    let mut tmp = vec![0u8; len.min(COPY_CHUNK) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(COPY_CHUNK) as usize;
        match dir {
            Direction::VmoToRam => {
                vm.guest().vmo_read(vmo, &mut tmp[..n], offset + done)?;
                vm.ram().write(buf + done, &tmp[..n])?;
            }
            Direction::RamToVmo => {
                vm.ram().read_into(buf + done, &mut tmp[..n])?;
                vm.guest().vmo_write(vmo, &tmp[..n], offset + done)?;
            }
        }
        done += n as u64;
    }
    Ok(0)
}

fn vmo_get_info(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let out = checked_out(vm, call, &a)?;
    let info = vm.guest().vmo_get_info(h(a[0]))?;
    vm.ram().write_obj(out, Plain(info))?;
    Ok(0)
}

/// `PagerQueryDirtyRanges`: the buffer and the out-pointer are checked first (the buffer
/// whole), then the kernel call; as many [`DirtyRange`]s as fit in `buffer_size` bytes are
/// stored, then the counts.
fn query_dirty_ranges(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let (buf, size) = buffer(call, &a, 0);
    vm.ram().check(buf, size)?;
    let out = checked_out(vm, call, &a)?;
    let entry = std::mem::size_of::<DirtyRange>() as u64;
    let max = usize::try_from(size / entry).unwrap_or(usize::MAX);
    let (ranges, avail) = vm
        .guest()
        .pager_query_dirty_ranges(h(a[0]), h(a[1]), a[2], a[3], max)?;
    for (i, r) in ranges.iter().enumerate() {
        vm.ram().write_obj(buf + i as u64 * entry, Plain(*r))?;
    }
    let counts = DirtyCounts {
        actual: ranges.len() as u64,
        avail,
    };
    vm.ram().write_obj(out, Plain(counts))?;
    Ok(0)
}

/// `PagerQueryVmoStats`: the buffer is checked first (whole), then the kernel call; the
/// 4-byte [`VmoStats`] is stored at its start.
fn query_vmo_stats(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let (buf, size) = buffer(call, &a, 0);
    vm.ram().check(buf, size)?;
    let stats = vm
        .guest()
        .pager_query_vmo_stats(h(a[0]), h(a[1]), a[2] as u32, size)?;
    vm.ram().write_obj(buf, Plain(stats))?;
    Ok(0)
}

fn port_wait(vm: &Vm, call: Call, a: [u64; 8]) -> CallResult {
    let (port, deadline_ns) = (h(a[0]), a[1] as i64);
    let out = checked_out(vm, call, &a)?;
    let deadline = (deadline_ns != ZX_TIME_INFINITE).then(|| vm.instant_at(deadline_ns));
    let packet = vm.guest().port_wait(port, deadline)?;
    vm.ram().write(out, &packet.to_bytes())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_uses_the_abi_registers() {
        let r = kvm_regs {
            rax: 7,
            rdi: 1,
            rsi: 2,
            rdx: 3,
            r10: 4,
            r8: 5,
            r9: 6,
            r12: 7,
            r13: 8,
            rcx: 99,
            ..Default::default()
        };
        assert_eq!(
            decode(&r),
            Hypercall {
                nr: 7,
                args: [1, 2, 3, 4, 5, 6, 7, 8]
            }
        );
    }
}
