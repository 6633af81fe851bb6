//! The `kvmpager` command: exit codes, summary and error reporting.

mod microvm_util;

use std::process::{Command, Output};

use microvm_util::{skip_without_kvm, snapshot_spin_by_signal};

fn kvmpager(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .output()
        .expect("kvmpager runs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn default_micro_vm_checksums_its_image_and_prints_a_summary() {
    if skip_without_kvm() {
        return;
    }
    let out = kvmpager(&["run", "--timeout", "60"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("demo: checksummed 64 MiB") && stdout.contains(": ok"),
        "{stdout}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for word in [
        "time to first guest instruction",
        "faults",
        "on demand",
        "prefetched",
        "bytes moved",
        "bytes copied",
        "p50",
        "p99",
        "max",
    ] {
        assert!(err.contains(word), "summary lacks {word}");
    }
}

#[test]
fn snapshot_by_signal_then_restore_with_record_prefetch_and_json() {
    if skip_without_kvm() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("kvmpager-cli-snap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let snap = dir.join("snap");
    let snap_s = snap.to_str().unwrap();
    let out = snapshot_spin_by_signal(snap_s, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("snapshot written"), "{err}");
    assert!(snap.join("meta.json").is_file() && snap.join("ram.img").is_file());
    // The spinning guest resumes (and times out); the working set goes to DIR by default.
    let out = kvmpager(&["restore", snap_s, "--timeout", "0.5", "--record"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(snap.join("workingset.bin").is_file());
    let out = kvmpager(&[
        "restore",
        snap_s,
        "--timeout",
        "0.5",
        "--prefetch",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["stop"], "timed out");
    assert!(v["stats"]["pages_prefetched"].as_u64().unwrap() > 0, "{v}");
    assert!(v["stats"]["time_to_first_instruction_ns"].as_u64().unwrap() > 0);
    // Bad input: a clear error and exit code 1 before any guest runs.
    let out = kvmpager(&["restore", dir.join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such directory"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_guest_exit_code_is_the_process_exit_code() {
    if skip_without_kvm() {
        return;
    }
    let out = kvmpager(&["run", "--guest", "embedded:exit_code", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn crashes_and_timeouts_exit_1_with_an_explanation() {
    if skip_without_kvm() {
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

/// A pager that never answers: `--fault-timeout` stops the VM with exit code 1 and a line that
/// names the VMO, the offset and where it is mapped.
#[test]
fn fault_timeout_names_the_page_nobody_supplies() {
    if skip_without_kvm() {
        return;
    }
    let out = kvmpager(&[
        "run",
        "--guest",
        "embedded:fatal_silent",
        "--vcpus",
        "2",
        "--fault-timeout",
        "0.3",
        "--timeout",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VM stopped: READ page request of 0x1000 bytes on VMO koid")
            && err.contains("at offset 0x5000 (guest-physical 0x1000005000) unanswered")
            && err.contains("the guest pager never answered"),
        "{err}"
    );
}

/// The limit flags reach the guest: each limit gives its status at the count given.
#[test]
fn limit_flags_set_the_guests_limits() {
    if skip_without_kvm() {
        return;
    }
    let out = kvmpager(&[
        "run",
        "--guest",
        "embedded:limits",
        "--vcpus",
        "1",
        "--max-handles",
        "100",
        "--max-vmos",
        "20",
        "--guest-vmo-limit",
        "64M",
        "--max-queued-packets",
        "10",
        "--max-mappings",
        "4",
        "--timeout",
        "60",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for line in [
        "handles (duplicates of one): 99 then ZX_ERR_NO_RESOURCES",
        "vmos: 20 then ZX_ERR_NO_RESOURCES",
        "unread packets: 10 then ZX_ERR_NO_MEMORY",
        "mappings: 4 then ZX_ERR_NO_RESOURCES",
        "committed MiB in 8 MiB VMOs: 7 then ZX_ERR_NO_MEMORY",
    ] {
        assert!(stdout.contains(line), "missing {line:?}:\n{stdout}");
    }
}
