//! End-to-end: the guest programs of `guest/` (embedded in `kvmpager_vmm::guests`) booted
//! by the VMM. Every run has a time limit, so no test can hang.

use std::time::{Duration, Instant};

use kvmpager_vmm::{RunResult, StopReason, VmConfig, guests, skip_without_kvm};

fn config(name: &str) -> VmConfig {
    let g = guests::by_name(name).unwrap_or_else(|| panic!("no guest {name}"));
    let mut c = VmConfig::new(g.elf.to_vec());
    c.memory = 64 << 20;
    c.timeout = Some(Duration::from_secs(30));
    c
}

fn run(c: &VmConfig) -> RunResult {
    let r = kvmpager_vmm::run(c).expect("VM runs");
    eprintln!("--- console:\n{}--- stop: {}", r.console_text(), r.stop);
    r
}

#[test]
fn hello_prints_and_exits_zero_with_plain_and_lazy_ram() {
    if skip_without_kvm() {
        return;
    }
    for lazy in [true, false] {
        let mut c = config("hello");
        c.lazy_ram = lazy;
        let r = run(&c);
        assert_eq!(r.exit_code, Some(0), "lazy={lazy}");
        assert!(r.console_text().contains("hello from vCPU 0"));
        if lazy {
            assert!(r.stats.pages_supplied > 0);
        }
    }
}

#[test]
fn exit_code_propagates() {
    if skip_without_kvm() {
        return;
    }
    assert_eq!(run(&config("exit_code")).exit_code, Some(42));
}

#[test]
fn a_faulting_guest_stops_cleanly_with_vector_and_rip() {
    if skip_without_kvm() {
        return;
    }
    let r = run(&config("triple_fault"));
    assert_eq!(r.exit_code, None);
    let StopReason::Exception { report, .. } = &r.stop else {
        panic!("{:?}", r.stop)
    };
    assert!(report.rip >= kvmpager::abi::layout::GUEST_LOAD_ADDR);
    let text = r.stop.to_string();
    assert!(text.contains(&format!("{:#x}", report.rip)), "{text}");
}

#[test]
fn spin_stops_at_the_timeout() {
    if skip_without_kvm() {
        return;
    }
    let mut c = config("spin");
    c.timeout = Some(Duration::from_secs(1));
    let t0 = Instant::now();
    let r = run(&c);
    assert_eq!(r.stop, StopReason::Timeout);
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn garbage_calls_finish_and_the_vmm_stays_intact() {
    if skip_without_kvm() {
        return;
    }
    let r = run(&config("garbage"));
    assert_eq!(r.exit_code, Some(0));
    // The same process can still run VMs afterwards.
    assert_eq!(run(&config("hello")).exit_code, Some(0));
}

#[test]
fn null_calls_run() {
    if skip_without_kvm() {
        return;
    }
    let r = run(&config("null_calls"));
    assert_eq!(r.exit_code, Some(0));
    assert!(r.console_text().contains("ns/call"));
}

#[test]
fn selftest_passes() {
    if skip_without_kvm() {
        return;
    }
    let r = run(&config("selftest"));
    let text = r.console_text();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed"), "last line: {last:?}");
    assert_eq!(r.exit_code, Some(0));
    assert!(
        r.test_reports.iter().all(|t| t.passed),
        "{:?}",
        r.test_reports
    );
}

#[test]
fn every_embedded_guest_stops_within_its_time_limit() {
    if skip_without_kvm() {
        return;
    }
    for g in guests::all() {
        let mut c = config(g.name);
        c.timeout = Some(Duration::from_secs(2));
        let t0 = Instant::now();
        let r = kvmpager_vmm::run(&c).expect("VM runs");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} took {:?}",
            g.name,
            t0.elapsed()
        );
        eprintln!("{}: {}", g.name, r.stop);
    }
}

/// A memslot change (VmarMap on vCPU 1) while vCPU 0 is blocked inside KVM on an absent pager
/// page used to deadlock in KVM's memslot SRCU; the VMM now kicks vCPUs out of KVM_RUN first.
#[test]
fn vmar_map_while_another_vcpu_is_blocked_in_a_fault_does_not_deadlock() {
    if skip_without_kvm() {
        return;
    }
    let mut c = config("memslot_deadlock");
    c.vcpus = 2;
    c.timeout = Some(Duration::from_secs(20));
    let r = run(&c);
    assert_eq!(r.exit_code, Some(0), "stop: {}", r.stop);
    assert!(r.console_text().contains("no deadlock"));
}

/// RAM beyond the first pieces gets its KVM memslot on first touch: reads, writes and code in
/// every 1 GiB piece of a 4 GiB lazy-RAM guest behave like ordinary RAM.
#[test]
fn ram_pieces_are_registered_on_first_touch() {
    if skip_without_kvm() {
        return;
    }
    let mut c = config("ram_pieces");
    c.memory = 4 << 30;
    let r = run(&c);
    assert_eq!(r.exit_code, Some(0), "stop: {}", r.stop);
    assert!(r.console_text().contains("4 pieces ok"));
}

/// A guest cannot make the host commit more than its VMO limit: past it `zx_vmo_create`
/// gives `ZX_ERR_NO_MEMORY`, and the VMM stays intact.
#[test]
fn the_guest_vmo_limit_holds() {
    if kvmpager_vmm::skip_without_kvm() {
        return;
    }
    let mut c = config("vmo_limit");
    c.limits.vmo_bytes = 64 << 20;
    let r = run(&c);
    assert_eq!(r.exit_code, Some(0), "stop: {}", r.stop);
    assert!(
        r.console_text()
            .contains("64 VMOs of 1 MiB, then ZX_ERR_NO_MEMORY"),
        "{}",
        r.console_text()
    );
}
