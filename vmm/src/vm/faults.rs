//! Page faults that stop the VM: fatal faults the kernel reports (a failed request, a detached
//! VMO, a closed pager) and page requests no pager answers within `--fault-timeout`. Each
//! stop names the VMO (koid), the offset and, where the page is mapped, its guest-physical
//! address.

use std::sync::Arc;
use std::time::Duration;

use super::Vm;
use crate::exit::StopReason;
use crate::kernel::FatalFault;
use crate::sync::lock;

impl Vm {
    /// Routes the fatal faults of both processes to [`Vm::request_stop`]. The sink runs with
    /// kernel locks held (the VMO's, sometimes the handle table's), so it takes no VM lock:
    /// the guest-physical address is filled in later by [`Vm::locate_stop`].
    pub(super) fn watch_fatal_faults(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let sink = Arc::new(move |f: FatalFault| {
            if let Some(vm) = weak.upgrade() {
                vm.request_stop(StopReason::FatalFault {
                    vmo_koid: f.vmo_koid,
                    vmo_offset: f.vmo_offset,
                    guest_physical: None,
                    host_addr: f.host_addr,
                    status: f.status,
                    tid: f.tid,
                });
            }
        });
        self.host.set_fatal_fault_sink(sink.clone());
        self.guest.set_fatal_fault_sink(sink);
    }

    /// Fills in where a fatal fault's page is in guest-physical memory (called by the runner,
    /// which holds no kernel lock).
    pub fn locate_stop(&self, mut reason: StopReason) -> StopReason {
        if let StopReason::FatalFault {
            vmo_koid,
            vmo_offset,
            guest_physical: gpa @ None,
            ..
        } = &mut reason
        {
            *gpa = self.guest_physical(*vmo_koid, *vmo_offset);
        }
        reason
    }

    /// The stop reason for the oldest page request (of the host pager or a guest pager) that
    /// has waited `limit` or longer, if there is one. Called by the runner, which holds no
    /// kernel lock.
    pub fn overdue_fault(&self, limit: Duration) -> Option<StopReason> {
        let host = self.host.overdue_request(limit).map(|r| (r, true));
        let guest = self.guest.overdue_request(limit).map(|r| (r, false));
        let (r, host_pager) = host
            .into_iter()
            .chain(guest)
            .max_by_key(|(r, _)| r.waited)?;
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
