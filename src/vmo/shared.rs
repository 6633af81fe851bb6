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
use std::ops::Range;
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
            .register_minor(vmo.this.clone(), vmo.mem.host_addr(), vmo.capacity)
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

    /// Supplies every absent page of `[offset, offset + len)`: from the shared file (mapped,
    /// shared; a page the file lacks becomes a private zero page), or with `zero` as private
    /// zero pages without looking at the file (the pager knows the range is zero). Pages
    /// already present are kept. Returns the pages newly inserted, and finishes the READ
    /// requests the range satisfies. `ZX_ERR_BAD_STATE` on a VMO without a shared file, or
    /// detached.
    ///
    /// The pages are mapped without the VMO's lock (so suppliers of different ranges run in
    /// parallel) and marked present under it afterwards. That is safe because mapping is
    /// idempotent (a page mapped meanwhile is `EEXIST`, kept) and a fault that arrives in
    /// between either makes a request before the marking, which the marking then finishes,
    /// or finds the page marked.
    pub fn supply_shared(&self, offset: u64, len: u64, zero: bool) -> Result<u64, Status> {
        let pages = self.page_range(offset, len)?;
        let (Some(_), Some(link)) = (self.mem.file(), self.link()) else {
            return Err(ZX_ERR_BAD_STATE);
        };
        let uffd = link.faults.uffd();
        let absent: Vec<Range<u64>> = {
            let st = self.lock();
            if st.detached {
                return Err(ZX_ERR_BAD_STATE);
            }
            let all = runs(&st, pages.clone());
            let present: u64 = all
                .iter()
                .filter(|r| r.1)
                .map(|r| r.0.end - r.0.start)
                .sum();
            Counters::add(&self.counters().pages_skipped, present);
            all.into_iter().filter(|r| !r.1).map(|r| r.0).collect()
        };
        let mut mapped = Vec::new();
        let mut result = Ok(());
        for run in absent {
            if let Err(s) = self.map_run(uffd, run, zero, &mut mapped) {
                result = Err(s);
                break;
            }
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let inserted: u64 = mapped
            .into_iter()
            .map(|(run, shared)| self.mark(st, run, shared))
            .sum();
        let finished = st.requests.resolve(ZX_PAGER_VMO_READ, pages, |r| {
            (r.start..r.end).all(|p| st.committed.contains(p as usize))
        });
        self.settle(st, finished, ZX_OK);
        result?;
        Counters::add(&self.counters().supplies, 1);
        Ok(inserted)
    }

    /// If the page at host address `addr` of a shared-file VMO is present, maps it from the
    /// file again (or finds it mapped) and wakes its waiters; whether it was present.
    pub(super) fn remap_present_shared(&self, addr: u64) -> bool {
        let (Some(_), Some(link)) = (self.mem.file(), self.link()) else {
            return false;
        };
        let Some(page) = addr
            .checked_sub(self.host_addr())
            .map(|o| o / PAGE_SIZE)
            .filter(|&p| p < self.pages())
        else {
            return false;
        };
        if !self.is_present(page) {
            return false;
        }
        let uffd = link.faults.uffd();
        let at = self.host_addr() + page * PAGE_SIZE;
        match uffd.continue_pages(at, PAGE_SIZE, true) {
            Ok(_) => log::debug!("VMO {}: page {page} mapped again", self.koid()),
            Err(e) if e.errno() == Some(libc::EFAULT) => {
                let _ = uffd.zeropage(at, PAGE_SIZE);
            }
            Err(_) => {}
        }
        let _ = uffd.wake(at, PAGE_SIZE);
        true
    }

    /// Resident, private (written) and shared bytes of the VMO's host memory.
    pub fn host_usage(&self) -> Option<RegionUsage> {
        self.mem.usage().ok()
    }

    /// Maps the pages `run` (from the file, or zero), adding what it mapped (and whether
    /// shared) to `mapped`.
    fn map_run(
        &self,
        uffd: &Userfault,
        run: Range<u64>,
        zero: bool,
        mapped: &mut Vec<(Range<u64>, bool)>,
    ) -> Result<(), Status> {
        let mut at = run.start;
        while at < run.end {
            let addr = self.host_addr() + at * PAGE_SIZE;
            let bytes = (run.end - at) * PAGE_SIZE;
            let (result, shared) = if zero {
                (uffd.zeropage(addr, bytes), false)
            } else {
                (uffd.continue_pages(addr, bytes, true), true)
            };
            let done = match result {
                Ok(n) => n / PAGE_SIZE,
                Err(e) if shared && e.mapped() == 0 && e.errno() == Some(libc::EFAULT) => {
                    // A hole in the file: this page is zero, for this VMO only.
                    self.zero_one(uffd, addr)?;
                    mapped.push((at..at + 1, false));
                    at += 1;
                    continue;
                }
                Err(e) => handled(&e, shared)?,
            };
            let done = done.clamp(1, run.end - at);
            mapped.push((at..at + done, shared));
            at += done;
        }
        Ok(())
    }

    /// Maps a private zero page at `addr` (present already is fine).
    fn zero_one(&self, uffd: &Userfault, addr: u64) -> Result<(), Status> {
        match uffd.zeropage(addr, PAGE_SIZE) {
            Ok(_) => Ok(()),
            Err(e) => handled(&e, false).map(|_| ()),
        }
    }

    /// Marks `pages` present; counts (shared or zero) and returns those not present before.
    fn mark(&self, st: &mut VmoState, pages: Range<u64>, shared: bool) -> u64 {
        let range = pages.start as usize..pages.end as usize;
        let new = range.clone().filter(|&p| !st.committed.contains(p)).count() as u64;
        st.committed.insert_range(range);
        let counter = if shared {
            &self.counters().pages_shared
        } else {
            &self.counters().pages_zeroed
        };
        Counters::add(counter, new);
        Counters::add(&self.counters().pages_supplied, new);
        new
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
            let what = if shared {
                "UFFDIO_CONTINUE"
            } else {
                "UFFDIO_ZEROPAGE"
            };
            log::error!("{what} failed ({errno:?})");
            Err(ZX_ERR_IO)
        }
    }
}
