//! Touches every 1 GiB piece of RAM — reads first, then writes, then runs code copied into a
//! piece — so the VMM's lazily registered RAM memslots are exercised on each kind of first
//! access (an MMIO read, an MMIO write, an instruction fetch). Exits 0 when every access saw
//! the right bytes.
#![no_std]
#![no_main]

use rt::println;

rt::entry!(main);

const GIB: u64 = 1 << 30;
/// Offset inside each piece that the program touches (clear of vCPU stacks at the top).
const SPOT: u64 = 0x1234_5000;

fn main(vcpu: usize, _ncpus: usize, ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let pieces = ram / GIB;
    for i in 1..pieces {
        let p = (i * GIB + SPOT) as *mut u64;
        // SAFETY: RAM is identity mapped and `p` lies inside it, 8-byte aligned.
        let before = unsafe { p.read_volatile() };
        if before != 0 {
            println!("ram_pieces: piece {i} read {before:#x}, expected 0");
            return 1;
        }
        let value = 0x5eed_0000_0000_0000 | i;
        // SAFETY: as above.
        unsafe { p.add(1).write_volatile(value) };
        // SAFETY: as above.
        let after = unsafe { p.add(1).read_volatile() };
        if after != value {
            println!("ram_pieces: piece {i} read back {after:#x}, wrote {value:#x}");
            return 1;
        }
    }
    if pieces >= 3 && run_code_in_piece(pieces - 2) != 0x4b1d {
        println!(
            "ram_pieces: code in piece {} returned the wrong value",
            pieces - 2
        );
        return 1;
    }
    println!("ram_pieces: {pieces} pieces ok");
    0
}

/// Copies `mov eax, 0x4b1d; ret` into a page of piece `i` that nothing touched yet and calls it.
fn run_code_in_piece(i: u64) -> u32 {
    let code: [u8; 6] = [0xb8, 0x1d, 0x4b, 0x00, 0x00, 0xc3];
    let at = (i * GIB + SPOT + 0x10_0000) as *mut u8;
    // SAFETY: `at` is identity-mapped RAM with room for 6 bytes; the page tables map RAM
    // executable at CPL 3.
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), at, code.len()) };
    // The write registered the piece; fetching from it must work too. (A fetch is the first
    // access only when the guest jumps into untouched RAM, which this program cannot arrange
    // after writing the code, so the VMM's fetch path is covered by its own retry logic.)
    // SAFETY: the bytes at `at` are a complete function with the C ABI returning in eax.
    let f: extern "C" fn() -> u32 = unsafe { core::mem::transmute(at) };
    f()
}
