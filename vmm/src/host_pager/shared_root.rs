//! The shared root of a snapshot: one host-wide copy of its RAM that every `--share` restore
//! of it maps copy-on-write, filled lazily by whichever VM touches a page first.
//!
//! ```text
//! $KVMPAGER_SHARE_DIR (default /dev/shm/kvmpager, mode 0700)
//!   <key>.root       [0, ram)            RAM bytes: the source's data pages once filled;
//!                                        holes stay holes (never written)
//!                    [ram, ram + state)  one byte per RAM page: 1 = filled (set after the
//!                                        page's bytes are written), 0 = not yet
//!                    last page           header: magic, version, key, RAM size
//! ```
//!
//! `<key>` names the snapshot's contents ([`RootKey`]): for a snapshot directory, the FNV-1a
//! of the `meta.json` checksum, the RAM size, and `ram.img`'s length, modification time,
//! device and inode; for a snapshot URL, the first 8 bytes of a BLAKE3 over the RAM size,
//! the chunk size and the manifest's chunk list (every chunk's hash, or "zero"): equal keys
//! mean equal RAM, wherever the snapshot is stored. A file whose size or header does not
//! match is never used: it is replaced (VMs still mapping the old one keep it).
//!
//! Filling: a VM about to supply a range makes sure every page of it that holds data in its
//! [`PageSource`] (`data_runs`) is filled — it writes the pages whose state byte is 0 itself
//! ([`PageSource::fill_file`]: `pread` from `ram.img`, or verified chunks from a snapshot
//! URL), then sets their bytes. A source that fails (a chunk that cannot be fetched or does
//! not verify) fails the fill before any state byte is set, and writes nothing but verified
//! bytes. Racing fillers write identical bytes, so "fill it yourself, then map it" is always
//! safe, and no VM maps a page before some VM finished writing it. VMs map the root through a
//! read-only descriptor: their writes copy pages and never reach the file.
//!
//! Lifetime: the root outlives the VMs (a later clone finds it filled), like the page cache;
//! `kvmpager unshare DIR|URL` (or removing the file) drops it, and it is gone at reboot (tmpfs).
//! Trust: every process of the user that owns the directory may write the root; a process of
//! another user cannot open it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kvmpager::abi::PAGE_SIZE;

use super::{Error, PageSource, Result};
use crate::host_pager::ImageSource;
use crate::snapshot::{Snapshot, fnv1a};
use crate::sync::lock;

/// The name of a snapshot's root: equal keys mean equal RAM contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootKey(pub u64);

impl RootKey {
    /// The key of snapshot directory `snap`: its metadata checksum, RAM size and `ram.img`'s
    /// identity.
    pub fn of_dir(snap: &Snapshot) -> Result<RootKey> {
        identity(snap).map(RootKey)
    }

    /// The key of a chunked snapshot (a snapshot URL): its RAM size, chunk size and chunk
    /// list (each chunk's BLAKE3, or none for an all-zero chunk) — exactly what its RAM holds,
    /// so copies of one snapshot in different stores share a root, and snapshots whose RAM
    /// differs never do.
    pub fn of_chunks(
        ram: u64,
        chunk_size: u64,
        chunks: impl IntoIterator<Item = Option<[u8; 32]>>,
    ) -> RootKey {
        let mut h = blake3::Hasher::new();
        h.update(b"kvmpager-root-chunks-v1\0");
        h.update(&ram.to_le_bytes());
        h.update(&chunk_size.to_le_bytes());
        for c in chunks {
            match c {
                Some(d) => h.update(&[1]).update(&d),
                None => h.update(&[0]),
            };
        }
        let d = h.finalize();
        RootKey(u64::from_le_bytes(
            d.as_bytes()[..8].try_into().expect("8 bytes"),
        ))
    }

    /// The root file of this key (whether or not it exists).
    pub fn path(self) -> PathBuf {
        share_dir().join(format!("{:016x}.root", self.0))
    }
}

/// Where roots live unless `KVMPAGER_SHARE_DIR` says otherwise.
pub const DEFAULT_SHARE_DIR: &str = "/dev/shm/kvmpager";
/// First word of a root's header page.
const MAGIC: u64 = u64::from_le_bytes(*b"KVMPROOT");
/// Header version.
const VERSION: u64 = 1;
/// State byte of a filled page.
const FILLED: u8 = 1;
/// Largest piece read and written at once while filling (and the block a fill lock guards).
const FILL_CHUNK: u64 = 2 << 20;
/// Fill locks (a block's is `block % FILL_STRIPES`).
const FILL_STRIPES: usize = 64;

/// The directory roots live in.
pub fn share_dir() -> PathBuf {
    std::env::var_os("KVMPAGER_SHARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SHARE_DIR))
}

/// The root file of `snap` (whether or not it exists).
pub fn root_path(snap: &Snapshot) -> Result<PathBuf> {
    Ok(RootKey::of_dir(snap)?.path())
}

/// The key of a snapshot: its metadata checksum, RAM size and `ram.img`'s identity.
fn identity(snap: &Snapshot) -> Result<u64> {
    let img = snap.ram_path();
    let m = fs::metadata(&img).map_err(|e| io_error(&img, e))?;
    let id = format!(
        "{}:{}:{}:{}:{}:{}:{}",
        snap.meta.checksum,
        snap.meta.ram_size,
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.dev(),
        m.ino()
    );
    Ok(fnv1a(id.as_bytes()))
}

fn io_error(path: &Path, error: io::Error) -> Error {
    Error::Io {
        what: path.display().to_string(),
        error,
    }
}

/// Bytes of the state area for `ram` bytes of RAM (page rounded).
fn state_len(ram: u64) -> u64 {
    (ram / PAGE_SIZE).next_multiple_of(PAGE_SIZE)
}

/// The header page of a root.
fn header(key: u64, ram: u64) -> Vec<u8> {
    let mut h = vec![0u8; PAGE_SIZE as usize];
    for (i, w) in [MAGIC, VERSION, key, ram].into_iter().enumerate() {
        h[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    h
}

/// A snapshot's shared root, opened (or created) by one VM.
pub struct SharedRoot {
    file: File,
    path: PathBuf,
    ram: u64,
    /// Where filled pages' bytes come from.
    source: Arc<dyn PageSource>,
    /// The source's data extents (page aligned, sorted): the only pages ever filled.
    data: Vec<Range<u64>>,
    /// The state bytes, `MAP_SHARED` (one per RAM page).
    state: NonNull<AtomicU8>,
    /// Bytes this VM wrote into the root.
    filled_bytes: AtomicU64,
    /// One filler per block at a time in this process ([`SharedRoot::fill`]).
    fillers: Vec<Mutex<()>>,
}

// SAFETY: the state pointer is a MAP_SHARED mapping owned by this object and only accessed
// through atomics; the files are thread-safe (positional I/O).
unsafe impl Send for SharedRoot {}
// SAFETY: as above: every access to the mapping is atomic.
unsafe impl Sync for SharedRoot {}

impl SharedRoot {
    /// Opens the root of `snap`, creating it (all holes) if there is none or the one there
    /// does not match.
    pub fn open(snap: &Snapshot) -> Result<SharedRoot> {
        let ram = snap.meta.ram_size;
        let image = ImageSource::open(&snap.ram_path(), ram)?;
        Self::open_source(RootKey::of_dir(snap)?, ram, Arc::new(image))
    }

    /// Opens (or creates) the root named `key` of `ram` bytes of RAM, filled from `source`.
    /// `key` must name `source`'s contents: roots of equal keys are taken to hold equal RAM.
    pub fn open_source(key: RootKey, ram: u64, source: Arc<dyn PageSource>) -> Result<SharedRoot> {
        let data = source
            .data_runs()?
            .into_iter()
            .map(|r| r.start..r.end.min(ram))
            .filter(|r| r.start < r.end)
            .collect();
        let key = key.0;
        let dir = share_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_error(&dir, e))?;
        check_dir(&dir)?;
        check_tmpfs(&dir)?;
        let path = dir.join(format!("{key:016x}.root"));
        let file = match open_existing(&path, key, ram) {
            Some(f) => f,
            None => create(&dir, &path, key, ram)?,
        };
        let state = map_state(&file, ram).map_err(|e| io_error(&path, e))?;
        Ok(SharedRoot {
            file,
            path,
            ram,
            source,
            data,
            state,
            filled_bytes: AtomicU64::new(0),
            fillers: (0..FILL_STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// The root file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// RAM size in bytes.
    pub fn ram_size(&self) -> u64 {
        self.ram
    }

    /// A read-only descriptor of the root, for a VM to map `MAP_PRIVATE`.
    pub fn read_only(&self) -> Result<File> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.file);
        File::open(format!("/proc/self/fd/{fd}")).map_err(|e| io_error(&self.path, e))
    }

    /// Bytes this VM wrote into the root (pages it was first to touch).
    pub fn filled_bytes(&self) -> u64 {
        self.filled_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of RAM held by the root (its filled pages): the data extents of its RAM part.
    pub fn resident_bytes(&self) -> u64 {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.file);
        let seek = |at: u64, whence| {
            // SAFETY: lseek on our own descriptor; no memory is passed (positional I/O
            // elsewhere ignores the file offset).
            let r = unsafe { libc::lseek(fd, at as libc::off_t, whence) };
            (r >= 0).then_some(r as u64)
        };
        let (mut at, mut total) = (0, 0);
        while at < self.ram {
            let Some(data) = seek(at, libc::SEEK_DATA).filter(|&d| d < self.ram) else {
                break;
            };
            let hole = seek(data, libc::SEEK_HOLE)
                .unwrap_or(self.ram)
                .min(self.ram);
            total += hole - data;
            at = hole.max(data + PAGE_SIZE);
        }
        total
    }

    fn state(&self, page: u64) -> &AtomicU8 {
        debug_assert!(page < self.ram / PAGE_SIZE);
        // SAFETY: `page` is a RAM page (callers clamp ranges to RAM), so the byte lies inside
        // the state mapping, which lives as long as self.
        unsafe { &*self.state.as_ptr().add(page as usize) }
    }

    /// Whether every data page of `range` (page aligned) is filled already.
    pub fn is_filled(&self, range: Range<u64>) -> bool {
        let range = range.start..range.end.min(self.ram);
        self.pieces(range).into_iter().all(|(piece, data)| {
            !data
                || (piece.start / PAGE_SIZE..piece.end / PAGE_SIZE)
                    .all(|p| self.state(p).load(Ordering::Acquire) == FILLED)
        })
    }

    /// `range` split into runs that hold data in the source (`true`) and holes (`false`).
    pub fn pieces(&self, range: Range<u64>) -> Vec<(Range<u64>, bool)> {
        let mut out = Vec::new();
        let mut at = range.start;
        let first = self.data.partition_point(|d| d.end <= range.start);
        for d in &self.data[first..] {
            if at >= range.end || d.start >= range.end {
                break;
            }
            if d.start > at {
                out.push((at..d.start, false));
                at = d.start;
            }
            let end = d.end.min(range.end);
            if end > at {
                out.push((at..end, true));
                at = end;
            }
        }
        if at < range.end {
            out.push((at..range.end, false));
        }
        out
    }

    /// Makes sure every page of `range` (page aligned, inside RAM) that holds data in the
    /// source is filled in the root; returns the bytes this call wrote.
    pub fn fill(&self, range: Range<u64>) -> Result<u64> {
        let range = range.start..range.end.min(self.ram);
        let mut wrote = 0;
        let first = self.data.partition_point(|d| d.end <= range.start);
        for d in &self.data[first..] {
            if d.start >= range.end {
                break;
            }
            let (start, end) = (d.start.max(range.start), d.end.min(range.end));
            wrote += self.fill_data(start / PAGE_SIZE..end / PAGE_SIZE)?;
        }
        self.filled_bytes.fetch_add(wrote, Ordering::Relaxed);
        Ok(wrote)
    }

    fn all_filled(&self, pages: Range<u64>) -> bool {
        pages
            .into_iter()
            .all(|p| self.state(p).load(Ordering::Acquire) == FILLED)
    }

    /// Fills the unfilled pages of `pages` (all data in the source), a [`FILL_CHUNK`]-aligned
    /// block at a time. The VMs of this process fill a block one at a time (a lock stripe per
    /// block): the others wait, then find it filled, so a slow source (a fetched chunk) is
    /// read and written once, not once per VM that wanted it meanwhile.
    fn fill_data(&self, pages: Range<u64>) -> Result<u64> {
        let mut wrote = 0;
        let max = FILL_CHUNK / PAGE_SIZE;
        let mut block = pages.start / max * max;
        while block < pages.end {
            let sub = pages.start.max(block)..pages.end.min(block + max);
            if !self.all_filled(sub.clone()) {
                let _one = lock(&self.fillers[(block / max) as usize % FILL_STRIPES]);
                wrote += self.fill_unfilled(sub)?;
            }
            block += max;
        }
        Ok(wrote)
    }

    /// Copies the unfilled runs of `pages` (inside one block) in.
    fn fill_unfilled(&self, pages: Range<u64>) -> Result<u64> {
        let mut wrote = 0;
        let mut p = pages.start;
        while p < pages.end {
            if self.state(p).load(Ordering::Acquire) == FILLED {
                p += 1;
                continue;
            }
            let start = p;
            while p < pages.end && self.state(p).load(Ordering::Acquire) != FILLED {
                p += 1;
            }
            wrote += self.copy_in(start..p)?;
        }
        Ok(wrote)
    }

    /// Copies pages `pages` from the source into the root, then marks them filled (only if
    /// the whole copy succeeded: a failed source leaves them unfilled).
    fn copy_in(&self, pages: Range<u64>) -> Result<u64> {
        let range = pages.start * PAGE_SIZE..pages.end * PAGE_SIZE;
        let len = range.end - range.start;
        self.source.fill_file(&self.file, range)?;
        for p in pages {
            self.state(p).store(FILLED, Ordering::Release);
        }
        Ok(len)
    }

    /// Writes RAM `range` to `out` at the same offsets: the pages the root holds from the
    /// root, the rest with `other` (the root's source, or a lease on it) — so a snapshot or
    /// RAM hash of a shared VM fetches nothing the root has. It fills nothing: the root holds
    /// only what guests touched.
    pub fn copy_to(&self, out: &File, range: Range<u64>, other: &dyn PageSource) -> Result<()> {
        let end = range.end.min(self.ram);
        let mut at = range.start;
        while at < end {
            let filled = self.page_filled(at);
            let mut next = (at / PAGE_SIZE + 1) * PAGE_SIZE;
            while next < end && self.page_filled(next) == filled {
                next += PAGE_SIZE;
            }
            let run = at..next.min(end);
            if filled {
                self.copy_out(out, run)?;
            } else {
                other.copy_to(out, run)?;
            }
            at = next;
        }
        Ok(())
    }

    fn page_filled(&self, offset: u64) -> bool {
        self.state(offset / PAGE_SIZE).load(Ordering::Acquire) == FILLED
    }

    /// Copies root bytes `range` (filled pages) to `out` at the same offsets.
    fn copy_out(&self, out: &File, range: Range<u64>) -> Result<()> {
        let mut buf = vec![0u8; (range.end - range.start).min(FILL_CHUNK) as usize];
        let mut at = range.start;
        while at < range.end {
            let n = ((range.end - at) as usize).min(buf.len());
            self.file
                .read_exact_at(&mut buf[..n], at)
                .map_err(|e| io_error(&self.path, e))?;
            out.write_all_at(&buf[..n], at).map_err(|error| Error::Io {
                what: "a copy of a snapshot's RAM".into(),
                error,
            })?;
            at += n as u64;
        }
        Ok(())
    }
}

/// A shared VM's page source: copies read the pages the root holds from the root
/// ([`SharedRoot::copy_to`]), so its snapshots and RAM hashes fetch nothing the root has;
/// everything else passes through to the snapshot's source.
pub struct RootedSource {
    root: Arc<SharedRoot>,
    inner: Arc<dyn PageSource>,
}

impl RootedSource {
    /// `inner` (the source `root` is filled from, or a lease on it) read through `root`.
    pub fn new(root: Arc<SharedRoot>, inner: Arc<dyn PageSource>) -> Self {
        RootedSource { root, inner }
    }
}

impl PageSource for RootedSource {
    fn fill(&self, aux: &super::Aux<'_>, aux_offset: u64, ram_offset: u64, len: u64) -> Result<()> {
        self.inner.fill(aux, aux_offset, ram_offset, len)
    }

    fn data_runs(&self) -> Result<Vec<Range<u64>>> {
        self.inner.data_runs()
    }

    fn copy_to(&self, out: &File, range: Range<u64>) -> Result<()> {
        self.root.copy_to(out, range, self.inner.as_ref())
    }

    fn fill_file(&self, out: &File, range: Range<u64>) -> Result<()> {
        self.inner.fill_file(out, range)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn shut_down(&self) {
        self.inner.shut_down();
    }

    fn known_hash(&self, range: Range<u64>) -> Option<[u8; 32]> {
        self.inner.known_hash(range)
    }
}

impl Drop for SharedRoot {
    fn drop(&mut self) {
        // SAFETY: the state mapping was made by map_state with this length and nothing else
        // refers to it once self is gone.
        unsafe { libc::munmap(self.state.as_ptr().cast(), state_len(self.ram) as usize) };
    }
}

/// The share directory must be a real directory of this user that nobody else can write
/// (roots are trusted by whoever maps them).
fn check_dir(dir: &Path) -> Result<()> {
    let m = fs::symlink_metadata(dir).map_err(|e| io_error(dir, e))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let reason = if !m.is_dir() {
        "not a directory (a symbolic link is refused)"
    } else if m.uid() != me {
        "owned by another user"
    } else if m.mode() & 0o022 != 0 {
        "writable by other users"
    } else {
        return Ok(());
    };
    Err(Error::Share {
        path: dir.to_path_buf(),
        reason: format!("not usable as the share directory: {reason}"),
    })
}

/// Roots must live on tmpfs (shmem): userfaultfd minor faults work on shmem only.
fn check_tmpfs(dir: &Path) -> Result<()> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io_error(dir, io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: statfs is plain data; all zero bits is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io_error(dir, io::Error::last_os_error()));
    }
    if st.f_type as i64 != TMPFS_MAGIC {
        return Err(Error::Share {
            path: dir.to_path_buf(),
            reason: "shared roots must live on tmpfs (set KVMPAGER_SHARE_DIR to a directory \
                     under /dev/shm)"
                .into(),
        });
    }
    Ok(())
}

/// Opens an existing root at `path` if its size and header match; `None` otherwise.
fn open_existing(path: &Path, key: u64, ram: u64) -> Option<File> {
    let file = OpenOptions::new().read(true).write(true).open(path).ok()?;
    let meta = file.metadata().ok()?;
    let total = ram + state_len(ram) + PAGE_SIZE;
    let mut head = vec![0u8; PAGE_SIZE as usize];
    let good = meta.is_file()
        && meta.len() == total
        && file.read_exact_at(&mut head, ram + state_len(ram)).is_ok()
        && head == header(key, ram);
    if !good {
        log::warn!(
            "shared root {} does not match its snapshot; replacing it",
            path.display()
        );
    }
    good.then_some(file)
}

/// Creates a root under a temporary name and links it into place; if another process got
/// there first, opens theirs instead.
fn create(dir: &Path, path: &Path, key: u64, ram: u64) -> Result<File> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{key:016x}.tmp-{}-{seq}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, e))?;
    let setup = file
        .set_len(ram + state_len(ram) + PAGE_SIZE)
        .and_then(|_| file.write_all_at(&header(key, ram), ram + state_len(ram)));
    let linked = setup.and_then(|_| match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open_existing(path, key, ram) {
            Some(_) => Ok(false),
            // A stale or foreign file: replace it (its users keep the old inode).
            None => fs::rename(&tmp, path).map(|_| true),
        },
        other => other.map(|_| true),
    });
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(true) => Ok(file),
        Ok(false) => open_existing(path, key, ram).ok_or_else(|| Error::Share {
            path: path.to_path_buf(),
            reason: "the shared root changed while it was opened".into(),
        }),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Maps the state bytes of a root `MAP_SHARED`.
fn map_state(file: &File, ram: u64) -> io::Result<NonNull<AtomicU8>> {
    let len = state_len(ram) as usize;
    let off = libc::off_t::try_from(ram).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a new shared mapping of the file's state area at a kernel-chosen address; it
    // aliases no Rust object, and is only accessed through atomics.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(file),
            off,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Removes the shared root of the snapshot in `dir`; whether there was one. VMs mapping it
/// keep their copy until they exit.
pub fn remove(snap: &Snapshot) -> Result<bool> {
    remove_key(RootKey::of_dir(snap)?)
}

/// Removes the shared root named `key`; whether there was one.
pub fn remove_key(key: RootKey) -> Result<bool> {
    let path = key.path();
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_root_keys_name_ram_contents() {
        let (a, b) = (Some([1u8; 32]), Some([2u8; 32]));
        let key = |ram, cs: &[Option<[u8; 32]>]| RootKey::of_chunks(ram, 512 << 10, cs.to_vec());
        assert_eq!(key(1 << 20, &[a, None]), key(1 << 20, &[a, None]));
        assert_ne!(key(1 << 20, &[a, None]), key(1 << 20, &[b, None]));
        assert_ne!(key(1 << 20, &[a, None]), key(1 << 20, &[None, a]));
        assert_ne!(key(1 << 20, &[a, None]), key(2 << 20, &[a, None]));
        assert_ne!(key(1 << 20, &[a]), key(1 << 20, &[a, None]));
        assert_ne!(
            RootKey::of_chunks(1 << 20, 512 << 10, [a]),
            RootKey::of_chunks(1 << 20, 1 << 20, [a])
        );
    }
}
