//! Snapshot and lazy restore of real guests: the `pattern` guest writes a known pattern over
//! N MiB, asks for a snapshot (the VM stops), and the restored VM verifies every byte with
//! RAM served on demand from the snapshot; with a recorded working set prefetched, it takes
//! far fewer on-demand faults. All assertions are counts, never timings.

mod microvm_util;

use kvmpager_vmm::StopReason;
use kvmpager_vmm::config::SnapshotThen;
use kvmpager_vmm::snapshot::{self, Snapshot};
use microvm_util::*;

const MIB: u64 = 24;

#[test]
fn pattern_survives_snapshot_and_lazy_restore_then_prefetch_cuts_faults() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-pattern");
    let c = pattern_config(&dir, MIB, 128 << 20, 2);
    let r = kvmpager_vmm::run(&c).unwrap();
    show("run", &r);
    let snap_dir = dir.join("snap");
    assert_eq!(
        r.stop,
        StopReason::Snapshotted(snap_dir.display().to_string())
    );
    assert!(r.console_text().contains(&format!("wrote {MIB} MiB")));
    assert_eq!(r.snapshots.len(), 1);
    assert!(r.snapshots[0].ram_data_bytes >= MIB << 20);
    // Nothing half-written is left beside the snapshot.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    let snap = Snapshot::open(&snap_dir).unwrap();
    assert_eq!((snap.meta.vcpus, snap.meta.ram_size), (2, 128 << 20));

    // Plain lazy restore, recording the working set.
    let ws = dir.join("ws.bin");
    let mut rc = restore_config();
    rc.record = Some(ws.clone());
    rc.readahead = 64 << 10;
    let plain = kvmpager_vmm::restore(&snap_dir, &rc).unwrap();
    show("restore", &plain);
    assert_eq!(plain.exit_code, Some(0), "{}", plain.console_text());
    assert!(plain.console_text().contains("verified every byte"));
    assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
    // Every pattern page came on demand, none prefetched, all moved (never copied).
    assert!(plain.stats.pages_on_demand >= (MIB << 20) / 4096);
    assert_eq!(plain.stats.pages_prefetched, 0);
    assert!(plain.stats.file_bytes_read >= MIB << 20);
    assert!(plain.stats.bytes_moved >= MIB << 20);
    assert!(plain.stats.faults >= (MIB << 20) / (64 << 10));
    let recorded = snapshot::read_working_set(&ws, 128 << 20).unwrap();
    assert!(!recorded.is_empty());

    // Restore with the working set prefetched: far fewer on-demand faults.
    let mut rc = restore_config();
    rc.prefetch = Some(ws);
    rc.readahead = 64 << 10;
    let pre = kvmpager_vmm::restore(&snap_dir, &rc).unwrap();
    show("restore --prefetch", &pre);
    assert_eq!(pre.exit_code, Some(0), "{}", pre.console_text());
    assert!(pre.stats.pages_prefetched >= (MIB << 20) / 4096);
    assert!(
        pre.stats.faults * 10 < plain.stats.faults,
        "prefetch: {} faults, plain: {}",
        pre.stats.faults,
        plain.stats.faults
    );
    assert!(pre.stats.demand_requests * 10 < plain.stats.demand_requests);
    assert!(pre.stats.prefetch_supplies * 10 < plain.stats.demand_requests);

    // The same working set prefetched on a background thread while the guest runs: every
    // byte still checks out, and the demand pager never works harder than without prefetch.
    let mut bg = restore_config();
    bg.prefetch = rc.prefetch.clone();
    bg.readahead = 64 << 10;
    bg.prefetch_while_running = true;
    let during = kvmpager_vmm::restore(&snap_dir, &bg).unwrap();
    show("restore --prefetch --prefetch-while-running", &during);
    assert_eq!(during.exit_code, Some(0), "{}", during.console_text());
    assert!(during.stats.faults <= plain.stats.faults);
    assert_eq!(
        during.stats.pages_on_demand + during.stats.pages_prefetched,
        plain.stats.pages_on_demand,
        "each pattern page supplied once, on demand or by the prefetcher"
    );
}

#[test]
fn snapshot_then_continue_lets_the_guest_go_on_and_restores_again() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-continue");
    let mut c = pattern_config(&dir, 8, 64 << 20, 3);
    c.snapshot.as_mut().unwrap().then = SnapshotThen::Continue;
    let r = kvmpager_vmm::run(&c).unwrap();
    show("run", &r);
    assert_eq!(r.exit_code, Some(0), "{}", r.console_text());
    assert!(r.console_text().contains("verified every byte"));
    assert_eq!(r.snapshots.len(), 1);
    // The snapshot resumes right after the hypercall, with all three vCPUs.
    let back = kvmpager_vmm::restore(&dir.join("snap"), &restore_config()).unwrap();
    show("restore", &back);
    assert_eq!(back.exit_code, Some(0), "{}", back.console_text());
    assert!(back.console_text().contains("3 vCPUs running: ok"));
}

#[test]
fn a_restored_vm_snapshots_again_with_the_pages_it_never_touched() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-twice");
    let c = pattern_rounds_config(&dir, 8, 64 << 20, 2, 2);
    let r = kvmpager_vmm::run(&c).unwrap();
    assert!(matches!(r.stop, StopReason::Snapshotted(_)), "{}", r.stop);
    // The restored VM verifies, then snapshots again: the parameter page and the other pages
    // it never touched come from the first snapshot's ram.img.
    let mut rc = restore_config();
    rc.snapshot = Some(kvmpager_vmm::config::SnapshotConfig {
        dir: dir.join("snap2"),
        then: SnapshotThen::Stop,
    });
    let second = kvmpager_vmm::restore(&dir.join("snap"), &rc).unwrap();
    show("restore 1", &second);
    assert!(
        matches!(second.stop, StopReason::Snapshotted(_)),
        "{}",
        second.stop
    );
    assert!(second.snapshots[0].from_source_bytes > 0);
    let last = kvmpager_vmm::restore(&dir.join("snap2"), &restore_config()).unwrap();
    show("restore 2", &last);
    assert_eq!(last.exit_code, Some(0), "{}", last.console_text());
    assert!(last.console_text().contains("snapshot 2 of 2"));
    assert!(last.console_text().contains("verified every byte"));
}

#[test]
fn snapshot_hypercall_without_a_snapshot_dir_is_not_supported() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-off");
    let mut c = pattern_config(&dir, 4, 64 << 20, 1);
    c.snapshot = None;
    let r = kvmpager_vmm::run(&c).unwrap();
    assert_eq!(r.exit_code, Some(4), "{}", r.console_text());
    assert!(r.console_text().contains("ZX_ERR_NOT_SUPPORTED"));
}
