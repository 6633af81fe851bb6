//! Typed wrappers for every kvmpager hypercall ([`abi::Call`]).
//!
//! Free functions take plain [`Handle`]s (so tests can pass bad ones); [`Vmo`], [`Pager`] and
//! [`Port`] own a handle, close it on drop and have the same calls as methods. Calls that
//! return a status return [`Result`]; the few that return a value return it directly.
//!
//! Wrappers that get a value back through an out-pointer go through `call_out`, which puts the
//! pointer (and the other arguments) in the registers the ABI's argument table names
//! ([`Call::args`]) and checks that the value has the table's size. The host test
//! `vmm/tests/abi_rt.rs` runs every wrapper (guest program `abi_probe`) and checks each
//! register it set against the table.

use core::fmt;
use core::mem::ManuallyDrop;

use crate::abi::{self, Call, DirtyCounts, DirtyRange, PortPacket, VmoInfo, VmoStats, status};
use crate::hypercall::hypercall;

/// A Zircon status code (`zx_status_t`); [`Status::OK`] is success.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub i32);

/// `Ok(T)` or the failing [`Status`] (never [`Status::OK`]).
pub type Result<T> = core::result::Result<T, Status>;

macro_rules! status_consts {
    ($($name:ident = $abi:ident),* $(,)?) => {
        impl Status {
            $(
                #[doc = concat!("`", stringify!($abi), "`.")]
                pub const $name: Status = Status(status::$abi);
            )*
        }
    };
}

status_consts! {
    OK = ZX_OK,
    ERR_INTERNAL = ZX_ERR_INTERNAL,
    ERR_NOT_SUPPORTED = ZX_ERR_NOT_SUPPORTED,
    ERR_NO_RESOURCES = ZX_ERR_NO_RESOURCES,
    ERR_NO_MEMORY = ZX_ERR_NO_MEMORY,
    ERR_INVALID_ARGS = ZX_ERR_INVALID_ARGS,
    ERR_BAD_HANDLE = ZX_ERR_BAD_HANDLE,
    ERR_WRONG_TYPE = ZX_ERR_WRONG_TYPE,
    ERR_BAD_SYSCALL = ZX_ERR_BAD_SYSCALL,
    ERR_OUT_OF_RANGE = ZX_ERR_OUT_OF_RANGE,
    ERR_BUFFER_TOO_SMALL = ZX_ERR_BUFFER_TOO_SMALL,
    ERR_BAD_STATE = ZX_ERR_BAD_STATE,
    ERR_TIMED_OUT = ZX_ERR_TIMED_OUT,
    ERR_SHOULD_WAIT = ZX_ERR_SHOULD_WAIT,
    ERR_CANCELED = ZX_ERR_CANCELED,
    ERR_PEER_CLOSED = ZX_ERR_PEER_CLOSED,
    ERR_NOT_FOUND = ZX_ERR_NOT_FOUND,
    ERR_ALREADY_EXISTS = ZX_ERR_ALREADY_EXISTS,
    ERR_UNAVAILABLE = ZX_ERR_UNAVAILABLE,
    ERR_ACCESS_DENIED = ZX_ERR_ACCESS_DENIED,
    ERR_IO = ZX_ERR_IO,
    ERR_IO_DATA_INTEGRITY = ZX_ERR_IO_DATA_INTEGRITY,
    ERR_NO_SPACE = ZX_ERR_NO_SPACE,
}

impl Status {
    /// The status in `rax` after a hypercall (the low 32 bits, as the VMM sign-extends them).
    pub const fn from_rax(rax: u64) -> Status {
        Status(rax as u32 as i32)
    }

    /// Zircon's name for the status, e.g. `"ZX_ERR_BAD_HANDLE"`.
    pub const fn name(self) -> &'static str {
        status::name(self.0)
    }

    /// Whether this is [`Status::OK`].
    pub const fn is_ok(self) -> bool {
        self.0 == status::ZX_OK
    }

    /// `Ok(())` for [`Status::OK`], `Err(self)` otherwise.
    pub const fn ok(self) -> Result<()> {
        if self.is_ok() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if status::name(self.0) == "ZX_ERR_<unknown>" {
            write!(f, "Status({})", self.0)
        } else {
            f.write_str(self.name())
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Lets test cases (which return `Result<(), String>`) use `?` on hypercall results.
impl From<Status> for alloc::string::String {
    fn from(s: Status) -> Self {
        alloc::string::ToString::to_string(&s)
    }
}

/// The status of a hypercall that returns one.
#[inline(always)]
fn call(nr: Call, args: [u64; 8]) -> u64 {
    // SAFETY: only used by the wrappers below, which pass buffers they own (borrowed `&mut`
    // for the ones the VMM writes) with their exact lengths.
    unsafe { hypercall(nr as u64, args) }
}

#[inline(always)]
fn call_status(nr: Call, args: [u64; 8]) -> Result<()> {
    Status::from_rax(call(nr, args)).ok()
}

/// A guest-physical address of a value (RAM is identity mapped).
#[inline(always)]
fn gpa<T: ?Sized>(p: *const T) -> u64 {
    p.cast::<u8>() as u64
}

/// A handle value (`zx_handle_t`). Plain data: it is not closed on drop (see [`Vmo`],
/// [`Pager`] and [`Port`] for owning types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Handle(pub u32);

impl Handle {
    /// `ZX_HANDLE_INVALID`.
    pub const INVALID: Handle = Handle(abi::ZX_HANDLE_INVALID);

    /// The raw handle value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// `zx_handle_close`.
    pub fn close(self) -> Result<()> {
        handle_close(self)
    }

    /// `zx_handle_duplicate`.
    pub fn duplicate(self, rights: abi::Rights) -> Result<Handle> {
        handle_duplicate(self, rights)
    }

    /// `zx_handle_replace`.
    pub fn replace(self, rights: abi::Rights) -> Result<Handle> {
        handle_replace(self, rights)
    }
}

/// Makes a call with an out-pointer the VMM stores a `T` to: `ins` go to the call's other
/// arguments in order and the pointer to its out-argument, as the ABI table says
/// ([`Call::out`]); the table's size for the out-value must be `T`'s.
#[inline(always)]
fn call_out<T: Default>(nr: Call, ins: &[u64]) -> Result<T> {
    let size = nr.out().and_then(|(_, role)| role.out_size());
    assert!(size == Some(core::mem::size_of::<T>() as u64));
    let mut out = T::default();
    call_status(nr, place(nr, ins, gpa(&raw mut out)))?;
    Ok(out)
}

/// The eight argument registers of `nr` from its argument table row: `out` where the row has
/// an out-pointer, `ins` in order everywhere else; registers past the row are 0.
#[inline(always)]
fn place(nr: Call, ins: &[u64], out: u64) -> [u64; 8] {
    let mut a = [0u64; 8];
    let mut next = ins.iter().copied();
    for (reg, arg) in a.iter_mut().zip(nr.args()) {
        *reg = match arg.role.out_size() {
            Some(_) => out,
            None => next.next().unwrap_or(0),
        };
    }
    a
}

/// `Null`: does nothing; returns the status (always `ZX_OK`).
pub fn null() -> Status {
    Status::from_rax(call(Call::Null, [0; 8]))
}

/// `Exit`: stops the VM; `kvmpager run` exits with `code & 0xff`.
pub fn exit(code: i64) -> ! {
    call(Call::Exit, [code as u64, 0, 0, 0, 0, 0, 0, 0]);
    // The VMM never resumes a vCPU after Exit; spin in case it does anyway.
    loop {
        core::hint::spin_loop();
    }
}

/// `ConsoleWrite`: writes bytes to the VM console.
pub fn console_write(bytes: &[u8]) -> Result<()> {
    call_status(
        Call::ConsoleWrite,
        [gpa(bytes), bytes.len() as u64, 0, 0, 0, 0, 0, 0],
    )
}

/// `ClockGetMonotonic`: the monotonic clock in nanoseconds.
pub fn clock_monotonic() -> i64 {
    call(Call::ClockGetMonotonic, [0; 8]) as i64
}

/// `HandleClose`.
pub fn handle_close(handle: Handle) -> Result<()> {
    call_status(Call::HandleClose, [handle.0 as u64, 0, 0, 0, 0, 0, 0, 0])
}

/// `HandleDuplicate`: a new handle to the same object with `rights`.
pub fn handle_duplicate(handle: Handle, rights: abi::Rights) -> Result<Handle> {
    call_out::<u32>(Call::HandleDuplicate, &[handle.0 as u64, rights as u64]).map(Handle)
}

/// `HandleReplace`: replaces `handle` (which becomes invalid) by one with `rights`.
pub fn handle_replace(handle: Handle, rights: abi::Rights) -> Result<Handle> {
    call_out::<u32>(Call::HandleReplace, &[handle.0 as u64, rights as u64]).map(Handle)
}

/// `VmoCreate`.
pub fn vmo_create(size: u64, options: u32) -> Result<Handle> {
    call_out::<u32>(Call::VmoCreate, &[size, options as u64]).map(Handle)
}

/// `VmoRead`: fills `buf` from the VMO at `offset`.
pub fn vmo_read(vmo: Handle, buf: &mut [u8], offset: u64) -> Result<()> {
    call_status(
        Call::VmoRead,
        [
            vmo.0 as u64,
            gpa(&raw mut *buf),
            offset,
            buf.len() as u64,
            0,
            0,
            0,
            0,
        ],
    )
}

/// `VmoWrite`: writes `buf` to the VMO at `offset`.
pub fn vmo_write(vmo: Handle, buf: &[u8], offset: u64) -> Result<()> {
    call_status(
        Call::VmoWrite,
        [vmo.0 as u64, gpa(buf), offset, buf.len() as u64, 0, 0, 0, 0],
    )
}

/// `VmoGetSize`.
pub fn vmo_get_size(vmo: Handle) -> Result<u64> {
    call_out::<u64>(Call::VmoGetSize, &[vmo.0 as u64])
}

/// `VmoOpRange` (`abi::vmo_op`).
pub fn vmo_op_range(vmo: Handle, op: u32, offset: u64, size: u64) -> Result<()> {
    call_status(
        Call::VmoOpRange,
        [vmo.0 as u64, op as u64, offset, size, 0, 0, 0, 0],
    )
}

/// `VmoCreateChild` (`abi::vmo_child`).
pub fn vmo_create_child(vmo: Handle, options: u32, offset: u64, size: u64) -> Result<Handle> {
    call_out::<u32>(
        Call::VmoCreateChild,
        &[vmo.0 as u64, options as u64, offset, size],
    )
    .map(Handle)
}

/// `VmoGetInfo`.
pub fn vmo_get_info(vmo: Handle) -> Result<VmoInfo> {
    call_out::<VmoInfo>(Call::VmoGetInfo, &[vmo.0 as u64])
}

/// `PagerCreate`.
pub fn pager_create(options: u32) -> Result<Handle> {
    call_out::<u32>(Call::PagerCreate, &[options as u64]).map(Handle)
}

/// `PagerCreateVmo`: a pager-backed VMO whose page requests go to `port` with `key`.
pub fn pager_create_vmo(
    pager: Handle,
    options: u32,
    port: Handle,
    key: u64,
    size: u64,
) -> Result<Handle> {
    call_out::<u32>(
        Call::PagerCreateVmo,
        &[pager.0 as u64, options as u64, port.0 as u64, key, size],
    )
    .map(Handle)
}

/// `PagerDetachVmo`.
pub fn pager_detach_vmo(pager: Handle, vmo: Handle) -> Result<()> {
    call_status(
        Call::PagerDetachVmo,
        [pager.0 as u64, vmo.0 as u64, 0, 0, 0, 0, 0, 0],
    )
}

/// `PagerVmoOp` (the seed's call; `abi::pager_op`). For `ZX_PAGER_OP_FAIL` the status goes in
/// `aux_offset`; for the other non-supply ops `aux_offset` is their `data`.
pub fn pager_vmo_op(
    pager: Handle,
    pager_vmo: Handle,
    op: u32,
    offset: u64,
    length: u64,
    aux_vmo: Handle,
    aux_offset: u64,
) -> Result<()> {
    call_status(
        Call::PagerVmoOp,
        [
            pager.0 as u64,
            pager_vmo.0 as u64,
            op as u64,
            offset,
            length,
            aux_vmo.0 as u64,
            aux_offset,
            0,
        ],
    )
}

/// `PagerSupplyPages` (Fuchsia's argument order).
pub fn pager_supply_pages(
    pager: Handle,
    pager_vmo: Handle,
    offset: u64,
    length: u64,
    aux_vmo: Handle,
    aux_offset: u64,
) -> Result<()> {
    call_status(
        Call::PagerSupplyPages,
        [
            pager.0 as u64,
            pager_vmo.0 as u64,
            offset,
            length,
            aux_vmo.0 as u64,
            aux_offset,
            0,
            0,
        ],
    )
}

/// `PagerOpRange` (Fuchsia's argument order; `abi::pager_op`).
pub fn pager_op_range(
    pager: Handle,
    op: u32,
    pager_vmo: Handle,
    offset: u64,
    length: u64,
    data: u64,
) -> Result<()> {
    call_status(
        Call::PagerOpRange,
        [
            pager.0 as u64,
            op as u64,
            pager_vmo.0 as u64,
            offset,
            length,
            data,
            0,
            0,
        ],
    )
}

/// `PortCreate`.
pub fn port_create(options: u32) -> Result<Handle> {
    call_out::<u32>(Call::PortCreate, &[options as u64]).map(Handle)
}

/// `PortWait`: waits until `deadline_ns` on the monotonic clock ([`abi::ZX_TIME_INFINITE`]
/// for ever) for a packet.
pub fn port_wait(port: Handle, deadline_ns: i64) -> Result<PortPacket> {
    // `PortPacket` is `repr(C)` with exactly Zircon's 48-byte layout, so the VMM can write the
    // packet straight into it.
    call_out::<PortPacket>(Call::PortWait, &[port.0 as u64, deadline_ns as u64])
}

/// `VmarMap`: maps `vmo[vmo_offset, +len)` at guest-physical `gpa` inside the aperture
/// ([`abi::layout::APERTURE_START`]); options are `abi::vm_options`.
pub fn vmar_map(options: u32, gpa: u64, vmo: Handle, vmo_offset: u64, len: u64) -> Result<()> {
    call_status(
        Call::VmarMap,
        [options as u64, gpa, vmo.0 as u64, vmo_offset, len, 0, 0, 0],
    )
}

/// `VmarUnmap`: removes the mapping that starts at `gpa` (`len` must match it).
pub fn vmar_unmap(gpa: u64, len: u64) -> Result<()> {
    call_status(Call::VmarUnmap, [gpa, len, 0, 0, 0, 0, 0, 0])
}

/// `VcpuCount`: the number of vCPUs.
pub fn vcpu_count() -> usize {
    call(Call::VcpuCount, [0; 8]) as usize
}

/// `TestReport`: reports one test case result to the host.
pub fn test_report(case_name: &str, passed: bool, message: &str) -> Result<()> {
    call_status(
        Call::TestReport,
        [
            gpa(case_name.as_bytes()),
            case_name.len() as u64,
            passed as u64,
            gpa(message.as_bytes()),
            message.len() as u64,
            0,
            0,
            0,
        ],
    )
}

/// `Snapshot`: asks the VMM to snapshot the VM (needs `--snapshot DIR`).
pub fn snapshot() -> Result<()> {
    call_status(Call::Snapshot, [0; 8])
}

/// `VmoSetSize` (`zx_vmo_set_size`).
pub fn vmo_set_size(vmo: Handle, size: u64) -> Result<()> {
    call_status(Call::VmoSetSize, [vmo.0 as u64, size, 0, 0, 0, 0, 0, 0])
}

/// `PagerQueryDirtyRanges` with a raw byte buffer (entries are 24-byte [`DirtyRange`]s).
pub fn pager_query_dirty_ranges_raw(
    pager: Handle,
    pager_vmo: Handle,
    offset: u64,
    length: u64,
    buf: &mut [u8],
) -> Result<DirtyCounts> {
    let ins = [
        pager.0 as u64,
        pager_vmo.0 as u64,
        offset,
        length,
        gpa(&raw mut *buf),
        buf.len() as u64,
    ];
    call_out::<DirtyCounts>(Call::PagerQueryDirtyRanges, &ins)
}

/// `PagerQueryDirtyRanges` (`zx_pager_query_dirty_ranges`): fills `ranges` with the runs of
/// dirty pages in `[offset, offset + length)`; `actual` of them were written, `avail` found.
pub fn pager_query_dirty_ranges(
    pager: Handle,
    pager_vmo: Handle,
    offset: u64,
    length: u64,
    ranges: &mut [DirtyRange],
) -> Result<DirtyCounts> {
    let bytes = core::mem::size_of_val(ranges);
    // SAFETY: `DirtyRange` is `repr(C)`, three `u64`s without padding, so the slice's memory
    // is `bytes` initialised bytes and any bytes the VMM stores make valid `DirtyRange`s.
    let buf = unsafe { core::slice::from_raw_parts_mut(ranges.as_mut_ptr().cast::<u8>(), bytes) };
    pager_query_dirty_ranges_raw(pager, pager_vmo, offset, length, buf)
}

/// `PagerQueryVmoStats` with a raw byte buffer (the VMM stores a 4-byte [`VmoStats`] at its
/// start).
pub fn pager_query_vmo_stats_raw(
    pager: Handle,
    pager_vmo: Handle,
    options: u32,
    buf: &mut [u8],
) -> Result<()> {
    call_status(
        Call::PagerQueryVmoStats,
        [
            pager.0 as u64,
            pager_vmo.0 as u64,
            options as u64,
            gpa(&raw mut *buf),
            buf.len() as u64,
            0,
            0,
            0,
        ],
    )
}

/// `PagerQueryVmoStats` (`zx_pager_query_vmo_stats`); `options` 0 or
/// `abi::pager_op::ZX_PAGER_RESET_VMO_STATS`.
pub fn pager_query_vmo_stats(pager: Handle, pager_vmo: Handle, options: u32) -> Result<VmoStats> {
    let mut buf = [0u8; 4];
    pager_query_vmo_stats_raw(pager, pager_vmo, options, &mut buf)?;
    Ok(VmoStats {
        modified: u32::from_le_bytes(buf),
    })
}

/// `KvmpagerSetExceptionPort`: fatal page faults of vCPUs arrive on `port` as exception
/// packets ([`abi::ExceptionPacket`]) with `key`, and the faulting vCPU is parked, while another
/// vCPU runs; `Handle(0)` turns this off.
pub fn set_exception_port(port: Handle, key: u64) -> Result<()> {
    call_status(
        Call::KvmpagerSetExceptionPort,
        [port.0 as u64, key, 0, 0, 0, 0, 0, 0],
    )
}

macro_rules! owned_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, PartialEq, Eq)]
        pub struct $name(Handle);

        impl $name {
            /// Takes ownership of `handle` (closed when the value is dropped).
            pub const fn from_handle(handle: Handle) -> Self {
                Self(handle)
            }

            /// The handle, still owned by `self`.
            pub const fn handle(&self) -> Handle {
                self.0
            }

            /// The raw handle value, still owned by `self`.
            pub const fn raw(&self) -> u32 {
                self.0 .0
            }

            /// Gives up ownership: the handle is no longer closed on drop.
            pub fn into_handle(self) -> Handle {
                ManuallyDrop::new(self).0
            }

            /// `zx_handle_duplicate` into a new owned value.
            pub fn duplicate(&self, rights: abi::Rights) -> Result<Self> {
                handle_duplicate(self.0, rights).map(Self)
            }

            /// `zx_handle_replace`: consumes `self` (its handle is invalid afterwards, whatever
            /// the outcome, as in Zircon).
            pub fn replace(self, rights: abi::Rights) -> Result<Self> {
                handle_replace(self.into_handle(), rights).map(Self)
            }

            /// Closes the handle now and returns the status.
            pub fn close(self) -> Result<()> {
                handle_close(self.into_handle())
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // Errors are ignored here; use `close` to see them.
                let _ = handle_close(self.0);
            }
        }
    };
}

owned_handle! {
    /// An owned VMO handle; closed on drop.
    Vmo
}
owned_handle! {
    /// An owned pager handle; closed on drop.
    Pager
}
owned_handle! {
    /// An owned port handle; closed on drop.
    Port
}

impl Vmo {
    /// `zx_vmo_create`.
    pub fn create(size: u64, options: u32) -> Result<Vmo> {
        vmo_create(size, options).map(Vmo)
    }

    /// `zx_vmo_read` into `buf` from `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        vmo_read(self.0, buf, offset)
    }

    /// `zx_vmo_write` of `buf` at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> Result<()> {
        vmo_write(self.0, buf, offset)
    }

    /// `zx_vmo_get_size`.
    pub fn get_size(&self) -> Result<u64> {
        vmo_get_size(self.0)
    }

    /// `zx_vmo_op_range`.
    pub fn op_range(&self, op: u32, offset: u64, size: u64) -> Result<()> {
        vmo_op_range(self.0, op, offset, size)
    }

    /// `zx_vmo_set_size`.
    pub fn set_size(&self, size: u64) -> Result<()> {
        vmo_set_size(self.0, size)
    }

    /// `zx_vmo_create_child`.
    pub fn create_child(&self, options: u32, offset: u64, size: u64) -> Result<Vmo> {
        vmo_create_child(self.0, options, offset, size).map(Vmo)
    }

    /// `VmoGetInfo` (kvmpager's `ZX_INFO_VMO`).
    pub fn get_info(&self) -> Result<VmoInfo> {
        vmo_get_info(self.0)
    }

    /// `zx_vmar_map` of `[offset, +len)` at `gpa` in the aperture.
    pub fn map(&self, options: u32, gpa: u64, offset: u64, len: u64) -> Result<()> {
        vmar_map(options, gpa, self.0, offset, len)
    }
}

impl Pager {
    /// `zx_pager_create`.
    pub fn create(options: u32) -> Result<Pager> {
        pager_create(options).map(Pager)
    }

    /// `zx_pager_query_dirty_ranges` of `vmo` into `ranges`.
    pub fn query_dirty_ranges(
        &self,
        vmo: &Vmo,
        offset: u64,
        length: u64,
        ranges: &mut [DirtyRange],
    ) -> Result<DirtyCounts> {
        pager_query_dirty_ranges(self.0, vmo.0, offset, length, ranges)
    }

    /// `zx_pager_query_vmo_stats` of `vmo`.
    pub fn query_vmo_stats(&self, vmo: &Vmo, options: u32) -> Result<VmoStats> {
        pager_query_vmo_stats(self.0, vmo.0, options)
    }

    /// `zx_pager_create_vmo`: requests for the new VMO arrive on `port` with `key`.
    pub fn create_vmo(&self, options: u32, port: &Port, key: u64, size: u64) -> Result<Vmo> {
        pager_create_vmo(self.0, options, port.0, key, size).map(Vmo)
    }

    /// `zx_pager_detach_vmo`.
    pub fn detach(&self, vmo: &Vmo) -> Result<()> {
        pager_detach_vmo(self.0, vmo.0)
    }

    /// `PagerVmoOp` (the seed's call).
    pub fn vmo_op(
        &self,
        vmo: &Vmo,
        op: u32,
        offset: u64,
        length: u64,
        aux_vmo: Option<&Vmo>,
        aux_offset: u64,
    ) -> Result<()> {
        let aux = aux_vmo.map_or(Handle::INVALID, |v| v.0);
        pager_vmo_op(self.0, vmo.0, op, offset, length, aux, aux_offset)
    }

    /// `zx_pager_supply_pages`: moves `[aux_offset, +length)` of `aux` to `[offset, +length)`
    /// of `vmo`.
    pub fn supply_pages(
        &self,
        vmo: &Vmo,
        offset: u64,
        length: u64,
        aux: &Vmo,
        aux_offset: u64,
    ) -> Result<()> {
        pager_supply_pages(self.0, vmo.0, offset, length, aux.0, aux_offset)
    }

    /// `zx_pager_op_range`.
    pub fn op_range(&self, op: u32, vmo: &Vmo, offset: u64, length: u64, data: u64) -> Result<()> {
        pager_op_range(self.0, op, vmo.0, offset, length, data)
    }
}

impl Port {
    /// `zx_port_create`.
    pub fn create(options: u32) -> Result<Port> {
        port_create(options).map(Port)
    }

    /// `zx_port_wait` until `deadline_ns` ([`abi::ZX_TIME_INFINITE`] for ever).
    pub fn wait(&self, deadline_ns: i64) -> Result<PortPacket> {
        port_wait(self.0, deadline_ns)
    }

    /// `KvmpagerSetExceptionPort`: exception packets come to this port with `key`.
    pub fn set_exception_port(&self, key: u64) -> Result<()> {
        set_exception_port(self.0, key)
    }
}
