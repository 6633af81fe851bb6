//! Pager VMOs over one shared file (`Process::pager_create_vmo_shared`): a touch of a page the
//! file holds is a minor fault and a READ request in each VMO, the shared supply maps the
//! file's one physical page into every VMO, a write forks a private page and never reaches
//! the file, and holes become private zero pages without growing the file.

mod kernel_util;

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use kernel_util::*;
use kvmpager::Process;
use kvmpager::abi::packet::ZX_PAGER_VMO_READ;
use kvmpager::abi::status::*;
use kvmpager::abi::{Handle, PAGE_SIZE};
use kvmpager::vmo::Vmo;

const P: u64 = PAGE_SIZE;
/// Pages of the shared file; pages `0..DATA` hold data, the rest are holes.
const PAGES: u64 = 8;
const DATA: u64 = 3;

/// A memfd of `PAGES` pages whose first `DATA` pages hold `pattern(0x42, i)`.
fn shared_file() -> File {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"kvmpager-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(PAGES * P).unwrap();
    for i in 0..DATA {
        file.write_all_at(&pattern(0x42, i), i * P).unwrap();
    }
    file
}

/// A read-only reopen of `file` (what a VM maps: it can never write the file).
fn read_only(file: &File) -> File {
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap()
}

struct Shared {
    p: Arc<Process>,
    pager: Handle,
    port: Handle,
    vmos: Vec<(Handle, Arc<Vmo>)>,
}

/// A process with `n` shared-file pager VMOs over `file`; `None` when the host has no minor
/// faults on shmem.
fn setup(file: &File, n: usize) -> Option<Shared> {
    let p = Process::new();
    let pager = p.pager_create(0).unwrap();
    let port = p.port_create(0).unwrap();
    let mut vmos = Vec::new();
    for key in 0..n as u64 {
        match p.pager_create_vmo_shared(pager, port, key, PAGES * P, read_only(file)) {
            Ok(h) => vmos.push((h, p.vmo_object(h).unwrap())),
            Err(ZX_ERR_NOT_SUPPORTED) => {
                eprintln!("no userfaultfd minor faults on shmem here; skipping");
                return None;
            }
            Err(s) => panic!("pager_create_vmo_shared: {s}"),
        }
    }
    Some(Shared {
        p,
        pager,
        port,
        vmos,
    })
}

/// Reads the first word of `page` of `vmo`'s memory on a new thread (it blocks in a fault
/// until the page is supplied); the word comes back on the receiver.
fn touch(vmo: &Arc<Vmo>, page: u64) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel();
    let vmo = vmo.clone();
    thread::spawn(move || {
        let addr = (vmo.host_addr() + page * P) as *const u64;
        // SAFETY: `addr` is inside the VMO's host memory, mapped while `vmo` lives.
        let w = unsafe { std::ptr::read_volatile(addr) };
        let _ = tx.send(w);
    });
    rx
}

/// Writes `value` into the first word of `page` of `vmo`'s (present) memory.
fn poke(vmo: &Vmo, page: u64, value: u64) {
    let addr = (vmo.host_addr() + page * P) as *mut u64;
    // SAFETY: the page is present (supplied), inside the VMO's live host memory; nothing else
    // accesses it now.
    unsafe { std::ptr::write_volatile(addr, value) };
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

impl Shared {
    /// Expects a READ packet for `page` of the `i`th VMO, then supplies the whole VMO.
    fn serve(&self, i: usize, page: u64) {
        let pkt = self
            .p
            .port_wait(
                self.port,
                Some(std::time::Instant::now() + Duration::from_secs(5)),
            )
            .expect("a page request");
        assert_eq!(pkt.key, i as u64);
        assert_eq!(pkt.page_request.command, ZX_PAGER_VMO_READ);
        assert_eq!(pkt.page_request.offset, page * P);
        let (h, _) = &self.vmos[i];
        let n = self
            .p
            .pager_supply_shared(self.pager, *h, page * P, P, false)
            .unwrap();
        assert_eq!(n, 1);
    }
}

#[test]
fn two_vmos_share_the_files_page_until_one_writes_it() {
    let file = shared_file();
    let Some(s) = setup(&file, 2) else { return };
    let (a, b) = (s.vmos[0].1.clone(), s.vmos[1].1.clone());
    let expected = word(&pattern(0x42, 1));
    for (i, vmo) in [&a, &b].into_iter().enumerate() {
        let got = touch(vmo, 1);
        s.serve(i, 1);
        assert_eq!(got.recv_timeout(Duration::from_secs(5)).unwrap(), expected);
    }
    let c = s.p.counters();
    assert_eq!(c.minor_faults, 2, "one minor fault per VMO: {c:?}");
    assert_eq!(c.pages_shared, 2);
    assert!(a.is_present(1) && b.is_present(1));
    // One physical page behind both (frame numbers need privilege; smaps always works).
    if let (Some(pa), Some(pb)) = (a.pfn(P), b.pfn(P)) {
        assert_eq!(pa, pb, "both VMOs map the file's page");
    }
    assert_eq!(a.host_usage().unwrap().shared, P);
    assert_eq!(a.host_usage().unwrap().anonymous, 0);

    // A write forks a private page in A only; B and the file keep the snapshot's bytes.
    let before = a.pfn(P);
    poke(&a, 1, 0xdead_beef);
    assert_eq!(touch(&a, 1).recv().unwrap(), 0xdead_beef);
    assert_eq!(touch(&b, 1).recv().unwrap(), expected);
    let mut buf = vec![0u8; PS];
    file.read_exact_at(&mut buf, P).unwrap();
    assert_eq!(buf, pattern(0x42, 1), "the shared file is unchanged");
    assert_eq!(a.host_usage().unwrap().anonymous, P, "one forked page");
    assert_eq!(b.host_usage().unwrap().anonymous, 0);
    if let (Some(old), Some(new)) = (before, a.pfn(P)) {
        assert_ne!(old, new, "the write copied the page");
    }
    assert_eq!(s.p.counters().minor_faults, 2, "writes raise no fault");
    // The kernel's own reads see each VMO's current bytes.
    a.peek(P, &mut buf).unwrap();
    assert_eq!(word(&buf), 0xdead_beef);
    b.peek(P, &mut buf).unwrap();
    assert_eq!(buf, pattern(0x42, 1));
}

#[test]
fn holes_become_private_zero_pages_and_never_grow_the_file() {
    let file = shared_file();
    let Some(s) = setup(&file, 1) else { return };
    let a = s.vmos[0].1.clone();
    let blocks = file.metadata().unwrap().blocks();
    let got = touch(&a, 5);
    s.serve(0, 5);
    assert_eq!(got.recv_timeout(Duration::from_secs(5)).unwrap(), 0);
    let c = s.p.counters();
    assert_eq!((c.minor_faults, c.pages_zeroed, c.pages_shared), (0, 1, 0));
    poke(&a, 5, 7);
    assert_eq!(touch(&a, 5).recv().unwrap(), 7);
    assert_eq!(
        file.metadata().unwrap().blocks(),
        blocks,
        "the file did not grow"
    );
    let mut buf = vec![0u8; PS];
    file.read_exact_at(&mut buf, 5 * P).unwrap();
    assert!(buf.iter().all(|&x| x == 0));
    // A pager that knows a range is zero supplies it as such, even over the file's data.
    let (h, _) = s.vmos[0];
    assert_eq!(s.p.pager_supply_shared(s.pager, h, 0, P, true).unwrap(), 1);
    assert_eq!(touch(&a, 0).recv().unwrap(), 0);
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf, pattern(0x42, 0));
    assert_eq!(s.p.counters().pages_zeroed, 2);
}

#[test]
fn a_range_supply_maps_data_and_holes_and_finishes_requests() {
    let file = shared_file();
    let Some(s) = setup(&file, 1) else { return };
    let (h, a) = s.vmos[0].clone();
    let got = touch(&a, 2);
    let mut buf = vec![0u8; PS];
    // Wait for the request, then supply everything at once: data pages 0-2, holes 3-7.
    let pkt =
        s.p.port_wait(
            s.port,
            Some(std::time::Instant::now() + Duration::from_secs(5)),
        )
        .unwrap();
    assert_eq!(pkt.page_request.offset, 2 * P);
    assert_eq!(
        s.p.pager_supply_shared(s.pager, h, 0, PAGES * P, false)
            .unwrap(),
        PAGES
    );
    assert_eq!(got.recv().unwrap(), word(&pattern(0x42, 2)));
    for page in 0..PAGES {
        a.peek(page * P, &mut buf).unwrap();
        let want = if page < DATA {
            pattern(0x42, page)
        } else {
            vec![0; PS]
        };
        assert_eq!(buf, want, "page {page}");
    }
    let c = s.p.counters();
    assert_eq!((c.pages_shared, c.pages_zeroed), (DATA, PAGES - DATA));
    // Supplying again inserts nothing.
    assert_eq!(
        s.p.pager_supply_shared(s.pager, h, 0, PAGES * P, false)
            .unwrap(),
        0
    );
}

#[test]
fn shared_supply_and_creation_reject_what_does_not_fit() {
    let file = shared_file();
    let Some(s) = setup(&file, 1) else { return };
    // A file shorter than the VMO.
    let short =
        s.p.pager_create_vmo_shared(s.pager, s.port, 9, (PAGES + 1) * P, read_only(&file));
    assert_eq!(short.err(), Some(ZX_ERR_OUT_OF_RANGE));
    // An ordinary pager VMO has no shared file.
    let plain = s.p.pager_create_vmo(s.pager, 0, s.port, 10, P).unwrap();
    assert_eq!(
        s.p.pager_supply_shared(s.pager, plain, 0, P, false).err(),
        Some(ZX_ERR_BAD_STATE)
    );
    let (h, _) = s.vmos[0];
    assert_eq!(
        s.p.pager_supply_shared(s.pager, h, 0, (PAGES + 1) * P, false)
            .err(),
        Some(ZX_ERR_OUT_OF_RANGE)
    );
    assert_eq!(
        s.p.pager_supply_shared(s.pager, h, 1, P, true).err(),
        Some(ZX_ERR_INVALID_ARGS)
    );
}

#[test]
fn racing_shared_supplies_insert_each_page_once() {
    let file = shared_file();
    let Some(s) = setup(&file, 1) else { return };
    const ROUNDS: u64 = 20;
    for key in 100..100 + ROUNDS {
        let h =
            s.p.pager_create_vmo_shared(s.pager, s.port, key, PAGES * P, read_only(&file))
                .unwrap();
        let inserted: u64 = thread::scope(|sc| {
            let workers: Vec<_> = (0..3)
                .map(|_| sc.spawn(|| s.p.pager_supply_shared(s.pager, h, 0, PAGES * P, false)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap().unwrap())
                .sum()
        });
        assert_eq!(inserted, PAGES, "every page inserted exactly once");
        let vmo = s.p.vmo_object(h).unwrap();
        let mut buf = vec![0u8; PS];
        for page in 0..PAGES {
            vmo.peek(page * P, &mut buf).unwrap();
            let want = if page < DATA {
                pattern(0x42, page)
            } else {
                vec![0; PS]
            };
            assert_eq!(buf, want, "page {page}");
        }
        s.p.handle_close(h).unwrap();
    }
    let c = s.p.counters();
    assert_eq!(
        (c.pages_shared, c.pages_zeroed),
        (DATA * ROUNDS, (PAGES - DATA) * ROUNDS)
    );
}

#[test]
fn a_present_page_that_lost_its_mapping_is_mapped_again_without_a_request() {
    let file = shared_file();
    let Some(s) = setup(&file, 1) else { return };
    let (h, a) = s.vmos[0].clone();
    s.p.pager_supply_shared(s.pager, h, 0, PAGES * P, false)
        .unwrap();
    // Drop the page-table entry behind page 1 (the page stays in the file and present in the
    // VMO): the next touch is a minor fault on a present page.
    // SAFETY: page 1 lies inside the VMO's live host memory; MADV_DONTNEED on a private file
    // mapping only drops its PTEs, and nothing holds a reference into it.
    let rc = unsafe {
        libc::madvise(
            (a.host_addr() + P) as *mut libc::c_void,
            P as usize,
            libc::MADV_DONTNEED,
        )
    };
    assert_eq!(rc, 0);
    let got = touch(&a, 1);
    assert_eq!(
        got.recv_timeout(Duration::from_secs(5)).unwrap(),
        word(&pattern(0x42, 1))
    );
    assert_eq!(s.p.counters().minor_faults, 1);
    let r = s.p.port_wait(
        s.port,
        Some(std::time::Instant::now() + Duration::from_millis(100)),
    );
    assert_eq!(r.err(), Some(ZX_ERR_TIMED_OUT), "no page request");
}
