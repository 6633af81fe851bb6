//! Case 4: lazy start time vs RAM size — from the start of a run (just before `Vm::new`) to
//! the guest's first instruction. The `bench_start` guest reads the VM clock first thing; the
//! bench turns that into an instant with `Vm::instant_at`. Lazy RAM is `MAP_NORESERVE` and
//! served on demand, so the time should not grow with RAM: the baseline is the smallest size,
//! and the largest size's ratio to it is checked for flatness (≤ 1.5×).

use super::{Figure, Options, Report, Target, all_ok, guest_config, median, run_guest, size_name};

/// Case 4 repeats each start this many times the usual repetitions.
const START_REPS_FACTOR: usize = 3;

/// Runs case 4.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    // One untimed start first, so the smallest size (the baseline) does not pay for cold
    // caches and the first KVM VM of the process.
    if let Some(&s) = opts.start_sizes.first() {
        let _ = once(s);
    }
    // Sizes take turns, round after round, so a drift in machine load hits all of them alike;
    // starts are cheap, so this case takes three times the usual repetitions.
    let reps = opts.reps * START_REPS_FACTOR;
    let mut first = vec![Vec::new(); opts.start_sizes.len()];
    let mut build = vec![Vec::new(); opts.start_sizes.len()];
    for round in 0..reps {
        for (i, &size) in opts.start_sizes.iter().enumerate() {
            if opts.verbose && round == 0 {
                eprintln!("bench: case 4: {}", size_name(size));
            }
            match once(size) {
                Ok((f, b)) => {
                    first[i].push(f);
                    build[i].push(b);
                }
                Err(e) => errors.push(format!("{}: {e}", size_name(size))),
            }
        }
    }
    // The figure is the best of the runs: what a start costs, without the scheduler quanta
    // (several ms here, whatever the RAM size) that a busy 2-CPU machine adds at random. The
    // median is in the note.
    for (i, &size) in opts.start_sizes.iter().enumerate() {
        let best = first[i].iter().copied().reduce(f64::min);
        let med = (!first[i].is_empty()).then(|| median(&mut first[i]));
        let b = (!build[i].is_empty()).then(|| median(&mut build[i]));
        rows.push((size, best, b, med));
    }
    let base = rows.first().and_then(|r| r.1);
    let base_name = rows
        .first()
        .map(|r| format!("{} RAM", size_name(r.0)))
        .unwrap_or_default();
    let largest = rows.iter().filter(|r| r.1.is_some()).map(|r| r.0).max();
    for (size, f, b, med) in &rows {
        let mut fig = Figure::new(
            4,
            format!("time to first instruction, {} RAM", size_name(*size)),
            "ns",
        )
        .value(*f)
        .baseline(base_name.clone(), base)
        .view(format!(
            "host clock, run start -> guest entry; best of {}, sizes interleaved",
            opts.reps * START_REPS_FACTOR
        ))
        .note(format!(
            "median {}; of which Vm::new {} (median)",
            super::report::fmt_value(*med, "ns"),
            super::report::fmt_value(*b, "ns")
        ));
        if Some(*size) == largest && rows.len() > 1 {
            fig = fig.target(Target::AtMost(1.5));
        }
        report.push(fig);
    }
    all_ok(errors)
}

/// One start: (ns to the first instruction, ns in `Vm::new`).
fn once(size: u64) -> Result<(f64, f64), String> {
    let cfg = guest_config("bench_start", 1, size)?;
    let mut built = None;
    let done = run_guest(&cfg, &[], |_| {
        built = Some(std::time::Instant::now());
        Ok(())
    })?;
    let r = done.results(2)?;
    let entry = done.vm.instant_at(r[1] as i64);
    let first = entry.saturating_duration_since(done.t_start).as_nanos() as f64;
    let build = built.map_or(0.0, |b| {
        b.saturating_duration_since(done.t_start).as_nanos() as f64
    });
    Ok((first, build))
}
