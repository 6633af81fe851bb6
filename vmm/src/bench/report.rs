//! The bench report: figures with their baselines and ratios, the raw distributions, and how
//! they are shown — a text table, a JSON file, and a hand-written SVG.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Options, quantile, size_name};

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
    /// Bench case (1-5).
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

    /// Two panels: fault-latency CDFs (log time axis) and SUPPLY throughput per run size
    /// (log-log).
    pub fn svg(&self) -> String {
        let (w, h) = (900.0, 980.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        self.svg_latency(&mut s, Panel::new(70.0, 40.0, 560.0, 380.0));
        self.svg_throughput(&mut s, Panel::new(70.0, 530.0, 560.0, 380.0));
        s += "</svg>\n";
        s
    }

    fn svg_latency(&self, s: &mut String, p: Panel) {
        title(s, &p, "Case 3: fault service latency (CDF)");
        let dists: Vec<_> = self
            .distributions
            .iter()
            .filter(|d| !d.samples_ns.is_empty())
            .collect();
        if dists.is_empty() {
            empty(s, &p);
            return;
        }
        let lo = dists
            .iter()
            .map(|d| d.samples_ns[0])
            .fold(f64::MAX, f64::min);
        let hi = dists.iter().map(|d| d.max_ns).fold(0.0, f64::max);
        let (x0, x1) = (lo.max(1.0).log10().floor(), hi.max(10.0).log10().ceil());
        let x1 = if x1 <= x0 { x0 + 1.0 } else { x1 };
        for e in x0 as i32..=x1 as i32 {
            let x = p.x((f64::from(e) - x0) / (x1 - x0));
            tick_x(s, &p, x, &fmt_ns(10f64.powi(e)));
        }
        for q in [0.0, 0.25, 0.5, 0.75, 0.99, 1.0] {
            tick_y(s, &p, p.y(q), &format!("{q}"));
        }
        axes(s, &p, "latency (log scale)", "fraction of faults");
        for (i, d) in dists.iter().enumerate() {
            let n = d.samples_ns.len();
            let step = (n / 400).max(1);
            let mut pts = String::new();
            for (k, v) in d.samples_ns.iter().enumerate().step_by(step) {
                let fx = (v.max(1.0).log10() - x0) / (x1 - x0);
                let _ = write!(pts, "{:.1},{:.1} ", p.x(fx), p.y((k + 1) as f64 / n as f64));
            }
            let fx = (d.max_ns.max(1.0).log10() - x0) / (x1 - x0);
            let _ = write!(pts, "{:.1},{:.1}", p.x(fx), p.y(1.0));
            polyline(s, &pts, COLORS[i % COLORS.len()]);
            let label = format!("{} — p50 {}", d.name, fmt_ns(d.p50_ns));
            legend(s, &p, i, COLORS[i % COLORS.len()], &label);
        }
    }

    fn svg_throughput(&self, s: &mut String, p: Panel) {
        title(s, &p, "Case 2: SUPPLY throughput per run size");
        let series: Vec<_> = self
            .series
            .iter()
            .filter(|x| !x.points.is_empty())
            .collect();
        if series.is_empty() {
            empty(s, &p);
            return;
        }
        let all = || series.iter().flat_map(|x| x.points.iter());
        let (smin, smax) = all().fold((u64::MAX, 0), |(a, b), &(sz, _)| (a.min(sz), b.max(sz)));
        let (vmin, vmax) = all().fold((f64::MAX, 0.0f64), |(a, b), &(_, v)| {
            (a.min(v.max(1e-3)), b.max(v))
        });
        let (x0, x1) = (
            (smin as f64).log2(),
            (smax as f64).log2().max((smin as f64).log2() + 1.0),
        );
        let (y0, y1) = (vmin.log10().floor(), vmax.max(vmin * 10.0).log10().ceil());
        let mut sizes: Vec<u64> = all().map(|&(sz, _)| sz).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for sz in sizes {
            tick_x(
                s,
                &p,
                p.x(((sz as f64).log2() - x0) / (x1 - x0)),
                &size_name(sz),
            );
        }
        for e in y0 as i32..=y1 as i32 {
            let y = p.y((f64::from(e) - y0) / (y1 - y0));
            tick_y(s, &p, y, &format!("{}", 10f64.powi(e)));
        }
        axes(s, &p, "run size (log scale)", "GiB/s (log scale)");
        for (i, x) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut pts = String::new();
            for &(sz, v) in &x.points {
                let fx = ((sz as f64).log2() - x0) / (x1 - x0);
                let fy = (v.max(1e-3).log10() - y0) / (y1 - y0);
                let (cx, cy) = (p.x(fx), p.y(fy));
                let _ = write!(pts, "{cx:.1},{cy:.1} ");
                let _ = writeln!(
                    s,
                    "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
            polyline(s, pts.trim_end(), color);
            legend(s, &p, i, color, &x.name);
        }
    }
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// A plot area: `x`, `y` top-left, `w`, `h` size.
#[derive(Clone, Copy)]
struct Panel {
    left: f64,
    top: f64,
    w: f64,
    h: f64,
}

impl Panel {
    fn new(left: f64, top: f64, w: f64, h: f64) -> Self {
        Panel { left, top, w, h }
    }
    fn x(&self, f: f64) -> f64 {
        self.left + f.clamp(0.0, 1.0) * self.w
    }
    fn y(&self, f: f64) -> f64 {
        self.top + self.h - f.clamp(0.0, 1.0) * self.h
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn title(s: &mut String, p: &Panel, t: &str) {
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        p.left,
        p.top - 14.0,
        esc(t)
    );
}

fn empty(s: &mut String, p: &Panel) {
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\">not measured in this run</text>",
        p.left + 10.0,
        p.top + 30.0
    );
}

fn axes(s: &mut String, p: &Panel, xl: &str, yl: &str) {
    let (l, t, r, b) = (p.left, p.top, p.left + p.w, p.top + p.h);
    let _ = writeln!(
        s,
        "<path d=\"M{l},{t} L{l},{b} L{r},{b}\" stroke=\"black\" fill=\"none\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        l + p.w / 2.0,
        b + 36.0,
        esc(xl),
        l - 50.0,
        t + p.h / 2.0,
        esc(yl)
    );
}

fn tick_x(s: &mut String, p: &Panel, x: f64, label: &str) {
    let b = p.top + p.h;
    let _ = writeln!(
        s,
        "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{b}\" stroke=\"#ddd\"/>\n\
         <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
        p.top,
        b + 16.0,
        esc(label)
    );
}

fn tick_y(s: &mut String, p: &Panel, y: f64, label: &str) {
    let _ = writeln!(
        s,
        "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
         <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{}</text>",
        p.left,
        p.left + p.w,
        p.left - 6.0,
        y + 4.0,
        esc(label)
    );
}

fn polyline(s: &mut String, pts: &str, color: &str) {
    let _ = writeln!(
        s,
        "<polyline points=\"{pts}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>"
    );
}

fn legend(s: &mut String, p: &Panel, i: usize, color: &str, label: &str) {
    let (x, y) = (p.left + p.w + 14.0, p.top + 10.0 + 34.0 * i as f64);
    let _ = writeln!(
        s,
        "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\n\
         <text x=\"{}\" y=\"{y}\" font-size=\"11\">{}</text>",
        y - 10.0,
        x + 16.0,
        esc(&shorten(label, 40))
    );
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
