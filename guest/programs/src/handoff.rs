//! Hands the pager, pager-VMO and port handles from vCPU 0, which creates them, to the vCPU
//! that serves the pager VMO's page requests.

use core::sync::atomic::{AtomicU32, Ordering};

use rt::sys::Handle;

/// The three handles, published once by vCPU 0 and awaited by the pager vCPU.
pub struct Handoff {
    pager: AtomicU32,
    vmo: AtomicU32,
    port: AtomicU32,
}

impl Handoff {
    /// An empty handoff (nothing published yet).
    pub const fn new() -> Self {
        Self {
            pager: AtomicU32::new(0),
            vmo: AtomicU32::new(0),
            port: AtomicU32::new(0),
        }
    }

    /// Publishes the handles; the pager handle goes last, as it is what [`Self::wait`] spins
    /// on.
    pub fn publish(&self, pager: Handle, vmo: Handle, port: Handle) {
        self.port.store(port.0, Ordering::Release);
        self.vmo.store(vmo.0, Ordering::Release);
        self.pager.store(pager.0, Ordering::Release);
    }

    /// Spins until the handles are published and returns `(pager, vmo, port)`.
    pub fn wait(&self) -> (Handle, Handle, Handle) {
        while self.pager.load(Ordering::Acquire) == 0 {
            core::hint::spin_loop();
        }
        (
            Handle(self.pager.load(Ordering::Acquire)),
            Handle(self.vmo.load(Ordering::Acquire)),
            Handle(self.port.load(Ordering::Acquire)),
        )
    }
}

impl Default for Handoff {
    fn default() -> Self {
        Self::new()
    }
}
