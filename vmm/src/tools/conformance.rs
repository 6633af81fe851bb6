//! The pager conformance suite: boots the `conformance` guest (`guest/programs/src/bin/
//! conformance.rs`), collects its `TestReport`s and checks that every registered case ran.
//!
//! The guest prints `registered N cases`, one `[PASS] name` / `[FAIL] name: message` line per
//! case and `P passed, F failed` last, and reports each case with the `TestReport` hypercall.
//! [`run_suite`] prints the same from the host side (from the reports, so a case that never
//! reported is visible) and says whether the number of cases run equals the number registered.
//!
//! This module uses only the crate's public run API (`run`, `VmConfig`, `guests`, ...), as any
//! other client of the crate would; `kvmpager test` and `vmm/tests/guest_conformance.rs` run it.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::{RunResult, StopReason, TestReport, VmConfig, guests};

/// Name of the embedded conformance guest.
pub const GUEST: &str = "conformance";
/// vCPUs the suite wants: vCPU 0 accesses, vCPU 1 pages, vCPU 2 is the second accessor of
/// ConcurrentOverlappingAccess (which fails, by name, with fewer).
pub const DEFAULT_VCPUS: usize = 3;
/// Guest RAM for the suite.
pub const MEMORY: u64 = 64 << 20;
/// Default time limit for the whole suite (it takes about a second).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the suite could not run at all (a failing case is a [`SuiteResult`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The conformance guest is not embedded in this build.
    #[error("no embedded guest named {GUEST:?}")]
    NoGuest,
    /// The vCPU count does not fit.
    #[error("invalid vCPU count {0}")]
    BadVcpus(usize),
    /// The VM could not be built or started.
    #[error(transparent)]
    Vm(#[from] crate::Error),
}

/// The outcome of one suite run.
#[derive(Clone, Debug)]
pub struct SuiteResult {
    /// The count from the guest's `registered N cases` line (`None`: never printed).
    pub registered: Option<usize>,
    /// The cases' `TestReport`s, in the order they ran.
    pub cases: Vec<TestReport>,
    /// The guest's closing `P passed, F failed` line (`None`: never printed).
    pub summary: Option<(usize, usize)>,
    /// The guest's exit code, if it exited (0: all registered cases ran and passed).
    pub exit_code: Option<i64>,
    /// Why the VM stopped.
    pub stop: StopReason,
    /// Everything the guest printed.
    pub console: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl SuiteResult {
    /// Builds the result of a finished run of the conformance guest.
    pub fn from_run(r: &RunResult, elapsed: Duration) -> SuiteResult {
        let console = r.console_text();
        SuiteResult {
            registered: parse_registered(&console),
            cases: r.test_reports.clone(),
            summary: parse_summary(&console),
            exit_code: r.exit_code,
            stop: r.stop.clone(),
            console,
            elapsed,
        }
    }

    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// The failed cases.
    pub fn failures(&self) -> Vec<&TestReport> {
        self.cases.iter().filter(|c| !c.passed).collect()
    }

    /// Whether the number of cases run equals the number registered (no silent skips).
    pub fn all_ran(&self) -> bool {
        self.registered == Some(self.cases.len())
    }

    /// Every registered case ran and passed, the guest's own summary says `N passed, 0 failed`
    /// and it exited with 0.
    pub fn ok(&self) -> bool {
        self.all_ran()
            && self.failed() == 0
            && self.summary == Some((self.cases.len(), 0))
            && self.exit_code == Some(0)
    }

    /// Writes one line per case, the closing `P passed, F failed` and whether all registered
    /// cases ran.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self.registered {
            Some(n) => writeln!(out, "registered {n} cases")?,
            None => writeln!(out, "the guest never said how many cases it registered")?,
        }
        for c in &self.cases {
            if c.passed {
                writeln!(out, "[PASS] {}", c.name)?;
            } else {
                writeln!(out, "[FAIL] {}: {}", c.name, c.message)?;
            }
        }
        let ran = self.cases.len();
        match self.registered {
            Some(n) if n == ran => writeln!(out, "cases run: {ran} of {n} registered")?,
            Some(n) => writeln!(
                out,
                "cases run: {ran} of {n} registered — {} did not run (VM stop: {})",
                n.saturating_sub(ran),
                self.stop
            )?,
            None => writeln!(out, "cases run: {ran} (VM stop: {})", self.stop)?,
        }
        if !self.stop.is_exit() {
            writeln!(out, "the VM stopped early: {}", self.stop)?;
        }
        writeln!(out, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// `registered N cases` (the first such line).
fn parse_registered(console: &str) -> Option<usize> {
    console.lines().find_map(|l| {
        l.trim()
            .strip_prefix("registered ")?
            .strip_suffix(" cases")?
            .parse()
            .ok()
    })
}

/// `P passed, F failed` (the last such line).
fn parse_summary(console: &str) -> Option<(usize, usize)> {
    console.lines().rev().find_map(|l| {
        let (p, f) = l.trim().split_once(" passed, ")?;
        Some((p.parse().ok()?, f.strip_suffix(" failed")?.parse().ok()?))
    })
}

/// The VM configuration of a suite run.
pub fn config(vcpus: usize, timeout: Duration) -> Result<VmConfig, SuiteError> {
    let guest = guests::by_name(GUEST).ok_or(SuiteError::NoGuest)?;
    let mut c = VmConfig::new(guest.elf.to_vec());
    c.vcpus = u32::try_from(vcpus).map_err(|_| SuiteError::BadVcpus(vcpus))?;
    c.memory = MEMORY;
    c.timeout = Some(timeout);
    c.echo_console = false;
    Ok(c)
}

/// Boots the conformance guest on `vcpus` vCPUs (at most `timeout`), prints each case and the
/// closing `N passed, N failed` to stdout, and returns the result.
pub fn run_suite(vcpus: usize, timeout: Duration) -> Result<SuiteResult, SuiteError> {
    run_suite_to(vcpus, timeout, &mut std::io::stdout())
}

/// [`run_suite`], printing to `out`.
pub fn run_suite_to(
    vcpus: usize,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<SuiteResult, SuiteError> {
    let c = config(vcpus, timeout)?;
    let start = Instant::now();
    let r = crate::run(&c)?;
    let result = SuiteResult::from_run(&r, start.elapsed());
    let _ = result.print(out).and_then(|_| out.flush());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_parse() {
        let c = "registered 3 cases\n[PASS] a\n[FAIL] b: x\n1 passed, 1 failed\n";
        assert_eq!(parse_registered(c), Some(3));
        assert_eq!(parse_summary(c), Some((1, 1)));
        assert_eq!(parse_registered("nothing"), None);
        assert_eq!(
            parse_summary("0 passed, 0 failed\n2 passed, 0 failed"),
            Some((2, 0))
        );
    }
}
