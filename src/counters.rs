//! Counters of page supply and fault service, shared by the objects of one process.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most fault-latency samples kept (later ones overwrite the oldest).
pub const MAX_LATENCY_SAMPLES: usize = 1 << 20;

/// Upper bounds (ns) of the fault-latency histogram's buckets; one more bucket, past the last
/// bound, counts everything slower (Prometheus' `+Inf`).
pub const LATENCY_BUCKETS_NS: [u64; 14] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// Fault latencies by bucket, counted since the process was created (never sampled away, and
/// read without copying the samples).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Samples per bucket (not cumulative): `counts[i]` for `LATENCY_BUCKETS_NS[i - 1] < ns
    /// <= LATENCY_BUCKETS_NS[i]`, the last for slower ones.
    pub counts: [u64; LATENCY_BUCKETS_NS.len() + 1],
    /// Sum of all samples (ns).
    pub sum_ns: u64,
}

/// Live counters; every field counts since the process was created.
#[derive(Debug, Default)]
pub struct Counters {
    /// Userfaultfd faults taken on pager VMO pages.
    pub faults: AtomicU64,
    /// Page requests made (READ and DIRTY).
    pub requests: AtomicU64,
    /// Successful SUPPLY operations.
    pub supplies: AtomicU64,
    /// Pages newly inserted into pager VMOs.
    pub pages_supplied: AtomicU64,
    /// Supplied pages skipped because the destination already had them.
    pub pages_skipped: AtomicU64,
    /// Bytes moved by `UFFDIO_MOVE` (zero copy).
    pub bytes_moved: AtomicU64,
    /// Bytes copied by the `UFFDIO_COPY` fallback.
    pub bytes_copied: AtomicU64,
    /// Bytes remapped by the remap strategy (zero copy).
    pub bytes_remapped: AtomicU64,
    /// `UFFDIO_MOVE` ioctls issued.
    pub move_ioctls: AtomicU64,
    /// Times a move fell back to copying.
    pub copy_fallbacks: AtomicU64,
    /// Minor faults: touches of a page the shared file holds but this mapping lacks.
    pub minor_faults: AtomicU64,
    /// Pages mapped from a shared file (`UFFDIO_CONTINUE`, zero copy, one physical page).
    pub pages_shared: AtomicU64,
    /// Pages of a shared-file VMO supplied as private zero pages (holes in the file).
    pub pages_zeroed: AtomicU64,
    latency_samples: AtomicU64,
    latencies_ns: Mutex<Vec<u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_NS.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterValues {
    /// See [`Counters::faults`].
    pub faults: u64,
    /// See [`Counters::requests`].
    pub requests: u64,
    /// See [`Counters::supplies`].
    pub supplies: u64,
    /// See [`Counters::pages_supplied`].
    pub pages_supplied: u64,
    /// See [`Counters::pages_skipped`].
    pub pages_skipped: u64,
    /// See [`Counters::bytes_moved`].
    pub bytes_moved: u64,
    /// See [`Counters::bytes_copied`].
    pub bytes_copied: u64,
    /// See [`Counters::bytes_remapped`].
    pub bytes_remapped: u64,
    /// See [`Counters::move_ioctls`].
    pub move_ioctls: u64,
    /// See [`Counters::copy_fallbacks`].
    pub copy_fallbacks: u64,
    /// See [`Counters::minor_faults`].
    pub minor_faults: u64,
    /// See [`Counters::pages_shared`].
    pub pages_shared: u64,
    /// See [`Counters::pages_zeroed`].
    pub pages_zeroed: u64,
    /// Fault service latencies in ns: from the fault event being read to the faulting
    /// thread's request being resolved.
    pub fault_latency_ns: Vec<u64>,
    /// Every fault latency by bucket.
    pub latency_histogram: LatencyHistogram,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records one fault latency sample.
    pub fn record_latency(&self, ns: u64) {
        let bucket = LATENCY_BUCKETS_NS.partition_point(|&b| b < ns);
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns.fetch_add(ns, Ordering::Relaxed);
        let n = self.latency_samples.fetch_add(1, Ordering::Relaxed) as usize;
        let mut v = self.latencies_ns.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < MAX_LATENCY_SAMPLES {
            v.push(ns);
        } else {
            v[n % MAX_LATENCY_SAMPLES] = ns;
        }
    }

    /// The current values without the latency samples (`fault_latency_ns` is empty): cheap
    /// enough to read many times a second.
    pub fn read_totals(&self) -> CounterValues {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterValues {
            faults: get(&self.faults),
            requests: get(&self.requests),
            supplies: get(&self.supplies),
            pages_supplied: get(&self.pages_supplied),
            pages_skipped: get(&self.pages_skipped),
            bytes_moved: get(&self.bytes_moved),
            bytes_copied: get(&self.bytes_copied),
            bytes_remapped: get(&self.bytes_remapped),
            move_ioctls: get(&self.move_ioctls),
            copy_fallbacks: get(&self.copy_fallbacks),
            minor_faults: get(&self.minor_faults),
            pages_shared: get(&self.pages_shared),
            pages_zeroed: get(&self.pages_zeroed),
            fault_latency_ns: Vec::new(),
            latency_histogram: LatencyHistogram {
                counts: std::array::from_fn(|i| get(&self.latency_buckets[i])),
                sum_ns: get(&self.latency_sum_ns),
            },
        }
    }

    /// The current values.
    pub fn read(&self) -> CounterValues {
        let samples = self.latencies_ns.lock().unwrap_or_else(|e| e.into_inner());
        CounterValues {
            fault_latency_ns: samples.clone(),
            ..self.read_totals()
        }
    }
}

impl CounterValues {
    /// Adds another reading's counts to this one.
    pub fn merge(&mut self, other: &CounterValues) {
        self.faults += other.faults;
        self.requests += other.requests;
        self.supplies += other.supplies;
        self.pages_supplied += other.pages_supplied;
        self.pages_skipped += other.pages_skipped;
        self.bytes_moved += other.bytes_moved;
        self.bytes_copied += other.bytes_copied;
        self.bytes_remapped += other.bytes_remapped;
        self.move_ioctls += other.move_ioctls;
        self.copy_fallbacks += other.copy_fallbacks;
        self.minor_faults += other.minor_faults;
        self.pages_shared += other.pages_shared;
        self.pages_zeroed += other.pages_zeroed;
        self.fault_latency_ns
            .extend_from_slice(&other.fault_latency_ns);
        let h = &mut self.latency_histogram;
        for (a, b) in h.counts.iter_mut().zip(other.latency_histogram.counts) {
            *a += b;
        }
        h.sum_ns += other.latency_histogram.sum_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_buckets_and_totals_skip_the_samples() {
        let c = Counters::default();
        // At a bound counts in that bucket; past the last bound in the extra one.
        for ns in [1, 5_000, 5_001, 10_000_000_001] {
            c.record_latency(ns);
        }
        let t = c.read_totals();
        assert!(t.fault_latency_ns.is_empty());
        let h = &t.latency_histogram;
        assert_eq!((h.counts[0], h.counts[1]), (2, 1));
        assert_eq!(h.counts[LATENCY_BUCKETS_NS.len()], 1);
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
        assert_eq!(h.sum_ns, 1 + 5_000 + 5_001 + 10_000_000_001);
        let mut both = c.read();
        assert_eq!(both.fault_latency_ns.len(), 4);
        both.merge(&t);
        assert_eq!(both.latency_histogram.counts[0], 4);
    }
}
