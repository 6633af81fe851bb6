//! Host anonymous memory: the backing store of VMOs and of guest RAM.
//!
//! A [`HostMemory`] is one private anonymous mapping (`MAP_PRIVATE | MAP_ANONYMOUS |
//! MAP_NORESERVE`), so it can be the source or destination of userfaultfd `UFFDIO_MOVE`
//! (see [`crate::uffd`]) and can back a KVM memslot. Regions of 2 MiB or more start on a
//! 2 MiB boundary so that transparent huge pages can map them, and so that a huge page can be
//! moved whole between two such regions.
//!
//! Offsets and lengths are bytes from the start of the region. Range operations
//! ([`HostMemory::populate`], [`HostMemory::discard`], [`HostMemory::resident`]) widen the
//! range outward to page boundaries, like Zircon's VMO commit and decommit. Every operation
//! checks bounds (with overflow checks) and returns [`HostMemError`] instead of panicking.
//!
//! A second kind, [`HostMemory::map_file_private`], maps a shared (shmem) file
//! `MAP_PRIVATE`: clean pages are the file's page-cache pages, shared with every other
//! mapping of the file; a write copies the page into a private anonymous one and never
//! reaches the file. Such memory is registered for minor faults and filled with
//! `UFFDIO_CONTINUE` (see `crate::vmo::Vmo::supply_shared`); `UFFDIO_MOVE` refuses it.
//!
//! The page size is [`abi::PAGE_SIZE`] (4 KiB), which is also the x86-64 host page size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::ptr::{self, NonNull};

use crate::abi::{self, HUGE_PAGE_SIZE, PAGE_SIZE};

/// Errors from [`HostMemory`] operations.
#[derive(thiserror::Error, Debug)]
pub enum HostMemError {
    /// The requested length is zero, not a multiple of the page size, or too large.
    #[error("invalid host memory length {0:#x} (must be a non-zero multiple of {PAGE_SIZE:#x})")]
    InvalidLength(u64),
    /// An access fell outside the region (or its end overflowed).
    #[error("range [{offset:#x}, +{len:#x}) is outside host memory of {size:#x} bytes")]
    OutOfRange {
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// Size of the region.
        size: u64,
    },
    /// `mmap` or the alignment trim (`munmap`) failed.
    #[error("mmap of {len:#x} bytes failed: {source}")]
    Mmap {
        /// Requested length.
        len: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `madvise` failed.
    #[error("madvise({advice}) failed: {source}")]
    Madvise {
        /// The advice name, e.g. `MADV_POPULATE_WRITE`.
        advice: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `mincore` failed.
    #[error("mincore failed: {0}")]
    Mincore(#[source] io::Error),
    /// `/proc/self/pagemap` could not be opened or read.
    #[error("reading /proc/self/pagemap failed: {0}")]
    Pagemap(#[source] io::Error),
    /// `/proc/self/smaps` could not be read.
    #[error("reading /proc/self/smaps failed: {0}")]
    Smaps(#[source] io::Error),
    /// The page is present but pagemap hides its frame number (needs `CAP_SYS_ADMIN`).
    #[error("pagemap hides physical frame numbers (not privileged)")]
    PfnHidden,
}

/// A private host mapping (anonymous, or of a shared file); unmapped on drop.
#[derive(Debug)]
pub struct HostMemory {
    /// Start of the mapping (never null; 2 MiB aligned when `len >= 2 MiB`).
    ptr: NonNull<u8>,
    /// Length in bytes, a non-zero multiple of the page size that fits in `usize`.
    len: u64,
    /// The shared file this memory maps `MAP_PRIVATE` (file offset = region offset), if any.
    file: Option<File>,
}

/// What `/proc/self/smaps` says about a region (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionUsage {
    /// Resident pages (`Rss`).
    pub rss: u64,
    /// Private anonymous pages (`Anonymous`): for a file mapping, the pages writes copied.
    pub anonymous: u64,
    /// Resident file pages also mapped elsewhere (`Shared_Clean` + `Shared_Dirty`).
    pub shared: u64,
}

// SAFETY: HostMemory owns its mapping exclusively; the raw pointer is only an address. All
// access goes through methods that copy bytes or make syscalls, which are sound from any thread.
unsafe impl Send for HostMemory {}
// SAFETY: Shared access only copies bytes in and out of the mapping or makes syscalls on it;
// nothing hands out Rust references into the memory, so concurrent use creates no aliasing.
unsafe impl Sync for HostMemory {}

/// An `madvise` advice value and its name (for errors).
type Advice = (libc::c_int, &'static str);
/// Commit pages for writing.
const MADV_POPULATE_WRITE: Advice = (libc::MADV_POPULATE_WRITE, "MADV_POPULATE_WRITE");
/// Drop pages.
const MADV_DONTNEED: Advice = (libc::MADV_DONTNEED, "MADV_DONTNEED");
/// Allow transparent huge pages.
const MADV_HUGEPAGE: Advice = (libc::MADV_HUGEPAGE, "MADV_HUGEPAGE");
/// Forbid transparent huge pages.
const MADV_NOHUGEPAGE: Advice = (libc::MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");

/// Bit 63 of a pagemap entry: page present in RAM.
const PM_PRESENT: u64 = 1 << 63;
/// Bits 0-54 of a pagemap entry: the page frame number.
const PM_PFN_MASK: u64 = (1 << 55) - 1;

impl HostMemory {
    /// Maps `len` bytes of private anonymous memory (`PROT_READ | PROT_WRITE`,
    /// `MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE`).
    ///
    /// `len` must be a non-zero multiple of [`abi::PAGE_SIZE`]. If `len >= 2 MiB` the start is
    /// 2 MiB aligned (the mapping is over-allocated and trimmed). `huge` selects
    /// `MADV_HUGEPAGE`, otherwise `MADV_NOHUGEPAGE` is applied.
    pub fn new(len: u64, huge: bool) -> Result<Self, HostMemError> {
        let size = checked_len(len)?;
        let ptr = if len >= HUGE_PAGE_SIZE {
            map_aligned(size)?
        } else {
            map_anon(size)?
        };
        let mem = HostMemory {
            ptr,
            len,
            file: None,
        };
        mem.advise_huge(huge)?;
        Ok(mem)
    }

    /// Maps the first `len` bytes of the shared file `file` `MAP_PRIVATE` (read/write,
    /// `MAP_NORESERVE`, no huge pages: a copy-on-write granule stays 4 KiB). `file` may be
    /// opened read-only: writes through the mapping copy pages and never reach the file. The
    /// file should be at least `len` bytes (an access past its end is `SIGBUS`).
    pub fn map_file_private(file: File, len: u64) -> Result<Self, HostMemError> {
        let size = checked_len(len)?;
        let ptr = if len >= HUGE_PAGE_SIZE {
            map_aligned(size)?
        } else {
            map_anon(size)?
        };
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_NORESERVE | libc::MAP_FIXED;
        // SAFETY: MAP_FIXED replaces exactly the anonymous reservation just made for this
        // object (nothing else knows its address) with the file mapping, same length.
        let addr = unsafe {
            libc::mmap(
                ptr.as_ptr().cast(),
                size,
                prot,
                flags,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            let source = io::Error::last_os_error();
            // SAFETY: the reservation is ours and unused.
            unsafe { unmap(ptr.as_ptr(), size) };
            return Err(HostMemError::Mmap { len, source });
        }
        let mem = HostMemory {
            ptr,
            len,
            file: Some(file),
        };
        mem.advise_huge(false)?;
        Ok(mem)
    }

    /// The shared file this memory maps, if it is a file mapping.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Resident, private (copied) and shared bytes of the region, from `/proc/self/smaps`
    /// (summed over the VMAs inside it).
    pub fn usage(&self) -> Result<RegionUsage, HostMemError> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").map_err(HostMemError::Smaps)?;
        let (start, end) = (self.host_addr(), self.host_addr() + self.len);
        let mut usage = RegionUsage::default();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
            {
                inside = a >= start && b <= end;
                continue;
            }
            if !inside {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(key), Some(kib)) = (words.next(), words.next()) else {
                continue;
            };
            let bytes = kib.parse::<u64>().unwrap_or(0) * 1024;
            match key {
                "Rss:" => usage.rss += bytes,
                "Anonymous:" => usage.anonymous += bytes,
                "Shared_Clean:" | "Shared_Dirty:" => usage.shared += bytes,
                _ => {}
            }
        }
        Ok(usage)
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a region has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start address of the region as an integer (for KVM memslots and userfaultfd ranges).
    pub fn host_addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Start of the region as a raw pointer.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the region.
    ///
    /// If the region is registered with a userfaultfd and a page in the range is absent, this
    /// blocks until the page is supplied; callers (the kernel) only read present pages.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), HostMemError> {
        let start = self.check_range(offset, buf.len() as u64)?;
        // SAFETY: check_range proved [offset, offset + buf.len()) lies inside our live mapping,
        // which is readable; `buf` is a distinct Rust buffer, so the ranges do not overlap.
        unsafe {
            ptr::copy_nonoverlapping(self.ptr.as_ptr().add(start), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies `buf` into the region starting at `offset`.
    ///
    /// If the region is registered with a userfaultfd and a page in the range is absent, this
    /// blocks until the page is supplied; callers (the kernel) only write present pages.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), HostMemError> {
        let start = self.check_range(offset, buf.len() as u64)?;
        // SAFETY: check_range proved [offset, offset + buf.len()) lies inside our live mapping,
        // which is writable; `buf` is a distinct Rust buffer, so the ranges do not overlap.
        unsafe { ptr::copy_nonoverlapping(buf.as_ptr(), self.ptr.as_ptr().add(start), buf.len()) };
        Ok(())
    }

    /// Commits the pages covering `[offset, offset + len)`: `madvise(MADV_POPULATE_WRITE)`.
    ///
    /// The range is widened to page boundaries. On a userfaultfd-registered region, absent
    /// pages raise userfaults, so this blocks until they are supplied.
    pub fn populate(&self, offset: u64, len: u64) -> Result<(), HostMemError> {
        self.madvise_range(offset, len, MADV_POPULATE_WRITE)
    }

    /// Decommits the pages covering `[offset, offset + len)`: `madvise(MADV_DONTNEED)`.
    ///
    /// The range is widened to page boundaries. Afterwards the pages read as zero, or are
    /// absent (raise userfaults) if the region is userfaultfd-registered.
    pub fn discard(&self, offset: u64, len: u64) -> Result<(), HostMemError> {
        self.madvise_range(offset, len, MADV_DONTNEED)
    }

    /// Per-page residency (`mincore(2)`) of the pages covering `[offset, offset + len)`,
    /// widened to page boundaries; one entry per page. Never faults pages in.
    pub fn resident(&self, offset: u64, len: u64) -> Result<Vec<bool>, HostMemError> {
        let (start, size) = self.page_range(offset, len)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut vec = vec![0u8; size / PAGE_SIZE as usize];
        // SAFETY: [start, start + size) is a page-aligned range inside our live mapping, and
        // `vec` holds exactly one byte per page of it, as mincore requires.
        let rc =
            unsafe { libc::mincore(self.ptr.as_ptr().add(start).cast(), size, vec.as_mut_ptr()) };
        if rc != 0 {
            return Err(HostMemError::Mincore(io::Error::last_os_error()));
        }
        Ok(vec.iter().map(|b| b & 1 != 0).collect())
    }

    /// Physical frame number of the page containing `offset`, from `/proc/self/pagemap`.
    ///
    /// `Ok(None)` when the page is not present in RAM; [`HostMemError::PfnHidden`] when the
    /// kernel reports frame number 0 for a present page (the process is not privileged).
    pub fn pfn(&self, offset: u64) -> Result<Option<u64>, HostMemError> {
        self.check_range(offset, 1)?;
        let vpn = (self.host_addr() + offset) / PAGE_SIZE;
        let file = File::open("/proc/self/pagemap").map_err(HostMemError::Pagemap)?;
        let mut entry = [0u8; 8];
        file.read_exact_at(&mut entry, vpn * 8)
            .map_err(HostMemError::Pagemap)?;
        let entry = u64::from_ne_bytes(entry);
        if entry & PM_PRESENT == 0 {
            return Ok(None);
        }
        match entry & PM_PFN_MASK {
            0 => Err(HostMemError::PfnHidden),
            pfn => Ok(Some(pfn)),
        }
    }

    /// Checks `[offset, offset + len)` lies inside the region; returns `offset` as `usize`.
    fn check_range(&self, offset: u64, len: u64) -> Result<usize, HostMemError> {
        let out_of_range = || HostMemError::OutOfRange {
            offset,
            len,
            size: self.len,
        };
        match offset.checked_add(len) {
            // The region length fits in usize (checked in new), so offset does too.
            Some(end) if end <= self.len => Ok(offset as usize),
            _ => Err(out_of_range()),
        }
    }

    /// Bounds-checks `[offset, offset + len)` and widens it to page boundaries:
    /// returns (aligned start, aligned size) in bytes.
    fn page_range(&self, offset: u64, len: u64) -> Result<(usize, usize), HostMemError> {
        self.check_range(offset, len)?;
        if len == 0 {
            return Ok((0, 0));
        }
        let start = offset - offset % PAGE_SIZE;
        // end <= self.len, which is page aligned, so rounding up stays inside the region.
        let end = (offset + len).next_multiple_of(PAGE_SIZE);
        Ok((start as usize, (end - start) as usize))
    }

    /// Applies `advice` to the page-widened range; an empty range is a no-op.
    fn madvise_range(&self, offset: u64, len: u64, advice: Advice) -> Result<(), HostMemError> {
        let (start, size) = self.page_range(offset, len)?;
        if size == 0 {
            return Ok(());
        }
        self.advise(start, size, advice)
    }

    /// Applies `MADV_HUGEPAGE` or `MADV_NOHUGEPAGE` to the whole region. A kernel without
    /// transparent huge pages (EINVAL) is fine when huge pages were not wanted.
    fn advise_huge(&self, huge: bool) -> Result<(), HostMemError> {
        let size = self.len as usize;
        if huge {
            return self.advise(0, size, MADV_HUGEPAGE);
        }
        match self.advise(0, size, MADV_NOHUGEPAGE) {
            Err(HostMemError::Madvise { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// `madvise` on `[start, start + size)` of the region, a page-aligned range the caller
    /// has bounds-checked (the kernel rejects anything else with an error).
    fn advise(
        &self,
        start: usize,
        size: usize,
        (advice, name): Advice,
    ) -> Result<(), HostMemError> {
        let addr = self.ptr.as_ptr().wrapping_add(start);
        // SAFETY: madvise only acts on our own mapping (callers pass a range inside it). The
        // advice values used never invalidate Rust references: MADV_DONTNEED only zeroes pages
        // that HostMemory exposes solely through its copying accessors.
        let rc = unsafe { libc::madvise(addr.cast(), size, advice) };
        if rc != 0 {
            let source = io::Error::last_os_error();
            return Err(HostMemError::Madvise {
                advice: name,
                source,
            });
        }
        Ok(())
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe exactly the mapping this object created and owns; nothing
        // else unmaps it, and no references into it outlive self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len as usize) };
    }
}

/// A read-only view of a shared file (`MAP_SHARED`, `PROT_READ`): a data region another
/// process fills, which [`HostMemory::copy_from_view`] copies out of with `memcpy` (a `pread`
/// of shmem walks the page cache 4 KiB at a time and costs ~2.5x a `memcpy` of the bytes).
///
/// The file's bytes may change under the view at any time (the other process writes them), so
/// the view never hands out Rust references: bytes are only copied out, and a copy racing
/// with a writer gets some mix of old and new bytes, as a `pread` would. The file must not
/// shrink below the view while it lives (a page past the end would raise `SIGBUS`): give
/// other processes only files sealed with `F_SEAL_SHRINK`.
pub struct FileView {
    ptr: NonNull<u8>,
    len: u64,
}

// SAFETY: the view is a plain mapping owned by this object; moving it to another thread moves
// only the pointer.
unsafe impl Send for FileView {}
// SAFETY: shared use only copies bytes out of the mapping; no Rust references into it exist.
unsafe impl Sync for FileView {}

impl FileView {
    /// Maps the first `len` bytes of `file` (a non-zero multiple of the page size) read-only.
    pub fn map(file: &File, len: u64) -> Result<Self, HostMemError> {
        let size = checked_len(len)?;
        // SAFETY: a new shared read-only mapping at a kernel-chosen address; no existing
        // memory is touched, and the result is checked.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(file),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            let source = io::Error::last_os_error();
            return Err(HostMemError::Mmap { len, source });
        }
        let ptr = NonNull::new(addr.cast()).ok_or(HostMemError::Mmap {
            len,
            source: io::Error::from(io::ErrorKind::InvalidData),
        })?;
        Ok(FileView { ptr, len })
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a view has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for FileView {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe exactly the mapping `map` made; no reference into it exists.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len as usize) };
    }
}

impl HostMemory {
    /// Copies `view[view_offset, view_offset + len)` into the region at `offset` (`memcpy`;
    /// the destination pages fault in unless committed first).
    pub fn copy_from_view(
        &self,
        offset: u64,
        view: &FileView,
        view_offset: u64,
        len: u64,
    ) -> Result<(), HostMemError> {
        let start = self.check_range(offset, len)?;
        if view_offset
            .checked_add(len)
            .is_none_or(|end| end > view.len)
        {
            return Err(HostMemError::OutOfRange {
                offset: view_offset,
                len,
                size: view.len,
            });
        }
        // SAFETY: both ranges were checked to lie inside live mappings (the view is readable,
        // this region writable) and they are distinct mappings, so they do not overlap. The
        // source may be written concurrently by another process; no Rust reference to either
        // range exists, and the bytes copied are whatever the file holds (see `FileView`).
        unsafe {
            ptr::copy_nonoverlapping(
                view.ptr.as_ptr().add(view_offset as usize),
                self.ptr.as_ptr().add(start),
                len as usize,
            )
        };
        Ok(())
    }
}

/// Validates a region length and converts it to `usize`.
fn checked_len(len: u64) -> Result<usize, HostMemError> {
    let valid =
        len != 0 && len.is_multiple_of(PAGE_SIZE) && len <= (isize::MAX as u64) - HUGE_PAGE_SIZE;
    match usize::try_from(len) {
        Ok(size) if valid => Ok(size),
        _ => Err(HostMemError::InvalidLength(len)),
    }
}

/// `mmap`s `size` bytes of private anonymous read/write memory anywhere.
fn map_anon(size: usize) -> Result<NonNull<u8>, HostMemError> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
    let addr = unsafe { libc::mmap(ptr::null_mut(), size, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        let source = io::Error::last_os_error();
        return Err(HostMemError::Mmap {
            len: size as u64,
            source,
        });
    }
    NonNull::new(addr.cast()).ok_or_else(|| HostMemError::Mmap {
        len: size as u64,
        source: io::Error::from_raw_os_error(libc::ENOMEM),
    })
}

/// Maps `size` bytes starting on a 2 MiB boundary: over-maps by 2 MiB and unmaps the excess.
fn map_aligned(size: usize) -> Result<NonNull<u8>, HostMemError> {
    let huge = HUGE_PAGE_SIZE as usize;
    let raw = map_anon(size + huge)?;
    let base = raw.as_ptr() as usize;
    let head = base.next_multiple_of(huge) - base;
    let tail = huge - head;
    // SAFETY: head + size + tail == size + huge, so both trimmed pieces lie inside the
    // mapping just created, which nothing else knows about yet.
    let aligned = unsafe {
        unmap(raw.as_ptr(), head);
        let aligned = raw.as_ptr().add(head);
        unmap(aligned.add(size), tail);
        aligned
    };
    NonNull::new(aligned).ok_or_else(|| HostMemError::Mmap {
        len: size as u64,
        source: io::Error::from_raw_os_error(libc::ENOMEM),
    })
}

/// Unmaps `len` bytes at `addr` (no-op for zero length).
///
/// # Safety
/// `[addr, addr + len)` must be part of a mapping the caller owns and no longer uses.
unsafe fn unmap(addr: *mut u8, len: usize) {
    if len != 0 {
        // SAFETY: guaranteed by this function's contract.
        unsafe { libc::munmap(addr.cast(), len) };
    }
}

// The ABI's page size is the host's on x86-64; `abi` is referenced for the doc links above.
const _: () = assert!(abi::PAGE_SIZE == 4096);

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn new_rejects_bad_lengths() {
        for len in [
            0,
            1,
            PAGE_SIZE - 1,
            PAGE_SIZE + 1,
            u64::MAX,
            u64::MAX - PAGE_SIZE + 1,
        ] {
            let err = HostMemory::new(len, false).unwrap_err();
            assert!(
                matches!(err, HostMemError::InvalidLength(l) if l == len),
                "{len:#x}"
            );
        }
    }

    #[test]
    fn new_and_len() {
        let mem = HostMemory::new(3 * PAGE_SIZE, false).unwrap();
        assert_eq!(mem.len(), 3 * PAGE_SIZE);
        assert!(!mem.is_empty());
        assert_eq!(mem.host_addr(), mem.as_ptr() as u64);
        assert_eq!(mem.host_addr() % PAGE_SIZE, 0);
    }

    #[test]
    fn big_regions_are_2mib_aligned() {
        for (len, huge) in [
            (2 * MIB, false),
            (4 * MIB, true),
            (6 * MIB + PAGE_SIZE, false),
        ] {
            let mem = HostMemory::new(len, huge).unwrap();
            assert_eq!(mem.host_addr() % HUGE_PAGE_SIZE, 0, "len {len:#x}");
            mem.write(len - 1, &[0xab]).unwrap();
        }
    }

    #[test]
    fn read_write_round_trip() {
        let mem = HostMemory::new(2 * PAGE_SIZE, false).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        // Straddles the page boundary.
        mem.write(PAGE_SIZE - 50, &data).unwrap();
        let mut back = vec![0u8; 100];
        mem.read(PAGE_SIZE - 50, &mut back).unwrap();
        assert_eq!(back, data);
        let mut untouched = [0xffu8; 4];
        mem.read(0, &mut untouched).unwrap();
        assert_eq!(untouched, [0; 4]);
    }

    #[test]
    fn out_of_range_and_overflow_are_errors() {
        let mem = HostMemory::new(PAGE_SIZE, false).unwrap();
        let mut buf = [0u8; 8];
        let oor = |r: Result<(), HostMemError>| matches!(r, Err(HostMemError::OutOfRange { .. }));
        assert!(oor(mem.read(PAGE_SIZE - 7, &mut buf)));
        assert!(oor(mem.write(PAGE_SIZE, &buf)));
        assert!(oor(mem.read(u64::MAX - 3, &mut buf)));
        assert!(oor(mem.write(u64::MAX, &buf)));
        assert!(oor(mem.populate(0, PAGE_SIZE + 1)));
        assert!(oor(mem.discard(u64::MAX, 2)));
        assert!(matches!(
            mem.resident(1, u64::MAX),
            Err(HostMemError::OutOfRange { .. })
        ));
        assert!(matches!(
            mem.pfn(PAGE_SIZE),
            Err(HostMemError::OutOfRange { .. })
        ));
        // Exactly at the end is fine.
        mem.write(PAGE_SIZE - 8, &buf).unwrap();
        mem.read(PAGE_SIZE, &mut []).unwrap();
    }

    #[test]
    fn populate_makes_pages_resident() {
        let mem = HostMemory::new(4 * PAGE_SIZE, false).unwrap();
        assert_eq!(mem.resident(0, mem.len()).unwrap(), vec![false; 4]);
        assert_eq!(mem.pfn(PAGE_SIZE).unwrap(), None);
        // Unaligned range widens to pages 1 and 2.
        mem.populate(PAGE_SIZE + 10, PAGE_SIZE).unwrap();
        assert_eq!(
            mem.resident(0, mem.len()).unwrap(),
            vec![false, true, true, false]
        );
        let pfn1 = mem.pfn(PAGE_SIZE + 123).unwrap().expect("page 1 present");
        let pfn2 = mem.pfn(2 * PAGE_SIZE).unwrap().expect("page 2 present");
        assert_ne!(pfn1, pfn2);
        assert_eq!(mem.pfn(3 * PAGE_SIZE).unwrap(), None);
        assert!(mem.resident(0, 0).unwrap().is_empty());
    }

    #[test]
    fn discard_zeroes_and_decommits() {
        let mem = HostMemory::new(3 * PAGE_SIZE, false).unwrap();
        mem.write(0, &[7u8; 3 * PAGE_SIZE as usize]).unwrap();
        assert_eq!(mem.resident(0, mem.len()).unwrap(), vec![true; 3]);
        mem.discard(PAGE_SIZE, PAGE_SIZE).unwrap();
        assert_eq!(mem.resident(0, mem.len()).unwrap(), vec![true, false, true]);
        assert_eq!(mem.pfn(PAGE_SIZE).unwrap(), None);
        let mut page = vec![0xffu8; PAGE_SIZE as usize];
        mem.read(PAGE_SIZE, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        mem.read(0, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 7));
    }

    #[test]
    fn huge_region_populates() {
        let mem = HostMemory::new(4 * MIB, true).unwrap();
        mem.populate(0, HUGE_PAGE_SIZE).unwrap();
        let pages = (HUGE_PAGE_SIZE / PAGE_SIZE) as usize;
        assert_eq!(mem.resident(0, HUGE_PAGE_SIZE).unwrap(), vec![true; pages]);
        assert_eq!(
            mem.resident(HUGE_PAGE_SIZE, PAGE_SIZE).unwrap(),
            vec![false]
        );
        assert!(mem.pfn(HUGE_PAGE_SIZE - PAGE_SIZE).unwrap().is_some());
    }

    #[test]
    fn copies_from_a_file_view_and_checks_both_ranges() {
        let path = std::env::temp_dir().join(format!("kvmpager-view-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let len = 4 * PAGE_SIZE;
        file.set_len(len).unwrap();
        file.write_all_at(&[0x5a; 100], PAGE_SIZE).unwrap();
        let view = FileView::map(&file, len).unwrap();
        assert_eq!(view.len(), len);
        let mem = HostMemory::new(2 * PAGE_SIZE, false).unwrap();
        mem.copy_from_view(PAGE_SIZE, &view, PAGE_SIZE, PAGE_SIZE)
            .unwrap();
        let mut got = vec![0u8; PAGE_SIZE as usize];
        mem.read(PAGE_SIZE, &mut got).unwrap();
        assert!(got[..100].iter().all(|&b| b == 0x5a));
        assert!(got[100..].iter().all(|&b| b == 0));
        // Past the view's end, past the region's end, and overflowing offsets are refused.
        assert!(
            mem.copy_from_view(0, &view, 3 * PAGE_SIZE + 1, PAGE_SIZE)
                .is_err()
        );
        assert!(
            mem.copy_from_view(PAGE_SIZE, &view, 0, 2 * PAGE_SIZE)
                .is_err()
        );
        assert!(mem.copy_from_view(0, &view, u64::MAX, PAGE_SIZE).is_err());
    }
}
