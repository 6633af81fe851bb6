//! Keeps the bridge's aux VMOs committed ahead of the supplies (`ext-pager-aux`).
//!
//! Every SUPPLY moves its aux pages into RAM and leaves that aux range empty; committing
//! fresh pages is part of every supply otherwise: the kernel zeroes each one (~30 us per 2 MiB
//! huge page here, a quarter of the data path) and a 4 KiB one costs an `madvise` call. The
//! supplies take their aux ranges in turn around the aux VMO (see `Aux::take` in the
//! bridge), and this thread commits the whole VMO again each time they pass a quarter of it,
//! in the background, at nice [`REFILL_NICE`] and on whichever CPU is free (it is started
//! before the bridge's threads are pinned, so it is not pinned itself). A supply that finds
//! its range not committed yet commits it itself: the refill only ever saves time and never
//! changes what is supplied. Cost: the aux VMOs stay committed, up to twice the data
//! region's size (16 MiB each) per bridge.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use kvmpager::abi::HUGE_PAGE_SIZE;

use crate::kernel::Vmo;
use crate::sync::{lock, wait};

/// Nice value of the refill thread (it only works ahead; vCPUs and fault threads come first).
const REFILL_NICE: i32 = 10;
/// Bytes of a small-page aux VMO committed per call (per hold of its lock).
const SMALL_STEP: u64 = 64 << 10;

/// The refill thread and its job.
pub(super) struct Refill {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    job: Mutex<Job>,
    changed: Condvar,
}

#[derive(Default)]
struct Job {
    /// The aux VMOs to commit whole.
    aux: Vec<Arc<Vmo>>,
    stop: bool,
}

impl Refill {
    /// Starts the thread (it waits for its first job). `None` if it cannot be started: the
    /// supplies then commit their own pages, as without it.
    pub(super) fn start() -> Option<Self> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ext-pager-aux".into())
            .spawn(move || s.run())
            .map_err(|e| log::debug!("external pager: no aux refill thread: {e}"))
            .ok()?;
        Some(Refill {
            shared,
            thread: Some(thread),
        })
    }

    /// Commits all of `aux` again, in the background.
    pub(super) fn request(&self, aux: &Arc<Vmo>) {
        let mut job = lock(&self.shared.job);
        if !job.aux.iter().any(|a| Arc::ptr_eq(a, aux)) {
            job.aux.push(aux.clone());
        }
        drop(job);
        self.shared.changed.notify_one();
    }
}

impl Drop for Refill {
    fn drop(&mut self) {
        lock(&self.shared.job).stop = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn run(&self) {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority on this thread's own id changes only its nice value (raising
        // it needs no privilege); failure leaves it as it was.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, REFILL_NICE) } != 0 {
            log::debug!("aux refill: nice {REFILL_NICE} refused");
        }
        let never = AtomicBool::new(false);
        while let Some(aux) = self.next_job() {
            // A huge page, or 64 KiB of small pages, at a time: a supply waiting for the aux
            // VMO's lock gets it in between.
            let (len, step) = (
                aux.size(),
                if aux.is_huge() {
                    HUGE_PAGE_SIZE
                } else {
                    SMALL_STEP
                },
            );
            for at in (0..len).step_by(step as usize) {
                if lock(&self.job).stop {
                    return;
                }
                let _ = aux.commit(at, step.min(len - at), &never);
            }
        }
    }

    /// Waits for a job; `None` once stopped.
    fn next_job(&self) -> Option<Arc<Vmo>> {
        let mut job = lock(&self.job);
        loop {
            if job.stop {
                return None;
            }
            if let Some(aux) = job.aux.pop() {
                return Some(aux);
            }
            job = wait(&self.changed, job);
        }
    }
}
