//! kvmpager's pager kernel: Zircon's user-pager objects and `zx_pager_vmo_op`, with page
//! supply done by moving host pages (userfaultfd `UFFDIO_MOVE`) instead of copying them.
//!
//! The crate has no KVM code: the VMM (`vmm/`) maps pager VMOs into guests and turns
//! hypercalls into calls on [`Process`]. The modules form a DAG; read them leaves first
//! (`tests/kernel_layout.rs` checks both the DAG and this order):
//! - [`abi`]: the guest ABI (no_std; guests use it too).
//! - [`bits`]: page bitmaps; [`hostmem`]: host anonymous memory; [`uffd`]: the userfaultfd
//!   ioctls.
//! - [`object`]: koids and weak object lists, shared by every kernel object.
//! - [`request`]: page-request bookkeeping of one pager VMO; [`counters`]: supply and fault
//!   counters.
//! - [`port`]: packet queues, calling back a [`port::PacketOwner`].
//! - [`fault`]: the per-process userfaultfd service, calling back a [`fault::FaultTarget`]
//!   (and waking the waiters of the ports its dispatch queued to).
//! - [`account`]: what a process's objects share and are charged to (limits, fatal faults).
//! - [`vmo`]: virtual memory objects, the fault target and packet owner; [`pager`]: pagers.
//! - [`handle`]: per-process handle tables with rights and generation bits.
//! - [`process`]: the system calls, one method each, in Zircon's check order.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

pub mod abi;

#[cfg(feature = "std")]
pub mod account;
#[cfg(feature = "std")]
pub mod bits;
#[cfg(feature = "std")]
pub mod counters;
#[cfg(feature = "std")]
pub mod fault;
#[cfg(feature = "std")]
pub mod handle;
#[cfg(feature = "std")]
pub mod hostmem;
#[cfg(feature = "std")]
pub mod object;
#[cfg(feature = "std")]
pub mod pager;
#[cfg(feature = "std")]
pub mod port;
#[cfg(feature = "std")]
pub mod process;
#[cfg(feature = "std")]
pub mod request;
#[cfg(feature = "std")]
pub mod uffd;
#[cfg(feature = "std")]
pub mod vmo;

#[cfg(feature = "std")]
pub use process::Process;
