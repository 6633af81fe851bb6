//! Micro guests: hand-assembled CPL-3 programs run through `kvmpager_vmm::run`, each with a
//! time limit, asserting on how the VM stops.

use std::time::{Duration, Instant};

use kvmpager::abi::status::{ZX_ERR_BAD_HANDLE, ZX_ERR_INVALID_ARGS};
use kvmpager_vmm::loader::tiny_elf;
use kvmpager_vmm::{RunResult, StopReason, VmConfig, skip_without_kvm};

const LOAD: u64 = 0x10_0000;
const RAM: u64 = 16 << 20;

fn config(code: &[u8], lazy: bool, timeout: Duration) -> VmConfig {
    let mut c = VmConfig::new(tiny_elf(LOAD, code, 0x1000));
    c.vcpus = 1;
    c.memory = RAM;
    c.lazy_ram = lazy;
    c.timeout = Some(timeout);
    c
}

fn run_code(code: &[u8], lazy: bool) -> RunResult {
    kvmpager_vmm::run(&config(code, lazy, Duration::from_secs(10))).expect("VM runs")
}

/// `mov eax, 1; out 0xe1, eax` — Exit(rdi).
const EXIT: [u8; 7] = [0xB8, 1, 0, 0, 0, 0xE7, 0xE1];

fn with_exit(mut code: Vec<u8>) -> Vec<u8> {
    code.extend_from_slice(&EXIT);
    code
}

/// `mov edi, 42` then Exit.
fn exit_42() -> Vec<u8> {
    with_exit(vec![0xBF, 42, 0, 0, 0])
}

#[test]
fn exit_code_propagates_with_plain_and_lazy_ram() {
    if skip_without_kvm() {
        return;
    }
    for lazy in [false, true] {
        let r = run_code(&exit_42(), lazy);
        assert_eq!(r.stop, StopReason::Exit(42), "lazy={lazy}");
        assert_eq!(r.exit_code, Some(42));
    }
}

/// ConsoleWrite(buf, 16) then Exit(status).
fn console_write_at(buf: u64) -> Vec<u8> {
    let mut c = vec![0xB8, 2, 0, 0, 0]; // mov eax, 2
    c.extend([0x48, 0xBF]); // mov rdi, imm64
    c.extend(buf.to_le_bytes());
    c.extend([0xBE, 16, 0, 0, 0]); // mov esi, 16
    c.extend([0xE7, 0xE1]); // out 0xe1, eax
    c.extend([0x48, 0x89, 0xC7]); // mov rdi, rax
    with_exit(c)
}

#[test]
fn console_output_is_captured_and_bad_pointers_are_invalid_args() {
    if skip_without_kvm() {
        return;
    }
    // The code itself is at LOAD: print its first 16 bytes.
    let r = run_code(&console_write_at(LOAD), true);
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.console, console_write_at(LOAD)[..16].to_vec());
    for bad in [RAM - 8, RAM, u64::MAX - 4, 64 << 30] {
        let r = run_code(&console_write_at(bad), false);
        assert_eq!(
            r.exit_code,
            Some(ZX_ERR_INVALID_ARGS.into()),
            "buf {bad:#x}"
        );
        assert!(r.console.is_empty());
    }
}

#[test]
fn unknown_call_numbers_return_bad_syscall() {
    if skip_without_kvm() {
        return;
    }
    // mov eax, 0x7777; out 0xe1, eax; mov rdi, rax; Exit
    let code = with_exit(vec![0xB8, 0x77, 0x77, 0, 0, 0xE7, 0xE1, 0x48, 0x89, 0xC7]);
    let r = run_code(&code, false);
    assert_eq!(
        r.exit_code,
        Some(kvmpager::abi::status::ZX_ERR_BAD_SYSCALL.into())
    );
}

#[test]
fn faults_stop_cleanly_naming_vector_and_rip() {
    if skip_without_kvm() {
        return;
    }
    // ud2
    let r = run_code(&[0x0F, 0x0B], true);
    let StopReason::Exception { vcpu: 0, report } = r.stop else {
        panic!("{:?}", r.stop)
    };
    assert_eq!((report.vector, report.rip), (6, LOAD));
    // Unmapped in the page tables (RAM is under 1 GiB): #PF with cr2.
    // mov rax, 0x4000_0000; mov [rax], al
    let store_at = |addr: u64| {
        let mut code = vec![0x48, 0xB8];
        code.extend(addr.to_le_bytes());
        code.extend([0x88, 0x00]);
        code
    };
    let r = run_code(&store_at(0x4000_0000), false);
    let StopReason::Exception { report, .. } = r.stop else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(
        (report.vector, report.cr2, report.rip),
        (14, 0x4000_0000, LOAD + 10)
    );
    // Mapped by the page tables but with no memory behind it: the aperture.
    let aperture = kvmpager::abi::layout::APERTURE_START;
    let r = run_code(&store_at(aperture + 0x1000), false);
    assert_eq!(
        r.stop,
        StopReason::Mmio {
            vcpu: 0,
            addr: aperture + 0x1000,
            dir: "write"
        }
    );
    assert!(r.stop.to_string().contains("0x1000001000"));
}

#[test]
fn other_ports_stop_naming_the_port() {
    if skip_without_kvm() {
        return;
    }
    // mov dx, 0x3f8; out dx, al — denied by the I/O bitmap: #GP at CPL 3.
    let r = run_code(&[0x66, 0xBA, 0xF8, 0x03, 0xEE], false);
    let StopReason::Exception { report, .. } = r.stop else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(report.vector, 13);
}

#[test]
fn a_spinning_guest_stops_at_its_timeout() {
    if skip_without_kvm() {
        return;
    }
    let t0 = Instant::now();
    let c = config(&[0xEB, 0xFE], true, Duration::from_millis(500)); // jmp $
    let r = kvmpager_vmm::run(&c).unwrap();
    assert_eq!(r.stop, StopReason::Timeout);
    assert_eq!(r.exit_code, None);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

/// VmoCreate(0x1000, 0, out = 0x200000), then `mov edi, [0x200000]`, then `tail`.
fn create_vmo_then(tail: &[u8]) -> Vec<u8> {
    let mut c = vec![0xB8, 7, 0, 0, 0, 0xBF, 0, 0x10, 0, 0, 0x31, 0xF6];
    c.extend([0xBA, 0, 0, 0x20, 0, 0xE7, 0xE1]); // mov edx, 0x200000; out
    c.extend([0x8B, 0x3C, 0x25, 0, 0, 0x20, 0]); // mov edi, [0x200000]
    c.extend_from_slice(tail);
    c
}

/// HandleClose(handle), then Exit(status).
fn close_handle(handle: u32) -> Vec<u8> {
    let mut c = vec![0xBF];
    c.extend(handle.to_le_bytes()); // mov edi, handle
    c.extend(close_edi());
    c
}

/// HandleClose(edi), then Exit(status).
fn close_edi() -> Vec<u8> {
    with_exit(vec![0xB8, 4, 0, 0, 0, 0xE7, 0xE1, 0x48, 0x89, 0xC7])
}

#[test]
fn two_vms_cannot_name_each_others_handles() {
    if skip_without_kvm() {
        return;
    }
    // A guest can use the handle it made.
    let own = create_vmo_then(&close_edi());
    assert_eq!(run_code(&own, false).exit_code, Some(0));
    // VM A (built, not running) holds a VMO handle in its guest table.
    let a = kvmpager_vmm::vm::Vm::new(&config(&EXIT, false, Duration::from_secs(1))).unwrap();
    let handle = a.guest().vmo_create(0x1000, 0).unwrap();
    // VM B, with a VMO of its own, cannot name A's handle.
    let b = create_vmo_then(&close_handle(handle));
    assert_eq!(
        run_code(&b, false).exit_code,
        Some(ZX_ERR_BAD_HANDLE.into())
    );
    assert_eq!(a.guest().vmo_get_size(handle), Ok(0x1000));
}

/// Handle values are not guessable: two VMs that make the same objects in the same order get
/// different values (each table mixes in its own random secret), none of one VM's values
/// works in the other through the hypercall path, and random guesses at a table holding a
/// handle miss (a hit has odds of about 1 in 2^30 per guess).
#[test]
fn handle_values_differ_between_vms_and_are_not_guessable() {
    use kvmpager::abi::Call;
    use kvmpager_vmm::hypercall::{Hypercall, Outcome, handle};
    if skip_without_kvm() {
        return;
    }
    let cfg = config(&EXIT, false, Duration::from_secs(1));
    let (a, b) = (
        kvmpager_vmm::vm::Vm::new(&cfg).unwrap(),
        kvmpager_vmm::vm::Vm::new(&cfg).unwrap(),
    );
    let make = |vm: &kvmpager_vmm::vm::Vm| -> Vec<u32> {
        let g = vm.guest();
        (0..8)
            .flat_map(|_| {
                [
                    g.vmo_create(0x1000, 0).unwrap(),
                    g.port_create(0).unwrap(),
                    g.pager_create(0).unwrap(),
                ]
            })
            .collect()
    };
    let (ha, hb) = (make(&a), make(&b));
    let size_in = |vm: &kvmpager_vmm::vm::Vm, h: u32| {
        let hc = Hypercall {
            nr: Call::VmoGetSize as u64,
            args: [h.into(), 0x20_0000, 0, 0, 0, 0, 0, 0],
        };
        handle(vm, 0, hc)
    };
    for (&x, &y) in ha.iter().zip(&hb) {
        assert_ne!(x, y, "the same object in the same slot got the same value");
    }
    for &h in &ha {
        let expect = if hb.contains(&h) {
            None
        } else {
            Some(ZX_ERR_BAD_HANDLE)
        };
        if let Some(e) = expect {
            assert_eq!(size_in(&b, h), Outcome::Return(e.into()), "A's {h:#x} in B");
        }
    }
    assert_eq!(
        size_in(&a, ha[0]),
        Outcome::Return(0),
        "A's own handle works in A"
    );
    // Random guesses at B's table: only B's own values are accepted, and guessing one of them
    // takes ~2^30 / 24 tries (two hits in 20,000 have odds below 1e-7).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hits = 0;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let guess = (x as u32) | 3;
        if b.guest().vmo_get_size(guess) != Err(ZX_ERR_BAD_HANDLE) {
            assert!(
                hb.contains(&guess),
                "{guess:#x} accepted but never handed out"
            );
            hits += 1;
        }
    }
    assert!(hits <= 1, "{hits} random guesses named live handles");
}

const APERTURE: u64 = kvmpager::abi::layout::APERTURE_START;

/// Creates a VMO, maps it read-write at the aperture start, stores 0x5a through the mapping,
/// reads the byte back with VmoRead, unmaps, and exits with the byte (or the failing status).
/// With `touch_after_unmap` it stores through the old address after unmapping.
fn map_store_read(touch_after_unmap: bool) -> Vec<u8> {
    let mut c = create_vmo_then(&[0x89, 0xFA]); // mov edx, edi (vmo)
    c.extend([0xBF, 3, 0, 0, 0, 0x48, 0xBE]); // mov edi, READ|WRITE; mov rsi, imm64
    c.extend(APERTURE.to_le_bytes());
    c.extend([0x45, 0x31, 0xD2, 0x41, 0xB8, 0, 0x10, 0, 0]); // xor r10d; mov r8d, 0x1000
    c.extend([0xB8, 22, 0, 0, 0, 0xE7, 0xE1]); // VmarMap
    let mut body = vec![0xC6, 0x06, 0x5A]; // mov byte [rsi], 0x5a
    body.extend([0x8B, 0x3C, 0x25, 0, 0, 0x20, 0]); // mov edi, [0x200000]
    body.extend([0xBE, 0, 0x10, 0x20, 0, 0x31, 0xD2]); // mov esi, 0x201000; xor edx, edx
    body.extend([0x41, 0xBA, 1, 0, 0, 0, 0xB8, 8, 0, 0, 0, 0xE7, 0xE1]); // VmoRead(.., 1)
    body.extend([0x48, 0xBF]); // mov rdi, APERTURE
    body.extend(APERTURE.to_le_bytes());
    body.extend([0xBE, 0, 0x10, 0, 0, 0xB8, 23, 0, 0, 0, 0xE7, 0xE1]); // VmarUnmap(.., 0x1000)
    if touch_after_unmap {
        body.extend([0xC6, 0x07, 0x5A]); // mov byte [rdi], 0x5a
    }
    body.extend([0x0F, 0xB6, 0x3C, 0x25, 0, 0x10, 0x20, 0]); // movzx edi, byte [0x201000]
    // On a failed map: exit with the status.
    c.extend([0x48, 0x89, 0xC7, 0x48, 0x85, 0xFF, 0x75, body.len() as u8]); // mov rdi, rax; test; jnz
    c.extend(body);
    with_exit(c)
}

#[test]
fn vmar_map_gives_the_guest_the_vmo_and_unmap_takes_it_away() {
    if skip_without_kvm() {
        return;
    }
    let r = run_code(&map_store_read(false), false);
    assert_eq!(r.exit_code, Some(0x5a), "{}", r.stop);
    let r = run_code(&map_store_read(true), true);
    assert_eq!(
        r.stop,
        StopReason::Mmio {
            vcpu: 0,
            addr: APERTURE,
            dir: "write"
        }
    );
}
