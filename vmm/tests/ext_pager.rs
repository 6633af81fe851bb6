//! External pagers (`--pager-socket`, `--pager-exec`): the `demo` guest checksums its memory
//! image with RAM served by the C and Python example pagers and by an in-test Rust-client
//! pager; restored `pattern` snapshots verify every byte under the C, Python and Rust
//! examples; DIRTY, WRITEBACK, FAIL and DETACH on RAM get the kernel's statuses (DETACH: a
//! COMPLETE, then a fatal fault; ops after it get Zircon's statuses); hostile pagers (exiting, hanging, truncated, oversized,
//! wrong-direction or garbage messages, unknown op, wrong VMO, out-of-range, flooding,
//! re-supplying other bytes) get the documented status or a clean, explained stop; and every
//! example serves a hello with three VMOs.

mod microvm_util;

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvmpager::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_READ};
use kvmpager::abi::status::{
    ZX_ERR_BAD_STATE, ZX_ERR_INVALID_ARGS, ZX_ERR_IO, ZX_ERR_NO_MEMORY, ZX_ERR_NOT_FOUND,
    ZX_ERR_NOT_SUPPORTED, ZX_ERR_OUT_OF_RANGE, ZX_OK,
};
use kvmpager::abi::{PAGE_SIZE, PortPacket};
use kvmpager_vmm::host_pager::external::ExternalPager;
use kvmpager_vmm::pager_proto::client::Client;
use kvmpager_vmm::pager_proto::{
    HEADER, Msg, OP_DETACH, OP_DIRTY, OP_FAIL, OP_SUPPLY, OP_WRITEBACK_BEGIN, OP_WRITEBACK_END, Op,
};
use kvmpager_vmm::tools::demo;
use kvmpager_vmm::{RunResult, StopReason, VmConfig, guests};
use microvm_util::{TempDir, skip_without_kvm};

const MEMORY: u64 = 256 << 20;

/// The demo guest over a fresh demo image in `dir`, RAM served by `pager`.
fn demo_config(dir: &TempDir, pager: ExternalPager) -> (VmConfig, PathBuf) {
    let img = dir.join("demo.img");
    demo::write_image(&img, demo::DEFAULT_DATA_LEN).unwrap();
    let mut c = VmConfig::new(guests::by_name("demo").unwrap().elf.to_vec());
    c.memory = MEMORY;
    c.image = Some(img.clone());
    c.timeout = Some(Duration::from_secs(60));
    c.external_pager = Some(pager);
    (c, img)
}

fn assert_checksummed(r: &RunResult) {
    let text = r.console_text();
    assert_eq!(r.exit_code, Some(0), "stop {:?}, console {text}", r.stop);
    assert!(text.contains(": ok"), "{text}");
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/pagers")
        .join(name)
}

#[test]
fn the_python_example_pager_serves_the_demo_image() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("ext-py");
    let cmd = format!("exec python3 {}", example("image_pager.py").display());
    let (c, _) = demo_config(&dir, ExternalPager::Exec(cmd));
    assert_checksummed(&kvmpager_vmm::run(&c).unwrap());
}

#[test]
fn the_c_example_pager_serves_the_demo_image() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("ext-c");
    let bin = dir.join("image_pager");
    let st = std::process::Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(example("image_pager.c"))
        .status()
        .unwrap();
    assert!(st.success());
    let (c, _) = demo_config(&dir, ExternalPager::Exec(bin.display().to_string()));
    assert_checksummed(&kvmpager_vmm::run(&c).unwrap());
}

/// Runs the demo guest with RAM served over a socket by `pager` (given the client and the
/// image path) on a thread; returns the run's result and the pager thread's.
fn with_rust_pager<T: Send + 'static>(
    name: &str,
    fault_timeout: Option<Duration>,
    pager: impl FnOnce(Client, PathBuf) -> T + Send + 'static,
) -> (RunResult, T, Duration) {
    with_rust_pager_on(name, |c| c.fault_timeout = fault_timeout, pager)
}

/// [`with_rust_pager`] with the VM's configuration adjusted by `adjust`.
fn with_rust_pager_on<T: Send + 'static>(
    name: &str,
    adjust: impl FnOnce(&mut VmConfig),
    pager: impl FnOnce(Client, PathBuf) -> T + Send + 'static,
) -> (RunResult, T, Duration) {
    let dir = TempDir::new(name);
    let sock = dir.join("pager.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (mut c, img) = demo_config(&dir, ExternalPager::Socket(sock));
    adjust(&mut c);
    let t: JoinHandle<T> = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        pager(Client::new(s).unwrap(), img)
    });
    let t0 = Instant::now();
    let r = kvmpager_vmm::run(&c).unwrap();
    let took = t0.elapsed();
    (r, t.join().unwrap(), took)
}

/// Serves READ requests from the image (2 MiB windows) until the VM goes away.
fn serve(c: &mut Client, img: &Path) {
    serve_with(c, img, false);
}

/// [`serve`]; with `resupply_garbage`, each window is supplied a second time filled with
/// 0xa5 (pages already present must be kept: the guest's checksum still passes). Returns the
/// statuses of the second supplies.
fn serve_with(c: &mut Client, img: &Path, resupply_garbage: bool) -> Vec<i32> {
    let f = std::fs::File::open(img).unwrap();
    let size = c.vmos[0].size;
    let mut again = Vec::new();
    while let Ok(Some(p)) = c.next_packet() {
        if p.page_request.command != ZX_PAGER_VMO_READ {
            continue;
        }
        let start = p.page_request.offset & !((2 << 20) - 1);
        let end = (start + (2 << 20)).min(size);
        let mut buf = vec![0u8; (end - start) as usize];
        let n = f.read_at(&mut buf, start).unwrap_or(0);
        buf[n..].fill(0);
        if !matches!(c.supply(p.key, start, &buf), Ok(ZX_OK)) {
            break;
        }
        if resupply_garbage {
            buf.fill(0xa5);
            match c.supply(p.key, start, &buf) {
                Ok(s) => again.push(s),
                Err(_) => break,
            }
        }
    }
    again
}

fn op(key: u64, code: u32, offset: u64, length: u64, data: u64) -> Op {
    Op {
        key,
        op: code,
        offset,
        length,
        data,
        ..Op::default()
    }
}

#[test]
fn a_rust_client_pager_serves_ram_and_bad_ops_get_their_status() {
    if skip_without_kvm() {
        return;
    }
    let (r, statuses, _) = with_rust_pager("ext-rust", None, |mut c, img| {
        assert_eq!(c.version, kvmpager_vmm::pager_proto::VERSION);
        let (key, size) = (c.vmos[0].key, c.vmos[0].size);
        let statuses = vec![
            // Wrong VMO, unknown op, unaligned, out of the VMO, out of the data region.
            c.op(op(key + 1, OP_SUPPLY, 0, PAGE_SIZE, 0)).unwrap(),
            c.op(op(key, 0x99, 0, PAGE_SIZE, 0)).unwrap(),
            c.op(op(key, OP_SUPPLY, 1, PAGE_SIZE, 0)).unwrap(),
            c.op(op(key, OP_SUPPLY, size, PAGE_SIZE, 0)).unwrap(),
            c.op(op(key, OP_SUPPLY, 0, PAGE_SIZE, 16 << 20)).unwrap(),
            // A SUPPLY of pages never requested is allowed (the last page of RAM: zeros).
            c.supply(key, size - PAGE_SIZE, &vec![0; PAGE_SIZE as usize])
                .unwrap(),
        ];
        serve(&mut c, &img);
        statuses
    });
    assert_checksummed(&r);
    assert_eq!(
        statuses,
        [
            ZX_ERR_NOT_FOUND,
            ZX_ERR_NOT_SUPPORTED,
            ZX_ERR_INVALID_ARGS,
            ZX_ERR_OUT_OF_RANGE,
            ZX_ERR_OUT_OF_RANGE,
            ZX_OK
        ]
    );
}

#[test]
fn a_pager_cannot_resize_the_data_region() {
    if skip_without_kvm() {
        return;
    }
    // The bridge copies out of a mapping of the region: a pager that could shrink it would
    // make those copies fault (SIGBUS). It is sealed (F_SEAL_SHRINK, F_SEAL_GROW).
    let (r, refused, _) = with_rust_pager("ext-seal", None, |mut c, img| {
        let len = c.region().metadata().unwrap().len();
        let refused = [0, len - PAGE_SIZE, len + PAGE_SIZE]
            .map(|to| c.region().set_len(to).map_err(|e| e.raw_os_error()));
        serve(&mut c, &img);
        refused
    });
    assert_checksummed(&r);
    const EPERM: i32 = 1;
    assert_eq!(refused, [Err(Some(EPERM)); 3]);
}

#[test]
fn ops_after_detach_get_their_status_and_a_fully_supplied_guest_runs_on() {
    if skip_without_kvm() {
        return;
    }
    // On the first request, supply all of RAM, the piece the guest waits for last, then
    // DETACH: the guest never faults again and spends its time on the checksum, while the ops
    // after the DETACH, sent in one write with that last supply, are executed right behind it.
    // A long checksum (768 MiB of image in 1 GiB of RAM, ~0.6 s of guest time): on a loaded
    // host (the other tests of this file run beside it) ext-pager-ops may wait tens of ms for
    // a CPU, and the ops must be answered before the guest is done.
    let big = |c: &mut VmConfig| {
        c.memory = 1 << 30;
        demo::write_image(c.image.as_ref().unwrap(), 768 << 20).unwrap();
    };
    let (r, statuses, _) = with_rust_pager_on("ext-after-detach", big, |mut c, img| {
        let (key, size) = (c.vmos[0].key, c.vmos[0].size);
        let first = c.next_packet().unwrap().unwrap();
        assert_eq!(first.page_request.command, ZX_PAGER_VMO_READ);
        let f = std::fs::File::open(img).unwrap();
        let piece = 16u64 << 20;
        let mut buf = vec![0u8; piece as usize];
        let mut pieces: Vec<u64> = (0..size).step_by(piece as usize).collect();
        let waited = first.page_request.offset & !(piece - 1);
        pieces.retain(|&at| at != waited);
        for at in pieces {
            buf.fill(0);
            let _ = f.read_at(&mut buf, at);
            assert_eq!(c.supply(key, at, &buf).unwrap(), ZX_OK);
        }
        // The piece the guest waits for, the DETACH and the ops after it in one write: the
        // VMM executes them back to back, long before the guest can finish.
        buf.fill(0);
        let _ = f.read_at(&mut buf, waited);
        c.region().write_all_at(&buf, 0).unwrap();
        let statuses = c
            .ops(&[
                op(key, OP_SUPPLY, waited, piece, 0),
                op(key, OP_DETACH, 0, 0, 0),
                op(key, OP_SUPPLY, 0, PAGE_SIZE, 0),
                op(key, OP_FAIL, 0, PAGE_SIZE, ZX_ERR_IO as i64 as u64),
                op(key, OP_DIRTY, 0, PAGE_SIZE, 0),
                op(key, OP_WRITEBACK_BEGIN, 0, PAGE_SIZE, 0),
                op(key, OP_DETACH, 0, 0, 0),
            ])
            .unwrap();
        while let Ok(Some(_)) = c.next_packet() {}
        statuses
    });
    assert_checksummed(&r);
    // The last supply, the DETACH, then Zircon's order after a detach: SUPPLY and FAIL refuse (BAD_STATE); DIRTY fails its
    // TRAP_DIRTY check first (RAM has none); WRITEBACK keeps working; DETACH is always OK.
    assert_eq!(
        statuses,
        [
            ZX_OK,
            ZX_OK,
            ZX_ERR_BAD_STATE,
            ZX_ERR_BAD_STATE,
            ZX_ERR_NOT_SUPPORTED,
            ZX_OK,
            ZX_OK
        ]
    );
}

/// The VM stopped within `limit`, explained with `words`.
fn assert_stopped(r: &RunResult, took: Duration, limit: Duration, words: &str) {
    let why = r.stop.to_string();
    assert!(took < limit, "took {took:?}: {why}");
    assert!(why.contains(words), "{why}");
    assert_ne!(r.exit_code, Some(0), "{why}");
}

#[test]
fn hostile_messages_stop_the_vm_explained() {
    if skip_without_kvm() {
        return;
    }
    let limit = Duration::from_secs(20);
    let mut oversized = [0u8; HEADER];
    oversized[0..4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let mut unknown_kind = [0u8; HEADER];
    unknown_kind[0] = HEADER as u8;
    unknown_kind[4] = 77;
    let good_op = Msg::Op(op(1, OP_SUPPLY, 0, PAGE_SIZE, 0)).encode();
    let mut reserved_header = good_op.clone();
    reserved_header[6] = 1;
    let mut reserved_op = good_op.clone();
    reserved_op[28] = 1;
    let cases: [(&str, Vec<u8>, &str); 8] = [
        ("truncated", vec![56, 0, 0], "truncated message"),
        ("oversized", oversized.to_vec(), "out of range"),
        ("kind", unknown_kind.to_vec(), "unknown message kind 77"),
        (
            "short-op",
            [&[40u8, 0, 0, 0, 3, 0, 0, 0][..], &[0; 32]].concat(),
            "malformed",
        ),
        (
            "reserved-header",
            reserved_header,
            "malformed message of kind 3",
        ),
        ("reserved-op", reserved_op, "malformed message of kind 3"),
        // VMM-to-pager kinds sent the wrong way.
        (
            "packet-back",
            Msg::Packet(PortPacket::default()).encode(),
            "message of kind 2 (only ops",
        ),
        (
            "reply-back",
            Msg::Reply { id: 1, status: 0 }.encode(),
            "message of kind 4 (only ops",
        ),
    ];
    for (name, bytes, words) in cases {
        let (r, (), took) = with_rust_pager(&format!("ext-{name}"), None, move |mut c, _| {
            let _ = c.send_raw(&bytes);
            // Hold the socket open: the stop must come from the message itself.
            while let Ok(Some(_)) = c.next_packet() {}
        });
        assert_stopped(&r, took, limit, words);
    }
}

#[test]
fn a_pager_that_disconnects_exits_or_hangs_stops_the_vm() {
    if skip_without_kvm() {
        return;
    }
    let limit = Duration::from_secs(20);
    let (r, (), took) = with_rust_pager("ext-drop", None, |c, _| drop(c));
    assert_stopped(&r, took, limit, "closed its socket");

    let dir = TempDir::new("ext-exit");
    let (c, _) = demo_config(&dir, ExternalPager::Exec("exit 3".into()));
    let t0 = Instant::now();
    // The pager may exit before or after the hello: a failed start or a stop, both explained.
    match kvmpager_vmm::run(&c) {
        Ok(r) => assert_stopped(&r, t0.elapsed(), limit, "exited (exit status: 3)"),
        Err(e) => assert!(e.to_string().contains("exited: exit status: 3"), "{e}"),
    }

    let dir = TempDir::new("ext-hang");
    let (mut c, _) = demo_config(&dir, ExternalPager::Exec("sleep 600; true".into()));
    c.fault_timeout = Some(Duration::from_secs(2));
    let t0 = Instant::now();
    let r = kvmpager_vmm::run(&c).unwrap();
    assert!(
        matches!(r.stop, StopReason::FaultTimeout { .. }),
        "{}",
        r.stop
    );
    assert!(t0.elapsed() < limit);
}

#[test]
fn a_flooding_pager_that_reads_no_replies_is_stopped() {
    if skip_without_kvm() {
        return;
    }
    let (r, (), took) = with_rust_pager("ext-flood", None, |mut c, _| {
        let one = kvmpager_vmm::pager_proto::Msg::Op(op(1, 0x99, 0, 0, 0)).encode();
        let burst = one.repeat(1024);
        while c.send_raw(&burst).is_ok() {}
    });
    assert_stopped(&r, took, Duration::from_secs(40), "cannot send a reply");
}

#[test]
fn external_pagers_do_not_combine_with_snapshots_or_share() {
    let dir = TempDir::new("ext-conf");
    let (mut c, _) = demo_config(&dir, ExternalPager::Exec("true".into()));
    c.share = true;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("--share"), "{e}");
}

#[test]
fn dirty_and_writeback_on_ram_get_the_kernels_statuses_and_resupplies_change_nothing() {
    if skip_without_kvm() {
        return;
    }
    let (r, (statuses, again), _) = with_rust_pager("ext-wb", None, |mut c, img| {
        let (key, size) = (c.vmos[0].key, c.vmos[0].size);
        // Half way up RAM, between the demo image (18..82 MiB) and the vCPU stacks at the top:
        // the demo guest never touches it, so no request is ever there.
        let idle = size / 2;
        let io = i64::from(ZX_ERR_IO) as u64;
        let no_memory = i64::from(ZX_ERR_NO_MEMORY) as u64;
        let statuses: Vec<i32> = [
            // RAM is created without ZX_VMO_TRAP_DIRTY: DIRTY is refused, never needed.
            op(key, OP_DIRTY, idle, PAGE_SIZE, 0),
            op(key, OP_DIRTY, idle, PAGE_SIZE, 1),
            op(key, OP_DIRTY, 1, PAGE_SIZE, 0),
            op(key, OP_DIRTY, size, PAGE_SIZE, 0),
            // Nothing in RAM is ever dirty: writeback is accepted and changes nothing.
            op(key, OP_WRITEBACK_BEGIN, 0, size, 0),
            op(key, OP_WRITEBACK_BEGIN, idle, PAGE_SIZE, 1),
            op(key, OP_WRITEBACK_BEGIN, idle, PAGE_SIZE, 2),
            op(key, OP_WRITEBACK_END, 0, size, 0),
            op(key, OP_WRITEBACK_END, size, PAGE_SIZE, 0),
            op(key, OP_WRITEBACK_END, idle, PAGE_SIZE, 1),
            // FAIL with no request outstanding: accepted; a status FAIL may not carry: refused.
            op(key, OP_FAIL, idle, PAGE_SIZE, io),
            op(key, OP_FAIL, idle, PAGE_SIZE, no_memory),
        ]
        .into_iter()
        .map(|o| c.op(o).unwrap())
        .collect();
        (statuses, serve_with(&mut c, &img, true))
    });
    assert_checksummed(&r);
    assert_eq!(
        statuses,
        [
            ZX_ERR_NOT_SUPPORTED,
            ZX_ERR_INVALID_ARGS,
            ZX_ERR_INVALID_ARGS,
            ZX_ERR_OUT_OF_RANGE,
            ZX_OK,
            ZX_OK,
            ZX_ERR_INVALID_ARGS,
            ZX_OK,
            ZX_ERR_OUT_OF_RANGE,
            ZX_ERR_INVALID_ARGS,
            ZX_OK,
            ZX_ERR_INVALID_ARGS,
        ]
    );
    // Every window was supplied twice, the second time with 0xa5: accepted, and skipped.
    assert!(again.len() >= 32, "{} windows", again.len());
    assert!(again.iter().all(|&s| s == ZX_OK), "{again:?}");
}

#[test]
fn detach_sends_complete_and_the_next_fault_on_ram_stops_the_vm() {
    if skip_without_kvm() {
        return;
    }
    let (r, (bad, detached, complete), took) = with_rust_pager("ext-detach", None, |mut c, img| {
        let key = c.vmos[0].key;
        let bad = c.op(op(key, OP_DETACH, 0, PAGE_SIZE, 0)).unwrap();
        // Serve the first window, then detach.
        let f = std::fs::File::open(img).unwrap();
        let p = std::iter::from_fn(|| c.next_packet().ok().flatten())
            .find(|p| p.page_request.command == ZX_PAGER_VMO_READ)
            .unwrap();
        let start = p.page_request.offset & !((2 << 20) - 1);
        let mut buf = vec![0u8; 2 << 20];
        let n = f.read_at(&mut buf, start).unwrap_or(0);
        buf[n..].fill(0);
        assert_eq!(c.supply(key, start, &buf).unwrap(), ZX_OK);
        let detached = c.op(op(key, OP_DETACH, 0, 0, 0)).unwrap();
        let complete = std::iter::from_fn(|| c.next_packet().ok().flatten())
            .find(|p| p.page_request.command == ZX_PAGER_VMO_COMPLETE);
        // Hold the socket open: the stop must come from the guest's fault.
        while let Ok(Some(_)) = c.next_packet() {}
        (bad, detached, complete)
    });
    assert_eq!((bad, detached), (ZX_ERR_INVALID_ARGS, ZX_OK));
    let complete = complete.expect("a COMPLETE packet after DETACH");
    assert_eq!(
        (
            complete.key,
            complete.page_request.offset,
            complete.page_request.length
        ),
        (0x0052_414d, 0, 0)
    );
    let why = r.stop.to_string();
    eprintln!("stop: {why}");
    assert!(
        matches!(
            r.stop,
            StopReason::FatalFault {
                status: ZX_ERR_BAD_STATE,
                ..
            }
        ),
        "{why}"
    );
    assert!(why.contains("unresolvable page fault on VMO koid"), "{why}");
    assert!(why.contains("ZX_ERR_BAD_STATE"), "{why}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_pager_flooding_garbage_is_stopped_explained() {
    if skip_without_kvm() {
        return;
    }
    let (r, (), took) = with_rust_pager("ext-garbage", None, |mut c, _| {
        // PACKET-sized (56-byte) pieces of xorshift noise until the VMM hangs up.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut piece = [0u8; 56];
        loop {
            for b in piece.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes());
            }
            if c.send_raw(&piece).is_err() {
                break;
            }
        }
    });
    assert_stopped(
        &r,
        took,
        Duration::from_secs(20),
        "external pager: bad message",
    );
}

// Restores under an external pager: the `pattern` guest writes a known pattern, snapshots
// (built-in pager), and the restored VM checks every byte with RAM served by the pager.

/// The Rust example pager (`vmm/examples/image_pager.rs`), its serving loop run in-process.
#[path = "../examples/image_pager.rs"]
#[allow(dead_code)]
mod image_pager_example;

/// A snapshot of the pattern guest (8 MiB of pattern, 64 MiB RAM, 2 vCPUs) in `dir/snap`.
fn pattern_snapshot(dir: &TempDir) -> PathBuf {
    let c = microvm_util::pattern_config(dir, 8, 64 << 20, 2);
    let r = kvmpager_vmm::run(&c).unwrap();
    assert!(matches!(r.stop, StopReason::Snapshotted(_)), "{}", r.stop);
    dir.join("snap")
}

fn assert_verified(r: &RunResult) {
    let text = r.console_text();
    assert_eq!(r.exit_code, Some(0), "stop {}, console {text}", r.stop);
    assert!(text.contains("verified every byte"), "{text}");
}

/// Compiles the C example with `cc` into `dir`; `None` (and a message) without a compiler.
fn c_example(dir: &TempDir) -> Option<PathBuf> {
    let bin = dir.join("image_pager");
    let st = std::process::Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(example("image_pager.c"))
        .status();
    match st {
        Ok(st) if st.success() => Some(bin),
        Ok(st) => panic!("cc failed on the C example: {st}"),
        Err(e) => {
            eprintln!("skipped: no C compiler (`cc`: {e})");
            None
        }
    }
}

/// `kvmpager restore SNAP --pager-exec CMD` (KVMPAGER_IMAGE is the snapshot's ram.img): the
/// restored pattern guest verifies every byte and exits 0.
fn restore_from_the_command_line(snap: &Path, cmd: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .arg("restore")
        .arg(snap)
        .args(["--timeout", "60", "--pager-exec", cmd])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{cmd}: {stdout}\n{stderr}");
    assert!(stdout.contains("verified every byte"), "{cmd}: {stdout}");
}

#[test]
fn restore_under_the_c_and_python_example_pagers_from_the_command_line() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("ext-restore-c");
    let snap = pattern_snapshot(&dir);
    let py = format!("exec python3 {}", example("image_pager.py").display());
    restore_from_the_command_line(&snap, &py);
    // The README's two commands: build the pager, restore under it.
    let Some(bin) = c_example(&dir) else { return };
    restore_from_the_command_line(&snap, &bin.display().to_string());
    // Each clone starts its own pager.
    let mut rc = microvm_util::restore_config();
    rc.external_pager = Some(ExternalPager::Exec(bin.display().to_string()));
    for r in kvmpager_vmm::restore_clones(&snap, &rc, 2) {
        assert_verified(&r.unwrap());
    }
}

#[test]
fn restore_under_the_rust_example_pager_over_a_socket() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("ext-restore-rust");
    let snap = pattern_snapshot(&dir);
    let sock = dir.join("pager.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let ram = snap.join(kvmpager_vmm::snapshot::RAM_FILE);
    let pager = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut c = Client::new(s).unwrap();
        let vmos = c.vmos.clone();
        let _ = image_pager_example::serve(&std::fs::File::open(ram).unwrap(), &mut c);
        vmos
    });
    let mut rc = microvm_util::restore_config();
    rc.external_pager = Some(ExternalPager::Socket(sock));
    let r = kvmpager_vmm::restore(&snap, &rc).unwrap();
    assert_verified(&r);
    // The hello named RAM only, with the snapshot's RAM size.
    let vmos = pager.join().unwrap();
    assert_eq!(vmos.len(), 1);
    assert_eq!((vmos[0].key, vmos[0].size), (0x0052_414d, 64 << 20));
}

#[test]
fn restore_with_an_external_pager_refuses_urls_and_share() {
    let dir = TempDir::new("ext-restore-conf");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvmpager"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = format!("file://{}/snap", dir.path().display());
    let (code, err) = run(&["restore", &url, "--pager-exec", "true"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot be combined with a snapshot URL (copy it to a directory first"),
        "{err}"
    );
    if skip_without_kvm() {
        return;
    }
    let snap = pattern_snapshot(&dir);
    let snap = snap.to_str().unwrap();
    let (code, err) = run(&["restore", snap, "--share", "--pager-exec", "true"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot be combined with shared RAM (--share)"),
        "{err}"
    );
    let (code, err) = run(&[
        "restore",
        snap,
        "--pager-socket",
        "/x",
        "--pager-exec",
        "true",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

// A hello with several VMOs: a fake VMM hands each example pager three VMOs and asks for
// pages of the second and third; each pager must find the VMO by key and supply its window.

/// Reads one message from the fake VMM's end.
fn read_message(s: &mut UnixStream) -> Msg {
    let mut b = vec![0u8; HEADER];
    s.read_exact(&mut b).unwrap();
    b.resize(kvmpager_vmm::pager_proto::message_size(&b).unwrap(), 0);
    s.read_exact(&mut b[HEADER..]).unwrap();
    Msg::decode(&b).unwrap()
}

fn read_request(key: u64, offset: u64) -> Msg {
    Msg::Packet(PortPacket {
        key,
        packet_type: kvmpager::abi::packet::ZX_PKT_TYPE_PAGE_REQUEST,
        status: 0,
        page_request: kvmpager::abi::PageRequest {
            command: ZX_PAGER_VMO_READ,
            offset,
            length: PAGE_SIZE,
            ..Default::default()
        },
    })
}

/// Plays the VMM for a pager at the other end of `vmm`: a hello with three VMOs, then read
/// requests on the second and third; checks each SUPPLY's key, window and bytes (the image's,
/// byte i = i % 251).
fn fake_vmm_with_three_vmos(mut vmm: UnixStream, dir: &TempDir) {
    use vmm_sys_util::sock_ctrl_msg::ScmSocket;
    let region = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("region"))
        .unwrap();
    region.set_len(16 << 20).unwrap();
    vmm.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let vmos = [(0x10, 4u64 << 20), (0x20, 8 << 20), (0x30, 2 << 20)];
    let hello = Msg::Hello {
        version: kvmpager_vmm::pager_proto::VERSION,
        region_size: 16 << 20,
        vmos: vmos
            .map(|(key, size)| kvmpager_vmm::pager_proto::VmoInfo { key, size })
            .to_vec(),
    };
    use std::os::fd::AsRawFd;
    vmm.send_with_fd(&hello.encode()[..], region.as_raw_fd())
        .unwrap();
    for (key, offset, window) in [(0x20, (4 << 20) + PAGE_SIZE, 4 << 20), (0x30, 8192, 0)] {
        vmm.write_all(&read_request(key, offset).encode()).unwrap();
        let Msg::Op(o) = read_message(&mut vmm) else {
            panic!("the pager did not answer with an op")
        };
        assert_eq!(
            (o.key, o.op, o.offset, o.length),
            (key, OP_SUPPLY, window, 2 << 20),
            "{o:?}"
        );
        let mut got = vec![0u8; (2 << 20) as usize];
        region.read_exact_at(&mut got, o.data).unwrap();
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &b)| b == ((window as usize + i) % 251) as u8),
            "wrong bytes supplied for VMO {key:#x}"
        );
        vmm.write_all(
            &Msg::Reply {
                id: o.id,
                status: ZX_OK,
            }
            .encode(),
        )
        .unwrap();
    }
}

#[test]
fn the_example_pagers_serve_any_vmo_of_a_hello_with_three() {
    let dir = TempDir::new("ext-three");
    let img = dir.join("image");
    let bytes: Vec<u8> = (0..8usize << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&img, bytes).unwrap();
    // The Rust example, in-process.
    let (vmm, pager) = UnixStream::pair().unwrap();
    let image = std::fs::File::open(&img).unwrap();
    let t = std::thread::spawn(move || {
        let mut c = Client::new(pager).unwrap();
        image_pager_example::serve(&image, &mut c)
    });
    fake_vmm_with_three_vmos(vmm, &dir);
    t.join().unwrap().unwrap();
    // The C and Python examples, as --pager-exec starts them.
    let mut commands = vec![];
    if let Some(bin) = c_example(&dir) {
        commands.push(std::process::Command::new(bin));
    }
    let mut py = std::process::Command::new("python3");
    py.arg(example("image_pager.py"));
    commands.push(py);
    for mut cmd in commands {
        let (vmm, pager) = UnixStream::pair().unwrap();
        let mut child = cmd
            .stdin(std::os::fd::OwnedFd::from(pager))
            .env("KVMPAGER_PAGER_FD", "0")
            .env("KVMPAGER_IMAGE", &img)
            .spawn()
            .unwrap();
        fake_vmm_with_three_vmos(vmm, &dir);
        // The VMM hung up: the pager exits 0.
        assert!(child.wait().unwrap().success(), "{cmd:?}");
    }
}
