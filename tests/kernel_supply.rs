//! What a successful `ZX_PAGER_SUPPLY_PAGES` does, sentence by sentence
//! (shared/spec/zx_pager_vmo_op.md), and proof that pages move rather than being copied.

mod kernel_util;

use kernel_util::*;
use kvmpager::abi::packet::*;
use kvmpager::abi::status::*;
use kvmpager::abi::vmo_options::KVMPAGER_VMO_HUGE;
use kvmpager::abi::{HUGE_PAGE_SIZE, PAGE_SIZE, PageRequest};
use kvmpager::vmo::SupplyStrategy;

const P: u64 = PAGE_SIZE;

/// "Moves the pages of aux_vmo in [aux_offset, +length) to pager_vmo in [offset, +length)."
#[test]
fn pages_arrive_at_the_right_offsets() {
    let f = Fixture::new(8);
    let aux = f.aux(6, 0x11);
    f.p.pager_supply_pages(f.pager, f.vmo, 3 * P, 3 * P, aux, 2 * P)
        .unwrap();
    for i in 0..3 {
        assert_eq!(f.peek(3 + i), pattern(0x11, 2 + i), "pager page {}", 3 + i);
    }
    let vmo = f.p.vmo_object(f.vmo).unwrap();
    for page in [0, 1, 2, 6, 7] {
        assert!(!vmo.is_present(page), "page {page} must stay absent");
    }
    // The supplied pages read back through zx_vmo_read without any request.
    let mut buf = vec![0; 3 * PS];
    f.p.vmo_read(f.vmo, &mut buf, 3 * P).unwrap();
    assert_eq!(&buf[PS..2 * PS], &pattern(0x11, 3)[..]);
    f.no_packet();
}

/// "Any pages in pager_vmo in the specified range will not be replaced; instead the
/// corresponding pages from aux_vmo will be freed."
#[test]
fn present_pages_are_not_replaced_and_their_aux_pages_are_freed() {
    let f = Fixture::new(4);
    f.supply(1, 1, 0xaa).unwrap();
    let aux = f.aux(4, 0xbb);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 4 * P, aux, 0)
        .unwrap();
    assert_eq!(f.peek(1), pattern(0xaa, 0), "present page kept");
    for page in [0, 2, 3] {
        assert_eq!(f.peek(page), pattern(0xbb, page));
    }
    assert_eq!(
        f.committed(aux),
        0,
        "the aux page of the kept page was freed too"
    );
    let stats = f.p.counters();
    assert_eq!(stats.pages_skipped, 1);
    assert_eq!(
        stats.pages_supplied, 4,
        "1 + 3 pages inserted over two supplies"
    );
}

/// "After this operation, the specified region of aux_vmo will be fully decommitted."
#[test]
fn aux_range_is_decommitted_and_the_rest_of_aux_is_kept() {
    let f = Fixture::new(4);
    let aux = f.aux(4, 0x33);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * P, aux, P)
        .unwrap();
    assert_eq!(
        f.committed(aux),
        2 * P,
        "pages 0 and 3 of aux stay committed"
    );
    let mut buf = vec![0; 4 * PS];
    f.p.vmo_read(aux, &mut buf, 0).unwrap();
    assert_eq!(&buf[..PS], &pattern(0x33, 0)[..]);
    assert!(
        buf[PS..3 * PS].iter().all(|&b| b == 0),
        "moved pages read as zero"
    );
    assert_eq!(&buf[3 * PS..], &pattern(0x33, 3)[..]);
}

/// Pages move, they are not copied: the physical frame of an aux page before the supply is the
/// frame of the pager VMO page after it.
#[test]
fn zero_copy_the_physical_frame_moves() {
    let f = Fixture::new(4);
    let aux = f.aux(4, 0x5a);
    let aux_obj = f.p.vmo_object(aux).unwrap();
    let before: Vec<u64> = (0..4)
        .map(|i| {
            aux_obj
                .pfn(i * P)
                .expect("pagemap PFNs are readable as root")
        })
        .collect();
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 4 * P, aux, 0)
        .unwrap();
    let vmo = f.p.vmo_object(f.vmo).unwrap();
    for (i, pfn) in before.iter().enumerate() {
        assert_eq!(vmo.pfn(i as u64 * P), Some(*pfn), "page {i} kept its frame");
        assert_eq!(aux_obj.pfn(i as u64 * P), None, "aux page {i} is gone");
        assert_eq!(f.peek(i as u64), pattern(0x5a, i as u64));
    }
    let s = f.p.counters();
    assert_eq!((s.bytes_moved, s.bytes_copied), (4 * P, 0));
    assert_eq!(s.move_ioctls, 1, "one contiguous run, one UFFDIO_MOVE");
}

/// The copy path (forced) gives the same contents through UFFDIO_COPY, on new frames.
#[test]
fn forced_copy_fallback_copies_and_counts() {
    let f = Fixture::new(4);
    f.p.set_supply_strategy(SupplyStrategy::Copy);
    let aux = f.aux(4, 0x77);
    let before = f.p.vmo_object(aux).unwrap().pfn(0).unwrap();
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 4 * P, aux, 0)
        .unwrap();
    for i in 0..4 {
        assert_eq!(f.peek(i), pattern(0x77, i));
    }
    assert_ne!(f.p.vmo_object(f.vmo).unwrap().pfn(0), Some(before));
    assert_eq!(f.committed(aux), 0, "aux decommitted on the copy path too");
    let s = f.p.counters();
    assert_eq!((s.bytes_moved, s.bytes_copied), (0, 4 * P));
}

/// Runs split at present pages: one move per run of absent pages.
#[test]
fn runs_of_absent_pages_move_in_one_ioctl_each() {
    let f = Fixture::new(10);
    f.supply(4, 1, 1).unwrap();
    let before = f.p.counters().move_ioctls;
    let aux = f.aux(10, 2);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 10 * P, aux, 0)
        .unwrap();
    assert_eq!(f.p.counters().move_ioctls - before, 2, "[0,4) and [5,10)");
}

/// 2 MiB-aligned runs from a huge-page aux VMO move as whole huge pages.
#[test]
fn huge_page_runs_move_whole() {
    let pages = 2 * HUGE_PAGE_SIZE / P;
    let f = Fixture::new(pages);
    let aux =
        f.p.vmo_create(2 * HUGE_PAGE_SIZE, KVMPAGER_VMO_HUGE)
            .unwrap();
    f.p.vmo_op_range(
        aux,
        kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT,
        0,
        2 * HUGE_PAGE_SIZE,
    )
    .unwrap();
    f.p.vmo_write(aux, b"first", 0).unwrap();
    f.p.vmo_write(aux, b"last", 2 * HUGE_PAGE_SIZE - 4).unwrap();
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * HUGE_PAGE_SIZE, aux, 0)
        .unwrap();
    assert_eq!(&f.peek(0)[..5], b"first");
    assert_eq!(&f.peek(pages - 1)[PS - 4..], b"last");
    let s = f.p.counters();
    assert_eq!(s.bytes_moved, 2 * HUGE_PAGE_SIZE);
    assert_eq!(s.move_ioctls, 1);
    let vmo = f.p.vmo_object(f.vmo).unwrap();
    let addr = vmo.host_addr();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let huge = anon_huge_kb(&smaps, addr).unwrap_or(0);
    println!("destination AnonHugePages: {huge} kB");
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !thp.contains("[never]") && !thp.is_empty() {
        assert!(
            huge >= 2048,
            "the host has THP, so the runs should arrive as huge pages"
        );
    }
}

fn anon_huge_kb(smaps: &str, addr: u64) -> Option<u64> {
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((start, end)) = range.split_once('-')
            && let (Ok(s), Ok(e)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            inside = s <= addr && addr < e;
        } else if inside && let Some(v) = line.strip_prefix("AnonHugePages:") {
            return v.trim().trim_end_matches(" kB").trim().parse().ok();
        }
    }
    None
}

/// PresupplyTest: supplying before any access means no request is ever generated.
#[test]
fn presupplied_pages_raise_no_request() {
    let f = Fixture::new(2);
    f.supply(0, 2, 9).unwrap();
    let mut buf = vec![0; 2 * PS];
    f.p.vmo_read(f.vmo, &mut buf, 0).unwrap();
    assert_eq!(&buf[PS..], &pattern(9, 1)[..]);
    f.no_packet();
    assert_eq!(f.p.counters().requests, 0);
}

/// OverlapSupplyTest: page 0 from one aux, then pages 0-1 from another; page 0 keeps the first.
#[test]
fn overlapping_supplies_keep_the_first_page() {
    let f = Fixture::new(2);
    f.supply(0, 1, 0x01).unwrap();
    f.supply(0, 2, 0x02).unwrap();
    assert_eq!(f.peek(0), pattern(0x01, 0));
    assert_eq!(f.peek(1), pattern(0x02, 1));
    f.no_packet();
}

/// A supply into a range where everything is present frees the whole aux range.
#[test]
fn redundant_supply_is_ok_and_frees_aux() {
    let f = Fixture::new(3);
    f.supply(0, 3, 1).unwrap();
    let aux = f.aux(3, 2);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 3 * P, aux, 0)
        .unwrap();
    assert_eq!(f.committed(aux), 0);
    for i in 0..3 {
        assert_eq!(f.peek(i), pattern(1, i));
    }
}

/// DetachPageCompleteTest: a detach gives exactly one COMPLETE (key, offset 0, length 0).
#[test]
fn detach_sends_one_complete_packet() {
    let f = Fixture::new(1);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    let pkt = f.packet();
    assert_eq!(pkt.key, f.key);
    assert_eq!(pkt.packet_type, ZX_PKT_TYPE_PAGE_REQUEST);
    assert_eq!(pkt.status, ZX_OK);
    let expect = PageRequest {
        command: ZX_PAGER_VMO_COMPLETE,
        ..Default::default()
    };
    assert_eq!(pkt.page_request, expect);
    f.no_packet();
}

/// ClosePageCompleteTest: closing the VMO's last handle gives a COMPLETE packet.
#[test]
fn closing_the_last_vmo_handle_sends_complete() {
    let f = Fixture::new(1);
    f.p.handle_close(f.vmo).unwrap();
    assert_eq!(f.packet().page_request.command, ZX_PAGER_VMO_COMPLETE);
    f.no_packet();
}

/// DetachClosePagerTest / closing the pager: no COMPLETE, and a queued one is withdrawn.
#[test]
fn closing_the_pager_withdraws_complete() {
    let f = Fixture::new(1);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    f.p.handle_close(f.pager).unwrap();
    f.no_packet();
    let f = Fixture::new(1);
    f.p.handle_close(f.pager).unwrap();
    f.no_packet();
    assert_eq!(
        f.p.vmo_read(f.vmo, &mut [0; 8], 0).err(),
        Some(ZX_ERR_BAD_STATE)
    );
}

/// DecommitOnDetachTest: after a detach the VMO's pages are gone and accesses fail.
#[test]
fn detach_evicts_clean_pages_and_accesses_fail() {
    let f = Fixture::new(2);
    f.supply(0, 2, 4).unwrap();
    assert_eq!(f.committed(f.vmo), 2 * P);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(f.committed(f.vmo), 0);
    assert_eq!(
        f.p.vmo_read(f.vmo, &mut [0; 8], 0).err(),
        Some(ZX_ERR_BAD_STATE)
    );
    assert_eq!(f.p.vmo_write(f.vmo, &[1], 0).err(), Some(ZX_ERR_BAD_STATE));
}

/// A pager VMO refuses DECOMMIT; an anonymous VMO commits and decommits.
#[test]
fn commit_and_decommit() {
    let f = Fixture::new(2);
    let op = kvmpager::abi::vmo_op::ZX_VMO_OP_DECOMMIT;
    assert_eq!(
        f.p.vmo_op_range(f.vmo, op, 0, P).err(),
        Some(ZX_ERR_NOT_SUPPORTED)
    );
    let vmo = f.p.vmo_create(4 * P, 0).unwrap();
    assert_eq!(f.committed(vmo), 0, "host memory is reserved lazily");
    f.p.vmo_op_range(vmo, kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT, P, 2 * P)
        .unwrap();
    assert_eq!(f.committed(vmo), 2 * P);
    f.p.vmo_op_range(vmo, op, 0, 4 * P).unwrap();
    assert_eq!(f.committed(vmo), 0);
    assert_eq!(
        f.p.vmo_op_range(vmo, 77, 0, P).err(),
        Some(ZX_ERR_NOT_SUPPORTED)
    );
}

/// File bytes go straight into an aux VMO, move into the pager VMO, and present pages write
/// back out to a file (the host pagers' and snapshots' path).
#[test]
fn file_bytes_move_in_and_present_pages_write_out() {
    use std::io::{Read, Seek, Write};
    let f = Fixture::new(4);
    let mut file = tempfile_in_target("file_io");
    let data: Vec<u8> = (0..3 * PS + 100).map(|i| (i % 251) as u8).collect();
    file.write_all(&data).unwrap();
    let aux = f.p.vmo_create(4 * P, 0).unwrap();
    let aux_obj = f.p.vmo_object(aux).unwrap();
    aux_obj.read_file(0, 4 * P, &file, 0).unwrap();
    assert_eq!(f.committed(aux), 4 * P);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 4 * P, aux, 0)
        .unwrap();
    let vmo = f.p.vmo_object(f.vmo).unwrap();
    let mut all = vec![0; 4 * PS];
    vmo.peek(0, &mut all).unwrap();
    assert_eq!(&all[..data.len()], &data[..]);
    assert!(
        all[data.len()..].iter().all(|&b| b == 0),
        "past EOF reads as zero"
    );
    assert_eq!(vmo.present_runs(), vec![0..4]);
    let mut out = tempfile_in_target("file_io_out");
    vmo.write_file(P, 2 * P, &out, 0).unwrap();
    let mut back = Vec::new();
    out.rewind().unwrap();
    out.read_to_end(&mut back).unwrap();
    assert_eq!(&back[..], &data[PS..3 * PS]);
    // Absent pages are refused, not requested.
    let g = Fixture::new(2);
    let gv = g.p.vmo_object(g.vmo).unwrap();
    assert_eq!(gv.write_file(0, P, &out, 0).err(), Some(ZX_ERR_BAD_STATE));
    g.no_packet();
}

fn tempfile_in_target(name: &str) -> std::fs::File {
    let dir = std::env::temp_dir().join(format!("kvmpager-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(name))
        .unwrap()
}

/// The remap strategy: whole 2 MiB chunks move by remapping host memory (same frames), the
/// aux VMO keeps a usable empty range, and a thread blocked on a remapped page wakes.
#[test]
fn remap_strategy_moves_frames_and_wakes_faulters() {
    let pages = 2 * HUGE_PAGE_SIZE / P;
    let f = Fixture::new(pages);
    f.p.set_supply_strategy(SupplyStrategy::Remap);
    let aux = f.aux(pages, 0x3c);
    let aux_obj = f.p.vmo_object(aux).unwrap();
    let pfn = aux_obj.pfn(5 * P).unwrap();
    let mapping = f.p.vmar_map(f.vmo, 0, 2 * HUGE_PAGE_SIZE, false).unwrap();
    let addr = mapping.host_addr() + 5 * P;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: the mapping outlives this thread's read (the test waits for it below).
        let v = unsafe { std::ptr::read_volatile(addr as *const u8) };
        tx.send(v).unwrap();
    });
    let pkt = f.packet();
    assert_eq!(
        (pkt.page_request.offset, pkt.page_request.length),
        (5 * P, P)
    );
    f.p.pager_supply_pages(f.pager, f.vmo, 0, 2 * HUGE_PAGE_SIZE, aux, 0)
        .unwrap();
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("faulter woke");
    assert_eq!(got, pattern(0x3c, 5)[0]);
    assert_eq!(
        f.p.vmo_object(f.vmo).unwrap().pfn(5 * P),
        Some(pfn),
        "same frame"
    );
    for page in [0, 511, 512, pages - 1] {
        assert_eq!(f.peek(page), pattern(0x3c, page));
    }
    let s = f.p.counters();
    assert_eq!((s.bytes_remapped, s.bytes_copied), (2 * HUGE_PAGE_SIZE, 0));
    assert_eq!(f.committed(aux), 0);
    // The aux VMO still works: its range is empty, writable, and supplies again.
    f.p.vmo_write(aux, b"again", 0).unwrap();
    let mut buf = [0; 5];
    f.p.vmo_read(aux, &mut buf, 0).unwrap();
    assert_eq!(&buf, b"again");
    drop(mapping);
    f.no_packet();
}

/// The copy strategy over large runs, from huge-page and small-page aux VMOs, lands exactly
/// the aux bytes (regression: large copies used to land wrong bytes).
#[test]
fn copy_strategy_large_runs_land_exact_bytes() {
    for huge in [false, true] {
        let pages = 2 * HUGE_PAGE_SIZE / P;
        let f = Fixture::new(pages);
        f.p.set_supply_strategy(SupplyStrategy::Copy);
        let options = if huge { KVMPAGER_VMO_HUGE } else { 0 };
        let aux = f.p.vmo_create(pages * P, options).unwrap();
        for i in 0..pages {
            f.p.vmo_write(aux, &pattern(0x42, i), i * P).unwrap();
        }
        f.p.pager_supply_pages(f.pager, f.vmo, 0, pages * P, aux, 0)
            .unwrap();
        for i in 0..pages {
            assert_eq!(f.peek(i), pattern(0x42, i), "huge={huge} page {i}");
        }
        assert_aux_really_empty(&f, aux, pages);
    }
}

/// The aux range is decommitted in the host too, not just in the bookkeeping: committing it
/// again yields zero pages (a reused aux VMO must never leak old bytes into a later supply).
fn assert_aux_really_empty(f: &Fixture, aux: kvmpager::abi::Handle, pages: u64) {
    let obj = f.p.vmo_object(aux).unwrap();
    for i in 0..pages {
        assert_eq!(obj.pfn(i * P), None, "aux page {i} still holds a host page");
    }
    f.p.vmo_op_range(aux, kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT, 0, pages * P)
        .unwrap();
    let mut buf = vec![0xffu8; PS];
    for i in 0..pages {
        f.p.vmo_read(aux, &mut buf, i * P).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "aux page {i} kept old bytes");
    }
}

/// Every strategy, and a supply whose destination is partly present, leaves the aux range
/// empty in the host.
#[test]
fn every_strategy_empties_the_aux_range_in_the_host() {
    for strategy in [
        SupplyStrategy::Move,
        SupplyStrategy::Remap,
        SupplyStrategy::Copy,
    ] {
        let pages = HUGE_PAGE_SIZE / P;
        let f = Fixture::new(pages);
        f.p.set_supply_strategy(strategy);
        f.supply(3, 2, 0x10).unwrap();
        let aux = f.aux(pages, 0x20);
        f.p.pager_supply_pages(f.pager, f.vmo, 0, pages * P, aux, 0)
            .unwrap();
        assert_eq!(
            f.peek(3),
            pattern(0x10, 0),
            "{strategy:?}: present page kept"
        );
        assert_eq!(f.peek(5), pattern(0x20, 5), "{strategy:?}");
        assert_aux_really_empty(&f, aux, pages);
    }
}

/// The default strategy remaps whole 2 MiB chunks of a small-page aux, moves the tail and
/// every run of a huge-page aux, and always lands the aux bytes.
#[test]
fn auto_strategy_picks_remap_for_small_page_chunks_and_move_otherwise() {
    let chunk = HUGE_PAGE_SIZE / P;
    let f = Fixture::new(4 * chunk);
    assert_eq!(SupplyStrategy::default(), SupplyStrategy::Auto);
    // Small-page aux: one whole chunk plus 3 pages.
    let aux = f.aux(chunk + 3, 0x61);
    f.p.pager_supply_pages(f.pager, f.vmo, 0, (chunk + 3) * P, aux, 0)
        .unwrap();
    let s = f.p.counters();
    assert_eq!((s.bytes_remapped, s.bytes_moved), (HUGE_PAGE_SIZE, 3 * P));
    // Huge-page aux: the chunk moves whole.
    let huge = f.p.vmo_create(HUGE_PAGE_SIZE, KVMPAGER_VMO_HUGE).unwrap();
    for i in 0..chunk {
        f.p.vmo_write(huge, &pattern(0x62, i), i * P).unwrap();
    }
    f.p.pager_supply_pages(f.pager, f.vmo, 2 * HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, huge, 0)
        .unwrap();
    let s = f.p.counters();
    assert_eq!(
        (s.bytes_remapped, s.bytes_moved),
        (HUGE_PAGE_SIZE, 3 * P + HUGE_PAGE_SIZE)
    );
    for page in [0, chunk - 1, chunk, chunk + 2] {
        assert_eq!(f.peek(page), pattern(0x61, page));
    }
    for i in [0, chunk - 1] {
        assert_eq!(f.peek(2 * chunk + i), pattern(0x62, i));
    }
    assert_eq!(s.bytes_copied, 0);
}

/// The counted variant returns exactly the pages it newly inserted and checks like the rest.
#[test]
fn counted_supply_reports_newly_inserted_pages() {
    let f = Fixture::new(8);
    f.supply(2, 2, 1).unwrap();
    let aux = f.aux(8, 2);
    let n =
        f.p.pager_supply_pages_counted(f.pager, f.vmo, 0, 8 * P, aux, 0);
    assert_eq!(n, Ok(6), "8 pages offered, 2 already present");
    let aux = f.aux(8, 3);
    assert_eq!(
        f.p.pager_supply_pages_counted(f.pager, f.vmo, 0, 8 * P, aux, 0),
        Ok(0)
    );
    assert_eq!(
        f.p.pager_supply_pages_counted(f.pager, f.vmo, 0, 8 * P, aux, 1)
            .err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
}

/// Detach evicts clean pages, but never pages a guest may have written through a writable
/// mapping (those writes are not tracked): such a VMO keeps its bytes.
#[test]
fn detach_keeps_pages_of_a_vmo_mapped_writable() {
    let f = Fixture::new(2);
    f.supply(0, 2, 0x44).unwrap();
    let m = f.p.vmar_map(f.vmo, 0, 2 * P, true).unwrap();
    // SAFETY: page 1 of the mapping is present (supplied above) and the mapping is alive.
    unsafe { std::ptr::write_volatile((m.host_addr() + P) as *mut u8, 0xee) };
    drop(m);
    f.p.pager_detach_vmo(f.pager, f.vmo).unwrap();
    assert_eq!(f.committed(f.vmo), 2 * P, "nothing evicted");
    assert_eq!(f.peek(1)[0], 0xee, "the write through the mapping survived");
    // A VMO mapped read-only only has clean pages: they go.
    let g = Fixture::new(2);
    g.supply(0, 2, 0x45).unwrap();
    drop(g.p.vmar_map(g.vmo, 0, 2 * P, false).unwrap());
    g.p.pager_detach_vmo(g.pager, g.vmo).unwrap();
    assert_eq!(g.committed(g.vmo), 0);
}

/// A TRAP_DIRTY pager VMO with write-trapping: `p` (the process), pager, port, VMO of `pages`.
fn trap_dirty_fixture(pages: u64) -> Fixture {
    let p = kvmpager::Process::new();
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    let key = 0xd1e7;
    let options = kvmpager::abi::vmo_options::ZX_VMO_TRAP_DIRTY;
    let vmo = p
        .pager_create_vmo(pager, options, port, key, pages * P)
        .unwrap();
    Fixture {
        p,
        pager,
        port,
        vmo,
        key,
    }
}

/// Writes one byte through `addr` on another thread; the receiver gets () when it is done.
fn write_on_thread(addr: u64, value: u8) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: the caller keeps the mapping alive until the write is reported done.
        unsafe { std::ptr::write_volatile(addr as *mut u8, value) };
        let _ = tx.send(());
    });
    rx
}

/// SimpleTrapDirty through a mapping: reads never trap; the first write to a clean page
/// raises exactly one DIRTY request and waits; `op_range(DIRTY)` lets it through; after
/// writeback the page is clean again and the next write traps again.
#[test]
fn trap_dirty_writes_through_a_mapping_raise_dirty_requests() {
    use kvmpager::abi::pager_op::{
        ZX_PAGER_OP_DIRTY, ZX_PAGER_OP_WRITEBACK_BEGIN, ZX_PAGER_OP_WRITEBACK_END,
    };
    use std::time::Duration;
    let f = trap_dirty_fixture(2);
    f.supply(0, 2, 0x70).unwrap();
    let m = f.p.vmar_map(f.vmo, 0, 2 * P, true).unwrap();
    // SAFETY: page 0 is present and the mapping lives until the end of the test.
    let v = unsafe { std::ptr::read_volatile(m.host_addr() as *const u8) };
    assert_eq!(v, pattern(0x70, 0)[0]);
    f.no_packet();
    for round in 0..2 {
        let done = write_on_thread(m.host_addr() + P + 5, 0xab);
        let pkt = f.packet();
        assert_eq!(
            pkt.page_request.command, ZX_PAGER_VMO_DIRTY,
            "round {round}"
        );
        assert_eq!((pkt.page_request.offset, pkt.page_request.length), (P, P));
        assert!(
            done.recv_timeout(Duration::from_millis(100)).is_err(),
            "write waited"
        );
        f.p.pager_op_range(f.pager, ZX_PAGER_OP_DIRTY, f.vmo, P, P, 0)
            .unwrap();
        done.recv_timeout(Duration::from_secs(5))
            .expect("write went through");
        assert_eq!(f.peek(1)[5], 0xab);
        f.no_packet();
        // Writeback cleans the page; the next round's write traps again.
        f.p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_BEGIN, f.vmo, P, P, 0)
            .unwrap();
        f.p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_END, f.vmo, P, P, 0)
            .unwrap();
    }
    // A write during writeback keeps the page dirty: no request, and WRITEBACK_END does not
    // clean it, so the following write needs no request either.
    let done = write_on_thread(m.host_addr() + P, 1);
    f.packet();
    f.p.pager_op_range(f.pager, ZX_PAGER_OP_DIRTY, f.vmo, P, P, 0)
        .unwrap();
    done.recv_timeout(Duration::from_secs(5)).unwrap();
    f.p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_BEGIN, f.vmo, P, P, 0)
        .unwrap();
    write_on_thread(m.host_addr() + P, 2)
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    f.p.pager_op_range(f.pager, ZX_PAGER_OP_WRITEBACK_END, f.vmo, P, P, 0)
        .unwrap();
    write_on_thread(m.host_addr() + P, 3)
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    f.no_packet();
    assert_eq!(f.peek(1)[0], 3);
    drop(m);
}

/// Without TRAP_DIRTY a write through a mapping raises nothing; with it, a FAIL of the DIRTY
/// request reports the blocked writer as a fatal fault.
#[test]
fn trap_dirty_fail_reports_the_blocked_writer() {
    use kvmpager::abi::pager_op::{ZX_PAGER_OP_DIRTY, ZX_PAGER_OP_FAIL};
    use std::time::Duration;
    let plain = Fixture::new(1);
    plain.supply(0, 1, 1).unwrap();
    let pm = plain.p.vmar_map(plain.vmo, 0, P, true).unwrap();
    write_on_thread(pm.host_addr(), 9)
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    plain.no_packet();

    let f = trap_dirty_fixture(1);
    let (tx, rx) = std::sync::mpsc::channel();
    f.p.set_fatal_fault_sink(std::sync::Arc::new(move |ff| {
        let _ = tx.send(ff);
    }));
    f.supply(0, 1, 2).unwrap();
    let m = f.p.vmar_map(f.vmo, 0, P, true).unwrap();
    let done = write_on_thread(m.host_addr() + 7, 0x55);
    assert_eq!(f.packet().page_request.command, ZX_PAGER_VMO_DIRTY);
    let io = ZX_ERR_IO as i64 as u64;
    f.p.pager_op_range(f.pager, ZX_PAGER_OP_FAIL, f.vmo, 0, P, io)
        .unwrap();
    let ff = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("fatal fault reported");
    assert_eq!((ff.status, ff.vmo_offset), (ZX_ERR_IO, 0));
    assert!(
        done.recv_timeout(Duration::from_millis(100)).is_err(),
        "writer still blocked"
    );
    // Dirtying the page releases it, so the test ends.
    f.p.pager_op_range(f.pager, ZX_PAGER_OP_DIRTY, f.vmo, 0, P, 0)
        .unwrap();
    done.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(f.peek(0)[7], 0x55);
}
