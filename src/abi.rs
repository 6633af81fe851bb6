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
//! - touches the boot area (`0..layout::BOOT_AREA_END`, 1 MiB: the null page, GDT, IDT, TSSs,
//!   exception stub and stacks, page tables), so a null pointer with a non-zero length fails
//!   and no call can store into the page tables (the boot area is also mapped supervisor-only,
//!   so a CPL-3 access to it is an ordinary page fault);
//! - reaches past the end of RAM (straddling it included);
//! - lies in a hole: anything that is not RAM, the VMO aperture included (map a VMO to touch
//!   it, but pass RAM buffers to calls);
//! - overflows (`pointer + length` wraps).
//!
//! A zero-length buffer is never dereferenced and is always accepted. Pointers need no
//! alignment: out-values are stored byte-wise at whatever address is given.

/// Version of this ABI; bump on any incompatible change. 2: [`VmoInfo`] grew to 48 bytes
/// (`koid`), guest pointers may not touch the null page. 3: guest pointers may not touch the
/// boot area (below [`layout::BOOT_AREA_END`]); calls 27–30.
pub const ABI_VERSION: u32 = 3;

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
    /// The VMO may be resized with `zx_vmo_set_size` ([`Call::VmoSetSize`](super::Call)),
    /// between 0 and the size it was created with; the handle gets `ZX_RIGHT_RESIZE`.
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
    /// Zero the range (not implemented: `ZX_ERR_NOT_SUPPORTED`).
    pub const ZX_VMO_OP_ZERO: u32 = 10;
    /// Eviction hint: the pages are not needed soon. Requests nothing; `ZX_OK`.
    pub const ZX_VMO_OP_DONT_NEED: u32 = 12;
    /// Eviction hint: the pages are needed. On a pager VMO it requests the absent pages (one
    /// READ per run of absent pages) and waits for them, like COMMIT.
    pub const ZX_VMO_OP_ALWAYS_NEED: u32 = 13;
    /// Fetch the absent pages of a pager VMO (READ requests for absent pages only) and wait.
    pub const ZX_VMO_OP_PREFETCH: u32 = 14;
}

/// `zx_vmo_create_child` options (Zircon's values). Exactly one of SNAPSHOT, SLICE and
/// SNAPSHOT_AT_LEAST_ON_WRITE; RESIZABLE and NO_WRITE may be added; anything else gives
/// `ZX_ERR_INVALID_ARGS`.
pub mod vmo_child {
    /// A snapshot child (Zircon's name; "snapshot" here means a VMO clone, not a VM snapshot).
    /// Anonymous VMOs only: the child's pages are copied at creation. On a pager VMO or a
    /// clone of one: `ZX_ERR_NOT_SUPPORTED`, as in Zircon.
    pub const ZX_VMO_CHILD_SNAPSHOT: u32 = 1 << 0;
    /// The child is resizable (accepted and given `ZX_RIGHT_RESIZE`; sizes never change).
    pub const ZX_VMO_CHILD_RESIZABLE: u32 = 1 << 2;
    /// A slice: `ZX_ERR_NOT_SUPPORTED`.
    pub const ZX_VMO_CHILD_SLICE: u32 = 1 << 3;
    /// A copy-on-write clone that sees its parent's writes until it writes a page itself.
    /// On a pager VMO (or a clone of one, `offset` page aligned) the clone shares the pages
    /// supplied to the root, and its page requests name the root; on an anonymous VMO it is
    /// a SNAPSHOT.
    pub const ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE: u32 = 1 << 4;
    /// The child's handle lacks `ZX_RIGHT_WRITE`.
    pub const ZX_VMO_CHILD_NO_WRITE: u32 = 1 << 5;
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
    /// WRITEBACK_BEGIN data flag and [`DirtyRange::options`](super::DirtyRange) bit: the range
    /// is known to be zero (kvmpager never reports it: it keeps no zero markers).
    pub const ZX_VMO_DIRTY_RANGE_IS_ZERO: u64 = 1;
    /// `zx_pager_query_vmo_stats` option: clear the stats after reading them.
    pub const ZX_PAGER_RESET_VMO_STATS: u32 = 1;
    /// [`VmoStats::modified`](super::VmoStats): the VMO was written or resized since the last
    /// reset.
    pub const ZX_PAGER_VMO_STATS_MODIFIED: u32 = 1;
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
    /// kvmpager extension: `zx_port_packet_t.type` of an exception packet
    /// ([`ExceptionPacket`](super::ExceptionPacket), [`Call::KvmpagerSetExceptionPort`](super::Call)).
    pub const KVMPAGER_PKT_TYPE_EXCEPTION: u32 = 0x4b50_0001;
    /// [`ExceptionPacket::exception`](super::ExceptionPacket): a fatal page fault (Zircon's
    /// `ZX_EXCP_FATAL_PAGE_FAULT`).
    pub const ZX_EXCP_FATAL_PAGE_FAULT: u32 = 0x108;
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

/// One entry of `zx_pager_query_dirty_ranges`' buffer (`zx_vmo_dirty_range_t`, 24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirtyRange {
    /// Byte offset of the run of dirty pages (page aligned).
    pub offset: u64,
    /// Its length in bytes (page aligned, non-zero).
    pub length: u64,
    /// `ZX_VMO_DIRTY_RANGE_IS_ZERO` or 0 (kvmpager always writes 0).
    pub options: u64,
}

const _: () = assert!(core::mem::size_of::<DirtyRange>() == 24);

/// What [`Call::PagerQueryDirtyRanges`] stores through its out-pointer (kvmpager's form of
/// Zircon's two `size_t*` out-arguments, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirtyCounts {
    /// Entries written to the buffer.
    pub actual: u64,
    /// Entries found in the whole queried range (more than `actual` if the buffer was short).
    pub avail: u64,
}

const _: () = assert!(core::mem::size_of::<DirtyCounts>() == 16);

/// `zx_pager_vmo_stats_t` (4 bytes), written by [`Call::PagerQueryVmoStats`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmoStats {
    /// `ZX_PAGER_VMO_STATS_MODIFIED` or 0.
    pub modified: u32,
}

/// An exception packet (kvmpager extension, [`Call::KvmpagerSetExceptionPort`]): a vCPU took
/// a fatal page fault and is parked. It travels as a 48-byte `zx_port_packet_t` with `type`
/// [`packet::KVMPAGER_PKT_TYPE_EXCEPTION`] and `status` = the fault's `synth_code`; the payload
/// (bytes 16..48) is laid out as the fields below, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionPacket {
    /// The key given to `KvmpagerSetExceptionPort` (bytes 0..8).
    pub key: u64,
    /// Zircon's `synth_code`: why the fault is fatal (`ZX_ERR_IO`, `ZX_ERR_BAD_STATE`, …;
    /// bytes 12..16, the packet's `status`).
    pub status: Status,
    /// The faulting vCPU (u32 at 16).
    pub vcpu: u32,
    /// `ZX_EXCP_FATAL_PAGE_FAULT` (u32 at 20).
    pub exception: u32,
    /// Guest-physical address of the faulting page, 0 if it is not mapped (u64 at 24).
    pub address: u64,
    /// The VMO's koid (u64 at 32).
    pub vmo_koid: u64,
    /// Page-aligned offset in the VMO (u64 at 40).
    pub vmo_offset: u64,
}

impl ExceptionPacket {
    /// The packet as a [`PortPacket`] (the payload in the page-request fields' bytes).
    pub fn to_port_packet(&self) -> PortPacket {
        PortPacket {
            key: self.key,
            packet_type: packet::KVMPAGER_PKT_TYPE_EXCEPTION,
            status: self.status,
            page_request: PageRequest {
                command: self.vcpu as u16,
                flags: (self.vcpu >> 16) as u16,
                reserved0: self.exception,
                offset: self.address,
                length: self.vmo_koid,
                reserved1: self.vmo_offset,
            },
        }
    }

    /// Decodes an exception packet (`None` if `p` is of another type).
    pub fn from_port_packet(p: &PortPacket) -> Option<Self> {
        (p.packet_type == packet::KVMPAGER_PKT_TYPE_EXCEPTION).then(|| ExceptionPacket {
            key: p.key,
            status: p.status,
            vcpu: u32::from(p.page_request.command) | (u32::from(p.page_request.flags) << 16),
            exception: p.page_request.reserved0,
            address: p.page_request.offset,
            vmo_koid: p.page_request.length,
            vmo_offset: p.page_request.reserved1,
        })
    }
}

/// [`VmoInfo::flags`]: the VMO is pager-backed (Zircon's `ZX_INFO_VMO_PAGER_BACKED`).
pub const VMO_INFO_FLAG_PAGER_BACKED: u32 = 1 << 5;
/// [`VmoInfo::flags`]: the pager VMO has been detached.
pub const VMO_INFO_FLAG_DETACHED: u32 = 1 << 16;

/// Hypercall numbers (`rax`). These are kvmpager's own; Zircon has no stable numbering.
///
/// Arguments are listed as `(arg1, arg2, ...)`; `*out` arguments are guest-physical addresses
/// the VMM writes results to. Unless noted the call returns a status in `rax`. Each list is
/// [`Call::signature`] of the call's row in the argument table ([`Call::args`]), which says
/// what every argument is; a unit test keeps the two equal.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `()` — does nothing and returns `ZX_OK`; used to measure the hypercall round trip.
    Null = 0,
    /// `(code)` — stops the VM; `kvmpager run` exits with `code & 0xff` (`code` is an `i64`).
    /// Does not return.
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
    /// `(vmo, op, offset, size)` — [`vmo_op`]: COMMIT and DECOMMIT need WRITE; the hints
    /// PREFETCH and ALWAYS_NEED (a pager VMO requests its absent pages and waits) and DONT_NEED
    /// need READ or WRITE; other ops give `ZX_ERR_NOT_SUPPORTED`.
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
    /// `ZX_VM_PERM_READ | ZX_VM_PERM_WRITE`, and `ZX_VM_MAP_RANGE` (accepted; no effect).
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
    /// `(vmo, size)` — `zx_vmo_set_size` (needs `ZX_RIGHT_RESIZE`): a VMO created without
    /// `ZX_VMO_RESIZABLE` gives `ZX_ERR_UNAVAILABLE`; `size` is rounded up to pages and may not
    /// exceed the size the VMO was created with (`ZX_ERR_OUT_OF_RANGE`). Shrinking frees the
    /// pages past the end and fails the page requests there with `ZX_ERR_OUT_OF_RANGE`.
    VmoSetSize = 27,
    /// `(pager, pager_vmo, offset, length, buffer: gpa, buffer_size, *out: DirtyCounts)` —
    /// `zx_pager_query_dirty_ranges`: the runs of dirty pages in the range as [`DirtyRange`]s,
    /// as many as fit in `buffer_size` bytes; `out` gets how many were written and found.
    PagerQueryDirtyRanges = 28,
    /// `(pager, pager_vmo, options, buffer: gpa, buffer_size)` — `zx_pager_query_vmo_stats`:
    /// writes a [`VmoStats`]; `options` 0 or `ZX_PAGER_RESET_VMO_STATS`.
    PagerQueryVmoStats = 29,
    /// `(port, key)` — kvmpager extension: fatal page faults of vCPUs are delivered as
    /// [`ExceptionPacket`]s on `port` (needs WRITE) and the faulting vCPU is parked, as long as
    /// another vCPU still runs; `port` 0 turns delivery off.
    KvmpagerSetExceptionPort = 30,
}

impl Call {
    /// All calls, in number order.
    pub const ALL: [Call; 31] = [
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
        Call::VmoSetSize,
        Call::PagerQueryDirtyRanges,
        Call::PagerQueryVmoStats,
        Call::KvmpagerSetExceptionPort,
    ];

    /// The call with number `nr`, if any.
    pub fn from_nr(nr: u64) -> Option<Call> {
        Call::ALL.get(usize::try_from(nr).ok()?).copied()
    }
}

/// What one hypercall argument is: its direction and how the VMM uses the register.
///
/// This is the ABI's argument table, one row per [`Call`] ([`Call::args`]), written once here
/// and read by the VMM's handlers, its fuzzer, its pointer tests and the guest runtime (Solo5's
/// per-call IN/OUT structs in `hvt_abi.h` are the model). Pointer roles are guest-physical RAM
/// addresses and follow "Guest pointers" above; [`Role::Gpa`] is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// IN: a plain integer (size, offset, key, op code, deadline, exit code, mapping length).
    Value,
    /// IN: option or rights bits.
    Options,
    /// IN: a boolean; any non-zero value is true.
    Bool,
    /// IN: a [`Handle`] (the low 32 bits).
    Handle,
    /// IN: a guest-physical address in the VMO aperture ([`layout::APERTURE_START`]), not a
    /// RAM pointer: `VmarMap`/`VmarUnmap` give their own statuses for it.
    Gpa,
    /// IN: a RAM buffer the VMM reads; its length is argument number `len` (0-based).
    BufIn {
        /// Index of the [`Role::Len`] argument.
        len: u8,
    },
    /// OUT: a RAM buffer the VMM writes; its length is argument number `len` (0-based).
    BufOut {
        /// Index of the [`Role::Len`] argument.
        len: u8,
    },
    /// IN: text in RAM the VMM reads (lossy UTF-8, possibly cut short); its length is argument
    /// number `len` (0-based). The whole range is checked.
    Str {
        /// Index of the [`Role::Len`] argument.
        len: u8,
    },
    /// IN: the length in bytes of the buffer argument whose `len` names this one.
    Len,
    /// OUT: a pointer to a [`Handle`] the VMM stores (the call's new handle).
    OutHandle,
    /// OUT: a pointer to a `u64` the VMM stores.
    OutU64,
    /// OUT: a pointer to a [`VmoInfo`] the VMM stores.
    OutInfo,
    /// OUT: a pointer to a [`PortPacket`] the VMM stores.
    OutPacket,
    /// OUT: a pointer to a [`DirtyCounts`] the VMM stores.
    OutDirtyCounts,
}

/// Which way an argument's data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the guest to the VMM (the register's value, or the bytes it points at).
    In,
    /// From the VMM to the guest (bytes stored at the register's address).
    Out,
}

impl Role {
    /// Whether the VMM reads or writes through this argument.
    pub const fn dir(self) -> Dir {
        match self {
            Role::BufOut { .. }
            | Role::OutHandle
            | Role::OutU64
            | Role::OutInfo
            | Role::OutPacket
            | Role::OutDirtyCounts => Dir::Out,
            _ => Dir::In,
        }
    }

    /// For an out-pointer to one object: the object's size in bytes, from the ABI's own type.
    pub const fn out_size(self) -> Option<u64> {
        let n = match self {
            Role::OutHandle => core::mem::size_of::<Handle>(),
            Role::OutU64 => core::mem::size_of::<u64>(),
            Role::OutInfo => core::mem::size_of::<VmoInfo>(),
            Role::OutPacket => core::mem::size_of::<PortPacket>(),
            Role::OutDirtyCounts => core::mem::size_of::<DirtyCounts>(),
            _ => return None,
        };
        Some(n as u64)
    }

    /// For an out-pointer to one object: the object's type, as the docs write it.
    pub const fn out_type(self) -> Option<&'static str> {
        match self {
            Role::OutHandle => Some("Handle"),
            Role::OutU64 => Some("u64"),
            Role::OutInfo => Some("VmoInfo"),
            Role::OutPacket => Some("PortPacket"),
            Role::OutDirtyCounts => Some("DirtyCounts"),
            _ => None,
        }
    }

    /// For a buffer (read, written or text): the index of its length argument.
    pub const fn buf_len(self) -> Option<usize> {
        match self {
            Role::BufIn { len } | Role::BufOut { len } | Role::Str { len } => Some(len as usize),
            _ => None,
        }
    }

    /// Whether the argument is a guest RAM pointer (a buffer or an out-pointer), to which the
    /// rules of "Guest pointers" apply.
    pub const fn is_ram_pointer(self) -> bool {
        self.buf_len().is_some() || self.out_size().is_some()
    }
}

/// One argument of a call: its name (as in the [`Call`] docs) and its [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The argument's name, e.g. `vmo`, `buf`, `out`.
    pub name: &'static str,
    /// What the argument is.
    pub role: Role,
}

const fn arg(name: &'static str, role: Role) -> Arg {
    Arg { name, role }
}

/// What a call leaves in `rax`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A [`Status`] (sign-extended).
    Status,
    /// A value (documented on the call); the call cannot fail.
    Value,
    /// Nothing: the call does not return.
    Never,
}

mod args {
    //! The rows of the argument table ([`super::Call::args`]), one constant per call shape.
    use super::{Arg, Role, arg};

    const HANDLE: Arg = arg("handle", Role::Handle);
    const VMO: Arg = arg("vmo", Role::Handle);
    const PAGER: Arg = arg("pager", Role::Handle);
    const PAGER_VMO: Arg = arg("pager_vmo", Role::Handle);
    const OPTIONS: Arg = arg("options", Role::Options);
    const RIGHTS: Arg = arg("rights", Role::Options);
    const OP: Arg = arg("op", Role::Value);
    const OFFSET: Arg = arg("offset", Role::Value);
    const LENGTH: Arg = arg("length", Role::Value);
    const SIZE: Arg = arg("size", Role::Value);
    const OUT_HANDLE: Arg = arg("out", Role::OutHandle);

    pub const NONE: &[Arg] = &[];
    pub const EXIT: &[Arg] = &[arg("code", Role::Value)];
    pub const CONSOLE_WRITE: &[Arg] = &[arg("buf", Role::BufIn { len: 1 }), arg("len", Role::Len)];
    pub const HANDLE_CLOSE: &[Arg] = &[HANDLE];
    pub const HANDLE_RIGHTS: &[Arg] = &[HANDLE, RIGHTS, OUT_HANDLE];
    pub const VMO_CREATE: &[Arg] = &[SIZE, OPTIONS, OUT_HANDLE];
    pub const VMO_READ: &[Arg] = &[
        VMO,
        arg("buf", Role::BufOut { len: 3 }),
        OFFSET,
        arg("len", Role::Len),
    ];
    pub const VMO_WRITE: &[Arg] = &[
        VMO,
        arg("buf", Role::BufIn { len: 3 }),
        OFFSET,
        arg("len", Role::Len),
    ];
    pub const VMO_GET_SIZE: &[Arg] = &[VMO, arg("out", Role::OutU64)];
    pub const VMO_OP_RANGE: &[Arg] = &[VMO, OP, OFFSET, SIZE];
    pub const VMO_CREATE_CHILD: &[Arg] = &[VMO, OPTIONS, OFFSET, SIZE, OUT_HANDLE];
    pub const VMO_GET_INFO: &[Arg] = &[VMO, arg("out", Role::OutInfo)];
    pub const OPTIONS_OUT_HANDLE: &[Arg] = &[OPTIONS, OUT_HANDLE];
    pub const PAGER_CREATE_VMO: &[Arg] = &[
        PAGER,
        OPTIONS,
        arg("port", Role::Handle),
        arg("key", Role::Value),
        SIZE,
        OUT_HANDLE,
    ];
    pub const PAGER_DETACH_VMO: &[Arg] = &[PAGER, VMO];
    pub const PAGER_VMO_OP: &[Arg] = &[
        PAGER,
        PAGER_VMO,
        OP,
        OFFSET,
        LENGTH,
        arg("aux_vmo", Role::Handle),
        arg("aux_offset", Role::Value),
    ];
    pub const PAGER_SUPPLY_PAGES: &[Arg] = &[
        PAGER,
        PAGER_VMO,
        OFFSET,
        LENGTH,
        arg("aux_vmo", Role::Handle),
        arg("aux_offset", Role::Value),
    ];
    pub const PAGER_OP_RANGE: &[Arg] = &[
        PAGER,
        OP,
        PAGER_VMO,
        OFFSET,
        LENGTH,
        arg("data", Role::Value),
    ];
    pub const PORT_WAIT: &[Arg] = &[
        arg("port", Role::Handle),
        arg("deadline_ns", Role::Value),
        arg("out", Role::OutPacket),
    ];
    pub const VMAR_MAP: &[Arg] = &[
        OPTIONS,
        arg("gpa", Role::Gpa),
        VMO,
        arg("vmo_offset", Role::Value),
        arg("len", Role::Value),
    ];
    pub const VMO_SET_SIZE: &[Arg] = &[VMO, SIZE];
    pub const PAGER_QUERY_DIRTY_RANGES: &[Arg] = &[
        PAGER,
        PAGER_VMO,
        OFFSET,
        LENGTH,
        arg("buffer", Role::BufOut { len: 5 }),
        arg("buffer_size", Role::Len),
        arg("out", Role::OutDirtyCounts),
    ];
    pub const PAGER_QUERY_VMO_STATS: &[Arg] = &[
        PAGER,
        PAGER_VMO,
        OPTIONS,
        arg("buffer", Role::BufOut { len: 4 }),
        arg("buffer_size", Role::Len),
    ];
    pub const SET_EXCEPTION_PORT: &[Arg] = &[arg("port", Role::Handle), arg("key", Role::Value)];
    pub const VMAR_UNMAP: &[Arg] = &[arg("gpa", Role::Gpa), arg("len", Role::Value)];
    pub const TEST_REPORT: &[Arg] = &[
        arg("case_name", Role::Str { len: 1 }),
        arg("name_len", Role::Len),
        arg("passed", Role::Bool),
        arg("msg", Role::Str { len: 4 }),
        arg("msg_len", Role::Len),
    ];
}

impl Call {
    /// The call's arguments, in register order (`rdi, rsi, rdx, r10, r8, r9, r12, r13`); the
    /// registers past the last one are ignored. This is the ABI's argument table: e.g.
    ///
    /// | call | arguments |
    /// |---|---|
    /// | `VmoRead` | `vmo`: Handle, `buf`: BufOut { len: 3 }, `offset`: Value, `len`: Len |
    /// | `VmoCreateChild` | `vmo`: Handle, `options`: Options, `offset`, `size`: Value, `out`: OutHandle |
    /// | `PortWait` | `port`: Handle, `deadline_ns`: Value, `out`: OutPacket |
    /// | `TestReport` | `case_name`: Str { len: 1 }, `name_len`: Len, `passed`: Bool, `msg`: Str { len: 4 }, `msg_len`: Len |
    pub const fn args(self) -> &'static [Arg] {
        use args::*;
        match self {
            Call::Null | Call::ClockGetMonotonic | Call::VcpuCount | Call::Snapshot => NONE,
            Call::Exit => EXIT,
            Call::ConsoleWrite => CONSOLE_WRITE,
            Call::HandleClose => HANDLE_CLOSE,
            Call::HandleDuplicate | Call::HandleReplace => HANDLE_RIGHTS,
            Call::VmoCreate => VMO_CREATE,
            Call::VmoRead => VMO_READ,
            Call::VmoWrite => VMO_WRITE,
            Call::VmoGetSize => VMO_GET_SIZE,
            Call::VmoOpRange => VMO_OP_RANGE,
            Call::VmoCreateChild => VMO_CREATE_CHILD,
            Call::VmoGetInfo => VMO_GET_INFO,
            Call::PagerCreate | Call::PortCreate => OPTIONS_OUT_HANDLE,
            Call::PagerCreateVmo => PAGER_CREATE_VMO,
            Call::PagerDetachVmo => PAGER_DETACH_VMO,
            Call::PagerVmoOp => PAGER_VMO_OP,
            Call::PagerSupplyPages => PAGER_SUPPLY_PAGES,
            Call::PagerOpRange => PAGER_OP_RANGE,
            Call::PortWait => PORT_WAIT,
            Call::VmarMap => VMAR_MAP,
            Call::VmarUnmap => VMAR_UNMAP,
            Call::TestReport => TEST_REPORT,
            Call::VmoSetSize => VMO_SET_SIZE,
            Call::PagerQueryDirtyRanges => PAGER_QUERY_DIRTY_RANGES,
            Call::PagerQueryVmoStats => PAGER_QUERY_VMO_STATS,
            Call::KvmpagerSetExceptionPort => SET_EXCEPTION_PORT,
        }
    }

    /// What the call leaves in `rax`.
    pub const fn ret(self) -> Ret {
        match self {
            Call::Exit => Ret::Never,
            Call::ClockGetMonotonic | Call::VcpuCount => Ret::Value,
            _ => Ret::Status,
        }
    }

    /// The call's out-pointer to one object (a call has at most one): its argument index and
    /// role ([`Role::out_size`] bytes are stored there).
    pub const fn out(self) -> Option<(usize, Role)> {
        let args = self.args();
        let mut i = 0;
        while i < args.len() {
            if args[i].role.out_size().is_some() {
                return Some((i, args[i].role));
            }
            i += 1;
        }
        None
    }

    /// The call's `n`-th buffer (0-based, in argument order): the indexes of its pointer and
    /// of its length argument.
    pub const fn buffer(self, n: usize) -> Option<(usize, usize)> {
        let args = self.args();
        let (mut i, mut seen) = (0, 0);
        while i < args.len() {
            if let Some(len) = args[i].role.buf_len() {
                if seen == n {
                    return Some((i, len));
                }
                seen += 1;
            }
            i += 1;
        }
        None
    }

    /// The argument list as the [`Call`] docs write it, e.g. `(vmo, buf: gpa, offset, len)`
    /// or `(vmo, *out: VmoInfo)`.
    pub const fn signature(self) -> Signature {
        Signature(self)
    }
}

/// A call's argument list in the docs' notation ([`Call::signature`]): plain names, `: gpa`
/// after a buffer, `: bool` after a boolean, `*name: Type` for an out-pointer.
#[derive(Clone, Copy, Debug)]
pub struct Signature(Call);

impl core::fmt::Display for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("(")?;
        for (i, a) in self.0.args().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match a.role {
                Role::Bool => write!(f, "{}: bool", a.name)?,
                r if r.buf_len().is_some() => write!(f, "{}: gpa", a.name)?,
                r => match r.out_type() {
                    Some(t) => write!(f, "*{}: {t}", a.name)?,
                    None => f.write_str(a.name)?,
                },
            }
        }
        f.write_str(")")
    }
}

/// `zx_vmar_map` permission options.
pub mod vm_options {
    /// Readable mapping.
    pub const ZX_VM_PERM_READ: u32 = 1 << 0;
    /// Writable mapping.
    pub const ZX_VM_PERM_WRITE: u32 = 1 << 1;
    /// Map the whole range now (Zircon's value). kvmpager always maps the whole range at
    /// `zx_vmar_map`: present pages are usable at once without requests, absent ones are
    /// requested on first touch; the flag is accepted and changes nothing.
    pub const ZX_VM_MAP_RANGE: u32 = 1 << 10;
}

/// Guest-physical layout every kvmpager VM has.
pub mod layout {
    /// RAM starts at guest-physical 0.
    pub const RAM_START: u64 = 0;
    /// Where guest ELF programs are linked (and loaded).
    pub const GUEST_LOAD_ADDR: u64 = 0x10_0000;
    /// End of the boot area (1 MiB): the VMM's CPU structures and page tables live below it,
    /// mapped supervisor-only; no guest pointer may touch it.
    pub const BOOT_AREA_END: u64 = GUEST_LOAD_ADDR;
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
    fn every_call_fits_the_registers_and_names_its_arguments_once() {
        for c in Call::ALL {
            let args = c.args();
            assert!(args.len() <= 8, "{c:?}: more arguments than registers");
            for (i, a) in args.iter().enumerate() {
                assert!(!a.name.is_empty(), "{c:?} argument {i} has no name");
                let same = args.iter().filter(|b| b.name == a.name).count();
                assert_eq!(same, 1, "{c:?}: two arguments named `{}`", a.name);
            }
        }
    }

    #[test]
    fn every_buffer_has_its_own_length_argument() {
        for c in Call::ALL {
            let args = c.args();
            for (i, a) in args.iter().enumerate() {
                if let Some(len) = a.role.buf_len() {
                    assert_eq!(
                        args.get(len).map(|l| l.role),
                        Some(Role::Len),
                        "{c:?} arg {i}"
                    );
                }
                if a.role == Role::Len {
                    let users = args.iter().filter(|b| b.role.buf_len() == Some(i)).count();
                    assert_eq!(users, 1, "{c:?}: length `{}` has {users} buffers", a.name);
                }
            }
        }
    }

    #[test]
    fn out_pointers_match_the_abi_types_and_come_one_per_call() {
        assert_eq!(Role::OutHandle.out_size(), Some(4));
        assert_eq!(Role::OutU64.out_size(), Some(8));
        assert_eq!(Role::OutInfo.out_size(), Some(48));
        assert_eq!(Role::OutPacket.out_size(), Some(48));
        assert_eq!(Role::OutDirtyCounts.out_size(), Some(16));
        for c in Call::ALL {
            let outs: Vec<usize> = (0..c.args().len())
                .filter(|&i| c.args()[i].role.out_size().is_some())
                .collect();
            assert!(outs.len() <= 1, "{c:?}: several out-pointers");
            assert_eq!(c.out().map(|(i, _)| i), outs.first().copied(), "{c:?}");
            if c.ret() != Ret::Status {
                assert!(c.args().iter().all(|a| a.role.dir() == Dir::In), "{c:?}");
            }
        }
    }

    #[test]
    fn directions_and_pointer_kinds_agree() {
        for c in Call::ALL {
            for a in c.args() {
                let out = a.role.dir() == Dir::Out;
                let stores = a.role.out_size().is_some() || matches!(a.role, Role::BufOut { .. });
                assert_eq!(out, stores, "{c:?} `{}`", a.name);
                assert_eq!(a.role.out_size().is_some(), a.role.out_type().is_some());
            }
        }
        // The counts the pointer tests rely on: 11 out-pointers, 7 buffers.
        let outs = Call::ALL.iter().filter(|c| c.out().is_some()).count();
        let bufs: usize = Call::ALL
            .iter()
            .map(|c| (0..8).take_while(|&n| c.buffer(n).is_some()).count())
            .sum();
        assert_eq!((outs, bufs), (11, 7));
    }

    /// The `(arg, ...)` list that opens each `Call` variant's doc comment is the table's
    /// [`Call::signature`]: the docs are the table, written out.
    #[test]
    fn call_docs_open_with_the_table_signature() {
        let src = include_str!("abi.rs");
        for c in Call::ALL {
            let decl = format!("    {c:?} = {},", c as u64);
            let at = src
                .find(&decl)
                .unwrap_or_else(|| panic!("{decl} not found"));
            let doc: Vec<&str> = src[..at]
                .lines()
                .rev()
                .take_while(|l| l.trim_start().starts_with("///"))
                .collect();
            let first = doc.last().unwrap_or_else(|| panic!("{c:?} has no doc"));
            let want = format!("/// `{}`", c.signature());
            assert!(
                first.trim_start().starts_with(&want),
                "{c:?}: doc `{}` does not open with {want}",
                first.trim()
            );
        }
    }

    #[test]
    fn exception_packets_round_trip_through_port_packets() {
        let e = ExceptionPacket {
            key: 7,
            status: status::ZX_ERR_IO,
            vcpu: 0x1_0002,
            exception: packet::ZX_EXCP_FATAL_PAGE_FAULT,
            address: 0x10_0000_3000,
            vmo_koid: 99,
            vmo_offset: 0x3000,
        };
        let p = e.to_port_packet();
        let b = p.to_bytes();
        assert_eq!(&b[16..20], &0x1_0002u32.to_le_bytes());
        assert_eq!(&b[20..24], &0x108u32.to_le_bytes());
        assert_eq!(&b[24..32], &0x10_0000_3000u64.to_le_bytes());
        assert_eq!(&b[40..48], &0x3000u64.to_le_bytes());
        assert_eq!(
            ExceptionPacket::from_port_packet(&PortPacket::from_bytes(&b)),
            Some(e)
        );
        assert_eq!(
            ExceptionPacket::from_port_packet(&PortPacket::default()),
            None
        );
    }

    #[test]
    fn default_rights_match_zircon() {
        assert_eq!(rights::ZX_DEFAULT_PAGER_RIGHTS, 0x0180_8002);
        assert_eq!(rights::ZX_DEFAULT_VMO_RIGHTS, 0x0000_D0EF);
        assert_eq!(rights::ZX_DEFAULT_PORT_RIGHTS, 0x0000_800F);
    }
}
