//! Handle calls: `zx_handle_close`, `_duplicate`, `_replace`, and the host's own installs
//! and lookups.

use std::sync::Arc;

use super::{Process, Result};
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::{Handle, Rights};
use crate::handle::KernelObject;
use crate::vmo::Vmo;

impl Process {
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

    /// The VMO `handle` names, if it names one (host-side use: mapping, VM snapshots).
    pub fn vmo_object(&self, handle: Handle) -> Result<Arc<Vmo>> {
        Ok(self.vmo(handle, 0)?.0)
    }
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
