//! Many VMs, one copy of the snapshot (`restore --share`): the `pattern` guest is snapshotted,
//! then restored as clones whose RAM maps the snapshot's shared root copy-on-write. Every clone
//! verifies every byte and rewrites a share of its pattern (same words: its RAM is written,
//! not changed); the root is filled once, writes fork private pages only, snapshots of clones
//! and recorded working sets equal a private restore's byte for byte, and separate `kvmpager`
//! processes use the same root. All assertions are counts and bytes, never timings.

mod microvm_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use kvmpager_vmm::config::{SnapshotConfig, SnapshotThen};
use kvmpager_vmm::host_pager::shared_root;
use kvmpager_vmm::snapshot::Snapshot;
use kvmpager_vmm::tools::demo;
use kvmpager_vmm::{RunResult, StopReason, VmConfig, guests};
use microvm_util::*;

/// Pattern size (MiB) and guest RAM.
const MIB: u64 = 16;
const RAM: u64 = 128 << 20;
const PATTERN_PAGES: u64 = (MIB << 20) / 4096;

/// Snapshots the pattern guest (one vCPU, `rounds` rounds, rewriting `permille` of the
/// pattern after each verification) into `dir/snap`; returns the snapshot directory.
fn snapshot(dir: &TempDir, rounds: u64, permille: u64) -> PathBuf {
    let params = dir.join("params.img");
    demo::write_pattern_params_rewriting(&params, MIB, 0x5eed, rounds, permille).unwrap();
    let mut c = VmConfig::new(guests::PATTERN.elf.to_vec());
    (c.memory, c.vcpus, c.image) = (RAM, 1, Some(params));
    c.timeout = Some(std::time::Duration::from_secs(60));
    c.snapshot = Some(SnapshotConfig {
        dir: dir.join("snap"),
        then: SnapshotThen::Stop,
    });
    let r = kvmpager_vmm::run(&c).unwrap();
    assert!(matches!(r.stop, StopReason::Snapshotted(_)), "{}", r.stop);
    dir.join("snap")
}

/// Removes the snapshot's shared root when dropped (roots outlive VMs by design).
struct Root(PathBuf);

impl Root {
    fn of(snap: &Path) -> Root {
        let s = Snapshot::open(snap).unwrap();
        let _ = shared_root::remove(&s);
        Root(shared_root::root_path(&s).unwrap())
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn shared_config() -> VmConfig {
    let mut c = restore_config();
    c.share = true;
    c
}

fn ok(what: &str, r: &RunResult) {
    show(what, r);
    assert_eq!(r.exit_code, Some(0), "{what}: {}", r.console_text());
    assert!(r.console_text().contains("verified every byte"), "{what}");
    assert!(r.warnings.is_empty(), "{what}: {:?}", r.warnings);
}

#[test]
fn three_clones_share_one_root_and_fork_only_what_they_write() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("share-clones");
    let snap = snapshot(&dir, 1, 100);
    let _root = Root::of(&snap);
    let private = kvmpager_vmm::restore(&snap, &restore_config()).unwrap();
    ok("private restore", &private);
    assert!(!private.stats.shared_ram);
    assert!(private.stats.ram_private_bytes >= MIB << 20);

    let clones = kvmpager_vmm::restore_clones(&snap, &shared_config(), 3);
    let clones: Vec<RunResult> = clones.into_iter().map(|r| r.unwrap()).collect();
    let mut filled = 0;
    for (i, r) in clones.iter().enumerate() {
        ok(&format!("clone {i}"), r);
        let s = &r.stats;
        assert!(s.shared_ram);
        assert_eq!(s.bytes_moved + s.bytes_copied, 0, "clone {i} moved nothing");
        assert!(s.pages_shared >= PATTERN_PAGES, "clone {i}: {s:?}");
        // 10 % of the pattern was written: those pages (and a few stack pages) forked.
        assert!(
            (PATTERN_PAGES / 10..PATTERN_PAGES / 10 + 64).contains(&s.pages_forked),
            "clone {i}: {} forked",
            s.pages_forked
        );
        assert_eq!(s.ram_private_bytes, s.pages_forked * 4096);
        assert!(s.shared_root_bytes >= MIB << 20);
        filled += s.root_fill_bytes;
    }
    // The snapshot's data went into the root about once (racing fillers may both write a
    // window), never once per clone.
    let root = clones[0].stats.shared_root_bytes;
    assert!(
        (root..2 * root).contains(&filled),
        "filled {filled}, root {root}"
    );
    // All three cost less than two private restores: one root plus what each wrote.
    let totals = kvmpager_vmm::summary::CloneTotals::of(clones.iter());
    assert_eq!(totals.clones, 3);
    assert!(
        totals.host_ram_bytes < 2 * private.stats.ram_private_bytes,
        "{totals:?} vs one private VM's {}",
        private.stats.ram_private_bytes
    );
}

#[test]
fn clone_snapshots_and_working_sets_equal_a_private_restores() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("share-identical");
    let snap = snapshot(&dir, 2, 100);
    let _root = Root::of(&snap);
    let with = |share: bool, name: &str| {
        let mut c = if share {
            shared_config()
        } else {
            restore_config()
        };
        c.record = Some(dir.join(&format!("{name}.ws")));
        c.snapshot = Some(SnapshotConfig {
            dir: dir.join(name),
            then: SnapshotThen::Stop,
        });
        c
    };
    let p = kvmpager_vmm::restore(&snap, &with(false, "private")).unwrap();
    assert!(matches!(p.stop, StopReason::Snapshotted(_)), "{}", p.stop);
    // Three clones: each writes its own working-set file at once (FILE, FILE.1, FILE.2).
    let clones = kvmpager_vmm::restore_clones(&snap, &with(true, "clone"), 3);
    for (i, c) in clones.iter().enumerate() {
        let c = c.as_ref().unwrap();
        assert!(matches!(c.stop, StopReason::Snapshotted(_)), "{}", c.stop);
        assert!(c.stats.shared_ram && c.stats.pages_forked > 0);
        let suffix = if i == 0 {
            String::new()
        } else {
            format!(".{i}")
        };
        let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        let (ram, ws) = (
            format!("clone{suffix}/ram.img"),
            format!("clone.ws{suffix}"),
        );
        assert!(
            read(dir.join(&ram)) == read(dir.join("private/ram.img")),
            "clone {i}'s snapshot RAM differs from the private restore's"
        );
        assert_eq!(
            read(dir.join(&ws)),
            read(dir.join("private.ws")),
            "clone {i}'s working set"
        );
    }
    // A clone's snapshot restores (shared again) and verifies every byte.
    let back = kvmpager_vmm::restore(&dir.join("clone.1"), &shared_config()).unwrap();
    let _root2 = Root::of(&dir.join("clone.1"));
    ok("restore of a clone's snapshot", &back);
    assert!(back.console_text().contains("snapshot 2 of 2"));
}

#[test]
fn a_clone_that_writes_everything_costs_only_its_own_memory() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("share-hostile");
    let snap = snapshot(&dir, 1, 1000);
    let root = Root::of(&snap);
    let r = kvmpager_vmm::restore(&snap, &shared_config()).unwrap();
    ok("writer", &r);
    assert!(r.stats.pages_forked >= PATTERN_PAGES);
    assert!(r.stats.ram_private_bytes >= MIB << 20);
    // Every page of the root is still the snapshot's (or a hole never filled), and the
    // whole pattern is there.
    let img = std::fs::read(snap.join("ram.img")).unwrap();
    let file = std::fs::read(&root.0).unwrap();
    for (page, (f, i)) in file[..RAM as usize]
        .chunks(4096)
        .zip(img.chunks(4096))
        .enumerate()
    {
        assert!(
            f == i || f.iter().all(|&b| b == 0),
            "root page {page} was written"
        );
    }
    let pattern = demo::PATTERN_GPA as usize..(demo::PATTERN_GPA + (MIB << 20)) as usize;
    assert!(
        file[pattern.clone()] == img[pattern],
        "the pattern is in the root"
    );
    assert!(r.stats.shared_root_bytes <= r.stats.root_fill_bytes);
    // A second VM over the same root still sees the snapshot, not the writer's RAM.
    let again = kvmpager_vmm::restore(&snap, &shared_config()).unwrap();
    ok("second VM", &again);
    assert_eq!(
        again.stats.root_fill_bytes, 0,
        "the root was already filled"
    );
    assert!(again.stats.minor_faults > 0);
}

#[test]
fn a_foreign_root_file_is_replaced_never_trusted() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("share-foreign");
    let snap = snapshot(&dir, 1, 0);
    let root = Root::of(&snap);
    // A file of the right size, every page "filled" with garbage, and a wrong header.
    std::fs::create_dir_all(root.0.parent().unwrap()).unwrap();
    let len = RAM + RAM / 4096 + 4096;
    std::fs::write(&root.0, vec![0xa5u8; len as usize]).unwrap();
    let r = kvmpager_vmm::restore(&snap, &shared_config()).unwrap();
    ok("restore over a foreign root", &r);
    assert!(
        r.stats.root_fill_bytes >= MIB << 20,
        "the root was refilled"
    );
    // The stale file is gone; the new root holds the snapshot's bytes.
    let img = std::fs::read(snap.join("ram.img")).unwrap();
    let file = std::fs::read(&root.0).unwrap();
    let pattern = demo::PATTERN_GPA as usize..(demo::PATTERN_GPA + (MIB << 20)) as usize;
    assert!(file[pattern.clone()] == img[pattern]);
}

/// `kvmpager restore DIR --share --json` in a child process: (exit status, stats).
fn restore_process(snap: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(["restore", "--share", "--json", "--timeout", "60"])
        .arg(snap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn stats(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 0, "{v}");
    v["stats"].clone()
}

#[test]
fn separate_processes_use_the_same_root() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("share-processes");
    let snap = snapshot(&dir, 1, 100);
    let root = Root::of(&snap);
    let first = stats(restore_process(&snap));
    assert!(first["shared_ram"].as_bool().unwrap());
    assert!(first["root_fill_bytes"].as_u64().unwrap() >= MIB << 20);
    assert!(root.0.exists(), "the root outlives its first VM");
    let second = stats(restore_process(&snap));
    assert_eq!(second["root_fill_bytes"], 0, "{second}");
    assert!(second["minor_faults"].as_u64().unwrap() > 0);
    // Two at once over the same root.
    let (a, b) = (restore_process(&snap), restore_process(&snap));
    for s in [stats(a), stats(b)] {
        assert!(s["pages_shared"].as_u64().unwrap() >= PATTERN_PAGES, "{s}");
    }
    // `kvmpager unshare` removes it.
    let out = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .arg("unshare")
        .arg(&snap)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!root.0.exists());
}
