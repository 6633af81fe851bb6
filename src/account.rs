//! What the objects of one process share and are charged to: counters, limits, the kill
//! flag, the fault service, and where fatal faults go.
//!
//! It sits below the objects (a VMO holds its process's [`Shared`]) and above the port and
//! the fault service it hands out; the process itself ([`crate::process`]) only sets it up
//! and reads it, so the objects never import the process.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::abi::Status;
use crate::abi::status::{ZX_ERR_NO_MEMORY, ZX_ERR_NO_RESOURCES, ZX_ERR_NOT_SUPPORTED, name};
use crate::counters::Counters;
use crate::fault::FaultService;
use crate::port::PacketCharge;

/// A thread blocked in a fault on a pager-VMO page that will never be supplied: its request
/// was failed, or the VMO was detached or its pager closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatalFault {
    /// Koid of the pager VMO.
    pub vmo_koid: u64,
    /// Host address of the page.
    pub host_addr: u64,
    /// Offset of the page in its VMO.
    pub vmo_offset: u64,
    /// The status the access fails with (Zircon's `synth_code`).
    pub status: Status,
    /// The blocked thread.
    pub tid: u32,
}

/// Called with each [`FatalFault`]; the VMM stops the VM with an explanation.
pub type FatalFaultSink = Arc<dyn Fn(FatalFault) + Send + Sync>;

/// Default of [`Limits::handles`]: most handles one table may hold.
pub const MAX_HANDLES: usize = 1 << 20;

/// Default of [`Limits::queued_packets`].
pub const MAX_UNREAD_PACKETS: usize = 1 << 16;

/// What one process may hold at once. Going over a limit fails the call that would have,
/// with the status Zircon gives when it runs out of that resource; nothing else changes.
/// The defaults bound nothing a well-behaved program meets; the VMM sets tighter ones for
/// guests (`VmConfig::limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Live handles: one more gives `ZX_ERR_NO_RESOURCES` (a full handle table).
    pub handles: usize,
    /// Live VMOs the process created (pager VMOs and children included): one more gives
    /// `ZX_ERR_NO_RESOURCES`. Each VMO is a host mapping, and the host's mapping count is
    /// finite.
    pub vmos: usize,
    /// Total bytes of those VMOs, which the process can make the host commit: a VMO past it
    /// gives `ZX_ERR_NO_MEMORY`.
    pub vmo_bytes: u64,
    /// Packets the process's pager VMOs have queued and nobody has read yet: at the limit
    /// `zx_pager_create_vmo` gives `ZX_ERR_NO_MEMORY`. (A pager VMO closed without a detach
    /// leaves its COMPLETE packet in the port until the pager reads it, so a process that
    /// creates and closes pager VMOs and never reads would otherwise grow host memory without
    /// bound; live VMOs add at most two packets each.)
    pub queued_packets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handles: MAX_HANDLES,
            vmos: 1 << 20,
            vmo_bytes: u64::MAX,
            queued_packets: MAX_UNREAD_PACKETS,
        }
    }
}

/// What the objects of one process share: counters, the kill flag, the fault service.
#[derive(Default)]
pub struct Shared {
    /// Counters of this process's pager VMOs.
    pub counters: Counters,
    /// Set by `Process::kill`: blocking calls return `ZX_ERR_CANCELED`.
    pub killed: AtomicBool,
    sink: RwLock<Option<FatalFaultSink>>,
    faults: Mutex<Option<Arc<FaultService>>>,
    /// Bytes of VMOs this process has created and not yet destroyed.
    vmo_bytes: AtomicU64,
    /// Number of those VMOs.
    vmo_count: AtomicUsize,
    /// The limits (handles are enforced by the table).
    limits: RwLock<Limits>,
    /// Packets this process's pager VMOs have queued that are not yet read or withdrawn.
    queued_packets: Arc<AtomicUsize>,
    /// Longest a blocking call may wait, in nanoseconds (0: no limit).
    wait_limit_ns: AtomicU64,
}

impl Shared {
    /// The process's limits.
    pub(crate) fn limits(&self) -> Limits {
        *self.limits.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the process's limits.
    pub(crate) fn set_limits(&self, limits: Limits) {
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// Where fatal faults go from now on.
    pub(crate) fn set_sink(&self, sink: FatalFaultSink) {
        *self.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// Charges a new VMO of `bytes` against the process's limits: `ZX_ERR_NO_RESOURCES` past
    /// the VMO count, `ZX_ERR_NO_MEMORY` past the bytes.
    pub(crate) fn charge(&self, bytes: u64) -> Result<(), Status> {
        let limits = self.limits();
        self.vmo_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.vmos).then_some(n + 1)
            })
            .map_err(|_| ZX_ERR_NO_RESOURCES)?;
        let charged = self
            .vmo_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&t| t <= limits.vmo_bytes)
            });
        if charged.is_err() {
            self.vmo_count.fetch_sub(1, Ordering::AcqRel);
            return Err(ZX_ERR_NO_MEMORY);
        }
        Ok(())
    }

    /// Returns a destroyed VMO (of `bytes`) to the process.
    pub(crate) fn uncharge(&self, bytes: u64) {
        self.vmo_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.vmo_count.fetch_sub(1, Ordering::AcqRel);
    }

    /// Number of the process's live VMOs.
    pub(crate) fn vmo_count(&self) -> usize {
        self.vmo_count.load(Ordering::Acquire)
    }

    /// Total size of the process's live VMOs.
    pub(crate) fn vmo_bytes(&self) -> u64 {
        self.vmo_bytes.load(Ordering::Acquire)
    }

    /// Caps blocking calls at `limit` (`None`: no cap).
    pub(crate) fn set_wait_limit(&self, limit: Option<Duration>) {
        let ns = limit.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
        self.wait_limit_ns.store(ns, Ordering::Relaxed);
    }

    /// The wait limit set by [`Shared::set_wait_limit`], if any.
    pub(crate) fn wait_limit(&self) -> Option<Duration> {
        match self.wait_limit_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Counts one packet a pager VMO of this process queues, until the packet leaves its port.
    pub(crate) fn packet_charge(&self) -> PacketCharge {
        PacketCharge::new(&self.queued_packets)
    }

    /// Packets the process's pager VMOs have queued that nobody has read yet.
    pub(crate) fn queued_packets(&self) -> usize {
        self.queued_packets.load(Ordering::Acquire)
    }

    /// Hands a fatal fault to the sink (or logs it when there is none).
    pub(crate) fn report_fatal(&self, fault: FatalFault) {
        let sink = self.sink.read().unwrap_or_else(|e| e.into_inner()).clone();
        match sink {
            Some(sink) => sink(fault),
            None => log::error!(
                "thread {} faulted on a page that will never arrive ({}): {fault:?}",
                fault.tid,
                name(fault.status)
            ),
        }
    }

    /// The process's fault service, started on first use; `ZX_ERR_NOT_SUPPORTED` when the
    /// host has no usable userfaultfd.
    pub(crate) fn fault_service(&self) -> Result<Arc<FaultService>, Status> {
        let mut slot = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(service) = slot.as_ref() {
            return Ok(service.clone());
        }
        let service = FaultService::start(false).map_err(|e| {
            log::error!("cannot serve pager faults: {e}");
            ZX_ERR_NOT_SUPPORTED
        })?;
        *slot = Some(service.clone());
        Ok(service)
    }

    /// The fault service if one was started (none is until the first pager VMO).
    pub(crate) fn started_fault_service(&self) -> Option<Arc<FaultService>> {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
