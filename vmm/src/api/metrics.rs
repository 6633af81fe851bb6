//! `GET /metrics`: one reading of a VM's counters ([`MetricsReading`]) in the Prometheus text
//! exposition format (version 0.0.4), and a small parser of that format for `kvmpager top`.
//!
//! A reading never copies the fault-latency samples: the histogram comes from per-bucket
//! counters the kernel keeps beside them, so scraping costs a few atomic loads per counter.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::wire::VmState;
use crate::kernel::{LATENCY_BUCKETS_NS, LatencyHistogram};
use crate::summary::RunSummary;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The numbers `/metrics` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsReading {
    /// The VM's state (`None` reads as running).
    pub state: Option<VmState>,
    /// Nanoseconds since the VM was built.
    pub uptime_ns: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// Counters of both processes and the host pager (its latency percentiles are unset).
    pub totals: RunSummary,
    /// Fault latencies of both processes.
    pub latency: LatencyHistogram,
    /// Page requests outstanding now.
    pub outstanding_requests: u64,
    /// Age of the oldest outstanding request (ns; 0 without one).
    pub oldest_request_ns: u64,
    /// Resident set size of the VMM process (bytes).
    pub rss_bytes: u64,
}

/// The resident set size of this process, from `/proc/self/statm` (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * kvmpager::abi::PAGE_SIZE
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Writes one metric's `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes a metric with no labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

impl MetricsReading {
    /// The reading in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        self.render_vm(&mut o);
        self.render_supply(&mut o);
        self.render_latency(&mut o);
        o
    }

    fn render_vm(&self, o: &mut String) {
        single(o, "kvmpager_info", "gauge", "Always 1: the VMM answers.", 1);
        let state = self.state.unwrap_or(VmState::Running);
        head(
            o,
            "kvmpager_vm_state",
            "gauge",
            "1 for the VM's current state, else 0.",
        );
        for (s, name) in [
            (VmState::Running, "running"),
            (VmState::Pausing, "pausing"),
            (VmState::Paused, "paused"),
            (VmState::Stopped, "stopped"),
        ] {
            let _ = writeln!(
                o,
                "kvmpager_vm_state{{state=\"{name}\"}} {}",
                u8::from(s == state)
            );
        }
        let up = secs(self.uptime_ns);
        single(
            o,
            "kvmpager_uptime_seconds",
            "gauge",
            "Seconds since the VM was built.",
            up,
        );
        single(o, "kvmpager_vcpus", "gauge", "Number of vCPUs.", self.vcpus);
        single(
            o,
            "kvmpager_memory_bytes",
            "gauge",
            "Guest RAM size.",
            self.memory_bytes,
        );
        single(
            o,
            "kvmpager_rss_bytes",
            "gauge",
            "Resident set size of the VMM process.",
            self.rss_bytes,
        );
    }

    fn render_supply(&self, o: &mut String) {
        let t = &self.totals;
        let c = "counter";
        single(
            o,
            "kvmpager_page_faults_total",
            c,
            "Page faults on pager VMOs.",
            t.faults,
        );
        single(
            o,
            "kvmpager_page_requests_total",
            c,
            "Page requests delivered to pagers.",
            t.requests,
        );
        single(
            o,
            "kvmpager_pages_supplied_total",
            c,
            "Pages supplied into pager VMOs.",
            t.pages_supplied,
        );
        head(
            o,
            "kvmpager_supplied_bytes_total",
            c,
            "Bytes supplied, by how they got there.",
        );
        for (path, v) in [
            ("moved", t.bytes_moved),
            ("remapped", t.bytes_remapped),
            ("copied", t.bytes_copied),
        ] {
            let _ = writeln!(o, "kvmpager_supplied_bytes_total{{path=\"{path}\"}} {v}");
        }
        head(
            o,
            "kvmpager_host_pager_pages_total",
            c,
            "Pages the host pager supplied, on demand or prefetched.",
        );
        let _ = writeln!(
            o,
            "kvmpager_host_pager_pages_total{{how=\"on_demand\"}} {}",
            t.pages_on_demand
        );
        let _ = writeln!(
            o,
            "kvmpager_host_pager_pages_total{{how=\"prefetched\"}} {}",
            t.pages_prefetched
        );
        single(
            o,
            "kvmpager_file_read_bytes_total",
            c,
            "Bytes read from image or snapshot files.",
            t.file_bytes_read,
        );
        single(
            o,
            "kvmpager_zero_fill_bytes_total",
            c,
            "Bytes supplied as zero pages without reading a file.",
            t.zero_bytes,
        );
        single(
            o,
            "kvmpager_huge_page_supplies_total",
            c,
            "Supplies of whole 2 MiB huge pages.",
            t.huge_supplies,
        );
        let g = "gauge";
        single(
            o,
            "kvmpager_outstanding_page_requests",
            g,
            "Page requests waiting for a pager now.",
            self.outstanding_requests,
        );
        single(
            o,
            "kvmpager_oldest_page_request_age_seconds",
            g,
            "Age of the oldest waiting page request (0 if none).",
            secs(self.oldest_request_ns),
        );
    }

    fn render_latency(&self, o: &mut String) {
        let name = "kvmpager_fault_latency_seconds";
        head(
            o,
            name,
            "histogram",
            "Time from a page fault to its request being resolved.",
        );
        let mut cumulative = 0;
        for (i, count) in self.latency.counts.iter().enumerate() {
            cumulative += count;
            let le = match LATENCY_BUCKETS_NS.get(i) {
                Some(&ns) => format!("{}", secs(ns)),
                None => "+Inf".into(),
            };
            let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(o, "{name}_sum {}", secs(self.latency.sum_ns));
        let _ = writeln!(o, "{name}_count {cumulative}");
    }
}

/// Parses Prometheus text into `name{labels}` → value (comments skipped); `None` on a line
/// that is not `NAME[{LABELS}] VALUE`.
pub fn parse(text: &str) -> Option<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.rsplit_once(' ')?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().ok()?,
        };
        out.insert(key.to_owned(), value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_parses_back() {
        let mut r = MetricsReading::default();
        r.latency.counts[0] = 2;
        r.latency.counts[3] = 1;
        r.latency.sum_ns = 80_000;
        r.totals.bytes_moved = 4096;
        let m = parse(&r.render()).unwrap();
        assert_eq!(
            m["kvmpager_fault_latency_seconds_bucket{le=\"0.000005\"}"],
            2.0
        );
        assert_eq!(m["kvmpager_fault_latency_seconds_bucket{le=\"+Inf\"}"], 3.0);
        assert_eq!(m["kvmpager_fault_latency_seconds_count"], 3.0);
        assert_eq!(m["kvmpager_supplied_bytes_total{path=\"moved\"}"], 4096.0);
        assert_eq!(m["kvmpager_vm_state{state=\"running\"}"], 1.0);
    }
}
