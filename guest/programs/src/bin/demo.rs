//! The default micro-VM: checksums a memory image the VMM never loaded (each page arrives on
//! first touch from the host pager), prints the checksum and the expected one, and exits 0
//! only if they match.
//!
//! The image layout is `kvmpager_vmm::demo`'s: a header page at 16 MiB (magic `KVMPDEMO`,
//! version, data address, data length, FNV-1a checksum over the data's 64-bit words).
#![no_std]
#![no_main]

use rt::println;

rt::entry!(main);

/// Guest-physical address of the header page (`kvmpager_vmm::demo::HEADER_GPA`).
const HEADER_GPA: u64 = 16 << 20;
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn main(vcpu: usize, _ncpus: usize, ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    if ram < HEADER_GPA + 4096 {
        println!("demo: needs more than {} MiB of RAM", HEADER_GPA >> 20);
        return 2;
    }
    // SAFETY: RAM is identity mapped and the header page lies inside it (checked above).
    let hdr = unsafe { core::slice::from_raw_parts(HEADER_GPA as *const u64, 5) };
    if hdr[0] != u64::from_le_bytes(*b"KVMPDEMO") || hdr[1] & 0xffff_ffff != 1 {
        println!("demo: no demo image at {HEADER_GPA:#x} (run `kvmpager run` without --image)");
        return 3;
    }
    let (data, len, expected) = (hdr[2], hdr[3], hdr[4]);
    if len % 8 != 0 || data.checked_add(len).is_none_or(|end| end > ram) {
        println!("demo: bad header: data {data:#x} + {len:#x} does not fit {ram:#x} of RAM");
        return 3;
    }
    let t0 = rt::sys::clock_monotonic();
    // SAFETY: `data..data + len` lies inside identity-mapped RAM (checked above) and nothing
    // else writes it.
    let words = unsafe { core::slice::from_raw_parts(data as *const u64, (len / 8) as usize) };
    let mut h = FNV_BASIS;
    for &w in words {
        h = (h ^ w).wrapping_mul(FNV_PRIME);
    }
    let ms = (rt::sys::clock_monotonic() - t0) / 1_000_000;
    let verdict = if h == expected { "ok" } else { "MISMATCH" };
    println!(
        "demo: checksummed {} MiB of memory image at {data:#x} in {ms} ms: {h:#018x}, expected {expected:#018x}: {verdict}",
        len >> 20
    );
    if h == expected { 0 } else { 1 }
}
