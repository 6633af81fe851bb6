//! The fault service: one userfaultfd per process, read by an event-manager loop.
//!
//! Every pager VMO's host memory is registered (MISSING mode) with its process's userfaultfd;
//! a VMO over a shared file also in MINOR mode, and its minor faults (a page the file holds
//! but the mapping lacks) reach [`FaultTarget::on_minor_fault`].
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

use crate::request::{OverdueRequest, PagerVmoRequests};
use crate::uffd::{EVENT_BATCH, UffdEvent, Userfault};

/// How long the service loop sleeps in epoll before checking for shutdown (ms); shutdown
/// also wakes it at once through an eventfd, so this is only a backstop.
const POLL_MS: i32 = 100;

/// A range of a userfaultfd whose faulting threads are to be woken: (uffd, address, length).
type Wake = (Arc<Userfault>, u64, u64);

thread_local! {
    /// Inside [`with_deferred_faulter_wakes`]: the ranges whose faulting threads are still to
    /// be woken.
    static DEFERRED_WAKES: std::cell::RefCell<Option<Vec<Wake>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, and returns what it returned and the wake-ups of the threads that the supplies
/// made inside `f` resolved (faulting vCPUs), held back until the caller calls
/// [`DeferredWakes::wake`] (or drops them): the external-pager bridge queues its reply to the
/// pager before the vCPU can run again.
pub fn with_deferred_faulter_wakes<R>(f: impl FnOnce() -> R) -> (R, DeferredWakes) {
    let outer = DEFERRED_WAKES.with(|d| d.borrow_mut().replace(Vec::new()));
    let r = f();
    let wakes = DEFERRED_WAKES.with(|d| std::mem::replace(&mut *d.borrow_mut(), outer));
    (r, DeferredWakes(wakes.unwrap_or_default()))
}

/// Wake-ups held back by [`with_deferred_faulter_wakes`].
pub struct DeferredWakes(Vec<Wake>);

impl DeferredWakes {
    /// Whether there is anyone to wake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wakes the threads now.
    pub fn wake(self) {
        drop(self);
    }
}

impl Drop for DeferredWakes {
    fn drop(&mut self) {
        for (uffd, addr, len) in self.0.drain(..) {
            if let Err(e) = uffd.wake(addr, len) {
                log::error!("waking the threads that faulted at {addr:#x} (+{len:#x}): {e}");
            }
        }
    }
}

/// What a registered range of host memory answers to: a pager VMO.
pub trait FaultTarget: Send + Sync {
    /// Thread `tid` touched the absent page at host address `addr`.
    fn on_fault(&self, addr: u64, tid: u32);
    /// Thread `tid` wrote to the write-protected page at host address `addr`.
    fn on_write_fault(&self, addr: u64, tid: u32);
    /// Thread `tid` touched a page at host address `addr` that the shared file behind a
    /// minor-registered range holds but the range has not mapped: by default the same as an
    /// absent page.
    fn on_minor_fault(&self, addr: u64, tid: u32) {
        self.on_fault(addr, tid);
    }
    /// The oldest page request still waiting for its pager, if any.
    fn oldest_request(&self) -> Option<OverdueRequest>;
    /// This pager VMO with all its outstanding requests (`None`: not a pager VMO).
    fn pending_requests(&self) -> Option<PagerVmoRequests> {
        None
    }
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

    /// Wakes the threads that faulted in `[addr, addr + len)`, now or, inside
    /// [`with_deferred_faulter_wakes`], when its caller says.
    pub(crate) fn wake_faulters(&self, addr: u64, len: u64) -> Result<(), crate::uffd::UffdError> {
        let deferred = DEFERRED_WAKES.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                list.push((self.uffd.clone(), addr, len));
                true
            }
            None => false,
        });
        if deferred {
            return Ok(());
        }
        self.uffd.wake(addr, len)
    }

    /// Registers `target`'s host memory `[addr, addr + len)` — a `MAP_PRIVATE` mapping of a
    /// shared file — for MISSING and MINOR faults (see [`Userfault::register_minor`]).
    pub fn register_minor(
        &self,
        target: Weak<dyn FaultTarget>,
        addr: u64,
        len: u64,
    ) -> Result<(), FaultError> {
        self.uffd.register_minor(addr, len)?;
        self.map().insert(addr, (addr + len, target));
        Ok(())
    }

    /// Pins the service thread to host CPU `cpu` (`sched_setaffinity`): a fault is served
    /// fastest by a thread on the CPU of the thread that took it.
    pub fn pin(&self, cpu: usize) -> std::io::Result<()> {
        let guard = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        let Some(t) = guard.as_ref() else {
            return Ok(());
        };
        pin_pthread(std::os::unix::thread::JoinHandleExt::as_pthread_t(t), cpu)
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

    /// Every live pager VMO of this service with its outstanding requests, by koid.
    pub fn pager_vmos(&self) -> Vec<PagerVmoRequests> {
        let mut all: Vec<_> = self
            .targets()
            .iter()
            .filter_map(|target| target.pending_requests())
            .collect();
        all.sort_by_key(|v| v.vmo_koid);
        all
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

/// Pins the thread `thread` to host CPU `cpu`.
pub fn pin_pthread(thread: libc::pthread_t, cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain data; all zero bits is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `cpu` is below CPU_SETSIZE (checked).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `thread` names a live thread (callers pass their own running threads) and
    // `set` is a valid cpu_set_t of the size given.
    let rc = unsafe {
        libc::pthread_setaffinity_np(thread, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
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
    fn dispatch(&self, addr: u64, tid: u32, wp: bool, minor: bool) {
        let target = {
            let map = self.targets.read().unwrap_or_else(|e| e.into_inner());
            map.range(..=addr)
                .next_back()
                .filter(|(_, (end, _))| addr < *end)
                .and_then(|(_, (_, target))| target.upgrade())
        };
        match target {
            Some(target) if wp => target.on_write_fault(addr, tid),
            Some(target) if minor => target.on_minor_fault(addr, tid),
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
    /// Reads the pending events in batches; a short batch drained the queue, and the
    /// level-triggered epoll brings the thread back for anything that arrived since (so a
    /// lone fault costs one `read`, not two).
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        loop {
            let read = crate::port::with_deferred_wakeups(|| {
                self.uffd.read_events(|ev| match ev {
                    UffdEvent::PageFault {
                        addr,
                        tid,
                        wp,
                        minor,
                        ..
                    } => self.dispatch(addr, tid, wp, minor),
                    UffdEvent::Other(kind) => log::debug!("userfaultfd event {kind:#x}"),
                })
            });
            match read {
                Ok(n) if n == EVENT_BATCH => {}
                Ok(_) => break,
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{self, Receiver, Sender};

    use super::*;
    use crate::abi::PAGE_SIZE;
    use crate::abi::packet::ZX_PAGER_VMO_READ;
    use crate::hostmem::HostMemory;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// What a fake target was called with: (target name, address, thread id, write fault).
    type Call = (&'static str, u64, u32, bool);

    /// A fault target that reports its calls on a channel and has a canned oldest request.
    struct Fake {
        name: &'static str,
        calls: Sender<Call>,
        oldest: Option<OverdueRequest>,
    }

    impl FaultTarget for Fake {
        fn on_fault(&self, addr: u64, tid: u32) {
            let _ = self.calls.send((self.name, addr, tid, false));
        }

        fn on_write_fault(&self, addr: u64, tid: u32) {
            let _ = self.calls.send((self.name, addr, tid, true));
        }

        fn oldest_request(&self) -> Option<OverdueRequest> {
            self.oldest
        }
    }

    /// A fake named `name` over `pages` fresh pages, registered with `service`.
    fn registered(
        service: &FaultService,
        name: &'static str,
        pages: u64,
        calls: &Sender<Call>,
        oldest: Option<OverdueRequest>,
    ) -> (Arc<Fake>, Arc<HostMemory>) {
        let mem = Arc::new(HostMemory::new(pages * PAGE_SIZE, false).unwrap());
        let fake = Arc::new(Fake {
            name,
            calls: calls.clone(),
            oldest,
        });
        let weak: Weak<Fake> = Arc::downgrade(&fake);
        service
            .register(weak, mem.host_addr(), mem.len(), true)
            .unwrap();
        (fake, mem)
    }

    /// Reads (or, with `write`, writes) the byte at `offset` of `mem` on a new thread;
    /// returns the thread's id and a receiver that gets the byte read once it is done.
    fn touch(mem: &Arc<HostMemory>, offset: u64, write: bool) -> (u32, Receiver<u8>) {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let mem = mem.clone();
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let mut byte = [0u8];
            if write {
                mem.write(offset, &[7]).unwrap();
            }
            mem.read(offset, &mut byte).unwrap();
            let _ = done_tx.send(byte[0]);
        });
        (tid_rx.recv_timeout(TIMEOUT).unwrap(), done_rx)
    }

    fn request(vmo_koid: u64, waited_ms: u64) -> Option<OverdueRequest> {
        Some(OverdueRequest {
            vmo_koid,
            offset: 0,
            len: PAGE_SIZE,
            command: ZX_PAGER_VMO_READ,
            waited: Duration::from_millis(waited_ms),
            faulting: true,
        })
    }

    #[test]
    fn a_fault_reaches_the_target_whose_range_holds_it() {
        let service = FaultService::start(false).unwrap();
        let (tx, rx) = mpsc::channel();
        let (_a, _mem_a) = registered(&service, "a", 2, &tx, None);
        let (_b, mem_b) = registered(&service, "b", 3, &tx, None);
        let addr = mem_b.host_addr() + 2 * PAGE_SIZE;
        let (tid, done) = touch(&mem_b, 2 * PAGE_SIZE + 5, false);
        assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), ("b", addr, tid, false));
        assert!(done.try_recv().is_err(), "the thread waits for the page");
        service.uffd().zeropage(addr, PAGE_SIZE).unwrap();
        assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), 0);
        assert!(rx.try_recv().is_err(), "one fault, one call");
    }

    #[test]
    fn a_fault_on_a_dropped_target_calls_nobody() {
        let service = FaultService::start(false).unwrap();
        let (tx, rx) = mpsc::channel();
        let (_a, _mem_a) = registered(&service, "a", 1, &tx, None);
        let (b, mem_b) = registered(&service, "b", 1, &tx, None);
        drop(b);
        assert_eq!(service.targets().len(), 1);
        let (_, done) = touch(&mem_b, 0, false);
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        // The thread stays blocked until someone supplies the page.
        assert!(done.try_recv().is_err());
        service
            .uffd()
            .zeropage(mem_b.host_addr(), PAGE_SIZE)
            .unwrap();
        assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), 0);
    }

    #[test]
    fn unregistered_memory_no_longer_faults() {
        let service = FaultService::start(false).unwrap();
        let (tx, rx) = mpsc::channel();
        let (_a, mem_a) = registered(&service, "a", 1, &tx, None);
        service.unregister(mem_a.host_addr());
        assert!(service.targets().is_empty());
        let (_, done) = touch(&mem_a, 0, false);
        assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), 0);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_write_to_a_protected_page_is_a_write_fault() {
        let service = FaultService::start(false).unwrap();
        if !service.uffd().supports_wp() {
            return; // No userfaultfd write-protect on this host: nothing to route.
        }
        let (tx, rx) = mpsc::channel();
        let (_a, mem) = registered(&service, "a", 1, &tx, None);
        let addr = mem.host_addr();
        service.uffd().zeropage(addr, PAGE_SIZE).unwrap();
        service.uffd().write_protect(addr, PAGE_SIZE, true).unwrap();
        let (tid, done) = touch(&mem, 0, true);
        assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), ("a", addr, tid, true));
        service
            .uffd()
            .write_protect(addr, PAGE_SIZE, false)
            .unwrap();
        assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), 7);
    }

    #[test]
    fn the_overdue_request_is_the_longest_waiting_past_the_age() {
        let service = FaultService::start(false).unwrap();
        let (tx, _rx) = mpsc::channel();
        let _idle = registered(&service, "idle", 1, &tx, None);
        let _young = registered(&service, "young", 1, &tx, request(1, 1_000));
        let _old = registered(&service, "old", 1, &tx, request(2, 3_000));
        let gone = registered(&service, "gone", 1, &tx, request(3, 10_000));
        drop(gone.0);
        let pick = |age_ms| service.overdue_request(Duration::from_millis(age_ms));
        assert_eq!(pick(500).map(|r| r.vmo_koid), Some(2));
        assert_eq!(pick(3_000).map(|r| r.vmo_koid), Some(2));
        assert_eq!(pick(5_000), None, "the 10 s request's target is gone");
        assert_eq!(service.targets().len(), 3);
    }
}
