//! Page faults that stop the VM: fatal faults the kernel reports (a failed request, a detached
//! VMO, a closed pager) and page requests no pager answers within `--fault-timeout`. Each
//! stop names the VMO (koid), the offset and, where the page is mapped, its guest-physical
//! address.
//!
//! With an exception port (`KvmpagerSetExceptionPort`) a vCPU's fatal fault is instead
//! delivered to the guest as an exception packet and that vCPU is parked for good, as long as
//! another vCPU still runs (Zircon's tests wait for a thread to crash with a status).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kvmpager::abi::ExceptionPacket;
use kvmpager::abi::packet::ZX_EXCP_FATAL_PAGE_FAULT;

use super::Vm;
use crate::exit::StopReason;
use crate::kernel::FatalFault;
use crate::sync::lock;

/// Which vCPU threads fatal faults come from, and which vCPUs are parked.
#[derive(Default)]
pub(crate) struct Exceptions {
    /// Host thread id → vCPU index, for the running vCPU threads.
    tids: BTreeMap<u32, u32>,
    /// vCPUs parked by a delivered fault.
    parked: BTreeSet<u32>,
    /// Faults to deliver, by vCPU (the vCPU's own thread sends the packet).
    pending: BTreeMap<u32, FatalFault>,
}

fn stop_reason(f: &FatalFault) -> StopReason {
    StopReason::FatalFault {
        vmo_koid: f.vmo_koid,
        vmo_offset: f.vmo_offset,
        guest_physical: None,
        host_addr: f.host_addr,
        status: f.status,
        tid: f.tid,
    }
}

impl Vm {
    /// Routes the fatal faults of both processes to [`Vm::request_stop`]. The sink runs with
    /// kernel locks held (the VMO's, sometimes the handle table's), so it takes no VM lock:
    /// the guest-physical address is filled in later by [`Vm::locate_stop`].
    pub(super) fn watch_fatal_faults(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let sink = Arc::new(move |f: FatalFault| {
            if let Some(vm) = weak.upgrade()
                && !vm.park_for_exception(&f)
            {
                vm.request_stop(stop_reason(&f));
            }
        });
        self.host.set_fatal_fault_sink(sink.clone());
        self.guest.set_fatal_fault_sink(sink);
    }

    /// Records the host thread id of vCPU `index`'s thread (fatal faults name threads).
    pub fn register_vcpu_tid(&self, index: u32, tid: u32) {
        lock(&self.exceptions).tids.insert(tid, index);
    }

    /// Forgets vCPU `index`'s thread id.
    pub fn unregister_vcpu_tid(&self, index: u32) {
        lock(&self.exceptions).tids.retain(|_, v| *v != index);
    }

    /// Whether vCPU `index` is parked by a delivered fatal fault.
    pub fn is_parked(&self, index: u32) -> bool {
        lock(&self.exceptions).parked.contains(&index)
    }

    /// The sink's choice: if `f` is a vCPU thread's fault, the guest has an exception port and
    /// another vCPU still runs, the vCPU is marked parked and kicked out of `KVM_RUN` (it
    /// sends the packet itself, [`Vm::deliver_exception`]); returns whether it was. Runs
    /// with kernel locks held, so it takes only the VM's own small locks.
    fn park_for_exception(&self, f: &FatalFault) -> bool {
        let mut ex = lock(&self.exceptions);
        let Some(&vcpu) = ex.tids.get(&f.tid) else {
            return false;
        };
        if ex.parked.contains(&vcpu) {
            return true;
        }
        let running = ex.tids.values().filter(|v| !ex.parked.contains(v)).count();
        if running < 2 || !self.guest.has_exception_port() {
            return false;
        }
        ex.parked.insert(vcpu);
        ex.pending.insert(vcpu, *f);
        drop(ex);
        self.kick_vcpu(vcpu);
        true
    }

    /// Called by parked vCPU `index`'s own thread (no kernel lock held): sends its exception
    /// packet, or stops the VM with the ordinary report if the port went away meanwhile.
    pub fn deliver_exception(&self, index: u32) {
        let Some(f) = lock(&self.exceptions).pending.remove(&index) else {
            return;
        };
        let packet = ExceptionPacket {
            key: 0,
            status: f.status,
            vcpu: index,
            exception: ZX_EXCP_FATAL_PAGE_FAULT,
            address: self.guest_physical(f.vmo_koid, f.vmo_offset).unwrap_or(0),
            vmo_koid: f.vmo_koid,
            vmo_offset: f.vmo_offset,
        };
        log::debug!("vCPU {index} parked: {packet:x?}");
        if !self.guest.deliver_exception(packet) {
            self.request_stop(stop_reason(&f));
        }
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
