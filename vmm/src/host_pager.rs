//! The built-in host pager that serves pager-backed guest RAM.
//!
//! Guest RAM with lazy RAM on is a pager VMO of the VM's *host* process (the guest can never
//! name it). A host thread waits on the pager's port; for each READ request it widens the
//! request to an aligned read-ahead window (2 MiB by default: read-ahead is the pager's job in
//! Zircon), asks a [`PageSource`] to fill an aux VMO for each absent run of the window, and
//! moves the pages in with `zx_pager_supply_pages`. Whole 2 MiB-aligned runs use an aux VMO
//! created with `KVMPAGER_VMO_HUGE`, so they move as huge pages where the host has them.
//!
//! Sources fill the aux VMO directly: file data is `pread` straight into the aux VMO's memory
//! ([`Aux::read_file`]: one copy, from the page cache; none after, the pages *move* into RAM)
//! and holes are committed as zero pages without touching the file ([`Aux::zero`]). There are
//! two sources: [`ZeroFill`] (fresh RAM) and [`ImageSource`] (a raw, sparse memory image:
//! `--image`, or a snapshot's `ram.img`).
//!
//! The pager can also *record* the pages the guest faulted on (the request offsets, in first
//! touch order) and *prefetch* a recorded set before the guest starts, in large batched
//! supplies (REAP's record and replay). [`PagerCounters`] says how many pages came which way.
//! When a source cannot deliver a request's pages, the VM is told why and the request is
//! failed (`ZX_PAGER_OP_FAIL` with [`Error::status`]), so the faulting vCPU never waits on.
//!
//! Shared RAM (`restore --share`): the pager VMO maps a snapshot's [`SharedRoot`]
//! copy-on-write instead; a READ makes sure the window's pages are in the root (filling the
//! ones nobody filled yet from the snapshot: `ram.img`, or verified chunks) and maps them
//! with a shared supply (`Process::pager_supply_shared`: `UFFDIO_CONTINUE`, holes as private
//! zero pages). No aux VMO and no move: `UFFDIO_MOVE` refuses shared pages.
//!
//! Where faults are served: with a quick source (memory, a local file) and private RAM, on the
//! fault service's own thread as it dispatches them (the port's inline server);
//! otherwise, and for requests that do not come from faults, on the `host-pager` thread.
//!
//! The sources live in `page_source` (re-exported here) and the root in `shared_root`; this
//! module is the pager itself. `external` bridges the pager VMO to a pager process instead
//! (`--pager-socket`, `--pager-exec`).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvmpager::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use kvmpager::abi::status::ZX_ERR_CANCELED;
use kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT;
use kvmpager::abi::vmo_options::KVMPAGER_VMO_HUGE;
use kvmpager::abi::{HUGE_PAGE_SIZE, Handle, PAGE_SIZE, PortPacket};

use crate::kernel::{CallFailed, Process, Vmo, kernel};
use crate::sync::lock;

pub mod external;
mod page_source;
pub mod shared_root;

pub use page_source::{ImageSource, PageSource, PatternSource, ZeroFill};
pub use shared_root::SharedRoot;

/// Errors of the host pager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel call failed.
    #[error(transparent)]
    Kernel(#[from] CallFailed),
    /// The pager thread could not be started.
    #[error("cannot start the host pager thread: {0}")]
    Spawn(std::io::Error),
    /// A memory image cannot be used.
    #[error("memory image {path}: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A remote source could not deliver a page's bytes (the request fails with `status`).
    #[error("{message}")]
    Remote {
        /// The status the page request fails with (`ZX_ERR_IO_DATA_INTEGRITY`, `ZX_ERR_IO`).
        status: kvmpager::abi::Status,
        /// What failed: chunk, page, URL.
        message: String,
    },
    /// A snapshot's shared root cannot be used (`restore --share`).
    #[error("shared root {path}: {reason}")]
    Share {
        /// The root file or its directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The external pager cannot be reached or set up (`--pager-socket`, `--pager-exec`).
    #[error("external pager: {what}: {error}")]
    External {
        /// What was being done.
        what: String,
        /// The error.
        error: io::Error,
    },
    /// The source could not read its data.
    #[error("reading {what}: {error}")]
    Io {
        /// What was being read.
        what: String,
        /// The error.
        error: io::Error,
    },
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The status a page request this error failed ends with.
    pub fn status(&self) -> kvmpager::abi::Status {
        match self {
            Error::Remote { status, .. } => *status,
            _ => kvmpager::abi::status::ZX_ERR_IO,
        }
    }
}

/// An aux VMO of the host process, as a [`PageSource`] sees it: it can only be filled.
pub struct Aux<'a> {
    process: &'a Process,
    handle: Handle,
    vmo: Arc<Vmo>,
    counters: &'a PagerCounters,
}

impl Aux<'_> {
    /// Commits `[offset, offset + len)` as zero pages (`ZX_VMO_OP_COMMIT`); no file is read.
    pub fn zero(&self, offset: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.process
            .vmo_op_range(self.handle, ZX_VMO_OP_COMMIT, offset, len)
            .map_err(kernel("zx_vmo_op_range(COMMIT)"))?;
        PagerCounters::add(&self.counters.zero_bytes, len);
        Ok(())
    }

    /// Reads `len` bytes of `file` at `file_offset` straight into the aux VMO at `offset`
    /// (bytes past the end of the file read as zero).
    pub fn read_file(&self, offset: u64, len: u64, file: &File, file_offset: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.vmo
            .read_file(offset, len, file, file_offset)
            .map_err(kernel("Vmo::read_file"))?;
        PagerCounters::add(&self.counters.file_bytes_read, len);
        Ok(())
    }

    /// Copies `data` into the aux VMO at `offset` (built-in sources that compute bytes).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.process
            .vmo_write(self.handle, data, offset)
            .map_err(kernel("zx_vmo_write"))?;
        Ok(())
    }
}

/// What the host pager did, by way of supply.
#[derive(Debug, Default)]
pub struct PagerCounters {
    /// READ requests served.
    pub demand_requests: AtomicU64,
    /// Pages supplied in answer to requests (the read-ahead windows included).
    pub demand_pages: AtomicU64,
    /// Pages supplied by the prefetcher before the guest ran.
    pub prefetched_pages: AtomicU64,
    /// Supply calls made by the prefetcher.
    pub prefetch_supplies: AtomicU64,
    /// Bytes read from a file into aux VMOs (the one copy, from the page cache).
    pub file_bytes_read: AtomicU64,
    /// Bytes committed as zero pages without reading a file.
    pub zero_bytes: AtomicU64,
    /// Supplies that used a huge-page aux VMO (2 MiB-aligned runs).
    pub huge_supplies: AtomicU64,
    /// Nanoseconds spent prefetching.
    pub prefetch_ns: AtomicU64,
    /// Shared RAM: bytes this VM wrote into the shared root (pages it touched first).
    pub root_fill_bytes: AtomicU64,
    /// Request offsets (page numbers) in first-touch order, when recording.
    recorded: Mutex<Option<Vec<u64>>>,
}

impl PagerCounters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Starts recording request offsets.
    pub fn start_recording(&self) {
        *lock(&self.recorded) = Some(Vec::new());
    }

    /// The recorded page numbers (first-touch order, duplicates removed), if recording.
    pub fn recorded(&self) -> Option<Vec<u64>> {
        let r = lock(&self.recorded);
        r.as_ref().map(|v| {
            let mut seen = std::collections::HashSet::new();
            v.iter().copied().filter(|p| seen.insert(*p)).collect()
        })
    }

    fn record(&self, page: u64) {
        if let Some(v) = lock(&self.recorded).as_mut() {
            v.push(page);
        }
    }
}

/// How the pager supplies: read-ahead window, huge pages, batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplyPolicy {
    /// Requests are widened to aligned windows of this many bytes (a power of two, at least a
    /// page).
    pub readahead: u64,
    /// Supply whole 2 MiB-aligned runs from huge-page aux VMOs.
    pub huge_pages: bool,
}

impl Default for SupplyPolicy {
    fn default() -> Self {
        SupplyPolicy {
            readahead: HUGE_PAGE_SIZE,
            huge_pages: true,
        }
    }
}

/// Largest piece one supply moves (bounds the aux VMOs).
const MAX_SUPPLY: u64 = 16 << 20;
/// How long a pager thread polls its port before it sleeps, unless told otherwise.
const DEFAULT_SPIN: Duration = Duration::from_micros(50);
/// Port key of the RAM VMO.
const RAM_KEY: u64 = 0x0052_414d; // "RAM"

/// A pager, its port and the pager VMO it serves.
pub struct HostPager {
    process: Arc<Process>,
    pager: Handle,
    port: Handle,
    vmo: Handle,
    ram: Arc<Vmo>,
    policy: SupplyPolicy,
    counters: Arc<PagerCounters>,
    /// Aux VMOs kept between supplies: `[small, huge]` (each `MAX_SUPPLY` bytes).
    aux: [Option<(Handle, Arc<Vmo>)>; 2],
    /// The READ request being served (offset, length): failed if serving it fails.
    serving: Option<(u64, u64)>,
    /// Shared RAM: the root the pager VMO maps (supplies are shared supplies from it).
    root: Option<Arc<SharedRoot>>,
    /// How long the serving thread polls its port before sleeping.
    spin: Duration,
}

impl HostPager {
    /// Creates a pager VMO of `size` bytes in `process` (which should be a host process).
    pub fn create(process: &Arc<Process>, size: u64) -> Result<Self> {
        Self::with_policy(process, size, SupplyPolicy::default())
    }

    /// [`HostPager::create`] with an explicit supply policy.
    pub fn with_policy(process: &Arc<Process>, size: u64, policy: SupplyPolicy) -> Result<Self> {
        Self::build(process, size, policy, None)
    }

    /// A pager whose VMO (the root's RAM size) maps `root` copy-on-write and is supplied
    /// from it (shared RAM).
    pub fn shared(
        process: &Arc<Process>,
        root: Arc<SharedRoot>,
        policy: SupplyPolicy,
    ) -> Result<Self> {
        Self::build(process, root.ram_size(), policy, Some(root))
    }

    fn build(
        process: &Arc<Process>,
        size: u64,
        policy: SupplyPolicy,
        root: Option<Arc<SharedRoot>>,
    ) -> Result<Self> {
        let pager = process.pager_create(0).map_err(kernel("zx_pager_create"))?;
        let port = process.port_create(0).map_err(kernel("zx_port_create"))?;
        let vmo = match &root {
            Some(r) => process
                .pager_create_vmo_shared(pager, port, RAM_KEY, size, r.read_only()?)
                .map_err(kernel("pager_create_vmo_shared"))?,
            None => process
                .pager_create_vmo(pager, 0, port, RAM_KEY, size)
                .map_err(kernel("zx_pager_create_vmo"))?,
        };
        let ram = process.vmo_object(vmo).map_err(kernel("vmo_object"))?;
        let readahead = policy
            .readahead
            .clamp(PAGE_SIZE, MAX_SUPPLY)
            .next_power_of_two();
        Ok(HostPager {
            process: process.clone(),
            pager,
            port,
            vmo,
            ram,
            policy: SupplyPolicy {
                readahead,
                ..policy
            },
            counters: Arc::default(),
            aux: [None, None],
            serving: None,
            root,
            spin: DEFAULT_SPIN,
        })
    }

    /// A second supplier for the same pager VMO, with aux VMOs of its own and the same
    /// counters: a background prefetch runs on it beside the demand pager.
    pub fn sibling(&self) -> HostPager {
        HostPager {
            process: self.process.clone(),
            pager: self.pager,
            port: self.port,
            vmo: self.vmo,
            ram: self.ram.clone(),
            policy: self.policy,
            counters: self.counters.clone(),
            aux: [None, None],
            serving: None,
            root: self.root.clone(),
            spin: self.spin,
        }
    }

    /// Sets how long the serving thread polls its port for the next request before it
    /// sleeps (default 50 us). Zero for a thread pinned to the CPU of the vCPU and the fault
    /// service: polling there only keeps them from running (a handoff on one CPU is a plain
    /// context switch; across CPUs a wake-up is the expensive part that polling saves).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The spin [`HostPager::set_spin`] set.
    pub fn spin(&self) -> Duration {
        self.spin
    }

    /// The shared root, for shared RAM.
    pub fn root(&self) -> Option<&Arc<SharedRoot>> {
        self.root.as_ref()
    }

    /// The pager VMO (guest RAM).
    pub fn vmo(&self) -> Handle {
        self.vmo
    }

    /// The pager VMO object.
    pub fn ram(&self) -> &Arc<Vmo> {
        &self.ram
    }

    /// The counters (shared with whoever reports them).
    pub fn counters(&self) -> &Arc<PagerCounters> {
        &self.counters
    }

    /// Supplies `data` (page-aligned offset and length) at `offset` of the VMO.
    pub fn supply(&self, offset: u64, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        let p = &self.process;
        let aux = p.vmo_create(len, 0).map_err(kernel("zx_vmo_create"))?;
        let r = p.vmo_write(aux, data, 0).map_err(kernel("zx_vmo_write"));
        let r = r.and_then(|_| {
            p.pager_supply_pages(self.pager, self.vmo, offset, len, aux, 0)
                .map_err(kernel("zx_pager_supply_pages"))
        });
        let _ = p.handle_close(aux);
        Ok(r?)
    }

    /// The aux VMO for a run: huge for whole 2 MiB-aligned runs (when the policy allows).
    fn aux_for(&mut self, offset: u64, len: u64) -> Result<(Handle, Arc<Vmo>)> {
        let huge = self.policy.huge_pages
            && offset.is_multiple_of(HUGE_PAGE_SIZE)
            && len.is_multiple_of(HUGE_PAGE_SIZE);
        let slot = usize::from(huge);
        if self.aux[slot].is_none() {
            let options = if huge { KVMPAGER_VMO_HUGE } else { 0 };
            let h = self
                .process
                .vmo_create(MAX_SUPPLY, options)
                .map_err(kernel("zx_vmo_create(aux)"))?;
            let vmo = self.process.vmo_object(h).map_err(kernel("vmo_object"))?;
            self.aux[slot] = Some((h, vmo));
        }
        if huge {
            PagerCounters::add(&self.counters.huge_supplies, 1);
        }
        Ok(self.aux[slot].clone().expect("just created"))
    }

    /// Shared RAM: fills `[offset, offset + len)` into the root where nobody has yet, then
    /// maps it from there.
    fn supply_shared(&self, root: &SharedRoot, offset: u64, len: u64) -> Result<u64> {
        let wrote = root.fill(offset..offset + len)?;
        PagerCounters::add(&self.counters.root_fill_bytes, wrote);
        PagerCounters::add(&self.counters.file_bytes_read, wrote);
        let mut n = 0;
        for (piece, data) in root.pieces(offset..offset + len) {
            let (at, bytes) = (piece.start, piece.end - piece.start);
            n += self
                .process
                .pager_supply_shared(self.pager, self.vmo, at, bytes, !data)
                .map_err(kernel("pager_supply_shared"))?;
        }
        Ok(n)
    }

    /// Fills and supplies RAM `[offset, offset + len)` (at most `MAX_SUPPLY`, all absent).
    fn supply_run(&mut self, source: &dyn PageSource, offset: u64, len: u64) -> Result<u64> {
        if let Some(root) = self.root.clone() {
            return self.supply_shared(&root, offset, len);
        }
        let (pager, ram_vmo) = (self.pager, self.vmo);
        let (handle, vmo) = self.aux_for(offset, len)?;
        let aux = Aux {
            process: &self.process,
            handle,
            vmo,
            counters: &self.counters,
        };
        let filled = source.fill(&aux, 0, offset, len);
        let r = filled.and_then(|_| {
            self.process
                .pager_supply_pages_counted(pager, ram_vmo, offset, len, handle, 0)
                .map_err(|s| kernel("zx_pager_supply_pages")(s).into())
        });
        if r.is_err() {
            // Leave the aux VMO empty for the next supply whatever happened.
            let _ = self.process.vmo_op_range(
                handle,
                kvmpager::abi::vmo_op::ZX_VMO_OP_DECOMMIT,
                0,
                MAX_SUPPLY,
            );
        }
        r
    }

    /// Supplies every absent page of `range` (page aligned, inside RAM) from `source`, in runs
    /// of at most `MAX_SUPPLY`; returns the pages this call inserted (exact even when another
    /// supplier races it: the kernel counts).
    fn supply_absent(&mut self, source: &dyn PageSource, range: Range<u64>) -> Result<u64> {
        let mut supplied = 0;
        let mut page = range.start / PAGE_SIZE;
        let end = range.end / PAGE_SIZE;
        let max_pages = MAX_SUPPLY / PAGE_SIZE;
        while page < end {
            if self.ram.is_present(page) {
                page += 1;
                continue;
            }
            let start = page;
            while page < end && page - start < max_pages && !self.ram.is_present(page) {
                page += 1;
            }
            supplied += self.supply_run(source, start * PAGE_SIZE, (page - start) * PAGE_SIZE)?;
        }
        Ok(supplied)
    }

    /// The aligned read-ahead window around `[offset, offset + len)`, inside RAM.
    fn window(&self, offset: u64, len: u64) -> Range<u64> {
        let w = self.policy.readahead;
        let start = offset & !(w - 1);
        let end = (offset + len).next_multiple_of(w).min(self.ram.size());
        start..end
    }

    /// Supplies the pages `pages` (page numbers, e.g. a recorded working set) widened to
    /// read-ahead windows, sorted and merged into batches of up to 16 MiB — before the guest
    /// runs, or on a [`HostPager::sibling`] while it runs (pages already present are skipped,
    /// so racing the demand pager is harmless). `progress` is called now and then with
    /// (bytes done, bytes total).
    pub fn prefetch(
        &mut self,
        source: &dyn PageSource,
        pages: &[u64],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let t0 = Instant::now();
        let mut windows: Vec<Range<u64>> = pages
            .iter()
            .filter(|&&p| p < self.ram.pages())
            .map(|&p| self.window(p * PAGE_SIZE, PAGE_SIZE))
            .collect();
        windows.sort_by_key(|w| w.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        for w in windows {
            match merged.last_mut() {
                Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
                _ => merged.push(w),
            }
        }
        let total: u64 = merged.iter().map(|r| r.end - r.start).sum();
        progress(0, total);
        let supplied = self.prefetch_ranges(source, &merged, total, &mut progress)?;
        progress(total, total);
        PagerCounters::add(&self.counters.prefetched_pages, supplied);
        PagerCounters::add(&self.counters.prefetch_ns, t0.elapsed().as_nanos() as u64);
        Ok(supplied)
    }

    /// Supplies `ranges` in pieces of at most `MAX_SUPPLY`, in order; returns the pages
    /// inserted.
    fn prefetch_ranges(
        &mut self,
        source: &dyn PageSource,
        ranges: &[Range<u64>],
        total: u64,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<u64> {
        let (mut done, mut supplied, mut last) = (0, 0, Instant::now());
        for r in ranges {
            let mut at = r.start;
            while at < r.end {
                let n = (r.end - at).min(MAX_SUPPLY);
                supplied += self.prefetch_piece(source, at..at + n)?;
                at += n;
                done += n;
                if last.elapsed() >= Duration::from_millis(100) {
                    progress(done, total);
                    last = Instant::now();
                }
            }
        }
        Ok(supplied)
    }

    fn prefetch_piece(&mut self, source: &dyn PageSource, piece: Range<u64>) -> Result<u64> {
        let got = self.supply_absent(source, piece)?;
        if got > 0 {
            PagerCounters::add(&self.counters.prefetch_supplies, 1);
        }
        Ok(got)
    }

    /// Serves READ requests from `source` on a new thread until the process is killed.
    /// `on_error` is called once if serving fails for another reason. With a quick source
    /// (and private RAM), faults are served on the fault service's thread as it dispatches
    /// them (the port's inline server), and the thread serves the rest (requests from VMO
    /// reads, and faults that arrive while it is busy).
    pub fn start(
        self,
        source: Arc<dyn PageSource>,
        on_error: impl FnOnce(Error) + Send + 'static,
    ) -> Result<JoinHandle<()>> {
        let (process, port, spin) = (self.process.clone(), self.port, self.spin);
        let inline = source.is_quick() && self.root.is_none();
        let serving = Arc::new(Serving {
            pager: Mutex::new(self),
            source,
            on_error: Mutex::new(Some(Box::new(on_error))),
            done: AtomicBool::new(false),
        });
        if inline {
            let weak = Arc::downgrade(&serving);
            let server: kvmpager::port::InlineServer =
                Arc::new(move || weak.upgrade().is_some_and(|s| s.serve_inline()));
            process
                .port_set_inline_server(port, Some(server))
                .map_err(kernel("port_set_inline_server"))?;
        }
        std::thread::Builder::new()
            .name("host-pager".into())
            .spawn(move || {
                kvmpager::port::set_spin_before_sleep(spin);
                serving.serve(&process, port);
                let _ = process.port_set_inline_server(port, None);
            })
            .map_err(Error::Spawn)
    }

    /// Handles one packet; `false` when no more requests will come.
    fn handle_packet(&mut self, p: &PortPacket, source: &dyn PageSource) -> Result<bool> {
        if p.packet_type != ZX_PKT_TYPE_PAGE_REQUEST {
            return Ok(true);
        }
        match p.page_request.command {
            ZX_PAGER_VMO_READ => {
                self.serve_read(p.page_request.offset, p.page_request.length, source)?
            }
            ZX_PAGER_VMO_COMPLETE => return Ok(false),
            _ => {}
        }
        Ok(true)
    }

    /// Fails the request being served with `status` (after the VM was told why), so the
    /// faulting vCPU does not wait for an answer that will never come.
    fn fail_serving(&mut self, status: kvmpager::abi::Status) {
        use kvmpager::abi::pager_op::ZX_PAGER_OP_FAIL;
        if let Some((offset, len)) = self.serving.take() {
            let data = i64::from(status) as u64;
            let _ = self.process.pager_op_range(
                self.pager,
                ZX_PAGER_OP_FAIL,
                self.vmo,
                offset,
                len,
                data,
            );
        }
    }

    fn serve_read(&mut self, offset: u64, length: u64, source: &dyn PageSource) -> Result<()> {
        self.serving = Some((offset, length));
        PagerCounters::add(&self.counters.demand_requests, 1);
        self.counters.record(offset / PAGE_SIZE);
        let window = self.window(offset, length);
        let supplied = self.supply_absent(source, window)?;
        PagerCounters::add(&self.counters.demand_pages, supplied);
        self.serving = None;
        Ok(())
    }
}

/// What a started pager calls once if serving fails.
type OnError = Box<dyn FnOnce(Error) + Send>;

/// A started host pager: its thread and the port's inline server share it.
struct Serving {
    pager: Mutex<HostPager>,
    source: Arc<dyn PageSource>,
    on_error: Mutex<Option<OnError>>,
    /// No more requests are served (COMPLETE arrived, or serving failed).
    done: AtomicBool,
}

impl Serving {
    /// The pager thread: packets until the process is killed or serving ends.
    fn serve(&self, process: &Process, port: Handle) {
        while !self.done.load(Ordering::Acquire) {
            let packet = match process.port_wait(port, None) {
                Ok(p) => p,
                Err(ZX_ERR_CANCELED) => return,
                Err(status) => {
                    let mut pager = lock(&self.pager);
                    return self.failed(&mut pager, kernel("zx_port_wait")(status).into());
                }
            };
            let mut pager = lock(&self.pager);
            self.handle(&mut pager, &packet);
        }
    }

    /// The inline server: every queued packet, now, unless the pager thread is busy serving
    /// (then it takes them next) or serving ended.
    fn serve_inline(&self) -> bool {
        if self.done.load(Ordering::Acquire) {
            return false;
        }
        let Ok(mut pager) = self.pager.try_lock() else {
            return false;
        };
        let (process, port) = (pager.process.clone(), pager.port);
        while !self.done.load(Ordering::Acquire) {
            match process.port_wait(port, Some(Instant::now())) {
                Ok(p) => self.handle(&mut pager, &p),
                Err(_) => break,
            }
        }
        true
    }

    fn handle(&self, pager: &mut HostPager, packet: &PortPacket) {
        match pager.handle_packet(packet, self.source.as_ref()) {
            Ok(true) => {}
            Ok(false) => self.done.store(true, Ordering::Release),
            Err(e) => self.failed(pager, e),
        }
    }

    /// Serving failed: the VM is told why (once) and the request being served is failed.
    fn failed(&self, pager: &mut HostPager, e: Error) {
        self.done.store(true, Ordering::Release);
        let status = e.status();
        if let Some(report) = lock(&self.on_error).take() {
            report(e);
        }
        pager.fail_serving(status);
    }
}

impl Drop for HostPager {
    fn drop(&mut self) {
        for (h, _) in self.aux.iter().flatten() {
            let _ = self.process.handle_close(*h);
        }
    }
}
