//! Micro guests: hand-assembled CPL-3 programs run through `kvmpager_vmm::run`.

use std::time::Duration;

use kvmpager_vmm::loader::tiny_elf;
use kvmpager_vmm::{RunResult, StopReason, VmConfig};

const LOAD: u64 = 0x10_0000;

fn run_code(code: &[u8], lazy: bool) -> RunResult {
    let mut c = VmConfig::new(tiny_elf(LOAD, code, 0x1000));
    c.vcpus = 1;
    c.memory = 16 << 20;
    c.lazy_ram = lazy;
    c.timeout = Some(Duration::from_secs(5));
    kvmpager_vmm::run(&c).expect("VM runs")
}

/// `mov eax, 1; mov edi, 42; out 0xe1, eax` — Exit(42).
const EXIT_42: [u8; 12] = [0xB8, 1, 0, 0, 0, 0xBF, 42, 0, 0, 0, 0xE7, 0xE1];

#[test]
fn exit_code_propagates() {
    for lazy in [false, true] {
        let r = run_code(&EXIT_42, lazy);
        assert_eq!(r.stop, StopReason::Exit(42), "lazy={lazy}");
        assert_eq!(r.exit_code, Some(42));
    }
}
