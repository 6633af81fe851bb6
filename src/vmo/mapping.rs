//! Guest mappings and pins of a VMO: both count against SUPPLY's aux rules while they live,
//! and both end when their guard is dropped.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::Vmo;
use crate::abi::Status;
use crate::abi::packet::ZX_PAGER_VMO_READ;
use crate::abi::status::*;

impl Vmo {
    /// Counts a new guest mapping.
    pub(crate) fn mapped(&self, writable: bool) {
        let mut st = self.lock();
        st.mappings += 1;
        st.mapped_writable |= writable;
    }

    /// A guest mapping went away: pages the guest touched through it are now committed.
    pub(crate) fn unmapped(&self) {
        let mut st = self.lock();
        st.mappings = st.mappings.saturating_sub(1);
        if !self.is_pager_backed()
            && self.pages() > 0
            && let Ok(resident) = self.mem.resident(0, self.capacity)
        {
            for (p, r) in resident.iter().enumerate() {
                if *r {
                    st.committed.insert(p);
                }
            }
        }
    }

    /// Pins `pages` (they must be committed; a pager VMO's are requested first).
    pub(crate) fn pin(&self, pages: Range<u64>, killed: &AtomicBool) -> Result<(), Status> {
        let st = self.lock();
        let mut st = self.ensure(st, ZX_PAGER_VMO_READ, pages.clone(), killed)?;
        if !self.is_pager_backed() {
            let range = pages.start as usize..pages.end as usize;
            if range.clone().any(|p| !st.committed.contains(p)) {
                return Err(ZX_ERR_BAD_STATE);
            }
        }
        st.pins.push(pages);
        Ok(())
    }

    /// Removes one pin of exactly `pages`.
    pub(crate) fn unpin(&self, pages: &Range<u64>) {
        let mut st = self.lock();
        if let Some(i) = st.pins.iter().position(|p| p == pages) {
            st.pins.swap_remove(i);
        }
    }
}

/// A guest mapping of a VMO range; dropping it unmaps.
pub struct Mapping {
    vmo: Arc<Vmo>,
    offset: u64,
    len: u64,
}

impl Mapping {
    pub(crate) fn new(vmo: Arc<Vmo>, offset: u64, len: u64, writable: bool) -> Mapping {
        vmo.mapped(writable);
        Mapping { vmo, offset, len }
    }

    /// Host address of the mapped range (stays valid while the mapping lives).
    pub fn host_addr(&self) -> u64 {
        self.vmo.host_addr() + self.offset
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the mapping is empty (never: mappings have a non-zero length).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped VMO.
    pub fn vmo(&self) -> &Arc<Vmo> {
        &self.vmo
    }

    /// Offset of the mapping in the VMO.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.vmo.unmapped();
    }
}

/// A pin of a VMO page range; dropping it unpins.
pub struct Pin {
    vmo: Arc<Vmo>,
    pages: Range<u64>,
}

impl Pin {
    pub(crate) fn new(vmo: Arc<Vmo>, pages: Range<u64>) -> Pin {
        Pin { vmo, pages }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.vmo.unpin(&self.pages);
    }
}
