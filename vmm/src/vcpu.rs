//! vCPU threads: set up the entry state, run the guest, and handle exits until the VM stops.
//!
//! Registers are exchanged through `KVM_CAP_SYNC_REGS`, so a hypercall costs one exit and no
//! extra ioctl. A stop is delivered by [`VcpuHandle::kick`]: SIGRTMIN (handler installed
//! without `SA_RESTART`) whose handler sets `immediate_exit`, so `KVM_RUN` returns `EINTR`
//! whether the vCPU is in the guest, about to enter it, or blocked in a userfaultfd fault.

use std::cell::Cell;
use std::os::unix::thread::JoinHandleExt;
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::kvm_run;
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};
use kvmpager::abi::ExceptionReport;
use vmm_sys_util::signal::{SIGRTMIN, register_signal_handler};

use crate::boot;
use crate::exit::{self, ExitAction, ExitHandler, StopReason};
use crate::hypercall::{self, Outcome};
use crate::snapshot::VcpuState;
use crate::vm::Vm;

/// Errors creating or starting a vCPU.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A KVM vCPU ioctl failed.
    #[error("vCPU {index}: {what} failed: {error}")]
    Kvm {
        /// The vCPU.
        index: u32,
        /// The ioctl.
        what: &'static str,
        /// The error.
        error: kvm_ioctls::Error,
    },
    /// The kick signal handler could not be installed.
    #[error("cannot install the vCPU kick signal handler: {0}")]
    Signal(vmm_sys_util::errno::Error),
    /// The thread could not be spawned.
    #[error("cannot spawn vCPU thread: {0}")]
    Spawn(std::io::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

thread_local! {
    /// This thread's `kvm_run`, for the kick signal handler.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(|r| r.get());
    if !run.is_null() {
        // SAFETY: the pointer is this thread's live `kvm_run` mapping (cleared before the
        // vCPU is dropped); a volatile byte store is async-signal-safe.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
}

/// Installs the SIGRTMIN kick handler once per process.
pub fn install_kick_handler() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = register_signal_handler(SIGRTMIN(), kick_handler));
    result.map_err(Error::Signal)
}

/// One vCPU of a VM.
pub struct Vcpu {
    fd: VcpuFd,
    index: u32,
    vm: Arc<Vm>,
}

impl Vcpu {
    /// Creates vCPU `index` with the boot entry state.
    pub fn new(vm: &Arc<Vm>, index: u32) -> Result<Self> {
        let err = |what| move |error| Error::Kvm { index, what, error };
        let mut fd = vm
            .fd()
            .create_vcpu(u64::from(index))
            .map_err(err("KVM_CREATE_VCPU"))?;
        fd.set_cpuid2(vm.cpuid()).map_err(err("KVM_SET_CPUID2"))?;
        let sregs = fd.get_sregs().map_err(err("KVM_GET_SREGS"))?;
        let (sregs, fpu, regs) = match vm.resume_state(index) {
            Some(s) => (s.sregs.apply(sregs), (&s.fpu).into(), (&s.regs).into()),
            None => (
                boot::initial_sregs(sregs, index, vm.features()),
                boot::initial_fpu(),
                boot::initial_regs(vm.entry(), index, vm.vcpus(), vm.ram().size()),
            ),
        };
        fd.set_sregs(&sregs).map_err(err("KVM_SET_SREGS"))?;
        fd.set_fpu(&fpu).map_err(err("KVM_SET_FPU"))?;
        fd.set_regs(&regs).map_err(err("KVM_SET_REGS"))?;
        fd.set_sync_valid_reg(SyncReg::Register);
        log::debug!(
            "vCPU {index}: entry {:x?}",
            fd.get_regs().map(|r| (r.rip, r.rflags))
        );
        Ok(Vcpu {
            fd,
            index,
            vm: vm.clone(),
        })
    }

    /// Runs until the VM stops; records this vCPU's stop reason (if first) on the VM.
    pub fn run(mut self) {
        KVM_RUN.with(|r| r.set(self.fd.get_kvm_run()));
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.vm.register_vcpu_thread(self.index, me);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        self.vm.register_vcpu_tid(self.index, tid as u32);
        self.vm.pin_vcpu_thread(self.index, me);
        self.vm.mark_first_run();
        while !self.vm.stopping() {
            if self.vm.pause_requested() {
                self.pause();
                continue;
            }
            match exit::run_once(&mut self) {
                Ok(ExitAction::Continue) => {}
                Ok(ExitAction::Stop(reason)) => {
                    self.vm.request_stop(reason);
                }
                Err(e) if matches!(e.errno(), libc::EINTR | libc::EAGAIN) => {
                    self.fd.set_kvm_immediate_exit(0);
                    if self.vm.is_parked(self.index) {
                        self.vm.deliver_exception(self.index);
                        self.park();
                    }
                }
                Err(e) => {
                    let reason = StopReason::RunFailed {
                        vcpu: self.index,
                        error: e.to_string(),
                    };
                    self.vm.request_stop(reason);
                }
            }
        }
        self.vm.unregister_vcpu_tid(self.index);
        self.vm.unregister_vcpu_thread(self.index);
        KVM_RUN.with(|r| r.set(std::ptr::null_mut()));
    }

    /// Parked by a delivered fatal fault: never runs the guest again, but still takes part in
    /// snapshot pauses, until the VM stops.
    fn park(&mut self) {
        while !self.vm.stopping() {
            if self.vm.pause_requested() {
                self.pause();
                continue;
            }
            let _ = self
                .vm
                .wait_stop(Some(Instant::now() + Duration::from_millis(50)));
        }
    }

    /// Parks for a snapshot: completes any pending port I/O with `immediate_exit` set (so a
    /// hypercall's result and `rip` are in the registers and nothing else runs), reads the
    /// state, and waits until the snapshot is done.
    fn pause(&mut self) {
        self.fd.set_kvm_immediate_exit(1);
        let r = self.fd.run().map(|_| ());
        self.fd.set_kvm_immediate_exit(0);
        let state = match r {
            Err(e) if e.errno() != libc::EINTR => Err(format!("KVM_RUN to complete I/O: {e}")),
            _ => self.state(),
        };
        if let Some(status) = self.vm.park_paused(self.index, state)
            && let Ok(mut regs) = self.fd.get_regs()
        {
            regs.rax = i64::from(status) as u64;
            let _ = self.fd.set_regs(&regs);
        }
    }

    /// This vCPU's registers as a snapshot keeps them.
    fn state(&self) -> std::result::Result<VcpuState, String> {
        let regs = self
            .fd
            .get_regs()
            .map_err(|e| format!("KVM_GET_REGS: {e}"))?;
        let sregs = self
            .fd
            .get_sregs()
            .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
        let fpu = self.fd.get_fpu().map_err(|e| format!("KVM_GET_FPU: {e}"))?;
        Ok(VcpuState {
            regs: (&regs).into(),
            sregs: (&sregs).into(),
            fpu: (&fpu).into(),
        })
    }

    /// Starts the vCPU on its own thread.
    pub fn spawn(self) -> Result<VcpuHandle> {
        let name = format!("vcpu{}", self.index);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || self.run())
            .map_err(Error::Spawn)?;
        Ok(VcpuHandle { thread })
    }
}

impl ExitHandler for Vcpu {
    fn run(&mut self) -> std::result::Result<VcpuExit<'_>, kvm_ioctls::Error> {
        self.vm.slot_gate().enter();
        let r = self.fd.run();
        self.vm.slot_gate().leave();
        r
    }

    fn index(&self) -> u32 {
        self.index
    }

    fn hypercall(&mut self) -> ExitAction {
        let hc = hypercall::decode(&self.fd.sync_regs().regs);
        self.vm.mark_hypercall(self.index, true);
        let outcome = hypercall::handle(&self.vm, self.index, hc);
        self.vm.mark_hypercall(self.index, false);
        match outcome {
            Outcome::Return(v) => {
                self.fd.sync_regs_mut().regs.rax = v as u64;
                self.fd.set_sync_dirty_reg(SyncReg::Register);
                ExitAction::Continue
            }
            Outcome::Stop(reason) => ExitAction::Stop(reason),
        }
    }

    fn exception_report(&mut self, vector: u8) -> ExceptionReport {
        boot::exception_report(vector, &self.fd.sync_regs().regs)
    }

    fn rip(&mut self) -> u64 {
        self.fd.get_regs().map(|r| r.rip).unwrap_or(0)
    }

    fn cpu_state(&mut self) -> String {
        let (Ok(r), Ok(s)) = (self.fd.get_regs(), self.fd.get_sregs()) else {
            return "registers unavailable".into();
        };
        format!(
            "rip={:#x} rsp={:#x} rflags={:#x} rax={:#x} cs={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
            r.rip, r.rsp, r.rflags, r.rax, s.cs.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer
        )
    }

    fn mmio(&mut self, addr: u64, len: usize, write: Option<[u8; 8]>) -> bool {
        if !self.vm.register_ram_at(addr) {
            return false;
        }
        // The access started before the memslot existed: complete it through the host
        // mapping (KVM finishes the instruction with the data of a read on re-entry).
        if let Some(bytes) = write {
            return self.vm.ram().write(addr, &bytes[..len]).is_ok();
        }
        let mut buf = [0u8; 8];
        if self.vm.ram().read_into(addr, &mut buf[..len]).is_err() {
            return false;
        }
        let run = self.fd.get_kvm_run();
        // SAFETY: the last exit was KVM_EXIT_MMIO, so `mmio` is the union member in use; `len`
        // is at most 8, the size of `mmio.data`.
        unsafe { run.__bindgen_anon_1.mmio.data[..len].copy_from_slice(&buf[..len]) };
        true
    }

    fn retry_after_registering_ram(&mut self) -> bool {
        // An instruction fetch from RAM without a memslot ends in an emulation failure; the
        // page tables are an identity map, so `rip` is the guest-physical address.
        let rip = self.rip();
        self.vm.ram_unregistered_at(rip) && self.vm.register_ram_at(rip)
    }

    fn internal_error(&mut self) -> (u32, Vec<u64>) {
        let run = self.fd.get_kvm_run();
        // SAFETY: the exit reason was KVM_EXIT_INTERNAL_ERROR, so `internal` is the union
        // member KVM filled in.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let n = (internal.ndata as usize).min(internal.data.len());
        (internal.suberror, internal.data[..n].to_vec())
    }
}

/// A running vCPU thread.
pub struct VcpuHandle {
    thread: JoinHandle<()>,
}

impl VcpuHandle {
    /// Interrupts `KVM_RUN` on the thread (it then sees the VM's stop flag).
    pub fn kick(&self) {
        // SAFETY: the pthread is alive until joined (we hold the JoinHandle); SIGRTMIN has a
        // handler installed by `install_kick_handler`.
        unsafe { libc::pthread_kill(self.thread.as_pthread_t(), SIGRTMIN()) };
    }

    /// Kicks the thread until it finishes or `timeout` passes; returns whether it finished.
    pub fn stop(self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            self.kick();
            std::thread::sleep(Duration::from_millis(2));
        }
        self.thread.join().is_ok()
    }
}
