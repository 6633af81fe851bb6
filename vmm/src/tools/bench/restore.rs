//! Case 5: working-set restore — time for the guest to finish touching its working set when
//! its memory is supplied on demand, prefetched (the working set supplied in batches before
//! the guest runs), or eagerly copied in full before it runs. The working set is
//! `restore_run` bytes at every `restore_stride` bytes of a `restore_size` image.
//!
//! Host rows (the VMM's restore path): guest RAM backed by a memory image file
//! (`VmConfig::image`) holding `restore_size` bytes of data, served by the host pager on
//! demand (read-ahead off, and the default read-ahead), or with the working set prefetched
//! before the guest starts (`VmConfig::prefetch`, a working-set file as `--record` writes
//! it); the baseline is an eager full copy of the image's data into plain RAM before the
//! vCPUs start. The clock runs from the start of the run (before `Vm::new`) to the guest's
//! last touch.
//!
//! Guest-pager rows: the same working set in a pager VMO served by a guest pager on vCPU 1
//! (`bench_faults`, APERTURE mode), each supplied byte copied once (`VmoWrite` into the aux)
//! and moved in with SUPPLY; the clock runs from the start of the restore (before any
//! prefetch) to the last touch; the baseline is the guest pager's eager full supply.

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use kvmpager::abi::PAGE_SIZE;

use super::faults::{GuestTouches, aperture_params, touch_params};
use super::{Figure, Options, Report, all_ok, guest_config, median, run_guest, size_name};
use crate::snapshot;

const MEMORY: u64 = 256 << 20;
/// Where the image's data starts in guest RAM (above the program and the bench pages).
const REGION: u64 = 64 << 20;

/// Runs case 5.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let host = host_rows(opts, report);
    let guest = guest_rows(opts, report);
    match (host, guest) {
        (Ok(()), Ok(())) => Ok(()),
        (a, b) => Err([a.err(), b.err()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Host mode of one restore.
#[derive(Clone, Copy, PartialEq)]
enum HostMode {
    OnDemand { readahead: u64 },
    Prefetch,
    Eager,
}

/// The image, working-set file and sizes shared by the host rows; files removed on drop.
struct Files {
    image: PathBuf,
    ws: PathBuf,
    ram: u64,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_file(&self.ws);
    }
}

fn make_files(opts: &Options) -> Result<Files, String> {
    let (size, run, stride) = (opts.restore_size, opts.restore_run, opts.restore_stride);
    let ram = (REGION + size + (16 << 20)).next_power_of_two().max(MEMORY);
    let dir = std::env::temp_dir();
    let tag = format!("kvmpager-bench-{}", std::process::id());
    let files = Files {
        image: dir.join(format!("{tag}.img")),
        ws: dir.join(format!("{tag}.ws")),
        ram,
    };
    let e = |x: std::io::Error| format!("{}: {x}", files.image.display());
    let f = std::fs::File::create(&files.image).map_err(e)?;
    f.set_len(ram).map_err(e)?;
    let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8 | 1).collect();
    let mut off = 0;
    while off < size {
        let n = (size - off).min(chunk.len() as u64) as usize;
        f.write_all_at(&chunk[..n], REGION + off).map_err(e)?;
        off += n as u64;
    }
    (&f).flush().map_err(e)?;
    let pages: Vec<u64> = (0..size)
        .step_by(stride as usize)
        .flat_map(|o| {
            let first = (REGION + o) / PAGE_SIZE;
            first..first + run.min(size - o).div_ceil(PAGE_SIZE)
        })
        .collect();
    snapshot::write_working_set(&files.ws, ram, &pages).map_err(|x| format!("working set: {x}"))?;
    Ok(files)
}

fn host_rows(opts: &Options, report: &mut Report) -> Result<(), String> {
    let files = make_files(opts)?;
    let modes = [
        (
            HostMode::OnDemand {
                readahead: PAGE_SIZE,
            },
            "host pager on demand, read-ahead off",
        ),
        (
            HostMode::OnDemand {
                readahead: crate::config::DEFAULT_READAHEAD,
            },
            "host pager on demand, default read-ahead",
        ),
        (HostMode::Prefetch, "host pager, working set prefetched"),
        (HostMode::Eager, "eager full copy into plain RAM"),
    ];
    let mut errors = Vec::new();
    let rows = median_rows(modes, opts.reps, &mut errors, |mode| {
        host_once(opts, &files, mode)
    });
    let eager = rows[3].1;
    let ws = working_set(opts);
    for (name, t, info) in rows {
        report.push(
            Figure::new(5, format!("restore, {name}"), "ns")
                .value(t)
                .baseline("eager full copy", eager)
                .view(format!(
                    "host clock, run start -> guest's last touch; median of {}",
                    opts.reps
                ))
                .note(format!(
                    "image data {}, working set {}; {info}",
                    size_name(opts.restore_size),
                    size_name(ws)
                )),
        );
    }
    all_ok(errors)
}

/// A row per mode: its name, the median ns of the `reps` runs of `once(mode)` that worked
/// (`None` if none did) and the last good run's description. Failed runs' errors go to
/// `errors`, each after the mode's name.
fn median_rows<M: Copy>(
    modes: impl IntoIterator<Item = (M, &'static str)>,
    reps: usize,
    errors: &mut Vec<String>,
    mut once: impl FnMut(M) -> Result<(f64, String), String>,
) -> Vec<(&'static str, Option<f64>, String)> {
    let mut rows = Vec::new();
    for (mode, name) in modes {
        let mut t = Vec::new();
        let mut info = String::new();
        for _ in 0..reps {
            match once(mode) {
                Ok((ns, i)) => {
                    t.push(ns);
                    info = i;
                }
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        rows.push((name, (!t.is_empty()).then(|| median(&mut t)), info));
    }
    rows
}

fn working_set(opts: &Options) -> u64 {
    let (size, run, stride) = (opts.restore_size, opts.restore_run, opts.restore_stride);
    (0..size)
        .step_by(stride as usize)
        .map(|o| run.min(size - o))
        .sum()
}

/// One host restore: (ns from run start to the last touch, a description).
fn host_once(opts: &Options, files: &Files, mode: HostMode) -> Result<(f64, String), String> {
    let mut cfg = guest_config("bench_faults", 1, files.ram)?;
    match mode {
        HostMode::OnDemand { readahead } => {
            cfg.image = Some(files.image.clone());
            cfg.readahead = readahead;
        }
        HostMode::Prefetch => {
            cfg.image = Some(files.image.clone());
            cfg.readahead = PAGE_SIZE;
            cfg.prefetch = Some(files.ws.clone());
        }
        HostMode::Eager => cfg.lazy_ram = false,
    }
    let params = touch_params(
        REGION,
        opts.restore_size,
        opts.restore_run,
        opts.restore_stride,
    );
    let image = files.image.clone();
    let size = opts.restore_size;
    let done = run_guest(&cfg, &params, |vm| {
        if mode == HostMode::Eager {
            copy_image(vm, &image, size)?;
        }
        Ok(())
    })?;
    let t = GuestTouches::read(&done)?;
    let end = done.vm.instant_at(t.end_clock_ns as i64);
    let ns = end.saturating_duration_since(done.t_start).as_nanos() as f64;
    let s = done.vm.host().counters();
    Ok((ns, format!("{} faults, {} supplies", s.faults, s.supplies)))
}

/// The eager baseline: reads the image's data and writes it into guest RAM.
fn copy_image(vm: &crate::vm::Vm, image: &Path, size: u64) -> Result<(), String> {
    let f = std::fs::File::open(image).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16 << 20];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], REGION + off)
            .map_err(|e| e.to_string())?;
        vm.ram()
            .write(REGION + off, &buf[..n])
            .map_err(|s| format!("writing RAM: status {s}"))?;
        off += n as u64;
    }
    Ok(())
}

fn guest_rows(opts: &Options, report: &mut Report) -> Result<(), String> {
    let (size, run, stride) = (opts.restore_size, opts.restore_run, opts.restore_stride);
    let ws = size.div_ceil(stride) * run.min(stride);
    let modes = [
        (0, "guest pager on demand"),
        (1, "guest pager, working set prefetched (batched)"),
        (2, "guest pager, eager full supply"),
    ];
    let mut errors = Vec::new();
    let results = median_rows(modes, opts.reps, &mut errors, |mode| {
        once(size, run, stride, mode)
    });
    let eager = results[2].1;
    for (name, t, info) in results {
        report.push(
            Figure::new(5, format!("restore, {name}"), "ns")
                .value(t)
                .baseline("guest pager eager full supply", eager)
                .view(format!(
                    "guest clock, restore start -> last touch; median of {}",
                    opts.reps
                ))
                .note(format!(
                    "image {}, working set {} ({} runs of {}); {info}",
                    size_name(size),
                    size_name(ws),
                    size.div_ceil(stride),
                    size_name(run)
                )),
        );
    }
    all_ok(errors)
}

/// One restore: (ns from restore start to the last touch, a description of the run).
fn once(size: u64, run: u64, stride: u64, mode: u64) -> Result<(f64, String), String> {
    let cfg = guest_config("bench_faults", 2, MEMORY)?;
    let done = run_guest(&cfg, &aperture_params(size, run, stride, mode), |_| Ok(()))?;
    let t = GuestTouches::read(&done)?;
    if t.errors > 0 {
        return Err(format!("{} guest pager calls failed", t.errors));
    }
    let s = done.vm.guest().counters();
    let info = format!(
        "{} faults, {} supplies, guest let go at {}",
        s.faults,
        s.supplies,
        super::report::fmt_ns(t.ready_ns)
    );
    Ok((t.total_ns, info))
}
