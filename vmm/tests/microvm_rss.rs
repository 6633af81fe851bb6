//! A 16 GiB-RAM guest is snapshotted and restored lazily without touching more host memory
//! than it uses: the peak RSS of the restore (VmHWM, reset through /proc/self/clear_refs) grows
//! by a small multiple of what the guest touches, never by anything near its RAM size. The
//! snapshot's ram.img is sparse. One test per binary, so no other test's memory is counted.

mod microvm_util;

use std::os::unix::fs::MetadataExt;

use kvmpager_vmm::StopReason;
use microvm_util::*;

const GIB: u64 = 1 << 30;

#[test]
fn sixteen_gib_guest_restores_with_small_rss() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-16g");
    let c = pattern_config(&dir, 16, 16 * GIB, 2);
    let r = kvmpager_vmm::run(&c).unwrap();
    show("run", &r);
    assert!(matches!(r.stop, StopReason::Snapshotted(_)), "{}", r.stop);
    let ram = dir.join("snap").join("ram.img");
    let md = std::fs::metadata(&ram).unwrap();
    assert_eq!(md.len(), 16 * GIB);
    // Sparse: the blocks allocated are about what the guest wrote, not 16 GiB.
    assert!(
        md.blocks() * 512 < 256 << 20,
        "ram.img uses {} bytes",
        md.blocks() * 512
    );

    // Reset the peak RSS ("5" > clear_refs) so VmHWM measures the restore alone; without
    // that the first run's peak (also small) is included, which only makes the check
    // stricter.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let back = kvmpager_vmm::restore(&dir.join("snap"), &restore_config()).unwrap();
    show("restore", &back);
    let peak = status_kib("VmHWM:");
    assert_eq!(back.exit_code, Some(0), "{}", back.console_text());
    let touched = back.stats.pages_supplied * 4096;
    let growth = peak.saturating_sub(before) * 1024;
    eprintln!(
        "RSS before {before} KiB, peak {peak} KiB: growth {} MiB for {} MiB supplied",
        growth >> 20,
        touched >> 20
    );
    assert!(touched < 256 << 20, "supplied {touched} bytes");
    assert!(
        growth < touched + (128 << 20),
        "restore grew RSS by {growth} bytes for {touched} bytes of guest memory"
    );
}
