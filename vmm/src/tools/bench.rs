//! `kvmpager bench`: what our users come for, each figure next to a baseline measured in the
//! same run on the same machine, with the ratio (absolute times on shared machines are noisy).
//!
//! Cases, one module each:
//! 1. [`exits`]: the hypercall round trip vs the raw port-I/O exit.
//! 2. [`supply`]: SUPPLY throughput per strategy and run size vs a raw `UFFDIO_COPY` loop.
//! 3. [`faults`]: fault service latency (host pager, guest pager) vs a raw userfaultfd handler.
//! 4. [`start`]: lazy start time vs RAM size.
//! 5. [`restore`]: working-set restore: on demand vs prefetch vs eager full copy.
//! 6. [`remote`]: snapshots in object storage (nginx on loopback): cold and warm restores vs
//!    the local directory, prefetch through injected latency, dedupe, the cache bound.
//! 7. [`share`]: many VMs, one copy of the snapshot: shared clones vs private restores.
//! 8. [`api`]: cases 1 and 3 with the control socket scraped at 10 Hz vs without.
//! 9. [`extpagers`]: external pagers: the C example's fault latency and the bridge's supply
//!    throughput from the data region, vs the raw handler and `memcpy`.
//!
//! [`report`] prints the table and writes the JSON and SVG files. Guest-side halves live in
//! `guest/programs/src/bin/bench_*.rs`; they take their parameters from a page of guest RAM
//! the bench writes before the vCPUs start ([`PARAMS_GPA`]) and leave their results in the
//! next page ([`RESULTS_GPA`]), which the bench reads after the VM stops.

pub mod api;
pub mod exits;
pub mod extpagers;
pub mod faults;
pub mod remote;
pub mod report;
pub mod restore;
pub mod share;
pub mod start;
pub mod supply;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::config::VmConfig;
use crate::exit::StopReason;
use crate::guests;
use crate::vcpu::{self, Vcpu};
use crate::vm::Vm;

pub use report::{Distribution, Figure, Report, Series, Target};

/// Guest-physical address of the parameter page (u64 words; see the bench guest programs).
pub const PARAMS_GPA: u64 = 0xc0_0000;
/// Guest-physical address of the results page.
pub const RESULTS_GPA: u64 = PARAMS_GPA + 0x1000;
/// First word of a parameter or results block.
pub const MAGIC: u64 = 0x6b76_6d70_6265_6e63; // "kvmpbenc"

/// Wall-clock limit of one bench VM.
const VM_TIMEOUT: Duration = Duration::from_secs(120);

/// `kvmpager bench` arguments.
#[derive(Debug, Clone, Default, Args)]
pub struct BenchArgs {
    /// Short runs: fewer sizes and iterations (CI-like; figures are noisier).
    #[arg(long)]
    pub quick: bool,
    /// Write every figure (and the raw distributions) to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw fault-latency distributions and throughput per range size to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Which cases to run, e.g. `1,2,3` (default: 1-7 and 9; 8, the control socket's cost,
    /// only when named).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<u8>,
}

/// How big the runs are.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cases to run (1..=9).
    pub cases: Vec<u8>,
    /// Case 1: calls per loop.
    pub exit_calls: u64,
    /// Case 1, 3, 4, 5: repetitions (the median is reported).
    pub reps: usize,
    /// Case 2: run sizes in bytes.
    pub supply_sizes: Vec<u64>,
    /// Case 2: bytes moved per (strategy, size) at most; iterations = this / size, clamped.
    pub supply_budget: u64,
    /// Case 2: most iterations per (strategy, size).
    pub supply_max_iters: u64,
    /// Case 3: faults per measurement.
    pub faults: u64,
    /// Case 4: RAM sizes.
    pub start_sizes: Vec<u64>,
    /// Case 5: image size, working-set run and stride; case 7: the pattern guest's data.
    pub restore_size: u64,
    /// Case 5: bytes of each working-set run.
    pub restore_run: u64,
    /// Case 5: distance between working-set runs.
    pub restore_stride: u64,
    /// Case 7: clones restored together.
    pub share_clones: usize,
    /// Case 7: RAM of the snapshot.
    pub share_ram: u64,
    /// Case 7: working set of each VM (whole MiB).
    pub share_ws: u64,
    /// Progress lines on stderr.
    pub verbose: bool,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Options {
    /// The full benchmark.
    pub fn full() -> Self {
        Options {
            cases: vec![1, 2, 3, 4, 5, 6, 7, 9],
            exit_calls: 20_000,
            reps: 3,
            supply_sizes: vec![4 * KIB, 64 * KIB, 2 * MIB, 64 * MIB, GIB],
            supply_budget: 512 * MIB,
            supply_max_iters: 300,
            faults: 4096,
            start_sizes: vec![64 * MIB, 256 * MIB, GIB, 4 * GIB, 16 * GIB, 64 * GIB],
            restore_size: 256 * MIB,
            restore_run: 64 * KIB,
            restore_stride: 256 * KIB,
            share_clones: 16,
            share_ram: GIB,
            share_ws: 256 * MIB,
            verbose: true,
        }
    }

    /// `--quick`: every figure, small sizes, few iterations.
    pub fn quick() -> Self {
        Options {
            cases: vec![1, 2, 3, 4, 5, 6, 7, 9],
            exit_calls: 2_000,
            reps: 1,
            supply_sizes: vec![4 * KIB, 64 * KIB, 2 * MIB, 64 * MIB],
            supply_budget: 64 * MIB,
            supply_max_iters: 50,
            faults: 512,
            start_sizes: vec![64 * MIB, GIB, 16 * GIB],
            restore_size: 16 * MIB,
            restore_run: 64 * KIB,
            restore_stride: 256 * KIB,
            share_clones: 4,
            share_ram: 256 * MIB,
            share_ws: 32 * MIB,
            verbose: true,
        }
    }

    /// The smallest configuration that still produces every figure (tests).
    pub fn tiny() -> Self {
        Options {
            cases: vec![1, 2, 3, 4, 5, 6, 7, 9],
            exit_calls: 200,
            reps: 1,
            supply_sizes: vec![4 * KIB, 2 * MIB],
            supply_budget: 8 * MIB,
            supply_max_iters: 4,
            faults: 64,
            start_sizes: vec![64 * MIB, 256 * MIB],
            restore_size: 4 * MIB,
            restore_run: 64 * KIB,
            restore_stride: 256 * KIB,
            share_clones: 2,
            share_ram: 128 * MIB,
            share_ws: 8 * MIB,
            verbose: false,
        }
    }
}

/// Runs the selected cases; a case that cannot run leaves a note and figures without values.
pub fn run(opts: &Options) -> Report {
    let mut report = Report::new(opts);
    for &case in &opts.cases {
        let t = Instant::now();
        if opts.verbose {
            eprintln!("bench: case {case} ...");
        }
        let r = match case {
            1 => exits::run(opts, &mut report),
            2 => supply::run(opts, &mut report),
            3 => faults::run(opts, &mut report),
            4 => start::run(opts, &mut report),
            5 => restore::run(opts, &mut report),
            6 => remote::run(opts, &mut report),
            7 => share::run(opts, &mut report),
            8 => api::run(opts, &mut report),
            9 => extpagers::run(opts, &mut report),
            n => Err(format!("no case {n}")),
        };
        if let Err(e) = r {
            report.note(format!("case {case}: {e}"));
        }
        if opts.verbose {
            eprintln!(
                "bench: case {case} done in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    report
}

/// `kvmpager bench`: runs, prints the table, writes the files; returns the exit code
/// (0 unless a file cannot be written or nothing could be measured).
pub fn main(args: &BenchArgs) -> i32 {
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    if !args.cases.is_empty() {
        opts.cases = args.cases.clone();
    }
    let report = run(&opts);
    println!("{}", report.table());
    let mut code = 0;
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, report.json())
    {
        eprintln!("kvmpager bench: {}: {e}", path.display());
        code = 1;
    }
    if let Some(path) = &args.svg
        && let Err(e) = std::fs::write(path, report.svg())
    {
        eprintln!("kvmpager bench: {}: {e}", path.display());
        code = 1;
    }
    if report.figures.iter().all(|f| f.value.is_none()) {
        code = 1;
    }
    code
}

// ---- shared helpers -------------------------------------------------------------------------

/// A VM configuration for bench guest `name`.
pub(crate) fn guest_config(name: &str, vcpus: u32, memory: u64) -> Result<VmConfig, String> {
    let g = guests::by_name(name).ok_or_else(|| format!("no embedded guest {name:?}"))?;
    let mut c = VmConfig::new(g.elf.to_vec());
    c.vcpus = vcpus;
    c.memory = memory;
    c.timeout = Some(VM_TIMEOUT);
    Ok(c)
}

/// A bench VM after it stopped: its objects (stats, RAM) are still there to read.
pub(crate) struct Finished {
    pub vm: Arc<Vm>,
    pub stop: StopReason,
    /// Just before `Vm::new`.
    pub t_start: Instant,
}

impl Finished {
    /// `n` u64 words of guest RAM at `gpa` (pages the guest wrote; absent pages would block).
    pub fn words(&self, gpa: u64, n: usize) -> Result<Vec<u64>, String> {
        let bytes = self
            .vm
            .ram()
            .read(gpa, 8 * n as u64)
            .map_err(|s| format!("reading guest RAM at {gpa:#x}: status {s}"))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect())
    }

    /// The results block (`n` words), checked for the magic word.
    pub fn results(&self, n: usize) -> Result<Vec<u64>, String> {
        if self.stop != StopReason::Exit(0) {
            return Err(format!(
                "bench guest stopped: {}; console: {}",
                self.stop,
                String::from_utf8_lossy(&self.vm.console().contents())
            ));
        }
        let r = self.words(RESULTS_GPA, n)?;
        if r[0] != MAGIC {
            return Err("bench guest left no results".into());
        }
        Ok(r)
    }
}

/// Builds the VM, writes `params` at [`PARAMS_GPA`], calls `before_start`, runs the vCPUs
/// until the VM stops, and stops every thread; the VM is returned for inspection.
pub(crate) fn run_guest(
    cfg: &VmConfig,
    params: &[u64],
    before_start: impl FnOnce(&Arc<Vm>) -> Result<(), String>,
) -> Result<Finished, String> {
    vcpu::install_kick_handler().map_err(|e| e.to_string())?;
    let t_start = Instant::now();
    let vm = Vm::new(cfg).map_err(|e| e.to_string())?;
    let result = start_and_wait(&vm, cfg, params, before_start);
    vm.kill_processes();
    result.map(|stop| Finished { vm, stop, t_start })
}

fn start_and_wait(
    vm: &Arc<Vm>,
    cfg: &VmConfig,
    params: &[u64],
    before_start: impl FnOnce(&Arc<Vm>) -> Result<(), String>,
) -> Result<StopReason, String> {
    if !params.is_empty() {
        let bytes: Vec<u8> = params.iter().flat_map(|w| w.to_le_bytes()).collect();
        vm.ram()
            .write(PARAMS_GPA, &bytes)
            .map_err(|s| format!("writing bench parameters: status {s}"))?;
    }
    before_start(vm)?;
    let mut handles = Vec::new();
    let mut result = Ok(());
    for i in 0..cfg.vcpus {
        match Vcpu::new(vm, i).and_then(Vcpu::spawn) {
            Ok(h) => handles.push(h),
            Err(e) => {
                result = Err(e.to_string());
                vm.request_stop(StopReason::Timeout);
                break;
            }
        }
    }
    if result.is_ok() {
        let deadline = cfg.timeout.map(|t| Instant::now() + t);
        if vm.wait_stop(deadline).is_none() {
            vm.request_stop(StopReason::Timeout);
        }
    }
    vm.kill_processes();
    for h in handles {
        if !h.stop(Duration::from_secs(5)) {
            log::error!("bench: a vCPU thread did not stop; abandoning it");
        }
    }
    result?;
    Ok(vm
        .wait_stop(Some(Instant::now()))
        .unwrap_or(StopReason::Timeout))
}

/// A CPU this process may use other than `cpu`, if there is one.
pub(crate) fn other_cpu(cpu: usize) -> Option<usize> {
    crate::vm::usable_cpus().into_iter().find(|&c| c != cpu)
}

/// p-quantile (0..=1) of sorted samples (nearest rank); 0 when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The median of `v` (sorted in place).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(v, 0.5)
}

/// A case's outcome from the errors of its runs: `Ok` if there are none, else all of them
/// joined with `; `.
pub(crate) fn all_ok(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// How the supplies between two counter readings got their pages in: moved, remapped,
/// copied, and the per-page fallbacks among them.
pub(crate) fn supply_paths(
    before: &kvmpager::counters::CounterValues,
    after: &kvmpager::counters::CounterValues,
) -> String {
    format!(
        "moved {} / remapped {} / copied {} (per-page fallbacks {})",
        size_name(after.bytes_moved - before.bytes_moved),
        size_name(after.bytes_remapped - before.bytes_remapped),
        size_name(after.bytes_copied - before.bytes_copied),
        after.copy_fallbacks - before.copy_fallbacks,
    )
}

/// Human size: 4 KiB, 2 MiB, 1 GiB.
pub(crate) fn size_name(b: u64) -> String {
    match b {
        b if b >= GIB && b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= KIB && b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(size_name(4096), "4 KiB");
        assert_eq!(size_name(2 << 20), "2 MiB");
        assert_eq!(size_name(1 << 30), "1 GiB");
    }
}
