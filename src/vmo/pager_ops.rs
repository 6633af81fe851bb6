//! The pager operations other than SUPPLY on a pager VMO: FAIL, DIRTY, WRITEBACK_BEGIN/END,
//! detach (and the pager going away), and eviction.

use std::ops::Range;

use super::requests::request_packet;
use super::{Vmo, VmoState};
use crate::abi::Status;
use crate::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_DIRTY};
use crate::abi::status::*;
use crate::port::{COMPLETE_TOKEN, PacketSource};

impl Vmo {
    /// `ZX_PAGER_OP_FAIL`: fails outstanding requests overlapping the range.
    pub(crate) fn fail(&self, offset: u64, len: u64, status: Status) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        if st.detached {
            return Err(ZX_ERR_BAD_STATE);
        }
        let finished = st.requests.finish_overlapping(pages, None, status);
        self.settle(&mut st, finished, status);
        Ok(())
    }

    /// `ZX_PAGER_OP_DIRTY`: marks present pages dirty and resolves DIRTY requests.
    pub(crate) fn mark_dirty(&self, offset: u64, len: u64) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        if !self.link().is_some_and(|l| l.trap_dirty) {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        let mut st = self.lock();
        if st.detached {
            return Err(ZX_ERR_BAD_STATE);
        }
        let range = pages.start as usize..pages.end as usize;
        let gap = range.clone().any(|p| !st.committed.contains(p));
        if !gap {
            st.dirty.insert_range(range.clone());
            st.awaiting_clean.remove_range(range);
            // Dirty pages take writes freely; unprotecting wakes writers blocked on them.
            self.protect(pages.clone(), false);
        }
        let finished = if gap {
            st.requests
                .finish_overlapping(pages, Some(ZX_PAGER_VMO_DIRTY), ZX_OK)
        } else {
            let VmoState {
                requests, dirty, ..
            } = &mut *st;
            requests.resolve(ZX_PAGER_VMO_DIRTY, pages, |r| {
                (r.start..r.end).all(|p| dirty.contains(p as usize))
            })
        };
        self.settle(&mut st, finished, ZX_OK);
        if gap { Err(ZX_ERR_NOT_FOUND) } else { Ok(()) }
    }

    /// `ZX_PAGER_OP_WRITEBACK_BEGIN`: dirty pages in the range start writeback.
    pub(crate) fn writeback_begin(&self, offset: u64, len: u64) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        for p in pages.start as usize..pages.end as usize {
            if st.dirty.contains(p) {
                st.awaiting_clean.insert(p);
                // A write during writeback must be seen (it keeps the page dirty).
                self.protect(p as u64..p as u64 + 1, true);
            }
        }
        Ok(())
    }

    /// `ZX_PAGER_OP_WRITEBACK_END`: pages still awaiting clean become clean.
    pub(crate) fn writeback_end(&self, offset: u64, len: u64) -> Result<(), Status> {
        let pages = self.page_range(offset, len)?;
        let mut st = self.lock();
        for p in pages.start as usize..pages.end as usize {
            if st.awaiting_clean.contains(p) {
                st.awaiting_clean.set(p, false);
                st.dirty.set(p, false);
            }
        }
        Ok(())
    }

    /// Detaches the VMO from its pager: requests fail with `BAD_STATE`, clean pages are
    /// evicted (if `evict`: `zx_pager_detach_vmo`, Zircon's DecommitOnDetachTest; a closed
    /// pager leaves the supplied pages readable, Zircon's ClosePagerTest), clones drop their
    /// copies of evicted pages, and (if `complete`) one COMPLETE packet is queued. Idempotent.
    pub(crate) fn detach(&self, complete: bool, evict: bool) {
        let Some(link) = self.link() else { return };
        let mut st = self.lock();
        let newly = !st.detached;
        if !st.detached {
            st.detached = true;
            let finished = st.requests.finish_all(ZX_ERR_BAD_STATE);
            self.settle(&mut st, finished, ZX_ERR_BAD_STATE);
            if evict {
                self.evict_clean(&mut st);
            }
        }
        if complete && !st.complete_sent {
            st.complete_sent = true;
            let packet = request_packet(link.key, ZX_PAGER_VMO_COMPLETE, 0, 0);
            let source = PacketSource {
                owner: self.this.clone(),
                token: COMPLETE_TOKEN,
            };
            let charge = Some(self.owner.packet_charge());
            link.port.queue_charged(packet, Some(source), charge);
        }
        self.notify_changed(&st);
        drop(st);
        if newly && evict {
            self.invalidate_clones(0..self.pages());
        }
    }

    /// A pager VMO that was never handed out (its handle could not be installed): it is
    /// dropped without the COMPLETE packet a closed pager VMO sends.
    pub(crate) fn abandon(&self) {
        self.lock().complete_sent = true;
    }

    /// The pager is gone: detach without COMPLETE or eviction (supplied pages stay readable)
    /// and withdraw a queued COMPLETE.
    pub(crate) fn pager_closed(&self) {
        self.detach(false, false);
        if let Some(link) = self.link() {
            link.port.cancel(self, COMPLETE_TOKEN);
        }
    }

    /// Frees the pages known to be clean. Only a VMO that traps mapped writes knows which of
    /// its pages a mapping wrote; any other VMO ever mapped writable keeps every page: losing
    /// a guest's writes would be worse than keeping clean pages.
    fn evict_clean(&self, st: &mut VmoState) {
        if st.mapped_writable && !self.traps_mapped_writes() {
            return;
        }
        // Borrowed out for the walk (discarding never touches the dirty bits), not copied.
        let dirty = std::mem::take(&mut st.dirty);
        self.discard_committed(st, 0..self.pages(), |p| dirty.contains(p as usize));
        st.dirty = dirty;
    }

    /// Frees the committed pages of `pages` except those `keep` names, one `madvise` per run,
    /// skipping uncommitted stretches 64 pages at a time (nothing to free there).
    pub(crate) fn discard_committed(
        &self,
        st: &mut VmoState,
        pages: Range<u64>,
        keep: impl Fn(u64) -> bool,
    ) {
        let runs = st
            .committed
            .runs_where(pages.start as usize..pages.end as usize, |p| {
                !keep(p as u64)
            });
        for r in runs {
            self.discard_pages(st, r.start as u64..r.end as u64);
        }
    }
}
