//! Processes and their system calls.
//!
//! A [`Process`] is one handle table (one per guest, plus a host-side one per VM for the
//! VMM's own objects) and the calls made through it. Each call checks its arguments in
//! Zircon's order (`shared/spec/zircon-pager-semantics.md` §1.6 and §2) and returns the
//! status the spec names; nothing a caller passes can panic the kernel.
//!
//! This file holds the process itself, its settings and the handle lookups; the calls are
//! grouped by object, one `impl Process` block per file: `process/handles.rs`, `vmos.rs`,
//! `pagers.rs` and `ports.rs` (the pattern of `src/vmo/`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::vmo_options::*;
use crate::abi::{Handle, PAGE_SIZE, Rights, Status};
use crate::account::{FatalFaultSink, Limits, Shared};
use crate::counters::CounterValues;
use crate::handle::{HandleTable, KernelObject};
use crate::pager::Pager;
use crate::port::Port;
use crate::request::{OverdueRequest, PagerVmoRequests};
use crate::vmo::{SupplyStrategy, Vmo};

mod handles;
mod pagers;
mod ports;
mod vmos;

/// A handle table and the system calls made through it.
pub struct Process {
    table: Mutex<HandleTable>,
    shared: Arc<Shared>,
    /// How SUPPLY calls fill pages: an index into [`SupplyStrategy::ALL`].
    strategy: AtomicU8,
    /// Where exception packets go (`KvmpagerSetExceptionPort`), with their key.
    exception_port: Mutex<Option<(Arc<Port>, u64)>>,
}

type Result<T> = std::result::Result<T, Status>;

impl Process {
    /// A new process with an empty handle table.
    pub fn new() -> Arc<Process> {
        Arc::new(Process {
            table: Mutex::new(HandleTable::new()),
            shared: Arc::default(),
            strategy: AtomicU8::new(0),
            exception_port: Mutex::new(None),
        })
    }

    /// Makes every blocking call of this process return `ZX_ERR_CANCELED` (VM stop).
    pub fn kill(&self) {
        self.shared.killed.store(true, Ordering::Release);
        // Wake the waiters on this process's ports and VMOs now rather than at their next
        // poll (VM teardown waits for them).
        let objects = self.table().objects();
        for object in objects {
            match object {
                KernelObject::Port(port) => port.wake_all(),
                KernelObject::Vmo(vmo) => vmo.wake_waiters(),
                KernelObject::Pager(_) => {}
            }
        }
    }

    /// Where fatal faults on this process's pager VMOs go.
    pub fn set_fatal_fault_sink(&self, sink: FatalFaultSink) {
        self.shared.set_sink(sink);
    }

    /// Sets what this process may hold at once (see [`Limits`]); set it before the process
    /// makes anything.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.set_limits(limits);
        self.table().set_max(limits.handles);
    }

    /// Caps the total size of the VMOs this process may have alive at once (what a guest
    /// could make the host commit): creating one past it gives `ZX_ERR_NO_MEMORY`.
    pub fn set_vmo_memory_limit(&self, bytes: u64) {
        let limits = self.shared.limits();
        self.set_limits(Limits {
            vmo_bytes: bytes,
            ..limits
        });
    }

    /// Number of this process's live VMOs.
    pub fn vmo_count(&self) -> usize {
        self.shared.vmo_count()
    }

    /// Packets this process's pager VMOs have queued that nobody has read yet.
    pub fn queued_packets(&self) -> usize {
        self.shared.queued_packets()
    }

    /// Caps every blocking call of this process — port waits, and calls waiting for pages of
    /// its pager VMOs — at `limit`: past it the call gives `ZX_ERR_TIMED_OUT` (the page
    /// request stays outstanding). `None` (the default) waits as long as Zircon would. For
    /// harnesses where no pager may ever answer, such as the hypercall fuzzer.
    pub fn set_wait_limit(&self, limit: Option<Duration>) {
        self.shared.set_wait_limit(limit);
    }

    /// The oldest page request of this process's pager VMOs that has waited at least `age`
    /// for its pager, if any: the VMM's `--fault-timeout` watchdog stops the VM over it.
    pub fn overdue_request(&self, age: Duration) -> Option<OverdueRequest> {
        self.shared.started_fault_service()?.overdue_request(age)
    }

    /// Pins this process's fault-service thread (if started) to host CPU `cpu`.
    pub fn pin_fault_thread(&self, cpu: usize) -> std::io::Result<()> {
        match self.shared.started_fault_service() {
            Some(f) => f.pin(cpu),
            None => Ok(()),
        }
    }

    /// Every pager VMO of this process with its outstanding page requests (oldest first).
    pub fn pager_vmos(&self) -> Vec<PagerVmoRequests> {
        self.shared
            .started_fault_service()
            .map(|f| f.pager_vmos())
            .unwrap_or_default()
    }

    /// Total size of this process's live VMOs.
    pub fn vmo_memory(&self) -> u64 {
        self.shared.vmo_bytes()
    }

    /// How this process's SUPPLY calls fill pages (default: [`SupplyStrategy::Auto`]).
    pub fn set_supply_strategy(&self, strategy: SupplyStrategy) {
        self.strategy.store(strategy.index(), Ordering::Relaxed);
    }

    fn strategy(&self) -> SupplyStrategy {
        let i = self.strategy.load(Ordering::Relaxed) as usize;
        SupplyStrategy::ALL.get(i).copied().unwrap_or_default()
    }

    /// Counters of this process's pager VMOs.
    pub fn counters(&self) -> CounterValues {
        self.shared.counters.read()
    }

    /// Counters of this process's pager VMOs without the latency samples (cheap; for
    /// frequent readers such as the metrics endpoint).
    pub fn counter_totals(&self) -> CounterValues {
        self.shared.counters.read_totals()
    }

    /// Number of live handles.
    pub fn handle_count(&self) -> usize {
        self.table().len()
    }

    // ---- lookups -------------------------------------------------------------------------

    fn table(&self) -> MutexGuard<'_, HandleTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks `handle` up: BAD_HANDLE, then WRONG_TYPE, then ACCESS_DENIED (missing `rights`).
    fn lookup<T>(
        &self,
        handle: Handle,
        rights: Rights,
        cast: impl Fn(&KernelObject) -> Option<Arc<T>>,
    ) -> Result<(Arc<T>, Rights)> {
        let table = self.table();
        let entry = table.get(handle)?;
        let object = cast(&entry.object).ok_or(ZX_ERR_WRONG_TYPE)?;
        if entry.rights & rights != rights {
            return Err(ZX_ERR_ACCESS_DENIED);
        }
        Ok((object, entry.rights))
    }

    fn vmo(&self, handle: Handle, rights: Rights) -> Result<(Arc<Vmo>, Rights)> {
        self.lookup(handle, rights, |o| match o {
            KernelObject::Vmo(v) => Some(v.clone()),
            _ => None,
        })
    }

    fn pager(&self, handle: Handle, rights: Rights) -> Result<Arc<Pager>> {
        let (pager, _) = self.lookup(handle, rights, |o| match o {
            KernelObject::Pager(p) => Some(p.clone()),
            _ => None,
        })?;
        Ok(pager)
    }

    fn port(&self, handle: Handle, rights: Rights) -> Result<Arc<Port>> {
        let (port, _) = self.lookup(handle, rights, |o| match o {
            KernelObject::Port(p) => Some(p.clone()),
            _ => None,
        })?;
        Ok(port)
    }

    /// The pager checks, the VMO checks (WRITE), then ownership (`ZX_ERR_INVALID_ARGS` when the
    /// VMO was not created by this pager).
    fn owned_vmo(&self, pager: Handle, pager_rights: Rights, vmo: Handle) -> Result<Arc<Vmo>> {
        self.owned_vmo_with(pager, pager_rights, vmo, ZX_RIGHT_WRITE)
    }

    /// [`Process::owned_vmo`] with the VMO's rights given.
    fn owned_vmo_with(
        &self,
        pager: Handle,
        pager_rights: Rights,
        vmo: Handle,
        vmo_rights: Rights,
    ) -> Result<Arc<Vmo>> {
        let pager = self.pager(pager, pager_rights)?;
        let (vmo, _) = self.vmo(vmo, vmo_rights)?;
        if vmo.pager_koid() != Some(pager.koid()) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        Ok(vmo)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        self.table().clear();
    }
}

/// `ZX_ERR_INVALID_ARGS` unless `offset` and `length` are page aligned.
fn check_aligned(offset: u64, length: u64) -> Result<()> {
    if !offset.is_multiple_of(PAGE_SIZE) || !length.is_multiple_of(PAGE_SIZE) {
        return Err(ZX_ERR_INVALID_ARGS);
    }
    Ok(())
}

/// The rights of a new VMO handle made with `options`.
fn vmo_rights(options: u32) -> Rights {
    let resize = if options & ZX_VMO_RESIZABLE != 0 {
        ZX_RIGHT_RESIZE
    } else {
        0
    };
    ZX_DEFAULT_VMO_RIGHTS | resize
}
