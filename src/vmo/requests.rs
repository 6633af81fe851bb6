//! Page requests of a pager VMO: accessors that wait for pages (`ensure`), faults taken
//! through mappings (`on_fault`), posting one packet at a time to the port, and waking or
//! failing everything a finished request covered (`settle`).
//!
//! The VMO's side of the fault service and the port lives here too: it is their
//! [`FaultTarget`] (faults, the watchdog's oldest request) and [`PacketOwner`] (a packet was
//! read, the port closed).

use std::ops::Range;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{Vmo, VmoState};
use crate::abi::packet::{ZX_PAGER_VMO_DIRTY, ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use crate::abi::status::*;
use crate::abi::{PAGE_SIZE, PageRequest, PortPacket, Status};
use crate::account::FatalFault;
use crate::counters::Counters;
use crate::fault::FaultTarget;
use crate::port::PacketOwner;
use crate::port::{COMPLETE_TOKEN, KILL_POLL, PacketSource};
use crate::request::{Finished, OverdueRequest, PagerVmoRequests, Request, RequestId};

impl Vmo {
    /// Request `r` as the watchdog sees it: where a thread faulted inside it, the page that
    /// thread touched, else the request's range.
    fn describe(&self, r: &Request) -> OverdueRequest {
        let (start, end) = match r.fault_tids.first() {
            Some(&(_, page)) => (page, page + 1),
            None => (r.start, r.end),
        };
        OverdueRequest {
            vmo_koid: self.koid(),
            offset: start * PAGE_SIZE,
            len: (end - start) * PAGE_SIZE,
            command: r.command,
            waited: r.created.elapsed(),
            faulting: !r.fault_tids.is_empty(),
        }
    }

    /// Waits until every page of `pages` is present (READ) or dirty (DIRTY), raising requests
    /// one run at a time like Zircon. Anonymous VMOs return at once.
    pub(super) fn ensure<'a>(
        &'a self,
        mut st: MutexGuard<'a, VmoState>,
        command: u16,
        pages: Range<u64>,
        killed: &AtomicBool,
    ) -> Result<MutexGuard<'a, VmoState>, Status> {
        if self.is_clone() {
            return self.clone_ensure(st, pages, killed);
        }
        if !self.is_pager_backed() {
            return Ok(st);
        }
        let done = |st: &VmoState, p: u64| match command {
            ZX_PAGER_VMO_READ => st.committed.contains(p as usize),
            _ => st.dirty.contains(p as usize),
        };
        let mut page = pages.start;
        loop {
            // Present pages stay readable after the pager is gone (Zircon's ClosePagerTest);
            // only a missing one fails on a detached VMO.
            while page < pages.end && done(&st, page) {
                page += 1;
            }
            if page >= pages.end {
                return Ok(st);
            }
            if st.detached {
                return Err(ZX_ERR_BAD_STATE);
            }
            if command == ZX_PAGER_VMO_DIRTY && !st.committed.contains(page as usize) {
                return Err(ZX_ERR_BAD_STATE);
            }
            let id = match st.requests.covering(command, page) {
                Some(id) => id,
                None => {
                    let mut end = page + 1;
                    while end < pages.end && !done(&st, end) {
                        end += 1;
                    }
                    if let Some(next) = st.requests.next_start_after(command, page) {
                        end = end.min(next);
                    }
                    self.new_request(&mut st, command, page..end)
                }
            };
            st.requests.add_waiter(id);
            st = match self.wait_outcome(st, id, killed) {
                // The VMO shrank under the request: fail if this range is cut, else ask again.
                Err(ZX_ERR_SHOULD_WAIT) => {
                    let st = self.lock();
                    if pages.end > self.pages() {
                        return Err(ZX_ERR_OUT_OF_RANGE);
                    }
                    st
                }
                r => r?,
            };
        }
    }

    pub(super) fn new_request(
        &self,
        st: &mut VmoState,
        command: u16,
        pages: Range<u64>,
    ) -> RequestId {
        Counters::add(&self.counters().requests, 1);
        let id = st.requests.create(command, pages);
        self.post_next(st);
        id
    }

    /// Waits for request `id` to finish; gives up with `ZX_ERR_CANCELED` once `killed`, or
    /// `ZX_ERR_TIMED_OUT` past the owner's wait limit (the request stays outstanding).
    fn wait_outcome<'a>(
        &'a self,
        mut st: MutexGuard<'a, VmoState>,
        id: RequestId,
        killed: &AtomicBool,
    ) -> Result<MutexGuard<'a, VmoState>, Status> {
        let give_up = self.owner.wait_limit().map(|d| Instant::now() + d);
        loop {
            if let Some(status) = st.requests.take_outcome(id) {
                return if status == ZX_OK { Ok(st) } else { Err(status) };
            }
            if killed.load(Ordering::Acquire) {
                st.requests.drop_waiter(id);
                return Err(ZX_ERR_CANCELED);
            }
            let mut slice = KILL_POLL;
            if let Some(t) = give_up {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    st.requests.drop_waiter(id);
                    return Err(ZX_ERR_TIMED_OUT);
                }
                slice = slice.min(left);
            }
            st.sleepers += 1;
            st = match self.changed.wait_timeout(st, slice) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            st.sleepers -= 1;
        }
    }

    /// Wakes every thread waiting on this VMO's requests so it looks at its kill flag now.
    pub(crate) fn wake_waiters(&self) {
        let _st = self.lock();
        self.changed.notify_all();
    }

    /// Queues the next request's packet if the VMO's packet slot is free.
    pub(super) fn post_next(&self, st: &mut VmoState) {
        let Some(link) = self.link() else { return };
        while let Some(r) = st.requests.next_to_post() {
            let packet = request_packet(link.key, r.command, r.start, r.end);
            let source = PacketSource {
                owner: self.this.clone(),
                token: r.id,
            };
            let charge = Some(self.owner.packet_charge());
            link.port.queue_charged(packet, Some(source), charge);
        }
    }

    /// Wakes waiters of finished requests, withdraws their unread packets, reports failed
    /// faults, and posts the next request.
    pub(crate) fn settle(&self, st: &mut VmoState, finished: Vec<Finished>, status: Status) {
        if finished.is_empty() {
            return;
        }
        let Some(link) = self.link() else { return };
        for f in &finished {
            if f.was_in_port && link.port.cancel(self, f.request.id) {
                st.requests.withdrawn(f.request.id);
            }
            if f.request.fault_tids.is_empty() {
                continue;
            }
            if status == ZX_OK {
                let ns = f.request.created.elapsed().as_nanos() as u64;
                self.counters().record_latency(ns);
            } else {
                self.report_fatal(&f.request.fault_tids, status);
            }
        }
        self.post_next(st);
        self.notify_changed(st);
    }

    /// Wakes the threads waiting for a request's outcome, if any sleeps (`st` is locked).
    pub(crate) fn notify_changed(&self, st: &VmoState) {
        if st.sleepers > 0 {
            self.changed.notify_all();
        }
    }

    /// Reports each `(tid, page)` thread as faulting fatally on its page.
    pub(super) fn report_fatal(&self, faults: &[(u32, u64)], status: Status) {
        for &(tid, page) in faults {
            self.owner.report_fatal(FatalFault {
                vmo_koid: self.koid(),
                host_addr: self.host_addr() + page * PAGE_SIZE,
                vmo_offset: page * PAGE_SIZE,
                status,
                tid,
            });
        }
    }

    /// Counts a fault at `addr` and locks the VMO; a fault past the end or on a detached VMO
    /// is reported as fatal (`None`).
    fn begin_fault(&self, addr: u64, tid: u32) -> Option<(u64, MutexGuard<'_, VmoState>)> {
        let page = (addr - self.host_addr()) / PAGE_SIZE;
        Counters::add(&self.counters().faults, 1);
        let st = self.lock();
        let fatal = if page >= self.pages() {
            ZX_ERR_OUT_OF_RANGE
        } else if st.detached {
            ZX_ERR_BAD_STATE
        } else {
            return Some((page, st));
        };
        drop(st);
        self.report_fatal(&[(tid, page)], fatal);
        None
    }

    /// Thread `tid` waits for absent page `page`: it joins the READ request covering it or
    /// gets a one-page request (mapping faults ask for one page at a time, as in Zircon).
    fn missing_page_fault(&self, mut st: MutexGuard<'_, VmoState>, page: u64, tid: u32) {
        if st.committed.contains(page as usize) {
            // Supplied between the fault and now: the supply already woke it; make sure.
            if let Some(link) = self.link() {
                let _ = link
                    .faults
                    .uffd()
                    .wake(self.host_addr() + page * PAGE_SIZE, PAGE_SIZE);
            }
            return;
        }
        self.join_or_request(&mut st, ZX_PAGER_VMO_READ, page, tid);
    }

    /// Records `tid` on the outstanding `command` request covering `page`, making a
    /// one-page request if there is none.
    pub(super) fn join_or_request(&self, st: &mut VmoState, command: u16, page: u64, tid: u32) {
        let id = match st.requests.covering(command, page) {
            Some(id) => id,
            None => self.new_request(st, command, page..page + 1),
        };
        st.requests.add_fault_tid(id, tid, page);
    }
}

impl FaultTarget for Vmo {
    /// A thread `tid` touched a page of a shared-file VMO that the file holds: counted, then
    /// served like an absent page (the pager answers with a shared supply).
    /// A minor fault on a page already present (its mapping was lost, or the event is late)
    /// is mapped again on the spot: waking the thread alone would only fault again.
    fn on_minor_fault(&self, addr: u64, tid: u32) {
        Counters::add(&self.counters().minor_faults, 1);
        if self.remap_present_shared(addr) {
            return;
        }
        self.on_fault(addr, tid);
    }

    /// A thread `tid` wrote to the write-protected (present, clean) page at host address
    /// `addr` of a VMO that traps mapped writes: the write waits for a DIRTY request.
    fn on_write_fault(&self, addr: u64, tid: u32) {
        if self.is_clone() {
            return self.clone_fault(addr, tid, true);
        }
        let Some((page, mut st)) = self.begin_fault(addr, tid) else {
            return;
        };
        st.modified = true;
        if !st.committed.contains(page as usize) {
            // Not present after all (evicted meanwhile): an ordinary missing-page fault.
            return self.missing_page_fault(st, page, tid);
        }
        if st.dirty.contains(page as usize) {
            // Already dirty (protected for writeback, or marked dirty since the fault): the
            // write goes through, and a writeback in progress no longer cleans the page.
            st.awaiting_clean.set(page as usize, false);
            drop(st);
            self.protect(page..page + 1, false);
            return;
        }
        self.join_or_request(&mut st, ZX_PAGER_VMO_DIRTY, page, tid);
    }

    /// A thread `tid` faulted on host address `addr` of this (pager) VMO.
    fn on_fault(&self, addr: u64, tid: u32) {
        if self.is_clone() {
            return self.clone_fault(addr, tid, false);
        }
        if let Some((page, st)) = self.begin_fault(addr, tid) {
            self.missing_page_fault(st, page, tid);
        }
    }

    /// The oldest outstanding page request, as the fault-timeout watchdog sees it.
    fn oldest_request(&self) -> Option<OverdueRequest> {
        let st = self.lock();
        st.requests.oldest().map(|r| self.describe(r))
    }

    /// This pager VMO and all its outstanding requests, oldest first.
    fn pending_requests(&self) -> Option<PagerVmoRequests> {
        let st = self.lock();
        Some(PagerVmoRequests {
            vmo_koid: self.koid(),
            size: self.size(),
            requests: st
                .requests
                .by_age()
                .into_iter()
                .map(|r| self.describe(r))
                .collect(),
        })
    }
}

impl PacketOwner for Vmo {
    /// The pager read the packet queued under `token`.
    fn packet_dequeued(&self, token: u64) {
        if token == COMPLETE_TOKEN {
            return;
        }
        let mut st = self.lock();
        st.requests.dequeued(token);
        self.post_next(&mut st);
    }

    /// The port's last handle closed: the requests outstanding now fail with
    /// `ZX_ERR_BAD_STATE` (waiters wake, blocked faults are reported as fatal). The VMO stays
    /// attached; later requests wait for a supply or a detach (see [`Port`]).
    ///
    /// [`Port`]: crate::port::Port
    fn port_closed(&self) {
        let mut st = self.lock();
        let finished = st.requests.finish_all(ZX_ERR_BAD_STATE);
        self.settle(&mut st, finished, ZX_ERR_BAD_STATE);
    }
}

/// A page-request packet for `[start, end)` pages (or COMPLETE with 0, 0).
pub(super) fn request_packet(key: u64, command: u16, start: u64, end: u64) -> PortPacket {
    PortPacket {
        key,
        packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
        status: ZX_OK,
        page_request: PageRequest {
            command,
            offset: start * PAGE_SIZE,
            length: (end - start) * PAGE_SIZE,
            ..Default::default()
        },
    }
}
