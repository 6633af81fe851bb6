//! Manifest fuzzing: each input is the bytes of a `manifest.json` as a hostile store could
//! serve it; `kvmpager_vmm::store::Manifest::decode` must return an error or a manifest whose
//! chunk list and working set fit its RAM, never panic.
#![no_main]

use kvmpager_vmm::store::{CHUNK_SIZE, Manifest};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((m, chunks)) = Manifest::decode(data) {
        assert_eq!(chunks.len() as u64, m.ram_size.div_ceil(CHUNK_SIZE));
        assert!(m.working_set.iter().all(|&p| p < m.ram_size / 4096));
    }
});
