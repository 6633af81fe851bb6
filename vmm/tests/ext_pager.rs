//! External pagers (`--pager-socket`, `--pager-exec`): the `demo` guest checksums its memory
//! image with RAM served by the C and Python example pagers and by an in-test Rust-client
//! pager; hostile pagers (exiting, hanging, truncated, oversized, unknown op, wrong VMO,
//! out-of-range, flooding) get the documented status or a clean, explained stop.

mod microvm_util;

use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvmpager::abi::PAGE_SIZE;
use kvmpager::abi::packet::ZX_PAGER_VMO_READ;
use kvmpager::abi::status::{
    ZX_ERR_INVALID_ARGS, ZX_ERR_NOT_FOUND, ZX_ERR_NOT_SUPPORTED, ZX_ERR_OUT_OF_RANGE, ZX_OK,
};
use kvmpager_vmm::host_pager::external::ExternalPager;
use kvmpager_vmm::pager_proto::client::Client;
use kvmpager_vmm::pager_proto::{HEADER, OP_SUPPLY, Op};
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
    let dir = TempDir::new(name);
    let sock = dir.join("pager.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (mut c, img) = demo_config(&dir, ExternalPager::Socket(sock));
    c.fault_timeout = fault_timeout;
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
    let f = std::fs::File::open(img).unwrap();
    let size = c.vmos[0].size;
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
            return;
        }
    }
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
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", vec![56, 0, 0], "truncated message"),
        ("oversized", oversized.to_vec(), "out of range"),
        ("kind", unknown_kind.to_vec(), "unknown message kind 77"),
        (
            "short-op",
            [&[40u8, 0, 0, 0, 3, 0, 0, 0][..], &[0; 32]].concat(),
            "malformed",
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
