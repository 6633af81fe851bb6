//! Pager calls: `zx_pager_create`, `_create_vmo`, `_detach_vmo`, `_vmo_op`,
//! `_supply_pages` and `_op_range`, with their shared range checks.

use std::sync::Arc;

use super::{Process, Result, check_aligned, vmo_rights};
use crate::abi::pager_op::*;
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::vmo_options::*;
use crate::abi::{DirtyRange, Handle, PAGE_SIZE, Status, VmoStats};
use crate::handle::KernelObject;
use crate::pager::Pager;
use crate::vmo::{PagerLink, Vmo};

impl Process {
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
        if options & ZX_VMO_RESIZABLE != 0 {
            vmo.mark_resizable();
        }
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
        vmo.detach(true, true);
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

    /// `zx_pager_query_dirty_ranges`: pager needs MANAGE_VMO, the VMO READ, and it must be
    /// this pager's (`INVALID_ARGS`); then the range (`OUT_OF_RANGE`; `offset` and `length`
    /// need not be aligned). Returns at most `max` runs of dirty pages and how many there are.
    pub fn pager_query_dirty_ranges(
        &self,
        pager: Handle,
        pager_vmo: Handle,
        offset: u64,
        length: u64,
        max: usize,
    ) -> Result<(Vec<DirtyRange>, u64)> {
        let vmo = self.owned_vmo_with(pager, ZX_RIGHT_MANAGE_VMO, pager_vmo, ZX_RIGHT_READ)?;
        vmo.dirty_ranges(offset, length, max)
    }

    /// `zx_pager_query_vmo_stats`: pager needs MANAGE_VMO, the VMO READ, and it must be this
    /// pager's; `buffer_size` below 4 gives `BUFFER_TOO_SMALL`, then `options` other than 0
    /// and `ZX_PAGER_RESET_VMO_STATS` `INVALID_ARGS`. Returns the stats.
    pub fn pager_query_vmo_stats(
        &self,
        pager: Handle,
        pager_vmo: Handle,
        options: u32,
        buffer_size: u64,
    ) -> Result<VmoStats> {
        let vmo = self.owned_vmo_with(pager, ZX_RIGHT_MANAGE_VMO, pager_vmo, ZX_RIGHT_READ)?;
        if buffer_size < std::mem::size_of::<VmoStats>() as u64 {
            return Err(ZX_ERR_BUFFER_TOO_SMALL);
        }
        if options & !ZX_PAGER_RESET_VMO_STATS != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let modified = vmo.take_modified(options & ZX_PAGER_RESET_VMO_STATS != 0);
        Ok(VmoStats {
            modified: if modified {
                ZX_PAGER_VMO_STATS_MODIFIED
            } else {
                0
            },
        })
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
        if !aux_offset.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let vmo = self.owned_vmo(pager, ZX_RIGHT_MANAGE_VMO, pager_vmo)?;
        let (aux, _) = self.vmo(aux_vmo, ZX_RIGHT_READ | ZX_RIGHT_WRITE)?;
        if Arc::ptr_eq(&aux, &vmo) {
            return Err(ZX_ERR_BAD_STATE);
        }
        vmo.supply(offset, length, &aux, aux_offset, self.strategy())
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
