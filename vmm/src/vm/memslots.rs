//! The VM's KVM memslots: guest RAM registered piece by piece (on first touch), aperture
//! mappings (`VmarMap`/`VmarUnmap`), and the slot gate and vCPU kicks that keep vCPUs out of
//! `KVM_RUN` while a memslot changes.

use std::collections::BTreeMap;
use std::time::Duration;

use kvm_bindings::{KVM_MEM_READONLY, kvm_userspace_memory_region};
use kvmpager::abi::status::*;
use kvmpager::abi::vm_options::{ZX_VM_MAP_RANGE, ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use kvmpager::abi::{Handle, Status};

use super::{Error, RAM_CHUNK, Result, Vm};
use crate::aperture::{Aperture, Range};
use crate::kernel::Mapping;
use crate::slot_gate::SlotGate;
use crate::sync::lock;

/// Aperture ranges and the kernel mappings behind their memslots.
pub(super) struct ApertureState {
    pub(super) ranges: Aperture,
    pub(super) mappings: BTreeMap<u64, Mapping>,
}

/// How long a memslot change waits for the vCPUs to leave `KVM_RUN`.
const SLOT_CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

impl Vm {
    /// Registers the RAM pieces holding `gpas` (the vCPUs are not running yet).
    pub(super) fn register_ram(&self, gpas: &[u64]) -> Result<()> {
        let mut chunks = lock(&self.ram_chunks);
        for &gpa in gpas.iter().filter(|&&g| g < self.ram.size()) {
            let i = (gpa / RAM_CHUNK) as usize;
            if !chunks[i] {
                self.register_ram_chunk(i).map_err(Error::SetRamMemslot)?;
                chunks[i] = true;
            }
        }
        Ok(())
    }

    /// Gives RAM piece `i` its memslot.
    fn register_ram_chunk(&self, i: usize) -> std::result::Result<(), kvm_ioctls::Error> {
        let start = i as u64 * RAM_CHUNK;
        let region = kvm_userspace_memory_region {
            slot: i as u32,
            flags: 0,
            guest_phys_addr: start,
            memory_size: RAM_CHUNK.min(self.ram.size() - start),
            userspace_addr: self.ram.host_addr() + start,
        };
        // SAFETY: the host range is inside the RAM mapping owned by `self.ram`, which lives as
        // long as the VM fd (both are fields of `self`; the fd is dropped first).
        unsafe { self.fd.set_user_memory_region(region) }
    }

    /// A vCPU touched `gpa` with no memslot behind it: if `gpa` is guest RAM, makes sure its
    /// piece is registered (kicking the other vCPUs out of `KVM_RUN` for the change) and
    /// returns `true`; the caller then completes the access itself.
    pub fn register_ram_at(&self, gpa: u64) -> bool {
        if gpa >= self.ram.size() {
            return false;
        }
        let i = (gpa / RAM_CHUNK) as usize;
        let mut chunks = lock(&self.ram_chunks);
        if chunks[i] {
            return true;
        }
        match self.change_memslot(|| self.register_ram_chunk(i)) {
            Ok(Ok(())) => {
                chunks[i] = true;
                log::debug!("RAM piece {i} registered on first touch at {gpa:#x}");
                true
            }
            Ok(Err(e)) => {
                log::error!("registering RAM piece {i}: {e}");
                false
            }
            Err(_) => false,
        }
    }

    /// Whether `gpa` is guest RAM whose memslot is not registered yet.
    pub fn ram_unregistered_at(&self, gpa: u64) -> bool {
        gpa < self.ram.size() && !lock(&self.ram_chunks)[(gpa / RAM_CHUNK) as usize]
    }

    /// `VmarMap`: maps `vmo[vmo_offset, +len)` of the guest's process at `gpa` in the aperture.
    pub fn map_vmo(
        &self,
        options: u32,
        gpa: u64,
        vmo: Handle,
        off: u64,
        len: u64,
    ) -> std::result::Result<(), Status> {
        // ZX_VM_MAP_RANGE changes nothing: the whole range is always mapped, present pages
        // are usable at once and absent ones are requested on first touch (Zircon's
        // VmarMapRangeTest).
        let known = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_MAP_RANGE;
        if options & !known != 0 || options & ZX_VM_PERM_READ == 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        let writable = options & ZX_VM_PERM_WRITE != 0;
        let mut st = lock(&self.aperture);
        let range = st.ranges.reserve(gpa, len)?;
        match self.map_range(range, vmo, off, writable) {
            Ok(m) => {
                st.mappings.insert(gpa, m);
                Ok(())
            }
            Err(s) => {
                let _ = st.ranges.release(gpa, len);
                Err(s)
            }
        }
    }

    fn map_range(
        &self,
        r: Range,
        vmo: Handle,
        off: u64,
        writable: bool,
    ) -> std::result::Result<Mapping, Status> {
        let m = self.guest.vmar_map(vmo, off, r.len, writable)?;
        let region = kvm_userspace_memory_region {
            slot: r.slot,
            flags: if writable { 0 } else { KVM_MEM_READONLY },
            guest_phys_addr: r.gpa,
            memory_size: r.len,
            userspace_addr: m.host_addr(),
        };
        // SAFETY: the host range is mapping `m`, which the aperture keeps until the memslot is
        // deleted in `unmap_vmo` (or the VM fd is closed).
        self.change_memslot(|| unsafe { self.fd.set_user_memory_region(region) })?
            .map_err(|e| {
                log::warn!("memslot {} for {:#x}: {e}", r.slot, r.gpa);
                ZX_ERR_NO_RESOURCES
            })?;
        Ok(m)
    }

    /// `VmarUnmap`: removes the mapping that starts at `gpa` (`len` must match).
    pub fn unmap_vmo(&self, gpa: u64, len: u64) -> std::result::Result<(), Status> {
        let mut st = lock(&self.aperture);
        let r = st.ranges.find(gpa, len)?;
        let region = kvm_userspace_memory_region {
            slot: r.slot,
            guest_phys_addr: r.gpa,
            memory_size: 0,
            ..Default::default()
        };
        // SAFETY: deleting a memslot (size 0) never makes KVM access host memory.
        let deleted = self.change_memslot(|| unsafe { self.fd.set_user_memory_region(region) })?;
        if let Err(e) = deleted {
            log::error!("cannot delete memslot {}: {e}; keeping the mapping", r.slot);
            return Err(ZX_ERR_INTERNAL);
        }
        st.ranges.release(gpa, len)?;
        st.mappings.remove(&gpa);
        Ok(())
    }

    /// Runs a memslot change with every vCPU out of `KVM_RUN` (see [`SlotGate`]);
    /// `ZX_ERR_SHOULD_WAIT` if a vCPU could not be got out in time.
    fn change_memslot<T>(&self, change: impl FnOnce() -> T) -> std::result::Result<T, Status> {
        self.slot_gate
            .exclusive(SLOT_CHANGE_TIMEOUT, || self.kick_vcpus(), change)
            .map_err(|e| {
                log::error!("memslot change: {e}");
                ZX_ERR_SHOULD_WAIT
            })
    }

    /// The gate vCPUs pass to enter `KVM_RUN`.
    pub fn slot_gate(&self) -> &SlotGate {
        &self.slot_gate
    }

    /// Records the running thread of vCPU `index` (it is kicked for memslot changes).
    pub fn register_vcpu_thread(&self, index: u32, thread: libc::pthread_t) {
        lock(&self.vcpu_threads).insert(index, thread);
    }

    /// Forgets vCPU `index`'s thread (it is about to end).
    pub fn unregister_vcpu_thread(&self, index: u32) {
        lock(&self.vcpu_threads).remove(&index);
    }

    /// Kicks vCPU `index`'s thread out of `KVM_RUN`, if it runs.
    pub(super) fn kick_vcpu(&self, index: u32) {
        if let Some(&thread) = lock(&self.vcpu_threads).get(&index) {
            // SAFETY: as in `kick_vcpus`: a registered thread is alive; SIGRTMIN has the kick
            // handler installed.
            unsafe { libc::pthread_kill(thread, vmm_sys_util::signal::SIGRTMIN()) };
        }
    }

    /// Kicks every running vCPU thread out of `KVM_RUN`.
    pub(super) fn kick_vcpus(&self) {
        for &thread in lock(&self.vcpu_threads).values() {
            // SAFETY: a thread stays registered only while it runs its vCPU loop, so the
            // pthread is alive; SIGRTMIN has the kick handler installed.
            unsafe { libc::pthread_kill(thread, vmm_sys_util::signal::SIGRTMIN()) };
        }
    }
}
