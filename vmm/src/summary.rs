//! The run summary: time to the first guest instruction, page faults, pages on demand vs
//! prefetched, bytes moved vs copied, fault latency.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::host_pager::PagerCounters;
use crate::kernel;

/// Largest latency the histogram tracks (one hour); longer samples count as this.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Kernel and pager statistics of one VM (host and guest processes together).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// From the start of VM creation (or restore) to the first `KVM_RUN` (ns; 0 if none).
    pub time_to_first_instruction_ns: u64,
    /// From the start of VM creation (or restore) to the VM's stop: for a guest that exits
    /// after its last touch, the time to that touch (ns; 0 while it runs).
    pub time_to_stop_ns: u64,
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
    /// Bytes supplied by remapping host memory (zero-copy; the remap strategy).
    pub bytes_remapped: u64,
    /// Median fault latency in nanoseconds (0 without samples).
    pub fault_latency_p50_ns: u64,
    /// 99th-percentile fault latency in nanoseconds (0 without samples).
    pub fault_latency_p99_ns: u64,
    /// Largest fault latency in nanoseconds (0 without samples).
    pub fault_latency_max_ns: u64,
    /// Sum of the fault latencies in nanoseconds: how long faulting threads waited for pages
    /// in all (the last samples only past `kvmpager::counters::MAX_LATENCY_SAMPLES`).
    pub fault_wait_ns: u64,
    /// READ requests the host pager served.
    pub demand_requests: u64,
    /// Pages the host pager supplied on demand (read-ahead included).
    pub pages_on_demand: u64,
    /// Pages supplied by the prefetcher before the guest ran.
    pub pages_prefetched: u64,
    /// Supply calls the prefetcher made.
    pub prefetch_supplies: u64,
    /// Time spent prefetching (ns).
    pub prefetch_ns: u64,
    /// Supplies from huge-page aux VMOs (whole 2 MiB runs).
    pub huge_supplies: u64,
    /// Bytes read from an image or snapshot file into aux VMOs (the one copy).
    pub file_bytes_read: u64,
    /// Bytes supplied as zero pages without reading a file.
    pub zero_bytes: u64,
    /// Restores from a snapshot URL: what the chunk fetcher did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::store::FetchStats>,
    /// RAM is the snapshot's shared root, mapped copy-on-write (`restore --share`).
    pub shared_ram: bool,
    /// Minor faults: first touches of pages the shared root held (each also a request).
    pub minor_faults: u64,
    /// Pages mapped from the shared root (one physical copy for every VM).
    pub pages_shared: u64,
    /// Shared RAM: pages supplied as private zero pages (holes in the snapshot).
    pub pages_zeroed: u64,
    /// Shared RAM: pages the guest wrote, forked (copied) from the root into private memory.
    pub pages_forked: u64,
    /// Host memory of RAM private to this VM at exit (anonymous pages of its RAM mapping:
    /// for shared RAM, what it costs beyond the shared root).
    pub ram_private_bytes: u64,
    /// Shared RAM: bytes of the root resident at exit (its filled pages, for all VMs).
    pub shared_root_bytes: u64,
    /// Shared RAM: bytes this VM filled into the root (pages it touched first).
    pub root_fill_bytes: u64,
}

impl RunSummary {
    /// Sums the statistics of the VM's processes.
    pub fn collect(host: &kernel::CounterValues, guest: &kernel::CounterValues) -> RunSummary {
        let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .expect("bounds and 3 significant figures are valid");
        let mut wait = 0u64;
        for s in [host, guest] {
            for &ns in &s.fault_latency_ns {
                hist.saturating_record(ns);
                wait = wait.saturating_add(ns);
            }
        }
        let pct = |q| {
            if hist.is_empty() {
                0
            } else {
                hist.value_at_quantile(q)
            }
        };
        RunSummary {
            faults: host.faults + guest.faults,
            requests: host.requests + guest.requests,
            pages_supplied: host.pages_supplied + guest.pages_supplied,
            bytes_moved: host.bytes_moved + guest.bytes_moved,
            bytes_copied: host.bytes_copied + guest.bytes_copied,
            bytes_remapped: host.bytes_remapped + guest.bytes_remapped,
            fault_latency_p50_ns: pct(0.5),
            fault_latency_p99_ns: pct(0.99),
            fault_latency_max_ns: if hist.is_empty() { 0 } else { hist.max() },
            fault_wait_ns: wait,
            minor_faults: host.minor_faults + guest.minor_faults,
            pages_shared: host.pages_shared + guest.pages_shared,
            pages_zeroed: host.pages_zeroed + guest.pages_zeroed,
            ..Default::default()
        }
    }

    /// Adds the host pager's counters.
    pub fn add_pager(&mut self, c: &PagerCounters) {
        let get = PagerCounters::get;
        self.demand_requests = get(&c.demand_requests);
        self.pages_on_demand = get(&c.demand_pages);
        self.pages_prefetched = get(&c.prefetched_pages);
        self.prefetch_supplies = get(&c.prefetch_supplies);
        self.prefetch_ns = get(&c.prefetch_ns);
        self.huge_supplies = get(&c.huge_supplies);
        self.file_bytes_read = get(&c.file_bytes_read);
        self.zero_bytes = get(&c.zero_bytes);
        self.root_fill_bytes = get(&c.root_fill_bytes);
    }

    /// Adds RAM's host memory at exit: `usage` of the RAM mapping, and for shared RAM the
    /// root's resident bytes.
    pub fn add_ram_usage(&mut self, usage: kernel::RegionUsage, shared_root: Option<u64>) {
        self.ram_private_bytes = usage.anonymous;
        if let Some(root) = shared_root {
            self.shared_ram = true;
            self.pages_forked = usage.anonymous / kvmpager::abi::PAGE_SIZE;
            self.shared_root_bytes = root;
        }
    }

    /// A multi-line human summary.
    pub fn summary(&self) -> String {
        let remote = self.remote.as_ref().map_or(String::new(), |r| r.summary());
        self.local_summary() + &remote
    }

    fn local_summary(&self) -> String {
        let mut s = self.base_summary();
        if self.shared_ram {
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            s.push_str(&format!(
                "\nshared RAM: {} pages shared ({} minor faults), {} forked by writes, {} zero; \
                 private {:.1} MiB beyond the shared root ({:.1} MiB resident, {:.1} MiB filled by this VM)",
                self.pages_shared,
                self.minor_faults,
                self.pages_forked,
                self.pages_zeroed,
                mib(self.ram_private_bytes),
                mib(self.shared_root_bytes),
                mib(self.root_fill_bytes),
            ));
        }
        s
    }

    fn base_summary(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "time to first guest instruction: {:.2} ms, to the VM's stop: {:.2} ms\n\
             faults: {} (page requests: {})\n\
             pages supplied: {} ({} on demand, {} prefetched in {} supplies, {:.1} ms)\n\
             bytes moved: {} ({:.1} MiB), bytes remapped: {} ({:.1} MiB), bytes copied: {} ({:.1} MiB)\n\
             from files: {:.1} MiB read into aux VMOs; {:.1} MiB of holes zero-filled; {} huge-page supplies\n\
             fault latency: p50 {:.1} us, p99 {:.1} us, max {:.1} us; {:.1} ms waited in all",
            self.time_to_first_instruction_ns as f64 / 1e6,
            self.time_to_stop_ns as f64 / 1e6,
            self.faults,
            self.requests,
            self.pages_supplied,
            self.pages_on_demand,
            self.pages_prefetched,
            self.prefetch_supplies,
            self.prefetch_ns as f64 / 1e6,
            self.bytes_moved,
            mib(self.bytes_moved),
            self.bytes_remapped,
            mib(self.bytes_remapped),
            self.bytes_copied,
            mib(self.bytes_copied),
            mib(self.file_bytes_read),
            mib(self.zero_bytes),
            self.huge_supplies,
            us(self.fault_latency_p50_ns),
            us(self.fault_latency_p99_ns),
            us(self.fault_latency_max_ns),
            self.fault_wait_ns as f64 / 1e6,
        )
    }
}

/// Totals over clones restored together (`restore --clones N`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CloneTotals {
    /// Clones that ran.
    pub clones: u64,
    /// Pages mapped from the shared root, all clones.
    pub pages_shared: u64,
    /// Pages forked by writes, all clones.
    pub pages_forked: u64,
    /// Private RAM bytes of all clones.
    pub ram_private_bytes: u64,
    /// Bytes of the shared root resident (the largest any clone saw at its exit).
    pub shared_root_bytes: u64,
    /// Host memory of all clones' RAM: private bytes plus the shared root once.
    pub host_ram_bytes: u64,
    /// Clones restored from a snapshot URL: their one fetcher's counters (all clones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::store::FetchStats>,
}

impl CloneTotals {
    /// Sums the clones' statistics.
    pub fn of<'a>(runs: impl Iterator<Item = &'a crate::RunResult>) -> CloneTotals {
        let mut t = CloneTotals::default();
        for r in runs {
            t.clones += 1;
            t.pages_shared += r.stats.pages_shared;
            t.pages_forked += r.stats.pages_forked;
            t.ram_private_bytes += r.stats.ram_private_bytes;
            t.shared_root_bytes = t.shared_root_bytes.max(r.stats.shared_root_bytes);
            t.remote = r.stats.remote.clone().or(t.remote);
        }
        t.host_ram_bytes = t.ram_private_bytes + t.shared_root_bytes;
        t
    }

    /// One line for humans (and the shared fetcher's `remote:` line, for URL clones).
    pub fn summary(&self) -> String {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        format!(
            "RAM host memory {:.1} MiB ({:.1} MiB private + {:.1} MiB shared root); {} pages shared, {} forked",
            mib(self.host_ram_bytes),
            mib(self.ram_private_bytes),
            mib(self.shared_root_bytes),
            self.pages_shared,
            self.pages_forked
        ) + &self.remote.as_ref().map_or(String::new(), |r| r.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_both_processes() {
        let host = kernel::CounterValues {
            faults: 2,
            fault_latency_ns: vec![1000, 2000],
            ..Default::default()
        };
        let guest = kernel::CounterValues {
            faults: 1,
            fault_latency_ns: vec![100_000],
            ..Default::default()
        };
        let s = RunSummary::collect(&host, &guest);
        assert_eq!(s.faults, 3);
        assert!((1000..=2010).contains(&s.fault_latency_p50_ns), "{s:?}");
        assert!(s.fault_latency_p99_ns >= 99_000);
        assert_eq!(
            RunSummary::collect(&Default::default(), &Default::default()).fault_latency_p99_ns,
            0
        );
    }
}
