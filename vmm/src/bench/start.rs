//! Case 4: lazy start time vs RAM size — from the start of a run (just before `Vm::new`) to
//! the guest's first instruction. The `bench_start` guest reads the VM clock first thing; the
//! bench turns that into an instant with `Vm::instant_at`. Lazy RAM is `MAP_NORESERVE` and
//! served on demand, so the time should not grow with RAM: the baseline is the smallest size,
//! and the largest size's ratio to it is checked for flatness (≤ 1.5×).

use super::{Figure, Options, Report, Target, guest_config, median, run_guest, size_name};

/// Runs case 4.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    // One untimed start first, so the smallest size (the baseline) does not pay for cold
    // caches and the first KVM VM of the process.
    if let Some(&s) = opts.start_sizes.first() {
        let _ = once(s);
    }
    for &size in &opts.start_sizes {
        if opts.verbose {
            eprintln!("bench: case 4: {}", size_name(size));
        }
        let mut first = Vec::new();
        let mut build = Vec::new();
        for _ in 0..opts.reps {
            match once(size) {
                Ok((f, b)) => {
                    first.push(f);
                    build.push(b);
                }
                Err(e) => errors.push(format!("{}: {e}", size_name(size))),
            }
        }
        let f = (!first.is_empty()).then(|| median(&mut first));
        let b = (!build.is_empty()).then(|| median(&mut build));
        rows.push((size, f, b));
    }
    let base = rows.first().and_then(|r| r.1);
    let base_name = rows
        .first()
        .map(|r| format!("{} RAM", size_name(r.0)))
        .unwrap_or_default();
    let largest = rows.iter().filter(|r| r.1.is_some()).map(|r| r.0).max();
    for (size, f, b) in &rows {
        let mut fig = Figure::new(
            4,
            format!("time to first instruction, {} RAM", size_name(*size)),
            "ns",
        )
        .value(*f)
        .baseline(base_name.clone(), base)
        .view(format!(
            "host clock, run start -> guest entry; median of {}",
            opts.reps
        ))
        .note(format!(
            "of which Vm::new {}",
            super::report::fmt_value(*b, "ns")
        ));
        if Some(*size) == largest && rows.len() > 1 {
            fig = fig.target(Target::AtMost(1.5));
        }
        report.push(fig);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
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
