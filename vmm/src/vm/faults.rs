//! Page faults that stop the VM: fatal faults the kernel reports (a failed request, a detached
//! VMO, a closed pager) and page requests no pager answers within `--fault-timeout`. Each
//! stop names the VMO (koid), the offset and, where the page is mapped, its guest-physical
//! address.

use std::sync::Arc;
use std::time::Duration;

use super::{Vm, lock};
use crate::exit::StopReason;
use crate::kernel::FatalFault;

impl Vm {
    /// Routes the fatal faults of both processes to [`Vm::request_stop`].
    pub(super) fn watch_fatal_faults(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let sink = Arc::new(move |f: FatalFault| {
            if let Some(vm) = weak.upgrade() {
                vm.request_stop(StopReason::FatalFault {
                    vmo_koid: f.vmo_koid,
                    vmo_offset: f.vmo_offset,
                    guest_physical: vm.guest_physical(f.vmo_koid, f.vmo_offset),
                    host_addr: f.host_addr,
                    status: f.status,
                    tid: f.tid,
                });
            }
        });
        self.host.set_fatal_fault_sink(sink.clone());
        self.guest.set_fatal_fault_sink(sink);
    }

    /// The stop reason for the oldest page request (of the host pager or a guest pager) that
    /// has waited `limit` or longer, if there is one.
    pub fn overdue_fault(&self, limit: Duration) -> Option<StopReason> {
        let (r, host_pager) = match self.host.overdue_request(limit) {
            Some(r) => (r, true),
            None => (self.guest.overdue_request(limit)?, false),
        };
        Some(StopReason::FaultTimeout {
            vmo_koid: r.vmo_koid,
            offset: r.offset,
            len: r.len,
            guest_physical: self.guest_physical(r.vmo_koid, r.offset),
            command: r.command,
            waited_ms: r.waited.as_millis() as u64,
            limit_ms: limit.as_millis() as u64,
            host_pager,
        })
    }

    /// Where offset `offset` of VMO `koid` is in guest-physical memory: RAM, or an aperture
    /// mapping (the first one, if the VMO is mapped more than once).
    pub fn guest_physical(&self, koid: u64, offset: u64) -> Option<u64> {
        if self.ram_vmo.as_ref().is_some_and(|v| v.koid() == koid) {
            return (offset < self.ram.size()).then_some(offset);
        }
        let ap = lock(&self.aperture);
        ap.mappings.iter().find_map(|(&gpa, m)| {
            let inside =
                m.vmo().koid() == koid && offset >= m.offset() && offset - m.offset() < m.len();
            inside.then(|| gpa + (offset - m.offset()))
        })
    }
}
