//! A guest runs into every per-guest limit (`guest/programs/src/bin/limits.rs`): each gives
//! Zircon's status, the VMM stays healthy (the guest goes on and exits 0; another guest runs
//! after it), and the host memory the guest made the VMM commit — 256 MiB of committed VMOs,
//! unread packets, memslots — is all returned when the guest exits still holding it: the
//! process's RSS comes back to its baseline. One test per binary, so no other test's memory
//! is counted.

mod microvm_util;

use std::time::Duration;

use kvmpager_vmm::config::GuestLimits;
use kvmpager_vmm::{RunResult, VmConfig, guests};
use microvm_util::{skip_without_kvm, status_kib};

const MIB: u64 = 1 << 20;

fn limits() -> GuestLimits {
    GuestLimits {
        handles: 300,
        vmos: 64,
        vmo_bytes: 256 * MIB,
        queued_packets: 100,
        mappings: 16,
    }
}

fn run_limits() -> RunResult {
    let mut c = VmConfig::new(guests::LIMITS.elf.to_vec());
    c.vcpus = 1;
    c.memory = 64 * MIB;
    c.timeout = Some(Duration::from_secs(60));
    c.limits = limits();
    kvmpager_vmm::run(&c).expect("the VM runs")
}

#[test]
fn every_limit_holds_with_zircons_status_and_host_memory_comes_back() {
    if skip_without_kvm() {
        return;
    }
    // A first run warms up what the process keeps for later VMs (allocator arenas, the
    // guest ELF, thread stacks), so the baseline is what any run leaves behind.
    let first = run_limits();
    assert_eq!(
        first.exit_code,
        Some(0),
        "{}\n{}",
        first.stop,
        first.console_text()
    );
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let r = run_limits();
    let peak = status_kib("VmHWM:");
    let after = status_kib("VmRSS:");
    let console = r.console_text();
    eprintln!("{console}RSS before {before} KiB, peak {peak} KiB, after {after} KiB");
    assert_eq!(r.exit_code, Some(0), "{}\n{console}", r.stop);
    let l = limits();
    for line in [
        // The VMO being duplicated holds one handle.
        format!(
            "handles (duplicates of one): {} then ZX_ERR_NO_RESOURCES",
            l.handles - 1
        ),
        format!("vmos: {} then ZX_ERR_NO_RESOURCES", l.vmos),
        // The mapped 4 KiB VMO holds some of the bytes, so one 8 MiB VMO fewer fits.
        format!(
            "committed MiB in 8 MiB VMOs: {} then ZX_ERR_NO_MEMORY",
            l.vmo_bytes / (8 * MIB) - 1
        ),
        format!("unread packets: {} then ZX_ERR_NO_MEMORY", l.queued_packets),
        format!("mappings: {} then ZX_ERR_NO_RESOURCES", l.mappings),
        "mapping past the aperture: Err(ZX_ERR_OUT_OF_RANGE)".into(),
        "all held".into(),
    ] {
        assert!(console.contains(&line), "missing {line:?} in:\n{console}");
    }
    let (grew, left) = ((peak - before) * 1024, after.saturating_sub(before) * 1024);
    assert!(
        grew >= 200 * MIB,
        "the committed VMOs never reached host memory (peak grew {} MiB)",
        grew / MIB
    );
    assert!(
        left < 16 * MIB,
        "{} MiB of host memory still held after the guest exited",
        left / MIB
    );
    // And the VMM still runs guests.
    let mut c = VmConfig::new(guests::HELLO.elf.to_vec());
    c.timeout = Some(Duration::from_secs(20));
    assert_eq!(kvmpager_vmm::run(&c).unwrap().exit_code, Some(0));
}
