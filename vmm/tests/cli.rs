//! The `kvmpager` command: exit codes, summary and error reporting.

use std::process::{Command, Output};

fn kvm_available() -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !ok {
        eprintln!("skipping: /dev/kvm cannot be opened");
    }
    ok
}

fn kvmpager(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .output()
        .expect("kvmpager runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn default_guest_says_hello_and_prints_a_summary() {
    if !kvm_available() {
        return;
    }
    let out = kvmpager(&["run", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from vCPU 0"));
    let err = String::from_utf8_lossy(&out.stderr);
    for word in [
        "faults",
        "pages supplied",
        "bytes moved",
        "bytes copied",
        "p50",
        "p99",
    ] {
        assert!(err.contains(word), "summary lacks {word}");
    }
}

#[test]
fn the_guest_exit_code_is_the_process_exit_code() {
    if !kvm_available() {
        return;
    }
    let out = kvmpager(&["run", "--guest", "embedded:exit_code", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn crashes_and_timeouts_exit_1_with_an_explanation() {
    if !kvm_available() {
        return;
    }
    let out = kvmpager(&[
        "run",
        "--guest",
        "embedded:triple_fault",
        "--no-lazy-ram",
        "--timeout",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("guest exception"));
    let out = kvmpager(&["run", "--guest", "embedded:spin", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
}

#[test]
fn bad_arguments_are_reported() {
    let out = kvmpager(&["run", "--guest", "/nonexistent/guest.elf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/guest.elf"));
    let out = kvmpager(&["run", "--guest", "embedded:nope"]);
    assert_eq!(out.status.code(), Some(1));
    let out = kvmpager(&["run", "--memory", "12X"]);
    assert_ne!(out.status.code(), Some(0));
    let out = kvmpager(&["run", "--vcpus", "0"]);
    assert_eq!(out.status.code(), Some(1));
}
