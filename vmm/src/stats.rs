//! The run summary: page faults, pages supplied, bytes moved vs copied, fault latency.

use hdrhistogram::Histogram;

use crate::kernel;

/// Largest latency the histogram tracks (one hour); longer samples count as this.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Kernel and pager statistics of one VM (host and guest processes together).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Page faults on pager VMOs.
    pub faults: u64,
    /// Page requests delivered to pagers.
    pub requests: u64,
    /// Pages supplied.
    pub pages_supplied: u64,
    /// Bytes supplied by moving pages (zero-copy).
    pub bytes_moved: u64,
    /// Bytes supplied by copying.
    pub bytes_copied: u64,
    /// Median fault latency in nanoseconds (0 without samples).
    pub fault_latency_p50_ns: u64,
    /// 99th-percentile fault latency in nanoseconds (0 without samples).
    pub fault_latency_p99_ns: u64,
}

impl Stats {
    /// Sums the statistics of the VM's processes.
    pub fn collect(host: &kernel::Stats, guest: &kernel::Stats) -> Stats {
        let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .expect("bounds and 3 significant figures are valid");
        for s in [host, guest] {
            for &ns in &s.fault_latency_ns {
                hist.saturating_record(ns);
            }
        }
        let pct = |q| {
            if hist.is_empty() {
                0
            } else {
                hist.value_at_quantile(q)
            }
        };
        Stats {
            faults: host.faults + guest.faults,
            requests: host.requests + guest.requests,
            pages_supplied: host.pages_supplied + guest.pages_supplied,
            bytes_moved: host.bytes_moved + guest.bytes_moved,
            bytes_copied: host.bytes_copied + guest.bytes_copied,
            fault_latency_p50_ns: pct(0.5),
            fault_latency_p99_ns: pct(0.99),
        }
    }

    /// A multi-line human summary.
    pub fn summary(&self) -> String {
        format!(
            "faults: {}\npages supplied: {}\nbytes moved: {}\nbytes copied: {}\nfault latency: p50 {:.1} us, p99 {:.1} us",
            self.faults,
            self.pages_supplied,
            self.bytes_moved,
            self.bytes_copied,
            self.fault_latency_p50_ns as f64 / 1000.0,
            self.fault_latency_p99_ns as f64 / 1000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_both_processes() {
        let host = kernel::Stats {
            faults: 2,
            fault_latency_ns: vec![1000, 2000],
            ..Default::default()
        };
        let guest = kernel::Stats {
            faults: 1,
            fault_latency_ns: vec![100_000],
            ..Default::default()
        };
        let s = Stats::collect(&host, &guest);
        assert_eq!(s.faults, 3);
        assert!((1000..=2010).contains(&s.fault_latency_p50_ns), "{s:?}");
        assert!(s.fault_latency_p99_ns >= 99_000);
        assert_eq!(
            Stats::collect(&Default::default(), &Default::default()).fault_latency_p99_ns,
            0
        );
    }
}
