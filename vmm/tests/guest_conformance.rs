//! End-to-end: the pager conformance suite (guest `conformance`) booted under KVM through the
//! VMM library. Every case must pass, the guest's closing line must say `0 failed`, and the
//! number of `TestReport`s must equal the number of cases the guest registered.

use std::time::Duration;

use kvmpager_vmm::skip_without_kvm;
use kvmpager_vmm::tools::conformance;

/// The suite takes about a second; this bounds a hang (e.g. a lost wake-up) instead.
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn every_conformance_case_runs_and_passes() {
    if skip_without_kvm() {
        return;
    }
    let r = conformance::run_suite(conformance::DEFAULT_VCPUS, TIMEOUT).expect("the VM runs");
    eprintln!(
        "--- guest console:\n{}--- stop: {} ({:.2?})",
        r.console, r.stop, r.elapsed
    );
    let failures: Vec<String> = r
        .failures()
        .iter()
        .map(|c| format!("  {}: {}", c.name, c.message))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        r.cases.len(),
        failures.join("\n")
    );
    let registered = r.registered.expect("the guest prints `registered N cases`");
    assert!(registered > 0);
    assert_eq!(
        r.cases.len(),
        registered,
        "{} TestReports for {registered} registered cases (VM stop: {})",
        r.cases.len(),
        r.stop
    );
    assert_eq!(
        r.summary,
        Some((registered, 0)),
        "closing line must be `{registered} passed, 0 failed`"
    );
    assert!(
        r.console
            .lines()
            .last()
            .is_some_and(|l| l.ends_with(" 0 failed")),
        "last console line: {:?}",
        r.console.lines().last()
    );
    assert_eq!(r.exit_code, Some(0), "{}", r.stop);
    assert!(r.ok());
    let mut names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), registered, "case names must be unique");
}

#[test]
fn with_two_vcpus_only_the_three_vcpu_cases_fail_by_name() {
    if skip_without_kvm() {
        return;
    }
    let mut out = Vec::new();
    let r = conformance::run_suite_to(2, TIMEOUT, &mut out).expect("the VM runs");
    let failed: Vec<&str> = r.failures().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        [
            "concurrent_overlapping_access",
            "clone_simultaneous_read_test"
        ],
        "{}",
        r.console
    );
    assert!(r.all_ran(), "{}", r.console);
    assert_eq!(r.exit_code, Some(1));
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("[FAIL] concurrent_overlapping_access: needs at least 3 vCPUs"));
    assert!(text.contains("[FAIL] clone_simultaneous_read_test: needs at least 3 vCPUs"));
    assert!(
        text.ends_with(&format!("{} passed, 2 failed\n", r.cases.len() - 2)),
        "{text}"
    );
}
