//! Pauses: vCPUs parking with their state, for a snapshot (the `Snapshot` hypercall, SIGUSR1,
//! `PUT /snapshot`) or held by the control socket (`PUT /vm/pause` until `PUT /vm/resume`,
//! see `control.rs`); the runner waiting for all of them; writing the snapshot of the paused
//! VM.
//!
//! What a pause guarantees: a vCPU parks at the top of its run loop, outside `KVM_RUN`, after
//! completing pending port I/O with `immediate_exit` (so a hypercall's result and `rip` are in
//! its registers and no guest instruction runs while it is parked). A vCPU running guest code
//! or blocked in a page fault inside `KVM_RUN` is kicked out (SIGRTMIN; `KVM_RUN` returns
//! `EINTR`, and the faulting access is simply retried when it resumes). A vCPU inside a
//! hypercall that blocks (a port wait, a VMO read waiting for a page) parks when the call
//! returns. Each parked vCPU unparks itself when neither a snapshot nor a hold is on, and goes
//! on from exactly the registers it parked with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kvmpager::abi::Status;
use kvmpager::abi::status::*;

use super::Vm;
use crate::snapshot::{self, VcpuState};
use crate::sync::{lock, wait_timeout};

/// vCPUs parked for a snapshot.
#[derive(Default)]
struct PauseInner {
    /// The state of each parked vCPU (or why it could not be read).
    states: BTreeMap<u32, std::result::Result<VcpuState, String>>,
    /// The vCPU whose `Snapshot` hypercall asked for this pause.
    requester: Option<u32>,
    /// Set when the snapshot failed: the requester's hypercall returns this instead of ZX_OK.
    failed: Option<Status>,
}

#[derive(Default)]
pub(super) struct PauseState {
    /// A snapshot pause is on.
    requested: AtomicBool,
    /// The control socket holds the VM paused.
    pub(super) held: AtomicBool,
    /// Bit `i`: vCPU `i` is handling a hypercall (for the pause report; vCPUs 0..64).
    pub(super) in_hypercall: AtomicU64,
    inner: Mutex<PauseInner>,
    changed: Condvar,
}

impl Vm {
    /// The `Snapshot` hypercall of vCPU `vcpu`: pauses the caller at once (it parks when the
    /// hypercall returns) and wakes the runner. `ZX_ERR_NOT_SUPPORTED` without snapshots on.
    pub fn request_snapshot(&self, vcpu: u32) -> std::result::Result<(), Status> {
        if self.snapshot_cfg.is_none() {
            return Err(ZX_ERR_NOT_SUPPORTED);
        }
        {
            let mut p = lock(&self.pause.inner);
            p.requester.get_or_insert(vcpu);
            self.pause.requested.store(true, Ordering::SeqCst);
        }
        let _r = lock(&self.stop.reason);
        self.stop.snapshot.store(true, Ordering::SeqCst);
        self.stop.changed.notify_all();
        Ok(())
    }

    /// Whether vCPUs should park (a snapshot is being taken, or the VM is held paused).
    pub fn pause_requested(&self) -> bool {
        self.pause.requested.load(Ordering::SeqCst) || self.pause.held.load(Ordering::SeqCst)
    }

    /// The vCPUs parked now, in index order.
    pub fn parked_vcpus(&self) -> Vec<u32> {
        lock(&self.pause.inner).states.keys().copied().collect()
    }

    /// Wakes parked vCPUs to look at the pause flags again.
    pub(super) fn pause_changed(&self) {
        let _p = lock(&self.pause.inner);
        self.pause.changed.notify_all();
    }

    /// Parks vCPU `index` with its `state` until no pause is on (or the VM stops). Returns a
    /// status to put in `rax` when this vCPU asked for a snapshot that failed.
    pub fn park_paused(
        &self,
        index: u32,
        state: std::result::Result<VcpuState, String>,
    ) -> Option<Status> {
        let mut p = lock(&self.pause.inner);
        p.states.insert(index, state);
        self.pause.changed.notify_all();
        while self.pause_requested() && !self.stopping() {
            p = wait_timeout(&self.pause.changed, p, Duration::from_millis(20));
        }
        p.states.remove(&index);
        if p.requester == Some(index) {
            p.requester = None;
            return p.failed.take();
        }
        None
    }

    /// Starts a pause (signal-triggered snapshots).
    pub fn begin_pause(&self) {
        self.pause.requested.store(true, Ordering::SeqCst);
    }

    /// Waits until every vCPU is parked, calling `kick` between looks; `None` after
    /// `timeout`.
    pub fn wait_paused(
        &self,
        timeout: Duration,
        mut kick: impl FnMut(),
    ) -> Option<Vec<std::result::Result<VcpuState, String>>> {
        let deadline = Instant::now() + timeout;
        let mut p = lock(&self.pause.inner);
        while p.states.len() < self.vcpus as usize {
            if Instant::now() >= deadline || self.stopping() {
                return None;
            }
            drop(p);
            kick();
            p = lock(&self.pause.inner);
            p = wait_timeout(&self.pause.changed, p, Duration::from_millis(5));
        }
        Some(p.states.values().cloned().collect())
    }

    /// Ends a snapshot pause (vCPUs stay parked while the VM is held); `failed` goes to the
    /// requesting vCPU's hypercall.
    pub fn end_pause(&self, failed: Option<Status>) {
        let mut p = lock(&self.pause.inner);
        p.failed = failed;
        if failed.is_none() {
            p.requester = None;
        }
        self.pause.requested.store(false, Ordering::SeqCst);
        self.pause.changed.notify_all();
    }

    /// Writes a snapshot of the paused VM (`states` in vCPU order) to `dir`.
    pub fn write_snapshot(
        &self,
        dir: &std::path::Path,
        states: Vec<VcpuState>,
    ) -> std::result::Result<snapshot::Written, snapshot::Error> {
        let (Some(ram), Some(pages)) = (&self.ram_vmo, &self.source) else {
            return Err(snapshot::Error::Vm("snapshots need lazy RAM".into()));
        };
        let src = snapshot::SnapshotSource {
            ram,
            pages: pages.as_ref(),
            cpus: states,
            clock_ns: self.now_ns(),
        };
        match dir.to_str().filter(|d| crate::store::is_url(d)) {
            Some(url) => crate::store::write_snapshot(url, &src, self.snapshot_working_set()),
            None => snapshot::write(dir, &src),
        }
    }

    /// BLAKE3 of all guest RAM (present pages, and the page source for the rest); `None`
    /// without lazy RAM.
    pub fn ram_blake3(&self) -> std::result::Result<Option<String>, snapshot::Error> {
        let (Some(ram), Some(pages)) = (&self.ram_vmo, &self.source) else {
            return Ok(None);
        };
        let src = snapshot::SnapshotSource {
            ram,
            pages: pages.as_ref(),
            cpus: Vec::new(),
            clock_ns: 0,
        };
        crate::store::ram_blake3(&src).map(Some)
    }

    /// The working set a chunked snapshot records: the pages the guest faulted on in
    /// first-touch order, then one page of every other chunk holding present pages (RAM the
    /// VM was given up front, e.g. the boot image).
    fn snapshot_working_set(&self) -> Vec<u64> {
        let chunk_pages = crate::store::CHUNK_SIZE / kvmpager::abi::PAGE_SIZE;
        let mut pages = self
            .counters
            .as_ref()
            .and_then(|c| c.recorded())
            .unwrap_or_default();
        let mut chunks: std::collections::HashSet<u64> =
            pages.iter().map(|p| p / chunk_pages).collect();
        let present = self.ram_vmo.as_ref().map(|v| v.present_runs());
        for run in present.unwrap_or_default() {
            let mut p = run.start;
            while p < run.end {
                if chunks.insert(p / chunk_pages) {
                    pages.push(p);
                }
                p = (p / chunk_pages + 1) * chunk_pages;
            }
        }
        pages
    }
}
