//! The report as a hand-written SVG: fault-latency CDFs and SUPPLY throughput per run size.

use std::fmt::Write as _;

use super::{Report, fmt_ns, shorten};
use crate::tools::bench::size_name;

impl Report {
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
