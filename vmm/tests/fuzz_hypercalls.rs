//! The hypercall fuzzer's inputs as ordinary tests: every saved input in
//! `fuzz/regressions/hypercalls/` (each one crashed, hung or broke an invariant once, and was
//! fixed), then random inputs from a fixed seed. Each saved input has a `.expect` file naming the
//! call it was saved for and the status that call must now return (`TestReport
//! ZX_ERR_INVALID_ARGS`): if the harness's byte encoding changes and an input no longer makes that
//! call, the test says so instead of passing without testing anything. Both go through the same
//! harness as the libFuzzer target (`kvmpager_vmm::tools::fuzz::run_case`), which panics when the
//! VMM is unsound. The long runs (1M+ inputs) use cargo-fuzz; see README "Fuzzing".

use std::cell::Cell;
use std::path::PathBuf;

use kvmpager::abi::Call;
use kvmpager::abi::status;
use kvmpager_vmm::skip_without_kvm;
use kvmpager_vmm::tools::fuzz;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn regressions() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/hypercalls");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_none())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_fuzzer_input_runs_cleanly() {
    if skip_without_kvm() {
        return;
    }
    let files = regressions();
    assert!(!files.is_empty(), "no saved inputs");
    for f in files {
        let data = std::fs::read(&f).expect("readable input");
        eprintln!("{}", f.display());
        let stats = fuzz::run_case(&data).expect("a fuzzing VM");
        let made: Vec<String> = stats
            .log
            .iter()
            .map(|&(nr, r)| {
                let call = Call::from_nr(nr).map_or(format!("#{nr}"), |c| format!("{c:?}"));
                format!("{call} {}", status::name(r as i32))
            })
            .collect();
        let expect = std::fs::read_to_string(f.with_extension("expect"))
            .unwrap_or_else(|e| panic!("{}.expect: {e}", f.display()));
        for want in expect.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                made.iter().any(|m| m == want.trim()),
                "{}: no call `{want}` among {made:?} (the harness's encoding changed? \
                 re-find the input, see fuzz/regressions/hypercalls/README.md)",
                f.display()
            );
        }
    }
}

#[test]
fn random_hypercall_sequences_leave_the_vmm_sound() {
    if skip_without_kvm() {
        return;
    }
    let config = Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let (calls, ok) = (Cell::new(0), Cell::new(0));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..4096), |data| {
            let s = fuzz::run_case(&data).expect("a fuzzing VM");
            calls.set(calls.get() + s.calls);
            ok.set(ok.get() + s.ok);
            Ok(())
        })
        .unwrap();
    eprintln!("{} calls, {} returned ZX_OK", calls.get(), ok.get());
    assert!(
        ok.get() > 0,
        "no call ever succeeded: the harness reaches nothing"
    );
}
