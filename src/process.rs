//! Processes and their system calls.
//!
//! A [`Process`] is one handle table (one per guest, plus a host-side one per VM for the
//! VMM's own objects) and the calls made through it. Each call checks its arguments in
//! Zircon's order (`shared/spec/zircon-pager-semantics.md` §1.6 and §2) and returns the
//! status the spec names; nothing a caller passes can panic the kernel.

use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::abi::pager_op::*;
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::vmo_op::{ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use crate::abi::vmo_options::*;
use crate::abi::{Handle, PAGE_SIZE, PortPacket, Rights, Status, VmoInfo};
use crate::account::{FatalFaultSink, Limits, Shared};
use crate::handle::{HandleTable, KernelObject};
use crate::pager::Pager;
use crate::port::Port;
use crate::request::OverdueRequest;
use crate::stats::StatsSnapshot;
use crate::vmo::{Mapping, PagerLink, Pin, SupplyStrategy, Vmo};

/// A handle table and the system calls made through it.
pub struct Process {
    table: Mutex<HandleTable>,
    shared: Arc<Shared>,
    /// How SUPPLY calls fill pages: an index into [`SupplyStrategy::ALL`].
    strategy: AtomicU8,
}

type Result<T> = std::result::Result<T, Status>;

impl Process {
    /// A new process with an empty handle table.
    pub fn new() -> Arc<Process> {
        Arc::new(Process {
            table: Mutex::new(HandleTable::new()),
            shared: Arc::default(),
            strategy: AtomicU8::new(0),
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
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Number of live handles.
    pub fn handle_count(&self) -> usize {
        self.table().len()
    }

    // ---- handles -------------------------------------------------------------------------

    /// `zx_handle_close`. Closing `ZX_HANDLE_INVALID` is a no-op, as in Zircon.
    pub fn handle_close(&self, handle: Handle) -> Result<()> {
        if handle == crate::abi::ZX_HANDLE_INVALID {
            return Ok(());
        }
        let entry = self.table().remove(handle)?;
        drop(entry);
        Ok(())
    }

    /// `zx_handle_duplicate`: needs DUPLICATE; `rights` must be a subset (or SAME_RIGHTS).
    pub fn handle_duplicate(&self, handle: Handle, rights: Rights) -> Result<Handle> {
        let mut table = self.table();
        let entry = table.get(handle)?.clone();
        if entry.rights & ZX_RIGHT_DUPLICATE == 0 {
            return Err(ZX_ERR_ACCESS_DENIED);
        }
        let rights = narrowed(entry.rights, rights)?;
        table.insert(entry.object, rights)
    }

    /// `zx_handle_replace`: a new handle with `rights` (a subset); the old one is closed.
    pub fn handle_replace(&self, handle: Handle, rights: Rights) -> Result<Handle> {
        let mut table = self.table();
        let rights = narrowed(table.get(handle)?.rights, rights)?;
        table.replace(handle, rights)
    }

    /// Puts an object into this table (the VMM hands host-made objects to guests this way).
    pub fn install(&self, object: KernelObject, rights: Rights) -> Result<Handle> {
        self.table().insert(object, rights)
    }

    /// The VMO `handle` names, if it names one (host-side use: mapping, snapshots).
    pub fn vmo_object(&self, handle: Handle) -> Result<Arc<Vmo>> {
        Ok(self.vmo(handle, 0)?.0)
    }

    // ---- VMOs ----------------------------------------------------------------------------

    /// `zx_vmo_create`. Options: `ZX_VMO_RESIZABLE` (accepted; size changes are not
    /// supported) and kvmpager's `KVMPAGER_VMO_HUGE`; others give `ZX_ERR_INVALID_ARGS`.
    pub fn vmo_create(&self, size: u64, options: u32) -> Result<Handle> {
        if options & !(ZX_VMO_RESIZABLE | KVMPAGER_VMO_HUGE) != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let huge = options & KVMPAGER_VMO_HUGE != 0;
        let vmo = Vmo::create(size, huge, self.shared.clone())?;
        let rights = vmo_rights(options);
        self.install(KernelObject::Vmo(vmo), rights)
    }

    /// `zx_vmo_read` (needs READ). Pager VMOs block until the pages are supplied.
    pub fn vmo_read(&self, vmo: Handle, buf: &mut [u8], offset: u64) -> Result<()> {
        let (vmo, _) = self.vmo(vmo, ZX_RIGHT_READ)?;
        vmo.read(offset, buf, &self.shared.killed)
    }

    /// `zx_vmo_write` (needs WRITE). Pager VMOs block until the pages are supplied.
    pub fn vmo_write(&self, vmo: Handle, buf: &[u8], offset: u64) -> Result<()> {
        let (vmo, _) = self.vmo(vmo, ZX_RIGHT_WRITE)?;
        vmo.write(offset, buf, &self.shared.killed)
    }

    /// The checks of `zx_vmo_read` (`write`: `zx_vmo_write`) for `[offset, offset + len)` —
    /// handle, rights, range — and, for a pager VMO, the page requests, one run at a time; no
    /// bytes move. The VMM calls it before copying a large guest buffer in pieces, so requests
    /// have the shape of one whole-range access and a zero-length call still checks the handle.
    pub fn vmo_prepare_io(&self, vmo: Handle, offset: u64, len: u64, write: bool) -> Result<()> {
        let right = if write { ZX_RIGHT_WRITE } else { ZX_RIGHT_READ };
        let (vmo, _) = self.vmo(vmo, right)?;
        vmo.prepare(offset, len, write, &self.shared.killed)
    }

    /// `zx_vmo_get_size`.
    pub fn vmo_get_size(&self, vmo: Handle) -> Result<u64> {
        Ok(self.vmo(vmo, 0)?.0.size())
    }

    /// `zx_vmo_op_range` with COMMIT or DECOMMIT (needs WRITE); others: NOT_SUPPORTED.
    pub fn vmo_op_range(&self, vmo: Handle, op: u32, offset: u64, size: u64) -> Result<()> {
        let (vmo, _) = self.vmo(vmo, ZX_RIGHT_WRITE)?;
        match op {
            ZX_VMO_OP_COMMIT => vmo.commit(offset, size, &self.shared.killed),
            ZX_VMO_OP_DECOMMIT => vmo.decommit(offset, size),
            _ => Err(ZX_ERR_NOT_SUPPORTED),
        }
    }

    /// `zx_vmo_create_child` with `ZX_VMO_CHILD_SNAPSHOT` (needs DUPLICATE and READ; anonymous
    /// VMOs only). The child's pages are copied at creation.
    pub fn vmo_create_child(
        &self,
        vmo: Handle,
        options: u32,
        offset: u64,
        size: u64,
    ) -> Result<Handle> {
        let (vmo, rights) = self.vmo(vmo, ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ)?;
        if options != crate::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        offset.checked_add(size).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        let child = vmo.create_child(offset, size)?;
        self.install(KernelObject::Vmo(child), rights | ZX_RIGHT_WRITE)
    }

    /// kvmpager's `zx_vmo_get_info`: size, committed bytes, mappings, children, pins.
    pub fn vmo_get_info(&self, vmo: Handle) -> Result<VmoInfo> {
        let (vmo, rights) = self.vmo(vmo, ZX_RIGHT_INSPECT)?;
        Ok(vmo.info(rights))
    }

    /// Pins `[offset, offset + len)` of a VMO (needs WRITE): pinned pages cannot be supplied
    /// from. The pin lasts until the returned guard is dropped.
    pub fn vmo_pin(&self, vmo: Handle, offset: u64, len: u64) -> Result<Pin> {
        let (vmo, _) = self.vmo(vmo, ZX_RIGHT_WRITE)?;
        let pages = aligned_pages(offset, len)?;
        vmo.page_range(offset, len)?;
        vmo.pin(pages.clone(), &self.shared.killed)?;
        Ok(Pin::new(vmo, pages))
    }

    /// `zx_vmar_map` of `[vmo_offset, +len)` into a guest (needs MAP and READ, and WRITE when
    /// `writable`). The mapping counts for SUPPLY's "no mappings" rule while it lives.
    pub fn vmar_map(
        &self,
        vmo: Handle,
        vmo_offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<Mapping> {
        let need = ZX_RIGHT_MAP | ZX_RIGHT_READ | if writable { ZX_RIGHT_WRITE } else { 0 };
        let (vmo, _) = self.vmo(vmo, need)?;
        if len == 0 || vmo_offset % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        vmo.page_range(vmo_offset, len)?;
        Ok(Mapping::new(vmo, vmo_offset, len, writable))
    }

    // ---- pagers --------------------------------------------------------------------------

    /// `zx_pager_create`: `options` must be 0.
    pub fn pager_create(&self, options: u32) -> Result<Handle> {
        if options != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        self.install(KernelObject::Pager(Pager::new()), ZX_DEFAULT_PAGER_RIGHTS)
    }

    /// `zx_pager_create_vmo`: pager needs ATTACH_VMO, port needs WRITE; options may be
    /// RESIZABLE, TRAP_DIRTY and UNBOUNDED.
    pub fn pager_create_vmo(
        &self,
        pager: Handle,
        options: u32,
        port: Handle,
        key: u64,
        size: u64,
    ) -> Result<Handle> {
        let pager = self.pager(pager, ZX_RIGHT_ATTACH_VMO)?;
        let port = self.port(port, ZX_RIGHT_WRITE)?;
        if options & !(ZX_VMO_RESIZABLE | ZX_VMO_TRAP_DIRTY | ZX_VMO_UNBOUNDED) != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        if crate::vmo::round_up_page(size).is_none_or(|s| s > crate::vmo::MAX_VMO_SIZE) {
            return Err(ZX_ERR_OUT_OF_RANGE);
        }
        if pager.is_closed() {
            return Err(ZX_ERR_BAD_STATE);
        }
        if self.queued_packets() >= self.shared.limits().queued_packets {
            return Err(ZX_ERR_NO_MEMORY);
        }
        let link = PagerLink {
            pager_koid: pager.koid(),
            port: port.clone(),
            key,
            trap_dirty: options & ZX_VMO_TRAP_DIRTY != 0,
            faults: self.shared.fault_service()?,
        };
        let vmo = Vmo::create_paged(size, link, self.shared.clone())?;
        match self.install(KernelObject::Vmo(vmo.clone()), vmo_rights(options)) {
            Ok(handle) => {
                pager.add_vmo(&vmo);
                port.add_owner(&vmo);
                Ok(handle)
            }
            Err(status) => {
                // Never handed out: it goes without a COMPLETE packet.
                vmo.abandon();
                Err(status)
            }
        }
    }

    /// `zx_pager_detach_vmo`: pager needs ATTACH_VMO and MANAGE_VMO, the VMO needs WRITE.
    pub fn pager_detach_vmo(&self, pager: Handle, vmo: Handle) -> Result<()> {
        let vmo = self.owned_vmo(pager, ZX_RIGHT_ATTACH_VMO | ZX_RIGHT_MANAGE_VMO, vmo)?;
        vmo.detach(true);
        Ok(())
    }

    /// `zx_pager_vmo_op` (the seed's call): SUPPLY_PAGES, FAIL, DIRTY, WRITEBACK_BEGIN/END.
    /// For the non-supply ops `aux_offset` is their `data` and `aux_vmo` is not looked at.
    /// An unknown `op` gives `ZX_ERR_INVALID_ARGS` (after the handle checks).
    #[allow(clippy::too_many_arguments)]
    pub fn pager_vmo_op(
        &self,
        pager: Handle,
        pager_vmo: Handle,
        op: u32,
        offset: u64,
        length: u64,
        aux_vmo: Handle,
        aux_offset: u64,
    ) -> Result<()> {
        if op == ZX_PAGER_SUPPLY_PAGES {
            let supplied = self
                .pager_supply_pages_counted(pager, pager_vmo, offset, length, aux_vmo, aux_offset);
            return supplied.map(|_| ());
        }
        self.checked_range_op(
            pager,
            op,
            pager_vmo,
            offset,
            length,
            aux_offset,
            ZX_ERR_INVALID_ARGS,
        )
    }

    /// `zx_pager_supply_pages` in current Fuchsia's argument order.
    pub fn pager_supply_pages(
        &self,
        pager: Handle,
        pager_vmo: Handle,
        offset: u64,
        length: u64,
        aux_vmo: Handle,
        aux_offset: u64,
    ) -> Result<()> {
        self.pager_vmo_op(
            pager,
            pager_vmo,
            ZX_PAGER_SUPPLY_PAGES,
            offset,
            length,
            aux_vmo,
            aux_offset,
        )
    }

    /// `zx_pager_op_range` in current Fuchsia's argument order; an unknown op (including
    /// SUPPLY_PAGES, which Fuchsia does not route here) gives `ZX_ERR_NOT_SUPPORTED`.
    pub fn pager_op_range(
        &self,
        pager: Handle,
        op: u32,
        pager_vmo: Handle,
        offset: u64,
        length: u64,
        data: u64,
    ) -> Result<()> {
        self.checked_range_op(
            pager,
            op,
            pager_vmo,
            offset,
            length,
            data,
            ZX_ERR_NOT_SUPPORTED,
        )
    }

    /// The checks both range-op calls share — alignment, the pager (MANAGE_VMO), the VMO
    /// (WRITE), ownership — then FAIL, DIRTY or WRITEBACK_BEGIN/END; an unknown op gives
    /// `unknown` (the two calls differ there).
    #[allow(clippy::too_many_arguments)]
    fn checked_range_op(
        &self,
        pager: Handle,
        op: u32,
        pager_vmo: Handle,
        offset: u64,
        length: u64,
        data: u64,
        unknown: Status,
    ) -> Result<()> {
        check_aligned(offset, length)?;
        let vmo = self.owned_vmo(pager, ZX_RIGHT_MANAGE_VMO, pager_vmo)?;
        match op {
            ZX_PAGER_OP_FAIL
            | ZX_PAGER_OP_DIRTY
            | ZX_PAGER_OP_WRITEBACK_BEGIN
            | ZX_PAGER_OP_WRITEBACK_END => range_op(&vmo, op, offset, length, data),
            _ => Err(unknown),
        }
    }

    /// `zx_pager_supply_pages` that also says how many pages it newly inserted (pages already
    /// present are skipped): for host pagers that count pages on demand vs prefetched
    /// exactly even when two of them race.
    #[allow(clippy::too_many_arguments)]
    pub fn pager_supply_pages_counted(
        &self,
        pager: Handle,
        pager_vmo: Handle,
        offset: u64,
        length: u64,
        aux_vmo: Handle,
        aux_offset: u64,
    ) -> Result<u64> {
        check_aligned(offset, length)?;
        if aux_offset % PAGE_SIZE != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let vmo = self.owned_vmo(pager, ZX_RIGHT_MANAGE_VMO, pager_vmo)?;
        let (aux, _) = self.vmo(aux_vmo, ZX_RIGHT_READ | ZX_RIGHT_WRITE)?;
        if Arc::ptr_eq(&aux, &vmo) {
            return Err(ZX_ERR_BAD_STATE);
        }
        vmo.supply(offset, length, &aux, aux_offset, self.strategy())
    }

    // ---- ports ---------------------------------------------------------------------------

    /// `zx_port_create`: `options` must be 0.
    pub fn port_create(&self, options: u32) -> Result<Handle> {
        if options != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        self.install(KernelObject::Port(Port::new()), ZX_DEFAULT_PORT_RIGHTS)
    }

    /// `zx_port_wait` (needs READ): the next packet, or `ZX_ERR_TIMED_OUT` at `deadline`
    /// (`None`: wait forever), or `ZX_ERR_CANCELED` once the process is killed.
    pub fn port_wait(&self, port: Handle, deadline: Option<Instant>) -> Result<PortPacket> {
        let port = self.port(port, ZX_RIGHT_READ)?;
        let deadline = match self.shared.wait_limit() {
            Some(limit) => {
                let cap = Instant::now() + limit;
                Some(deadline.map_or(cap, |d| d.min(cap)))
            }
            None => deadline,
        };
        port.wait(deadline, &self.shared.killed)
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
        let pager = self.pager(pager, pager_rights)?;
        let (vmo, _) = self.vmo(vmo, ZX_RIGHT_WRITE)?;
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

/// FAIL, DIRTY, WRITEBACK_BEGIN and WRITEBACK_END with their `data` checks.
fn range_op(vmo: &Vmo, op: u32, offset: u64, length: u64, data: u64) -> Result<()> {
    match op {
        ZX_PAGER_OP_FAIL => {
            let status = fail_status(data)?;
            vmo.fail(offset, length, status)
        }
        ZX_PAGER_OP_DIRTY if data == 0 => vmo.mark_dirty(offset, length),
        ZX_PAGER_OP_WRITEBACK_BEGIN if data == 0 || data == ZX_VMO_DIRTY_RANGE_IS_ZERO => {
            vmo.writeback_begin(offset, length)
        }
        ZX_PAGER_OP_WRITEBACK_END if data == 0 => vmo.writeback_end(offset, length),
        _ => Err(ZX_ERR_INVALID_ARGS),
    }
}

/// The status a FAIL may carry: a sign-extended `zx_status_t` among the five Zircon allows.
fn fail_status(data: u64) -> Result<Status> {
    let status = i32::try_from(data as i64).map_err(|_| ZX_ERR_INVALID_ARGS)?;
    match status {
        ZX_ERR_IO
        | ZX_ERR_IO_DATA_INTEGRITY
        | ZX_ERR_BAD_STATE
        | ZX_ERR_NO_SPACE
        | ZX_ERR_BUFFER_TOO_SMALL => Ok(status),
        _ => Err(ZX_ERR_INVALID_ARGS),
    }
}

fn check_aligned(offset: u64, length: u64) -> Result<()> {
    if offset % PAGE_SIZE != 0 || length % PAGE_SIZE != 0 {
        return Err(ZX_ERR_INVALID_ARGS);
    }
    Ok(())
}

fn aligned_pages(offset: u64, len: u64) -> Result<Range<u64>> {
    check_aligned(offset, len)?;
    let end = offset.checked_add(len).ok_or(ZX_ERR_OUT_OF_RANGE)?;
    Ok(offset / PAGE_SIZE..end / PAGE_SIZE)
}

fn narrowed(have: Rights, want: Rights) -> Result<Rights> {
    if want == ZX_RIGHT_SAME_RIGHTS {
        return Ok(have);
    }
    if want & !have != 0 {
        return Err(ZX_ERR_INVALID_ARGS);
    }
    Ok(want)
}

fn vmo_rights(options: u32) -> Rights {
    let resize = if options & ZX_VMO_RESIZABLE != 0 {
        ZX_RIGHT_RESIZE
    } else {
        0
    };
    ZX_DEFAULT_VMO_RIGHTS | resize
}
