//! The chunk fetcher: gets chunks from the cache or the store, verified, on a tokio runtime of
//! its own, so the pager thread only ever waits on a channel (with a timeout, in slices that
//! notice a shutdown).
//!
//! - *Single flight*: one fetch per chunk however many requests wait for it (demand waiters
//!   join a prefetch already under way).
//! - *Demand first*: a demand miss starts its fetch at once; the working-set prefetch runs
//!   `concurrency` fetches at a time from its own queue, so demand never waits behind it.
//! - *Retries*: object_store retries 5xx, dropped connections and timeouts with backoff
//!   (5 tries within 10 s); a chunk whose bytes do not verify is fetched twice more before
//!   it fails with [`Error::Integrity`].
//! - *Cache writes off the fault path*: a verified chunk answers its waiters at once and goes
//!   to one cache-writer thread (one thread: concurrent file creation in one directory only
//!   contends for its lock), which runs at nice [`WRITER_NICE`] so the guest, the pager and
//!   the fetches come first on a busy host; until its file is in, requests are served from
//!   memory. At most [`PENDING_MAX`] bytes wait for the writer (fetches wait beyond that).
//!   Dropping the fetcher finishes the writes — the dropping thread, at its own priority,
//!   drains the queue beside the writer — so a finished restore leaves a warm cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use super::{ChunkCache, ChunkStore, Error, Hash, Result};
use crate::sync::lock;

/// A fetched chunk, or why not (shared by every waiter).
type Fetched = std::result::Result<bytes::Bytes, Arc<Error>>;

/// How the fetcher runs.
#[derive(Clone, Debug)]
pub struct FetcherConfig {
    /// Fetches the working-set prefetch keeps in flight.
    pub prefetch_concurrency: usize,
    /// Longest a request waits for one chunk.
    pub wait: Duration,
    /// Runtime worker threads.
    pub threads: usize,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            prefetch_concurrency: 16,
            wait: Duration::from_secs(60),
            threads: 2,
        }
    }
}

/// What the fetcher did (`--json`: `stats.remote`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FetchStats {
    /// Chunks fetched from the store (verified).
    pub chunks_fetched: u64,
    /// Chunk requests answered from the local cache.
    pub cache_hits: u64,
    /// Bytes received from the store.
    pub bytes_fetched: u64,
    /// Of the fetched chunks, those the working-set prefetch fetched.
    pub prefetched_chunks: u64,
    /// Fetches whose bytes did not verify (each retried).
    pub integrity_errors: u64,
    /// Failed chunk requests (after retries).
    pub failures: u64,
    /// Nanoseconds requests waited for chunks (demand and prefetch supplies).
    pub wait_ns: u64,
    /// Nanoseconds the prefetch ran (start to last chunk).
    pub prefetch_ns: u64,
}

#[derive(Default)]
struct Counters {
    fetched: AtomicU64,
    hits: AtomicU64,
    bytes: AtomicU64,
    prefetched: AtomicU64,
    integrity: AtomicU64,
    failures: AtomicU64,
    wait_ns: AtomicU64,
    prefetch_ns: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Most bytes of prefetched chunks held in memory until the pager takes them.
const STAGE_MAX: u64 = 64 << 20;

/// Most bytes of verified chunks waiting for the cache writer.
pub const PENDING_MAX: u64 = 256 << 20;

/// Longest the cache writer defers one chunk's file while fetches are in flight.
const DEFER_MAX: Duration = Duration::from_secs(5);

/// The writer's accounting unit: [`PENDING_MAX`] is this many semaphore permits.
const PENDING_UNIT: u64 = 64 << 10;

/// The cache writer's nice value (lower priority than the VM's threads, never starved: a
/// busy nice-0 thread leaves it ~10 % of a CPU).
pub const WRITER_NICE: i32 = 10;

/// A verified chunk on its way to the cache file, holding its share of [`PENDING_MAX`].
type ToWrite = (Hash, bytes::Bytes, tokio::sync::OwnedSemaphorePermit);

/// The writer's queue, shared by the writer thread and a dropping fetcher (which helps
/// drain it).
type WriteQueue = Arc<Mutex<mpsc::Receiver<ToWrite>>>;

/// Chunks the prefetch fetched and the pager has not taken yet (so it need not read them
/// back from the cache).
#[derive(Default)]
struct Staged {
    chunks: HashMap<Hash, bytes::Bytes>,
    bytes: u64,
}

struct Inner {
    store: ChunkStore,
    cache: ChunkCache,
    staged: Mutex<Staged>,
    /// Verified chunks whose cache files are not written yet.
    pending: Mutex<HashMap<Hash, bytes::Bytes>>,
    /// Bounds `pending` (permits of [`PENDING_UNIT`] bytes).
    pending_room: Arc<tokio::sync::Semaphore>,
    /// The cache writer's queue (`None` once the fetcher is dropped).
    to_write: Mutex<Option<mpsc::Sender<ToWrite>>>,
    inflight: Mutex<HashMap<Hash, Vec<mpsc::Sender<Fetched>>>>,
    counters: Counters,
    shutdown: AtomicBool,
}

/// When a wait for a chunk may end early.
#[derive(Clone, Copy, Debug)]
pub enum Cancel<'a> {
    /// Never (snapshot writers, RAM hashes: they must finish).
    Never,
    /// When the fetcher shuts down (the VM is going away).
    OnShutdown,
    /// Also when `flag` is set: one VM of several sharing this fetcher is going away.
    OnShutdownOr(&'a AtomicBool),
}

impl Cancel<'_> {
    fn now(&self, shutdown: &AtomicBool) -> bool {
        match self {
            Cancel::Never => false,
            Cancel::OnShutdown => shutdown.load(Ordering::SeqCst),
            Cancel::OnShutdownOr(f) => shutdown.load(Ordering::SeqCst) || f.load(Ordering::SeqCst),
        }
    }
}

/// Gets verified chunks, through the cache.
pub struct Fetcher {
    inner: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
    writer: Option<std::thread::JoinHandle<()>>,
    queue: WriteQueue,
    cfg: FetcherConfig,
}

impl Fetcher {
    /// A fetcher for `store` through `cache`.
    pub fn new(store: ChunkStore, cache: ChunkCache, cfg: FetcherConfig) -> Result<Fetcher> {
        let rt = super::runtime("kvmpager-fetch", cfg.threads)?;
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            store,
            cache,
            staged: Mutex::default(),
            pending: Mutex::default(),
            pending_room: Arc::new(tokio::sync::Semaphore::new(
                (PENDING_MAX / PENDING_UNIT) as usize,
            )),
            to_write: Mutex::new(Some(tx)),
            inflight: Mutex::default(),
            counters: Counters::default(),
            shutdown: AtomicBool::new(false),
        });
        let queue: WriteQueue = Arc::new(Mutex::new(rx));
        let (writer_inner, writer_queue) = (inner.clone(), queue.clone());
        let writer = std::thread::Builder::new()
            .name("kvmpager-cache".into())
            .spawn(move || writer_inner.write_cache(&writer_queue))
            .map_err(|e| Error::Runtime(format!("cannot start the cache writer: {e}")))?;
        Ok(Fetcher {
            inner,
            rt: Some(rt),
            writer: Some(writer),
            queue,
            cfg,
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime lives until drop")
    }

    /// Takes chunk `h` from the prefetch's staging area, if it is there (counted as a hit).
    pub fn take_staged(&self, h: &Hash) -> Option<bytes::Bytes> {
        let mut s = lock(&self.inner.staged);
        let b = s.chunks.remove(h)?;
        s.bytes -= b.len() as u64;
        add(&self.inner.counters.hits, 1);
        Some(b)
    }

    /// Chunk `h`'s cache file, if cached with the right length (counted as a hit).
    pub fn cached_file(&self, h: &Hash, len: u64) -> Option<std::fs::File> {
        let f = self.inner.cache.open_file(h, len)?;
        add(&self.inner.counters.hits, 1);
        Some(f)
    }

    /// Runs `f` on the fetcher's runtime and waits for it (not from the runtime's threads).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt().block_on(f)
    }

    /// The store.
    pub fn store(&self) -> &ChunkStore {
        &self.inner.store
    }

    /// The cache.
    pub fn cache(&self) -> &ChunkCache {
        &self.inner.cache
    }

    /// Makes every waiting and later request fail at once (the VM is going away).
    pub fn shut_down(&self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
    }

    /// The verified bytes of chunk `h` (`len` bytes): from the cache, or fetched (joining a
    /// fetch already in flight). Blocks the calling thread, never the runtime.
    pub fn get(&self, h: Hash, len: u64) -> Result<bytes::Bytes> {
        self.get_with(h, len, Cancel::OnShutdown)
    }

    /// [`Fetcher::get`] that a shutdown does not cut short (snapshot writers, RAM hashes).
    pub fn get_uncancelled(&self, h: Hash, len: u64) -> Result<bytes::Bytes> {
        self.get_with(h, len, Cancel::Never)
    }

    /// [`Fetcher::get`], its wait ending early as `cancel` says.
    pub fn get_with(&self, h: Hash, len: u64, cancel: Cancel<'_>) -> Result<bytes::Bytes> {
        let t0 = Instant::now();
        let r = self.get_inner(h, len, cancel);
        add(&self.inner.counters.wait_ns, t0.elapsed().as_nanos() as u64);
        if r.is_err() {
            add(&self.inner.counters.failures, 1);
        }
        r
    }

    fn get_inner(&self, h: Hash, len: u64, cancel: Cancel<'_>) -> Result<bytes::Bytes> {
        if let Some(b) = self.inner.held(&h, len) {
            add(&self.inner.counters.hits, 1);
            return Ok(b);
        }
        let (tx, rx) = mpsc::channel();
        let start = {
            let mut inflight = lock(&self.inner.inflight);
            match inflight.get_mut(&h) {
                Some(waiters) => {
                    waiters.push(tx);
                    false
                }
                None => {
                    // A fetch may have finished since the look above: look again, under the
                    // lock, before starting another.
                    if let Some(b) = self.inner.held(&h, len) {
                        add(&self.inner.counters.hits, 1);
                        return Ok(b);
                    }
                    inflight.insert(h, vec![tx]);
                    true
                }
            }
        };
        if start {
            let inner = self.inner.clone();
            self.rt()
                .spawn(async move { inner.fetch(h, len, false).await });
        }
        self.wait(&rx, h, cancel)
    }

    fn wait(
        &self,
        rx: &mpsc::Receiver<Fetched>,
        h: Hash,
        cancel: Cancel<'_>,
    ) -> Result<bytes::Bytes> {
        let deadline = Instant::now() + self.cfg.wait;
        loop {
            if cancel.now(&self.inner.shutdown) {
                return Err(Error::Runtime("shut down while a chunk was awaited".into()));
            }
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            match rx.recv_timeout(slice) {
                Ok(Ok(b)) => return Ok(b),
                Ok(Err(e)) => return Err(clone_err(&e)),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    return Err(Error::Timeout {
                        hash: h.hex(),
                        url: self.inner.store.chunk_url(&h),
                        secs: self.cfg.wait.as_secs(),
                    });
                }
            }
        }
    }

    /// Starts fetching `chunks` (hash, length) into the cache, `prefetch_concurrency` at a
    /// time, in order, on the runtime; returns at once.
    pub fn prefetch(&self, chunks: Vec<(Hash, u64)>) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        let n = self.cfg.prefetch_concurrency.max(1);
        self.rt().spawn(async move {
            let t0 = Instant::now();
            // Each chunk a task of its own, so the runtime's threads verify chunks side by
            // side (in one task, every hash would run on whichever thread polls it).
            futures::stream::iter(chunks)
                .map(|(h, len)| {
                    let inner = inner.clone();
                    tokio::spawn(async move { inner.prefetch_one(h, len).await })
                })
                .buffer_unordered(n)
                .for_each(|_| async {})
                .await;
            add(&inner.counters.prefetch_ns, t0.elapsed().as_nanos() as u64);
        })
    }

    /// [`Fetcher::prefetch`], waiting until every chunk is in (or failed).
    pub fn prefetch_blocking(&self, chunks: Vec<(Hash, u64)>) {
        let h = self.prefetch(chunks);
        let _ = self.rt().block_on(h);
    }

    /// The counters so far.
    pub fn stats(&self) -> FetchStats {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FetchStats {
            chunks_fetched: g(&c.fetched),
            cache_hits: g(&c.hits),
            bytes_fetched: g(&c.bytes),
            prefetched_chunks: g(&c.prefetched),
            integrity_errors: g(&c.integrity),
            failures: g(&c.failures),
            wait_ns: g(&c.wait_ns),
            prefetch_ns: g(&c.prefetch_ns),
        }
    }
}

impl FetchStats {
    /// A line for the text summary.
    pub fn summary(&self) -> String {
        format!(
            "\nremote: {} chunks fetched ({:.1} MiB, {} by the prefetch in {:.1} ms), {} cache hits, {} integrity errors, {} failures, {:.1} ms waited",
            self.chunks_fetched,
            self.bytes_fetched as f64 / (1 << 20) as f64,
            self.prefetched_chunks,
            self.prefetch_ns as f64 / 1e6,
            self.cache_hits,
            self.integrity_errors,
            self.failures,
            self.wait_ns as f64 / 1e6,
        )
    }
}

impl Drop for Fetcher {
    /// Stops fetching, then lets the cache writer finish what it holds (verified chunks:
    /// they make the next restore warm).
    fn drop(&mut self) {
        self.shut_down();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        drop(lock(&self.inner.to_write).take());
        self.inner.drain(&self.queue, false);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Errors are shared by waiters; each gets its own copy.
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Integrity { hash, url, reason } => Error::Integrity {
            hash: hash.clone(),
            url: url.clone(),
            reason: reason.clone(),
        },
        Error::Timeout { hash, url, secs } => Error::Timeout {
            hash: hash.clone(),
            url: url.clone(),
            secs: *secs,
        },
        other => Error::Shared(other.to_string()),
    }
}

impl Inner {
    /// A prefetch of one chunk: skipped when cached or already in flight.
    async fn prefetch_one(self: &Arc<Self>, h: Hash, len: u64) {
        if self.shutdown.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut inflight = lock(&self.inflight);
            if inflight.contains_key(&h)
                || lock(&self.pending).contains_key(&h)
                || self.cache.contains(&h)
            {
                return;
            }
            inflight.insert(h, Vec::new());
        }
        self.fetch(h, len, true).await;
    }

    /// Fetches, verifies and caches chunk `h`, then answers its waiters.
    async fn fetch(self: &Arc<Self>, h: Hash, len: u64, prefetch: bool) {
        let r: Fetched = self.fetch_verified(h, len).await.map_err(Arc::new);
        if let Ok(b) = &r {
            add(&self.counters.fetched, 1);
            if prefetch {
                add(&self.counters.prefetched, 1);
                let mut s = lock(&self.staged);
                if s.bytes + len <= STAGE_MAX && !s.chunks.contains_key(&h) {
                    s.bytes += len;
                    s.chunks.insert(h, b.clone());
                }
            }
        }
        let answer = |waiters: Vec<mpsc::Sender<Fetched>>| {
            for w in waiters {
                let _ = w.send(r.clone());
            }
        };
        // Waiters first; then into `pending` (served from memory until the writer has the
        // file in) before the in-flight entry goes, so a request never misses both and
        // fetches the chunk again. Requests that come meanwhile join this fetch.
        if let Ok(b) = &r {
            let waiters = lock(&self.inflight).get_mut(&h).map(std::mem::take);
            answer(waiters.unwrap_or_default());
            self.queue_write(h, b.clone()).await;
        }
        answer(lock(&self.inflight).remove(&h).unwrap_or_default());
    }

    /// Chunk `h` from memory (waiting for the cache writer) or from its cache file.
    fn held(&self, h: &Hash, len: u64) -> Option<bytes::Bytes> {
        if let Some(b) = lock(&self.pending).get(h) {
            return Some(b.clone());
        }
        self.cache.get(h, len).map(bytes::Bytes::from)
    }

    /// Hands verified chunk `h` to the cache writer, waiting while [`PENDING_MAX`] bytes
    /// already wait for it. Chunks the cache could never hold are not queued.
    async fn queue_write(&self, h: Hash, b: bytes::Bytes) {
        if b.len() as u64 > self.cache.bound() {
            return;
        }
        let units = (b.len() as u64).div_ceil(PENDING_UNIT).max(1) as u32;
        let Ok(permit) = self.pending_room.clone().acquire_many_owned(units).await else {
            return;
        };
        let tx = lock(&self.to_write).clone();
        if let Some(tx) = tx {
            lock(&self.pending).insert(h, b.clone());
            if tx.send((h, b, permit)).is_err() {
                lock(&self.pending).remove(&h);
            }
        }
    }

    /// The cache writer: scans the cache, then writes queued chunks' files until the queue
    /// closes, at nice [`WRITER_NICE`].
    fn write_cache(&self, queue: &WriteQueue) {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority on this thread's own id changes only its nice value (raising
        // it needs no privilege); failure leaves it as it was.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WRITER_NICE) } != 0 {
            log::debug!(
                "cache writer: nice {WRITER_NICE} refused: {}",
                std::io::Error::last_os_error()
            );
        }
        // The listing waits for no restore (reads need no index); puts follow it.
        if let Err(e) = self.cache.scan() {
            log::warn!("chunk cache: {e}");
        }
        self.drain(queue, true);
    }

    /// While chunks are being fetched the writer waits (at most [`DEFER_MAX`] per chunk),
    /// unless a quarter or less of [`PENDING_MAX`] is left or the fetcher is going away: on a
    /// small host, file writes then take no CPU from the fetches and the pager.
    fn wait_for_quiet(&self) {
        let t0 = Instant::now();
        let low = (PENDING_MAX / PENDING_UNIT / 4) as usize;
        while !self.shutdown.load(Ordering::SeqCst)
            && !lock(&self.inflight).is_empty()
            && self.pending_room.available_permits() > low
            && t0.elapsed() < DEFER_MAX
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Writes queued chunks until the queue is closed and empty (the writer thread, and a
    /// dropping fetcher beside it).
    fn drain(&self, queue: &WriteQueue, defer: bool) {
        loop {
            // One item at a time, so two drainers take turns.
            let next = lock(queue).recv();
            let Ok((h, b, permit)) = next else { return };
            if defer {
                self.wait_for_quiet();
            }
            if let Err(e) = self.cache.put(&h, &b) {
                log::warn!("chunk cache: {e}");
            }
            lock(&self.pending).remove(&h);
            drop(permit);
        }
    }

    /// One chunk from the store, verified; bytes that do not verify are fetched twice more.
    async fn fetch_verified(&self, h: Hash, len: u64) -> Result<bytes::Bytes> {
        let rel = ChunkStore::chunk_rel(&h);
        let mut reason = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let b = self.store.get_range(&rel, 0..len).await?;
            add(&self.counters.bytes, b.len() as u64);
            reason = if b.len() as u64 != len {
                format!("{} bytes, want {len}", b.len())
            } else if Hash::of(&b) != h {
                format!("its bytes hash to {}", Hash::of(&b))
            } else {
                return Ok(b);
            };
            add(&self.counters.integrity, 1);
            log::warn!("chunk {h}: {reason}; fetching it again");
        }
        Err(Error::Integrity {
            hash: h.hex(),
            url: self.store.chunk_url(&h),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreUrl;
    use object_store::ObjectStore;
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("kvmpager-fetch-{}-{name}", std::process::id()))
    }

    /// A store holding `n` chunks of `len` bytes; their hashes.
    fn filled(store: Arc<dyn ObjectStore>, n: usize, len: usize) -> (ChunkStore, Vec<Hash>) {
        let cs = ChunkStore::new(StoreUrl::with_store("mem://", store));
        let rt = crate::store::runtime("t", 1).unwrap();
        let hs = (0..n)
            .map(|i| {
                let b = bytes::Bytes::from(vec![i as u8 + 1; len]);
                let h = Hash::of(&b);
                rt.block_on(cs.put_if_absent(&h, b)).unwrap();
                h
            })
            .collect();
        (cs, hs)
    }

    fn fetcher(cs: ChunkStore, name: &str, bound: u64, n: usize) -> Fetcher {
        let d = tmp(name);
        let _ = std::fs::remove_dir_all(&d);
        let cache = ChunkCache::open(&d, bound).unwrap();
        let cfg = FetcherConfig {
            prefetch_concurrency: n,
            ..Default::default()
        };
        Fetcher::new(cs, cache, cfg).unwrap()
    }

    #[test]
    fn concurrent_waiters_share_one_fetch_and_a_warm_cache_fetches_nothing() {
        let mem: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_get_per_call: Duration::from_millis(100),
                ..Default::default()
            },
        ));
        let (cs, hs) = filled(mem, 1, 4096);
        let f = Arc::new(fetcher(cs, "single", 1 << 20, 4));
        let ts: Vec<_> = (0..8)
            .map(|_| {
                let (f, h) = (f.clone(), hs[0]);
                std::thread::spawn(move || f.get(h, 4096).unwrap())
            })
            .collect();
        for t in ts {
            assert_eq!(t.join().unwrap().len(), 4096);
        }
        let s = f.stats();
        assert_eq!(s.chunks_fetched, 1, "{s:?}");
        // The cache file goes in just after the waiters are answered.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(f.get(hs[0], 4096).unwrap()[0], 1);
        assert_eq!(f.stats().chunks_fetched, 1);
        assert!(f.stats().cache_hits >= 1);
        let _ = std::fs::remove_dir_all(tmp("single"));
    }

    #[test]
    fn a_dropped_fetcher_has_written_every_verified_chunk_to_the_cache() {
        let (cs, hs) = filled(Arc::new(InMemory::new()), 40, 64 << 10);
        let f = fetcher(cs, "flush", 64 << 20, 16);
        f.prefetch_blocking(hs.iter().map(|h| (*h, 64 << 10)).collect());
        // Each is served (from memory or its file) without a second fetch.
        for h in &hs {
            assert_eq!(f.get(*h, 64 << 10).unwrap().len(), 64 << 10);
        }
        assert_eq!(f.stats().chunks_fetched, 40);
        drop(f);
        let c = ChunkCache::open(&tmp("flush"), 64 << 20).unwrap();
        for h in &hs {
            assert!(c.get(h, 64 << 10).is_some(), "chunk {h} not cached");
        }
        let _ = std::fs::remove_dir_all(tmp("flush"));
    }

    #[test]
    fn a_waiters_own_cancel_flag_ends_its_wait_and_no_one_elses() {
        let mem: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_get_per_call: Duration::from_millis(1500),
                ..Default::default()
            },
        ));
        let (cs, hs) = filled(mem, 1, 4096);
        let f = Arc::new(fetcher(cs, "cancel", 1 << 20, 4));
        let flag = Arc::new(AtomicBool::new(false));
        let (f2, h) = (f.clone(), hs[0]);
        let other = std::thread::spawn(move || f2.get(h, 4096));
        let (flag2, t0) = (flag.clone(), Instant::now());
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag2.store(true, Ordering::SeqCst);
        });
        let e = f.get_with(h, 4096, Cancel::OnShutdownOr(&flag));
        assert!(e.is_err() && t0.elapsed() < Duration::from_millis(1000));
        setter.join().unwrap();
        // The other waiter of the same fetch still gets the chunk.
        assert_eq!(other.join().unwrap().unwrap().len(), 4096);
        let _ = std::fs::remove_dir_all(tmp("cancel"));
    }

    #[test]
    fn corrupt_and_missing_chunks_fail_naming_the_chunk() {
        let mem = Arc::new(InMemory::new());
        let (cs, hs) = filled(mem.clone(), 1, 4096);
        let rt = crate::store::runtime("t", 1).unwrap();
        let path = cs.root().path(&ChunkStore::chunk_rel(&hs[0]));
        rt.block_on(object_store::ObjectStoreExt::put(
            mem.as_ref(),
            &path,
            vec![7u8; 4096].into(),
        ))
        .unwrap();
        let f = fetcher(cs, "corrupt", 1 << 20, 4);
        let e = f.get(hs[0], 4096).unwrap_err();
        assert!(e.is_integrity(), "{e}");
        assert!(e.to_string().contains(&hs[0].hex()), "{e}");
        assert_eq!(f.stats().integrity_errors, 3);
        let missing = Hash::of(b"nope");
        let e = f.get(missing, 4096).unwrap_err().to_string();
        assert!(e.contains(&missing.hex()), "{e}");
        assert!(!f.cache().contains(&hs[0]));
        let _ = std::fs::remove_dir_all(tmp("corrupt"));
    }

    #[test]
    fn demand_requests_jump_the_prefetch_queue() {
        let mem: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
            InMemory::new(),
            ThrottleConfig {
                wait_get_per_call: Duration::from_millis(50),
                ..Default::default()
            },
        ));
        let (cs, hs) = filled(mem, 40, 4096);
        let f = fetcher(cs, "jump", 1 << 20, 1);
        // 40 x 50 ms queued one at a time: 2 s; the last one asked for on demand comes in
        // one request's time.
        let _bg = f.prefetch(hs.iter().map(|h| (*h, 4096)).collect());
        std::thread::sleep(Duration::from_millis(20));
        let t0 = Instant::now();
        f.get(hs[39], 4096).unwrap();
        let t = t0.elapsed();
        assert!(t < Duration::from_millis(500), "demand waited {t:?}");
        assert!(f.stats().prefetched_chunks < 10);
        let _ = std::fs::remove_dir_all(tmp("jump"));
    }

    /// 256 chunks at 20 ms per request: 16 in flight is at least 10x faster than 1.
    #[test]
    fn prefetch_concurrency_hides_latency() {
        let time = |n: usize| {
            let mem: Arc<dyn ObjectStore> = Arc::new(ThrottledStore::new(
                InMemory::new(),
                ThrottleConfig {
                    wait_get_per_call: Duration::from_millis(20),
                    ..Default::default()
                },
            ));
            let (cs, hs) = filled(mem, 256, 4096);
            let name = format!("pf{n}");
            let f = fetcher(cs, &name, 64 << 20, n);
            let t0 = Instant::now();
            f.prefetch_blocking(hs.iter().map(|h| (*h, 4096)).collect());
            let t = t0.elapsed();
            assert_eq!(f.stats().prefetched_chunks, 256);
            let _ = std::fs::remove_dir_all(tmp(&name));
            t
        };
        let (one, sixteen) = (time(1), time(16));
        eprintln!("prefetch 256 x 20 ms: 1 in flight {one:?}, 16 in flight {sixteen:?}");
        assert!(one >= sixteen * 10, "{one:?} vs {sixteen:?}");
    }
}
