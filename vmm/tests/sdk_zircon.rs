//! End-to-end: Zircon's pager tests (`guest/sdk/tests/`), built with the C/C++ SDK by gcc and
//! by clang, run under KVM: every registered case runs, none fails, each skip names its
//! reason, and the pass counts hold. Also the README's ten-line C guest, built with the two
//! commands the README gives (`kvmpager sdk` flags) and run with `kvmpager run --guest`.

use std::process::Command;
use std::time::Duration;

use kvmpager_vmm::skip_without_kvm;
use kvmpager_vmm::tools::sdk::{self, Toolchain};

const TIMEOUT: Duration = Duration::from_secs(180);
/// Cases of pager.cc that pass (of 128; the rest are named skips with reasons).
const PAGER_PASSES: usize = 82;
/// Cases of pager-writeback.cc that pass (of 171; the rest are named skips with reasons).
const WRITEBACK_PASSES: usize = 35;

fn suite(tc: Toolchain) {
    if skip_without_kvm() {
        return;
    }
    let mut out = Vec::new();
    let r = sdk::run_zircon_suite(tc, sdk::ZIRCON_VCPUS, TIMEOUT, &mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
    let text = String::from_utf8_lossy(&out);
    eprintln!("{text}--- {} in {:.2?}", r.stop, r.elapsed);
    assert!(
        r.failed.is_empty(),
        "{}: failed cases: {:?}",
        tc.name(),
        r.failed
    );
    assert!(
        r.ok(),
        "{}: not every case ran and passed:\n{}",
        tc.name(),
        r.console
    );
    assert_eq!(r.registered, Some(r.ran()));
    assert!(
        r.skipped.iter().all(|(_, why)| !why.is_empty()),
        "a skip without a reason"
    );
    assert!(
        r.passed_in("Pager.") >= PAGER_PASSES,
        "{}: {} Pager cases passed",
        tc.name(),
        r.passed_in("Pager.")
    );
    assert!(r.passed_in("PagerWriteback.") >= WRITEBACK_PASSES);
    assert!(
        r.console.ends_with(" 0 failed\n"),
        "closing line: {:?}",
        r.console.lines().last()
    );
}

#[test]
fn zircon_pager_tests_pass_built_with_gcc() {
    suite(Toolchain::Gcc);
}

#[test]
fn zircon_pager_tests_pass_built_with_clang() {
    suite(Toolchain::Clang);
}

/// The README's example, character for character.
const HELLO: &str = r#"#include <stdio.h>
#include <zircon/syscalls.h>
int main(void) {
  zx_handle_t vmo; char buf[6] = {0};
  zx_vmo_create(4096, 0, &vmo);
  zx_vmo_write(vmo, "hello", 0, 5);
  zx_vmo_read(vmo, buf, 0, 5);
  printf("%s from a C guest\n", buf);
  return 42;
}
"#;

#[test]
fn readme_example_builds_and_runs_with_two_commands() {
    if skip_without_kvm() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kvmpager");
    let dir = std::env::temp_dir().join(format!("kvmpager-sdk-hello-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.c"), HELLO).unwrap();
    let script = format!(
        "set -e; cd {d}; gcc $({bin} sdk --cflags) hello.c $({bin} sdk --ldflags) -o hello; {bin} run --guest hello",
        d = dir.display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stdout.contains("hello from a C guest"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(o.status.code(), Some(42), "stderr: {stderr}");
}
