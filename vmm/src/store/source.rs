//! The host pager's view of a chunked snapshot: [`ChunkSource`] fills aux VMOs from verified
//! chunks, and [`open_snapshot`] reads a manifest and sets up the fetcher and cache.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use kvmpager::abi::PAGE_SIZE;
use kvmpager::abi::status::{ZX_ERR_IO, ZX_ERR_IO_DATA_INTEGRITY};

use super::manifest::{Chunks, chunk_len};
use super::{
    CHUNK_SIZE, Cancel, ChunkCache, ChunkStore, Fetcher, FetcherConfig, Hash, Manifest, Result,
    SnapshotUrl,
};
use crate::host_pager::shared_root::RootKey;
use crate::host_pager::{self, Aux, PageSource};

/// A chunked snapshot ready to restore.
pub struct RemoteSnapshot {
    /// Where it is.
    pub url: SnapshotUrl,
    /// Its manifest.
    pub manifest: Manifest,
    /// RAM contents, served from its chunks.
    pub source: Arc<ChunkSource>,
    /// The name of its shared root (`restore --share`): from its RAM size and chunk list.
    pub root_key: RootKey,
}

/// Reads and validates the manifest of snapshot `url`, and sets up the fetcher over a cache
/// in `cache_dir` bounded to `cache_bytes`.
pub fn open_snapshot(
    url: &str,
    cache_dir: &Path,
    cache_bytes: u64,
    cfg: FetcherConfig,
) -> Result<RemoteSnapshot> {
    let t0 = std::time::Instant::now();
    let step = |what: &str| log::debug!("open_snapshot: {what} at {:?}", t0.elapsed());
    let url = SnapshotUrl::parse(url)?;
    step("url parsed");
    let store = ChunkStore::new(url.store.clone());
    let cache = ChunkCache::open_unscanned(cache_dir, cache_bytes)?;
    step("cache open");
    let fetcher = Fetcher::new(store, cache, cfg)?;
    step("runtime up");
    let (manifest, chunks) = fetcher.block_on(fetcher.store().get_manifest(&url.manifest_rel()))?;
    step("manifest fetched and decoded");
    let root_key = root_key_of(&manifest, &chunks);
    let source = Arc::new(ChunkSource {
        fetcher,
        chunks,
        ram_size: manifest.ram_size,
        url: url.url(),
    });
    Ok(RemoteSnapshot {
        url,
        manifest,
        source,
        root_key,
    })
}

/// The shared-root key of snapshot `url` (`kvmpager unshare URL`): reads its manifest only.
pub fn root_key(url: &str) -> Result<RootKey> {
    let url = SnapshotUrl::parse(url)?;
    let store = ChunkStore::new(url.store.clone());
    let rt = super::runtime("kvmpager-manifest", 1)?;
    let (manifest, chunks) = rt.block_on(store.get_manifest(&url.manifest_rel()))?;
    Ok(root_key_of(&manifest, &chunks))
}

fn root_key_of(manifest: &Manifest, chunks: &Chunks) -> RootKey {
    RootKey::of_chunks(
        manifest.ram_size,
        CHUNK_SIZE,
        chunks.iter().map(|c| c.map(|h| h.0)),
    )
}

/// RAM served from content-addressed chunks through the fetcher.
pub struct ChunkSource {
    fetcher: Fetcher,
    chunks: Chunks,
    ram_size: u64,
    url: String,
}

impl ChunkSource {
    /// The fetcher (counters, prefetch).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The chunk list (`None`: all zero).
    pub fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    fn chunk_range(&self, i: usize) -> Range<u64> {
        let start = i as u64 * CHUNK_SIZE;
        start..start + chunk_len(self.ram_size, CHUNK_SIZE, i)
    }

    /// The distinct non-zero chunks holding `pages` (page numbers) each widened to its
    /// aligned `window` (the pager's read-ahead, a power of two), first use first.
    pub fn chunks_for_pages(&self, pages: &[u64], window: u64) -> Vec<(Hash, u64)> {
        let window = window.max(PAGE_SIZE);
        let mut seen = std::collections::HashSet::new();
        pages
            .iter()
            .flat_map(|p| {
                let start = (p * PAGE_SIZE) & !(window - 1);
                let end = (start + window).min(self.ram_size);
                (start / CHUNK_SIZE) as usize..end.div_ceil(CHUNK_SIZE) as usize
            })
            .filter_map(|i| Some((self.chunks.get(i).copied()??, i)))
            .filter(|(h, _)| seen.insert(*h))
            .map(|(h, i)| (h, chunk_len(self.ram_size, CHUNK_SIZE, i)))
            .collect()
    }

    /// Chunk `i`'s bytes; the error names the chunk, the page and the snapshot URL. The wait
    /// ends early as `cancel` says (the pager's: when its VM stops).
    fn chunk(
        &self,
        i: usize,
        h: Hash,
        page_offset: u64,
        cancel: Cancel<'_>,
    ) -> host_pager::Result<bytes::Bytes> {
        let len = chunk_len(self.ram_size, CHUNK_SIZE, i);
        self.fetcher
            .get_with(h, len, cancel)
            .map_err(|e| host_pager::Error::Remote {
                status: if e.is_integrity() {
                    ZX_ERR_IO_DATA_INTEGRITY
                } else {
                    ZX_ERR_IO
                },
                message: format!(
                    "guest RAM page {page_offset:#x} (chunk {i}, {h}) of snapshot {}: {e}",
                    self.url
                ),
            })
    }

    /// Calls `f(chunk index, hash or None, piece of RAM)` for each chunk piece of `range`.
    fn pieces(
        &self,
        range: Range<u64>,
        mut f: impl FnMut(usize, Option<Hash>, Range<u64>) -> host_pager::Result<()>,
    ) -> host_pager::Result<()> {
        let first = (range.start / CHUNK_SIZE) as usize;
        let last = range.end.div_ceil(CHUNK_SIZE) as usize;
        for i in first..last.min(self.chunks.len()) {
            let c = self.chunk_range(i);
            let piece = c.start.max(range.start)..c.end.min(range.end);
            if piece.start < piece.end {
                f(i, self.chunks[i], piece)?;
            }
        }
        Ok(())
    }
}

impl ChunkSource {
    /// Fills `aux[at..]` with `piece` of chunk `i`: from the prefetch's staging area, else
    /// straight from the cache file into the aux VMO (one copy, as a local image), else
    /// fetched.
    fn fill_piece(
        &self,
        aux: &Aux<'_>,
        at: u64,
        i: usize,
        h: Hash,
        piece: Range<u64>,
        cancel: Cancel<'_>,
    ) -> host_pager::Result<()> {
        let c = self.chunk_range(i);
        let (from, len) = (piece.start - c.start, piece.end - piece.start);
        let bytes = from as usize..(from + len) as usize;
        if let Some(b) = self.fetcher.take_staged(&h) {
            return aux.write(at, &b[bytes]);
        }
        if let Some(f) = self.fetcher.cached_file(&h, c.end - c.start) {
            return aux.read_file(at, len, &f, from);
        }
        let b = self.chunk(i, h, piece.start, cancel)?;
        aux.write(at, &b[bytes])
    }

    /// [`PageSource::fill`], its chunk waits ending early as `cancel` says.
    fn fill_with(
        &self,
        aux: &Aux<'_>,
        aux_offset: u64,
        ram_offset: u64,
        len: u64,
        cancel: Cancel<'_>,
    ) -> host_pager::Result<()> {
        let end = (ram_offset + len).min(self.ram_size);
        if end < ram_offset + len {
            aux.zero(aux_offset + (end - ram_offset), ram_offset + len - end)?;
        }
        self.pieces(ram_offset..end, |i, h, piece| {
            let at = aux_offset + (piece.start - ram_offset);
            match h {
                None => aux.zero(at, piece.end - piece.start),
                Some(h) => self.fill_piece(aux, at, i, h, piece, cancel),
            }
        })
    }
}

impl ChunkSource {
    /// Writes RAM `range` to `out` at the same offsets (zero chunks are skipped: holes).
    /// Every byte written was verified against its chunk's hash; a chunk that fails writes
    /// nothing and fails the call.
    /// The pager's writes (`cancel` not [`Cancel::Never`]) may take the prefetch's staged
    /// chunks.
    fn write_to(
        &self,
        out: &File,
        range: Range<u64>,
        cancel: Cancel<'_>,
    ) -> host_pager::Result<()> {
        self.pieces(range, |i, h, piece| {
            let Some(h) = h else { return Ok(()) };
            let pager = !matches!(cancel, Cancel::Never);
            let staged = pager.then(|| self.fetcher.take_staged(&h)).flatten();
            let bytes = match staged {
                Some(b) => b,
                None => self.chunk(i, h, piece.start, cancel)?,
            };
            let from = (piece.start - self.chunk_range(i).start) as usize;
            let data = &bytes[from..from + (piece.end - piece.start) as usize];
            out.write_all_at(data, piece.start)
                .map_err(|error| host_pager::Error::Io {
                    what: "a copy of a snapshot's RAM".into(),
                    error,
                })
        })
    }
}

impl PageSource for ChunkSource {
    fn fill(
        &self,
        aux: &Aux<'_>,
        aux_offset: u64,
        ram_offset: u64,
        len: u64,
    ) -> host_pager::Result<()> {
        self.fill_with(aux, aux_offset, ram_offset, len, Cancel::OnShutdown)
    }

    fn data_runs(&self) -> host_pager::Result<Vec<Range<u64>>> {
        let mut runs: Vec<Range<u64>> = Vec::new();
        for i in (0..self.chunks.len()).filter(|&i| self.chunks[i].is_some()) {
            let r = self.chunk_range(i);
            match runs.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => runs.push(r),
            }
        }
        Ok(runs)
    }

    fn copy_to(&self, out: &File, range: Range<u64>) -> host_pager::Result<()> {
        self.write_to(out, range, Cancel::Never)
    }

    /// A shared root's fill: verified bytes only (staged by the prefetch, or re-verified
    /// from the cache, or fetched and verified); the wait ends when the VM shuts down.
    fn fill_file(&self, out: &File, range: Range<u64>) -> host_pager::Result<()> {
        self.write_to(out, range, Cancel::OnShutdown)
    }

    fn describe(&self) -> String {
        format!("snapshot {}", self.url)
    }

    fn shut_down(&self) {
        self.fetcher.shut_down();
    }

    fn known_hash(&self, range: Range<u64>) -> Option<[u8; 32]> {
        let i = (range.start / CHUNK_SIZE) as usize;
        let whole = i < self.chunks.len() && self.chunk_range(i) == range;
        whole.then(|| self.chunks[i].map(|h| h.0)).flatten()
    }
}

/// VMs of one process restored from one chunk source ([`crate::restore_url_clones`]): each
/// gets a lease, and a VM's shutdown ends the fetcher's waits only once every VM that holds
/// a lease has shut down (the others are still paging from it).
pub struct SourceUsers {
    source: Arc<ChunkSource>,
    live: Arc<AtomicUsize>,
}

impl SourceUsers {
    /// `n` VMs will use `source`.
    pub fn new(source: Arc<ChunkSource>, n: usize) -> SourceUsers {
        let live = Arc::new(AtomicUsize::new(n.max(1)));
        SourceUsers { source, live }
    }

    /// One VM's page source.
    pub fn lease(&self) -> Arc<dyn PageSource> {
        Arc::new(Lease {
            source: self.source.clone(),
            live: self.live.clone(),
            done: AtomicBool::new(false),
        })
    }
}

/// One VM's use of a shared [`ChunkSource`]: everything but `shut_down` passes through.
/// A lease dropped without a shutdown (a VM that failed to build) is released too.
struct Lease {
    source: Arc<ChunkSource>,
    live: Arc<AtomicUsize>,
    done: AtomicBool,
}

impl PageSource for Lease {
    fn fill(
        &self,
        aux: &Aux<'_>,
        aux_offset: u64,
        ram_offset: u64,
        len: u64,
    ) -> host_pager::Result<()> {
        let cancel = Cancel::OnShutdownOr(&self.done);
        self.source
            .fill_with(aux, aux_offset, ram_offset, len, cancel)
    }

    fn data_runs(&self) -> host_pager::Result<Vec<Range<u64>>> {
        self.source.data_runs()
    }

    fn copy_to(&self, out: &File, range: Range<u64>) -> host_pager::Result<()> {
        self.source.copy_to(out, range)
    }

    fn fill_file(&self, out: &File, range: Range<u64>) -> host_pager::Result<()> {
        self.source
            .write_to(out, range, Cancel::OnShutdownOr(&self.done))
    }

    fn describe(&self) -> String {
        self.source.describe()
    }

    fn shut_down(&self) {
        self.release();
    }

    fn known_hash(&self, range: Range<u64>) -> Option<[u8; 32]> {
        self.source.known_hash(range)
    }
}

impl Lease {
    /// This VM is done with the source; the last one out shuts the fetcher's waits down.
    fn release(&self) {
        if !self.done.swap(true, SeqCst) && self.live.fetch_sub(1, SeqCst) == 1 {
            self.source.shut_down();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}
