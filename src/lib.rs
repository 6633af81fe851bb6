//! kvmpager's pager kernel: Zircon's user-pager objects and `zx_pager_vmo_op`, with page
//! supply done by moving host pages (userfaultfd `UFFDIO_MOVE`) instead of copying them.
//!
//! The crate has no KVM code: the VMM (`vmm/`) maps pager VMOs into guests and turns
//! hypercalls into calls on [`Process`]. Read it top-down:
//! - [`abi`]: the guest ABI (no_std; guests use it too).
//! - [`hostmem`] and [`uffd`]: host anonymous memory and the userfaultfd ioctls.
//! - [`handle`]: per-process handle tables with rights and generation bits.
//! - [`vmo`], [`port`], [`pager`]: the kernel objects; [`request`] tracks page requests.
//! - [`fault`]: the per-process userfaultfd service; [`stats`]: supply and fault counters.
//! - [`process`]: the system calls, one method each, in Zircon's check order.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

pub mod abi;

#[cfg(feature = "std")]
pub mod bits;
#[cfg(feature = "std")]
pub mod fault;
#[cfg(feature = "std")]
pub mod handle;
#[cfg(feature = "std")]
pub mod hostmem;
#[cfg(feature = "std")]
pub mod pager;
#[cfg(feature = "std")]
pub mod port;
#[cfg(feature = "std")]
pub mod process;
#[cfg(feature = "std")]
pub mod request;
#[cfg(feature = "std")]
pub mod stats;
#[cfg(feature = "std")]
pub mod uffd;
#[cfg(feature = "std")]
pub mod vmo;

#[cfg(feature = "std")]
pub use process::Process;
