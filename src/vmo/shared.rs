//! Pager VMOs over a shared file: many VMOs (in one process or many), one physical copy.
//!
//! The VMO's host memory is a `MAP_PRIVATE` mapping of a shared (shmem) file that some
//! pager fills ([`HostMemory::map_file_private`]), registered for MISSING and MINOR faults.
//! A touch of a page the file holds is a minor fault and a READ request like any other; the
//! pager answers with [`Vmo::supply_shared`], which maps the file's page-cache pages with
//! `UFFDIO_CONTINUE` (read-only: every such VMO maps the same physical page) and gives holes
//! in the file private zero pages with `UFFDIO_ZEROPAGE` (the file never grows). A write
//! copies the page into a private anonymous one (no fault reaches the pager) and never
//! changes the file. The pager must have filled every page of a range in the file before it
//! supplies the range: what the file lacks then is zero.
//!
//! This is the host side of an at-least-on-write clone (`SNAPSHOT_AT_LEAST_ON_WRITE`) of a
//! root that lives outside the kernel; `UFFDIO_MOVE` refuses such memory, so
//! `ZX_PAGER_SUPPLY_PAGES` into it is refused too and supply goes through here.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::supply::runs;
use super::{Origin, PagerLink, Vmo, VmoState};
use crate::abi::packet::ZX_PAGER_VMO_READ;
use crate::abi::status::*;
use crate::abi::{PAGE_SIZE, Status};
use crate::account::Shared;
use crate::counters::Counters;
use crate::hostmem::{HostMemory, RegionUsage};
use crate::uffd::{UffdError, Userfault};

/// How a run of pages of the shared file is supplied.
enum Piece {
    /// The file holds these pages: map them (`UFFDIO_CONTINUE`).
    Data(Range<u64>),
    /// A hole in the file: private zero pages (`UFFDIO_ZEROPAGE`).
    Hole(Range<u64>),
}

impl Vmo {
    /// A pager VMO of `size` bytes whose memory maps `file` (a shared file at least `size`
    /// bytes long, rounded up to pages) `MAP_PRIVATE`. `ZX_ERR_NOT_SUPPORTED` without
    /// userfaultfd minor faults on shmem, or with TRAP_DIRTY; `ZX_ERR_OUT_OF_RANGE` if the
    /// file is shorter than the VMO.
    pub(crate) fn create_paged_shared(
        size: u64,
        link: PagerLink,
        owner: Arc<Shared>,
        file: File,
    ) -> Result<Arc<Vmo>, Status> {
        let faults = link.faults.clone();
        if link.trap_dirty || !faults.uffd().supports_minor() {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let rounded = super::round_up_page(size).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        let file_len = file.metadata().map_err(|_| ZX_ERR_IO)?.len();
        if size == 0 || file_len < rounded {
            return Err(ZX_ERR_OUT_OF_RANGE);
        }
        let origin = Origin::Pager(link);
        let vmo = Self::build_with(size, origin, owner, false, |len| {
            HostMemory::map_file_private(file, len)
        })?;
        faults
            .register_minor(vmo.this.clone(), vmo.mem.host_addr(), vmo.size)
            .map_err(|e| {
                log::error!("registering a shared-file pager VMO with userfaultfd: {e}");
                ZX_ERR_NO_RESOURCES
            })?;
        Ok(vmo)
    }

    /// Whether this VMO's memory maps a shared file.
    pub fn is_shared_file(&self) -> bool {
        self.mem.file().is_some()
    }

    /// Supplies every absent page of `[offset, offset + len)` from the shared file: pages the
    /// file holds are mapped (shared), holes become private zero pages; pages already present
    /// are kept. Returns the pages newly inserted, and finishes the READ requests the range
    /// satisfies. `ZX_ERR_BAD_STATE` on a VMO without a shared file, or detached.
    pub fn supply_shared(&self, offset: u64, len: u64) -> Result<u64, Status> {
        let pages = self.page_range(offset, len)?;
        let (Some(file), Some(link)) = (self.mem.file(), self.link()) else {
            return Err(ZX_ERR_BAD_STATE);
        };
        let uffd = link.faults.uffd();
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.detached {
            return Err(ZX_ERR_BAD_STATE);
        }
        let mut result = Ok(0);
        for (run, present) in runs(st, pages.clone()) {
            if present {
                Counters::add(&self.counters().pages_skipped, run.end - run.start);
                continue;
            }
            match self.map_run(st, file, uffd, run) {
                Ok(n) => result = result.map(|t| t + n),
                Err(s) => {
                    result = Err(s);
                    break;
                }
            }
        }
        let finished = st.requests.resolve(ZX_PAGER_VMO_READ, pages, |r| {
            (r.start..r.end).all(|p| st.committed.contains(p as usize))
        });
        self.settle(st, finished, ZX_OK);
        if result.is_ok() {
            Counters::add(&self.counters().supplies, 1);
        }
        result
    }

    /// Resident, private (written) and shared bytes of the VMO's host memory.
    pub fn host_usage(&self) -> Option<RegionUsage> {
        self.mem.usage().ok()
    }

    /// Maps the absent pages `run` piece by piece; returns the pages inserted.
    fn map_run(
        &self,
        st: &mut VmoState,
        file: &File,
        uffd: &Userfault,
        run: Range<u64>,
    ) -> Result<u64, Status> {
        let mut at = run.start;
        let mut inserted = 0;
        while at < run.end {
            let piece = next_piece(file, at, run.end).map_err(|e| {
                log::error!("finding data in the shared file at page {at}: {e}");
                ZX_ERR_IO
            })?;
            let (pages, shared) = match &piece {
                Piece::Data(p) => (p.clone(), true),
                Piece::Hole(p) => (p.clone(), false),
            };
            let addr = self.host_addr() + pages.start * PAGE_SIZE;
            let bytes = (pages.end - pages.start) * PAGE_SIZE;
            let done = match if shared {
                uffd.continue_pages(addr, bytes, true)
            } else {
                uffd.zeropage(addr, bytes)
            } {
                Ok(n) => n / PAGE_SIZE,
                Err(e) => handled(&e, shared)?,
            };
            let done = done.max(1).min(pages.end - pages.start);
            st.committed
                .insert_range(pages.start as usize..(pages.start + done) as usize);
            let counter = if shared {
                &self.counters().pages_shared
            } else {
                &self.counters().pages_zeroed
            };
            Counters::add(counter, done);
            Counters::add(&self.counters().pages_supplied, done);
            inserted += done;
            at = pages.start + done;
        }
        Ok(inserted)
    }
}

/// What a failed CONTINUE or ZEROPAGE still did, in pages: the bytes mapped before the error,
/// or one page for `EEXIST` (already mapped: kept) — any other error is a status.
fn handled(e: &UffdError, shared: bool) -> Result<u64, Status> {
    let mapped = e.mapped() / PAGE_SIZE;
    if mapped > 0 {
        return Ok(mapped);
    }
    match e.errno() {
        Some(libc::EEXIST) => Ok(1),
        Some(libc::ENOMEM) => Err(ZX_ERR_NO_MEMORY),
        errno => {
            let what = if shared { "UFFDIO_CONTINUE" } else { "UFFDIO_ZEROPAGE" };
            log::error!("{what} failed ({errno:?})");
            Err(ZX_ERR_IO)
        }
    }
}

/// The piece of pages `[at, end)` starting at `at`: a run of the file's data or of a hole.
fn next_piece(file: &File, at: u64, end: u64) -> io::Result<Piece> {
    let data = seek_page(file, at, libc::SEEK_DATA)?.unwrap_or(end);
    if data > at {
        return Ok(Piece::Hole(at..data.min(end)));
    }
    let hole = seek_page(file, at, libc::SEEK_HOLE)?.unwrap_or(end);
    Ok(Piece::Data(at..hole.clamp(at + 1, end)))
}

/// `lseek(SEEK_DATA | SEEK_HOLE)` from page `page`, as a page number (data rounded down,
/// holes up); `None` when there is no more data (`ENXIO`).
fn seek_page(file: &File, page: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off = libc::off_t::try_from(page * PAGE_SIZE)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: lseek on a descriptor we own; no memory is passed. The descriptor's offset is
    // not used by anything else (mappings and pread/pwrite ignore it).
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if r >= 0 {
        let r = r as u64;
        return Ok(Some(if whence == libc::SEEK_DATA {
            r / PAGE_SIZE
        } else {
            r.div_ceil(PAGE_SIZE)
        }));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        _ => Err(e),
    }
}
