//! The calls of issue 15 at the kernel level: `zx_vmo_set_size` (rights, UNAVAILABLE, the
//! creation-size bound, shrinking under a blocked reader), the `zx_vmo_op_range` hints,
//! `zx_pager_query_dirty_ranges` / `zx_pager_query_vmo_stats` in Zircon's check order, a closed
//! pager keeping its supplied pages while a detach evicts them, and the exception port.

mod kernel_util;

use std::thread;
use std::time::Duration;

use kernel_util::*;
use kvmpager::Process;
use kvmpager::abi::packet::{KVMPAGER_PKT_TYPE_EXCEPTION, ZX_PAGER_VMO_READ};
use kvmpager::abi::pager_op::*;
use kvmpager::abi::rights::*;
use kvmpager::abi::status::*;
use kvmpager::abi::vmo_op::*;
use kvmpager::abi::vmo_options::*;
use kvmpager::abi::{ExceptionPacket, Handle, PAGE_SIZE, ZX_HANDLE_INVALID};

const P: u64 = PAGE_SIZE;

/// A fixture whose pager VMO (`pages` pages) was created with `options`.
fn fixture_with(pages: u64, options: u32) -> Fixture {
    let f = Fixture::new(1);
    let vmo =
        f.p.pager_create_vmo(f.pager, options, f.port, f.key, pages * P)
            .unwrap();
    f.p.handle_close(f.vmo).unwrap();
    // The first VMO's COMPLETE packet.
    let c = f.packet();
    assert_eq!(
        c.page_request.command,
        kvmpager::abi::packet::ZX_PAGER_VMO_COMPLETE
    );
    Fixture { vmo, ..f }
}

fn err<T>(r: Result<T, i32>) -> i32 {
    r.err().unwrap_or(ZX_OK)
}

#[test]
fn set_size_rights_and_bounds_in_zircon_order() {
    let f = fixture_with(4, ZX_VMO_RESIZABLE);
    let p = &f.p;
    assert_eq!(err(p.vmo_set_size(ZX_HANDLE_INVALID, 0)), ZX_ERR_BAD_HANDLE);
    assert_eq!(err(p.vmo_set_size(f.port, 0)), ZX_ERR_WRONG_TYPE);
    let no_write = p
        .handle_duplicate(f.vmo, ZX_RIGHT_READ | ZX_RIGHT_RESIZE)
        .unwrap();
    assert_eq!(err(p.vmo_set_size(no_write, 0)), ZX_ERR_ACCESS_DENIED);
    let no_resize = p.handle_duplicate(f.vmo, ZX_RIGHT_WRITE).unwrap();
    assert_eq!(err(p.vmo_set_size(no_resize, 0)), ZX_ERR_ACCESS_DENIED);
    assert_eq!(err(p.vmo_set_size(f.vmo, 4 * P + 1)), ZX_ERR_OUT_OF_RANGE);
    assert_eq!(err(p.vmo_set_size(f.vmo, u64::MAX)), ZX_ERR_OUT_OF_RANGE);
    // Not resizable: UNAVAILABLE even without RESIZE (Zircon checks RESIZE only then).
    let fixed = Fixture::new(2);
    assert_eq!(err(fixed.p.vmo_set_size(fixed.vmo, P)), ZX_ERR_UNAVAILABLE);
    let anon = p.vmo_create(2 * P, 0).unwrap();
    assert_eq!(err(p.vmo_set_size(anon, P)), ZX_ERR_UNAVAILABLE);
    let anon = p.vmo_create(2 * P, ZX_VMO_RESIZABLE).unwrap();
    p.vmo_write(anon, &[5; 8], P).unwrap();
    p.vmo_set_size(anon, P).unwrap();
    assert_eq!(p.vmo_get_size(anon), Ok(P));
    p.vmo_set_size(anon, 2 * P).unwrap();
    let mut b = [9u8; 8];
    p.vmo_read(anon, &mut b, P).unwrap();
    assert_eq!(b, [0; 8], "a page cut off and grown back reads zero");
    f.no_packet();
}

#[test]
fn shrinking_frees_pages_and_fails_a_blocked_read_with_out_of_range() {
    let f = fixture_with(4, ZX_VMO_RESIZABLE);
    f.supply(0, 2, 3).unwrap();
    assert_eq!(f.committed(f.vmo), 2 * P);
    let (p, vmo) = (f.p.clone(), f.vmo);
    let reader = thread::spawn(move || {
        let mut b = vec![0u8; P as usize];
        p.vmo_read(vmo, &mut b, 3 * P)
    });
    let r = f.packet();
    assert_eq!(
        (
            r.page_request.command,
            r.page_request.offset,
            r.page_request.length
        ),
        (ZX_PAGER_VMO_READ, 3 * P, P)
    );
    f.p.vmo_set_size(f.vmo, P).unwrap();
    assert_eq!(reader.join().unwrap(), Err(ZX_ERR_OUT_OF_RANGE));
    assert_eq!(f.committed(f.vmo), P, "page 1 is freed with the shrink");
    assert_eq!(f.peek(0), pattern(3, 0));
    assert_eq!(f.p.vmo_get_size(f.vmo), Ok(P));
    // Growing back: the pages are absent again, and a supply fills them.
    f.p.vmo_set_size(f.vmo, 4 * P).unwrap();
    f.supply(1, 3, 4).unwrap();
    assert_eq!(f.committed(f.vmo), 4 * P);
    f.no_packet();
}

/// A request straddling the new end: a reader of the pages that stay asks again for them.
#[test]
fn a_reader_below_the_new_end_asks_again() {
    let f = fixture_with(4, ZX_VMO_RESIZABLE);
    let (p, vmo) = (f.p.clone(), f.vmo);
    let wide = thread::spawn({
        let (p, vmo) = (p.clone(), vmo);
        move || p.vmo_read(vmo, &mut vec![0u8; 4 * P as usize], 0)
    });
    let r = f.packet();
    assert_eq!((r.page_request.offset, r.page_request.length), (0, 4 * P));
    let narrow = thread::spawn(move || p.vmo_read(vmo, &mut vec![0u8; P as usize], 0));
    thread::sleep(Duration::from_millis(50));
    f.p.vmo_set_size(f.vmo, 2 * P).unwrap();
    assert_eq!(wide.join().unwrap(), Err(ZX_ERR_OUT_OF_RANGE));
    let again = f.packet();
    assert_eq!(
        (again.page_request.offset, again.page_request.length),
        (0, P)
    );
    f.supply(0, 1, 1).unwrap();
    assert_eq!(narrow.join().unwrap(), Ok(()));
}

#[test]
fn hints_request_only_absent_pages_and_need_read_or_write() {
    let f = Fixture::new(4);
    f.supply(1, 1, 1).unwrap();
    let p = &f.p;
    p.vmo_op_range(f.vmo, ZX_VMO_OP_DONT_NEED, 0, 4 * P)
        .unwrap();
    f.no_packet();
    let (p2, vmo) = (p.clone(), f.vmo);
    let hint = thread::spawn(move || p2.vmo_op_range(vmo, ZX_VMO_OP_PREFETCH, 0, 4 * P));
    let a = f.packet();
    assert_eq!((a.page_request.offset, a.page_request.length), (0, P));
    f.supply(0, 1, 1).unwrap();
    let b = f.packet();
    assert_eq!(
        (b.page_request.offset, b.page_request.length),
        (2 * P, 2 * P)
    );
    f.supply(2, 2, 1).unwrap();
    assert_eq!(hint.join().unwrap(), Ok(()));
    p.vmo_op_range(f.vmo, ZX_VMO_OP_ALWAYS_NEED, 0, 4 * P)
        .unwrap();
    f.no_packet();
    let read_only = p.handle_duplicate(f.vmo, ZX_RIGHT_READ).unwrap();
    p.vmo_op_range(read_only, ZX_VMO_OP_ALWAYS_NEED, 0, P)
        .unwrap();
    assert_eq!(
        err(p.vmo_op_range(read_only, ZX_VMO_OP_COMMIT, 0, P)),
        ZX_ERR_ACCESS_DENIED
    );
    let inspect = p.handle_duplicate(f.vmo, ZX_RIGHT_INSPECT).unwrap();
    assert_eq!(
        err(p.vmo_op_range(inspect, ZX_VMO_OP_DONT_NEED, 0, P)),
        ZX_ERR_ACCESS_DENIED
    );
    assert_eq!(
        err(p.vmo_op_range(f.vmo, ZX_VMO_OP_PREFETCH, 0, 5 * P)),
        ZX_ERR_OUT_OF_RANGE
    );
    assert_eq!(
        err(p.vmo_op_range(f.vmo, ZX_VMO_OP_ZERO, 0, P)),
        ZX_ERR_NOT_SUPPORTED
    );
    // Anonymous VMOs: PREFETCH commits.
    let anon = p.vmo_create(2 * P, 0).unwrap();
    p.vmo_op_range(anon, ZX_VMO_OP_PREFETCH, 0, 2 * P).unwrap();
    assert_eq!(f.committed(anon), 2 * P);
}

#[test]
fn query_dirty_ranges_checks_in_zircon_order_and_finds_runs() {
    let f = Fixture::new(8);
    let p = &f.p;
    f.supply(0, 8, 1).unwrap();
    for page in [1, 2, 5] {
        p.vmo_write(f.vmo, &[7; 4], page * P + 100).unwrap();
    }
    let (ranges, avail) = p
        .pager_query_dirty_ranges(f.pager, f.vmo, 0, 8 * P, 8)
        .unwrap();
    let got: Vec<(u64, u64, u64)> = ranges
        .iter()
        .map(|r| (r.offset, r.length, r.options))
        .collect();
    assert_eq!(got, [(P, 2 * P, 0), (5 * P, P, 0)]);
    assert_eq!(avail, 2);
    let (ranges, avail) = p
        .pager_query_dirty_ranges(f.pager, f.vmo, P + 1, P, 0)
        .unwrap();
    assert_eq!(
        (ranges.len(), avail),
        (0, 1),
        "rounded out to pages; none fit"
    );
    let q = |pager: Handle, vmo: Handle, off, len| {
        err(p.pager_query_dirty_ranges(pager, vmo, off, len, 1))
    };
    assert_eq!(q(ZX_HANDLE_INVALID, f.vmo, 0, P), ZX_ERR_BAD_HANDLE);
    assert_eq!(q(f.port, f.vmo, 0, P), ZX_ERR_WRONG_TYPE);
    let weak_pager = p.handle_duplicate(f.pager, ZX_RIGHT_ATTACH_VMO);
    // Pagers have no DUPLICATE right: as in Zircon, a weaker pager handle cannot be made.
    assert_eq!(weak_pager.err(), Some(ZX_ERR_ACCESS_DENIED));
    let no_read = p.handle_duplicate(f.vmo, ZX_RIGHT_WRITE).unwrap();
    assert_eq!(q(f.pager, no_read, 0, P), ZX_ERR_ACCESS_DENIED);
    let other = Fixture::new(1);
    let anon = p.vmo_create(P, 0).unwrap();
    assert_eq!(q(f.pager, anon, 0, P), ZX_ERR_INVALID_ARGS);
    assert_eq!(q(f.pager, f.vmo, 0, 9 * P), ZX_ERR_OUT_OF_RANGE);
    assert_eq!(q(f.pager, f.vmo, u64::MAX, 2), ZX_ERR_OUT_OF_RANGE);
    drop(other);
    // Writeback cleans; queries keep working after a detach (dirty pages are kept).
    p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_BEGIN, f.vmo, P, P, 0)
        .unwrap();
    p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_END, f.vmo, P, P, 0)
        .unwrap();
    p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    let (ranges, _) = p
        .pager_query_dirty_ranges(f.pager, f.vmo, 0, 8 * P, 8)
        .unwrap();
    let got: Vec<(u64, u64)> = ranges.iter().map(|r| (r.offset, r.length)).collect();
    assert_eq!(got, [(2 * P, P), (5 * P, P)]);
    assert_eq!(
        f.committed(f.vmo),
        2 * P,
        "the detach kept only the dirty pages"
    );
}

#[test]
fn vmo_stats_say_modified_until_reset() {
    let f = Fixture::new(2);
    let p = &f.p;
    let stats = |opts, size| p.pager_query_vmo_stats(f.pager, f.vmo, opts, size);
    assert_eq!(stats(0, 4).unwrap().modified, 0);
    f.supply(0, 2, 1).unwrap();
    assert_eq!(
        stats(0, 4).unwrap().modified,
        0,
        "a supply is not a modification"
    );
    p.vmo_write(f.vmo, &[1], 0).unwrap();
    assert_eq!(stats(0, 4).unwrap().modified, ZX_PAGER_VMO_STATS_MODIFIED);
    assert_eq!(stats(ZX_PAGER_RESET_VMO_STATS, 4).unwrap().modified, 1);
    assert_eq!(stats(0, 64).unwrap().modified, 0);
    // BUFFER_TOO_SMALL comes before the options check, both after the handles.
    assert_eq!(err(stats(2, 3)), ZX_ERR_BUFFER_TOO_SMALL);
    assert_eq!(err(stats(2, 4)), ZX_ERR_INVALID_ARGS);
    assert_eq!(
        err(p.pager_query_vmo_stats(f.port, f.vmo, 2, 0)),
        ZX_ERR_WRONG_TYPE
    );
}

/// ClosePagerTest vs DecommitOnDetachTest.
#[test]
fn closing_the_pager_keeps_supplied_pages_a_detach_evicts_them() {
    let f = Fixture::new(2);
    f.supply(0, 1, 6).unwrap();
    f.p.handle_close(f.pager).unwrap();
    let mut b = vec![0u8; P as usize];
    f.p.vmo_read(f.vmo, &mut b, 0).unwrap();
    assert_eq!(b, pattern(6, 0));
    assert_eq!(f.committed(f.vmo), P);
    assert_eq!(err(f.p.vmo_read(f.vmo, &mut b, P)), ZX_ERR_BAD_STATE);
    f.no_packet();
    let g = Fixture::new(2);
    g.supply(0, 1, 6).unwrap();
    g.p.pager_detach_vmo(g.pager, g.vmo).unwrap();
    assert_eq!(g.committed(g.vmo), 0);
    assert_eq!(err(g.p.vmo_read(g.vmo, &mut b, 0)), ZX_ERR_BAD_STATE);
}

#[test]
fn exception_packets_go_to_the_live_port_with_its_key() {
    let p = Process::new();
    let e = ExceptionPacket {
        status: ZX_ERR_IO,
        vcpu: 1,
        address: 0x1000,
        ..Default::default()
    };
    assert!(!p.has_exception_port());
    assert!(!p.deliver_exception(e));
    let port = p.port_create(0).unwrap();
    let read_only = p.handle_duplicate(port, ZX_RIGHT_READ).unwrap();
    assert_eq!(
        err(p.set_exception_port(read_only, 1)),
        ZX_ERR_ACCESS_DENIED
    );
    let vmo = p.vmo_create(P, 0).unwrap();
    assert_eq!(err(p.set_exception_port(vmo, 1)), ZX_ERR_WRONG_TYPE);
    p.set_exception_port(port, 0x77).unwrap();
    assert!(p.has_exception_port());
    assert!(p.deliver_exception(e));
    let got = p.port_wait(port, None).unwrap();
    assert_eq!(got.packet_type, KVMPAGER_PKT_TYPE_EXCEPTION);
    let got = ExceptionPacket::from_port_packet(&got).unwrap();
    assert_eq!(got, ExceptionPacket { key: 0x77, ..e });
    p.set_exception_port(ZX_HANDLE_INVALID, 0).unwrap();
    assert!(!p.deliver_exception(e));
    // A port whose handles are all closed takes no packets.
    p.set_exception_port(port, 1).unwrap();
    p.handle_close(port).unwrap();
    p.handle_close(read_only).unwrap();
    assert!(!p.has_exception_port());
    assert!(!p.deliver_exception(e));
}
