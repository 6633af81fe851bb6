//! Virtual memory objects: anonymous VMOs (`zx_vmo_create`) and pager VMOs.
//!
//! A VMO's pages live in [`HostMemory`] (anonymous, `MAP_NORESERVE`: host RSS grows only with
//! committed pages). A bitmap says which pages are committed; for a pager VMO that is exactly
//! the set of present pages, because its memory is userfaultfd-registered and pages only get
//! there by supply. Kernel calls never touch an absent pager-VMO page: they raise a request and
//! wait (see [`crate::request`]); threads touching the memory directly block in the host
//! kernel and reach the pager through [`crate::fault`]. Copy-on-write clones of pager VMOs
//! (`ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE`) are in [`clone`].

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crate::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_DIRTY, ZX_PAGER_VMO_READ};
use crate::abi::status::*;
use crate::abi::{PAGE_SIZE, Status, VmoInfo};
use crate::account::Shared;
use crate::bits::PageBits;
use crate::counters::Counters;
use crate::fault::FaultService;
use crate::hostmem::HostMemory;
use crate::object::new_koid;
use crate::port::Port;

mod clone;
mod file_io;
mod mapping;
mod pager_ops;
mod requests;
mod resize;
mod shared;
mod supply;

use requests::request_packet;

pub use clone::ChildLink;
pub use mapping::{Mapping, Pin};
pub use supply::SupplyStrategy;

/// Largest VMO kvmpager creates (256 GiB).
pub const MAX_VMO_SIZE: u64 = 256 << 30;

/// Where a VMO came from.
pub enum Origin {
    /// `zx_vmo_create`: the only kind allowed as a SUPPLY source.
    Created,
    /// `zx_vmo_create_child`: an eager snapshot of an anonymous VMO, or a copy-on-write clone
    /// of a pager VMO or of such a clone (see [`clone`]).
    Child(ChildLink),
    /// `zx_pager_create_vmo`.
    Pager(PagerLink),
}

/// What ties a pager VMO to its pager.
pub struct PagerLink {
    /// The pager's koid (ownership check).
    pub pager_koid: u64,
    /// Where page requests go.
    pub port: Arc<Port>,
    /// The key of its packets.
    pub key: u64,
    /// `ZX_VMO_TRAP_DIRTY` was given.
    pub trap_dirty: bool,
    /// The userfaultfd its memory is registered with.
    pub faults: Arc<FaultService>,
}

/// The mutable part of a VMO.
pub(crate) struct VmoState {
    /// Committed (anonymous) or present (pager) pages.
    pub committed: PageBits,
    /// Pager VMOs: pages written since the last writeback.
    pub dirty: PageBits,
    /// Pager VMOs: dirty pages whose writeback has begun.
    pub awaiting_clean: PageBits,
    /// Live guest mappings.
    pub mappings: u32,
    /// The VMO has been mapped writable: pages may have been written through the mapping
    /// without the kernel seeing it, so none of them is known to be clean.
    pub mapped_writable: bool,
    /// Live children.
    pub children: u32,
    /// Pager clones: pages written in this clone (its own; they survive a detach). Present
    /// pages not in here are clean copies of an ancestor's page.
    pub forked: PageBits,
    /// Pager VMOs and pager clones: their clones (weak; the clones hold their parent).
    pub clones: Vec<Weak<Vmo>>,
    /// Pinned page ranges.
    pub pins: Vec<Range<u64>>,
    /// Pager VMOs: detached (or the pager is gone).
    pub detached: bool,
    /// Pager VMOs: the COMPLETE packet was queued.
    pub complete_sent: bool,
    /// Pager VMOs: outstanding requests.
    pub requests: crate::request::RequestTracker,
    /// Written (by a kernel call, or a write fault the kernel saw) or resized since the last
    /// `zx_pager_query_vmo_stats` with `ZX_PAGER_RESET_VMO_STATS`.
    pub modified: bool,
    /// Threads asleep on `changed` waiting for a request's outcome: with none, a change
    /// skips the wake-up system call.
    pub sleepers: u32,
}

/// A VMO.
pub struct Vmo {
    koid: u64,
    /// The size it was created with: its memory, its charge, its userfaultfd registration.
    capacity: u64,
    /// The current size (`zx_vmo_set_size`), at most `capacity`.
    size: AtomicU64,
    /// Created with `ZX_VMO_RESIZABLE`.
    resizable: AtomicBool,
    huge: bool,
    mem: HostMemory,
    origin: Origin,
    state: Mutex<VmoState>,
    changed: Condvar,
    handles: AtomicUsize,
    owner: Arc<Shared>,
    this: Weak<Vmo>,
}

impl Vmo {
    /// A new anonymous VMO (`zx_vmo_create`); `size` is rounded up to whole pages.
    pub(crate) fn create(size: u64, huge: bool, owner: Arc<Shared>) -> Result<Arc<Vmo>, Status> {
        Self::build(size, huge, Origin::Created, owner)
    }

    /// A new pager VMO; its memory is registered with `link.faults`.
    pub(crate) fn create_paged(
        size: u64,
        link: PagerLink,
        owner: Arc<Shared>,
    ) -> Result<Arc<Vmo>, Status> {
        let faults = link.faults.clone();
        let wp = link.trap_dirty;
        let vmo = Self::build(size, false, Origin::Pager(link), owner)?;
        if vmo.capacity > 0 {
            faults
                .register(vmo.this.clone(), vmo.mem.host_addr(), vmo.capacity, wp)
                .map_err(|e| {
                    log::error!("registering a pager VMO with userfaultfd: {e}");
                    ZX_ERR_NO_RESOURCES
                })?;
        }
        Ok(vmo)
    }

    /// An eager snapshot of `[offset, offset + size)` of this anonymous VMO (pages copied now),
    /// charged to `owner`.
    pub(crate) fn create_child(
        self: &Arc<Self>,
        offset: u64,
        size: u64,
        owner: Arc<Shared>,
    ) -> Result<Arc<Vmo>, Status> {
        if self.is_pager_backed() {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let child = Self::build(size, false, Origin::Child(ChildLink::snapshot(self)), owner)?;
        let mut st = self.lock();
        st.children += 1;
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        for page in 0..child.pages() {
            let src = offset
                .checked_add(page * PAGE_SIZE)
                .ok_or(ZX_ERR_OUT_OF_RANGE)?;
            // The parent bytes behind this child page (`offset` need not be page aligned, so
            // they may straddle two parent pages, and may run past the parent's end).
            let n = self.size().saturating_sub(src).min(PAGE_SIZE);
            let pages = src / PAGE_SIZE..(src + n).div_ceil(PAGE_SIZE);
            if n == 0 || !pages.clone().any(|p| self.is_committed(&st, p)) {
                continue;
            }
            buf.fill(0);
            self.copy_out(&st, src, &mut buf[..n as usize])?;
            child
                .mem
                .write(page * PAGE_SIZE, &buf)
                .map_err(|_| ZX_ERR_INTERNAL)?;
            child.lock().committed.insert(page as usize);
        }
        Ok(child)
    }

    fn build(
        size: u64,
        huge: bool,
        origin: Origin,
        owner: Arc<Shared>,
    ) -> Result<Arc<Vmo>, Status> {
        Self::build_with(size, origin, owner, huge, |len| HostMemory::new(len, huge))
    }

    /// [`Vmo::build`] with the host memory made by `map(len)`.
    fn build_with(
        size: u64,
        origin: Origin,
        owner: Arc<Shared>,
        huge: bool,
        map: impl FnOnce(u64) -> Result<HostMemory, crate::hostmem::HostMemError>,
    ) -> Result<Arc<Vmo>, Status> {
        let size = round_up_page(size).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        if size > MAX_VMO_SIZE {
            return Err(ZX_ERR_OUT_OF_RANGE);
        }
        // Everything the VMO could ever commit is charged to its process up front.
        owner.charge(size)?;
        // HostMemory needs a non-empty mapping; a 0-byte VMO keeps one unused page.
        let mem = match map(size.max(PAGE_SIZE)) {
            Ok(mem) => mem,
            Err(_) => {
                owner.uncharge(size);
                return Err(ZX_ERR_NO_MEMORY);
            }
        };
        let pages = (size / PAGE_SIZE) as usize;
        let (tracked, forked) = match &origin {
            Origin::Pager(_) => (pages, 0),
            Origin::Child(link) if link.is_clone() => (0, pages),
            _ => (0, 0),
        };
        let state = VmoState {
            committed: PageBits::with_capacity(pages),
            dirty: PageBits::with_capacity(tracked),
            awaiting_clean: PageBits::with_capacity(tracked),
            mappings: 0,
            mapped_writable: false,
            children: 0,
            forked: PageBits::with_capacity(forked),
            clones: Vec::new(),
            pins: Vec::new(),
            detached: false,
            complete_sent: false,
            requests: Default::default(),
            modified: false,
            sleepers: 0,
        };
        Ok(Arc::new_cyclic(|this| Vmo {
            koid: new_koid(),
            capacity: size,
            size: AtomicU64::new(size),
            resizable: AtomicBool::new(false),
            huge,
            mem,
            origin,
            state: Mutex::new(state),
            changed: Condvar::new(),
            handles: AtomicUsize::new(0),
            owner,
            this: this.clone(),
        }))
    }

    /// Kernel object id.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// Size in bytes (a multiple of the page size).
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Size in pages.
    pub fn pages(&self) -> u64 {
        self.size() / PAGE_SIZE
    }

    /// Whether the VMO was created with `ZX_VMO_RESIZABLE`.
    pub fn is_resizable(&self) -> bool {
        self.resizable.load(Ordering::Acquire)
    }

    /// Marks a new VMO as created with `ZX_VMO_RESIZABLE`.
    pub(crate) fn mark_resizable(&self) {
        self.resizable.store(true, Ordering::Release);
    }

    /// The size the VMO was created with: the most `zx_vmo_set_size` may give it.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Host address of the VMO's first byte.
    pub fn host_addr(&self) -> u64 {
        self.mem.host_addr()
    }

    /// Whether the VMO asked for transparent huge pages (`KVMPAGER_VMO_HUGE`).
    pub fn is_huge(&self) -> bool {
        self.huge
    }

    /// Whether this is a pager VMO or a clone of one (Zircon's `ZX_INFO_VMO_PAGER_BACKED`).
    pub fn is_pager_backed(&self) -> bool {
        matches!(self.origin, Origin::Pager(_)) || self.is_clone()
    }

    /// Whether this VMO came from `zx_vmo_create`.
    pub fn is_created(&self) -> bool {
        matches!(self.origin, Origin::Created)
    }

    /// The koid of the pager that made this VMO, if any.
    pub fn pager_koid(&self) -> Option<u64> {
        self.link().map(|l| l.pager_koid)
    }

    /// Whether writes through mappings are trapped: a TRAP_DIRTY VMO on a host with
    /// userfaultfd write-protect. Its clean pages are write-protected, and the first write to
    /// one raises a DIRTY request.
    pub(crate) fn traps_mapped_writes(&self) -> bool {
        self.link()
            .is_some_and(|l| l.trap_dirty && l.faults.uffd().supports_wp())
    }

    /// Write-protects (or unprotects, waking blocked writers) `pages` of a VMO that traps
    /// mapped writes; a no-op for other VMOs.
    pub(crate) fn protect(&self, pages: Range<u64>, protect: bool) {
        if pages.is_empty() || !self.traps_mapped_writes() {
            return;
        }
        let Some(link) = self.link() else { return };
        let (addr, len) = (
            self.host_addr() + pages.start * PAGE_SIZE,
            (pages.end - pages.start) * PAGE_SIZE,
        );
        if let Err(e) = link.faults.uffd().write_protect(addr, len, protect) {
            log::error!(
                "write-protect ({protect}) of VMO {} pages {pages:?}: {e}",
                self.koid
            );
        }
    }

    fn link(&self) -> Option<&PagerLink> {
        match &self.origin {
            Origin::Pager(link) => Some(link),
            _ => None,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, VmoState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.owner.counters
    }

    /// Checks `[offset, offset + len)` against the size; returns the page range it touches.
    pub fn page_range(&self, offset: u64, len: u64) -> Result<Range<u64>, Status> {
        let end = offset.checked_add(len).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        if end > self.size() {
            return Err(ZX_ERR_OUT_OF_RANGE);
        }
        if len == 0 {
            return Ok(offset / PAGE_SIZE..offset / PAGE_SIZE);
        }
        let last = round_up_page(end).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        Ok(offset / PAGE_SIZE..last / PAGE_SIZE)
    }

    // ---- reading, writing, committing ----------------------------------------------------

    /// `zx_vmo_read`: copies `buf.len()` bytes from `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8], killed: &AtomicBool) -> Result<(), Status> {
        let pages = self.page_range(offset, buf.len() as u64)?;
        let st = self.lock();
        let st = self.ensure(st, ZX_PAGER_VMO_READ, pages.clone(), killed)?;
        self.copy_out(&st, offset, buf)
    }

    /// `zx_vmo_write`: copies `buf` to `offset`, committing pages.
    pub fn write(&self, offset: u64, buf: &[u8], killed: &AtomicBool) -> Result<(), Status> {
        let pages = self.page_range(offset, buf.len() as u64)?;
        let st = self.lock();
        let mut st = self.ensure(st, ZX_PAGER_VMO_READ, pages.clone(), killed)?;
        self.fork(&mut st, pages.clone());
        if self.link().is_some_and(|l| l.trap_dirty) {
            st = self.ensure(st, ZX_PAGER_VMO_DIRTY, pages.clone(), killed)?;
            // Pages under writeback are write-protected again; this write must not fault
            // (the fault service would wait for the lock held here).
            self.protect(pages.clone(), false);
        }
        self.mem
            .write(offset, buf)
            .map_err(|_| ZX_ERR_OUT_OF_RANGE)?;
        let range = pages.start as usize..pages.end as usize;
        st.committed.insert_range(range.clone());
        if self.is_pager_backed() {
            st.dirty.insert_range(range.clone());
            st.awaiting_clean.remove_range(range);
            st.modified = true;
        }
        drop(st);
        // Clones that copied these pages see the write (they drop their copies).
        self.invalidate_clones(pages);
        Ok(())
    }

    /// Makes every page of `[offset, offset + len)` present (and dirty-acknowledged for a
    /// write to a TRAP_DIRTY VMO), raising requests one run at a time, without copying: callers
    /// that then move the bytes in pieces see the request shape of one whole-range access.
    pub(crate) fn prepare(
        &self,
        offset: u64,
        len: u64,
        write: bool,
        killed: &AtomicBool,
    ) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let st = self.lock();
        let st = self.ensure(st, ZX_PAGER_VMO_READ, pages.clone(), killed)?;
        if write && self.link().is_some_and(|l| l.trap_dirty) {
            drop(self.ensure(st, ZX_PAGER_VMO_DIRTY, pages, killed)?);
        }
        Ok(())
    }

    /// `ZX_VMO_OP_COMMIT`.
    pub fn commit(&self, offset: u64, len: u64, killed: &AtomicBool) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let st = self.lock();
        let mut st = self.ensure(st, ZX_PAGER_VMO_READ, pages.clone(), killed)?;
        // COMMIT on a clone forks every page, as write faults would (Zircon's CloneCommitTest).
        self.fork(&mut st, pages.clone());
        if !self.is_pager_backed() && !pages.is_empty() {
            let start = pages.start * PAGE_SIZE;
            let bytes = (pages.end - pages.start) * PAGE_SIZE;
            self.mem
                .populate(start, bytes)
                .map_err(|_| ZX_ERR_NO_MEMORY)?;
            st.committed
                .insert_range(pages.start as usize..pages.end as usize);
        }
        Ok(())
    }

    /// `ZX_VMO_OP_DECOMMIT` (anonymous VMOs only).
    pub fn decommit(&self, offset: u64, len: u64) -> Result<(), Status> {
        if self.is_pager_backed() {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        if overlaps_any(&st.pins, &pages) {
            return Err(ZX_ERR_BAD_STATE);
        }
        self.discard_pages(&mut st, pages);
        Ok(())
    }

    /// Frees `pages` of the host memory and marks them uncommitted.
    pub(crate) fn discard_pages(&self, st: &mut VmoState, pages: Range<u64>) {
        if pages.is_empty() {
            return;
        }
        let start = pages.start * PAGE_SIZE;
        if let Err(e) = self
            .mem
            .discard(start, (pages.end - pages.start) * PAGE_SIZE)
        {
            log::error!("decommitting VMO {} pages {pages:?}: {e}", self.koid);
        }
        st.committed
            .remove_range(pages.start as usize..pages.end as usize);
    }

    fn copy_out(&self, st: &VmoState, offset: u64, buf: &mut [u8]) -> Result<(), Status> {
        // Present pages are copied; uncommitted anonymous pages read as zero without being
        // touched (touching would map host pages the VMO does not own).
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let page = at / PAGE_SIZE;
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + chunk];
            if self.is_committed(st, page) {
                self.mem.read(at, dst).map_err(|_| ZX_ERR_OUT_OF_RANGE)?;
            } else {
                dst.fill(0);
            }
            done += chunk;
        }
        Ok(())
    }

    fn is_committed(&self, st: &VmoState, page: u64) -> bool {
        st.committed.contains(page as usize)
            || (st.mappings > 0 && !self.is_pager_backed() && self.resident(page..page + 1) == 1)
    }

    fn resident(&self, pages: Range<u64>) -> u64 {
        let bytes = (pages.end - pages.start) * PAGE_SIZE;
        match self.mem.resident(pages.start * PAGE_SIZE, bytes) {
            Ok(v) => v.iter().filter(|r| **r).count() as u64,
            Err(_) => 0,
        }
    }

    // ---- info, handles -------------------------------------------------------------------

    /// What `zx_vmo_get_info` (kvmpager's [`VmoInfo`]) reports.
    pub fn info(&self, rights: u32) -> VmoInfo {
        let st = self.lock();
        let mut committed = st.committed.count_ones() as u64;
        if st.mappings > 0 && !self.is_pager_backed() && self.pages() > 0 {
            committed = committed.max(self.resident(0..self.pages()));
        }
        let mut flags = 0;
        if self.is_pager_backed() {
            flags |= crate::abi::VMO_INFO_FLAG_PAGER_BACKED;
        }
        if st.detached {
            flags |= crate::abi::VMO_INFO_FLAG_DETACHED;
        }
        VmoInfo {
            size: self.size(),
            committed_bytes: committed * PAGE_SIZE,
            flags,
            mappings: st.mappings,
            children: st.children,
            pinned_pages: st.pins.iter().map(|p| (p.end - p.start) as u32).sum(),
            rights,
            reserved: 0,
            koid: self.koid,
        }
    }

    /// Reads the VMO's bytes straight from host memory (tests and VM snapshots). Pager-VMO pages
    /// that are absent read as zero; nothing is requested.
    pub fn peek(&self, offset: u64, buf: &mut [u8]) -> Result<(), Status> {
        self.page_range(offset, buf.len() as u64)?;
        let st = self.lock();
        self.copy_out(&st, offset, buf)
    }

    /// Whether page `page` is committed/present.
    pub fn is_present(&self, page: u64) -> bool {
        self.lock().committed.contains(page as usize)
    }

    /// The host memory's physical frame number for the page at `offset` (root only).
    pub fn pfn(&self, offset: u64) -> Option<u64> {
        self.mem.pfn(offset).ok().flatten()
    }

    pub(crate) fn handle_added(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn handle_removed(&self) {
        self.handles.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Vmo {
    fn drop(&mut self) {
        self.owner.uncharge(self.capacity);
        match &self.origin {
            Origin::Child(_) => {
                // The parent chain is released in a loop, not by recursive drops (chains of
                // clones may be thousands deep).
                let mut parent = self.release_parent();
                while let Some(p) = parent {
                    parent = Arc::into_inner(p).and_then(|mut vmo| vmo.release_parent());
                }
            }
            Origin::Pager(link) => {
                let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
                if !st.detached && !st.complete_sent {
                    let packet = request_packet(link.key, ZX_PAGER_VMO_COMPLETE, 0, 0);
                    let charge = Some(self.owner.packet_charge());
                    link.port.queue_charged(packet, None, charge);
                }
                link.faults.unregister(self.mem.host_addr());
            }
            Origin::Created => {}
        }
    }
}

/// Rounds up to a page multiple (`None` on overflow).
pub fn round_up_page(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

fn overlaps_any(pins: &[Range<u64>], pages: &Range<u64>) -> bool {
    pins.iter()
        .any(|p| p.start < pages.end && pages.start < p.end)
}
