//! Fatal fault by FAIL: vCPU 0 maps a pager VMO and reads one of its pages through the
//! aperture, blocking inside KVM; vCPU 1, the pager, checks the READ packet and fails the page
//! with `ZX_ERR_IO` through `PagerVmoOp(ZX_PAGER_OP_FAIL)` (`aux_offset` carries the status).
//! The page can never arrive, so the VM must stop with `StopReason::FatalFault` naming
//! `ZX_ERR_IO` and the page's address (`vmm/tests/vmm_fatal_faults.rs`). It never exits by itself:
//! exit code 1 means the read returned, 3 a wrong or missing packet, 4 a failed FAIL.
//!
//! The code is shared: `src/fatal.rs`.
#![no_std]
#![no_main]

use kvmpager_guest_programs::fatal::{self, Mode};

rt::entry!(main);

fn main(vcpu: usize, ncpus: usize, ram: u64) -> i64 {
    fatal::main(Mode::Fail, vcpu, ncpus, ram)
}
