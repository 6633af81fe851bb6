//! Page-request bookkeeping for one pager VMO (pure logic, no I/O).
//!
//! Mirrors Zircon's page source: outstanding requests cover page ranges; a new request never
//! overlaps an outstanding one of the same command (accessors join the covering request
//! instead, so 32 threads on one page give one packet); requests wait in a FIFO until the VMO's
//! single port packet is free; a request finishes when all its pages are present (supply), or
//! with an error (FAIL, detach). Waiters blocked in kernel calls collect the outcome; threads
//! blocked in userfaultfd faults are listed by thread id.
//!
//! [`OverdueRequest`] is how one request looks to the fault-timeout watchdog.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::abi::Status;

/// Identifies a request within its VMO.
pub type RequestId = u64;

/// An outstanding request over pages `[start, end)`.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its id.
    pub id: RequestId,
    /// `ZX_PAGER_VMO_READ` or `ZX_PAGER_VMO_DIRTY`.
    pub command: u16,
    /// First page.
    pub start: u64,
    /// One past the last page.
    pub end: u64,
    /// Threads blocked in a userfaultfd fault on these pages: (thread id, page it faulted on).
    pub fault_tids: Vec<(u32, u64)>,
    /// When the request was made.
    pub created: Instant,
    waiters: usize,
}

/// A page request of a pager VMO that has waited for its pager too long: what the VMM's
/// fault-timeout watchdog stops a VM over (`Process::overdue_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverdueRequest {
    /// Koid of the pager VMO.
    pub vmo_koid: u64,
    /// Offset of the page a thread faulted on inside the request, or else of the request's
    /// first page.
    pub offset: u64,
    /// Bytes from `offset`: the faulting page, or else the whole request.
    pub len: u64,
    /// `ZX_PAGER_VMO_READ` or `ZX_PAGER_VMO_DIRTY`.
    pub command: u16,
    /// How long it has waited since it was made.
    pub waited: Duration,
    /// Whether a thread (a vCPU) is blocked in a fault on it, not only in a kernel call.
    pub faulting: bool,
}

/// One pager VMO and every page request it has outstanding (oldest first): what
/// `Process::pager_vmos` reports, the watchdog's view of the whole VMO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagerVmoRequests {
    /// Koid of the pager VMO.
    pub vmo_koid: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its outstanding requests, oldest first, each as [`OverdueRequest`] describes it.
    pub requests: Vec<OverdueRequest>,
}

/// What finishing a request leaves for the caller to do.
#[derive(Debug)]
pub struct Finished {
    /// The request as it was.
    pub request: Request,
    /// Its packet sat in the port unread and must be withdrawn.
    pub was_in_port: bool,
}

/// The request state of one pager VMO.
#[derive(Debug, Default)]
pub struct RequestTracker {
    next_id: RequestId,
    outstanding: Vec<Request>,
    unposted: VecDeque<RequestId>,
    in_port: Option<RequestId>,
    finished: HashMap<RequestId, (Status, usize)>,
}

impl RequestTracker {
    /// The outstanding `command` request covering `page`, if any.
    pub fn covering(&self, command: u16, page: u64) -> Option<RequestId> {
        self.outstanding
            .iter()
            .find(|r| r.command == command && r.start <= page && page < r.end)
            .map(|r| r.id)
    }

    /// Where the first outstanding `command` request after `page` starts, if any.
    pub fn next_start_after(&self, command: u16, page: u64) -> Option<u64> {
        self.outstanding
            .iter()
            .filter(|r| r.command == command && r.start > page)
            .map(|r| r.start)
            .min()
    }

    /// Makes a new request over `pages`; it waits for the port packet to be free.
    pub fn create(&mut self, command: u16, pages: Range<u64>) -> RequestId {
        self.next_id += 1;
        let id = self.next_id;
        self.outstanding.push(Request {
            id,
            command,
            start: pages.start,
            end: pages.end,
            fault_tids: Vec::new(),
            created: Instant::now(),
            waiters: 0,
        });
        self.unposted.push_back(id);
        id
    }

    /// Records thread `tid`, blocked in a fault on page `page`, on request `id`.
    pub fn add_fault_tid(&mut self, id: RequestId, tid: u32, page: u64) {
        if let Some(r) = self.get_mut(id) {
            r.fault_tids.push((tid, page));
        }
    }

    /// Registers a kernel-call waiter on `id`; it must later call [`Self::take_outcome`].
    pub fn add_waiter(&mut self, id: RequestId) {
        if let Some(r) = self.get_mut(id) {
            r.waiters += 1;
        }
    }

    /// The outcome of a finished request for one of its waiters (`None`: still outstanding).
    pub fn take_outcome(&mut self, id: RequestId) -> Option<Status> {
        let (status, left) = self.finished.get_mut(&id)?;
        let status = *status;
        *left -= 1;
        if *left == 0 {
            self.finished.remove(&id);
        }
        Some(status)
    }

    /// A waiter on `id` gives up (its process was killed).
    pub fn drop_waiter(&mut self, id: RequestId) {
        if let Some(r) = self.get_mut(id) {
            r.waiters = r.waiters.saturating_sub(1);
        } else {
            self.take_outcome(id);
        }
    }

    /// If the port packet is free and a request waits, marks it posted and returns it.
    pub fn next_to_post(&mut self) -> Option<Request> {
        if self.in_port.is_some() {
            return None;
        }
        let id = self.unposted.pop_front()?;
        self.in_port = Some(id);
        self.outstanding.iter().find(|r| r.id == id).cloned()
    }

    /// The pager read the packet of request `id`.
    pub fn dequeued(&mut self, id: RequestId) {
        if self.in_port == Some(id) {
            self.in_port = None;
        }
    }

    /// The packet of request `id` was withdrawn from the port.
    pub fn withdrawn(&mut self, id: RequestId) {
        self.dequeued(id);
    }

    /// Finishes every `command` request overlapping `pages` for which `satisfied` holds.
    pub fn resolve(
        &mut self,
        command: u16,
        pages: Range<u64>,
        satisfied: impl Fn(&Request) -> bool,
    ) -> Vec<Finished> {
        let done: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|r| r.command == command)
            .filter(|r| r.start < pages.end && pages.start < r.end && satisfied(r))
            .map(|r| r.id)
            .collect();
        done.into_iter()
            .filter_map(|id| self.finish(id, crate::abi::status::ZX_OK))
            .collect()
    }

    /// Finishes every `command` request overlapping `pages` (all commands when `None`).
    pub fn finish_overlapping(
        &mut self,
        pages: Range<u64>,
        command: Option<u16>,
        status: Status,
    ) -> Vec<Finished> {
        let hit: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|r| command.is_none_or(|c| c == r.command))
            .filter(|r| r.start < pages.end && pages.start < r.end)
            .map(|r| r.id)
            .collect();
        hit.into_iter()
            .filter_map(|id| self.finish(id, status))
            .collect()
    }

    /// Finishes every outstanding request with `status`.
    pub fn finish_all(&mut self, status: Status) -> Vec<Finished> {
        self.finish_overlapping(0..u64::MAX, None, status)
    }

    /// The outstanding request made first, if any.
    pub fn oldest(&self) -> Option<&Request> {
        self.outstanding.iter().min_by_key(|r| r.created)
    }

    /// The outstanding requests, oldest first.
    pub fn by_age(&self) -> Vec<&Request> {
        let mut all: Vec<&Request> = self.outstanding.iter().collect();
        all.sort_by_key(|r| r.created);
        all
    }

    /// Number of outstanding requests.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn finish(&mut self, id: RequestId, status: Status) -> Option<Finished> {
        let i = self.outstanding.iter().position(|r| r.id == id)?;
        let request = self.outstanding.swap_remove(i);
        self.unposted.retain(|&u| u != id);
        let was_in_port = self.in_port == Some(id);
        if request.waiters > 0 {
            self.finished.insert(id, (status, request.waiters));
        }
        Some(Finished {
            request,
            was_in_port,
        })
    }

    fn get_mut(&mut self, id: RequestId) -> Option<&mut Request> {
        self.outstanding.iter_mut().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::packet::{ZX_PAGER_VMO_DIRTY, ZX_PAGER_VMO_READ};
    use crate::abi::status::{ZX_ERR_IO, ZX_OK};

    #[test]
    fn one_packet_at_a_time_in_fifo_order() {
        let mut t = RequestTracker::default();
        let a = t.create(ZX_PAGER_VMO_READ, 0..2);
        let b = t.create(ZX_PAGER_VMO_READ, 3..5);
        assert_eq!(t.next_to_post().map(|r| r.id), Some(a));
        assert!(
            t.next_to_post().is_none(),
            "second packet while first unread"
        );
        t.dequeued(a);
        assert_eq!(t.next_to_post().map(|r| (r.start, r.end)), Some((3, 5)));
        t.dequeued(b);
        assert!(t.next_to_post().is_none());
    }

    #[test]
    fn covering_and_next_start() {
        let mut t = RequestTracker::default();
        let a = t.create(ZX_PAGER_VMO_READ, 4..8);
        assert_eq!(t.covering(ZX_PAGER_VMO_READ, 4), Some(a));
        assert_eq!(t.covering(ZX_PAGER_VMO_READ, 7), Some(a));
        assert_eq!(t.covering(ZX_PAGER_VMO_READ, 8), None);
        assert_eq!(t.covering(ZX_PAGER_VMO_DIRTY, 5), None);
        assert_eq!(t.next_start_after(ZX_PAGER_VMO_READ, 0), Some(4));
        assert_eq!(t.next_start_after(ZX_PAGER_VMO_READ, 4), None);
    }

    #[test]
    fn resolve_needs_every_page_present() {
        let mut t = RequestTracker::default();
        let a = t.create(ZX_PAGER_VMO_READ, 0..4);
        t.add_waiter(a);
        assert!(t.resolve(ZX_PAGER_VMO_READ, 0..2, |_| false).is_empty());
        assert!(t.resolve(ZX_PAGER_VMO_DIRTY, 2..4, |_| true).is_empty());
        let done = t.resolve(ZX_PAGER_VMO_READ, 2..4, |_| true);
        assert_eq!(done.len(), 1);
        assert!(!done[0].was_in_port);
        assert_eq!(t.take_outcome(a), Some(ZX_OK));
        assert_eq!(
            t.take_outcome(a),
            None,
            "outcome consumed by its only waiter"
        );
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn fail_reaches_every_waiter_and_withdraws_the_packet() {
        let mut t = RequestTracker::default();
        let a = t.create(ZX_PAGER_VMO_READ, 0..1);
        t.add_waiter(a);
        t.add_waiter(a);
        t.add_fault_tid(a, 77, 0);
        assert!(t.next_to_post().is_some());
        let done = t.finish_overlapping(0..1, None, ZX_ERR_IO);
        assert!(done[0].was_in_port);
        assert_eq!(done[0].request.fault_tids, vec![(77, 0)]);
        assert_eq!(t.take_outcome(a), Some(ZX_ERR_IO));
        assert_eq!(t.take_outcome(a), Some(ZX_ERR_IO));
        assert_eq!(t.take_outcome(a), None);
    }
}
