//! Stopping a VM and waking its runner: the first stop reason wins; the runner also wakes for
//! snapshot requests (the hypercall or SIGUSR1).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Event, SNAPSHOT_SIGNAL, Vm};
use crate::exit::StopReason;
use crate::sync::{lock, wait, wait_timeout};

/// How long the runner sleeps between looks at [`SNAPSHOT_SIGNAL`].
const SIGNAL_POLL: Duration = Duration::from_millis(50);

impl Vm {
    /// Waits for the VM to stop or a snapshot request, until `deadline`; `None` if it passes.
    pub fn wait_event(&self, deadline: Option<Instant>) -> Option<Event> {
        let mut r = lock(&self.stop.reason);
        loop {
            if let Some(reason) = r.as_ref() {
                return Some(Event::Stop(reason.clone()));
            }
            if self.stop.snapshot.swap(false, Ordering::SeqCst) {
                return Some(Event::Snapshot);
            }
            if self.has_snapshot_jobs() {
                return Some(Event::SnapshotJobs);
            }
            if self.snapshot_cfg.is_some() && SNAPSHOT_SIGNAL.swap(false, Ordering::SeqCst) {
                return Some(Event::Snapshot);
            }
            let mut wait = SIGNAL_POLL;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                wait = wait.min(left);
            }
            r = wait_timeout(&self.stop.changed, r, wait);
        }
    }

    /// Asks the VM to stop; the first reason wins. Returns whether this call set it.
    pub fn request_stop(&self, reason: StopReason) -> bool {
        let mut r = lock(&self.stop.reason);
        let first = r.is_none();
        if first {
            self.mark_stopped();
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
                None => r = wait(&self.stop.changed, r),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    r = wait_timeout(&self.stop.changed, r, left);
                }
            }
        }
        r.clone()
    }
}
