//! Where a VM's threads run: a fault costs ~4 us when the thread serving it runs on the CPU
//! of the vCPU that took it and ~60 us when it does not (cross-CPU wake-ups on a nested host),
//! more than any supply mechanism. So each VM gets a home CPU (round-robin over the CPUs this
//! process may use): vCPU `i` is pinned to the `i`th CPU from home, and the threads that
//! serve its RAM faults — the host process's fault service and the host pager — to vCPU 0's.

use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use super::Vm;
use crate::kernel::pin_pthread;

/// The next VM's home, as an index into the usable CPUs.
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

/// The CPUs this process may run on (`sched_getaffinity`); CPU 0 if that fails.
pub(crate) fn usable_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all zero bits is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return vec![0];
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads one bit of `set`; `c` is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    if cpus.is_empty() { vec![0] } else { cpus }
}

/// The CPUs of a new VM's `vcpus` vCPUs (element 0 also serves its faults).
pub(super) fn choose_cpus(vcpus: u32) -> Vec<usize> {
    let cpus = usable_cpus();
    let home = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
    (0..vcpus as usize)
        .map(|i| cpus[(home + i) % cpus.len()])
        .collect()
}

impl Vm {
    /// Pins the calling vCPU thread `me` (vCPU `index`) to its CPU, when threads are pinned.
    pub(crate) fn pin_vcpu_thread(&self, index: u32, me: libc::pthread_t) {
        let Some(cpus) = &self.cpus else { return };
        let cpu = cpus[index as usize % cpus.len()];
        if let Err(e) = pin_pthread(me, cpu) {
            log::debug!("pinning vCPU {index} to CPU {cpu}: {e}");
        }
    }

    /// Pins the host process's fault service and the host pager thread `pager` to vCPU 0's
    /// CPU, when threads are pinned.
    pub(super) fn pin_fault_threads(&self, pager: &JoinHandle<()>) {
        let Some(&cpu) = self.cpus.as_ref().and_then(|c| c.first()) else {
            return;
        };
        if let Err(e) = self.host().pin_fault_thread(cpu) {
            log::debug!("pinning the fault service to CPU {cpu}: {e}");
        }
        if let Err(e) = pin_pthread(pager.as_pthread_t(), cpu) {
            log::debug!("pinning the host pager to CPU {cpu}: {e}");
        }
    }

    /// Pins another thread that serves the VM's faults (an external pager's bridge) to vCPU
    /// 0's CPU, when threads are pinned.
    pub(super) fn pin_fault_helper(&self, thread: &JoinHandle<()>) {
        let Some(&cpu) = self.cpus.as_ref().and_then(|c| c.first()) else {
            return;
        };
        if let Err(e) = pin_pthread(thread.as_pthread_t(), cpu) {
            log::debug!("pinning a fault-serving thread to CPU {cpu}: {e}");
        }
    }

    /// Pins a process that serves the VM's faults (an exec'd external pager: its threads and
    /// children inherit it) to vCPU 0's CPU, when threads are pinned.
    pub(super) fn pin_fault_process(&self, pid: u32) {
        let Some(&cpu) = self.cpus.as_ref().and_then(|c| c.first()) else {
            return;
        };
        // SAFETY: cpu_set_t is plain data; all zero bits is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes one bit inside `set`; `cpu` came from sched_getaffinity.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: sched_setaffinity reads `set` (its size given); `pid` is our own child.
        let rc = unsafe {
            libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of_val(&set), &set)
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            log::debug!("pinning the pager process {pid} to CPU {cpu}: {e}");
        }
    }

    /// The host CPUs the VM's threads are pinned to (`None` when they are not).
    pub fn pinned_cpus(&self) -> Option<&[usize]> {
        self.cpus.as_deref()
    }
}
