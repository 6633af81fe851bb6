//! Case 7: many VMs, one copy of the snapshot (`restore --share`) against private restores of
//! the same snapshot in the same run.
//!
//! The `pattern` guest (one vCPU) writes `share_ws` bytes in `share_ram` of RAM and is
//! snapshotted; each restore verifies every byte of its pattern (its working set) and writes
//! a tenth of it again (the same words: the pages are written, so a clone forks them).
//! Rows:
//! - density: `share_clones` clones in one process over one root filled lazily (empty at the
//!   start): their RAM's host memory (private anonymous pages + the root once + the page-table
//!   growth of the process) vs one private restore's (anonymous + page tables);
//! - time to the working set with it prefetched (`--prefetch` of the recorded set; the clock
//!   is the time to the first guest instruction, which includes the prefetch): the first shared
//!   restore (root empty: it fills the root) and a later clone (root filled) vs a private
//!   restore, and the later clone against the 25 ms budget;
//! - fault cost: host fault p50 with 4 KiB read-ahead (one fault per page) of a later clone
//!   (`UFFDIO_CONTINUE`) vs a private restore (`UFFDIO_MOVE`); and each with its threads
//!   pinned (default) vs not (`pin_threads = false`);
//! - recorded working sets: clones whose set equals the private restore's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Figure, Options, Report, Target, median, size_name};
use crate::config::{SnapshotConfig, SnapshotThen, VmConfig};
use crate::host_pager::shared_root;
use crate::snapshot::{self, Snapshot};
use crate::summary::CloneTotals;
use crate::tools::demo;
use crate::{RunResult, StopReason, guests};

/// The budget for a later clone to reach the end of its working set.
const LATER_CLONE_BUDGET_NS: f64 = 25e6;
/// Per mille of the working set each restore writes.
const WRITE_PERMILLE: u64 = 100;

/// The snapshot and working-set files of the case; removed (with the root) on drop.
struct Files {
    dir: PathBuf,
    snap: PathBuf,
    ws: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Ok(s) = Snapshot::open(&self.snap) {
            let _ = shared_root::remove(&s);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs case 7.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let files = make_snapshot(opts)?;
    let private = restore(&files, Mode::private().record(&files.ws))?;
    let private_pt = private.1;
    let private = private.0;
    let ws = snapshot::read_working_set(&files.ws, opts.share_ram).map_err(|e| e.to_string())?;
    density(opts, report, &files, &private, private_pt, &ws)?;
    timing(opts, report, &files)?;
    Ok(())
}

/// Snapshots the pattern guest.
fn make_snapshot(opts: &Options) -> Result<Files, String> {
    let dir = std::env::temp_dir().join(format!("kvmpager-bench-share-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let files = Files {
        snap: dir.join("snap"),
        ws: dir.join("ws.bin"),
        dir,
    };
    let params = files.dir.join("params.img");
    let mib = opts.share_ws >> 20;
    demo::write_pattern_params_rewriting(&params, mib, 0x5eed, 1, WRITE_PERMILLE)
        .map_err(|e| e.to_string())?;
    let mut c = VmConfig::new(guests::PATTERN.elf.to_vec());
    (c.memory, c.vcpus, c.image) = (opts.share_ram, 1, Some(params));
    c.timeout = Some(Duration::from_secs(300));
    c.snapshot = Some(SnapshotConfig {
        dir: files.snap.clone(),
        then: SnapshotThen::Stop,
    });
    let r = crate::run(&c).map_err(|e| e.to_string())?;
    if !matches!(r.stop, StopReason::Snapshotted(_)) {
        return Err(format!("the pattern guest did not snapshot: {}", r.stop));
    }
    Ok(files)
}

/// How one restore runs.
#[derive(Clone, Default)]
struct Mode {
    share: bool,
    prefetch: bool,
    page_faults: bool,
    unpinned: bool,
    record: Option<PathBuf>,
}

impl Mode {
    fn private() -> Mode {
        Mode::default()
    }

    fn shared() -> Mode {
        Mode {
            share: true,
            ..Mode::default()
        }
    }

    fn record(mut self, p: &Path) -> Mode {
        self.record = Some(p.to_path_buf());
        self
    }

    fn describe(&self) -> String {
        format!(
            "restore ({}{}{}{})",
            if self.share { "shared" } else { "private" },
            if self.prefetch { ", prefetch" } else { "" },
            if self.page_faults {
                ", 4 KiB read-ahead"
            } else {
                ""
            },
            if self.unpinned { ", not pinned" } else { "" }
        )
    }

    fn config(&self, files: &Files) -> VmConfig {
        let mut c = VmConfig::new(Vec::new());
        c.timeout = Some(Duration::from_secs(300));
        c.fault_timeout = Some(Duration::from_secs(30));
        c.share = self.share;
        c.pin_threads = !self.unpinned;
        c.record = self.record.clone();
        if self.prefetch {
            c.prefetch = Some(files.ws.clone());
        }
        if self.page_faults {
            c.readahead = kvmpager::abi::PAGE_SIZE;
        }
        c
    }
}

/// Page tables of this process (`VmPTE`, bytes).
fn page_tables() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmPTE:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |k| k * 1024)
}

/// Runs `f` while sampling the page tables; returns its result and their peak growth.
fn with_page_tables<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = page_tables();
    let (stop, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(page_tables(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let r = f();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (r, peak.load(Ordering::Relaxed).saturating_sub(base))
}

fn check(what: &str, r: &RunResult) -> Result<(), String> {
    if r.exit_code != Some(0) {
        return Err(format!("{what}: {}; console: {}", r.stop, r.console_text()));
    }
    Ok(())
}

/// One restore: its result and the page-table growth while it ran.
fn restore(files: &Files, mode: Mode) -> Result<(RunResult, u64), String> {
    let cfg = mode.config(files);
    let (r, pt) = with_page_tables(|| crate::restore(&files.snap, &cfg));
    let r = r.map_err(|e| e.to_string())?;
    check(&mode.describe(), &r)?;
    Ok((r, pt))
}

fn remove_root(files: &Files) -> Result<(), String> {
    let s = Snapshot::open(&files.snap).map_err(|e| e.to_string())?;
    shared_root::remove(&s).map_err(|e| e.to_string())?;
    Ok(())
}

/// The density rows: N clones over a lazily filled root vs one private VM.
fn density(
    opts: &Options,
    report: &mut Report,
    files: &Files,
    private: &RunResult,
    private_pt: u64,
    ws: &[u64],
) -> Result<(), String> {
    remove_root(files)?;
    let n = opts.share_clones;
    let record = files.dir.join("clone.ws");
    let cfg = Mode::shared().record(&record).config(files);
    let (runs, pt) = with_page_tables(|| crate::restore_clones(&files.snap, &cfg, n));
    let runs: Vec<RunResult> = runs
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for (i, r) in runs.iter().enumerate() {
        check(&format!("clone {i}"), r)?;
    }
    let totals = CloneTotals::of(runs.iter());
    let all = totals.host_ram_bytes + pt;
    let one = private.stats.ram_private_bytes + private_pt;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    report.push(
        Figure::new(7, format!("host memory of {n} shared clones"), "MiB")
            .value(mib(all))
            .baseline("one private restore", mib(one))
            .target(Target::AtMost(3.0))
            .view("host, /proc/self/smaps (RAM mappings) + root extents + VmPTE growth")
            .note(format!(
                "snapshot RAM {}, working set {} each, {} per mille written; {:.1} MiB private + \
                 {:.1} MiB root + {:.1} MiB page tables; {} pages forked; private restores would \
                 cost ~{n}x",
                size_name(opts.share_ram),
                size_name(opts.share_ws),
                WRITE_PERMILLE,
                mib(totals.ram_private_bytes),
                mib(totals.shared_root_bytes),
                mib(pt),
                totals.pages_forked
            )),
    );
    let mut differ = Vec::new();
    for i in 0..n {
        let path = match i {
            0 => record.clone(),
            i => PathBuf::from(format!("{}.{i}", record.display())),
        };
        match snapshot::read_working_set(&path, opts.share_ram) {
            Ok(w) if w == ws => {}
            Ok(w) => {
                let at = w.iter().zip(ws).position(|(a, b)| a != b);
                differ.push(format!(
                    "clone {i}: {} pages, first difference at {at:?}",
                    w.len()
                ));
            }
            Err(e) => differ.push(format!("clone {i}: {e}")),
        }
    }
    let equal = n - differ.len();
    report.push(
        Figure::new(7, "clones recording the private working set", "VMs")
            .value(equal as f64)
            .baseline("clones", n as f64)
            .target(Target::AtLeast(1.0))
            .view("working-set files (first-touch order) compared with a private restore's")
            .note(format!("{} pages each; {}", ws.len(), differ.join("; "))),
    );
    Ok(())
}

/// Medians over `reps` of the timing rows.
#[derive(Default)]
struct Samples {
    private_demand: Vec<f64>,
    first_demand: Vec<f64>,
    private_prefetch: Vec<f64>,
    first_prefetch: Vec<f64>,
    later_prefetch: Vec<f64>,
    private_fault: Vec<f64>,
    shared_fault: Vec<f64>,
    private_fault_unpinned: Vec<f64>,
    shared_fault_unpinned: Vec<f64>,
}

fn timing(opts: &Options, report: &mut Report, files: &Files) -> Result<(), String> {
    let mut s = Samples::default();
    let ttfi = |r: &RunResult| r.stats.time_to_first_instruction_ns as f64;
    let p50 = |r: &RunResult| r.stats.fault_latency_p50_ns as f64;
    let wait = |r: &RunResult| r.stats.fault_wait_ns as f64;
    let prefetched = |m: Mode| Mode {
        prefetch: true,
        ..m
    };
    let faults = |m: Mode, unpinned| Mode {
        page_faults: true,
        unpinned,
        ..m
    };
    for _ in 0..opts.reps.max(1) {
        s.private_demand
            .push(wait(&restore(files, Mode::private())?.0));
        remove_root(files)?;
        s.first_demand
            .push(wait(&restore(files, Mode::shared())?.0));
        s.private_prefetch
            .push(ttfi(&restore(files, prefetched(Mode::private()))?.0));
        remove_root(files)?;
        s.first_prefetch
            .push(ttfi(&restore(files, prefetched(Mode::shared()))?.0));
        s.later_prefetch
            .push(ttfi(&restore(files, prefetched(Mode::shared()))?.0));
        s.private_fault
            .push(p50(&restore(files, faults(Mode::private(), false))?.0));
        s.shared_fault
            .push(p50(&restore(files, faults(Mode::shared(), false))?.0));
        s.private_fault_unpinned
            .push(p50(&restore(files, faults(Mode::private(), true))?.0));
        s.shared_fault_unpinned
            .push(p50(&restore(files, faults(Mode::shared(), true))?.0));
    }
    let reps = format!("median of {}", opts.reps.max(1));
    let ws = size_name(opts.share_ws);
    let private_prefetch = median(&mut s.private_prefetch);
    let later = median(&mut s.later_prefetch);
    report.push(
        Figure::new(7, "first shared restore, on demand: time faulting", "ns")
            .value(median(&mut s.first_demand))
            .baseline("private restore, on demand", median(&mut s.private_demand))
            .target(Target::AtMost(1.0))
            .view(format!(
                "host, kernel: sum of fault latencies (vCPU waiting for pages), 2 MiB read-ahead; {reps}"
            ))
            .note(format!(
                "root empty: this VM fills {ws} into it (read, write, map) vs read and move"
            )),
    );
    let ttfi_view =
        format!("host, restore start -> first guest instruction (prefetch included); {reps}");
    report.push(
        Figure::new(7, "first shared restore, working set prefetched", "ns")
            .value(median(&mut s.first_prefetch))
            .baseline("private restore, prefetched", private_prefetch)
            .view(ttfi_view.clone())
            .note(format!(
                "root empty: this VM fills {ws} into it (4 KiB shmem pages), then maps it; the \
                 private prefetch reads into 2 MiB pages and moves them whole"
            )),
    );
    report.push(
        Figure::new(7, "later clone, working set prefetched", "ns")
            .value(later)
            .baseline("private restore, prefetched", private_prefetch)
            .view(ttfi_view.clone())
            .note(format!("root filled: {ws} mapped with UFFDIO_CONTINUE")),
    );
    report.push(
        Figure::new(7, "later clone, working set prefetched, vs budget", "ns")
            .value(later)
            .baseline("the issue's 25 ms budget", LATER_CLONE_BUDGET_NS)
            .target(Target::AtMost(1.0))
            .view(ttfi_view)
            .note(format!("{ws} working set")),
    );
    let fault_view = format!("host, kernel (fault event to resolution), 4 KiB read-ahead; {reps}");
    let private_fault = median(&mut s.private_fault);
    let shared_fault = median(&mut s.shared_fault);
    report.push(
        Figure::new(7, "shared fault p50 (CONTINUE), later clone", "ns")
            .value(shared_fault)
            .baseline("private fault p50 (MOVE)", private_fault)
            .target(Target::AtMost(1.0))
            .view(fault_view.clone())
            .note("threads pinned (default)"),
    );
    for (name, pinned, unpinned) in [
        ("shared", shared_fault, median(&mut s.shared_fault_unpinned)),
        (
            "private",
            private_fault,
            median(&mut s.private_fault_unpinned),
        ),
    ] {
        report.push(
            Figure::new(7, format!("{name} fault p50, threads pinned"), "ns")
                .value(pinned)
                .baseline("threads not pinned", unpinned)
                .target(Target::AtMost(1.0))
                .view(fault_view.clone())
                .note("vCPU 0, fault service and host pager on one CPU vs wherever the scheduler puts them"),
        );
    }
    Ok(())
}
