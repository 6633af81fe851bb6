//! One VM: the KVM VM, its guest RAM (a VMO of the VM's host process), the guest's process
//! (its handle table), the VMO aperture, the console, and the stop state shared by its vCPUs.
//!
//! Each VM has two kernel processes: `host` owns the RAM VMO and the host pager's handles
//! (the guest can never name them) and `guest` is the table the guest's handles live in. No
//! VM can name another VM's objects.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, KVM_MEM_READONLY, kvm_userspace_memory_region};
use kvm_ioctls::{Cap, Kvm, VmFd};
use kvmpager::abi::status::*;
use kvmpager::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use kvmpager::abi::{Handle, Status};

use crate::aperture::{Aperture, Range};
use crate::boot::{self, CpuFeatures};
use crate::config::{self, VmConfig};
use crate::console::{Console, TestReports};
use crate::exit::StopReason;
use crate::host_pager::{self, HostPager, ZeroFill};
use crate::kernel::{FatalFault, Mapping, Process};
use crate::loader;
use crate::memory::{self, GuestRam};

/// Errors creating a VM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The guest program cannot be loaded.
    #[error("cannot load the guest program: {0}")]
    Load(#[from] loader::Error),
    /// `/dev/kvm` cannot be opened.
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    /// KVM lacks a capability the VMM needs.
    #[error("KVM lacks {0}")]
    MissingCap(&'static str),
    /// `KVM_CREATE_VM` failed.
    #[error("KVM_CREATE_VM failed: {0}")]
    CreateVm(kvm_ioctls::Error),
    /// `KVM_GET_SUPPORTED_CPUID` failed.
    #[error("KVM_GET_SUPPORTED_CPUID failed: {0}")]
    GetCpuid(kvm_ioctls::Error),
    /// `KVM_SET_USER_MEMORY_REGION` failed for RAM.
    #[error("cannot register guest RAM with KVM: {0}")]
    SetRamMemslot(kvm_ioctls::Error),
    /// A kernel call failed while building the VM.
    #[error("{call} failed: {}", name(*.status))]
    Kernel {
        /// Which call.
        call: &'static str,
        /// Its status.
        status: Status,
    },
    /// Guest memory could not be described.
    #[error(transparent)]
    Memory(#[from] memory::Error),
    /// The host pager could not be set up.
    #[error(transparent)]
    HostPager(#[from] host_pager::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn kernel(call: &'static str) -> impl FnOnce(Status) -> Error {
    move |status| Error::Kernel { call, status }
}

/// Memslot of guest RAM; aperture mappings use the slots above it.
const RAM_SLOT: u32 = 0;

/// The first stop reason wins; vCPUs and the runner watch the flag.
#[derive(Debug, Default)]
struct StopState {
    reason: Mutex<Option<StopReason>>,
    changed: Condvar,
    flag: AtomicBool,
}

/// Aperture ranges and the kernel mappings behind their memslots.
struct ApertureState {
    ranges: Aperture,
    mappings: BTreeMap<u64, Mapping>,
}

/// A VM, shared by its vCPU threads.
pub struct Vm {
    fd: VmFd,
    cpuid: CpuId,
    features: CpuFeatures,
    host: Arc<Process>,
    guest: Arc<Process>,
    ram: GuestRam,
    aperture: Mutex<ApertureState>,
    vcpus: u32,
    entry: u64,
    start: Instant,
    console: Console,
    reports: TestReports,
    stop: StopState,
    pager_thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `Vm::new` learns from KVM before building anything.
struct KvmSetup {
    fd: VmFd,
    cpuid: CpuId,
    features: CpuFeatures,
    max_slots: u32,
}

fn open_kvm() -> Result<KvmSetup> {
    let kvm = Kvm::new().map_err(Error::OpenKvm)?;
    for (cap, what) in [
        (Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        (Cap::UserMemory, "KVM_CAP_USER_MEMORY"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(Error::MissingCap(what));
        }
    }
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::GetCpuid)?;
    let features = cpu_features(&cpuid);
    let max_slots = kvm.get_nr_memslots() as u32;
    let fd = kvm.create_vm().map_err(Error::CreateVm)?;
    Ok(KvmSetup {
        fd,
        cpuid,
        features,
        max_slots,
    })
}

/// The features the boot state depends on, from KVM's supported CPUID.
fn cpu_features(cpuid: &CpuId) -> CpuFeatures {
    let ext = cpuid.as_slice().iter().find(|e| e.function == 0x8000_0001);
    let edx = ext.map_or(0, |e| e.edx);
    CpuFeatures {
        gib_pages: edx & (1 << 26) != 0,
        nx: edx & (1 << 20) != 0,
    }
}

/// Guest RAM as a VMO of `host`: plain, or a pager VMO with its (not yet started) pager.
fn create_ram(host: &Arc<Process>, cfg: &VmConfig) -> Result<(Handle, Option<HostPager>)> {
    if cfg.lazy_ram {
        let pager = HostPager::create(host, cfg.memory)?;
        Ok((pager.vmo(), Some(pager)))
    } else {
        let vmo = host
            .vmo_create(cfg.memory, 0)
            .map_err(kernel("zx_vmo_create"))?;
        Ok((vmo, None))
    }
}

/// Writes the boot image into RAM: through the pager (pre-supply) or with `vmo_write`.
fn write_boot_image(
    host: &Process,
    vmo: Handle,
    pager: Option<&HostPager>,
    img: &boot::BootImage,
) -> Result<()> {
    for (gpa, data) in img.runs() {
        match pager {
            Some(p) => p.supply(gpa, &data)?,
            None => host
                .vmo_write(vmo, &data, gpa)
                .map_err(kernel("zx_vmo_write"))?,
        }
    }
    Ok(())
}

impl Vm {
    /// Creates the VM, its RAM and boot state. vCPUs are created by [`crate::vcpu`].
    pub fn new(cfg: &VmConfig) -> Result<Arc<Vm>> {
        cfg.validate()?;
        let program = loader::load(&cfg.guest_elf, cfg.memory)?;
        let k = open_kvm()?;
        let (host, guest) = (Process::new(), Process::new());
        let (ram_vmo, pager) = create_ram(&host, cfg)?;
        let img = boot::boot_image(&program, cfg.vcpus, cfg.memory, k.features.gib_pages);
        write_boot_image(&host, ram_vmo, pager.as_ref(), &img)?;
        let mapping = host
            .vmar_map(ram_vmo, 0, cfg.memory, true)
            .map_err(kernel("vmar_map"))?;
        let ram = GuestRam::new(mapping)?;
        let vm = Arc::new(Vm {
            fd: k.fd,
            cpuid: k.cpuid,
            features: k.features,
            host,
            guest,
            ram,
            aperture: Mutex::new(ApertureState {
                ranges: Aperture::new(RAM_SLOT + 1, k.max_slots),
                mappings: BTreeMap::new(),
            }),
            vcpus: cfg.vcpus,
            entry: program.entry,
            start: Instant::now(),
            console: Console::new(cfg.echo_console),
            reports: TestReports::default(),
            stop: StopState::default(),
            pager_thread: Mutex::new(None),
        });
        vm.register_ram()?;
        vm.watch_fatal_faults();
        if let Some(p) = pager {
            vm.start_pager(p)?;
        }
        Ok(vm)
    }

    fn register_ram(&self) -> Result<()> {
        let region = kvm_userspace_memory_region {
            slot: RAM_SLOT,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: self.ram.size(),
            userspace_addr: self.ram.host_addr(),
        };
        // SAFETY: the host range is the RAM mapping owned by `self.ram`, which lives as long as
        // the VM fd (both are fields of `self`; the fd is dropped first).
        unsafe { self.fd.set_user_memory_region(region) }.map_err(Error::SetRamMemslot)
    }

    fn watch_fatal_faults(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let sink = Arc::new(move |f: FatalFault| {
            if let Some(vm) = weak.upgrade() {
                let (host_addr, status, tid) = (f.host_addr, f.status, f.tid);
                vm.request_stop(StopReason::FatalFault {
                    host_addr,
                    status,
                    tid,
                });
            }
        });
        self.host.set_fatal_fault_sink(sink.clone());
        self.guest.set_fatal_fault_sink(sink);
    }

    fn start_pager(self: &Arc<Self>, pager: HostPager) -> Result<()> {
        let weak = Arc::downgrade(self);
        let thread = pager.start(Box::new(ZeroFill), move |e| {
            if let Some(vm) = weak.upgrade() {
                vm.request_stop(StopReason::HostPager(e.to_string()));
            }
        })?;
        *lock(&self.pager_thread) = Some(thread);
        Ok(())
    }

    /// The KVM VM.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// CPUID entries to give each vCPU.
    pub fn cpuid(&self) -> &CpuId {
        &self.cpuid
    }

    /// CPU features the boot state uses.
    pub fn features(&self) -> CpuFeatures {
        self.features
    }

    /// Guest RAM.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// The guest's process (its handle table).
    pub fn guest(&self) -> &Arc<Process> {
        &self.guest
    }

    /// The host-side process (RAM VMO, host pager).
    pub fn host(&self) -> &Arc<Process> {
        &self.host
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// Program entry point.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Nanoseconds since the VM was created (the guest's monotonic clock).
    pub fn now_ns(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    /// The instant `ns` nanoseconds after VM start (for deadlines).
    pub fn instant_at(&self, ns: i64) -> Instant {
        let d = std::time::Duration::from_nanos(ns.max(0) as u64);
        self.start
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + d.min(std::time::Duration::from_secs(1 << 30)))
    }

    /// The console.
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The test reports.
    pub fn reports(&self) -> &TestReports {
        &self.reports
    }

    /// Asks the VM to stop; the first reason wins. Returns whether this call set it.
    pub fn request_stop(&self, reason: StopReason) -> bool {
        let mut r = lock(&self.stop.reason);
        let first = r.is_none();
        if first {
            log::debug!("stop: {reason}");
            *r = Some(reason);
            self.stop.flag.store(true, Ordering::SeqCst);
            self.stop.changed.notify_all();
        }
        first
    }

    /// Whether a stop was requested.
    pub fn stopping(&self) -> bool {
        self.stop.flag.load(Ordering::SeqCst)
    }

    /// Waits until a stop is requested or `deadline` passes; returns the reason if stopped.
    pub fn wait_stop(&self, deadline: Option<Instant>) -> Option<StopReason> {
        let mut r = lock(&self.stop.reason);
        while r.is_none() {
            match deadline {
                None => r = self.stop.changed.wait(r).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    r = self
                        .stop
                        .changed
                        .wait_timeout(r, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        r.clone()
    }

    /// Cancels every blocking kernel call of this VM (guest and host pager) and joins the
    /// host pager thread.
    pub fn kill_processes(&self) {
        self.guest.kill();
        self.host.kill();
        if let Some(t) = lock(&self.pager_thread).take() {
            let _ = t.join();
        }
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
        let perms = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
        if options & !perms != 0 || options & ZX_VM_PERM_READ == 0 {
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
        unsafe { self.fd.set_user_memory_region(region) }.map_err(|e| {
            log::warn!("memslot {} for {:#x}: {e}", r.slot, r.gpa);
            ZX_ERR_NO_RESOURCES
        })?;
        Ok(m)
    }

    /// `VmarUnmap`: removes the mapping that starts at `gpa` (`len` must match).
    pub fn unmap_vmo(&self, gpa: u64, len: u64) -> std::result::Result<(), Status> {
        let mut st = lock(&self.aperture);
        let r = st.ranges.release(gpa, len)?;
        let region = kvm_userspace_memory_region {
            slot: r.slot,
            guest_phys_addr: r.gpa,
            memory_size: 0,
            ..Default::default()
        };
        // SAFETY: deleting a memslot (size 0) never makes KVM access host memory.
        if let Err(e) = unsafe { self.fd.set_user_memory_region(region) } {
            log::error!("cannot delete memslot {}: {e}; keeping the mapping", r.slot);
            return Err(ZX_ERR_INTERNAL);
        }
        st.mappings.remove(&gpa);
        Ok(())
    }
}
