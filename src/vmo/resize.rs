//! `zx_vmo_set_size`, the `zx_vmo_op_range` hints (PREFETCH, ALWAYS_NEED), and what a pager
//! learns about its VMO: `zx_pager_query_dirty_ranges` and `zx_pager_query_vmo_stats`.
//!
//! A VMO never grows past the size it was created with (its memory, its charge and its
//! userfaultfd registration are sized then); it shrinks and grows back within that.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Vmo, VmoState, overlaps_any, round_up_page};
use crate::abi::packet::ZX_PAGER_VMO_READ;
use crate::abi::status::*;
use crate::abi::{DirtyRange, PAGE_SIZE, Status};

impl Vmo {
    /// `zx_vmo_set_size` after the handle checks: `ZX_ERR_UNAVAILABLE` unless the VMO is
    /// resizable, `ZX_ERR_OUT_OF_RANGE` past its creation size, `ZX_ERR_NOT_SUPPORTED` for a
    /// clone or a VMO with live clones, `ZX_ERR_BAD_STATE` if pinned pages would be cut off.
    pub(crate) fn set_size(&self, size: u64) -> Result<(), Status> {
        if !self.is_resizable() {
            return Err(ZX_ERR_UNAVAILABLE);
        }
        let new = round_up_page(size)
            .filter(|&s| s <= self.capacity())
            .ok_or(ZX_ERR_OUT_OF_RANGE)?;
        if self.is_clone() {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let mut st = self.lock();
        if st.clones.iter().any(|c| c.strong_count() > 0) {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let (old_pages, new_pages) = (self.pages(), new / PAGE_SIZE);
        if new_pages < old_pages && overlaps_any(&st.pins, &(new_pages..old_pages)) {
            return Err(ZX_ERR_BAD_STATE);
        }
        self.size.store(new, Ordering::Release);
        st.modified = true;
        if new_pages < old_pages {
            self.cut(&mut st, new_pages..old_pages);
        }
        self.notify_changed(&st);
        Ok(())
    }

    /// Frees `pages` (now past the end) and ends their page requests: threads blocked in a
    /// fault on a page past the end fault fatally with `ZX_ERR_OUT_OF_RANGE`; others (a
    /// request that straddled the new end) ask again for their page; kernel calls waiting on
    /// them look again ([`Vmo::ensure`] turns `ZX_ERR_SHOULD_WAIT` into a retry or
    /// `ZX_ERR_OUT_OF_RANGE`).
    fn cut(&self, st: &mut VmoState, pages: Range<u64>) {
        self.discard_committed(st, pages.clone(), |_| false);
        let bits = pages.start as usize..pages.end as usize;
        st.dirty.remove_range(bits.clone());
        st.awaiting_clean.remove_range(bits);
        let mut finished = st
            .requests
            .finish_overlapping(pages.clone(), None, ZX_ERR_SHOULD_WAIT);
        for f in &mut finished {
            for (tid, page) in std::mem::take(&mut f.request.fault_tids) {
                if page >= pages.start {
                    self.report_fatal(&[(tid, page)], ZX_ERR_OUT_OF_RANGE);
                } else {
                    self.join_or_request(st, f.request.command, page, tid);
                }
            }
        }
        self.settle(st, finished, ZX_ERR_SHOULD_WAIT);
    }

    /// `ZX_VMO_OP_PREFETCH` / `ZX_VMO_OP_ALWAYS_NEED`: a pager VMO (or clone) requests its
    /// absent pages (READ, one run at a time) and waits for them, without forking clone pages;
    /// an anonymous VMO commits them.
    pub(crate) fn prefetch(
        &self,
        offset: u64,
        len: u64,
        killed: &AtomicBool,
    ) -> Result<(), Status> {
        if !self.is_pager_backed() {
            return self.commit(offset, len, killed);
        }
        let pages = self.page_range(offset, len)?;
        let st = self.lock();
        drop(self.ensure(st, ZX_PAGER_VMO_READ, pages, killed)?);
        Ok(())
    }

    /// `zx_pager_query_dirty_ranges` after the handle checks: the runs of dirty pages (dirty
    /// or awaiting clean) in `[offset, offset + len)` rounded out to pages; at most `max` of
    /// them, and how many there are in all.
    pub(crate) fn dirty_ranges(
        &self,
        offset: u64,
        len: u64,
        max: usize,
    ) -> Result<(Vec<DirtyRange>, u64), Status> {
        let pages = self.page_range(offset, len)?;
        let st = self.lock();
        let runs = st
            .dirty
            .runs_where(pages.start as usize..pages.end as usize, |_| true);
        let out = runs
            .iter()
            .take(max)
            .map(|r| DirtyRange {
                offset: r.start as u64 * PAGE_SIZE,
                length: r.len() as u64 * PAGE_SIZE,
                options: 0,
            })
            .collect();
        Ok((out, runs.len() as u64))
    }

    /// `zx_pager_query_vmo_stats` after the handle checks: whether the VMO was written or
    /// resized since the last reset; `reset` clears that.
    pub(crate) fn take_modified(&self, reset: bool) -> bool {
        let mut st = self.lock();
        let modified = st.modified;
        if reset {
            st.modified = false;
        }
        modified
    }
}
