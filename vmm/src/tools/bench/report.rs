//! The bench report: figures with their baselines and ratios, the raw distributions, and how
//! they are shown — a text table, a JSON file, and a hand-written SVG.
//! The SVG is drawn in `svg`.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Options, quantile};

mod svg;

/// A speed target on a figure's ratio to its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Target {
    /// The ratio must be at most this (times, latencies).
    AtMost(f64),
    /// The ratio must be at least this (throughputs, speed-ups).
    AtLeast(f64),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(t) => ratio <= t,
            Target::AtLeast(t) => ratio >= t,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {t}x"),
            Target::AtLeast(t) => format!(">= {t}x"),
        }
    }
}

/// One measured figure, its baseline from the same run, and their ratio (`value / baseline`).
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Bench case (1-6).
    pub case: u8,
    /// What was measured.
    pub name: String,
    /// Unit of `value` and `baseline` (`ns`, `GiB/s`, ...).
    pub unit: String,
    /// The figure; `None` when it could not be measured (see `note`).
    pub value: Option<f64>,
    /// What the baseline is.
    pub baseline_name: String,
    /// The baseline, same unit.
    pub baseline: Option<f64>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The target on `ratio`, if the issue sets one.
    pub target: Option<Target>,
    /// `PASS` or `MISS` against the target (`None` without a target or a ratio).
    pub verdict: Option<String>,
    /// Whose clock: e.g. "guest vCPU (TSC)", "host, kernel (fault event to resolution)".
    pub view: String,
    /// Anything else worth knowing (which paths ran, sample counts).
    pub note: String,
}

impl Figure {
    /// A figure without values yet.
    pub fn new(case: u8, name: impl Into<String>, unit: &str) -> Self {
        Figure {
            case,
            name: name.into(),
            unit: unit.into(),
            value: None,
            baseline_name: String::new(),
            baseline: None,
            ratio: None,
            target: None,
            verdict: None,
            view: String::new(),
            note: String::new(),
        }
    }

    /// Sets the value.
    pub fn value(mut self, v: impl Into<Option<f64>>) -> Self {
        self.value = v.into();
        self
    }

    /// Sets the baseline.
    pub fn baseline(mut self, name: impl Into<String>, v: impl Into<Option<f64>>) -> Self {
        self.baseline_name = name.into();
        self.baseline = v.into();
        self
    }

    /// Sets the target on the ratio.
    pub fn target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }

    /// Sets whose clock the figures are.
    pub fn view(mut self, v: impl Into<String>) -> Self {
        self.view = v.into();
        self
    }

    /// Sets the note.
    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.note = n.into();
        self
    }

    fn finish(mut self) -> Self {
        self.ratio = match (self.value, self.baseline) {
            (Some(v), Some(b)) if b > 0.0 && v.is_finite() => Some(v / b),
            _ => None,
        };
        self.verdict = match (self.target, self.ratio) {
            (Some(t), Some(r)) => Some(if t.met(r) { "PASS" } else { "MISS" }.into()),
            _ => None,
        };
        self
    }
}

/// A latency distribution (ns, sorted) for the SVG and the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Distribution {
    /// Which measurement.
    pub name: String,
    /// Whose clock.
    pub view: String,
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// Largest.
    pub max_ns: f64,
    /// Every sample, sorted, in ns.
    pub samples_ns: Vec<f64>,
}

impl Distribution {
    /// A distribution of `samples` (ns, any order).
    pub fn new(name: impl Into<String>, view: impl Into<String>, mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Distribution {
            name: name.into(),
            view: view.into(),
            p50_ns: quantile(&samples, 0.5),
            p99_ns: quantile(&samples, 0.99),
            max_ns: samples.last().copied().unwrap_or(0.0),
            samples_ns: samples,
        }
    }
}

/// Throughput per run size of one way of filling pages (for the SVG and the JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Strategy or baseline name.
    pub name: String,
    /// `(run bytes, GiB/s)`.
    pub points: Vec<(u64, f64)>,
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPU model name.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Transparent huge page mode.
    pub thp: String,
}

impl Machine {
    fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        Machine {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            thp: read("/sys/kernel/mm/transparent_hugepage/enabled")
                .trim()
                .to_string(),
        }
    }
}

/// Everything a bench run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where.
    pub machine: Machine,
    /// Which cases ran.
    pub cases: Vec<u8>,
    /// The figures, in case order.
    pub figures: Vec<Figure>,
    /// Fault-latency distributions (case 3).
    pub distributions: Vec<Distribution>,
    /// Throughput per run size (case 2).
    pub series: Vec<Series>,
    /// What could not be measured, and why.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for a run with `opts`.
    pub fn new(opts: &Options) -> Self {
        Report {
            machine: Machine::probe(),
            cases: opts.cases.clone(),
            figures: Vec::new(),
            distributions: Vec::new(),
            series: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a figure (computing its ratio and verdict).
    pub fn push(&mut self, f: Figure) {
        self.figures.push(f.finish());
    }

    /// Adds a note.
    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        log::warn!("bench: {n}");
        self.notes.push(n);
    }

    /// Adds a point to the series called `name`.
    pub fn point(&mut self, name: &str, size: u64, gib_s: f64) {
        match self.series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push((size, gib_s)),
            None => self.series.push(Series {
                name: name.into(),
                points: vec![(size, gib_s)],
            }),
        }
    }

    /// The JSON document (every figure, distribution and series).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The text table: one row per figure.
    pub fn table(&self) -> String {
        let head = ["case", "figure", "value", "baseline", "ratio", "target", ""];
        let mut rows: Vec<[String; 7]> = Vec::new();
        for f in &self.figures {
            let value = fmt_value(f.value, &f.unit);
            let base = format!("{} ({})", fmt_value(f.baseline, &f.unit), f.baseline_name);
            rows.push([
                f.case.to_string(),
                f.name.clone(),
                value,
                base,
                f.ratio.map_or("-".into(), |r| format!("{r:.2}x")),
                f.target.map_or("-".into(), Target::text),
                f.verdict.clone().unwrap_or_default(),
            ]);
        }
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                let pad = w[i] - c.chars().count();
                if i == 2 || i == 4 {
                    let _ = write!(s, "{}{c}  ", " ".repeat(pad));
                } else {
                    let _ = write!(s, "{c}{}  ", " ".repeat(pad));
                }
            }
            s.trim_end().to_string()
        };
        let m = &self.machine;
        let mut out = format!(
            "kvmpager bench — {} ({} CPUs), Linux {}, THP {}\n",
            m.cpu, m.cpus, m.kernel, m.thp
        );
        out += &line(&head.map(String::from));
        out.push('\n');
        out += &"-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1));
        out.push('\n');
        let mut last_case = None;
        for (r, f) in rows.iter().zip(&self.figures) {
            if last_case.is_some_and(|c| c != f.case) {
                out.push('\n');
            }
            last_case = Some(f.case);
            out += &line(r);
            out.push('\n');
        }
        let (pass, miss) =
            self.figures
                .iter()
                .fold((0, 0), |(p, m), f| match f.verdict.as_deref() {
                    Some("PASS") => (p + 1, m),
                    Some("MISS") => (p, m + 1),
                    _ => (p, m),
                });
        let _ = writeln!(out, "\ntargets: {pass} PASS, {miss} MISS");
        let views: Vec<_> = self
            .figures
            .iter()
            .filter(|f| !f.view.is_empty() || !f.note.is_empty())
            .collect();
        if !views.is_empty() {
            out += "\nviews and notes:\n";
            for f in views {
                let _ = writeln!(out, "  [{}] {}: {}; {}", f.case, f.name, f.view, f.note);
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

/// `t`, cut to `n` characters.
fn shorten(t: &str, n: usize) -> String {
    if t.chars().count() <= n {
        return t.to_string();
    }
    format!("{}…", t.chars().take(n - 1).collect::<String>())
}

/// `value` with its unit, scaled for reading (ns → µs/ms/s).
pub fn fmt_value(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else {
        return "n/a".into();
    };
    match unit {
        "ns" => fmt_ns(v),
        "GiB/s" => format!("{v:.2} GiB/s"),
        "" => format!("{v:.3}"),
        u => format!("{v:.2} {u}"),
    }
}

/// Nanoseconds for reading.
pub fn fmt_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} us", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_verdicts() {
        let mut r = Report::new(&Options::tiny());
        r.push(
            Figure::new(1, "a", "ns")
                .value(150.0)
                .baseline("b", 100.0)
                .target(Target::AtMost(1.5)),
        );
        r.push(
            Figure::new(2, "c", "GiB/s")
                .value(10.0)
                .baseline("d", 1.0)
                .target(Target::AtLeast(20.0)),
        );
        r.push(Figure::new(2, "e", "GiB/s").baseline("d", 1.0));
        assert_eq!(r.figures[0].ratio, Some(1.5));
        assert_eq!(r.figures[0].verdict.as_deref(), Some("PASS"));
        assert_eq!(r.figures[1].verdict.as_deref(), Some("MISS"));
        assert_eq!(r.figures[2].ratio, None);
        let t = r.table();
        assert!(
            t.contains("150 ns") && t.contains("1.50x") && t.contains("MISS"),
            "{t}"
        );
        r.distributions
            .push(Distribution::new("x", "v", vec![3.0, 1000.0, 20.0]));
        r.point("move", 4096, 1.0);
        r.point("move", 2 << 20, 30.0);
        let svg = r.svg();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
        assert!(r.json().contains("\"ratio\""));
        assert_eq!(fmt_ns(25_300.0), "25.30 us");
    }
}
