//! Tooling around the VMM, kept apart from the VMM itself (Firecracker's `test_utils/` plays
//! the same role): nothing in the VM, vCPU or pager paths depends on these modules, except
//! that the built-in pattern pager serves [`demo`]'s image.
//! - [`demo`]: the demo memory image and pattern the default micro-VM checksums.
//! - [`conformance`]: boots the guest-side conformance suite and collects its reports.
//! - [`bench`]: `kvmpager bench`, each figure against a baseline from the same run.
//! - [`fuzz`]: the hypercall fuzzer's harness (`fuzz/`, `vmm/tests/fuzz_hypercalls.rs`).
//! - [`servers`]: nginx with WebDAV on a loopback port (snapshot-URL tests, bench case 6).
//! - [`sdk`]: the C/C++ guest SDK (`guest/sdk/`): flags, builds, Zircon's pager tests.

pub mod bench;
pub mod conformance;
pub mod demo;
pub mod fuzz;
pub mod sdk;
pub mod servers;
