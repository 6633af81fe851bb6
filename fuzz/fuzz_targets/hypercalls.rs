//! Hypercall fuzzing: each input is a sequence of hypercalls with hostile registers and guest
//! memory, run through the VMM's real handlers on a real VM by
//! `kvmpager_vmm::tools::fuzz::run_case`, which panics if an invariant breaks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kvmpager_vmm::tools::fuzz::run_case(data);
});
