//! Guest RAM as the VMM's hypercall handlers see it: bounds-checked copies in and out.
//!
//! RAM is a kernel [`Mapping`] of the VM's RAM VMO; [`GuestRam`] wraps its host address in a
//! vm-memory `GuestMemoryMmap` so every access goes through `Bytes` (volatile copies, no
//! references into guest memory). Guest pointers are guest-physical; any range that leaves RAM,
//! overflows or touches the boot area (guest-physical `0..1 MiB`, the null page included, see
//! [`POINTER_FLOOR`]) is `ZX_ERR_INVALID_ARGS`, never a host fault. Empty ranges are always
//! accepted.

use kvmpager::abi::Status;
use kvmpager::abi::status::ZX_ERR_INVALID_ARGS;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

use crate::kernel::Mapping;

/// Errors building the guest-memory view.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// vm-memory rejected the host mapping.
    #[error("cannot describe guest RAM to vm-memory: {0}")]
    Region(String),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// End of the null page: no guest pointer may reach below this address, so a null pointer
/// with a non-zero length is always `ZX_ERR_INVALID_ARGS` (the page holds nothing; see
/// `layout.rs`).
pub const NULL_PAGE_END: u64 = kvmpager::abi::PAGE_SIZE;

/// The lowest address a guest pointer may touch: the end of the boot area (1 MiB). Below it
/// are the null page and the VMM's CPU structures and page tables, which no call may read or
/// store into (`layout.rs`).
pub const POINTER_FLOOR: u64 = kvmpager::abi::layout::BOOT_AREA_END;

/// Guest RAM (guest-physical `0..size`) backed by a live kernel mapping.
pub struct GuestRam {
    // Declared before `mapping` so it is dropped first.
    mem: GuestMemoryMmap,
    mapping: Mapping,
}

impl GuestRam {
    /// Wraps `mapping` (which must start at guest-physical 0).
    pub fn new(mapping: Mapping) -> Result<Self> {
        let (addr, len) = (mapping.host_addr() as *mut u8, mapping.len() as usize);
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: `addr..addr+len` is the live kernel mapping held in `self.mapping`, which is
        // dropped after `mem`; the region does not own (unmap) the memory.
        let region = unsafe { MmapRegion::build_raw(addr, len, prot, flags) }
            .map_err(|e| Error::Region(e.to_string()))?;
        let region = GuestRegionMmap::new(region, GuestAddress(0))
            .ok_or_else(|| Error::Region("region overflows".into()))?;
        let mem = GuestMemoryMmap::from_regions(vec![region])
            .map_err(|e| Error::Region(e.to_string()))?;
        Ok(GuestRam { mem, mapping })
    }

    /// RAM size in bytes.
    pub fn size(&self) -> u64 {
        self.mapping.len()
    }

    /// Host virtual address of guest-physical 0 (for the KVM memslot).
    pub fn host_addr(&self) -> u64 {
        self.mapping.host_addr()
    }

    /// Checks that `gpa..gpa+len` is empty or lies inside RAM above the boot area.
    pub fn check(&self, gpa: u64, len: u64) -> std::result::Result<(), Status> {
        match gpa.checked_add(len) {
            Some(_) if len == 0 => Ok(()),
            Some(end) if gpa >= POINTER_FLOOR && end <= self.size() => Ok(()),
            _ => Err(ZX_ERR_INVALID_ARGS),
        }
    }

    /// Copies guest memory at `gpa` into `buf`.
    pub fn read_into(&self, gpa: u64, buf: &mut [u8]) -> std::result::Result<(), Status> {
        self.check(gpa, buf.len() as u64)?;
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| ZX_ERR_INVALID_ARGS)
    }

    /// Copies `len` bytes of guest memory at `gpa` into a new buffer.
    pub fn read(&self, gpa: u64, len: u64) -> std::result::Result<Vec<u8>, Status> {
        self.check(gpa, len)?;
        let mut v = vec![0u8; len as usize];
        self.read_into(gpa, &mut v)?;
        Ok(v)
    }

    /// Copies `data` into guest memory at `gpa`.
    pub fn write(&self, gpa: u64, data: &[u8]) -> std::result::Result<(), Status> {
        self.check(gpa, data.len() as u64)?;
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| ZX_ERR_INVALID_ARGS)
    }

    /// Writes a plain-data value at `gpa`.
    pub fn write_obj<T: ByteValued>(&self, gpa: u64, v: T) -> std::result::Result<(), Status> {
        self.check(gpa, std::mem::size_of::<T>() as u64)?;
        self.mem
            .write_obj(v, GuestAddress(gpa))
            .map_err(|_| ZX_ERR_INVALID_ARGS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Process;

    fn ram(size: u64) -> GuestRam {
        let p = Process::new();
        let vmo = p.vmo_create(size, 0).unwrap();
        GuestRam::new(p.vmar_map(vmo, 0, size, true).unwrap()).unwrap()
    }

    #[test]
    fn reads_and_writes_are_bounds_checked() {
        const F: u64 = POINTER_FLOOR;
        let r = ram(F + 0x4000);
        r.write(F, b"abc").unwrap();
        assert_eq!(r.read(F, 3).unwrap(), b"abc");
        r.write_obj(F + 0x3ff8, 7u64).unwrap();
        assert_eq!(r.write_obj(F + 0x3ff9, 7u64), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(r.read(F + 0x3fff, 2), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(r.read(u64::MAX, 2), Err(ZX_ERR_INVALID_ARGS));
        assert_eq!(r.write(F + 0x4000, b"x"), Err(ZX_ERR_INVALID_ARGS));
        assert!(r.read(F + 0x4000, 0).is_ok());
        assert_eq!(r.read(0, 1), Err(ZX_ERR_INVALID_ARGS), "null page");
        assert_eq!(r.read(0x1000, 1), Err(ZX_ERR_INVALID_ARGS), "the GDT");
        assert_eq!(
            r.write_obj(0x1_0008, 7u64),
            Err(ZX_ERR_INVALID_ARGS),
            "into the page tables"
        );
        assert_eq!(
            r.write_obj(F - 4, 7u64),
            Err(ZX_ERR_INVALID_ARGS),
            "straddling the end of the boot area"
        );
        assert!(r.read(0, 0).is_ok(), "an empty range is never dereferenced");
    }
}
