//! Snapshot test guest: vCPU 0 writes a known pattern over N MiB at 32 MiB, asks for a
//! snapshot, then verifies every byte and checks that every other vCPU still runs; exits 0
//! when all is well. The other vCPUs count in a loop the whole time.
//!
//! Parameters come from a page at 16 MiB (`kvmpager_vmm::demo::write_pattern_params`): magic
//! `KVMPPATT`, N (MiB), seed, rounds, and optionally W (per mille); without it N = 32,
//! seed = 1, one round, W = 0. Each round is a snapshot followed by a full verification, and
//! then a rewrite of the first W/1000 of the pattern with the same words (so a restored VM
//! writes to - and copies - that much of its RAM without changing what it holds).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use rt::println;

rt::entry!(main);

const PARAMS_GPA: u64 = 16 << 20;
const PATTERN_GPA: u64 = 32 << 20;
const MAX_VCPUS: usize = 32;

static COUNTERS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn main(vcpu: usize, ncpus: usize, ram: u64) -> i64 {
    if vcpu != 0 {
        let c = &COUNTERS[vcpu % MAX_VCPUS];
        loop {
            c.fetch_add(1, Ordering::Relaxed);
            core::hint::spin_loop();
        }
    }
    // SAFETY: RAM is identity mapped; the parameter page lies inside it (RAM >= 64 MiB is
    // checked below before the pattern is touched, and 16 MiB < MIN).
    let params = unsafe { core::slice::from_raw_parts(PARAMS_GPA as *const u64, 5) };
    let (mib, seed, rounds, permille) = if params[0] == u64::from_le_bytes(*b"KVMPPATT") {
        (params[1], params[2], params[3].max(1), params[4].min(1000))
    } else {
        (32, 1, 1, 0)
    };
    let len = mib << 20;
    let stacks = 64 * 1024 * ncpus as u64;
    if PATTERN_GPA + len + stacks > ram {
        println!(
            "pattern: {mib} MiB at {PATTERN_GPA:#x} does not fit {} MiB of RAM",
            ram >> 20
        );
        return 2;
    }
    let words = (len / 8) as usize;
    // SAFETY: `PATTERN_GPA..+len` lies inside RAM below the stacks (checked above); only this
    // vCPU touches it.
    let mem = unsafe { core::slice::from_raw_parts_mut(PATTERN_GPA as *mut u64, words) };
    for (i, w) in mem.iter_mut().enumerate() {
        *w = splitmix64(seed ^ i as u64);
    }
    println!("pattern: wrote {mib} MiB at {PATTERN_GPA:#x} (seed {seed})");
    for round in 1..=rounds {
        if let Err(s) = rt::sys::snapshot() {
            println!("pattern: snapshot failed: {s}");
            return 4;
        }
        println!("pattern: snapshot {round} of {rounds} returned ZX_OK; verifying");
        let code = verify(mem, seed, ncpus);
        if code != 0 {
            return code;
        }
        rewrite(mem, seed, permille);
    }
    println!("pattern: verified every byte of {mib} MiB; {ncpus} vCPUs running: ok");
    0
}

/// Writes the first `permille`/1000 of the pattern again, word for word the same.
fn rewrite(mem: &mut [u64], seed: u64, permille: u64) {
    let n = (mem.len() as u64 * permille / 1000) as usize;
    for (i, w) in mem.iter_mut().enumerate().take(n) {
        // SAFETY: `w` is a valid, exclusive reference into the pattern.
        unsafe { core::ptr::write_volatile(w, splitmix64(seed ^ i as u64)) };
    }
    if n > 0 {
        println!("pattern: rewrote {permille} per mille of the pattern");
    }
}

/// Checks every word of the pattern and that every other vCPU still counts.
fn verify(mem: &[u64], seed: u64, ncpus: usize) -> i64 {
    let mut bad = 0u64;
    for (i, &w) in mem.iter().enumerate() {
        let want = splitmix64(seed ^ i as u64);
        if w != want {
            if bad == 0 {
                let at = PATTERN_GPA + 8 * i as u64;
                println!("pattern: first mismatch at {at:#x}: {w:#018x}, expected {want:#018x}");
            }
            bad += 1;
        }
    }
    if bad != 0 {
        println!("pattern: {bad} words differ");
        return 1;
    }
    for (k, counter) in COUNTERS
        .iter()
        .enumerate()
        .take(ncpus.min(MAX_VCPUS))
        .skip(1)
    {
        let before = counter.load(Ordering::Relaxed);
        let t0 = rt::sys::clock_monotonic();
        while counter.load(Ordering::Relaxed) == before {
            if rt::sys::clock_monotonic() - t0 > 5_000_000_000 {
                println!("pattern: vCPU {k} does not run");
                return 5;
            }
            core::hint::spin_loop();
        }
    }
    0
}
