//! userfaultfd: catching faults on absent pages and supplying pages by moving them.
//!
//! This is written against the raw kernel ABI (`linux/userfaultfd.h`) rather than the
//! `userfaultfd` crate: that crate has no `UFFDIO_MOVE` (Linux 6.8), which is how kvmpager
//! supplies pages without copying them, and its `-sys` crate needs bindgen and libclang at
//! build time. The uapi structures and ioctl numbers are in [`sys`].
//!
//! A [`Userfault`] is created non-blocking (`O_NONBLOCK`) so an event loop can poll
//! [`Userfault::raw_fd`] and drain events with [`Userfault::read_event`]. It is created
//! *without* `UFFD_USER_MODE_ONLY`: faults the kernel takes on behalf of KVM (guest accesses
//! to absent pages) must be caught too.
//!
//! `MAP_PRIVATE` mappings of a shmem file can also be registered for minor faults
//! ([`Userfault::register_minor`]) and filled from the file's page cache with
//! [`Userfault::continue_pages`] (`UFFDIO_CONTINUE`).
//!
//! Range operations ([`Userfault::move_pages`], [`Userfault::copy`],
//! [`Userfault::zeropage`], [`Userfault::continue_pages`]) issue one ioctl for the whole range and loop only when the kernel
//! reports partial progress or `EAGAIN`; on a hard error they report how many bytes were
//! done before it. All addresses and lengths must be page aligned (the kernel returns
//! `EINVAL` otherwise).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ref, ioctl_with_val};

use self::sys::*;

/// The userfaultfd uapi (`linux/userfaultfd.h`, Linux 6.8+ for `UFFDIO_MOVE`).
#[allow(non_camel_case_types)]
pub mod sys {
    /// ioctl type of userfaultfd ioctls (`UFFDIO`).
    pub const UFFDIO: u32 = 0xAA;
    /// ioctl type of `/dev/userfaultfd` (`USERFAULTFD_IOC`).
    pub const USERFAULTFD_IOC: u32 = 0xAA;
    /// The API version handshaken with `UFFDIO_API`.
    pub const UFFD_API: u64 = 0xAA;
    /// `UFFD_USER_MODE_ONLY` flag of `userfaultfd(2)` (not used: KVM's faults must be seen).
    pub const UFFD_USER_MODE_ONLY: i32 = 1;

    /// ioctl number `_UFFDIO_REGISTER`.
    pub const _UFFDIO_REGISTER: u32 = 0x00;
    /// ioctl number `_UFFDIO_UNREGISTER`.
    pub const _UFFDIO_UNREGISTER: u32 = 0x01;
    /// ioctl number `_UFFDIO_WAKE`.
    pub const _UFFDIO_WAKE: u32 = 0x02;
    /// ioctl number `_UFFDIO_COPY`.
    pub const _UFFDIO_COPY: u32 = 0x03;
    /// ioctl number `_UFFDIO_ZEROPAGE`.
    pub const _UFFDIO_ZEROPAGE: u32 = 0x04;
    /// ioctl number `_UFFDIO_MOVE`.
    pub const _UFFDIO_MOVE: u32 = 0x05;
    /// ioctl number `_UFFDIO_WRITEPROTECT`.
    pub const _UFFDIO_WRITEPROTECT: u32 = 0x06;
    /// ioctl number `_UFFDIO_CONTINUE`.
    pub const _UFFDIO_CONTINUE: u32 = 0x07;
    /// ioctl number `_UFFDIO_API`.
    pub const _UFFDIO_API: u32 = 0x3F;
    /// ioctl number of `USERFAULTFD_IOC_NEW` on `/dev/userfaultfd`.
    pub const _USERFAULTFD_IOC_NEW: u32 = 0x00;

    /// Feature: write-protect faults on anonymous memory (`UFFDIO_REGISTER_MODE_WP`).
    pub const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
    /// Feature: page-fault messages carry the faulting thread id (`feat.ptid`).
    pub const UFFD_FEATURE_THREAD_ID: u64 = 1 << 8;
    /// Feature: `UFFDIO_MOVE` is available.
    pub const UFFD_FEATURE_MOVE: u64 = 1 << 16;
    /// Feature: minor faults on shmem (`UFFDIO_REGISTER_MODE_MINOR`, `UFFDIO_CONTINUE`).
    pub const UFFD_FEATURE_MINOR_SHMEM: u64 = 1 << 10;

    /// Register mode: report faults on missing pages.
    pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
    /// Register mode: report writes to write-protected pages.
    pub const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    /// Register mode: report faults on pages present in the page cache but not mapped.
    pub const UFFDIO_REGISTER_MODE_MINOR: u64 = 1 << 2;
    /// `UFFDIO_CONTINUE` mode: do not wake faulting threads.
    pub const UFFDIO_CONTINUE_MODE_DONTWAKE: u64 = 1 << 0;
    /// `UFFDIO_WRITEPROTECT` mode: protect (without it: unprotect and wake).
    pub const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
    /// `UFFDIO_COPY` mode: do not wake faulting threads.
    pub const UFFDIO_COPY_MODE_DONTWAKE: u64 = 1 << 0;
    /// `UFFDIO_COPY` mode: map the new pages write-protected (a range registered with WP).
    pub const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;
    /// `UFFDIO_ZEROPAGE` mode: do not wake faulting threads.
    pub const UFFDIO_ZEROPAGE_MODE_DONTWAKE: u64 = 1 << 0;
    /// `UFFDIO_MOVE` mode: do not wake faulting threads.
    pub const UFFDIO_MOVE_MODE_DONTWAKE: u64 = 1 << 0;
    /// `UFFDIO_MOVE` mode: skip absent source pages instead of failing with `ENOENT`.
    pub const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u64 = 1 << 1;

    /// Event: a page fault on a registered range.
    pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
    /// Page-fault flag: the fault was a write.
    pub const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1 << 0;
    /// Page-fault flag: the fault was a write to a write-protected page.
    pub const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;
    /// Page-fault flag: a minor fault (the page is in the page cache, not mapped).
    pub const UFFD_PAGEFAULT_FLAG_MINOR: u64 = 1 << 2;

    /// `struct uffdio_api`: the `UFFDIO_API` handshake.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_api {
        /// In: [`UFFD_API`].
        pub api: u64,
        /// In: requested features; out: all features the kernel supports.
        pub features: u64,
        /// Out: bitmask of the fd-wide ioctls supported.
        pub ioctls: u64,
    }

    /// `struct uffdio_range`: a page-aligned address range.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_range {
        /// Start address.
        pub start: u64,
        /// Length in bytes.
        pub len: u64,
    }

    /// `struct uffdio_register`: argument of `UFFDIO_REGISTER`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_register {
        /// The range to register.
        pub range: uffdio_range,
        /// `UFFDIO_REGISTER_MODE_*` bits.
        pub mode: u64,
        /// Out: bitmask of the range ioctls supported on the range.
        pub ioctls: u64,
    }

    /// `struct uffdio_copy`: argument of `UFFDIO_COPY`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_copy {
        /// Destination (registered) address.
        pub dst: u64,
        /// Source address.
        pub src: u64,
        /// Length in bytes.
        pub len: u64,
        /// `UFFDIO_COPY_MODE_*` bits.
        pub mode: u64,
        /// Out: bytes copied, or a negated errno.
        pub copy: i64,
    }

    /// `struct uffdio_zeropage`: argument of `UFFDIO_ZEROPAGE`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_zeropage {
        /// The (registered) range to map zero pages into.
        pub range: uffdio_range,
        /// `UFFDIO_ZEROPAGE_MODE_*` bits.
        pub mode: u64,
        /// Out: bytes mapped, or a negated errno.
        pub zeropage: i64,
    }

    /// `struct uffdio_move`: argument of `UFFDIO_MOVE`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_move {
        /// Destination (registered) address.
        pub dst: u64,
        /// Source address.
        pub src: u64,
        /// Length in bytes.
        pub len: u64,
        /// `UFFDIO_MOVE_MODE_*` bits.
        pub mode: u64,
        /// Out: bytes moved, or a negated errno.
        pub r#move: i64,
    }

    /// `struct uffdio_continue`: argument of `UFFDIO_CONTINUE`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_continue {
        /// The (registered) range to map page-cache pages into.
        pub range: uffdio_range,
        /// `UFFDIO_CONTINUE_MODE_*` bits.
        pub mode: u64,
        /// Out: bytes mapped, or a negated errno.
        pub mapped: i64,
    }

    /// `struct uffdio_writeprotect`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffdio_writeprotect {
        /// The range.
        pub range: uffdio_range,
        /// `UFFDIO_WRITEPROTECT_MODE_*` bits.
        pub mode: u64,
    }

    /// The `pagefault` member of `uffd_msg`'s argument union (24 bytes, the size of the
    /// union; the other members, for fork/remap/remove events, are not decoded).
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffd_msg_pagefault {
        /// `UFFD_PAGEFAULT_FLAG_*` bits.
        pub flags: u64,
        /// Faulting address (page aligned unless `UFFD_FEATURE_EXACT_ADDRESS`).
        pub address: u64,
        /// Faulting thread id (`feat.ptid`, with `UFFD_FEATURE_THREAD_ID`).
        pub ptid: u32,
        /// Tail padding of the kernel's structure.
        pub _pad: u32,
    }

    /// `struct uffd_msg`: one event read from the userfaultfd (32 bytes).
    ///
    /// The kernel declares it `packed`, but every field is naturally aligned, so this
    /// `repr(C)` layout has the same size and offsets.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct uffd_msg {
        /// `UFFD_EVENT_*`.
        pub event: u8,
        /// Reserved.
        pub reserved1: u8,
        /// Reserved.
        pub reserved2: u16,
        /// Reserved.
        pub reserved3: u32,
        /// The event argument, viewed as its `pagefault` member.
        pub arg: uffd_msg_pagefault,
    }

    const _: () = assert!(size_of::<uffdio_api>() == 24);
    const _: () = assert!(size_of::<uffdio_range>() == 16);
    const _: () = assert!(size_of::<uffdio_register>() == 32);
    const _: () = assert!(size_of::<uffdio_copy>() == 40);
    const _: () = assert!(size_of::<uffdio_zeropage>() == 32);
    const _: () = assert!(size_of::<uffdio_move>() == 40);
    const _: () = assert!(size_of::<uffd_msg>() == 32);
    const _: () = assert!(size_of::<uffdio_writeprotect>() == 24);
    const _: () = assert!(size_of::<uffdio_continue>() == 32);
}

/// ioctl request numbers, generated by vmm-sys-util's `_IOC` macros.
mod nr {
    use super::sys::*;

    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_API, UFFDIO, _UFFDIO_API, uffdio_api);
    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_REGISTER, UFFDIO, _UFFDIO_REGISTER, uffdio_register);
    vmm_sys_util::ioctl_ior_nr!(UFFDIO_UNREGISTER, UFFDIO, _UFFDIO_UNREGISTER, uffdio_range);
    vmm_sys_util::ioctl_ior_nr!(UFFDIO_WAKE, UFFDIO, _UFFDIO_WAKE, uffdio_range);
    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_COPY, UFFDIO, _UFFDIO_COPY, uffdio_copy);
    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_ZEROPAGE, UFFDIO, _UFFDIO_ZEROPAGE, uffdio_zeropage);
    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_MOVE, UFFDIO, _UFFDIO_MOVE, uffdio_move);
    vmm_sys_util::ioctl_iowr_nr!(UFFDIO_CONTINUE, UFFDIO, _UFFDIO_CONTINUE, uffdio_continue);
    vmm_sys_util::ioctl_iowr_nr!(
        UFFDIO_WRITEPROTECT,
        UFFDIO,
        _UFFDIO_WRITEPROTECT,
        uffdio_writeprotect
    );
    vmm_sys_util::ioctl_io_nr!(USERFAULTFD_IOC_NEW, USERFAULTFD_IOC, _USERFAULTFD_IOC_NEW);
}

/// Errors from userfaultfd operations. Range operations report the bytes done before the error.
#[derive(thiserror::Error, Debug)]
pub enum UffdError {
    /// Neither `userfaultfd(2)` nor `/dev/userfaultfd` produced a descriptor.
    #[error("creating a userfaultfd failed: {0}")]
    Create(#[source] io::Error),
    /// The `UFFDIO_API` handshake failed.
    #[error("UFFDIO_API handshake failed: {0}")]
    Api(#[source] io::Error),
    /// `UFFDIO_REGISTER` failed.
    #[error("UFFDIO_REGISTER of [{addr:#x}, +{len:#x}) failed: {source}")]
    Register {
        /// Start of the range.
        addr: u64,
        /// Length of the range.
        len: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_UNREGISTER` failed.
    #[error("UFFDIO_UNREGISTER of [{addr:#x}, +{len:#x}) failed: {source}")]
    Unregister {
        /// Start of the range.
        addr: u64,
        /// Length of the range.
        len: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_MOVE` failed after moving `moved` bytes.
    #[error("UFFDIO_MOVE failed after {moved:#x} bytes: {source}")]
    Move {
        /// Bytes moved before the error.
        moved: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_COPY` failed after copying `copied` bytes.
    #[error("UFFDIO_COPY failed after {copied:#x} bytes: {source}")]
    Copy {
        /// Bytes copied before the error.
        copied: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_ZEROPAGE` failed after mapping `zeroed` bytes.
    #[error("UFFDIO_ZEROPAGE failed after {zeroed:#x} bytes: {source}")]
    Zeropage {
        /// Bytes mapped before the error.
        zeroed: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_CONTINUE` failed after mapping `mapped` bytes.
    #[error("UFFDIO_CONTINUE failed after {mapped:#x} bytes: {source}")]
    Continue {
        /// Bytes mapped before the error.
        mapped: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `UFFDIO_WAKE` failed.
    #[error("UFFDIO_WAKE failed: {0}")]
    Wake(#[source] io::Error),
    /// Reading an event failed (a short read is `UnexpectedEof`).
    #[error("reading a userfaultfd event failed: {0}")]
    Read(#[source] io::Error),
}

impl UffdError {
    /// The errno of the underlying OS error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            UffdError::Create(e) | UffdError::Api(e) | UffdError::Wake(e) | UffdError::Read(e) => {
                e.raw_os_error()
            }
            UffdError::Register { source, .. }
            | UffdError::Unregister { source, .. }
            | UffdError::Move { source, .. }
            | UffdError::Copy { source, .. }
            | UffdError::Zeropage { source, .. }
            | UffdError::Continue { source, .. } => source.raw_os_error(),
        }
    }

    /// Bytes a failed `move_pages` moved before it stopped (0 for other errors).
    pub fn moved(&self) -> u64 {
        match self {
            UffdError::Move { moved, .. } => *moved,
            _ => 0,
        }
    }

    /// Bytes a failed `zeropage` or `continue_pages` mapped before it stopped (0 for other
    /// errors).
    pub fn mapped(&self) -> u64 {
        match self {
            UffdError::Zeropage { zeroed: n, .. } | UffdError::Continue { mapped: n, .. } => *n,
            _ => 0,
        }
    }

    /// Bytes a failed `copy` copied before it stopped (0 for other errors).
    pub fn copied(&self) -> u64 {
        match self {
            UffdError::Copy { copied, .. } => *copied,
            _ => 0,
        }
    }
}

/// An event read from a userfaultfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UffdEvent {
    /// A thread (or KVM on a vCPU thread's behalf) faulted on an absent registered page.
    PageFault {
        /// Faulting address, rounded down to its page.
        addr: u64,
        /// Whether the access was a write.
        write: bool,
        /// Whether it was a write to a write-protected (present) page.
        wp: bool,
        /// Whether it was a minor fault: the page is in the shared file's page cache but not
        /// mapped here (ranges registered with [`Userfault::register_minor`]).
        minor: bool,
        /// Thread id of the faulting thread (0 if `UFFD_FEATURE_THREAD_ID` was not granted).
        tid: u32,
    },
    /// Any other event, by its `UFFD_EVENT_*` code.
    Other(u8),
}

/// A userfaultfd descriptor with its negotiated features.
#[derive(Debug)]
pub struct Userfault {
    /// The descriptor (non-blocking, close-on-exec).
    fd: OwnedFd,
    /// Features requested and granted by `UFFDIO_API`.
    features: u64,
}

/// Times an operation is retried on `EAGAIN` without any progress before giving up.
const MAX_STALLS: u32 = 10_000;

impl Userfault {
    /// Creates a userfaultfd (`O_CLOEXEC | O_NONBLOCK`, all faults including the kernel's)
    /// and handshakes `UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MOVE`.
    ///
    /// Uses `userfaultfd(2)`, or `/dev/userfaultfd` when the syscall is refused with `EPERM`.
    /// If the kernel rejects the features (`EINVAL`, no `UFFDIO_MOVE`), retries on a fresh
    /// descriptor without `UFFD_FEATURE_MOVE`; see [`Userfault::supports_move`].
    pub fn new() -> Result<Self, UffdError> {
        let all = UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MOVE | UFFD_FEATURE_PAGEFAULT_FLAG_WP;
        let wanted = [
            all | UFFD_FEATURE_MINOR_SHMEM,
            all,
            UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_MOVE,
        ];
        for features in wanted {
            match Self::with_features(features) {
                Err(UffdError::Api(e)) if e.raw_os_error() == Some(libc::EINVAL) => continue,
                other => return other,
            }
        }
        Self::new_without_move()
    }

    /// Whether write-protect faults (`UFFD_FEATURE_PAGEFAULT_FLAG_WP`) were granted.
    pub fn supports_wp(&self) -> bool {
        self.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP != 0
    }

    /// Like [`Userfault::register_missing`], also reporting writes to write-protected pages
    /// when `wp` is set and the feature was granted.
    pub fn register(&self, addr: u64, len: u64, wp: bool) -> Result<(), UffdError> {
        let mut mode = UFFDIO_REGISTER_MODE_MISSING;
        if wp && self.supports_wp() {
            mode |= UFFDIO_REGISTER_MODE_WP;
        }
        self.register_mode(addr, len, mode)
    }

    /// Write-protects `[addr, addr + len)` (present pages of a range registered with `wp`),
    /// or unprotects it, which also wakes threads blocked writing to it.
    pub fn write_protect(&self, addr: u64, len: u64, protect: bool) -> Result<(), UffdError> {
        if len == 0 {
            return Ok(());
        }
        let arg = uffdio_writeprotect {
            range: uffdio_range { start: addr, len },
            mode: if protect {
                UFFDIO_WRITEPROTECT_MODE_WP
            } else {
                0
            },
        };
        // SAFETY: UFFDIO_WRITEPROTECT reads exactly one uffdio_writeprotect, which `arg` is;
        // it only changes page-table write permissions of the registered range.
        let rc = unsafe { ioctl_with_ref(&self.fd, nr::UFFDIO_WRITEPROTECT(), &arg) };
        check(rc).map_err(UffdError::Wake)
    }

    /// Like [`Userfault::new`] but never requests `UFFD_FEATURE_MOVE`, so
    /// [`Userfault::move_pages`] always fails and callers take their copy fallback.
    pub fn new_without_move() -> Result<Self, UffdError> {
        Self::with_features(UFFD_FEATURE_THREAD_ID)
    }

    /// Whether minor faults on shmem (`UFFD_FEATURE_MINOR_SHMEM`) were granted: what
    /// [`Userfault::register_minor`] and [`Userfault::continue_pages`] need.
    pub fn supports_minor(&self) -> bool {
        self.features & UFFD_FEATURE_MINOR_SHMEM != 0
    }

    /// Registers `[addr, addr + len)` — a `MAP_PRIVATE` mapping of a shmem file — for
    /// MISSING and MINOR faults: a touch of a page the file holds is a minor fault (resolved
    /// with [`Userfault::continue_pages`]), a touch of a hole in the file a missing one
    /// (resolved with [`Userfault::zeropage`] or [`Userfault::copy`], which put a private
    /// page here and never write the file).
    pub fn register_minor(&self, addr: u64, len: u64) -> Result<(), UffdError> {
        let mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
        self.register_mode(addr, len, mode)
    }

    /// Maps the shared file's page-cache pages behind `[dst, dst + len)` (a range registered
    /// with [`Userfault::register_minor`]) with `UFFDIO_CONTINUE`, read-only for a private
    /// mapping (a later write copies the page), waking faulting threads when `wake`; returns
    /// `len`. A hole in the file stops it with `EFAULT`, a page already mapped with `EEXIST`
    /// ([`UffdError::mapped`] says how far it got).
    pub fn continue_pages(&self, dst: u64, len: u64, wake: bool) -> Result<u64, UffdError> {
        run_range(len, |done| {
            let mut arg = uffdio_continue {
                range: uffdio_range {
                    start: dst.wrapping_add(done),
                    len: len - done,
                },
                mode: if wake {
                    0
                } else {
                    UFFDIO_CONTINUE_MODE_DONTWAKE
                },
                mapped: 0,
            };
            // SAFETY: UFFDIO_CONTINUE reads and writes exactly one uffdio_continue, which
            // `arg` is. It only maps existing page-cache pages into absent PTEs of a
            // registered range.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, nr::UFFDIO_CONTINUE(), &mut arg) };
            (check(rc), arg.mapped)
        })
        .map_err(|(mapped, source)| UffdError::Continue { mapped, source })
    }

    /// Whether `UFFD_FEATURE_MOVE` was granted.
    pub fn supports_move(&self) -> bool {
        self.features & UFFD_FEATURE_MOVE != 0
    }

    /// Registers `[addr, addr + len)` (page aligned, private anonymous memory) so faults on
    /// missing pages are reported as [`UffdEvent::PageFault`] and block until resolved.
    pub fn register_missing(&self, addr: u64, len: u64) -> Result<(), UffdError> {
        self.register_mode(addr, len, UFFDIO_REGISTER_MODE_MISSING)
    }

    fn register_mode(&self, addr: u64, len: u64, mode: u64) -> Result<(), UffdError> {
        let mut reg = uffdio_register {
            range: uffdio_range { start: addr, len },
            mode,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes exactly one uffdio_register, which `reg` is.
        let rc = unsafe { ioctl_with_mut_ref(&self.fd, nr::UFFDIO_REGISTER(), &mut reg) };
        check(rc).map_err(|source| UffdError::Register { addr, len, source })
    }

    /// Unregisters `[addr, addr + len)`; threads blocked on it are woken and retry.
    pub fn unregister(&self, addr: u64, len: u64) -> Result<(), UffdError> {
        let range = uffdio_range { start: addr, len };
        // SAFETY: UFFDIO_UNREGISTER reads exactly one uffdio_range, which `range` is.
        let rc = unsafe { ioctl_with_ref(&self.fd, nr::UFFDIO_UNREGISTER(), &range) };
        check(rc).map_err(|source| UffdError::Unregister { addr, len, source })
    }

    /// Moves the pages of `[src, src + len)` to `[dst, dst + len)` with `UFFDIO_MOVE`
    /// (mode 0: threads faulting on `dst` are woken), without copying; returns `len`.
    ///
    /// Both ranges must be private anonymous memory of this process, `dst` registered with
    /// this userfaultfd and absent (`EEXIST` otherwise), `src` present (`ENOENT` otherwise);
    /// `EBUSY` means a source page is pinned or shared (fall back to [`Userfault::copy`]).
    /// A 2 MiB-aligned huge source page moves whole onto an empty 2 MiB-aligned destination.
    /// Without [`Userfault::supports_move`] this fails with `EOPNOTSUPP`, moving nothing.
    pub fn move_pages(&self, dst: u64, src: u64, len: u64) -> Result<u64, UffdError> {
        self.move_pages_mode(dst, src, len, true)
    }

    /// [`Userfault::move_pages`], waking the threads faulting on `dst` only if `wake`
    /// (`UFFDIO_MOVE_MODE_DONTWAKE` otherwise: the caller wakes them later).
    pub fn move_pages_mode(
        &self,
        dst: u64,
        src: u64,
        len: u64,
        wake: bool,
    ) -> Result<u64, UffdError> {
        if !self.supports_move() {
            let source = io::Error::from_raw_os_error(libc::EOPNOTSUPP);
            return Err(UffdError::Move { moved: 0, source });
        }
        run_range(len, |done| {
            let mut arg = uffdio_move {
                dst: dst.wrapping_add(done),
                src: src.wrapping_add(done),
                len: len - done,
                mode: if wake { 0 } else { UFFDIO_MOVE_MODE_DONTWAKE },
                ..Default::default()
            };
            // SAFETY: UFFDIO_MOVE reads and writes exactly one uffdio_move, which `arg` is. It
            // only remaps pages of private anonymous memory, which Rust code reaches only
            // through raw pointers (HostMemory's copying accessors), never references.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, nr::UFFDIO_MOVE(), &mut arg) };
            (check(rc), arg.r#move)
        })
        .map_err(|(moved, source)| UffdError::Move { moved, source })
    }

    /// Copies `[src, src + len)` into the absent pages `[dst, dst + len)` with `UFFDIO_COPY`
    /// (mode 0: faulting threads are woken); returns `len`. The source is left intact.
    pub fn copy(&self, dst: u64, src: u64, len: u64) -> Result<u64, UffdError> {
        self.copy_mode(dst, src, len, true)
    }

    /// [`Userfault::copy`], waking faulting threads only if `wake`.
    pub fn copy_mode(&self, dst: u64, src: u64, len: u64, wake: bool) -> Result<u64, UffdError> {
        let mode = if wake { 0 } else { UFFDIO_COPY_MODE_DONTWAKE };
        self.copy_with(dst, src, len, mode)
    }

    /// [`Userfault::copy`] that maps the new pages write-protected (`UFFDIO_COPY_MODE_WP`, a
    /// range registered with `wp` on a host that supports it), waking faulting threads.
    pub fn copy_protected(&self, dst: u64, src: u64, len: u64) -> Result<u64, UffdError> {
        self.copy_with(dst, src, len, UFFDIO_COPY_MODE_WP)
    }

    fn copy_with(&self, dst: u64, src: u64, len: u64, mode: u64) -> Result<u64, UffdError> {
        run_range(len, |done| {
            let mut arg = uffdio_copy {
                dst: dst.wrapping_add(done),
                src: src.wrapping_add(done),
                len: len - done,
                mode,
                ..Default::default()
            };
            // SAFETY: UFFDIO_COPY reads and writes exactly one uffdio_copy, which `arg` is. It
            // only fills absent pages of a registered range; a bad `src` yields EFAULT.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, nr::UFFDIO_COPY(), &mut arg) };
            (check(rc), arg.copy)
        })
        .map_err(|(copied, source)| UffdError::Copy { copied, source })
    }

    /// Maps the shared zero page at the absent pages `[dst, dst + len)` with
    /// `UFFDIO_ZEROPAGE` (mode 0: faulting threads are woken); returns `len`.
    pub fn zeropage(&self, dst: u64, len: u64) -> Result<u64, UffdError> {
        run_range(len, |done| {
            let mut arg = uffdio_zeropage {
                range: uffdio_range {
                    start: dst.wrapping_add(done),
                    len: len - done,
                },
                ..Default::default()
            };
            // SAFETY: UFFDIO_ZEROPAGE reads and writes exactly one uffdio_zeropage, which
            // `arg` is. It only fills absent pages of a registered range.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, nr::UFFDIO_ZEROPAGE(), &mut arg) };
            (check(rc), arg.zeropage)
        })
        .map_err(|(zeroed, source)| UffdError::Zeropage { zeroed, source })
    }

    /// Wakes threads blocked on faults in `[addr, addr + len)` (`UFFDIO_WAKE`). A zero
    /// length is a no-op.
    pub fn wake(&self, addr: u64, len: u64) -> Result<(), UffdError> {
        if len == 0 {
            return Ok(());
        }
        let range = uffdio_range { start: addr, len };
        // SAFETY: UFFDIO_WAKE reads exactly one uffdio_range, which `range` is.
        let rc = unsafe { ioctl_with_ref(&self.fd, nr::UFFDIO_WAKE(), &range) };
        check(rc).map_err(UffdError::Wake)
    }

    /// Reads one pending event without blocking; `Ok(None)` when there is none (`EAGAIN`).
    pub fn read_event(&self) -> Result<Option<UffdEvent>, UffdError> {
        let mut msg = uffd_msg::default();
        let want = size_of::<uffd_msg>();
        let n = loop {
            // SAFETY: `msg` is a plain-data buffer of exactly `want` writable bytes.
            let n = unsafe { libc::read(self.raw_fd(), (&raw mut msg).cast(), want) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(UffdError::Read(err)),
            }
        };
        if n != want {
            let msg = format!("short userfaultfd read: {n} of {want} bytes");
            return Err(UffdError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                msg,
            )));
        }
        Ok(Some(decode(&msg)))
    }

    /// Reads up to [`EVENT_BATCH`] pending events with one `read` and hands each to `f`;
    /// returns how many there were (0: none pending). Fewer than [`EVENT_BATCH`] means the
    /// queue was drained when the kernel answered, so an event loop need not read again
    /// before it polls.
    pub fn read_events(&self, mut f: impl FnMut(UffdEvent)) -> Result<usize, UffdError> {
        let mut msgs = [uffd_msg::default(); EVENT_BATCH];
        let one = size_of::<uffd_msg>();
        let n = loop {
            // SAFETY: `msgs` is a plain-data buffer of exactly `size_of_val(&msgs)` writable
            // bytes.
            let n =
                unsafe { libc::read(self.raw_fd(), msgs.as_mut_ptr().cast(), size_of_val(&msgs)) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(0),
                Some(libc::EINTR) => continue,
                _ => return Err(UffdError::Read(err)),
            }
        };
        if !n.is_multiple_of(one) {
            let msg = format!("short userfaultfd read: {n} bytes, not whole {one}-byte events");
            return Err(UffdError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                msg,
            )));
        }
        msgs[..n / one].iter().for_each(|m| f(decode(m)));
        Ok(n / one)
    }

    /// The raw descriptor, for registering with an epoll-based event loop.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Creates a descriptor and handshakes exactly `features`.
    fn with_features(features: u64) -> Result<Self, UffdError> {
        let fd = create().map_err(UffdError::Create)?;
        let granted = handshake(&fd, features).map_err(UffdError::Api)?;
        Ok(Userfault {
            fd,
            features: granted,
        })
    }
}

/// Most events [`Userfault::read_events`] reads at once.
pub const EVENT_BATCH: usize = 16;

/// Flags for the new descriptor.
const FD_FLAGS: libc::c_int = libc::O_CLOEXEC | libc::O_NONBLOCK;

/// `userfaultfd(2)`, falling back to `/dev/userfaultfd` on `EPERM`.
fn create() -> io::Result<OwnedFd> {
    // SAFETY: userfaultfd(2) takes only a flags word and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, FD_FLAGS) };
    if fd >= 0 {
        return Ok(owned(fd as RawFd));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    create_via_device()
}

/// Opens `/dev/userfaultfd` and asks it for a descriptor (`USERFAULTFD_IOC_NEW`).
fn create_via_device() -> io::Result<OwnedFd> {
    let dev = File::options()
        .read(true)
        .write(true)
        .open("/dev/userfaultfd")?;
    let flags = FD_FLAGS as libc::c_ulong;
    // SAFETY: USERFAULTFD_IOC_NEW takes its flags by value and returns a new descriptor or -1.
    let fd = unsafe { ioctl_with_val(&dev, nr::USERFAULTFD_IOC_NEW(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned(fd))
}

/// Takes ownership of a descriptor just returned by the kernel.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a fresh, valid descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `UFFDIO_API` with `features`; returns the features granted (requested and supported).
fn handshake(fd: &OwnedFd, features: u64) -> io::Result<u64> {
    let mut api = uffdio_api {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes exactly one uffdio_api, which `api` is.
    let rc = unsafe { ioctl_with_mut_ref(fd, nr::UFFDIO_API(), &mut api) };
    check(rc)?;
    // The kernel reports every feature it supports; those requested are now enabled.
    Ok(features & api.features)
}

/// Turns an ioctl return code into a result, capturing errno on failure.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs a range ioctl until `len` bytes are done. `step(done)` issues the ioctl for the
/// remaining range and returns its result and progress field (bytes, or a negated errno).
/// Partial progress and `EAGAIN` retry; other errors return `(done, error)`.
fn run_range(
    len: u64,
    mut step: impl FnMut(u64) -> (io::Result<()>, i64),
) -> Result<u64, (u64, io::Error)> {
    let mut done = 0;
    let mut stalls = 0;
    while done < len {
        let (result, progress) = step(done);
        if progress > 0 {
            done = done.saturating_add(progress as u64).min(len);
            stalls = 0;
        }
        match result {
            Ok(()) => return Ok(len),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if progress <= 0 {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err((done, e));
                    }
                    std::thread::yield_now();
                }
            }
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}

/// Decodes a raw message.
fn decode(msg: &uffd_msg) -> UffdEvent {
    if msg.event != UFFD_EVENT_PAGEFAULT {
        return UffdEvent::Other(msg.event);
    }
    UffdEvent::PageFault {
        addr: msg.arg.address,
        write: msg.arg.flags & UFFD_PAGEFAULT_FLAG_WRITE != 0,
        wp: msg.arg.flags & UFFD_PAGEFAULT_FLAG_WP != 0,
        minor: msg.arg.flags & UFFD_PAGEFAULT_FLAG_MINOR != 0,
        tid: msg.arg.ptid,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::{self, Receiver};
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::abi::{HUGE_PAGE_SIZE, PAGE_SIZE};
    use crate::hostmem::HostMemory;

    const TIMEOUT: Duration = Duration::from_secs(5);
    const PAGE: usize = PAGE_SIZE as usize;

    /// Polls for the next event, failing the test after [`TIMEOUT`].
    fn wait_event(uffd: &Userfault) -> UffdEvent {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(ev) = uffd.read_event().unwrap() {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "no userfaultfd event within {TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// A region filled with a per-page pattern, fully present.
    fn filled(len: u64, huge: bool, seed: u8) -> HostMemory {
        let mem = HostMemory::new(len, huge).unwrap();
        mem.populate(0, len).unwrap();
        mem.write(0, &pattern(len as usize, seed)).unwrap();
        mem
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i / PAGE) as u8 ^ (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    fn read_vec(mem: &HostMemory, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        mem.read(offset, &mut buf).unwrap();
        buf
    }

    /// Runs `f` on a helper thread; returns its thread id and a receiver for its result.
    fn spawn_access<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> (u32, Receiver<T>) {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (out_tx, out_rx) = mpsc::channel();
        thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = out_tx.send(f());
        });
        (tid_rx.recv_timeout(TIMEOUT).unwrap(), out_rx)
    }

    /// A fresh region of `len` bytes registered for missing faults.
    fn registered(uffd: &Userfault, len: u64, huge: bool) -> Arc<HostMemory> {
        let mem = Arc::new(HostMemory::new(len, huge).unwrap());
        uffd.register_missing(mem.host_addr(), mem.len()).unwrap();
        mem
    }

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        assert_eq!(nr::UFFDIO_API(), 0xC018_AA3F);
        assert_eq!(nr::UFFDIO_REGISTER(), 0xC020_AA00);
        assert_eq!(nr::UFFDIO_UNREGISTER(), 0x8010_AA01);
        assert_eq!(nr::UFFDIO_WAKE(), 0x8010_AA02);
        assert_eq!(nr::UFFDIO_COPY(), 0xC028_AA03);
        assert_eq!(nr::UFFDIO_ZEROPAGE(), 0xC020_AA04);
        assert_eq!(nr::UFFDIO_MOVE(), 0xC028_AA05);
        assert_eq!(nr::UFFDIO_CONTINUE(), 0xC020_AA07);
        assert_eq!(nr::USERFAULTFD_IOC_NEW(), 0xAA00);
    }

    #[test]
    fn new_negotiates_move_and_thread_id() {
        let uffd = Userfault::new().unwrap();
        assert!(uffd.supports_move(), "kernel without UFFDIO_MOVE?");
        assert_ne!(uffd.features & UFFD_FEATURE_THREAD_ID, 0);
        assert!(uffd.raw_fd() >= 0);
        assert_eq!(uffd.read_event().unwrap(), None);
        let plain = Userfault::new_without_move().unwrap();
        assert!(!plain.supports_move());
    }

    #[test]
    fn device_fallback_creates_a_working_fd() {
        let fd = create_via_device().unwrap();
        assert_ne!(handshake(&fd, UFFD_FEATURE_THREAD_ID).unwrap(), 0);
    }

    #[test]
    fn fault_is_resolved_by_a_zero_copy_move() {
        let uffd = Userfault::new().unwrap();
        let dst = registered(&uffd, 8 * PAGE_SIZE, false);
        let reader = Arc::clone(&dst);
        let (tid, out) = spawn_access(move || read_vec(&reader, 3 * PAGE_SIZE + 100, 64));

        let event = wait_event(&uffd);
        let page = dst.host_addr() + 3 * PAGE_SIZE;
        assert_eq!(
            event,
            UffdEvent::PageFault {
                addr: page,
                write: false,
                wp: false,
                minor: false,
                tid
            }
        );
        assert!(
            out.recv_timeout(Duration::from_millis(50)).is_err(),
            "reader did not block"
        );

        let src = filled(PAGE_SIZE, false, 0x5a);
        let src_pfn = src.pfn(0).unwrap().expect("source present");
        assert_eq!(
            uffd.move_pages(page, src.host_addr(), PAGE_SIZE).unwrap(),
            PAGE_SIZE
        );

        assert_eq!(
            out.recv_timeout(TIMEOUT).unwrap(),
            pattern(PAGE, 0x5a)[100..164]
        );
        assert_eq!(dst.pfn(3 * PAGE_SIZE).unwrap(), Some(src_pfn));
        assert_eq!(src.resident(0, PAGE_SIZE).unwrap(), vec![false]);
        assert_eq!(uffd.read_event().unwrap(), None);
    }

    #[test]
    fn move_onto_present_page_is_eexist() {
        let uffd = Userfault::new().unwrap();
        let dst = HostMemory::new(2 * PAGE_SIZE, false).unwrap();
        dst.write(PAGE_SIZE, &[1]).unwrap();
        uffd.register_missing(dst.host_addr(), dst.len()).unwrap();
        let src = filled(2 * PAGE_SIZE, false, 3);

        // One page onto a present page: nothing moves.
        let one = uffd.move_pages(dst.host_addr() + PAGE_SIZE, src.host_addr(), PAGE_SIZE);
        let err = one.unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert!(matches!(err, UffdError::Move { moved: 0, .. }), "{err:?}");

        // Two pages: the first moves, the second collides.
        let err = uffd
            .move_pages(dst.host_addr(), src.host_addr(), 2 * PAGE_SIZE)
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert!(
            matches!(err, UffdError::Move { moved, .. } if moved == PAGE_SIZE),
            "{err:?}"
        );
        assert_eq!(src.resident(0, 2 * PAGE_SIZE).unwrap(), vec![false, true]);
        assert_eq!(read_vec(&dst, 0, PAGE), pattern(PAGE, 3));
    }

    #[test]
    fn move_from_absent_source_is_enoent() {
        let uffd = Userfault::new().unwrap();
        let dst = registered(&uffd, PAGE_SIZE, false);
        let src = HostMemory::new(PAGE_SIZE, false).unwrap();
        let err = uffd
            .move_pages(dst.host_addr(), src.host_addr(), PAGE_SIZE)
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn write_fault_is_resolved_by_copy() {
        let uffd = Userfault::new_without_move().unwrap();
        let dst = registered(&uffd, 4 * PAGE_SIZE, false);
        let src = filled(PAGE_SIZE, false, 0x11);
        let src_pfn = src.pfn(0).unwrap().unwrap();
        let writer = Arc::clone(&dst);
        let (tid, out) = spawn_access(move || writer.write(PAGE_SIZE + 8, &[0xee; 4]).is_ok());

        let event = wait_event(&uffd);
        let page = dst.host_addr() + PAGE_SIZE;
        assert_eq!(
            event,
            UffdEvent::PageFault {
                addr: page,
                write: true,
                wp: false,
                minor: false,
                tid
            }
        );

        let err = uffd
            .move_pages(page, src.host_addr(), PAGE_SIZE)
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::EOPNOTSUPP));
        assert_eq!(
            uffd.copy(page, src.host_addr(), PAGE_SIZE).unwrap(),
            PAGE_SIZE
        );
        assert!(out.recv_timeout(TIMEOUT).unwrap());

        let mut expect = pattern(PAGE, 0x11);
        expect[8..12].copy_from_slice(&[0xee; 4]);
        assert_eq!(read_vec(&dst, PAGE_SIZE, PAGE), expect);
        assert_eq!(src.resident(0, PAGE_SIZE).unwrap(), vec![true]);
        assert_eq!(read_vec(&src, 0, PAGE), pattern(PAGE, 0x11));
        assert_ne!(dst.pfn(PAGE_SIZE).unwrap(), Some(src_pfn));

        let again = uffd.copy(page, src.host_addr(), PAGE_SIZE).unwrap_err();
        assert_eq!(again.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn zeropage_maps_zeros() {
        let uffd = Userfault::new().unwrap();
        let dst = HostMemory::new(3 * PAGE_SIZE, false).unwrap();
        dst.write(0, &vec![9u8; 3 * PAGE]).unwrap();
        dst.discard(0, dst.len()).unwrap();
        uffd.register_missing(dst.host_addr(), dst.len()).unwrap();
        let start = dst.host_addr() + PAGE_SIZE;
        assert_eq!(uffd.zeropage(start, 2 * PAGE_SIZE).unwrap(), 2 * PAGE_SIZE);
        assert_eq!(dst.resident(0, dst.len()).unwrap(), vec![false, true, true]);
        assert_eq!(read_vec(&dst, PAGE_SIZE, 2 * PAGE), vec![0u8; 2 * PAGE]);
        let err = uffd.zeropage(start, PAGE_SIZE).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert!(matches!(err, UffdError::Zeropage { zeroed: 0, .. }));
    }

    #[test]
    fn huge_page_moves_whole() {
        let uffd = Userfault::new().unwrap();
        let src = filled(4 << 20, true, 0x77);
        let src_pfn = src.pfn(0).unwrap().unwrap();
        let src_was_huge = anon_huge_kib(src.host_addr()) >= 2048;
        let dst = registered(&uffd, 4 << 20, true);
        let (d, s) = (dst.host_addr(), src.host_addr());
        assert_eq!(d % HUGE_PAGE_SIZE, 0);
        assert_eq!(
            uffd.move_pages(d, s, HUGE_PAGE_SIZE).unwrap(),
            HUGE_PAGE_SIZE
        );

        let want = pattern(HUGE_PAGE_SIZE as usize, 0x77);
        assert_eq!(read_vec(&dst, 0, want.len()), want);
        assert_eq!(dst.pfn(0).unwrap(), Some(src_pfn));
        assert_eq!(src.resident(0, HUGE_PAGE_SIZE).unwrap(), vec![false; 512]);
        assert_eq!(src.resident(HUGE_PAGE_SIZE, PAGE_SIZE).unwrap(), vec![true]);
        // If THP gave the source a huge page, it arrived as one (a PMD move, not 512 PTEs).
        if src_was_huge {
            assert_eq!(anon_huge_kib(d), 2048);
        }
    }

    /// `AnonHugePages` (KiB) of the mapping containing `addr`, from /proc/self/smaps.
    fn anon_huge_kib(addr: u64) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((lo, hi)) = vma_bounds(line) {
                inside = (lo..hi).contains(&addr);
            } else if let Some(kb) = line.strip_prefix("AnonHugePages:").filter(|_| inside) {
                return kb.trim().trim_end_matches("kB").trim().parse().unwrap();
            }
        }
        0
    }

    /// The `[start, end)` of an smaps header line such as `7f00-7f10 rw-p ...`.
    fn vma_bounds(line: &str) -> Option<(u64, u64)> {
        let (lo, hi) = line.split_once(' ')?.0.split_once('-')?;
        Some((
            u64::from_str_radix(lo, 16).ok()?,
            u64::from_str_radix(hi, 16).ok()?,
        ))
    }

    #[test]
    fn unregister_stops_catching_faults() {
        let uffd = Userfault::new().unwrap();
        let dst = registered(&uffd, 2 * PAGE_SIZE, false);
        uffd.unregister(dst.host_addr(), dst.len()).unwrap();
        let reader = Arc::clone(&dst);
        let (_, out) = spawn_access(move || read_vec(&reader, 0, 16));
        assert_eq!(out.recv_timeout(TIMEOUT).unwrap(), vec![0u8; 16]);
        assert_eq!(uffd.read_event().unwrap(), None);
    }

    #[test]
    fn bad_ranges_are_errors_not_panics() {
        let uffd = Userfault::new().unwrap();
        let dst = registered(&uffd, PAGE_SIZE, false);
        let errno = |r: Result<u64, UffdError>| r.unwrap_err().errno();
        assert_eq!(
            errno(uffd.move_pages(dst.host_addr() + 1, 0, PAGE_SIZE)),
            Some(libc::EINVAL)
        );
        assert_eq!(errno(uffd.copy(!0xfff, 0, PAGE_SIZE)), Some(libc::EINVAL));
        assert_eq!(errno(uffd.zeropage(dst.host_addr(), 3)), Some(libc::EINVAL));
        let wake = uffd.wake(dst.host_addr() + 1, PAGE_SIZE).unwrap_err();
        assert_eq!(wake.errno(), Some(libc::EINVAL));
        uffd.wake(dst.host_addr(), PAGE_SIZE).unwrap();
        let reg = uffd
            .register_missing(dst.host_addr(), u64::MAX)
            .unwrap_err();
        assert_eq!(reg.errno(), Some(libc::EINVAL));
        assert_eq!(uffd.move_pages(dst.host_addr(), 0, 0).unwrap(), 0);
    }

    /// A memfd of `pages` pages whose first page holds `pattern(PAGE, 0x33)`.
    fn memfd(pages: u64) -> File {
        // SAFETY: memfd_create takes a NUL-terminated name and flags; returns a new fd or -1.
        let fd = unsafe { libc::memfd_create(c"uffd-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(pages * PAGE_SIZE).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &pattern(PAGE, 0x33), 0).unwrap();
        file
    }

    #[test]
    fn a_minor_fault_is_resolved_by_continue_and_a_hole_is_missing() {
        let uffd = Userfault::new().unwrap();
        if !uffd.supports_minor() {
            return; // No minor faults on shmem on this host.
        }
        let mem = Arc::new(HostMemory::map_file_private(memfd(2), 2 * PAGE_SIZE).unwrap());
        uffd.register_minor(mem.host_addr(), mem.len()).unwrap();
        let reader = Arc::clone(&mem);
        let (tid, out) = spawn_access(move || read_vec(&reader, 0, 64));
        let ev = wait_event(&uffd);
        assert_eq!(
            ev,
            UffdEvent::PageFault {
                addr: mem.host_addr(),
                write: false,
                wp: false,
                minor: true,
                tid
            }
        );
        assert_eq!(
            uffd.continue_pages(mem.host_addr(), PAGE_SIZE, true)
                .unwrap(),
            PAGE_SIZE
        );
        assert_eq!(out.recv_timeout(TIMEOUT).unwrap(), pattern(64, 0x33));
        // Mapped already: EEXIST. A hole in the file: EFAULT, and a touch is a missing fault.
        let again = uffd.continue_pages(mem.host_addr(), PAGE_SIZE, true);
        assert_eq!(again.unwrap_err().errno(), Some(libc::EEXIST));
        let hole = mem.host_addr() + PAGE_SIZE;
        let err = uffd.continue_pages(hole, PAGE_SIZE, true).unwrap_err();
        assert_eq!((err.errno(), err.mapped()), (Some(libc::EFAULT), 0));
        let reader = Arc::clone(&mem);
        let (_, out) = spawn_access(move || read_vec(&reader, PAGE_SIZE, 8));
        assert!(matches!(
            wait_event(&uffd),
            UffdEvent::PageFault { minor: false, .. }
        ));
        uffd.zeropage(hole, PAGE_SIZE).unwrap();
        assert_eq!(out.recv_timeout(TIMEOUT).unwrap(), vec![0u8; 8]);
        // The private mapping keeps writes to itself.
        mem.write(0, &[0xee; 8]).unwrap();
        assert_eq!(mem.usage().unwrap().anonymous, PAGE_SIZE);
        let mut first = [0u8; 8];
        let file = mem.file().unwrap();
        std::os::unix::fs::FileExt::read_exact_at(file, &mut first, 0).unwrap();
        assert_eq!(&first[..], &pattern(8, 0x33)[..]);
    }
}
