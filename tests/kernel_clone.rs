//! Copy-on-write clones of pager VMOs (`ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE`): requests
//! name the root, supplied pages are shared, writes fork, root writes stay visible through
//! unforked pages, detach and close of the root, mapped faults, chains, options and limits.

mod kernel_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kernel_util::{Fixture, PS, pattern};
use kvmpager::Process;
use kvmpager::abi::packet::ZX_PAGER_VMO_READ;
use kvmpager::abi::rights::*;
use kvmpager::abi::status::*;
use kvmpager::abi::vmo_child::*;
use kvmpager::abi::vmo_op::{ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use kvmpager::abi::{Handle, PAGE_SIZE, Status, VMO_INFO_FLAG_PAGER_BACKED};
use kvmpager::account::{FatalFault, Limits};

const P: u64 = PAGE_SIZE;
const COW: u32 = ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
const TIMEOUT: Duration = Duration::from_secs(5);

fn clone(f: &Fixture, parent: Handle, offset_pages: u64, pages: u64) -> Handle {
    f.p.vmo_create_child(
        parent,
        COW | ZX_VMO_CHILD_RESIZABLE,
        offset_pages * P,
        pages * P,
    )
    .expect("create_child")
}

fn read(p: &Process, vmo: Handle, page: u64) -> Result<Vec<u8>, Status> {
    let mut buf = vec![0; PS];
    p.vmo_read(vmo, &mut buf, page * P).map(|()| buf)
}

/// Reads page `page` of `vmo` on a new thread; the result arrives on the receiver.
fn spawn_read(p: &Arc<Process>, vmo: Handle, page: u64) -> Receiver<Result<Vec<u8>, Status>> {
    let (tx, rx) = mpsc::channel();
    let p = p.clone();
    thread::spawn(move || {
        let _ = tx.send(read(&p, vmo, page));
    });
    rx
}

fn expect_read_packet(f: &Fixture, page: u64, pages: u64) {
    let pkt = f.packet();
    assert_eq!(pkt.key, f.key, "requests name the root");
    assert_eq!(pkt.page_request.command, ZX_PAGER_VMO_READ);
    assert_eq!(
        (pkt.page_request.offset, pkt.page_request.length),
        (page * P, pages * P),
        "the root's range"
    );
}

fn fault_sink(p: &Process) -> Receiver<FatalFault> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    p.set_fatal_fault_sink(Arc::new(move |f| {
        let _ = tx.lock().unwrap().send(f);
    }));
    rx
}

/// Reads the first byte of every page of `[addr, addr + pages * P)` directly (a guest's
/// mapped access); the bytes arrive on the receiver.
fn spawn_touch(addr: u64, page: u64) -> Receiver<u8> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // SAFETY: `addr` is inside a VMO's host memory that the test keeps mapped (it holds
        // the Mapping) until it has received the byte; the read faults until the page is in.
        let b = unsafe { std::ptr::read_volatile((addr + page * P) as *const u8) };
        let _ = tx.send(b);
    });
    rx
}

// ---- reads: requests name the root, pages are shared --------------------------------------

#[test]
fn clone_read_from_clone_test() {
    let f = Fixture::new(4);
    let c = clone(&f, f.vmo, 1, 2);
    let rx = spawn_read(&f.p, c, 1);
    expect_read_packet(&f, 2, 1);
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "waits");
    f.supply(2, 1, 7).unwrap();
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap().unwrap(), pattern(7, 0));
    assert_eq!(f.peek(2), pattern(7, 0), "the root holds the supplied page");
    assert_eq!(f.committed(c), P, "the clone holds a copy");
    f.no_packet();
}

#[test]
fn clone_read_from_parent_test() {
    let f = Fixture::new(3);
    f.supply(0, 3, 4).unwrap();
    let c = clone(&f, f.vmo, 0, 3);
    for page in 0..3 {
        assert_eq!(read(&f.p, c, page).unwrap(), pattern(4, page));
    }
    f.no_packet();
}

#[test]
fn clone_simultaneous_read_test_shares_one_request() {
    let f = Fixture::new(2);
    let c = clone(&f, f.vmo, 0, 2);
    let from_parent = spawn_read(&f.p, f.vmo, 1);
    expect_read_packet(&f, 1, 1);
    let from_clone = spawn_read(&f.p, c, 1);
    thread::sleep(Duration::from_millis(50));
    f.no_packet();
    f.supply(1, 1, 3).unwrap();
    assert_eq!(
        from_parent.recv_timeout(TIMEOUT).unwrap().unwrap(),
        pattern(3, 0)
    );
    assert_eq!(
        from_clone.recv_timeout(TIMEOUT).unwrap().unwrap(),
        pattern(3, 0)
    );
    f.no_packet();
}

#[test]
fn a_clone_read_batches_a_run_and_skips_pages_an_ancestor_forked() {
    let f = Fixture::new(4);
    let c1 = clone(&f, f.vmo, 0, 4);
    let c2 = clone(&f, c1, 0, 4);
    f.supply(1, 1, 1).unwrap();
    let rx = spawn_read(&f.p, c1, 1); // present in the root: no request
    assert!(rx.recv_timeout(TIMEOUT).unwrap().is_ok());
    f.p.vmo_write(c1, &[9; PS], P).unwrap();
    let p2 = f.p.clone();
    let (tx, done) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0; 4 * PS];
        let _ = tx.send(p2.vmo_read(c2, &mut buf, 0).map(|()| buf));
    });
    expect_read_packet(&f, 0, 1);
    f.supply(0, 1, 5).unwrap();
    expect_read_packet(&f, 2, 2);
    f.supply(2, 2, 6).unwrap();
    let buf = done.recv_timeout(TIMEOUT).unwrap().unwrap();
    assert_eq!(&buf[..PS], &pattern(5, 0)[..]);
    assert_eq!(&buf[PS..2 * PS], &[9; PS][..], "c1's fork");
    assert_eq!(&buf[2 * PS..3 * PS], &pattern(6, 0)[..]);
    f.no_packet();
}

// ---- writes ---------------------------------------------------------------------------------

#[test]
fn clone_write_to_clone_test() {
    let f = Fixture::new(2);
    let c = clone(&f, f.vmo, 0, 2);
    let p2 = f.p.clone();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(p2.vmo_write(c, &[0xAB; 8], P + 8));
    });
    expect_read_packet(&f, 1, 1);
    f.supply(1, 1, 2).unwrap();
    rx.recv_timeout(TIMEOUT).unwrap().unwrap();
    let mut want = pattern(2, 0);
    want[8..16].fill(0xAB);
    assert_eq!(read(&f.p, c, 1).unwrap(), want);
    assert_eq!(
        read(&f.p, f.vmo, 1).unwrap(),
        pattern(2, 0),
        "the parent is unchanged"
    );
    // A root write no longer reaches the forked page.
    f.p.vmo_write(f.vmo, &[1; PS], P).unwrap();
    assert_eq!(read(&f.p, c, 1).unwrap(), want);
}

#[test]
fn snapshot_root_vmo_write_is_seen_through_unforked_pages() {
    let f = Fixture::new(2);
    f.supply(0, 2, 3).unwrap();
    let c1 = clone(&f, f.vmo, 0, 2);
    let c2 = clone(&f, c1, 0, 2);
    assert_eq!(read(&f.p, c2, 0).unwrap(), pattern(3, 0), "cached in c2");
    assert_eq!(read(&f.p, c1, 0).unwrap(), pattern(3, 0), "cached in c1");
    f.p.vmo_write(f.vmo, &[0x55; PS], 0).unwrap();
    assert_eq!(read(&f.p, c1, 0).unwrap(), vec![0x55; PS]);
    assert_eq!(read(&f.p, c2, 0).unwrap(), vec![0x55; PS]);
    // An intermediate clone's write reaches its own clone (CloneModifyChain).
    f.p.vmo_write(c1, &[0x66; PS], 0).unwrap();
    assert_eq!(read(&f.p, c2, 0).unwrap(), vec![0x66; PS]);
    assert_eq!(read(&f.p, f.vmo, 0).unwrap(), vec![0x55; PS]);
}

#[test]
fn clone_commit_test_forks_every_page_and_intermediates_keep_none() {
    let f = Fixture::new(4);
    let c1 = clone(&f, f.vmo, 0, 4);
    let c2 = clone(&f, c1, 0, 4);
    let p2 = f.p.clone();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(p2.vmo_op_range(c2, ZX_VMO_OP_COMMIT, 0, 4 * P));
    });
    expect_read_packet(&f, 0, 4);
    f.supply(0, 4, 8).unwrap();
    rx.recv_timeout(TIMEOUT).unwrap().unwrap();
    assert_eq!(f.committed(c2), 4 * P);
    assert_eq!(
        f.committed(c1),
        0,
        "CloneChainCommitTest: the intermediate holds none"
    );
    assert_eq!(f.committed(f.vmo), 4 * P);
    // Committed pages are forked: the root's later writes stay out.
    f.p.vmo_write(f.vmo, &[1; PS], 0).unwrap();
    assert_eq!(read(&f.p, c2, 0).unwrap(), pattern(8, 0));
}

// ---- detach and close -----------------------------------------------------------------------

#[test]
fn clone_detach_test_keeps_forked_pages_and_fails_the_rest() {
    let f = Fixture::new(3);
    f.supply(0, 3, 2).unwrap();
    let c1 = clone(&f, f.vmo, 0, 3);
    let c2 = clone(&f, c1, 0, 3);
    assert!(read(&f.p, c1, 0).is_ok()); // cached
    f.p.vmo_write(c1, &[4; PS], P).unwrap(); // forked in c1
    f.p.vmo_write(c2, &[5; PS], 2 * P).unwrap(); // forked in c2
    assert!(read(&f.p, c2, 0).is_ok()); // cached in c2
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(f.committed(c1), P, "the cached copy went away");
    assert_eq!(f.committed(c2), P);
    assert_eq!(read(&f.p, c1, 0).err(), Some(ZX_ERR_BAD_STATE));
    assert_eq!(read(&f.p, c2, 0).err(), Some(ZX_ERR_BAD_STATE));
    assert_eq!(read(&f.p, c1, 1).unwrap(), vec![4; PS]);
    assert_eq!(
        read(&f.p, c2, 1).unwrap(),
        vec![4; PS],
        "c1's fork, through c2"
    );
    assert_eq!(read(&f.p, c2, 2).unwrap(), vec![5; PS]);
    assert_eq!(
        f.p.vmo_op_range(c1, ZX_VMO_OP_COMMIT, 0, 3 * P).err(),
        Some(ZX_ERR_BAD_STATE)
    );
}

#[test]
fn detach_fails_a_clone_reader_waiting_for_the_root() {
    let f = Fixture::new(1);
    let c = clone(&f, f.vmo, 0, 1);
    let rx = spawn_read(&f.p, c, 0);
    expect_read_packet(&f, 0, 1);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap().err(),
        Some(ZX_ERR_BAD_STATE)
    );
}

#[test]
fn snapshot_close_root_leaves_clones_readable() {
    let f = Fixture::new(2);
    f.supply(0, 1, 6).unwrap();
    let c = clone(&f, f.vmo, 0, 2);
    f.p.handle_close(f.vmo).unwrap();
    assert_eq!(read(&f.p, c, 0).unwrap(), pattern(6, 0));
    // The root lives on behind the clone: its pager still gets the clone's requests.
    f.p.set_wait_limit(Some(Duration::from_millis(200)));
    let rx = spawn_read(&f.p, c, 1);
    expect_read_packet(&f, 1, 1);
    assert_eq!(
        rx.recv_timeout(TIMEOUT).unwrap().err(),
        Some(ZX_ERR_TIMED_OUT)
    );
    f.p.handle_close(c).unwrap();
    // The last VMO of the tree is gone: the pager hears COMPLETE.
    let pkt = f.packet();
    assert_eq!(
        pkt.page_request.command,
        kvmpager::abi::packet::ZX_PAGER_VMO_COMPLETE
    );
}

// ---- mappings -------------------------------------------------------------------------------

#[test]
fn a_mapped_clone_read_faults_to_the_root_pager() {
    let f = Fixture::new(4);
    let c = clone(&f, f.vmo, 2, 2);
    let map = f.p.vmar_map(c, 0, 2 * P, false).unwrap();
    let rx = spawn_touch(map.host_addr(), 1);
    expect_read_packet(&f, 3, 1);
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "blocked"
    );
    f.supply(3, 1, 9).unwrap();
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), pattern(9, 0)[0]);
    // Present in the root: the next clone fault is served at once.
    f.supply(2, 1, 10).unwrap();
    assert_eq!(
        spawn_touch(map.host_addr(), 0)
            .recv_timeout(TIMEOUT)
            .unwrap(),
        pattern(10, 0)[0]
    );
    f.no_packet();
}

#[test]
fn a_mapped_write_forks_and_survives_a_detach_while_unforked_pages_fault_fatally() {
    let f = Fixture::new(3);
    let sink = fault_sink(&f.p);
    f.supply(0, 3, 1).unwrap();
    let c = clone(&f, f.vmo, 0, 3);
    let map = f.p.vmar_map(c, 0, 3 * P, true).unwrap();
    let base = map.host_addr();
    // Page 0 is first touched by a write; page 2 is read (copied) and then written.
    let first = spawn_touch(base, 2).recv_timeout(TIMEOUT).unwrap();
    assert_eq!(first, pattern(1, 2)[0]);
    let writer = thread::spawn(move || {
        for page in [0, 2] {
            // SAFETY: a page of the clone's host memory, mapped while `map` lives (joined
            // below).
            unsafe { std::ptr::write_volatile((base + page * P) as *mut u8, 0xEE) };
        }
    });
    writer.join().unwrap();
    let one = spawn_touch(base, 1).recv_timeout(TIMEOUT).unwrap();
    assert_eq!(one, pattern(1, 1)[0]);
    assert_eq!(
        read(&f.p, f.vmo, 0).unwrap(),
        pattern(1, 0),
        "the root is unchanged"
    );
    assert_eq!(read(&f.p, f.vmo, 2).unwrap(), pattern(1, 2));
    // A root write no longer reaches the pages the mapping wrote.
    f.p.vmo_write(f.vmo, &[3; PS], 2 * P).unwrap();
    assert_eq!(read(&f.p, c, 2).unwrap()[..2], [0xEE, pattern(1, 2)[1]]);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(
        read(&f.p, c, 0).unwrap()[0],
        0xEE,
        "the mapped write forked page 0"
    );
    assert_eq!(read(&f.p, c, 2).unwrap()[0], 0xEE, "and page 2");
    let _blocked = spawn_touch(base, 1);
    let fatal = sink.recv_timeout(TIMEOUT).expect("a fatal fault");
    assert_eq!(fatal.status, ZX_ERR_BAD_STATE);
    assert_eq!(fatal.vmo_offset, P);
    assert_eq!(fatal.vmo_koid, f.p.vmo_object(c).unwrap().koid());
    // The blocked reader stays blocked (the VM would be stopped); keep its memory alive.
    std::mem::forget(map);
}

// ---- options, rights, info ------------------------------------------------------------------

#[test]
fn options_rights_and_info() {
    let f = Fixture::new(2);
    let p = &f.p;
    let snapshot = p.vmo_create_child(f.vmo, ZX_VMO_CHILD_SNAPSHOT, 0, P);
    assert_eq!(
        snapshot.err(),
        Some(ZX_ERR_NOT_SUPPORTED),
        "ChildSnapshotNotSupported"
    );
    let slice = p.vmo_create_child(f.vmo, ZX_VMO_CHILD_SLICE, 0, P);
    assert_eq!(slice.err(), Some(ZX_ERR_NOT_SUPPORTED));
    for bad in [
        0,
        COW | ZX_VMO_CHILD_SNAPSHOT,
        COW | 1 << 9,
        ZX_VMO_CHILD_NO_WRITE,
    ] {
        let r = p.vmo_create_child(f.vmo, bad, 0, P);
        assert_eq!(r.err(), Some(ZX_ERR_INVALID_ARGS), "options {bad:#x}");
    }
    assert_eq!(
        p.vmo_create_child(f.vmo, COW, 1, P).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
    let c = p
        .vmo_create_child(f.vmo, COW | ZX_VMO_CHILD_NO_WRITE, 0, 2 * P)
        .unwrap();
    let info = p.vmo_get_info(c).unwrap();
    assert_ne!(info.flags & VMO_INFO_FLAG_PAGER_BACKED, 0);
    let root_koid = p.vmo_object(f.vmo).unwrap().koid();
    assert_eq!(p.vmo_object(c).unwrap().parent_koid(), Some(root_koid));
    assert_eq!(info.rights & ZX_RIGHT_WRITE, 0, "NO_WRITE");
    assert_eq!(p.vmo_write(c, &[1], 0).err(), Some(ZX_ERR_ACCESS_DENIED));
    let snap_of_clone = p.vmo_create_child(c, ZX_VMO_CHILD_SNAPSHOT, 0, P);
    assert_eq!(snap_of_clone.err(), Some(ZX_ERR_NOT_SUPPORTED));
    let w = clone(&f, f.vmo, 0, 1);
    let info = p.vmo_get_info(w).unwrap();
    assert_ne!(info.rights & ZX_RIGHT_WRITE, 0);
    assert_ne!(info.rights & ZX_RIGHT_RESIZE, 0, "RESIZABLE");
    assert_eq!(p.vmo_get_info(f.vmo).unwrap().children, 2);
    assert_eq!(
        p.vmo_op_range(w, ZX_VMO_OP_DECOMMIT, 0, P).err(),
        Some(ZX_ERR_NOT_SUPPORTED),
        "DecommitTest on a clone"
    );
    // A clone is no SUPPLY target or aux VMO.
    let r = p.pager_supply_pages(f.pager, w, 0, P, w, 0);
    assert!(r.is_err());
    // AT_LEAST_ON_WRITE on an anonymous VMO is an eager snapshot.
    let a = kernel_util::aux(p, 1, 3);
    let s = p.vmo_create_child(a, COW, 0, P).unwrap();
    p.vmo_write(a, &[0; PS], 0).unwrap();
    assert_eq!(read(p, s, 0).unwrap(), pattern(3, 0));
    assert_eq!(
        p.vmo_get_info(s).unwrap().flags & VMO_INFO_FLAG_PAGER_BACKED,
        0
    );
}

#[test]
fn a_clone_larger_than_its_parent_reads_zero_past_the_end_and_keeps_it_after_detach() {
    let f = Fixture::new(1);
    f.supply(0, 1, 2).unwrap();
    let c = clone(&f, f.vmo, 0, 3);
    assert_eq!(read(&f.p, c, 2).unwrap(), vec![0; PS]);
    f.no_packet();
    // A clone of that clone sees the zeros, and then the middle clone's write there.
    let c2 = clone(&f, c, 0, 3);
    assert_eq!(read(&f.p, c2, 2).unwrap(), vec![0; PS]);
    f.p.vmo_write(c, &[7; PS], 2 * P).unwrap();
    assert_eq!(read(&f.p, c2, 2).unwrap(), vec![7; PS]);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(
        read(&f.p, c, 2).unwrap(),
        vec![7; PS],
        "not the pager's page"
    );
    assert_eq!(
        read(&f.p, c, 1).unwrap(),
        vec![0; PS],
        "past the root's end"
    );
    assert_eq!(read(&f.p, c, 0).err(), Some(ZX_ERR_BAD_STATE));
    // Offsets as far out as they go read zeros and never overflow.
    let far = (u64::MAX - 2 * P) & !(P - 1);
    let c3 = f.p.vmo_create_child(c2, COW, far, P).unwrap();
    let c4 = f.p.vmo_create_child(c3, COW, far, P).unwrap();
    assert_eq!(read(&f.p, c4, 0).unwrap(), vec![0; PS]);
    f.p.vmo_write(c2, &[1; PS], 2 * P).unwrap();
}

#[test]
fn clones_count_against_the_vmo_limits_and_charge_their_size() {
    let f = Fixture::new(4);
    f.p.set_limits(Limits {
        vmos: 3,
        ..Limits::default()
    });
    let before = f.p.vmo_memory();
    let c = clone(&f, f.vmo, 0, 4);
    assert_eq!(f.p.vmo_memory(), before + 4 * P);
    let _c2 = clone(&f, c, 0, 1);
    let r = f.p.vmo_create_child(c, COW, 0, P);
    assert_eq!(r.err(), Some(ZX_ERR_NO_RESOURCES));
    f.p.set_limits(Limits::default());
    f.p.set_vmo_memory_limit(f.p.vmo_memory() + P);
    let r = f.p.vmo_create_child(c, COW, 0, 2 * P);
    assert_eq!(r.err(), Some(ZX_ERR_NO_MEMORY));
}

// ---- chains -----------------------------------------------------------------------------------

#[test]
fn deep_hierarchy_of_1000_clones_is_created_read_and_torn_down_without_recursion() {
    let f = Fixture::new(2);
    f.supply(0, 1, 4).unwrap();
    let base = f.p.vmo_count();
    let mut chain = vec![f.vmo];
    for _ in 0..1000 {
        chain.push(clone(&f, *chain.last().unwrap(), 0, 2));
    }
    assert_eq!(f.p.vmo_count(), base + 1000);
    let deepest = *chain.last().unwrap();
    assert_eq!(read(&f.p, deepest, 0).unwrap(), pattern(4, 0));
    f.p.vmo_write(chain[500], &[3; PS], 0).unwrap();
    assert_eq!(
        read(&f.p, deepest, 0).unwrap(),
        vec![3; PS],
        "a mid-chain write"
    );
    // Close everything but the deepest clone, then drop the whole chain from a thread with a
    // small stack: recursive drops of 1000 parents would overflow it.
    for h in &chain[..1000] {
        f.p.handle_close(*h).unwrap();
    }
    assert_eq!(read(&f.p, deepest, 0).unwrap(), vec![3; PS]);
    let p = f.p.clone();
    thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || p.handle_close(deepest).unwrap())
        .unwrap()
        .join()
        .expect("teardown on a 64 KiB stack");
    assert_eq!(f.p.vmo_count(), base - 1);
    let pkt = f.packet();
    assert_eq!(
        pkt.page_request.command,
        kvmpager::abi::packet::ZX_PAGER_VMO_COMPLETE
    );
}

#[test]
fn concurrent_clone_readers_writers_and_root_writes_never_see_foreign_bytes() {
    let f = Fixture::new(8);
    f.supply(0, 8, 1).unwrap();
    let c = clone(&f, f.vmo, 0, 8);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..3u8 {
        let (p, stop) = (f.p.clone(), stop.clone());
        let (root, c) = (f.vmo, c);
        threads.push(thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let page = (n * 3 + t as u64) % 8;
                match t {
                    0 => p
                        .vmo_write(root, &[0x10 | (n % 8) as u8; PS], page * P)
                        .unwrap(),
                    1 => {
                        let b = read(&p, c, page).unwrap();
                        let first = b[0];
                        assert!(b.iter().all(|&x| x == first) || b == pattern(1, page));
                    }
                    _ => p.vmo_write(c, &[0x20; PS], (page % 2) * P).unwrap(),
                }
                n += 1;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        read(&f.p, c, 0).unwrap(),
        vec![0x20; PS],
        "forked pages hold the clone's writes"
    );
    let root_page = read(&f.p, f.vmo, 0).unwrap();
    assert!(root_page.iter().all(|&b| b & 0xF0 == 0x10) || root_page == pattern(1, 0));
}

#[test]
fn mapped_writers_and_readers_race_root_writes_without_hanging_or_losing_writes() {
    const PAGES: u64 = 4;
    let f = Fixture::new(PAGES);
    f.supply(0, PAGES, 1).unwrap();
    let c = clone(&f, f.vmo, 0, PAGES);
    let map = f.p.vmar_map(c, 0, PAGES * P, true).unwrap();
    let base = map.host_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..4u64 {
        let (p, stop, done) = (f.p.clone(), stop.clone(), done_tx.clone());
        let root = f.vmo;
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match t {
                    // Two writers of page 0 (the same byte) and one of page 1.
                    0 | 1 => {
                        // SAFETY: inside the clone's mapped memory, alive until all threads
                        // have reported (the test waits for them before dropping `map`).
                        unsafe { std::ptr::write_volatile(base as *mut u8, 0xA0) };
                        // SAFETY: as above.
                        unsafe { std::ptr::write_volatile((base + P) as *mut u8, 0xB0) };
                    }
                    2 => {
                        let page = n % PAGES;
                        // SAFETY: as above.
                        let _ = unsafe { std::ptr::read_volatile((base + page * P) as *const u8) };
                    }
                    _ => p
                        .vmo_write(root, &[(n % 200) as u8; PS], (n % PAGES) * P)
                        .unwrap(),
                }
                n += 1;
            }
            let _ = done.send(t);
        });
    }
    thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for _ in 0..4 {
        done_rx.recv_timeout(TIMEOUT).expect("a thread hung");
    }
    assert_eq!(read(&f.p, c, 0).unwrap()[0], 0xA0);
    assert_eq!(read(&f.p, c, 1).unwrap()[0], 0xB0);
    // Pages 2 and 3 were only read: they show the root's latest bytes.
    for page in 2..PAGES {
        assert_eq!(
            read(&f.p, c, page).unwrap(),
            read(&f.p, f.vmo, page).unwrap()
        );
    }
    drop(map);
}

// ---- figures (run by hand: cargo test --release --test kernel_clone -- --ignored --nocapture) --

#[test]
#[ignore]
fn figures_clone_fault_cost_and_memory() {
    const N: u64 = 4096;
    let f = Fixture::new(N);
    f.supply(0, N, 1).unwrap();
    // Clone first touches of supplied pages through a mapping (fault + UFFDIO_COPY).
    let c = clone(&f, f.vmo, 0, N);
    let map = f.p.vmar_map(c, 0, N * P, false).unwrap();
    let rss_before = rss_kib();
    let t = Instant::now();
    let mut sum = 0u64;
    for page in 0..N {
        // SAFETY: inside the mapped clone memory, which `map` keeps alive.
        sum += unsafe { std::ptr::read_volatile((map.host_addr() + page * P) as *const u8) } as u64;
    }
    let clone_ns = t.elapsed().as_nanos() as u64 / N;
    let rss_growth = rss_kib() - rss_before;
    // Mapped faults answered by a pager thread (fault + packet + SUPPLY by UFFDIO_MOVE): on the
    // root, and on a clone of an empty root (then also a helper thread and the copy).
    let mut pager_ns = [0u64; 2];
    for (i, through_clone) in [false, true].into_iter().enumerate() {
        let g = Fixture::new(N);
        let target = if through_clone {
            clone(&g, g.vmo, 0, N)
        } else {
            g.vmo
        };
        let rmap = g.p.vmar_map(target, 0, N * P, false).unwrap();
        let (p, pager, port, vmo) = (g.p.clone(), g.pager, g.port, g.vmo);
        let pager_thread = thread::spawn(move || {
            for _ in 0..N {
                let pkt = p.port_wait(port, Some(Instant::now() + TIMEOUT)).unwrap();
                let aux = kernel_util::aux(&p, 1, 2);
                p.pager_supply_pages(pager, vmo, pkt.page_request.offset, P, aux, 0)
                    .unwrap();
                p.handle_close(aux).unwrap();
            }
        });
        let t = Instant::now();
        for page in 0..N {
            // SAFETY: inside the mapped memory, which `rmap` keeps alive.
            let b = unsafe { std::ptr::read_volatile((rmap.host_addr() + page * P) as *const u8) };
            sum += b as u64;
        }
        pager_ns[i] = t.elapsed().as_nanos() as u64 / N;
        pager_thread.join().unwrap();
    }
    let [root_ns, clone_pager_ns] = pager_ns;
    // Kernel reads of a clone (vmo_read: copy from the root, then read).
    let c2 = clone(&f, f.vmo, 0, N);
    let mut buf = vec![0; PS];
    let t = Instant::now();
    for page in 0..N {
        f.p.vmo_read(c2, &mut buf, page * P).unwrap();
    }
    let read_ns = t.elapsed().as_nanos() as u64 / N;
    println!(
        "clone mapped first touch {clone_ns} ns/page; root mapped fault served by a pager \
         thread {root_ns} ns/page, clone mapped fault with the root's page absent \
         {clone_pager_ns} ns/page; clone vmo_read of an absent page {read_ns} ns/page; \
         clone committed after {N} touches: {} KiB, host RSS growth {rss_growth} KiB \
         (sum {sum})",
        f.committed(c) / 1024
    );
}

/// This process's resident set (`/proc/self/statm`), KiB.
fn rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}
