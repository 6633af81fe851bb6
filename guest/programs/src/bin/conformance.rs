//! Pager conformance suite: every sentence and error code of the seed (`zx_pager_vmo_op`,
//! ZX_PAGER_SUPPLY_PAGES) and Zircon's core pager tests, with exact statuses and bytes; 3+ vCPUs.
//!
//! vCPU 0 runs the harness and is the *accessor* (it touches pager VMOs through the aperture or
//! blocks in `VmoRead`/COMMIT); vCPU 1 is the *pager* in the cases that need one (it reads the
//! port and supplies or fails); vCPUs 2.. are extra accessors for ConcurrentOverlappingAccess.
//! Idle vCPUs wait for jobs in per-vCPU mailboxes (atomics in guest memory), napping in a
//! `PortWait` with a short deadline so they do not burn host CPU.
//!
//! The cases live in the shared guest library, `kvmpager_guest_programs::conformance`: the
//! fixtures (Zircon's `userpager`) and the jobs on other vCPUs (its `test_thread`) beside the
//! topic files, one per feature (`conformance/topics/`). This file only lists the topics in the
//! order they run ([`TOPICS`]); a new topic is one more line there.
//!
//! `ZX_ERR_NO_MEMORY` is not guest-triggerable: host memory is reserved lazily and a guest
//! cannot make the VMM's `UFFDIO_MOVE`/`COPY` fail with ENOMEM on purpose; the host-side
//! kernel tests (`tests/kernel_supply.rs`) inject it.
#![no_std]
#![no_main]

use kvmpager_guest_programs::conformance::jobs::worker_loop;
use kvmpager_guest_programs::conformance::topics::{
    api_gaps, blocked, clones, detach_close, pointers, seed, validation,
};
use rt::Vec;
use rt::harness::Case;

rt::entry!(main);

/// Every topic's cases, in the order they run (the host side checks names and count).
const TOPICS: &[&[Case]] = &[
    seed::CASES,
    validation::CASES,
    detach_close::CASES,
    blocked::CASES,
    pointers::CASES,
    clones::CASES,
    api_gaps::CASES,
];

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        worker_loop(vcpu);
    }
    let mut cases = Vec::new();
    for topic in TOPICS {
        cases.extend_from_slice(topic);
    }
    rt::harness::run(&cases)
}
