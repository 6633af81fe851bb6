//! A pager that never answers: vCPU 0 maps a pager VMO and reads one of its pages through the
//! aperture, blocking inside KVM; vCPU 1, the pager, checks the READ packet and then does
//! nothing. Run with a fault timeout (`--fault-timeout`), the VM must stop with
//! `StopReason::FaultTimeout` naming the VMO, the offset and the guest-physical address
//! (`vmm/tests/vmm_fatal_faults.rs`). Exit code 1 means the read returned, 3 a wrong or missing
//! packet.
//!
//! The code is shared: `src/fatal.rs`.
#![no_std]
#![no_main]

use kvmpager_guest_programs::fatal::{self, Mode};

rt::entry!(main);

fn main(vcpu: usize, ncpus: usize, ram: u64) -> i64 {
    fatal::main(Mode::Silent, vcpu, ncpus, ram)
}
