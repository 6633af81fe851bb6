//! Pager objects: they own pager VMOs and die with their last handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::object::{WeakList, new_koid};
use crate::vmo::Vmo;

/// A pager (`zx_pager_create`).
pub struct Pager {
    koid: u64,
    vmos: WeakList<Vmo>,
    handles: AtomicUsize,
    closed: AtomicBool,
}

impl Pager {
    /// A new pager with no VMOs.
    pub fn new() -> Arc<Pager> {
        Arc::new(Pager {
            koid: new_koid(),
            vmos: WeakList::default(),
            handles: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Kernel object id.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// Whether the pager's last handle has been closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records a VMO created from this pager.
    pub(crate) fn add_vmo(&self, vmo: &Arc<Vmo>) {
        self.vmos.add(Arc::downgrade(vmo));
    }

    /// Closes the pager: its VMOs behave as detached (waiters get `ZX_ERR_BAD_STATE`), no more
    /// packets are sent for them, and queued COMPLETE packets are withdrawn.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for vmo in self.vmos.take() {
            vmo.pager_closed();
        }
    }

    pub(crate) fn handle_added(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn handle_removed(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}
