//! Ports: queues of packets that pagers wait on.
//!
//! Page-request packets carry a [`PacketSource`] so that the pager VMO that queued them learns
//! when the pager has read them (it then posts its next request: one packet per VMO sits in a
//! port at a time) and can withdraw them if the request is resolved before it is read.
//!
//! A port knows the VMOs bound to it only as [`PacketOwner`]s (held weakly): what it calls
//! back when a packet is read and when the port closes. [`crate::vmo::Vmo`] is the one kernel
//! implementation; the unit tests below use fakes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::abi::PortPacket;
use crate::abi::Status;
use crate::abi::status::{ZX_ERR_CANCELED, ZX_ERR_TIMED_OUT};
use crate::object::WeakList;

/// How long `zx_port_wait` polls for a packet before it sleeps (unless the waiting thread
/// set its own, [`set_spin_before_sleep`]).
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

thread_local! {
    /// The calling thread's spin before sleeping in [`Port::wait`].
    static SPIN: std::cell::Cell<Duration> = const { std::cell::Cell::new(SPIN_BEFORE_SLEEP) };
    /// Inside [`with_deferred_wakeups`]: the ports whose sleeping waiter is still to be woken.
    static DEFERRED: std::cell::RefCell<Option<Vec<Weak<Port>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, waking the waiters of the ports it queues packets to only when it returns (once
/// per port). The fault service dispatches a batch of faults this way: a waiter woken while
/// the dispatching thread still holds the pager VMO's lock would, on a shared CPU, run at once
/// and block on that lock.
pub fn with_deferred_wakeups<R>(f: impl FnOnce() -> R) -> R {
    let outer = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
    let r = f();
    let ports = DEFERRED.with(|d| std::mem::replace(&mut *d.borrow_mut(), outer));
    for port in ports.into_iter().flatten().filter_map(|w| w.upgrade()) {
        port.wake_after_queue();
    }
    r
}

/// Serves a port's queued packets on the calling thread, without waiting; returns whether it
/// took them on (`false`: a waiter has to be woken instead).
pub type InlineServer = Arc<dyn Fn() -> bool + Send + Sync>;

/// Records `port` for a deferred wake-up if the thread is inside [`with_deferred_wakeups`].
fn defer_wakeup(port: &Weak<Port>) -> bool {
    DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            if !list.iter().any(|w| w.ptr_eq(port)) {
                list.push(port.clone());
            }
            true
        }
        None => false,
    })
}

/// Sets how long the calling thread polls a port before it sleeps in [`Port::wait`] (default
/// 50 us). A waiter pinned to the CPU of the threads that queue its packets sets zero: spinning
/// there only delays them.
pub fn set_spin_before_sleep(spin: Duration) {
    SPIN.with(|s| s.set(spin));
}

/// How often a blocked waiter re-checks whether its process was killed.
pub(crate) const KILL_POLL: Duration = Duration::from_millis(20);

/// What a port calls back on the object that queued a packet: a pager VMO.
pub trait PacketOwner: Send + Sync {
    /// The pager read the packet queued under `token`.
    fn packet_dequeued(&self, token: u64);
    /// The port's last handle closed (see [`Port`]).
    fn port_closed(&self);
}

/// Who queued a packet, and the token it uses to find the packet again.
#[derive(Clone)]
pub struct PacketSource {
    /// The pager VMO that queued the packet.
    pub owner: Weak<dyn PacketOwner>,
    /// The VMO's token for the packet (a request id, or [`COMPLETE_TOKEN`]).
    pub token: u64,
}

/// Token of a VMO's COMPLETE packet.
pub const COMPLETE_TOKEN: u64 = u64::MAX;

/// One packet counted against its sender's budget of unread packets: the count goes up when
/// the charge is made and down when it is dropped (the packet was read, withdrawn, or its port
/// went away).
pub struct PacketCharge(Arc<AtomicUsize>);

impl PacketCharge {
    /// Counts one more packet in `queued`.
    pub fn new(queued: &Arc<AtomicUsize>) -> PacketCharge {
        queued.fetch_add(1, Ordering::AcqRel);
        PacketCharge(queued.clone())
    }
}

impl Drop for PacketCharge {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Queued {
    packet: PortPacket,
    source: Option<PacketSource>,
    _charge: Option<PacketCharge>,
}

/// A port object.
///
/// When its last handle is closed nobody can read it any more: its packets are dropped, and
/// the page requests outstanding at that moment on the pager VMOs bound to it fail with
/// `ZX_ERR_BAD_STATE`, so the threads blocked on them wake instead of waiting on a pager that
/// walked away (a vCPU blocked in a fault stops the VM, naming the page). The VMOs stay
/// attached: requests made later wait in the dead port until the pager supplies the pages
/// anyway or detaches the VMO, and supplies keep working.
///
/// This is a deliberate kvmpager rule, asked for by the project's failing-pager requirements:
/// Zircon (`ClosePortTest`, semantics notes §3.3) keeps even the threads blocked before the
/// close waiting for a supply. Only they differ; everything after the close is Zircon's.
pub struct Port {
    queue: Mutex<VecDeque<Queued>>,
    ready: Condvar,
    /// Waiters asleep on `ready` (changed only with `queue` locked): a queue with none skips
    /// the wake-up system call.
    sleepers: AtomicUsize,
    /// This port, for a wake-up deferred past the queuer's locks ([`with_deferred_wakeups`]).
    me: Weak<Port>,
    /// Serves this port's packets on the thread that queued them ([`Port::set_inline_server`]).
    inline: Mutex<Option<InlineServer>>,
    owners: WeakList<dyn PacketOwner>,
    handles: AtomicUsize,
    closed: AtomicBool,
}

impl Port {
    /// A new, empty port.
    pub fn new() -> Arc<Port> {
        Arc::new_cyclic(|me| Port {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            me: me.clone(),
            inline: Mutex::new(None),
            owners: WeakList::default(),
            handles: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Records a pager VMO that sends its packets here: it hears when the port closes.
    pub(crate) fn add_owner<T: PacketOwner + 'static>(&self, owner: &Arc<T>) {
        let weak: Weak<T> = Arc::downgrade(owner);
        self.owners.add(weak);
    }

    /// Whether the port's last handle has been closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn handle_added(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn handle_removed(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }

    /// The last handle is gone: drop the packets and fail the requests outstanding now (see
    /// [`Port`]).
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Dropped after the queue lock is released: a packet's charge and source go with it.
        let dropped = std::mem::take(&mut *self.lock());
        drop(dropped);
        for owner in self.owners.take() {
            owner.port_closed();
        }
    }

    /// Appends a packet and wakes one waiter.
    pub fn queue(&self, packet: PortPacket, source: Option<PacketSource>) {
        self.queue_charged(packet, source, None);
    }

    /// [`Port::queue`] with the packet counted by `charge` while it sits in the port.
    pub fn queue_charged(
        &self,
        packet: PortPacket,
        source: Option<PacketSource>,
        charge: Option<PacketCharge>,
    ) {
        let mut queue = self.lock();
        if self.is_closed() {
            return;
        }
        queue.push_back(Queued {
            packet,
            source,
            _charge: charge,
        });
        let asleep = self.sleepers.load(Ordering::Relaxed) > 0;
        drop(queue);
        if !defer_wakeup(&self.me) && asleep {
            self.ready.notify_one();
        }
    }

    /// Removes the packet `owner` queued under `token`; returns whether it was still queued.
    pub fn cancel(&self, owner: &dyn PacketOwner, token: u64) -> bool {
        let mut queue = self.lock();
        let found = queue.iter().position(|q| {
            q.source
                .as_ref()
                .is_some_and(|s| s.token == token && std::ptr::addr_eq(s.owner.as_ptr(), owner))
        });
        found.map(|i| queue.remove(i)).is_some()
    }

    /// Has `server` serve the packets queued inside [`with_deferred_wakeups`] (the fault
    /// service's dispatch) on the queuing thread, before any waiter is woken: a host pager
    /// whose source is quick serves a fault without a handoff to another thread. `None`
    /// removes it. The server must not hold the port (it would never be freed).
    pub fn set_inline_server(&self, server: Option<InlineServer>) {
        *self.inline.lock().unwrap_or_else(|e| e.into_inner()) = server;
    }

    /// After deferred queuing: the inline server, else a sleeping waiter, takes the packets.
    fn wake_after_queue(&self) {
        let server = self
            .inline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if server.is_some_and(|serve| serve()) {
            return;
        }
        // A waiter going to sleep counts itself with the queue locked, after looking at the
        // queue: one not counted yet will see the packets.
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            self.ready.notify_one();
        }
    }

    /// Wakes every waiter so it looks at its kill flag now.
    pub(crate) fn wake_all(&self) {
        let _queue = self.lock();
        self.ready.notify_all();
    }

    /// Number of queued packets.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no packet is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the first packet, waiting until `deadline` (`None`: forever) or until `killed`.
    pub fn wait(
        &self,
        deadline: Option<Instant>,
        killed: &AtomicBool,
    ) -> Result<PortPacket, Status> {
        let queued = self.dequeue(deadline, killed)?;
        if let Some(source) = queued.source
            && let Some(owner) = source.owner.upgrade()
        {
            owner.packet_dequeued(source.token);
        }
        Ok(queued.packet)
    }

    fn dequeue(&self, deadline: Option<Instant>, killed: &AtomicBool) -> Result<Queued, Status> {
        let poll = deadline.is_some_and(|d| d <= Instant::now());
        if !poll && let Some(q) = self.spin_for_packet() {
            return Ok(q);
        }
        let mut queue = self.lock();
        loop {
            if let Some(q) = queue.pop_front() {
                return Ok(q);
            }
            if killed.load(Ordering::Acquire) {
                return Err(ZX_ERR_CANCELED);
            }
            let mut slice = KILL_POLL;
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    return Err(ZX_ERR_TIMED_OUT);
                }
                slice = slice.min(deadline - now);
            }
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            queue = match self.ready.wait_timeout(queue, slice) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Polls the queue for a short while before the waiter sleeps: a pager usually gets its
    /// next packet within microseconds of the last supply, and waking a sleeping thread costs
    /// far more than that on virtualised hosts (an idle vCPU has to be woken by an IPI).
    fn spin_for_packet(&self) -> Option<Queued> {
        let spin = SPIN.with(|s| s.get());
        if spin.is_zero() {
            return None;
        }
        let start = Instant::now();
        while start.elapsed() < spin {
            if let Ok(mut queue) = self.queue.try_lock()
                && let Some(q) = queue.pop_front()
            {
                return Some(q);
            }
            std::hint::spin_loop();
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet owner that records what the port tells it.
    #[derive(Default)]
    struct FakeOwner {
        dequeued: Mutex<Vec<u64>>,
        closed: AtomicUsize,
    }

    impl PacketOwner for FakeOwner {
        fn packet_dequeued(&self, token: u64) {
            self.dequeued.lock().unwrap().push(token);
        }

        fn port_closed(&self) {
            self.closed.fetch_add(1, Ordering::AcqRel);
        }
    }

    impl FakeOwner {
        fn dequeued(&self) -> Vec<u64> {
            self.dequeued.lock().unwrap().clone()
        }
    }

    /// Queues a packet with key `key` from `owner` under `token`.
    fn queue_from(port: &Port, owner: &Arc<FakeOwner>, key: u64, token: u64) {
        let weak: Weak<FakeOwner> = Arc::downgrade(owner);
        let source = PacketSource { owner: weak, token };
        let packet = PortPacket {
            key,
            ..Default::default()
        };
        port.queue(packet, Some(source));
    }

    fn read_key(port: &Port) -> u64 {
        let killed = AtomicBool::new(false);
        port.wait(Some(Instant::now()), &killed).unwrap().key
    }

    #[test]
    fn reading_a_packet_tells_its_owner_the_token() {
        let port = Port::new();
        let owner = Arc::new(FakeOwner::default());
        queue_from(&port, &owner, 1, 10);
        port.queue(PortPacket::default(), None);
        queue_from(&port, &owner, 3, COMPLETE_TOKEN);
        assert_eq!(read_key(&port), 1);
        assert_eq!(owner.dequeued(), [10]);
        read_key(&port);
        assert_eq!(
            owner.dequeued(),
            [10],
            "a packet without a source tells nobody"
        );
        assert_eq!(read_key(&port), 3);
        assert_eq!(owner.dequeued(), [10, COMPLETE_TOKEN]);
    }

    #[test]
    fn cancel_withdraws_only_that_owners_packet_with_that_token() {
        let port = Port::new();
        let (a, b) = (
            Arc::new(FakeOwner::default()),
            Arc::new(FakeOwner::default()),
        );
        queue_from(&port, &a, 1, 7);
        queue_from(&port, &b, 2, 7);
        queue_from(&port, &a, 3, 8);
        assert!(port.cancel(&*a, 7));
        assert!(!port.cancel(&*a, 7), "already withdrawn");
        assert!(!port.cancel(&*b, 9), "no such token");
        assert_eq!(port.len(), 2);
        assert_eq!((read_key(&port), read_key(&port)), (2, 3));
        assert_eq!((a.dequeued(), b.dequeued()), (vec![8], vec![7]));
    }

    #[test]
    fn a_packet_outliving_its_owner_is_still_read() {
        let port = Port::new();
        let owner = Arc::new(FakeOwner::default());
        queue_from(&port, &owner, 5, 1);
        drop(owner);
        assert_eq!(read_key(&port), 5);
    }

    #[test]
    fn closing_the_last_handle_tells_the_live_owners_and_drops_the_packets() {
        let port = Port::new();
        let (a, b) = (
            Arc::new(FakeOwner::default()),
            Arc::new(FakeOwner::default()),
        );
        port.add_owner(&a);
        port.add_owner(&b);
        drop(b);
        let queued = Arc::new(AtomicUsize::new(0));
        let charge = Some(PacketCharge::new(&queued));
        port.queue_charged(PortPacket::default(), None, charge);
        port.handle_added();
        port.handle_added();
        port.handle_removed();
        assert!(!port.is_closed() && port.len() == 1);
        port.handle_removed();
        assert!(port.is_closed() && port.is_empty());
        assert_eq!(
            queued.load(Ordering::Acquire),
            0,
            "the charge went with the packet"
        );
        assert_eq!(a.closed.load(Ordering::Acquire), 1);
        port.queue(PortPacket::default(), None);
        assert!(port.is_empty(), "a closed port takes no packets");
    }

    #[test]
    fn wait_times_out_and_returns_packets_in_order() {
        let port = Port::new();
        let killed = AtomicBool::new(false);
        let soon = Some(Instant::now() + Duration::from_millis(30));
        assert_eq!(port.wait(soon, &killed).err(), Some(ZX_ERR_TIMED_OUT));
        for key in 1..=3 {
            port.queue(
                PortPacket {
                    key,
                    ..Default::default()
                },
                None,
            );
        }
        for key in 1..=3 {
            assert_eq!(port.wait(None, &killed).unwrap().key, key);
        }
    }

    #[test]
    fn killed_waiter_returns_canceled() {
        let port = Port::new();
        let killed = Arc::new(AtomicBool::new(false));
        let (p, k) = (port.clone(), killed.clone());
        let t = std::thread::spawn(move || p.wait(None, &k));
        std::thread::sleep(Duration::from_millis(50));
        killed.store(true, Ordering::Release);
        assert_eq!(t.join().unwrap().err(), Some(ZX_ERR_CANCELED));
    }
}
