//! Calls every call number 0..=40 (and a few huge ones) with pseudo-random garbage arguments:
//! bad handles, wild pointers, huge lengths. `Exit` and `Snapshot` are skipped, and
//! `TestReport` only ever gets pointers outside guest RAM, so it can't record a result.
//!
//! Pointers are either inside a 4 KiB scratch buffer with a length that fits it, or outside
//! guest RAM, so whatever the VMM accepts can only write the scratch buffer. Handles created
//! by calls that happen to succeed are closed again. The run is deterministic (fixed seed).
//!
//! Prints `garbage: <n> calls` and a count per status, then exits with 0 — or with 1 if a
//! call number the ABI doesn't define returned anything but `ZX_ERR_BAD_SYSCALL` (which
//! would mean the VMM decodes numbers it shouldn't, e.g. by truncating `rax` to 32 bits).
#![no_std]
#![no_main]

use core::cell::UnsafeCell;

use kvmpager_guest_programs::rng::Rng;
use rt::abi::Call;
use rt::hypercall::hypercall;
use rt::sys::{self, Handle, Status};
use rt::{Vec, println};

rt::entry!(main);

/// Rounds per call number.
const ROUNDS: usize = 64;
/// Highest call number tried (the ABI defines 0..=26).
const MAX_NR: u64 = 40;
/// Call numbers that must be unknown, and would alias real calls if truncated.
const HUGE_NRS: [u64; 5] = [
    (1 << 32) | Call::Exit as u64,
    (1 << 32) | Call::Snapshot as u64,
    1 << 63,
    u64::MAX,
    u64::MAX - 1,
];

const SCRATCH_SIZE: u64 = 4096;

#[repr(C, align(4096))]
struct Scratch(UnsafeCell<[u8; SCRATCH_SIZE as usize]>);

// SAFETY: only vCPU 0 uses it (the others park), and only through raw pointers.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch(UnsafeCell::new([0; SCRATCH_SIZE as usize]));

fn scratch() -> u64 {
    SCRATCH.0.get() as u64
}

/// The garbage [`Rng`] draws: scalars, handles, pointers.
trait Garbage {
    /// A garbage scalar: sizes, offsets, options, rights, ops, keys.
    fn value(&mut self) -> u64;
    /// A handle that can't be valid (garbage never keeps a handle it created).
    fn handle(&mut self) -> u64;
    /// An address outside guest RAM (or overflowing), with any length.
    fn wild(&mut self, ram: u64) -> (u64, u64);
    /// A pointer/length pair: inside the scratch buffer, or outside guest RAM, or a scratch
    /// pointer with a length that reaches past the end of RAM.
    fn buffer(&mut self, ram: u64) -> (u64, u64);
    /// An out pointer for `size` bytes: in scratch (maybe unaligned) or outside RAM.
    fn out(&mut self, ram: u64, size: u64) -> (u64, bool);
}

impl Garbage for Rng {
    fn value(&mut self) -> u64 {
        match self.below(10) {
            0 => 0,
            1 => 1,
            2 => 4096,
            3 => 4095,
            4 => u64::MAX,
            5 => 1 << 63,
            6 => self.below(16) * 4096,
            7 => self.next_u64() & 0xffff_ffff,
            8 => self.below(64),
            _ => self.next_u64(),
        }
    }

    fn handle(&mut self) -> u64 {
        match self.below(7) {
            0 => 0,
            1 => 1 + self.below(16),
            2 => self.next_u64() & 0xffff,
            3 => self.next_u64() & 0xffff_ffff,
            4 => u32::MAX as u64,
            5 => (1 << 32) | self.below(16),
            _ => self.next_u64(),
        }
    }

    fn wild(&mut self, ram: u64) -> (u64, u64) {
        let ptr = match self.below(5) {
            0 => ram + self.below(8192),
            1 => u64::MAX - self.below(64),
            2 => rt::abi::layout::APERTURE_START + self.below(1 << 20),
            3 => self.next_u64() | (1 << 47),
            _ => ram,
        };
        (ptr, self.value())
    }

    fn buffer(&mut self, ram: u64) -> (u64, u64) {
        match self.below(4) {
            0 => {
                let off = self.below(SCRATCH_SIZE + 1);
                (scratch() + off, self.below(SCRATCH_SIZE - off + 1))
            }
            1 => {
                let len = match self.below(3) {
                    0 => ram,
                    1 => u64::MAX,
                    _ => 1 << 62,
                };
                (scratch() + self.below(SCRATCH_SIZE), len)
            }
            _ => self.wild(ram),
        }
    }

    fn out(&mut self, ram: u64, size: u64) -> (u64, bool) {
        if self.below(2) == 0 {
            (scratch() + self.below(SCRATCH_SIZE - size + 1), true)
        } else {
            (self.wild(ram).0, false)
        }
    }
}

/// What the VMM may do with one argument.
#[derive(Clone, Copy)]
enum Arg {
    Val,
    Handle,
    /// A buffer; the length goes in argument `.0`.
    Buf(usize),
    /// Length of a buffer (filled in by its `Buf`).
    Len,
    /// An out pointer for this many bytes; a handle when it is 4.
    Out(u64),
    /// A port-wait deadline, always in the past so no wait blocks.
    Deadline,
    /// A pointer that is always outside RAM (TestReport).
    Wild,
}

fn signature(call: Call) -> Option<&'static [Arg]> {
    use Arg::*;
    Some(match call {
        Call::Exit | Call::Snapshot => return None,
        Call::Null | Call::ClockGetMonotonic | Call::VcpuCount => &[],
        Call::ConsoleWrite => &[Buf(1), Len],
        Call::HandleClose => &[Handle],
        Call::HandleDuplicate | Call::HandleReplace => &[Handle, Val, Out(4)],
        Call::VmoCreate => &[Val, Val, Out(4)],
        Call::VmoRead | Call::VmoWrite => &[Handle, Buf(3), Val, Len],
        Call::VmoGetSize => &[Handle, Out(8)],
        Call::VmoOpRange => &[Handle, Val, Val, Val],
        Call::VmoCreateChild => &[Handle, Val, Val, Val, Out(4)],
        Call::VmoGetInfo => &[Handle, Out(48)],
        Call::PagerCreate | Call::PortCreate => &[Val, Out(4)],
        Call::PagerCreateVmo => &[Handle, Val, Handle, Val, Val, Out(4)],
        Call::PagerDetachVmo => &[Handle, Handle],
        Call::PagerVmoOp => &[Handle, Handle, Val, Val, Val, Handle, Val],
        Call::PagerSupplyPages => &[Handle, Handle, Val, Val, Handle, Val],
        Call::PagerOpRange => &[Handle, Val, Handle, Val, Val, Val],
        Call::PortWait => &[Handle, Deadline, Out(48)],
        Call::VmarMap => &[Val, Val, Handle, Val, Val],
        Call::VmarUnmap => &[Val, Val],
        Call::TestReport => &[Wild, Val, Val, Wild, Val],
        Call::VmoSetSize => &[Handle, Val],
        Call::PagerQueryDirtyRanges => &[Handle, Handle, Val, Val, Buf(5), Len, Out(16)],
        Call::PagerQueryVmoStats => &[Handle, Handle, Val, Buf(4), Len],
        Call::KvmpagerSetExceptionPort => &[Handle, Val],
    })
}

/// Per-status counts.
struct Tally(Vec<(i32, u64)>);

impl Tally {
    fn add(&mut self, s: Status) {
        match self.0.iter_mut().find(|(code, _)| *code == s.0) {
            Some((_, n)) => *n += 1,
            None => self.0.push((s.0, 1)),
        }
    }
}

/// Builds garbage arguments for `sig`; returns them and the handle out pointer, if any, that
/// lies in scratch.
fn garbage_args(rng: &mut Rng, sig: &[Arg], ram: u64) -> ([u64; 8], Option<u64>) {
    let mut a = [0u64; 8];
    for x in a.iter_mut() {
        *x = rng.value();
    }
    let mut handle_out = None;
    for (i, arg) in sig.iter().enumerate() {
        match *arg {
            Arg::Val | Arg::Len => {}
            Arg::Handle => a[i] = rng.handle(),
            Arg::Buf(len_at) => {
                let (p, l) = rng.buffer(ram);
                a[i] = p;
                a[len_at] = l;
            }
            Arg::Out(size) => {
                let (p, in_scratch) = rng.out(ram, size);
                a[i] = p;
                if in_scratch && size == 4 {
                    handle_out = Some(p);
                }
            }
            Arg::Deadline => {
                a[i] = match rng.below(4) {
                    0 => 0,
                    1 => -1i64 as u64,
                    2 => i64::MIN as u64,
                    _ => sys::clock_monotonic() as u64,
                }
            }
            Arg::Wild => a[i] = rng.wild(ram).0,
        }
    }
    // ConsoleWrite: don't print scratch contents (garbage bytes) to the console.
    if let [Arg::Buf(1), Arg::Len] = sig
        && (scratch()..scratch() + SCRATCH_SIZE).contains(&a[0])
    {
        a[1] = 0;
    }
    (a, handle_out)
}

fn main(vcpu: usize, _ncpus: usize, ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let mut rng = Rng::from_state(0x9e37_79b9_7f4a_7c15);
    let mut tally = Tally(Vec::new());
    let mut calls = 0u64;
    let mut closed = 0u64;
    let mut violations = 0u64;
    let nrs = (0..=MAX_NR).chain(HUGE_NRS);
    for nr in nrs {
        let known = Call::from_nr(nr);
        let sig: &[Arg] = match known {
            Some(c) => match signature(c) {
                Some(s) => s,
                None => continue,
            },
            None => &[],
        };
        for _ in 0..ROUNDS {
            let (args, handle_out) = garbage_args(&mut rng, sig, ram);
            // SAFETY: every pointer argument either lies in SCRATCH with a length that fits
            // it or lies outside guest RAM (see `Garbage::buffer`/`out`/`wild`), so the VMM can
            // write nothing but SCRATCH; Exit and Snapshot are never called.
            let rax = unsafe { hypercall(nr, args) };
            calls += 1;
            let status = Status::from_rax(rax);
            if known.is_none() && status != Status::ERR_BAD_SYSCALL {
                violations += 1;
                println!("garbage: unknown call {nr:#x} returned {rax:#x}");
            }
            match known {
                Some(Call::ClockGetMonotonic | Call::VcpuCount) => {}
                _ => tally.add(status),
            }
            if status == Status::OK
                && let Some(p) = handle_out
            {
                // SAFETY: `p` is a 4-byte range inside SCRATCH the VMM wrote a handle to.
                let h = unsafe { core::ptr::read_unaligned(p as *const u32) };
                if Handle(h).close().is_ok() {
                    closed += 1;
                }
            }
        }
    }
    println!("garbage: {calls} calls, {closed} handles created and closed");
    tally.0.sort_unstable();
    for (code, n) in &tally.0 {
        println!("garbage: {:?}: {n}", Status(*code));
    }
    if violations != 0 {
        println!("garbage: {violations} unknown call numbers were accepted");
        return 1;
    }
    0
}
