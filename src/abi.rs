//! The kvmpager guest ABI, defined once for the host (VMM, pager kernel) and the guests.
//!
//! This module is `no_std` and dependency-free so bare-metal guest programs can use it.
//! Everything a guest needs to talk to kvmpager is here: the hypercall doorbell, call numbers,
//! register convention, Zircon status codes, rights, object types, options, op codes and the
//! 48-byte port packet. `README.md` ("Hypercall ABI") explains the same in prose.
//!
//! # Hypercall convention (x86-64)
//! A guest running at CPL 3 (RFLAGS.IOPL = 3) executes `out HYPERCALL_PORT, eax` — the
//! immediate-port form, so `dx` stays free — with `rax` = call number ([`Call`]) and the
//! arguments in `rdi, rsi, rdx, r10, r8, r9, r12, r13` (Zircon's x86-64 syscall order, extended
//! by two). The VMM reads and writes registers through `KVM_CAP_SYNC_REGS`, so a hypercall costs
//! exactly one exit and no extra ioctl.
//!
//! | register | meaning |
//! |---|---|
//! | `rax` | call number in; status (or value, where documented) out, sign-extended to 64 bits |
//! | `rdi, rsi, rdx, r10, r8, r9, r12, r13` | arguments 1–8 |
//!
//! All other registers are preserved. An unknown call number returns `ZX_ERR_BAD_SYSCALL`.
//!
//! # Guest pointers
//! Guest pointers are guest-physical addresses into guest RAM. Every pointer/length pair is
//! checked by the VMM before the call has any effect, and gives `ZX_ERR_INVALID_ARGS` when it
//! - touches the null page (`0..PAGE_SIZE`), so a null pointer with a non-zero length fails;
//! - reaches past the end of RAM (straddling it included);
//! - lies in a hole: anything that is not RAM, the VMO aperture included (map a VMO to touch
//!   it, but pass RAM buffers to calls);
//! - overflows (`pointer + length` wraps).
//!
//! A zero-length buffer is never dereferenced and is always accepted. Pointers need no
//! alignment: out-values are stored byte-wise at whatever address is given.

/// Version of this ABI; bump on any incompatible change. 2: [`VmoInfo`] grew to 48 bytes
/// (`koid`), guest pointers may not touch the null page.
pub const ABI_VERSION: u32 = 2;

/// I/O port a guest writes (`out 0xe1, eax`, 32-bit, immediate form) to make a hypercall.
pub const HYPERCALL_PORT: u16 = 0xe1;
/// I/O port the CPL-0 exception stub writes to report a guest exception (see [`ExceptionReport`]).
pub const EXCEPTION_PORT: u16 = 0xe2;

/// Guest page size in bytes; the pager works in units of this size.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a huge (2 MiB) page.
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// A Zircon handle value. `ZX_HANDLE_INVALID` (0) is never a valid handle.
pub type Handle = u32;
/// A Zircon status code (`zx_status_t`).
pub type Status = i32;
/// Zircon rights bits (`zx_rights_t`).
pub type Rights = u32;

/// The invalid handle.
pub const ZX_HANDLE_INVALID: Handle = 0;

/// Zircon status codes (values from `zircon/errors.h`).
pub mod status {
    use super::Status;
    /// Success.
    pub const ZX_OK: Status = 0;
    /// Internal error.
    pub const ZX_ERR_INTERNAL: Status = -1;
    /// Operation not supported.
    pub const ZX_ERR_NOT_SUPPORTED: Status = -2;
    /// Out of a non-memory resource.
    pub const ZX_ERR_NO_RESOURCES: Status = -3;
    /// Out of memory.
    pub const ZX_ERR_NO_MEMORY: Status = -4;
    /// Invalid argument.
    pub const ZX_ERR_INVALID_ARGS: Status = -10;
    /// Handle does not name an object.
    pub const ZX_ERR_BAD_HANDLE: Status = -11;
    /// Object is of the wrong type.
    pub const ZX_ERR_WRONG_TYPE: Status = -12;
    /// Unknown call number.
    pub const ZX_ERR_BAD_SYSCALL: Status = -13;
    /// Argument outside the valid range.
    pub const ZX_ERR_OUT_OF_RANGE: Status = -14;
    /// Buffer too small.
    pub const ZX_ERR_BUFFER_TOO_SMALL: Status = -15;
    /// Object in the wrong state for the operation.
    pub const ZX_ERR_BAD_STATE: Status = -20;
    /// Deadline passed.
    pub const ZX_ERR_TIMED_OUT: Status = -21;
    /// Try again later.
    pub const ZX_ERR_SHOULD_WAIT: Status = -22;
    /// Operation cancelled.
    pub const ZX_ERR_CANCELED: Status = -23;
    /// Peer closed.
    pub const ZX_ERR_PEER_CLOSED: Status = -24;
    /// Not found.
    pub const ZX_ERR_NOT_FOUND: Status = -25;
    /// Already exists.
    pub const ZX_ERR_ALREADY_EXISTS: Status = -26;
    /// Unavailable.
    pub const ZX_ERR_UNAVAILABLE: Status = -28;
    /// Missing rights.
    pub const ZX_ERR_ACCESS_DENIED: Status = -30;
    /// I/O error.
    pub const ZX_ERR_IO: Status = -40;
    /// Data integrity error.
    pub const ZX_ERR_IO_DATA_INTEGRITY: Status = -42;
    /// No space.
    pub const ZX_ERR_NO_SPACE: Status = -54;

    /// Zircon's name of a status code, for messages and test output.
    pub const fn name(status: Status) -> &'static str {
        match status {
            ZX_OK => "ZX_OK",
            ZX_ERR_INTERNAL => "ZX_ERR_INTERNAL",
            ZX_ERR_NOT_SUPPORTED => "ZX_ERR_NOT_SUPPORTED",
            ZX_ERR_NO_RESOURCES => "ZX_ERR_NO_RESOURCES",
            ZX_ERR_NO_MEMORY => "ZX_ERR_NO_MEMORY",
            ZX_ERR_INVALID_ARGS => "ZX_ERR_INVALID_ARGS",
            ZX_ERR_BAD_HANDLE => "ZX_ERR_BAD_HANDLE",
            ZX_ERR_WRONG_TYPE => "ZX_ERR_WRONG_TYPE",
            ZX_ERR_BAD_SYSCALL => "ZX_ERR_BAD_SYSCALL",
            ZX_ERR_OUT_OF_RANGE => "ZX_ERR_OUT_OF_RANGE",
            ZX_ERR_BUFFER_TOO_SMALL => "ZX_ERR_BUFFER_TOO_SMALL",
            ZX_ERR_BAD_STATE => "ZX_ERR_BAD_STATE",
            ZX_ERR_TIMED_OUT => "ZX_ERR_TIMED_OUT",
            ZX_ERR_SHOULD_WAIT => "ZX_ERR_SHOULD_WAIT",
            ZX_ERR_CANCELED => "ZX_ERR_CANCELED",
            ZX_ERR_PEER_CLOSED => "ZX_ERR_PEER_CLOSED",
            ZX_ERR_NOT_FOUND => "ZX_ERR_NOT_FOUND",
            ZX_ERR_ALREADY_EXISTS => "ZX_ERR_ALREADY_EXISTS",
            ZX_ERR_UNAVAILABLE => "ZX_ERR_UNAVAILABLE",
            ZX_ERR_ACCESS_DENIED => "ZX_ERR_ACCESS_DENIED",
            ZX_ERR_IO => "ZX_ERR_IO",
            ZX_ERR_IO_DATA_INTEGRITY => "ZX_ERR_IO_DATA_INTEGRITY",
            ZX_ERR_NO_SPACE => "ZX_ERR_NO_SPACE",
            _ => "ZX_ERR_<unknown>",
        }
    }
}

/// Rights bits (values from `zircon/rights.h`).
pub mod rights {
    use super::Rights;
    /// May be duplicated.
    pub const ZX_RIGHT_DUPLICATE: Rights = 1 << 0;
    /// May be transferred.
    pub const ZX_RIGHT_TRANSFER: Rights = 1 << 1;
    /// May be read (VMO contents, port packets).
    pub const ZX_RIGHT_READ: Rights = 1 << 2;
    /// May be written.
    pub const ZX_RIGHT_WRITE: Rights = 1 << 3;
    /// May be mapped executable.
    pub const ZX_RIGHT_EXECUTE: Rights = 1 << 4;
    /// May be mapped.
    pub const ZX_RIGHT_MAP: Rights = 1 << 5;
    /// Properties may be read.
    pub const ZX_RIGHT_GET_PROPERTY: Rights = 1 << 6;
    /// Properties may be set.
    pub const ZX_RIGHT_SET_PROPERTY: Rights = 1 << 7;
    /// May be signalled.
    pub const ZX_RIGHT_SIGNAL: Rights = 1 << 12;
    /// May be waited on.
    pub const ZX_RIGHT_WAIT: Rights = 1 << 14;
    /// May be inspected.
    pub const ZX_RIGHT_INSPECT: Rights = 1 << 15;
    /// May be resized.
    pub const ZX_RIGHT_RESIZE: Rights = 1 << 22;
    /// Pager: may create and detach VMOs.
    pub const ZX_RIGHT_ATTACH_VMO: Rights = 1 << 23;
    /// Pager: may supply, fail and otherwise manage pages.
    pub const ZX_RIGHT_MANAGE_VMO: Rights = 1 << 24;
    /// Special value for duplicate/replace: keep the same rights.
    pub const ZX_RIGHT_SAME_RIGHTS: Rights = 1 << 31;

    /// Rights of a new pager handle.
    pub const ZX_DEFAULT_PAGER_RIGHTS: Rights =
        ZX_RIGHT_INSPECT | ZX_RIGHT_TRANSFER | ZX_RIGHT_ATTACH_VMO | ZX_RIGHT_MANAGE_VMO;
    /// Rights of a new VMO handle.
    pub const ZX_DEFAULT_VMO_RIGHTS: Rights = ZX_RIGHT_DUPLICATE
        | ZX_RIGHT_TRANSFER
        | ZX_RIGHT_WAIT
        | ZX_RIGHT_INSPECT
        | ZX_RIGHT_READ
        | ZX_RIGHT_WRITE
        | ZX_RIGHT_GET_PROPERTY
        | ZX_RIGHT_SET_PROPERTY
        | ZX_RIGHT_MAP
        | ZX_RIGHT_SIGNAL;
    /// Rights of a new port handle.
    pub const ZX_DEFAULT_PORT_RIGHTS: Rights =
        ZX_RIGHT_DUPLICATE | ZX_RIGHT_TRANSFER | ZX_RIGHT_INSPECT | ZX_RIGHT_READ | ZX_RIGHT_WRITE;
}

/// Kernel object types (`zx_obj_type_t`).
pub mod obj_type {
    /// A virtual memory object.
    pub const ZX_OBJ_TYPE_VMO: u32 = 3;
    /// A port.
    pub const ZX_OBJ_TYPE_PORT: u32 = 6;
    /// A pager.
    pub const ZX_OBJ_TYPE_PAGER: u32 = 28;
}

/// VMO creation options.
pub mod vmo_options {
    /// The VMO may be resized (accepted; size changes are not implemented).
    pub const ZX_VMO_RESIZABLE: u32 = 1 << 1;
    /// Discardable (rejected by kvmpager).
    pub const ZX_VMO_DISCARDABLE: u32 = 1 << 2;
    /// Pager VMOs only: the first write to a clean page raises a DIRTY request.
    pub const ZX_VMO_TRAP_DIRTY: u32 = 1 << 3;
    /// Unbounded (accepted by `zx_pager_create_vmo`, size is still the given size).
    pub const ZX_VMO_UNBOUNDED: u32 = 1 << 4;
    /// kvmpager extension: back the VMO with transparent huge pages where the host has them,
    /// so 2 MiB-aligned supplies can move whole huge pages. Host RSS then grows in 2 MiB steps.
    pub const KVMPAGER_VMO_HUGE: u32 = 1 << 16;
}

/// `zx_vmo_op_range` operations.
pub mod vmo_op {
    /// Commit (allocate) the pages of the range.
    pub const ZX_VMO_OP_COMMIT: u32 = 1;
    /// Decommit (free) the pages of the range.
    pub const ZX_VMO_OP_DECOMMIT: u32 = 2;
}

/// `zx_vmo_create_child` options.
pub mod vmo_child {
    /// A copy-on-write snapshot child.
    pub const ZX_VMO_CHILD_SNAPSHOT: u32 = 1 << 0;
}

/// Operations of `zx_pager_vmo_op` (and `zx_pager_op_range` for the non-supply ones).
///
/// `ZX_PAGER_OP_FAIL` .. `ZX_PAGER_OP_WRITEBACK_END` keep Fuchsia's numbers; SUPPLY_PAGES has
/// none in Fuchsia (it is its own syscall there), so kvmpager gives it 0x10.
pub mod pager_op {
    /// Fail outstanding requests in a range; `aux_offset` (or `data`) carries the status.
    pub const ZX_PAGER_OP_FAIL: u32 = 1;
    /// Mark pages dirty (TRAP_DIRTY VMOs).
    pub const ZX_PAGER_OP_DIRTY: u32 = 2;
    /// Begin writeback of dirty pages.
    pub const ZX_PAGER_OP_WRITEBACK_BEGIN: u32 = 3;
    /// End writeback: pages become clean.
    pub const ZX_PAGER_OP_WRITEBACK_END: u32 = 4;
    /// Move pages from an aux VMO into the pager VMO (the seed's operation).
    pub const ZX_PAGER_SUPPLY_PAGES: u32 = 0x10;
    /// WRITEBACK_BEGIN data flag: the range is known to be zero.
    pub const ZX_VMO_DIRTY_RANGE_IS_ZERO: u64 = 1;
}

/// Port packet types and page-request commands.
pub mod packet {
    /// `zx_port_packet_t.type` of a page request.
    pub const ZX_PKT_TYPE_PAGE_REQUEST: u32 = 0x09;
    /// Pages must be supplied.
    pub const ZX_PAGER_VMO_READ: u16 = 0;
    /// The VMO was detached or closed: no more requests will come for this key.
    pub const ZX_PAGER_VMO_COMPLETE: u16 = 1;
    /// A clean page is about to be written (TRAP_DIRTY VMOs).
    pub const ZX_PAGER_VMO_DIRTY: u16 = 2;
}

/// Deadline meaning "wait forever" for `zx_port_wait`.
pub const ZX_TIME_INFINITE: i64 = i64::MAX;

/// A page request as it sits in a port packet (`zx_packet_page_request_t`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// `ZX_PAGER_VMO_READ`, `_COMPLETE` or `_DIRTY`.
    pub command: u16,
    /// No flags are defined; always 0.
    pub flags: u16,
    /// Always 0.
    pub reserved0: u32,
    /// Byte offset into the pager VMO (page aligned).
    pub offset: u64,
    /// Length in bytes (page aligned, non-zero for READ/DIRTY, 0 for COMPLETE).
    pub length: u64,
    /// Always 0.
    pub reserved1: u64,
}

/// `zx_port_packet_t`: 48 bytes, exactly Zircon's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortPacket {
    /// The key given to `zx_pager_create_vmo`.
    pub key: u64,
    /// Packet type (`ZX_PKT_TYPE_PAGE_REQUEST`).
    pub packet_type: u32,
    /// Always `ZX_OK` for kernel packets.
    pub status: i32,
    /// The page request.
    pub page_request: PageRequest,
}

const _: () = assert!(core::mem::size_of::<PortPacket>() == 48);
const _: () = assert!(core::mem::size_of::<PageRequest>() == 32);

impl PortPacket {
    /// The packet's 48 bytes in Zircon's little-endian layout.
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..8].copy_from_slice(&self.key.to_le_bytes());
        b[8..12].copy_from_slice(&self.packet_type.to_le_bytes());
        b[12..16].copy_from_slice(&self.status.to_le_bytes());
        b[16..18].copy_from_slice(&self.page_request.command.to_le_bytes());
        b[18..20].copy_from_slice(&self.page_request.flags.to_le_bytes());
        b[20..24].copy_from_slice(&self.page_request.reserved0.to_le_bytes());
        b[24..32].copy_from_slice(&self.page_request.offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.page_request.length.to_le_bytes());
        b[40..48].copy_from_slice(&self.page_request.reserved1.to_le_bytes());
        b
    }

    /// Decodes a packet from its 48-byte layout.
    pub fn from_bytes(b: &[u8; 48]) -> Self {
        let u64_at = |o: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(x)
        };
        let u32_at = |o: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&b[o..o + 4]);
            u32::from_le_bytes(x)
        };
        PortPacket {
            key: u64_at(0),
            packet_type: u32_at(8),
            status: u32_at(12) as i32,
            page_request: PageRequest {
                command: u16::from_le_bytes([b[16], b[17]]),
                flags: u16::from_le_bytes([b[18], b[19]]),
                reserved0: u32_at(20),
                offset: u64_at(24),
                length: u64_at(32),
                reserved1: u64_at(40),
            },
        }
    }
}

/// Information about a VMO returned by [`Call::VmoGetInfo`] (kvmpager extension; 48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmoInfo {
    /// Size in bytes.
    pub size: u64,
    /// Bytes of committed (present) pages.
    pub committed_bytes: u64,
    /// `VMO_INFO_FLAG_*` bits.
    pub flags: u32,
    /// Number of live guest mappings.
    pub mappings: u32,
    /// Number of live child VMOs (clones).
    pub children: u32,
    /// Number of pinned pages.
    pub pinned_pages: u32,
    /// Rights of the handle used for the query.
    pub rights: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// The VMO's kernel object id: what the VMM's stop reports name a VMO by.
    pub koid: u64,
}

const _: () = assert!(core::mem::size_of::<VmoInfo>() == 48);

/// [`VmoInfo::flags`]: the VMO is pager-backed (Zircon's `ZX_INFO_VMO_PAGER_BACKED`).
pub const VMO_INFO_FLAG_PAGER_BACKED: u32 = 1 << 5;
/// [`VmoInfo::flags`]: the pager VMO has been detached.
pub const VMO_INFO_FLAG_DETACHED: u32 = 1 << 16;

/// Hypercall numbers (`rax`). These are kvmpager's own; Zircon has no stable numbering.
///
/// Arguments are listed as `(arg1, arg2, ...)`; `*out` arguments are guest-physical addresses
/// the VMM writes results to. Unless noted the call returns a status in `rax`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `()` — does nothing and returns `ZX_OK`; used to measure the hypercall round trip.
    Null = 0,
    /// `(code: i64)` — stops the VM; `kvmpager run` exits with `code & 0xff`. Does not return.
    Exit = 1,
    /// `(buf: gpa, len)` — writes bytes to the VM console.
    ConsoleWrite = 2,
    /// `()` — returns the monotonic clock in nanoseconds in `rax` (never negative).
    ClockGetMonotonic = 3,
    /// `(handle)`.
    HandleClose = 4,
    /// `(handle, rights, *out: Handle)`.
    HandleDuplicate = 5,
    /// `(handle, rights, *out: Handle)`.
    HandleReplace = 6,
    /// `(size, options, *out: Handle)`.
    VmoCreate = 7,
    /// `(vmo, buf: gpa, offset, len)`.
    VmoRead = 8,
    /// `(vmo, buf: gpa, offset, len)`.
    VmoWrite = 9,
    /// `(vmo, *out: u64)`.
    VmoGetSize = 10,
    /// `(vmo, op, offset, size)`.
    VmoOpRange = 11,
    /// `(vmo, options, offset, size, *out: Handle)`.
    VmoCreateChild = 12,
    /// `(vmo, *out: VmoInfo)`.
    VmoGetInfo = 13,
    /// `(options, *out: Handle)`.
    PagerCreate = 14,
    /// `(pager, options, port, key, size, *out: Handle)`.
    PagerCreateVmo = 15,
    /// `(pager, vmo)`.
    PagerDetachVmo = 16,
    /// `(pager, pager_vmo, op, offset, length, aux_vmo, aux_offset)` — the seed's call.
    /// For `ZX_PAGER_OP_FAIL` the status to fail with goes in `aux_offset`; for the other
    /// non-supply ops `aux_offset` is their `data` and `aux_vmo` is ignored.
    PagerVmoOp = 17,
    /// `(pager, pager_vmo, offset, length, aux_vmo, aux_offset)` — Fuchsia's order.
    PagerSupplyPages = 18,
    /// `(pager, op, pager_vmo, offset, length, data)` — Fuchsia's order.
    PagerOpRange = 19,
    /// `(options, *out: Handle)`.
    PortCreate = 20,
    /// `(port, deadline_ns, *out: PortPacket)` — deadline on the monotonic clock.
    PortWait = 21,
    /// `(options, gpa, vmo, vmo_offset, len)` — maps `vmo[vmo_offset, +len)` at guest-physical
    /// `gpa` inside the aperture (`gpa` and `len` must be page aligned, `len` > 0). Options:
    /// `ZX_VM_PERM_READ | ZX_VM_PERM_WRITE`.
    VmarMap = 22,
    /// `(gpa, len)` — removes the mapping that starts at `gpa` (`len` must match it).
    VmarUnmap = 23,
    /// `()` — returns the guest's vCPU count in `rax`.
    VcpuCount = 24,
    /// `(case_name: gpa, name_len, passed: bool, msg: gpa, msg_len)` — reports one test case
    /// result to the host (guest test harness).
    TestReport = 25,
    /// `()` — asks the VMM to snapshot the VM (the `--snapshot DIR` given at start).
    Snapshot = 26,
}

impl Call {
    /// All calls, in number order.
    pub const ALL: [Call; 27] = [
        Call::Null,
        Call::Exit,
        Call::ConsoleWrite,
        Call::ClockGetMonotonic,
        Call::HandleClose,
        Call::HandleDuplicate,
        Call::HandleReplace,
        Call::VmoCreate,
        Call::VmoRead,
        Call::VmoWrite,
        Call::VmoGetSize,
        Call::VmoOpRange,
        Call::VmoCreateChild,
        Call::VmoGetInfo,
        Call::PagerCreate,
        Call::PagerCreateVmo,
        Call::PagerDetachVmo,
        Call::PagerVmoOp,
        Call::PagerSupplyPages,
        Call::PagerOpRange,
        Call::PortCreate,
        Call::PortWait,
        Call::VmarMap,
        Call::VmarUnmap,
        Call::VcpuCount,
        Call::TestReport,
        Call::Snapshot,
    ];

    /// The call with number `nr`, if any.
    pub fn from_nr(nr: u64) -> Option<Call> {
        Call::ALL.get(usize::try_from(nr).ok()?).copied()
    }
}

/// `zx_vmar_map` permission options.
pub mod vm_options {
    /// Readable mapping.
    pub const ZX_VM_PERM_READ: u32 = 1 << 0;
    /// Writable mapping.
    pub const ZX_VM_PERM_WRITE: u32 = 1 << 1;
}

/// Guest-physical layout every kvmpager VM has.
pub mod layout {
    /// RAM starts at guest-physical 0.
    pub const RAM_START: u64 = 0;
    /// Where guest ELF programs are linked (and loaded).
    pub const GUEST_LOAD_ADDR: u64 = 0x10_0000;
    /// Start of the aperture where `zx_vmar_map` places VMOs (64 GiB).
    pub const APERTURE_START: u64 = 64 << 30;
    /// Size of the aperture (64 GiB).
    pub const APERTURE_SIZE: u64 = 64 << 30;
}

/// What the CPL-0 exception stub reports on [`EXCEPTION_PORT`]: it writes the vector to the port
/// (`out 0xe2, eax`) with `rdi` = error code (0 when the vector has none), `rsi` = faulting
/// `rip` and `rdx` = `cr2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionReport {
    /// Exception vector (0–31).
    pub vector: u8,
    /// Error code pushed by the CPU, or 0.
    pub error_code: u64,
    /// The faulting instruction pointer.
    pub rip: u64,
    /// CR2 (the faulting address for #PF).
    pub cr2: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_round_trips_through_bytes() {
        let p = PortPacket {
            key: 0x1122_3344_5566_7788,
            packet_type: packet::ZX_PKT_TYPE_PAGE_REQUEST,
            status: 0,
            page_request: PageRequest {
                command: packet::ZX_PAGER_VMO_READ,
                offset: 0x3000,
                length: 0x2000,
                ..Default::default()
            },
        };
        let b = p.to_bytes();
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[8], 9);
        assert_eq!(&b[24..32], &0x3000u64.to_le_bytes());
        assert_eq!(&b[32..40], &0x2000u64.to_le_bytes());
        assert_eq!(PortPacket::from_bytes(&b), p);
        assert_eq!(core::mem::offset_of!(PortPacket, page_request), 16);
        assert_eq!(core::mem::offset_of!(PageRequest, offset), 8);
    }

    #[test]
    fn call_numbers_are_dense_and_decodable() {
        for (i, c) in Call::ALL.iter().enumerate() {
            assert_eq!(*c as u64, i as u64);
            assert_eq!(Call::from_nr(i as u64), Some(*c));
        }
        assert_eq!(Call::from_nr(Call::ALL.len() as u64), None);
        assert_eq!(Call::from_nr(u64::MAX), None);
    }

    #[test]
    fn default_rights_match_zircon() {
        assert_eq!(rights::ZX_DEFAULT_PAGER_RIGHTS, 0x0180_8002);
        assert_eq!(rights::ZX_DEFAULT_VMO_RIGHTS, 0x0000_D0EF);
        assert_eq!(rights::ZX_DEFAULT_PORT_RIGHTS, 0x0000_800F);
    }
}
