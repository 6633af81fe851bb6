//! Helpers of the micro-VM tests: KVM check, temporary directories, pattern-guest configs,
//! the process's memory figures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use kvmpager_vmm::config::{SnapshotConfig, SnapshotThen};
use kvmpager_vmm::tools::demo;
use kvmpager_vmm::{RunResult, VmConfig, guests};

pub use kvmpager_vmm::skip_without_kvm;

/// A fresh directory under the temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kvmpager-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `pattern` guest over `mib` MiB with `memory` bytes of RAM and `vcpus` vCPUs, its
/// parameter page in `dir/params.img`, snapshotting to `dir/snap`.
pub fn pattern_config(dir: &TempDir, mib: u64, memory: u64, vcpus: u32) -> VmConfig {
    pattern_rounds_config(dir, mib, memory, vcpus, 1)
}

/// [`pattern_config`] with `rounds` snapshot-and-verify rounds.
pub fn pattern_rounds_config(
    dir: &TempDir,
    mib: u64,
    memory: u64,
    vcpus: u32,
    rounds: u64,
) -> VmConfig {
    let params = dir.join("params.img");
    demo::write_pattern_params(&params, mib, 0x5eed, rounds).unwrap();
    let mut c = VmConfig::new(guests::PATTERN.elf.to_vec());
    c.memory = memory;
    c.vcpus = vcpus;
    c.image = Some(params);
    c.timeout = Some(Duration::from_secs(60));
    c.snapshot = Some(SnapshotConfig {
        dir: dir.join("snap"),
        then: SnapshotThen::Stop,
    });
    c
}

/// Options for a restore (vCPUs and RAM come from the snapshot).
pub fn restore_config() -> VmConfig {
    let mut c = VmConfig::new(Vec::new());
    c.timeout = Some(Duration::from_secs(60));
    c
}

pub fn show(what: &str, r: &RunResult) {
    eprintln!(
        "--- {what}: {}\n{}{}",
        r.stop,
        r.console_text(),
        r.stats.summary()
    );
}

/// A `kB` field of `/proc/self/status` (e.g. `"VmRSS:"`, `"VmHWM:"`), in KiB.
pub fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// Starts `kvmpager ARGS` (which must allow snapshots: `--snapshot-dir`), lets it run for
/// half a second, snapshots it with `kvmpager snapshot --pid` (SIGUSR1), and waits for it;
/// its output (stdout and stderr captured).
pub fn snapshot_by_signal(args: &[&str]) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let signal = std::process::Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(["snapshot", "--pid", &pid])
        .output()
        .unwrap();
    assert_eq!(signal.status.code(), Some(0), "{signal:?}");
    child.wait_with_output().unwrap()
}

/// [`snapshot_by_signal`] of the `spin` guest (64 MiB of RAM, a 30 s timeout) run with
/// `--snapshot-dir DEST` and `extra` arguments.
pub fn snapshot_spin_by_signal(dest: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--guest",
        "embedded:spin",
        "--memory",
        "64M",
        "--timeout",
        "30",
        "--snapshot-dir",
        dest,
    ];
    args.extend_from_slice(extra);
    snapshot_by_signal(&args)
}
