//! Concurrency tests of the pager kernel with real threads: threads really block on absent
//! pager-VMO pages (in `zx_vmo_read` or in a userfaultfd fault through a mapping), packets
//! really arrive with exact contents, and supplies / FAILs / detaches really release them.
//!
//! Every wait is bounded: port waits have deadlines, thread results come back over channels
//! with `recv_timeout`, and "the thread is blocked" is observed through `Process::stats()`
//! or the READ packet, never through sleeps. A thread blocked in a userfaultfd fault can only
//! be released by supplying its page, so every test that blocks one supplies it in the end.
//! Reader threads blocked on a mapping hold an `Arc<Vmo>`, so if a test fails the memory stays
//! mapped under them (they stay blocked until the test binary exits instead of crashing it).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kvmpager::Process;
use kvmpager::abi::packet::*;
use kvmpager::abi::pager_op::*;
use kvmpager::abi::status::*;
use kvmpager::abi::{Handle, PAGE_SIZE, PortPacket, Status};
use kvmpager::account::FatalFault;
use kvmpager::vmo::Vmo;

const PS: usize = PAGE_SIZE as usize;
/// Bound for anything that must happen (generous: 2 shared cores).
const LONG: Duration = Duration::from_secs(10);
/// How long we watch for something that must not happen.
const SHORT: Duration = Duration::from_millis(200);

/// The bytes of page `page` as supplied under `tag`: every u64 names tag, page and index.
fn pattern(tag: u64, page: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(PS);
    for i in 0..(PS / 8) as u64 {
        let word = (tag << 40) ^ (page << 20) ^ i ^ 0x5a5a_0000_0000_0000;
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

/// The expected bytes of `[offset, offset + len)` when every page was supplied under `tag`.
fn expected(tag: u64, offset: u64, len: usize) -> Vec<u8> {
    let first = offset / PAGE_SIZE;
    let last = (offset + len as u64).div_ceil(PAGE_SIZE);
    let all: Vec<u8> = (first..last).flat_map(|p| pattern(tag, p)).collect();
    let skip = (offset % PAGE_SIZE) as usize;
    all[skip..skip + len].to_vec()
}

struct Env {
    p: Arc<Process>,
    pager: Handle,
    port: Handle,
}

impl Env {
    fn new() -> Env {
        let p = Process::new();
        let pager = p.pager_create(0).expect("pager_create");
        let port = p.port_create(0).expect("port_create");
        Env { p, pager, port }
    }

    fn vmo(&self, key: u64, pages: u64) -> Handle {
        self.p
            .pager_create_vmo(self.pager, 0, self.port, key, pages * PAGE_SIZE)
            .expect("pager_create_vmo")
    }

    /// Supplies pages `[page, page + n)` of `vmo` with `pattern(tag, ·)` through a fresh aux VMO.
    fn supply(&self, vmo: Handle, page: u64, n: u64, tag: u64) -> Result<(), Status> {
        let aux = self.p.vmo_create(n * PAGE_SIZE, 0).expect("vmo_create aux");
        let bytes: Vec<u8> = (page..page + n).flat_map(|p| pattern(tag, p)).collect();
        self.p.vmo_write(aux, &bytes, 0).expect("vmo_write aux");
        let r = self
            .p
            .pager_supply_pages(self.pager, vmo, page * PAGE_SIZE, n * PAGE_SIZE, aux, 0);
        self.p.handle_close(aux).expect("close aux");
        r
    }

    fn fail(&self, vmo: Handle, page: u64, n: u64, status: Status) -> Result<(), Status> {
        self.p.pager_op_range(
            self.pager,
            ZX_PAGER_OP_FAIL,
            vmo,
            page * PAGE_SIZE,
            n * PAGE_SIZE,
            status as i64 as u64,
        )
    }

    fn packet(&self) -> PortPacket {
        match self.p.port_wait(self.port, Some(Instant::now() + LONG)) {
            Ok(p) => p,
            Err(s) => panic!("expected a packet, port_wait gave {}", name(s)),
        }
    }

    fn expect_read(&self, key: u64, page: u64, n: u64) {
        let got = self.packet();
        assert_eq!(got, read_packet(key, page, n), "packet {got:?}");
    }

    fn expect_no_packet(&self) {
        match self.p.port_wait(self.port, Some(Instant::now() + SHORT)) {
            Err(ZX_ERR_TIMED_OUT) => {}
            other => panic!("expected no packet, port_wait gave {other:?}"),
        }
    }

    fn wait_requests(&self, n: u64) {
        wait_until(&format!("{n} requests"), || self.p.counters().requests >= n);
        assert_eq!(self.p.counters().requests, n, "more requests than expected");
    }

    fn wait_faults(&self, n: u64) {
        wait_until(&format!("{n} faults"), || self.p.counters().faults >= n);
    }
}

fn read_packet(key: u64, page: u64, n: u64) -> PortPacket {
    PortPacket {
        key,
        packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
        status: ZX_OK,
        page_request: kvmpager::abi::PageRequest {
            command: ZX_PAGER_VMO_READ,
            flags: 0,
            reserved0: 0,
            offset: page * PAGE_SIZE,
            length: n * PAGE_SIZE,
            reserved1: 0,
        },
    }
}

fn complete_packet(key: u64) -> PortPacket {
    PortPacket {
        key,
        packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
        status: ZX_OK,
        page_request: kvmpager::abi::PageRequest {
            command: ZX_PAGER_VMO_COMPLETE,
            ..Default::default()
        },
    }
}

/// Polls `cond` until it holds; fails the test after [`LONG`].
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Receives one result or fails the test after [`LONG`].
fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(LONG) {
        Ok(v) => v,
        Err(e) => panic!("timed out waiting for {what}: {e:?}"),
    }
}

/// Asserts nothing arrives for [`SHORT`] (the senders are still blocked).
fn assert_still_blocked<T>(rx: &Receiver<T>, what: &str) {
    match rx.recv_timeout(SHORT) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(_) => panic!("{what} should still be blocked, but one finished"),
        Err(e) => panic!("{what}: {e:?}"),
    }
}

/// Spawns a thread running `vmo_read(vmo, len bytes at offset)`; its result arrives on `tx`.
fn spawn_vmo_read(
    p: &Arc<Process>,
    vmo: Handle,
    offset: u64,
    len: usize,
    tx: &mpsc::Sender<(u64, Result<Vec<u8>, Status>)>,
) {
    let (p, tx) = (p.clone(), tx.clone());
    thread::spawn(move || {
        let mut buf = vec![0u8; len];
        let r = p.vmo_read(vmo, &mut buf, offset).map(|()| buf);
        let _ = tx.send((offset, r));
    });
}

/// What a mapped reader reports: its thread id first, then the page it read.
enum Mapped {
    Tid(u32),
    Done(u32, Vec<u8>),
}

/// Spawns a thread that reads page `page` of `vmo` through its host mapping (`base`): it
/// sends its tid, then touches the page (blocking in a userfaultfd fault while the page is
/// absent), then copies the page out and sends it.
fn spawn_mapped_reader(vmo: &Arc<Vmo>, base: u64, page: u64, tx: &mpsc::Sender<Mapped>) {
    let (vmo, tx) = (vmo.clone(), tx.clone());
    thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let _ = tx.send(Mapped::Tid(tid));
        let addr = (base + page * PAGE_SIZE) as *const u64;
        let mut out = Vec::with_capacity(PS);
        for i in 0..PS / 8 {
            // SAFETY: `addr` points into the pager VMO's host memory, which stays mapped while
            // this thread holds `vmo`; the first read faults until the page is supplied.
            let w = unsafe { std::ptr::read_volatile(addr.add(i)) };
            out.extend_from_slice(&w.to_le_bytes());
        }
        drop(vmo);
        let _ = tx.send(Mapped::Done(tid, out));
    });
}

fn recv_tid(rx: &Receiver<Mapped>) -> u32 {
    match recv(rx, "a reader's tid") {
        Mapped::Tid(t) => t,
        Mapped::Done(..) => panic!("reader finished before the page was supplied"),
    }
}

fn recv_done(rx: &Receiver<Mapped>) -> (u32, Vec<u8>) {
    match recv(rx, "a mapped reader to finish") {
        Mapped::Done(t, v) => (t, v),
        Mapped::Tid(_) => panic!("unexpected tid message"),
    }
}

// ---- 1. many mapped readers of one page ---------------------------------------------------

#[test]
fn eight_mapped_readers_of_one_page_share_one_request() {
    const N: usize = 8;
    let e = Env::new();
    let key = 0x1111;
    let vmo = e.vmo(key, 4);
    let mapping =
        e.p.vmar_map(vmo, 0, 4 * PAGE_SIZE, false)
            .expect("vmar_map");
    let (tx, rx) = mpsc::channel();
    let mut tids = Vec::new();
    for _ in 0..N {
        spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 2, &tx);
        tids.push(recv_tid(&rx));
    }
    // Every reader really faulted (one userfaultfd event each) ...
    e.wait_faults(N as u64);
    // ... and together they made exactly one request and one packet.
    e.expect_read(key, 2, 1);
    e.expect_no_packet();
    assert_eq!(e.p.counters().requests, 1);
    assert_still_blocked(&rx, "the mapped readers");
    assert!(!e.p.vmo_object(vmo).unwrap().is_present(2));

    e.supply(vmo, 2, 1, 7).expect("supply");
    let mut done = Vec::new();
    for _ in 0..N {
        let (tid, bytes) = recv_done(&rx);
        assert!(bytes == pattern(7, 2), "reader {tid} saw the wrong bytes");
        done.push(tid);
    }
    done.sort();
    tids.sort();
    assert_eq!(done, tids);
    let s = e.p.counters();
    assert!(s.faults >= N as u64, "faults {}", s.faults);
    assert_eq!(s.requests, 1);
    assert_eq!(s.pages_supplied, 1);
    assert_eq!(s.bytes_moved, PAGE_SIZE);
    assert_eq!(s.bytes_copied, 0);
    e.expect_no_packet();
}

// ---- 2. vmo_read waiters and coalescing ------------------------------------------------------

#[test]
fn vmo_readers_of_one_page_share_one_request() {
    const N: usize = 8;
    let e = Env::new();
    let key = 0x2222;
    let vmo = e.vmo(key, 3);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, PS, &tx);
    e.wait_requests(1);
    for i in 1..N {
        // Sub-ranges of the same page, some unaligned.
        let off = PAGE_SIZE + (i as u64 * 100);
        spawn_vmo_read(&e.p, vmo, off, 200, &tx);
    }
    e.expect_read(key, 1, 1);
    e.expect_no_packet();
    assert_still_blocked(&rx, "the readers");
    e.supply(vmo, 1, 1, 3).expect("supply");
    for _ in 0..N {
        let (off, r) = recv(&rx, "a reader");
        let got = r.expect("vmo_read");
        assert_eq!(got, expected(3, off, got.len()), "reader at {off:#x}");
    }
    assert_eq!(e.p.counters().requests, 1);
    e.expect_no_packet();
}

#[test]
fn read_starting_inside_an_outstanding_request_joins_it() {
    // A reads [0, 2); B reads [1, 3): B's first page is covered by A's request, so B joins it
    // (no packet); once [0, 2) arrives A returns and B asks for the rest, [2, 3).
    let e = Env::new();
    let key = 0x2223;
    let vmo = e.vmo(key, 4);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(1);
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, 2 * PS, &tx);
    e.expect_read(key, 0, 2);
    e.expect_no_packet();
    assert_eq!(e.p.counters().requests, 1);
    assert_still_blocked(&rx, "both readers");

    e.supply(vmo, 0, 2, 9).expect("supply [0,2)");
    let (off, r) = recv(&rx, "reader A");
    assert_eq!(off, 0, "only A can finish with page 2 absent");
    assert_eq!(r.expect("A"), expected(9, 0, 2 * PS));
    e.expect_read(key, 2, 1);
    assert_still_blocked(&rx, "reader B");
    e.supply(vmo, 2, 1, 9).expect("supply [2,3)");
    let (off, r) = recv(&rx, "reader B");
    assert_eq!(off, PAGE_SIZE);
    assert_eq!(r.expect("B"), expected(9, PAGE_SIZE, 2 * PS));
    assert_eq!(e.p.counters().requests, 2);
    e.expect_no_packet();
}

#[test]
fn read_starting_before_an_outstanding_request_is_trimmed_to_it() {
    // B reads [1, 3) first; A reads [0, 2): A's request is trimmed to end where B's begins,
    // giving [0, 1), posted only after the pager dequeues B's packet. One supply of [0, 3)
    // releases both.
    let e = Env::new();
    let key = 0x2224;
    let vmo = e.vmo(key, 4);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, 2 * PS, &tx);
    e.wait_requests(1);
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(2);
    e.expect_read(key, 1, 2);
    e.expect_read(key, 0, 1);
    e.expect_no_packet();
    e.supply(vmo, 0, 3, 4).expect("supply [0,3)");
    let mut got = [recv(&rx, "a reader"), recv(&rx, "a reader")];
    got.sort_by_key(|(off, _)| *off);
    assert_eq!(got[0].1.as_deref().expect("A"), &expected(4, 0, 2 * PS)[..]);
    assert_eq!(
        got[1].1.as_deref().expect("B"),
        &expected(4, PAGE_SIZE, 2 * PS)[..]
    );
    assert_eq!(e.p.counters().requests, 2);
    assert_eq!(e.p.counters().supplies, 1);
    e.expect_no_packet();
}

#[test]
fn sub_range_readers_join_one_multi_page_request() {
    let e = Env::new();
    let key = 0x2225;
    let vmo = e.vmo(key, 5);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, 3 * PS, &tx); // [1, 4)
    e.wait_requests(1);
    for (off, len) in [
        (PAGE_SIZE, PS),
        (2 * PAGE_SIZE + 17, PS),
        (3 * PAGE_SIZE, 64),
    ] {
        spawn_vmo_read(&e.p, vmo, off, len, &tx);
    }
    e.expect_read(key, 1, 3);
    e.expect_no_packet();
    // Two supplies: the first (page 1 and 2) is not enough for the request.
    e.supply(vmo, 1, 2, 6).expect("supply [1,3)");
    assert_still_blocked(&rx, "readers of an unfinished request");
    e.supply(vmo, 3, 1, 6).expect("supply [3,4)");
    for _ in 0..4 {
        let (off, r) = recv(&rx, "a reader");
        let got = r.expect("vmo_read");
        assert_eq!(got, expected(6, off, got.len()), "reader at {off:#x}");
    }
    assert_eq!(e.p.counters().requests, 1);
    e.expect_no_packet();
}

// ---- 3. FAIL ---------------------------------------------------------------------------------

#[test]
fn fail_wakes_vmo_readers_with_each_allowed_status_and_is_not_sticky() {
    let e = Env::new();
    let key = 0x3333;
    let vmo = e.vmo(key, 4);
    let codes = [
        ZX_ERR_IO,
        ZX_ERR_IO_DATA_INTEGRITY,
        ZX_ERR_BAD_STATE,
        ZX_ERR_NO_SPACE,
        ZX_ERR_BUFFER_TOO_SMALL,
    ];
    let mut requests = 0;
    for code in codes {
        let (tx, rx) = mpsc::channel();
        spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
        requests += 1;
        e.wait_requests(requests);
        for off in [0, PAGE_SIZE, 100] {
            spawn_vmo_read(&e.p, vmo, off, 64, &tx);
        }
        e.expect_read(key, 0, 2);
        assert_still_blocked(&rx, "readers before FAIL");
        e.fail(vmo, 0, 1, code).expect("FAIL");
        for _ in 0..4 {
            let (off, r) = recv(&rx, "a failed reader");
            assert_eq!(r.err(), Some(code), "reader at {off:#x} for {}", name(code));
        }
        assert!(!e.p.vmo_object(vmo).unwrap().is_present(0));
        e.expect_no_packet();
    }
    // A FAIL with nothing outstanding is an OK no-op.
    e.fail(vmo, 0, 4, ZX_ERR_IO).expect("redundant FAIL");
    // SupplyAfterFail: a new read raises a new request, and a supply satisfies it.
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(requests + 1);
    e.expect_read(key, 0, 2);
    e.supply(vmo, 0, 2, 11).expect("supply after FAIL");
    let (_, r) = recv(&rx, "the reader after FAIL");
    assert_eq!(r.expect("read after FAIL"), expected(11, 0, 2 * PS));
    e.expect_no_packet();
}

#[test]
fn fail_of_part_of_a_request_fails_all_its_waiters_and_spares_others() {
    // Two outstanding requests, [0, 2) and [3, 4): FAIL of page 1 fails the first only.
    let e = Env::new();
    let key = 0x3334;
    let vmo = e.vmo(key, 4);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(1);
    spawn_vmo_read(&e.p, vmo, 3 * PAGE_SIZE, PS, &tx);
    e.wait_requests(2);
    e.expect_read(key, 0, 2);
    e.expect_read(key, 3, 1);
    e.fail(vmo, 1, 1, ZX_ERR_IO_DATA_INTEGRITY).expect("FAIL");
    let (off, r) = recv(&rx, "the failed reader");
    assert_eq!((off, r.err()), (0, Some(ZX_ERR_IO_DATA_INTEGRITY)));
    assert_still_blocked(&rx, "the reader of page 3");
    e.supply(vmo, 3, 1, 2).expect("supply");
    let (off, r) = recv(&rx, "the reader of page 3");
    assert_eq!(off, 3 * PAGE_SIZE);
    assert_eq!(r.expect("read"), pattern(2, 3));
    e.expect_no_packet();
}

// ---- 4. FAIL of a mapped access -------------------------------------------------------------

type Sink = Receiver<FatalFault>;

fn fault_sink(p: &Process) -> Sink {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    p.set_fatal_fault_sink(Arc::new(move |f| {
        let _ = tx.lock().unwrap().send(f);
    }));
    rx
}

#[test]
fn fail_of_a_mapped_fault_reports_a_fatal_fault_and_supply_still_releases_it() {
    let e = Env::new();
    let sink = fault_sink(&e.p);
    let key = 0x4444;
    let vmo = e.vmo(key, 8);
    let mapping =
        e.p.vmar_map(vmo, 0, 8 * PAGE_SIZE, false)
            .expect("vmar_map");
    let (tx, rx) = mpsc::channel();
    spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 3, &tx);
    let tid = recv_tid(&rx);
    e.expect_read(key, 3, 1);
    e.fail(vmo, 3, 1, ZX_ERR_IO).expect("FAIL");
    let f = recv(&sink, "the fatal fault");
    assert_eq!(
        f,
        FatalFault {
            vmo_koid: mapping.vmo().koid(),
            host_addr: mapping.host_addr() + 3 * PAGE_SIZE,
            vmo_offset: 3 * PAGE_SIZE,
            status: ZX_ERR_IO,
            tid,
        }
    );
    assert_still_blocked(&rx, "the faulting thread (only a supply can release it)");
    assert!(sink.try_recv().is_err(), "one fatal fault per thread");
    e.expect_no_packet();
    // Releasing it: UFFDIO_MOVE wakes the thread, which sees the page.
    e.supply(vmo, 3, 1, 5).expect("supply");
    let (t, bytes) = recv_done(&rx);
    assert_eq!(t, tid);
    assert!(bytes == pattern(5, 3), "wrong bytes after supply");
    assert!(sink.try_recv().is_err());
}

#[test]
fn fail_reports_the_page_a_mapped_thread_faulted_on_inside_a_larger_request() {
    // A vmo_read of [0, 4) is outstanding; a mapped thread faults on page 2 and joins it (no
    // new packet). FAIL of the range fails the reader with the status and reports the mapped
    // thread's fault at the page it touched, page 2.
    let e = Env::new();
    let sink = fault_sink(&e.p);
    let key = 0x4445;
    let vmo = e.vmo(key, 4);
    let mapping =
        e.p.vmar_map(vmo, 0, 4 * PAGE_SIZE, false)
            .expect("vmar_map");
    let (rtx, rrx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 4 * PS, &rtx);
    e.wait_requests(1);
    e.expect_read(key, 0, 4);
    let (tx, rx) = mpsc::channel();
    spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 2, &tx);
    let tid = recv_tid(&rx);
    e.wait_faults(1);
    // No second request: the fault joined [0, 4). (This wait also gives the fault service
    // time to record the thread on the request; there is no other signal for a join.)
    e.expect_no_packet();
    assert_eq!(e.p.counters().requests, 1);
    e.fail(vmo, 0, 4, ZX_ERR_NO_SPACE).expect("FAIL");
    let (_, r) = recv(&rrx, "the vmo_read");
    assert_eq!(r.err(), Some(ZX_ERR_NO_SPACE));
    let f = recv(&sink, "the fatal fault");
    // Release the thread before checking, so a failed check does not leave it blocked.
    e.supply(vmo, 2, 1, 8).expect("supply");
    let (t, bytes) = recv_done(&rx);
    assert_eq!(t, tid);
    assert!(bytes == pattern(8, 2));
    assert_eq!(
        f,
        FatalFault {
            vmo_koid: mapping.vmo().koid(),
            host_addr: mapping.host_addr() + 2 * PAGE_SIZE,
            vmo_offset: 2 * PAGE_SIZE,
            status: ZX_ERR_NO_SPACE,
            tid,
        },
        "the fatal fault must name the page the thread touched"
    );
}

// ---- 5. detach and pager close ----------------------------------------------------------

#[test]
fn detach_wakes_readers_with_bad_state_withdraws_the_read_and_sends_one_complete() {
    let e = Env::new();
    let key = 0x5555;
    let vmo = e.vmo(key, 4);
    e.supply(vmo, 3, 1, 1).expect("presupply page 3");
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(1);
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, 10, &tx);
    spawn_vmo_read(&e.p, vmo, 0, PS, &tx);
    assert_still_blocked(&rx, "the readers");
    // The READ packet is in the port, unread.
    e.p.pager_detach_vmo(e.pager, vmo).expect("detach");
    for _ in 0..3 {
        let (off, r) = recv(&rx, "a reader after detach");
        assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE), "reader at {off:#x}");
    }
    // The unread READ was withdrawn; exactly one COMPLETE is left.
    assert_eq!(e.packet(), complete_packet(key));
    e.expect_no_packet();
    // After the detach: clean pages are gone, and everything fails at once with BAD_STATE.
    let obj = e.p.vmo_object(vmo).unwrap();
    assert!(!obj.is_present(3), "clean pages are evicted by detach");
    assert_eq!(e.p.vmo_get_info(vmo).unwrap().committed_bytes, 0);
    let mut buf = [0u8; 8];
    assert_eq!(e.p.vmo_read(vmo, &mut buf, 0), Err(ZX_ERR_BAD_STATE));
    assert_eq!(e.supply(vmo, 0, 1, 1), Err(ZX_ERR_BAD_STATE));
    assert_eq!(e.fail(vmo, 0, 1, ZX_ERR_IO), Err(ZX_ERR_BAD_STATE));
    // A second detach is OK and sends no second COMPLETE.
    e.p.pager_detach_vmo(e.pager, vmo).expect("second detach");
    e.expect_no_packet();
    e.p.handle_close(vmo).expect("close vmo");
    drop(obj);
    e.expect_no_packet();
}

#[test]
fn detach_after_the_read_packet_was_dequeued_sends_only_complete() {
    let e = Env::new();
    let key = 0x5556;
    let vmo = e.vmo(key, 2);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.expect_read(key, 0, 2);
    e.p.pager_detach_vmo(e.pager, vmo).expect("detach");
    let (_, r) = recv(&rx, "the reader");
    assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE));
    assert_eq!(e.packet(), complete_packet(key));
    e.expect_no_packet();
}

#[test]
fn closing_the_pager_wakes_readers_with_bad_state_and_sends_no_complete() {
    let e = Env::new();
    let (k1, k2) = (0x5557, 0x5558);
    let vmo = e.vmo(k1, 2);
    let other = e.vmo(k2, 2);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, 2 * PS, &tx);
    e.wait_requests(1);
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, PS, &tx);
    assert_still_blocked(&rx, "the readers");
    // `other` was detached before the close: its queued COMPLETE is withdrawn by the close.
    e.p.pager_detach_vmo(e.pager, other).expect("detach other");
    // The READ packet of `vmo` stays unread.
    e.p.handle_close(e.pager).expect("close the pager");
    for _ in 0..2 {
        let (off, r) = recv(&rx, "a reader after the pager closed");
        assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE), "reader at {off:#x}");
    }
    e.expect_no_packet();
    let info = e.p.vmo_get_info(vmo).unwrap();
    assert_ne!(info.flags & kvmpager::abi::VMO_INFO_FLAG_DETACHED, 0);
    let mut buf = [0u8; 8];
    assert_eq!(e.p.vmo_read(vmo, &mut buf, 0), Err(ZX_ERR_BAD_STATE));
    // Closing the VMOs afterwards sends nothing either.
    e.p.handle_close(vmo).expect("close vmo");
    e.p.handle_close(other).expect("close other");
    e.expect_no_packet();
}

#[test]
fn closing_the_pager_after_the_read_was_dequeued_sends_nothing() {
    let e = Env::new();
    let key = 0x5559;
    let vmo = e.vmo(key, 1);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, PS, &tx);
    e.expect_read(key, 0, 1);
    e.p.handle_close(e.pager).expect("close the pager");
    let (_, r) = recv(&rx, "the reader");
    assert_eq!(r.err(), Some(ZX_ERR_BAD_STATE));
    e.expect_no_packet();
}

// ---- 6. early supply withdraws the packet ---------------------------------------------------

#[test]
fn early_supply_to_a_vmo_reader_withdraws_its_packet() {
    let e = Env::new();
    let key = 0x6666;
    let vmo = e.vmo(key, 4);
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, PS, &tx);
    e.wait_requests(1);
    // The packet is queued but not read; supply anyway.
    e.supply(vmo, 1, 1, 12).expect("early supply");
    let (_, r) = recv(&rx, "the reader");
    assert_eq!(r.expect("read"), pattern(12, 1));
    e.expect_no_packet();
    // The VMO's packet slot is free again: the next request is delivered.
    spawn_vmo_read(&e.p, vmo, 2 * PAGE_SIZE, PS, &tx);
    e.expect_read(key, 2, 1);
    e.supply(vmo, 2, 1, 12).expect("supply");
    let (_, r) = recv(&rx, "the second reader");
    assert_eq!(r.expect("read"), pattern(12, 2));
    e.expect_no_packet();
}

#[test]
fn early_supply_to_a_mapped_reader_withdraws_its_packet() {
    let e = Env::new();
    let key = 0x6667;
    let vmo = e.vmo(key, 4);
    let mapping =
        e.p.vmar_map(vmo, 0, 4 * PAGE_SIZE, false)
            .expect("vmar_map");
    let (tx, rx) = mpsc::channel();
    spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 0, &tx);
    let tid = recv_tid(&rx);
    e.wait_requests(1);
    e.supply(vmo, 0, 1, 13).expect("early supply");
    let (t, bytes) = recv_done(&rx);
    assert_eq!(t, tid);
    assert!(bytes == pattern(13, 0));
    e.expect_no_packet();
    spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 1, &tx);
    recv_tid(&rx);
    e.expect_read(key, 1, 1);
    e.supply(vmo, 1, 1, 13).expect("supply");
    assert!(recv_done(&rx).1 == pattern(13, 1));
    e.expect_no_packet();
}

// ---- 7. many pages, many threads, a pager thread ------------------------------------------

#[test]
fn sixty_four_mapped_threads_served_by_a_pager_thread() {
    const N: u64 = 64;
    const TAG: u64 = 0x77;
    let e = Env::new();
    let key = 0x7777;
    let vmo = e.vmo(key, N);
    let mapping =
        e.p.vmar_map(vmo, 0, N * PAGE_SIZE, false)
            .expect("vmar_map");

    // The pager thread: packet → aux VMO with the page pattern → SUPPLY, until N pages.
    let (ptx, prx) = mpsc::channel::<Result<Vec<PortPacket>, String>>();
    {
        let (p, pager, port) = (e.p.clone(), e.pager, e.port);
        thread::spawn(move || {
            let env = Env { p, pager, port };
            let mut seen = Vec::new();
            let mut pages = 0;
            let end = Instant::now() + LONG;
            let r = loop {
                if pages == N {
                    break Ok(seen);
                }
                let pkt = match env.p.port_wait(env.port, Some(end)) {
                    Ok(pkt) => pkt,
                    Err(s) => break Err(format!("port_wait: {} after {pages}", name(s))),
                };
                seen.push(pkt);
                let req = pkt.page_request;
                if pkt.key != key || req.command != ZX_PAGER_VMO_READ {
                    break Err(format!("unexpected packet {pkt:?}"));
                }
                let (first, n) = (req.offset / PAGE_SIZE, req.length / PAGE_SIZE);
                if let Err(s) = env.supply(vmo, first, n, TAG) {
                    break Err(format!("supply: {}", name(s)));
                }
                pages += n;
            };
            let _ = ptx.send(r);
        });
    }

    let (tx, rx) = mpsc::channel();
    for page in 0..N {
        spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), page, &tx);
    }
    let mut done = vec![false; N as usize];
    let mut tids = 0;
    while done.iter().any(|d| !d) {
        match recv(&rx, "the mapped readers") {
            Mapped::Tid(_) => tids += 1,
            Mapped::Done(_, bytes) => {
                let page = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) ^ 1;
                let page = ((page ^ (TAG << 40) ^ 0x5a5a_0000_0000_0000) >> 20) as usize;
                assert!(page < N as usize, "unrecognisable page contents");
                assert!(bytes == pattern(TAG, page as u64), "page {page} bytes");
                assert!(!done[page], "page {page} read twice");
                done[page] = true;
            }
        }
    }
    assert_eq!(tids, N);
    let packets = recv(&prx, "the pager thread").expect("pager thread");
    // Mapping faults ask for one page at a time.
    assert_eq!(packets.len(), N as usize);
    let mut offsets: Vec<u64> = packets.iter().map(|p| p.page_request.offset).collect();
    offsets.sort();
    assert_eq!(offsets, (0..N).map(|p| p * PAGE_SIZE).collect::<Vec<_>>());
    assert!(
        packets
            .iter()
            .all(|p| *p == read_packet(key, p.page_request.offset / PAGE_SIZE, 1))
    );
    let s = e.p.counters();
    assert!(s.faults >= N, "faults {}", s.faults);
    assert_eq!(s.requests, N);
    assert_eq!(s.supplies, N);
    assert_eq!(s.pages_supplied, N);
    assert_eq!(s.bytes_moved, N * PAGE_SIZE);
    assert_eq!(s.bytes_copied, 0);
    assert_eq!(s.pages_skipped, 0);
    assert_eq!(
        e.p.vmo_get_info(vmo).unwrap().committed_bytes,
        N * PAGE_SIZE
    );
    e.expect_no_packet();
}

// ---- 8. two VMOs on one port ------------------------------------------------------------

#[test]
fn two_vmos_on_one_port_are_told_apart_by_key_and_fail_independently() {
    let e = Env::new();
    let sink = fault_sink(&e.p);
    let (k1, k2) = (0x8881, 0x8882);
    let v1 = e.vmo(k1, 2);
    let v2 = e.vmo(k2, 2);
    let m2 = e.p.vmar_map(v2, 0, 2 * PAGE_SIZE, false).expect("vmar_map");
    let (rtx, rrx) = mpsc::channel();
    spawn_vmo_read(&e.p, v1, 0, PS, &rtx);
    let (mtx, mrx) = mpsc::channel();
    spawn_mapped_reader(m2.vmo(), m2.host_addr(), 0, &mtx);
    let tid = recv_tid(&mrx);
    e.wait_requests(2);
    let mut got = [e.packet(), e.packet()];
    got.sort_by_key(|p| p.key);
    assert_eq!(got, [read_packet(k1, 0, 1), read_packet(k2, 0, 1)]);
    e.expect_no_packet();

    e.fail(v1, 0, 2, ZX_ERR_IO).expect("FAIL v1");
    let (_, r) = recv(&rrx, "the v1 reader");
    assert_eq!(r.err(), Some(ZX_ERR_IO));
    assert_still_blocked(&mrx, "the v2 reader");
    assert!(
        sink.try_recv().is_err(),
        "FAIL of v1 must not touch v2's faults"
    );
    e.expect_no_packet();

    e.supply(v2, 0, 1, 21).expect("supply v2");
    let (t, bytes) = recv_done(&mrx);
    assert_eq!(t, tid);
    assert!(bytes == pattern(21, 0));
    assert!(!e.p.vmo_object(v1).unwrap().is_present(0));
    assert!(e.p.vmo_object(v2).unwrap().is_present(0));
    // v1 still works after its FAIL.
    spawn_vmo_read(&e.p, v1, 0, PS, &rtx);
    e.expect_read(k1, 0, 1);
    e.supply(v1, 0, 1, 22).expect("supply v1");
    assert_eq!(recv(&rrx, "the v1 reader").1.expect("read"), pattern(22, 0));
    assert!(sink.try_recv().is_err());
    e.expect_no_packet();
}

// ---- more blocking calls -----------------------------------------------------------------

#[test]
fn vmo_write_waits_for_the_page_then_writes_over_the_supplied_bytes() {
    let e = Env::new();
    let key = 0x9991;
    let vmo = e.vmo(key, 2);
    let (tx, rx) = mpsc::channel();
    {
        let p = e.p.clone();
        thread::spawn(move || {
            let _ = tx.send(p.vmo_write(vmo, &[0xee; 100], PAGE_SIZE + 50));
        });
    }
    e.expect_read(key, 1, 1);
    assert_still_blocked(&rx, "the writer");
    e.supply(vmo, 1, 1, 31).expect("supply");
    recv(&rx, "the writer").expect("vmo_write");
    let mut want = pattern(31, 1);
    want[50..150].fill(0xee);
    let mut got = vec![0u8; PS];
    e.p.vmo_object(vmo)
        .unwrap()
        .peek(PAGE_SIZE, &mut got)
        .unwrap();
    assert!(got == want, "the write lands on top of the supplied page");
    // The written page is dirty, so a detach keeps it; the untouched page 0 was never present.
    e.p.pager_detach_vmo(e.pager, vmo).expect("detach");
    assert!(e.p.vmo_object(vmo).unwrap().is_present(1));
    assert_eq!(e.packet(), complete_packet(key));
    e.expect_no_packet();
}

#[test]
fn with_its_port_closed_a_vmo_still_takes_supplies_and_detach() {
    // ClosePortTest: requests go to a port nobody can read; a supply still releases the
    // reader, and a detach releases the next one with BAD_STATE.
    let e = Env::new();
    let vmo = e.vmo(0x9992, 2);
    e.p.handle_close(e.port).expect("close the port");
    let (tx, rx) = mpsc::channel();
    spawn_vmo_read(&e.p, vmo, 0, PS, &tx);
    e.wait_requests(1);
    e.supply(vmo, 0, 1, 41)
        .expect("supply with the port closed");
    assert_eq!(recv(&rx, "the reader").1.expect("read"), pattern(41, 0));
    spawn_vmo_read(&e.p, vmo, PAGE_SIZE, PS, &tx);
    e.wait_requests(2);
    e.p.pager_detach_vmo(e.pager, vmo).expect("detach");
    assert_eq!(recv(&rx, "the reader").1.err(), Some(ZX_ERR_BAD_STATE));
}

// ---- deferred wake-ups ----------------------------------------------------------------------

#[test]
fn a_supply_inside_deferred_wakes_releases_the_faulting_thread_only_when_woken() {
    let e = Env::new();
    let key = 0x2222;
    let vmo = e.vmo(key, 4);
    let mapping =
        e.p.vmar_map(vmo, 0, 4 * PAGE_SIZE, false)
            .expect("vmar_map");
    let (tx, rx) = mpsc::channel();
    spawn_mapped_reader(mapping.vmo(), mapping.host_addr(), 1, &tx);
    recv_tid(&rx);
    e.expect_read(key, 1, 1);
    let (r, wakes) = kvmpager::fault::with_deferred_faulter_wakes(|| e.supply(vmo, 1, 1, 7));
    assert_eq!(r, Ok(()));
    assert!(!wakes.is_empty());
    // The page is in, but the thread that faulted on it sleeps until the wake-up.
    assert_still_blocked(&rx, "the faulting reader before the deferred wake-up");
    wakes.wake();
    let (_, got) = recv_done(&rx);
    assert_eq!(got, pattern(7, 1));
    // A scope that supplies nothing defers nothing.
    let (r, wakes) = kvmpager::fault::with_deferred_faulter_wakes(|| 1 + 1);
    assert_eq!(r, 2);
    assert!(wakes.is_empty());
}
