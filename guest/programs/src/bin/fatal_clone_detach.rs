//! Fatal fault through a clone: vCPU 0 maps a copy-on-write clone
//! (`ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE`) of a pager VMO and reads one of its pages through
//! the aperture, blocking inside KVM; vCPU 1, the pager, checks the READ packet (it names the
//! pager VMO) and detaches the pager VMO. The clone's page can never arrive, so the VM must stop
//! with `StopReason::FatalFault` naming `ZX_ERR_BAD_STATE` and the clone's page
//! (`vmm/tests/vmm_fatal_faults.rs`). It never exits by itself: exit code 1 means the read
//! returned, 3 a wrong or missing packet, 4 a failed detach.
//!
//! The code is shared: `src/fatal.rs`.
#![no_std]
#![no_main]

use kvmpager_guest_programs::fatal::{self, Mode};

rt::entry!(main);

fn main(vcpu: usize, ncpus: usize, ram: u64) -> i64 {
    fatal::main(Mode::CloneDetach, vcpu, ncpus, ram)
}
