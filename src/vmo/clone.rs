//! Children of VMOs: eager snapshots of anonymous VMOs, and copy-on-write clones of pager VMOs
//! (`ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE`).
//!
//! A clone of a pager VMO (or of such a clone) has its own anonymous host memory, registered
//! with the root's userfaultfd (MISSING, and write-protect where the host has it). Each clone
//! page is absent, *cached* (a clean copy of an ancestor's page, installed with `UFFDIO_COPY`
//! at first touch and write-protected) or *forked* (written in this clone: its own page, which
//! survives a detach). The root's pages stay where supply moved them; nothing here moves them.
//!
//! - A touch, read or commit of an absent clone page walks up the chain: the nearest ancestor
//!   clone that holds the page, else the root. If the root lacks it, the request is raised on
//!   the ROOT (root page = clone page + the sum of the offsets), shared with every other reader
//!   of that range, and the copy follows the supply. Pages past an ancestor's end read as
//!   zeros (copies too: an intermediate clone may still write them).
//! - A write (`zx_vmo_write`, a write fault on a cached page, `ZX_VMO_OP_COMMIT`) forks the
//!   page: it stops being a copy. Intermediate clones keep nothing a descendant copied.
//! - A write the kernel sees (`zx_vmo_write` on any VMO of the tree) drops the cached copies of
//!   those pages in every descendant, so they read the new bytes; writes through a guest
//!   mapping of an ancestor are not seen and may stay invisible to a clone's cached copies
//!   (AT_LEAST_ON_WRITE permits this). A detach of the root drops every cached copy: later
//!   accesses to unforked pages fail with `ZX_ERR_BAD_STATE`, forked pages keep working.
//!
//! Lock order: a child's lock may be held while an ancestor's is taken, never the reverse.
//! Walks that go down the tree (invalidation) hold one lock at a time, parents before their
//! descendants, so a copy made from a stale ancestor page is always dropped afterwards.
//! A clone holds its parent (`Arc`): closing the root's handle leaves its clones working, and a
//! chain is released by a loop in `Drop`, not by recursion.

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, MutexGuard};

use super::{Origin, Vmo, VmoState};
use crate::abi::packet::ZX_PAGER_VMO_READ;
use crate::abi::status::*;
use crate::abi::{PAGE_SIZE, Status};
use crate::counters::Counters;
use crate::fault::FaultService;
use crate::uffd::Userfault;

/// What ties a child to its parent.
pub struct ChildLink {
    /// The parent; `None` only while the child is being dropped.
    parent: Option<Arc<Vmo>>,
    /// Pager clones: the offset in the parent, in pages.
    offset: u64,
    /// Pager clones: the userfaultfd the clone's memory is registered with (the root's).
    faults: Option<Arc<FaultService>>,
}

impl ChildLink {
    /// The link of an eager snapshot of `parent`.
    pub(super) fn snapshot(parent: &Arc<Vmo>) -> ChildLink {
        ChildLink {
            parent: Some(parent.clone()),
            offset: 0,
            faults: None,
        }
    }

    /// Whether this is a copy-on-write clone of a pager VMO (not an eager snapshot).
    pub fn is_clone(&self) -> bool {
        self.faults.is_some()
    }
}

/// The bytes of a clone page past an ancestor's end (the source of its copies).
static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

/// Where the bytes of a clone page come from.
enum Found {
    /// Past an ancestor's end: zeros, whatever the pager does.
    Zero,
    /// Present in this ancestor (a clone or the root) at this page.
    In(Arc<Vmo>, u64),
    /// Absent everywhere: the root must be asked for this root page.
    Absent(Arc<Vmo>, u64),
}

impl Vmo {
    /// A copy-on-write clone of `[offset, offset + size)` of this pager VMO or pager clone,
    /// charged to `owner`. `offset` must be page aligned.
    pub(crate) fn create_clone(
        self: &Arc<Self>,
        offset: u64,
        size: u64,
        owner: Arc<crate::account::Shared>,
    ) -> Result<Arc<Vmo>, Status> {
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let faults = match &self.origin {
            Origin::Pager(link) => link.faults.clone(),
            Origin::Child(ChildLink {
                faults: Some(f), ..
            }) => f.clone(),
            _ => return Err(ZX_ERR_NOT_SUPPORTED),
        };
        let link = ChildLink {
            parent: Some(self.clone()),
            offset: offset / PAGE_SIZE,
            faults: Some(faults.clone()),
        };
        let child = Vmo::build(size, false, Origin::Child(link), owner)?;
        {
            let mut st = self.lock();
            st.children += 1;
            st.clones.retain(|c| c.strong_count() > 0);
            st.clones.push(child.this.clone());
        }
        if child.capacity > 0 {
            let target = child.this.clone();
            faults
                .register(target, child.host_addr(), child.capacity, true)
                .map_err(|e| {
                    log::error!("registering a clone with userfaultfd: {e}");
                    ZX_ERR_NO_RESOURCES
                })?;
        }
        Ok(child)
    }

    /// Whether this is a copy-on-write clone of a pager VMO.
    pub(crate) fn is_clone(&self) -> bool {
        matches!(&self.origin, Origin::Child(l) if l.is_clone())
    }

    /// The koid of the parent, for a child.
    pub fn parent_koid(&self) -> Option<u64> {
        match &self.origin {
            Origin::Child(l) => l.parent.as_ref().map(|p| p.koid()),
            _ => None,
        }
    }

    /// A clone's parent and its offset there (pages).
    fn clone_parent(&self) -> Option<(&Arc<Vmo>, u64)> {
        match &self.origin {
            Origin::Child(l) if l.is_clone() => Some((l.parent.as_ref()?, l.offset)),
            _ => None,
        }
    }

    /// A clone's userfaultfd.
    fn clone_uffd(&self) -> Option<&Userfault> {
        match &self.origin {
            Origin::Child(l) => l.faults.as_ref().map(|f| f.uffd()),
            _ => None,
        }
    }

    /// Whether this clone's cached pages are write-protected (the host has uffd-wp), so a
    /// write through a mapping is seen and forks the page.
    fn protects_cached(&self) -> bool {
        self.clone_uffd().is_some_and(|u| u.supports_wp())
    }

    /// Unlinks a child from its parent (drop): returns the parent, which the caller releases.
    pub(super) fn release_parent(&mut self) -> Option<Arc<Vmo>> {
        let Origin::Child(link) = &mut self.origin else {
            return None;
        };
        let parent = link.parent.take()?;
        if let Some(faults) = &link.faults {
            faults.unregister(self.mem.host_addr());
        }
        let mut st = parent.lock();
        st.children = st.children.saturating_sub(1);
        st.clones.retain(|c| c.strong_count() > 0);
        drop(st);
        Some(parent)
    }

    // ---- making clone pages present ------------------------------------------------------

    /// Waits until every page of `pages` of this clone is present, asking the root's pager
    /// for pages no VMO of the chain has, one run at a time.
    pub(super) fn clone_ensure<'a>(
        &'a self,
        mut st: MutexGuard<'a, VmoState>,
        pages: Range<u64>,
        killed: &AtomicBool,
    ) -> Result<MutexGuard<'a, VmoState>, Status> {
        let mut page = pages.start;
        while page < pages.end {
            if st.committed.contains(page as usize) {
                page += 1;
                continue;
            }
            let Some((root, root_page)) = self.fill_clone_page(&mut st, page)? else {
                page += 1;
                continue;
            };
            // The run of pages that also need the root goes to the pager as one range.
            let mut end = page + 1;
            while end < pages.end
                && !st.committed.contains(end as usize)
                && matches!(self.find(end)?, Found::Absent(..))
            {
                end += 1;
            }
            drop(st);
            let rst = root.lock();
            let root_pages = root_page..root_page + (end - page);
            drop(root.ensure(rst, ZX_PAGER_VMO_READ, root_pages, killed)?);
            st = self.lock();
        }
        Ok(st)
    }

    /// Where the bytes of absent clone page `page` are now (one ancestor lock at a time).
    fn find(&self, page: u64) -> Result<Found, Status> {
        let Some((parent, offset)) = self.clone_parent() else {
            return Ok(Found::Zero);
        };
        let mut cur = parent.clone();
        let mut at = page.saturating_add(offset);
        loop {
            if at >= cur.pages() {
                return Ok(Found::Zero);
            }
            let st = cur.lock();
            if st.committed.contains(at as usize) {
                drop(st);
                return Ok(Found::In(cur, at));
            }
            if st.detached {
                return Err(ZX_ERR_BAD_STATE);
            }
            let next = match cur.clone_parent() {
                Some((p, off)) => (p.clone(), at.saturating_add(off)),
                None if cur.link().is_some() => {
                    drop(st);
                    return Ok(Found::Absent(cur, at));
                }
                None => return Ok(Found::Zero),
            };
            drop(st);
            (cur, at) = next;
        }
    }

    /// The root of this clone's chain.
    fn root(&self) -> Option<Arc<Vmo>> {
        let (parent, _) = self.clone_parent()?;
        let mut cur = parent.clone();
        while let Some((p, _)) = cur.clone_parent() {
            let p = p.clone();
            cur = p;
        }
        Some(cur)
    }

    /// Makes absent page `page` present from the chain; returns the root and root page to
    /// request when no VMO of the chain has it. Holds this clone's lock throughout (`st`).
    fn fill_clone_page(
        &self,
        st: &mut VmoState,
        page: u64,
    ) -> Result<Option<(Arc<Vmo>, u64)>, Status> {
        loop {
            let (src, at) = match self.find(page)? {
                Found::Zero => {
                    self.install(st, page, None)?;
                    return Ok(None);
                }
                Found::Absent(root, at) => return Ok(Some((root, at))),
                Found::In(src, at) => (src, at),
            };
            let sst = src.lock();
            if !sst.committed.contains(at as usize) {
                continue; // Dropped meanwhile: look again.
            }
            // A page the pager supplied (not one an ancestor clone forked) is only good while
            // the root is attached.
            let pager_page = !(src.is_clone() && sst.forked.contains(at as usize));
            let detached = match self.root() {
                Some(root) if pager_page && src.is_clone() => root.lock().detached,
                _ => pager_page && sst.detached,
            };
            if detached {
                return Err(ZX_ERR_BAD_STATE);
            }
            self.install(st, page, Some((&src, at)))?;
            return Ok(None);
        }
    }

    /// Installs clone page `page`: a write-protected copy of `src`'s page, or (no source) of
    /// zeros (still a copy: an ancestor may write the page later). Wakes threads faulting on it.
    fn install(
        &self,
        st: &mut VmoState,
        page: u64,
        src: Option<(&Vmo, u64)>,
    ) -> Result<(), Status> {
        let Some(uffd) = self.clone_uffd() else {
            return Err(ZX_ERR_BAD_STATE);
        };
        let dst = self.host_addr() + page * PAGE_SIZE;
        let from = match src {
            Some((v, at)) => v.host_addr() + at * PAGE_SIZE,
            None => ZERO_PAGE.as_ptr() as u64,
        };
        let r = if self.protects_cached() {
            uffd.copy_protected(dst, from, PAGE_SIZE)
        } else {
            uffd.copy(dst, from, PAGE_SIZE)
        };
        match r.map_err(|e| e.errno()) {
            Ok(_) | Err(Some(libc::EEXIST)) => {}
            Err(errno) => {
                log::error!("filling clone {} page {page}: errno {errno:?}", self.koid());
                return Err(ZX_ERR_NO_MEMORY);
            }
        }
        st.committed.insert(page as usize);
        Ok(())
    }

    /// Forks the (present) pages of `pages` of a clone: they become its own and writable. A
    /// no-op for other VMOs.
    pub(super) fn fork(&self, st: &mut VmoState, pages: Range<u64>) {
        let range = pages.start as usize..pages.end as usize;
        if !self.is_clone() || range.clone().all(|p| st.forked.contains(p)) {
            return;
        }
        st.forked.insert_range(range);
        if let Some(uffd) = self.clone_uffd().filter(|u| u.supports_wp()) {
            let (addr, len) = (
                self.host_addr() + pages.start * PAGE_SIZE,
                (pages.end - pages.start) * PAGE_SIZE,
            );
            if let Err(e) = uffd.write_protect(addr, len, false) {
                log::error!("unprotecting clone {} pages {pages:?}: {e}", self.koid());
            }
        }
    }

    // ---- faults through mappings ---------------------------------------------------------

    /// Thread `tid` touched clone page at `addr` (a write to a cached page when `wp`). The
    /// page is copied now if the chain has it; else a helper thread waits for the root's
    /// request and copies it then (the fault service never blocks).
    pub(super) fn clone_fault(&self, addr: u64, tid: u32, wp: bool) {
        Counters::add(&self.counters().faults, 1);
        let page = (addr - self.host_addr()) / PAGE_SIZE;
        match self.resolve_fault(page, wp) {
            Ok(None) => {}
            Ok(Some((root, at))) => self.wait_for_root(root, at, page, tid),
            Err(status) => self.report_fatal(&[(tid, page)], status),
        }
    }

    /// Makes a faulting page present (or forks it); `Some` names the root page to wait for.
    fn resolve_fault(&self, page: u64, wp: bool) -> Result<Option<(Arc<Vmo>, u64)>, Status> {
        if page >= self.pages() {
            return Err(ZX_ERR_BAD_STATE);
        }
        let mut st = self.lock();
        if st.committed.contains(page as usize) {
            // Filled (or forked) since the fault was raised: make sure the thread goes on.
            if wp {
                self.fork(&mut st, page..page + 1);
            }
            if let Some(uffd) = self.clone_uffd() {
                let _ = uffd.wake(self.host_addr() + page * PAGE_SIZE, PAGE_SIZE);
            }
            return Ok(None);
        }
        self.fill_clone_page(&mut st, page)
    }

    /// Waits (on a helper thread) for the root's pager to supply `root_page`, then installs
    /// clone page `page`; a failed request is the faulting thread's fatal fault.
    fn wait_for_root(&self, root: Arc<Vmo>, root_page: u64, page: u64, tid: u32) {
        let Some(me) = self.this.upgrade() else {
            return;
        };
        let job = Box::new(move || {
            let mut next = Some((root, root_page));
            while let Some((root, at)) = next.take() {
                let killed = &me.owner.killed;
                let waited = root.ensure(root.lock(), ZX_PAGER_VMO_READ, at..at + 1, killed);
                next = match waited
                    .map(drop)
                    .and_then(|()| me.resolve_fault(page, false))
                {
                    Ok(next) => next,
                    Err(ZX_ERR_CANCELED) => None,
                    Err(status) => {
                        me.report_fatal(&[(tid, page)], status);
                        None
                    }
                };
            }
        });
        if let Err(e) = helpers::run(job) {
            log::error!("starting a clone fault waiter: {e}");
            self.report_fatal(&[(tid, page)], ZX_ERR_NO_RESOURCES);
        }
    }

    // ---- keeping cached copies current -----------------------------------------------------

    /// Drops the cached copies of `pages` (this VMO's pages) in every descendant clone, parents
    /// before their children, one lock at a time. Called after a write the kernel sees and
    /// after a detach; the caller holds no VMO lock.
    pub(crate) fn invalidate_clones(&self, pages: Range<u64>) {
        if pages.is_empty() {
            return;
        }
        let mut stack: Vec<(Arc<Vmo>, Range<u64>)> = self.clipped_clones(&pages);
        while let Some((vmo, range)) = stack.pop() {
            vmo.drop_cached(range.clone());
            stack.extend(vmo.clipped_clones(&range));
        }
    }

    /// The live clones of this VMO that see part of `pages`, with that part in their pages.
    fn clipped_clones(&self, pages: &Range<u64>) -> Vec<(Arc<Vmo>, Range<u64>)> {
        let clones: Vec<Arc<Vmo>> = {
            let st = self.lock();
            st.clones.iter().filter_map(|c| c.upgrade()).collect()
        };
        clones
            .into_iter()
            .filter_map(|c| {
                let (_, off) = c.clone_parent()?;
                let start = pages.start.max(off) - off;
                let end = pages
                    .end
                    .min(off.saturating_add(c.pages()))
                    .saturating_sub(off);
                (start < end).then_some((c, start..end))
            })
            .collect()
    }

    /// Frees the cached (unforked) pages of `pages`. A clone mapped writable on a host without
    /// uffd-wp keeps them: a write through the mapping may have made them its own.
    fn drop_cached(&self, pages: Range<u64>) {
        let mut st = self.lock();
        if st.mapped_writable && !self.protects_cached() {
            return;
        }
        let forked = std::mem::take(&mut st.forked);
        self.discard_committed(&mut st, pages, |p| forked.contains(p as usize));
        st.forked = forked;
    }
}

/// The helper threads that wait for a root's pager on behalf of faulting clone pages (the fault
/// service must not block). Each waiting fault holds one thread; threads are kept for
/// [`helpers::IDLE`] after their last job, so a run of faults does not pay a thread start each.
mod helpers {
    use std::collections::VecDeque;
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::time::Duration;

    /// How long an idle helper waits for another job before it exits.
    pub(super) const IDLE: Duration = Duration::from_secs(2);

    type Job = Box<dyn FnOnce() + Send>;

    #[derive(Default)]
    struct Queue {
        jobs: VecDeque<Job>,
        idle: usize,
    }

    #[derive(Default)]
    struct Pool {
        queue: Mutex<Queue>,
        more: Condvar,
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(Pool::default)
    }

    /// Runs `job` on an idle helper, or on a new one when every helper is busy.
    pub(super) fn run(job: Job) -> std::io::Result<()> {
        let shared = pool();
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.idle > q.jobs.len() {
            q.jobs.push_back(job);
            shared.more.notify_one();
            return Ok(());
        }
        drop(q);
        std::thread::Builder::new()
            .name("kvmpager-clone-fault".into())
            .spawn(move || {
                job();
                serve(pool());
            })
            .map(drop)
    }

    /// A helper's loop: runs jobs until none comes for [`IDLE`].
    fn serve(pool: &Pool) {
        let mut q = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = q.jobs.pop_front() {
                drop(q);
                job();
                q = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            q.idle += 1;
            let (guard, timeout) = pool
                .more
                .wait_timeout(q, IDLE)
                .unwrap_or_else(|e| e.into_inner());
            q = guard;
            q.idle -= 1;
            if timeout.timed_out() && q.jobs.is_empty() {
                return;
            }
        }
    }
}
