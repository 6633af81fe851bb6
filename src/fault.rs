//! The fault service: one userfaultfd per process, read by an event-manager loop.
//!
//! Every pager VMO's host memory is registered (MISSING mode) with its process's userfaultfd.
//! A thread — a vCPU inside KVM, or any host thread — touching an absent page blocks in the
//! host kernel; the service thread reads the event and hands it to the VMO, which turns it into
//! a READ request (or joins an outstanding one). Supplying the page (`UFFDIO_MOVE`) wakes it.
//!
//! The service knows a registered range only as a [`FaultTarget`] (held weakly): what it calls
//! back on a fault, and what the fault-timeout watchdog asks. [`crate::vmo::Vmo`] is the one
//! kernel implementation; the unit tests below use fakes.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;

use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use std::time::Duration;

use crate::request::OverdueRequest;
use crate::uffd::{UffdEvent, Userfault};

/// How long the service loop sleeps in epoll before checking for shutdown (ms); shutdown
/// also wakes it at once through an eventfd, so this is only a backstop.
const POLL_MS: i32 = 100;

/// What a registered range of host memory answers to: a pager VMO.
pub trait FaultTarget: Send + Sync {
    /// Thread `tid` touched the absent page at host address `addr`.
    fn on_fault(&self, addr: u64, tid: u32);
    /// Thread `tid` wrote to the write-protected page at host address `addr`.
    fn on_write_fault(&self, addr: u64, tid: u32);
    /// The oldest page request still waiting for its pager, if any.
    fn oldest_request(&self) -> Option<OverdueRequest>;
}

/// Registered ranges by start address: (end address, target).
type TargetMap = BTreeMap<u64, (u64, Weak<dyn FaultTarget>)>;
type TargetLock = RwLock<TargetMap>;

/// A process's userfaultfd and the thread that serves it.
pub struct FaultService {
    uffd: Arc<Userfault>,
    targets: Arc<TargetLock>,
    stop: Arc<AtomicBool>,
    /// Written on shutdown so the service loop leaves epoll at once.
    wake: Arc<EventFd>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Errors starting the fault service.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// userfaultfd could not be set up.
    #[error("userfaultfd: {0}")]
    Uffd(#[from] crate::uffd::UffdError),
    /// The epoll loop could not be created.
    #[error("event manager: {0:?}")]
    EventManager(event_manager::Error),
    /// The shutdown eventfd could not be created.
    #[error("eventfd: {0}")]
    EventFd(std::io::Error),
    /// The service thread could not be spawned.
    #[error("spawning the fault thread: {0}")]
    Spawn(std::io::Error),
}

impl FaultService {
    /// Opens a userfaultfd (with `UFFDIO_MOVE` unless `copy_only`) and starts the thread.
    pub fn start(copy_only: bool) -> Result<Arc<FaultService>, FaultError> {
        let uffd = Arc::new(if copy_only {
            Userfault::new_without_move()?
        } else {
            Userfault::new()?
        });
        let targets: Arc<TargetLock> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut manager = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
            .map_err(FaultError::EventManager)?;
        manager.add_subscriber(Arc::new(Mutex::new(FaultReader {
            uffd: uffd.clone(),
            targets: targets.clone(),
        })));
        let wake = Arc::new(EventFd::new(libc::EFD_NONBLOCK).map_err(FaultError::EventFd)?);
        manager.add_subscriber(Arc::new(Mutex::new(WakeReader(wake.clone()))));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kvmpager-faults".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    if let Err(e) = manager.run_with_timeout(POLL_MS) {
                        log::error!("fault service epoll failed: {e:?}");
                        break;
                    }
                }
            })
            .map_err(FaultError::Spawn)?;
        Ok(Arc::new(FaultService {
            uffd,
            targets,
            stop,
            wake,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The userfaultfd (for moves and copies into registered memory).
    pub fn uffd(&self) -> &Userfault {
        &self.uffd
    }

    /// Registers `target`'s host memory `[addr, addr + len)` for MISSING faults, and for
    /// writes to write-protected pages when `wp` (TRAP_DIRTY VMOs).
    pub fn register(
        &self,
        target: Weak<dyn FaultTarget>,
        addr: u64,
        len: u64,
        wp: bool,
    ) -> Result<(), FaultError> {
        self.uffd.register(addr, len, wp)?;
        self.map().insert(addr, (addr + len, target));
        Ok(())
    }

    /// Every live target registered with this service.
    pub fn targets(&self) -> Vec<Arc<dyn FaultTarget>> {
        let map = self.targets.read().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter_map(|(_, target)| target.upgrade())
            .collect()
    }

    /// The oldest page request of the live targets that has waited at least `age`, if any.
    pub fn overdue_request(&self, age: Duration) -> Option<OverdueRequest> {
        self.targets()
            .iter()
            .filter_map(|target| target.oldest_request())
            .filter(|r| r.waited >= age)
            .max_by_key(|r| r.waited)
    }

    /// Forgets the VMO whose memory starts at `addr` (its memory is about to be unmapped).
    pub fn unregister(&self, addr: u64) {
        let removed = self.map().remove(&addr);
        if let Some((end, _)) = removed
            && let Err(e) = self.uffd.unregister(addr, end - addr)
        {
            log::debug!("userfaultfd unregister at {addr:#x}: {e}");
        }
    }

    fn map(&self) -> std::sync::RwLockWriteGuard<'_, TargetMap> {
        self.targets.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Err(e) = self.wake.write(1) {
            log::debug!("waking the fault thread: {e}");
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// The event-manager subscriber of the shutdown eventfd: its only job is to end the epoll wait.
struct WakeReader(Arc<EventFd>);

impl AsRawFd for WakeReader {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl MutEventSubscriber for WakeReader {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.0.read();
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(self, EventSet::IN)) {
            log::error!("watching the shutdown eventfd: {e:?}");
        }
    }
}

/// The event-manager subscriber that drains the userfaultfd.
struct FaultReader {
    uffd: Arc<Userfault>,
    targets: Arc<TargetLock>,
}

impl FaultReader {
    fn dispatch(&self, addr: u64, tid: u32, wp: bool) {
        let target = {
            let map = self.targets.read().unwrap_or_else(|e| e.into_inner());
            map.range(..=addr)
                .next_back()
                .filter(|(_, (end, _))| addr < *end)
                .and_then(|(_, (_, target))| target.upgrade())
        };
        match target {
            Some(target) if wp => target.on_write_fault(addr, tid),
            Some(target) => target.on_fault(addr, tid),
            None => log::warn!("userfaultfd fault at {addr:#x} outside every pager VMO"),
        }
    }
}

impl AsRawFd for FaultReader {
    fn as_raw_fd(&self) -> RawFd {
        self.uffd.raw_fd()
    }
}

impl MutEventSubscriber for FaultReader {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        loop {
            match self.uffd.read_event() {
                Ok(Some(UffdEvent::PageFault { addr, tid, wp, .. })) => {
                    self.dispatch(addr, tid, wp)
                }
                Ok(Some(UffdEvent::Other(kind))) => log::debug!("userfaultfd event {kind:#x}"),
                Ok(None) => break,
                Err(e) => {
                    log::error!("reading userfaultfd: {e}");
                    break;
                }
            }
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(self, EventSet::IN)) {
            log::error!("watching userfaultfd: {e:?}");
        }
    }
}
