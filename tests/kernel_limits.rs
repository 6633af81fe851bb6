//! A process's limits and its defences against pagers that fail: going over each [`Limits`]
//! field gives Zircon's status for that resource and changes nothing else; the wait limit
//! turns a wait for a pager that never answers into `ZX_ERR_TIMED_OUT`; the fault-timeout
//! scan (`overdue_request`) names the VMO and offset; closing the port fails the requests
//! outstanding at that moment, while later ones still wait for a supply as in Zircon; and a
//! detach racing a supplying pager and waiting readers leaves every party consistent.

mod kernel_util;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kernel_util::{Fixture, PS, pattern};
use kvmpager::Process;
use kvmpager::abi::PAGE_SIZE;
use kvmpager::abi::packet::ZX_PAGER_VMO_READ;
use kvmpager::abi::status::*;
use kvmpager::account::Limits;

const P: u64 = PAGE_SIZE;

fn limited(limits: Limits) -> std::sync::Arc<Process> {
    let p = Process::new();
    p.set_limits(limits);
    p
}

#[test]
fn the_handle_limit_gives_no_resources_and_frees_with_close() {
    let p = limited(Limits {
        handles: 3,
        ..Limits::default()
    });
    let a = p.vmo_create(P, 0).unwrap();
    let b = p
        .handle_duplicate(a, kvmpager::abi::rights::ZX_RIGHT_SAME_RIGHTS)
        .unwrap();
    let port = p.port_create(0).unwrap();
    assert_eq!(p.port_create(0).err(), Some(ZX_ERR_NO_RESOURCES));
    assert_eq!(
        p.handle_duplicate(a, kvmpager::abi::rights::ZX_RIGHT_SAME_RIGHTS)
            .err(),
        Some(ZX_ERR_NO_RESOURCES)
    );
    assert_eq!(p.vmo_create(P, 0).err(), Some(ZX_ERR_NO_RESOURCES));
    assert_eq!(p.handle_count(), 3);
    assert_eq!(p.vmo_count(), 1, "the refused VMO was not kept");
    assert_eq!(p.vmo_memory(), P);
    // Replacing needs no free slot.
    let b = p
        .handle_replace(b, kvmpager::abi::rights::ZX_RIGHT_SAME_RIGHTS)
        .expect("replace in a full table");
    p.handle_close(b).unwrap();
    let c = p.vmo_create(P, 0).unwrap();
    for h in [a, c, port] {
        p.handle_close(h).unwrap();
    }
    assert_eq!((p.handle_count(), p.vmo_count(), p.vmo_memory()), (0, 0, 0));
}

#[test]
fn a_pager_vmo_refused_at_the_handle_limit_sends_no_complete() {
    let p = limited(Limits {
        handles: 2,
        ..Limits::default()
    });
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    assert_eq!(
        p.pager_create_vmo(pager, 0, port, 1, P).err(),
        Some(ZX_ERR_NO_RESOURCES)
    );
    assert_eq!(p.vmo_count(), 0, "the refused VMO is gone");
    assert_eq!(p.queued_packets(), 0, "no COMPLETE for a VMO nobody got");
    assert_eq!(
        p.port_wait(port, Some(Instant::now())).err(),
        Some(ZX_ERR_TIMED_OUT)
    );
}

#[test]
fn the_vmo_count_limit_covers_pager_vmos_and_children() {
    let p = limited(Limits {
        vmos: 2,
        ..Limits::default()
    });
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    let a = p.vmo_create(P, 0).unwrap();
    let pv = p.pager_create_vmo(pager, 0, port, 1, P).unwrap();
    assert_eq!(p.vmo_create(P, 0).err(), Some(ZX_ERR_NO_RESOURCES));
    assert_eq!(
        p.pager_create_vmo(pager, 0, port, 2, P).err(),
        Some(ZX_ERR_NO_RESOURCES)
    );
    assert_eq!(
        p.vmo_create_child(a, kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT, 0, P)
            .err(),
        Some(ZX_ERR_NO_RESOURCES)
    );
    assert_eq!(p.vmo_count(), 2);
    assert_eq!(p.vmo_memory(), 2 * P, "refused VMOs charge no bytes");
    p.handle_close(pv).unwrap();
    p.vmo_create_child(a, kvmpager::abi::vmo_child::ZX_VMO_CHILD_SNAPSHOT, 0, P)
        .expect("a slot is free again");
}

#[test]
fn the_queued_packet_limit_refuses_new_pager_vmos_until_the_pager_reads() {
    let p = limited(Limits {
        queued_packets: 4,
        ..Limits::default()
    });
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    // Each pager VMO closed without a detach leaves a COMPLETE packet.
    for key in 0..4 {
        let v = p.pager_create_vmo(pager, 0, port, key, P).unwrap();
        p.handle_close(v).unwrap();
    }
    assert_eq!(p.queued_packets(), 4);
    assert_eq!(
        p.pager_create_vmo(pager, 0, port, 9, P).err(),
        Some(ZX_ERR_NO_MEMORY)
    );
    p.port_wait(port, Some(Instant::now())).expect("a COMPLETE");
    assert_eq!(p.queued_packets(), 3);
    p.pager_create_vmo(pager, 0, port, 9, P)
        .expect("room after a read");
}

#[test]
fn the_wait_limit_times_out_a_read_the_pager_never_answers() {
    let f = Fixture::new(4);
    f.p.set_wait_limit(Some(Duration::from_millis(30)));
    let mut buf = vec![0u8; PS];
    let t0 = Instant::now();
    assert_eq!(
        f.p.vmo_read(f.vmo, &mut buf, 0).err(),
        Some(ZX_ERR_TIMED_OUT)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    // The request is still outstanding: its packet is there, and a supply still works.
    let pkt = f.packet();
    assert_eq!(pkt.page_request.command, ZX_PAGER_VMO_READ);
    f.supply(0, 1, 3).unwrap();
    f.p.vmo_read(f.vmo, &mut buf, 0).unwrap();
    assert!(buf == pattern(3, 0));
    // Port waits are capped too.
    let t0 = Instant::now();
    assert_eq!(f.p.port_wait(f.port, None).err(), Some(ZX_ERR_TIMED_OUT));
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn overdue_requests_name_the_vmo_and_offset() {
    let f = Fixture::new(8);
    assert!(
        f.p.overdue_request(Duration::ZERO).is_none(),
        "no request yet"
    );
    let (tx, rx) = mpsc::channel();
    let (p, vmo) = (f.p.clone(), f.vmo);
    thread::spawn(move || {
        let mut buf = vec![0u8; 2 * PS];
        tx.send(p.vmo_read(vmo, &mut buf, 5 * P)).unwrap();
    });
    let pkt = f.packet();
    thread::sleep(Duration::from_millis(50));
    let r =
        f.p.overdue_request(Duration::from_millis(40))
            .expect("the read's request is overdue");
    assert_eq!(r.vmo_koid, f.p.vmo_object(f.vmo).unwrap().koid());
    assert_eq!((r.offset, r.len), (5 * P, 2 * P));
    assert_eq!(
        (pkt.page_request.offset, pkt.page_request.length),
        (5 * P, 2 * P)
    );
    assert_eq!(r.command, ZX_PAGER_VMO_READ);
    assert!(!r.faulting, "a kernel call waits, not a fault");
    assert!(r.waited >= Duration::from_millis(50));
    assert!(f.p.overdue_request(Duration::from_secs(60)).is_none());
    f.supply(5, 2, 1).unwrap();
    rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(f.p.overdue_request(Duration::ZERO).is_none(), "answered");
}

#[test]
fn pager_vmos_list_every_outstanding_request_oldest_first() {
    let f = Fixture::new(8);
    let koid = f.p.vmo_object(f.vmo).unwrap().koid();
    let listed = f.p.pager_vmos();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].vmo_koid, listed[0].size), (koid, 8 * P));
    assert!(listed[0].requests.is_empty());
    let (tx, rx) = mpsc::channel();
    for page in [1u64, 6] {
        let (p, vmo, tx) = (f.p.clone(), f.vmo, tx.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; PS];
            tx.send(p.vmo_read(vmo, &mut buf, page * P)).unwrap();
        });
        // The second request is raised after the first.
        thread::sleep(Duration::from_millis(30));
    }
    let requests = &f.p.pager_vmos()[0].requests;
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0].offset, requests[1].offset), (P, 6 * P));
    assert!(requests[0].waited >= requests[1].waited);
    f.supply(0, 8, 1).unwrap();
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    }
    assert!(f.p.pager_vmos()[0].requests.is_empty(), "answered");
}

#[test]
fn closing_the_port_fails_outstanding_requests_but_later_ones_wait_for_a_supply() {
    let f = Fixture::new(4);
    let (tx, rx) = mpsc::channel();
    let (p, vmo) = (f.p.clone(), f.vmo);
    let reader = move |page: u64, tx: mpsc::Sender<_>| {
        let p = p.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; PS];
            let r = p.vmo_read(vmo, &mut buf, page * P);
            tx.send((r, buf)).unwrap();
        });
    };
    reader(0, tx.clone());
    f.packet();
    f.p.handle_close(f.port).unwrap();
    let (r, _) = rx.recv_timeout(Duration::from_secs(5)).expect("woken");
    assert_eq!(
        r.err(),
        Some(ZX_ERR_BAD_STATE),
        "outstanding when the port died"
    );
    // The VMO stays attached: a later reader waits in the dead port, and a supply made
    // without reading any packet releases it (Zircon's ClosePortTest).
    reader(1, tx);
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "it waits"
    );
    f.supply(1, 1, 7).unwrap();
    let (r, buf) = rx.recv_timeout(Duration::from_secs(5)).expect("released");
    r.unwrap();
    assert!(buf == pattern(7, 0), "the aux page supplied");
}

/// Detach races a pager that supplies the whole VMO chunk by chunk while readers wait on
/// pages, 40 rounds with the detach at a different moment each time. Every party ends
/// consistently: each supply succeeds or gives `ZX_ERR_BAD_STATE` (and once one has, all later
/// ones do), its aux range is decommitted either way; each reader gets the supplied bytes or
/// `ZX_ERR_BAD_STATE`, never a hang; afterwards the VMO is detached with no page left.
#[test]
fn detach_racing_supply_leaves_every_party_consistent() {
    const PAGES: u64 = 64;
    const CHUNK: u64 = 8;
    let mut refused_at = Vec::new();
    for round in 0..40u64 {
        let f = std::sync::Arc::new(Fixture::new(PAGES));
        let (tx, rx) = mpsc::channel();
        for r in 0..4u64 {
            let (f, tx) = (f.clone(), tx.clone());
            thread::spawn(move || {
                let page = r * 16 + 2;
                let mut buf = vec![0u8; 4 * PS];
                let res = f.p.vmo_read(f.vmo, &mut buf, page * P);
                tx.send(("reader", page, res, buf)).unwrap();
            });
        }
        let supplier = {
            let f = f.clone();
            thread::spawn(move || {
                let mut results = Vec::new();
                for chunk in 0..PAGES / CHUNK {
                    let aux = f.aux(CHUNK, chunk as u8);
                    let r = f.p.pager_supply_pages(
                        f.pager,
                        f.vmo,
                        chunk * CHUNK * P,
                        CHUNK * P,
                        aux,
                        0,
                    );
                    let left = f.committed(aux);
                    f.p.handle_close(aux).unwrap();
                    results.push((r, left));
                }
                results
            })
        };
        thread::sleep(Duration::from_micros(round * 3));
        f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
        let results = supplier.join().expect("the supplier");
        let mut detached = false;
        for (chunk, (r, left)) in results.iter().enumerate() {
            assert_eq!(
                *left, 0,
                "round {round} chunk {chunk}: aux range left committed"
            );
            match r {
                Ok(()) => assert!(!detached, "round {round}: a supply after a refused one"),
                Err(s) => {
                    assert_eq!(*s, ZX_ERR_BAD_STATE, "round {round} chunk {chunk}");
                    detached = true;
                }
            }
        }
        for _ in 0..4 {
            let (_, page, res, buf) = rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("round {round}: a reader hangs"));
            match res {
                Ok(()) => {
                    for i in 0..4 {
                        let p = page + i;
                        let want = pattern((p / CHUNK) as u8, p % CHUNK);
                        assert!(
                            buf[i as usize * PS..][..PS] == want[..],
                            "round {round}: page {p} has the wrong bytes"
                        );
                    }
                }
                Err(s) => assert_eq!(s, ZX_ERR_BAD_STATE, "round {round}: reader at {page}"),
            }
        }
        let info = f.p.vmo_get_info(f.vmo).unwrap();
        assert_ne!(info.flags & kvmpager::abi::VMO_INFO_FLAG_DETACHED, 0);
        assert_eq!(info.committed_bytes, 0, "round {round}: clean pages kept");
        refused_at.push(results.iter().filter(|(r, _)| r.is_ok()).count());
    }
    eprintln!("supplies done before the detach, per round: {refused_at:?}");
    assert!(
        refused_at.iter().any(|&n| n < (PAGES / CHUNK) as usize),
        "the detach never came before the last supply: no race was tested"
    );
}
