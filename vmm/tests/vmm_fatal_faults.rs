//! End-to-end: a page a vCPU is blocked on inside KVM (through an aperture mapping) becomes
//! unresolvable — the guest's pager FAILs it, detaches the VMO, or closes the pager. Zircon would
//! crash the faulting thread; kvmpager stops the VM cleanly with `StopReason::FatalFault`, which
//! names the status and the page's host address, and the VMM process goes on running VMs.
//!
//! Guests: `guest/programs/src/bin/fatal_*.rs`. vCPU 0 reads page 5 of a 2 MiB pager VMO, or
//! of a 2 MiB clone of one (whose host memory is 2 MiB aligned, so the address's offset in its
//! 2 MiB block is `5 * 4096`);
//! vCPU 1 checks the READ packet, prints one line, and makes the page unresolvable. Every run has
//! a time limit; the stop must be the fatal fault, well before it.

use std::time::{Duration, Instant};

use kvmpager::abi::layout::APERTURE_START;
use kvmpager::abi::status::{self, ZX_ERR_BAD_STATE, ZX_ERR_IO};
use kvmpager::abi::{HUGE_PAGE_SIZE, PAGE_SIZE};
use kvmpager_vmm::{RunResult, StopReason, VmConfig, guests, skip_without_kvm};

/// Bounds a hang (e.g. a vCPU the stop cannot get out of its fault).
const TIMEOUT: Duration = Duration::from_secs(20);
/// The stop must come much sooner than the time limit (it takes about 0.2 s), and sooner than
/// the VMM's 5 s limit on stopping a vCPU thread: a vCPU the stop cannot get out of its fault is
/// abandoned after that, with the fatal fault already recorded as the stop reason.
const PROMPT: Duration = Duration::from_secs(4);
/// The page the guests touch.
const PAGE: u64 = 5;

fn config(name: &str) -> VmConfig {
    let g = guests::by_name(name).unwrap_or_else(|| panic!("no guest {name}"));
    let mut c = VmConfig::new(g.elf.to_vec());
    c.vcpus = 2;
    c.memory = 64 << 20;
    c.timeout = Some(TIMEOUT);
    c.echo_console = false;
    c
}

fn run(c: &VmConfig) -> (RunResult, Duration) {
    let t0 = Instant::now();
    let r = kvmpager_vmm::run(c).expect("the VM runs");
    let took = t0.elapsed();
    eprintln!(
        "--- console:\n{}--- stop: {} ({took:.2?})",
        r.console_text(),
        r.stop
    );
    (r, took)
}

/// Runs fatal guest `name` and checks that it stopped promptly with a fatal fault on page
/// [`PAGE`] with status `want`, after vCPU 1 did `action`; then runs `hello` in the same process.
fn stops_with_fatal_fault(name: &str, action: &str, want: i32) {
    let (r, took) = run(&config(name));
    let console = r.console_text();
    assert!(
        console.contains(&format!(
            "{name}: vCPU 0 reads gpa {:#x} (page {PAGE})",
            APERTURE_START + PAGE * PAGE_SIZE
        )),
        "{console}"
    );
    assert!(
        console.contains(&format!(
            "{name}: vCPU 1 got READ [{:#x}, +{PAGE_SIZE:#x}); {action}",
            PAGE * PAGE_SIZE
        )),
        "the pager did not get exactly READ of page {PAGE}: {console}"
    );
    assert!(!console.contains("not fatal"), "{console}");
    let StopReason::FatalFault {
        vmo_koid,
        vmo_offset,
        guest_physical,
        host_addr,
        status: got,
        tid,
    } = r.stop
    else {
        panic!("{name}: stop {:?}, expected a fatal fault", r.stop);
    };
    assert_eq!(vmo_offset, PAGE * PAGE_SIZE, "{name}: offset in the VMO");
    assert_eq!(
        guest_physical,
        Some(APERTURE_START + PAGE * PAGE_SIZE),
        "{name}: the stop names where the page is mapped"
    );
    assert_eq!(
        got,
        want,
        "{name}: fatal fault with {}, expected {}",
        status::name(got),
        status::name(want)
    );
    assert_eq!(
        host_addr % HUGE_PAGE_SIZE,
        PAGE * PAGE_SIZE,
        "{name}: host address {host_addr:#x} is not page {PAGE} of the 2 MiB-aligned VMO"
    );
    assert_ne!(tid, 0);
    assert_eq!(r.exit_code, None);
    let text = r.stop.to_string();
    assert!(text.contains(status::name(want)), "{text}");
    assert!(text.contains(&format!("{host_addr:#x}")), "{text}");
    assert!(text.contains(&format!("VMO koid {vmo_koid}")), "{text}");
    assert!(
        text.contains(&format!("offset {:#x}", PAGE * PAGE_SIZE)),
        "{text}"
    );
    assert!(
        took < PROMPT,
        "{name}: took {took:?} to stop (time limit {TIMEOUT:?})"
    );
    // The VMM process is intact: it runs another guest to completion.
    let (after, _) = run(&config("hello"));
    assert_eq!(
        after.exit_code,
        Some(0),
        "hello after {name}: {}",
        after.stop
    );
}

/// The pager FAILs the page (`ZX_PAGER_OP_FAIL` through `PagerVmoOp`, status in `aux_offset`).
#[test]
fn fail_of_a_page_a_vcpu_is_blocked_on_stops_the_vm_with_the_status() {
    if skip_without_kvm() {
        return;
    }
    stops_with_fatal_fault("fatal_fail", "failing it with ZX_ERR_IO", ZX_ERR_IO);
}

/// The pager detaches the VMO.
#[test]
fn detach_while_a_vcpu_is_blocked_in_a_fault_stops_the_vm_with_bad_state() {
    if skip_without_kvm() {
        return;
    }
    stops_with_fatal_fault("fatal_detach", "detaching the VMO", ZX_ERR_BAD_STATE);
}

/// vCPU 0 reads through a copy-on-write clone of the pager VMO; the pager detaches the pager
/// VMO: the clone's page fails as the pager VMO's would.
#[test]
fn detach_of_the_parent_while_a_vcpu_is_blocked_in_a_clone_stops_the_vm_with_bad_state() {
    if skip_without_kvm() {
        return;
    }
    stops_with_fatal_fault(
        "fatal_clone_detach",
        "detaching the clone's parent",
        ZX_ERR_BAD_STATE,
    );
}

/// The pager closes its pager handle.
#[test]
fn closing_the_pager_while_a_vcpu_is_blocked_in_a_fault_stops_the_vm_with_bad_state() {
    if skip_without_kvm() {
        return;
    }
    stops_with_fatal_fault(
        "fatal_pager_closed",
        "closing the pager handle",
        ZX_ERR_BAD_STATE,
    );
}

/// The pager closes its port: the request outstanding then fails with `ZX_ERR_BAD_STATE`
/// (the VMO stays attached; see `Port`).
#[test]
fn closing_the_port_while_a_vcpu_is_blocked_in_a_fault_stops_the_vm_with_bad_state() {
    if skip_without_kvm() {
        return;
    }
    stops_with_fatal_fault(
        "fatal_port_closed",
        "closing the port handle",
        ZX_ERR_BAD_STATE,
    );
}

/// The pager reads the request and never answers: with a fault timeout the VM stops with a
/// report naming the VMO, the offset and where the page is mapped; the VMM then runs another
/// guest.
#[test]
fn a_pager_that_never_answers_stops_the_vm_at_the_fault_timeout() {
    if skip_without_kvm() {
        return;
    }
    let limit = Duration::from_millis(500);
    let mut c = config("fatal_silent");
    c.fault_timeout = Some(limit);
    let (r, took) = run(&c);
    let StopReason::FaultTimeout {
        offset,
        len,
        guest_physical,
        command,
        waited_ms,
        host_pager,
        ..
    } = r.stop
    else {
        panic!("stop {:?}, expected a fault timeout", r.stop);
    };
    assert_eq!((offset, len), (PAGE * PAGE_SIZE, PAGE_SIZE));
    assert_eq!(guest_physical, Some(APERTURE_START + PAGE * PAGE_SIZE));
    assert_eq!(command, kvmpager::abi::packet::ZX_PAGER_VMO_READ);
    assert!(
        !host_pager,
        "the guest's pager is the one that did not answer"
    );
    assert!(
        waited_ms >= 500,
        "stopped after {waited_ms} ms, before the limit"
    );
    assert!(took < PROMPT, "took {took:?}");
    let text = r.stop.to_string();
    assert!(
        text.contains("unanswered") && text.contains("guest pager"),
        "{text}"
    );
    let (after, _) = run(&config("hello"));
    assert_eq!(after.exit_code, Some(0), "hello after: {}", after.stop);
}
