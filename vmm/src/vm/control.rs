//! What the control socket (`crate::api`) asks of a running VM: holding it paused and letting
//! it go, snapshots to a path of the client's choosing (taken by the runner, like every
//! snapshot), and where each vCPU is.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};

use super::Vm;
use crate::config::SnapshotThen;
use crate::snapshot;
use crate::sync::lock;

/// What a snapshot asked for through the control socket ends with.
pub type SnapshotOutcome = std::result::Result<snapshot::Written, String>;

/// A snapshot the control socket asked for: where to, what then, and who waits for it.
pub struct SnapshotJob {
    /// The snapshot directory to write (atomically).
    pub dir: PathBuf,
    /// Stop the VM afterwards, or let it go on.
    pub then: SnapshotThen,
    reply: SyncSender<SnapshotOutcome>,
}

impl SnapshotJob {
    /// Hands the outcome to whoever asked (they may have given up waiting).
    pub fn finish(self, outcome: SnapshotOutcome) {
        let _ = self.reply.try_send(outcome);
    }
}

/// The control socket's requests waiting for the runner.
#[derive(Default)]
pub(super) struct ControlState {
    jobs: std::sync::Mutex<VecDeque<SnapshotJob>>,
}

/// Where one vCPU is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuActivity {
    /// Running guest code (or about to).
    Running,
    /// Inside a hypercall (which may block, e.g. a port wait); it parks when the call returns.
    InHypercall,
    /// Parked outside `KVM_RUN` (a pause or snapshot is on).
    Parked,
    /// Stopped for good by a fatal page fault delivered to the guest's exception port (it
    /// still parks for pauses and snapshots).
    Faulted,
}

impl Vm {
    /// Holds the VM paused: every vCPU parks (see `pause.rs` for what that guarantees) until
    /// [`Vm::resume`]. Returns at once; [`Vm::vcpu_activity`] tells when all are parked.
    pub fn hold(&self) {
        self.pause.held.store(true, Ordering::SeqCst);
        self.kick_vcpus();
    }

    /// Lets a held VM go on; each vCPU continues from the registers it parked with.
    pub fn resume(&self) {
        self.pause.held.store(false, Ordering::SeqCst);
        self.pause_changed();
    }

    /// Time since the VM was built.
    pub fn uptime(&self) -> std::time::Duration {
        self.start.elapsed()
    }

    /// Whether the control socket holds the VM paused.
    pub fn held(&self) -> bool {
        self.pause.held.load(Ordering::SeqCst)
    }

    /// Where each vCPU is, in index order.
    pub fn vcpu_activity(&self) -> Vec<VcpuActivity> {
        let parked = self.parked_vcpus();
        let busy = self.pause.in_hypercall.load(Ordering::Relaxed);
        (0..self.vcpus)
            .map(|i| {
                if parked.contains(&i) {
                    VcpuActivity::Parked
                } else if self.is_parked(i) {
                    VcpuActivity::Faulted
                } else if i < 64 && busy & (1 << i) != 0 {
                    VcpuActivity::InHypercall
                } else {
                    VcpuActivity::Running
                }
            })
            .collect()
    }

    /// Called by vCPU `index` around each hypercall (`true` on entry, `false` on return).
    pub fn mark_hypercall(&self, index: u32, inside: bool) {
        if index < 64 {
            let bit = 1u64 << index;
            if inside {
                self.pause.in_hypercall.fetch_or(bit, Ordering::Relaxed);
            } else {
                self.pause.in_hypercall.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }

    /// Queues a snapshot to `dir` for the runner and wakes it; the receiver gets the outcome.
    pub fn request_snapshot_to(
        &self,
        dir: PathBuf,
        then: SnapshotThen,
    ) -> Receiver<SnapshotOutcome> {
        let (reply, rx) = mpsc::sync_channel(1);
        lock(&self.control.jobs).push_back(SnapshotJob { dir, then, reply });
        let _r = lock(&self.stop.reason);
        self.stop.changed.notify_all();
        rx
    }

    /// Whether snapshots asked for through the control socket wait for the runner.
    pub(super) fn has_snapshot_jobs(&self) -> bool {
        !lock(&self.control.jobs).is_empty()
    }

    /// Takes the snapshots waiting for the runner (in the order they were asked for).
    pub fn take_snapshot_jobs(&self) -> Vec<SnapshotJob> {
        lock(&self.control.jobs).drain(..).collect()
    }
}
