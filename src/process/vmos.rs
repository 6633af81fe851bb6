//! VMO calls: `zx_vmo_*`, pins, and `zx_vmar_map` of a VMO into a guest.

use std::ops::Range;

use super::{Process, Result, check_aligned, vmo_rights};
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::vmo_op::*;
use crate::abi::vmo_options::*;
use crate::abi::{Handle, PAGE_SIZE, VmoInfo};
use crate::handle::KernelObject;
use crate::vmo::{Mapping, Pin, Vmo};

impl Process {
    /// `zx_vmo_create`. Options: `ZX_VMO_RESIZABLE` (`zx_vmo_set_size` up to `size`) and
    /// kvmpager's `KVMPAGER_VMO_HUGE`; others give `ZX_ERR_INVALID_ARGS`.
    pub fn vmo_create(&self, size: u64, options: u32) -> Result<Handle> {
        if options & !(ZX_VMO_RESIZABLE | KVMPAGER_VMO_HUGE) != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let huge = options & KVMPAGER_VMO_HUGE != 0;
        let vmo = Vmo::create(size, huge, self.shared.clone())?;
        if options & ZX_VMO_RESIZABLE != 0 {
            vmo.mark_resizable();
        }
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

    /// `zx_vmo_op_range`: COMMIT and DECOMMIT need WRITE; the hints PREFETCH and ALWAYS_NEED
    /// (absent pages of a pager VMO are requested and waited for) and DONT_NEED (a range check,
    /// nothing else) need READ or WRITE. Other ops (ZERO included) need WRITE and give
    /// NOT_SUPPORTED.
    pub fn vmo_op_range(&self, vmo: Handle, op: u32, offset: u64, size: u64) -> Result<()> {
        let (vmo, rights) = self.vmo(vmo, 0)?;
        let hint = matches!(
            op,
            ZX_VMO_OP_PREFETCH | ZX_VMO_OP_ALWAYS_NEED | ZX_VMO_OP_DONT_NEED
        );
        let allowed = if hint {
            rights & (ZX_RIGHT_READ | ZX_RIGHT_WRITE) != 0
        } else {
            rights & ZX_RIGHT_WRITE != 0
        };
        if !allowed {
            return Err(ZX_ERR_ACCESS_DENIED);
        }
        let killed = &self.shared.killed;
        match op {
            ZX_VMO_OP_COMMIT => vmo.commit(offset, size, killed),
            ZX_VMO_OP_DECOMMIT => vmo.decommit(offset, size),
            ZX_VMO_OP_PREFETCH | ZX_VMO_OP_ALWAYS_NEED => vmo.prefetch(offset, size, killed),
            ZX_VMO_OP_DONT_NEED => vmo.page_range(offset, size).map(|_| ()),
            _ => Err(ZX_ERR_NOT_SUPPORTED),
        }
    }

    /// `zx_vmo_set_size`: the handle needs WRITE, and RESIZE if the VMO is resizable (a VMO
    /// that is not gives `ZX_ERR_UNAVAILABLE`, Zircon's order); see [`Vmo::set_size`] for the
    /// rest.
    pub fn vmo_set_size(&self, vmo: Handle, size: u64) -> Result<()> {
        let (vmo, rights) = self.vmo(vmo, ZX_RIGHT_WRITE)?;
        if vmo.is_resizable() && rights & ZX_RIGHT_RESIZE == 0 {
            return Err(ZX_ERR_ACCESS_DENIED);
        }
        vmo.set_size(size)
    }

    /// `zx_vmo_create_child` (needs DUPLICATE and READ). SNAPSHOT copies an anonymous VMO's
    /// pages at creation; SNAPSHOT_AT_LEAST_ON_WRITE makes a copy-on-write clone of a pager VMO
    /// (or of such a clone) and is SNAPSHOT on an anonymous VMO. The child's rights are the
    /// handle's, with WRITE (unless NO_WRITE), RESIZE only if RESIZABLE, and no EXECUTE.
    pub fn vmo_create_child(
        &self,
        vmo: Handle,
        options: u32,
        offset: u64,
        size: u64,
    ) -> Result<Handle> {
        use crate::abi::vmo_child::*;
        let (vmo, rights) = self.vmo(vmo, ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ)?;
        let kinds =
            ZX_VMO_CHILD_SNAPSHOT | ZX_VMO_CHILD_SLICE | ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
        let known = kinds | ZX_VMO_CHILD_RESIZABLE | ZX_VMO_CHILD_NO_WRITE;
        if options & !known != 0 || (options & kinds).count_ones() != 1 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        offset.checked_add(size).ok_or(ZX_ERR_OUT_OF_RANGE)?;
        let owner = self.shared.clone();
        let child = match options & kinds {
            ZX_VMO_CHILD_SLICE => return Err(ZX_ERR_NOT_SUPPORTED),
            ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE if vmo.is_pager_backed() => {
                vmo.create_clone(offset, size, owner)?
            }
            _ => vmo.create_child(offset, size, owner)?,
        };
        let mut rights = (rights | ZX_RIGHT_WRITE) & !(ZX_RIGHT_EXECUTE | ZX_RIGHT_RESIZE);
        if options & ZX_VMO_CHILD_NO_WRITE != 0 {
            rights &= !ZX_RIGHT_WRITE;
        }
        if options & ZX_VMO_CHILD_RESIZABLE != 0 {
            rights |= ZX_RIGHT_RESIZE;
        }
        self.install(KernelObject::Vmo(child), rights)
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
        if len == 0 || !vmo_offset.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        vmo.page_range(vmo_offset, len)?;
        Ok(Mapping::new(vmo, vmo_offset, len, writable))
    }
}

fn aligned_pages(offset: u64, len: u64) -> Result<Range<u64>> {
    check_aligned(offset, len)?;
    let end = offset.checked_add(len).ok_or(ZX_ERR_OUT_OF_RANGE)?;
    Ok(offset / PAGE_SIZE..end / PAGE_SIZE)
}
