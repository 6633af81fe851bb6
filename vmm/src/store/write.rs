//! Writing a chunked snapshot: RAM cut into chunks, each hashed, zero chunks skipped, the
//! others uploaded unless the store has them (dedupe), 16 at a time; the manifest last.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use kvmpager::abi::PAGE_SIZE;
use serde::Serialize;

use super::manifest::chunk_len;
use super::{CHUNK_SIZE, ChunkStore, Hash, Manifest, SnapshotUrl};
use crate::snapshot::{self, Meta, SnapshotSource, Written, subtract};

/// Chunks uploaded at once.
const UPLOAD_CONCURRENCY: usize = 16;

/// What writing a chunked snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UploadStats {
    /// The snapshot URL.
    pub url: String,
    /// Chunks of RAM.
    pub chunks: u64,
    /// All-zero chunks (not stored).
    pub zero_chunks: u64,
    /// Chunks uploaded (the store did not have them).
    pub new_chunks: u64,
    /// Chunks the store already had (dedupe).
    pub reused_chunks: u64,
    /// Bytes uploaded (new chunks and the manifest).
    pub bytes_uploaded: u64,
    /// Manifest size.
    pub manifest_bytes: u64,
    /// Nanoseconds the whole snapshot took.
    pub elapsed_ns: u64,
}

impl UploadStats {
    /// New chunks as a percentage of non-zero chunks.
    pub fn new_percent(&self) -> f64 {
        let stored = self.new_chunks + self.reused_chunks;
        if stored == 0 {
            0.0
        } else {
            100.0 * self.new_chunks as f64 / stored as f64
        }
    }
}

fn vm_err(e: impl std::fmt::Display) -> snapshot::Error {
    snapshot::Error::Vm(e.to_string())
}

/// Reads RAM chunk by chunk from a paused VM.
struct RamReader<'a> {
    src: &'a SnapshotSource<'a>,
    /// Present page runs of the RAM VMO (page numbers).
    present: Vec<Range<u64>>,
    /// Byte runs the page source holds data for, minus present pages.
    from_source: Vec<Range<u64>>,
    /// An unlinked scratch file the page source copies into.
    scratch: File,
}

impl<'a> RamReader<'a> {
    fn new(src: &'a SnapshotSource<'a>) -> snapshot::Result<Self> {
        let present = src.ram.present_runs();
        let mut from_source = Vec::new();
        for run in src.pages.data_runs().map_err(vm_err)? {
            from_source.extend(subtract(run, &present));
        }
        static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("kvmpager-upload-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let scratch = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| vm_err(format!("{}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        Ok(RamReader {
            src,
            present,
            from_source,
            scratch,
        })
    }

    /// Chunk `r`'s hash without its bytes, when the guest touched none of it and the page
    /// source knows the hash (a chunk of the snapshot the VM was restored from).
    fn known(&self, r: &Range<u64>) -> Option<Hash> {
        let overlaps = |p: &Range<u64>| p.start * PAGE_SIZE < r.end && r.start < p.end * PAGE_SIZE;
        if self.present.iter().any(overlaps) {
            return None;
        }
        self.src.pages.known_hash(r.clone()).map(Hash)
    }

    /// Chunk `r`'s bytes, or `None` when they are all zero.
    fn chunk(&self, r: Range<u64>) -> snapshot::Result<Option<Vec<u8>>> {
        let overlaps = |a: &Range<u64>| a.start < r.end && r.start < a.end;
        let present: Vec<Range<u64>> = self
            .present
            .iter()
            .map(|p| p.start * PAGE_SIZE..p.end * PAGE_SIZE)
            .filter(overlaps)
            .collect();
        let source: Vec<&Range<u64>> = self.from_source.iter().filter(|a| overlaps(a)).collect();
        if present.is_empty() && source.is_empty() {
            return Ok(None);
        }
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        for s in source {
            let g = s.start.max(r.start)..s.end.min(r.end);
            self.src
                .pages
                .copy_to(&self.scratch, g.clone())
                .map_err(vm_err)?;
            let dst = &mut buf[(g.start - r.start) as usize..(g.end - r.start) as usize];
            self.scratch.read_exact_at(dst, g.start).map_err(vm_err)?;
        }
        for p in present {
            let g = p.start.max(r.start)..p.end.min(r.end);
            let dst = &mut buf[(g.start - r.start) as usize..(g.end - r.start) as usize];
            self.src
                .ram
                .peek(g.start, dst)
                .map_err(|s| vm_err(format!("reading RAM at {:#x}: {s}", g.start)))?;
        }
        Ok(buf.iter().any(|&b| b != 0).then_some(buf))
    }
}

/// Writes a chunked snapshot of `src` to `url` with `working_set` (page numbers, first-touch
/// order) as its prefetch list.
pub fn write_snapshot(
    url: &str,
    src: &SnapshotSource<'_>,
    working_set: Vec<u64>,
) -> snapshot::Result<Written> {
    let t0 = Instant::now();
    let url = SnapshotUrl::parse(url).map_err(vm_err)?;
    let store = ChunkStore::new(url.store.clone());
    let rt = super::runtime("kvmpager-upload", 2).map_err(vm_err)?;
    let ram_size = src.ram.size();
    let n = ram_size.div_ceil(CHUNK_SIZE) as usize;
    let reader = RamReader::new(src)?;
    let mut stats = UploadStats {
        url: url.url(),
        chunks: n as u64,
        ..Default::default()
    };
    let mut hashes: Vec<Option<Hash>> = Vec::with_capacity(n);
    let mut batch = Vec::new();
    let mut progress = Progress::new(ram_size);
    for i in 0..n {
        let start = i as u64 * CHUNK_SIZE;
        let r = start..start + chunk_len(ram_size, CHUNK_SIZE, i);
        let item = match reader.known(&r) {
            Some(h) => Pending { h, bytes: None, r },
            None => match reader.chunk(r.clone())? {
                None => {
                    stats.zero_chunks += 1;
                    hashes.push(None);
                    continue;
                }
                Some(b) => Pending {
                    h: Hash::of(&b),
                    bytes: Some(b.into()),
                    r,
                },
            },
        };
        hashes.push(Some(item.h));
        batch.push(item);
        if batch.len() == UPLOAD_CONCURRENCY {
            upload(&rt, &store, &reader, std::mem::take(&mut batch), &mut stats)?;
        }
        progress.at(start);
    }
    upload(&rt, &store, &reader, batch, &mut stats)?;
    let data = (0..n)
        .filter(|&i| hashes[i].is_some())
        .map(|i| chunk_len(ram_size, CHUNK_SIZE, i))
        .sum();
    let cpus = src.cpus.clone();
    let meta = Meta::sealed(ram_size, cpus, src.clock_ns, data, src.cpus.len() as u32);
    let manifest = Manifest::new(&url.name, &meta, &hashes, working_set);
    let text = manifest.encode();
    stats.manifest_bytes = text.len() as u64;
    stats.bytes_uploaded += text.len() as u64;
    rt.block_on(store.put(&url.manifest_rel(), text.into()))
        .map_err(vm_err)?;
    progress.done();
    stats.elapsed_ns = t0.elapsed().as_nanos() as u64;
    rt.shutdown_background();
    Ok(Written {
        dir: url.url().into(),
        ram_data_bytes: data,
        from_source_bytes: 0,
        upload: Some(stats),
    })
}

/// BLAKE3 of all of `src`'s RAM bytes, hex.
pub fn ram_blake3(src: &SnapshotSource<'_>) -> snapshot::Result<String> {
    let reader = RamReader::new(src)?;
    let ram_size = src.ram.size();
    let zeros = vec![0u8; CHUNK_SIZE as usize];
    let mut h = blake3::Hasher::new();
    for i in 0..ram_size.div_ceil(CHUNK_SIZE) as usize {
        let start = i as u64 * CHUNK_SIZE;
        let len = chunk_len(ram_size, CHUNK_SIZE, i);
        match reader.chunk(start..start + len)? {
            Some(b) => h.update(&b),
            None => h.update(&zeros[..len as usize]),
        };
    }
    Ok(h.finalize().to_hex().to_string())
}

/// A chunk to store: its hash, and its bytes unless they were not read (a known hash).
struct Pending {
    h: Hash,
    bytes: Option<bytes::Bytes>,
    r: Range<u64>,
}

/// Uploads a batch of chunks concurrently (each skipped if the store has it). Chunks known
/// only by hash are looked for first (HEAD) and read only if the store lacks them.
fn upload(
    rt: &tokio::runtime::Runtime,
    store: &ChunkStore,
    reader: &RamReader<'_>,
    batch: Vec<Pending>,
    stats: &mut UploadStats,
) -> snapshot::Result<()> {
    let (known, mut read): (Vec<Pending>, Vec<Pending>) =
        batch.into_iter().partition(|p| p.bytes.is_none());
    let looks = known.iter().map(|p| store.has(&p.h, p.r.end - p.r.start));
    let found = rt.block_on(futures::future::join_all(looks));
    for (p, has) in known.into_iter().zip(found) {
        if has.map_err(vm_err)? {
            stats.reused_chunks += 1;
            continue;
        }
        let b = reader
            .chunk(p.r.clone())?
            .ok_or_else(|| vm_err(format!("chunk at {:#x} read back as zeros", p.r.start)))?;
        if Hash::of(&b) != p.h {
            return Err(vm_err(format!(
                "chunk at {:#x} does not match its hash",
                p.r.start
            )));
        }
        read.push(Pending {
            bytes: Some(b.into()),
            ..p
        });
    }
    let batch = read.into_iter().filter_map(|p| Some((p.h, p.bytes?)));
    let futs = batch.map(|(h, b)| {
        let len = b.len() as u64;
        async move { store.put_if_absent(&h, b).await.map(|new| (new, len)) }
    });
    for r in rt.block_on(futures::future::join_all(futs)) {
        match r.map_err(vm_err)? {
            (true, len) => {
                stats.new_chunks += 1;
                stats.bytes_uploaded += len;
            }
            (false, _) => stats.reused_chunks += 1,
        }
    }
    Ok(())
}

/// A `\r`-updated progress line for large uploads.
struct Progress {
    total: u64,
    last: Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            last: Instant::now(),
        }
    }

    fn at(&mut self, done: u64) {
        if self.total >= 256 << 20 && self.last.elapsed() >= Duration::from_millis(500) {
            eprint!("\rupload: {} / {} MiB", done >> 20, self.total >> 20);
            self.last = Instant::now();
        }
    }

    fn done(&self) {
        if self.total >= 256 << 20 {
            eprintln!("\rupload: {} / {} MiB", self.total >> 20, self.total >> 20);
        }
    }
}
