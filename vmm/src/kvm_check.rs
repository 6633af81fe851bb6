//! Whether this host can run VMs at all: the `/dev/kvm` check that callers (tests above all)
//! make before they try.

use std::fs::OpenOptions;

/// Whether `/dev/kvm` can be opened read-write.
pub fn kvm_available() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// For tests that need KVM: `true` (skip the test) when `/dev/kvm` cannot be opened, after
/// printing `skipping: /dev/kvm cannot be opened` to stderr.
pub fn skip_without_kvm() -> bool {
    let ok = kvm_available();
    if !ok {
        eprintln!("skipping: /dev/kvm cannot be opened");
    }
    !ok
}
