//! Loads a guest program: an ELF64 x86-64 executable whose `PT_LOAD` segments go to their
//! physical addresses (`p_paddr`) in guest RAM.
//!
//! The result is a list of segments (bytes + address) rather than writes into guest memory,
//! because RAM is a VMO: the VM writes them through the kernel (`vmo_write`, or an aux VMO and
//! SUPPLY for pager-backed RAM). linux-loader's `Elf` loader writes into a `GuestMemory`
//! directly, so it does not fit that model; its ELF header types (`linux_loader::elf`) are
//! used to read the file, and every field is checked before use (the file is user input).

use linux_loader::elf::{EM_X86_64, Elf64_Ehdr, Elf64_Phdr, PT_LOAD};
use vm_memory::ByteValued;

use crate::layout::BOOT_AREA_END;

/// Errors loading a guest program.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The image is not a 64-bit little-endian x86-64 ELF executable.
    #[error("not an ELF64 x86-64 executable: {0}")]
    NotElf(&'static str),
    /// A header or segment lies outside the file.
    #[error("truncated ELF: {0} extends past the end of the file")]
    Truncated(&'static str),
    /// A segment would land outside guest RAM.
    #[error("segment at {addr:#x} (+{size:#x}) lies outside guest RAM (size {ram:#x})")]
    OutsideRam {
        /// Guest-physical load address.
        addr: u64,
        /// Size in memory.
        size: u64,
        /// RAM size.
        ram: u64,
    },
    /// A segment overlaps the boot area (GDT, IDT, page tables below 1 MiB).
    #[error("segment at {addr:#x} (+{size:#x}) overlaps the boot area below {BOOT_AREA_END:#x}")]
    OverlapsBootArea {
        /// Guest-physical load address.
        addr: u64,
        /// Size in memory.
        size: u64,
    },
    /// The entry point is not inside a loaded segment.
    #[error("entry point {0:#x} is not inside a loaded segment")]
    BadEntry(u64),
    /// The segments' memory sizes add up to more than [`MAX_PROGRAM_MEMORY`].
    #[error("the program needs {0:#x} bytes of memory; at most {MAX_PROGRAM_MEMORY:#x} are loaded")]
    TooLarge(u64),
}

/// Most memory a program's segments (`.bss` included) may take: the VMM builds them in host
/// memory before the guest starts.
pub const MAX_PROGRAM_MEMORY: u64 = 256 << 20;

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// One loadable segment: `data` goes at `addr`, followed by `mem_size - data.len()` zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub addr: u64,
    /// Bytes from the file.
    pub data: Vec<u8>,
    /// Size in memory (at least `data.len()`).
    pub mem_size: u64,
}

/// A parsed guest program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Entry point (guest-physical = guest-virtual, identity mapped).
    pub entry: u64,
    /// The `PT_LOAD` segments.
    pub segments: Vec<Segment>,
}

impl Program {
    /// Lowest and highest (exclusive) addresses the program occupies.
    pub fn extent(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.addr).min().unwrap_or(0);
        let hi = self
            .segments
            .iter()
            .map(|s| s.addr + s.mem_size)
            .max()
            .unwrap_or(0);
        (lo, hi)
    }
}

/// Reads a `T` from `b` at byte `at` (unaligned), or says which part is truncated.
fn read<T: ByteValued + Default>(b: &[u8], at: usize, what: &'static str) -> Result<T> {
    let mut v = T::default();
    let size = std::mem::size_of::<T>();
    let bytes = at
        .checked_add(size)
        .and_then(|end| b.get(at..end))
        .ok_or(Error::Truncated(what))?;
    v.as_mut_slice().copy_from_slice(bytes);
    Ok(v)
}

/// Parses `elf` and checks that every segment fits in `ram_size` bytes of RAM above the boot
/// area and that the entry point is inside one of them.
pub fn load(elf: &[u8], ram_size: u64) -> Result<Program> {
    let header: Elf64_Ehdr = read(elf, 0, "header")?;
    check_header(&header)?;
    let mut segments = Vec::new();
    for i in 0..usize::from(header.e_phnum) {
        let at =
            (header.e_phoff as usize).saturating_add(i.saturating_mul(header.e_phentsize.into()));
        let ph: Elf64_Phdr = read(elf, at, "program header")?;
        if ph.p_type == PT_LOAD {
            let seg = segment(elf, &ph)?;
            check_placement(&seg, ram_size)?;
            segments.push(seg);
        }
    }
    let total = segments
        .iter()
        .fold(0u64, |t, s| t.saturating_add(s.mem_size));
    if total > MAX_PROGRAM_MEMORY {
        return Err(Error::TooLarge(total));
    }
    let entry = header.e_entry;
    let inside = |s: &Segment| s.addr <= entry && entry - s.addr < s.mem_size;
    if !segments.iter().any(inside) {
        return Err(Error::BadEntry(entry));
    }
    Ok(Program { entry, segments })
}

fn check_header(h: &Elf64_Ehdr) -> Result<()> {
    if h.e_ident[..4] != *b"\x7fELF" {
        return Err(Error::NotElf("bad magic"));
    }
    if h.e_ident[4] != 2 || h.e_ident[5] != 1 {
        return Err(Error::NotElf("not 64-bit little-endian"));
    }
    if h.e_machine != EM_X86_64 {
        return Err(Error::NotElf("machine is not x86-64"));
    }
    if usize::from(h.e_phentsize) < std::mem::size_of::<Elf64_Phdr>() && h.e_phnum > 0 {
        return Err(Error::NotElf("program headers too small"));
    }
    Ok(())
}

/// The bytes and placement of the `PT_LOAD` segment `ph`.
fn segment(elf: &[u8], ph: &Elf64_Phdr) -> Result<Segment> {
    let data = usize::try_from(ph.p_offset)
        .ok()
        .zip(usize::try_from(ph.p_filesz).ok())
        .and_then(|(off, len)| elf.get(off..off.checked_add(len)?))
        .ok_or(Error::Truncated("segment"))?;
    Ok(Segment {
        addr: ph.p_paddr,
        data: data.to_vec(),
        mem_size: ph.p_memsz.max(ph.p_filesz),
    })
}

fn check_placement(s: &Segment, ram: u64) -> Result<()> {
    let (addr, size) = (s.addr, s.mem_size);
    let end = addr
        .checked_add(size)
        .ok_or(Error::OutsideRam { addr, size, ram })?;
    if end > ram {
        return Err(Error::OutsideRam { addr, size, ram });
    }
    if size > 0 && addr < BOOT_AREA_END {
        return Err(Error::OverlapsBootArea { addr, size });
    }
    Ok(())
}

/// Builds a minimal ELF64 executable with one `PT_LOAD` segment: `code` at `addr`, entry at
/// `addr`. Used by tests and micro guests.
pub fn tiny_elf(addr: u64, code: &[u8], mem_size: u64) -> Vec<u8> {
    let mut e = vec![0u8; 0x78];
    e[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    e[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    e[20..24].copy_from_slice(&1u32.to_le_bytes());
    e[24..32].copy_from_slice(&addr.to_le_bytes());
    e[32..40].copy_from_slice(&0x40u64.to_le_bytes()); // phoff
    e[52..54].copy_from_slice(&0x40u16.to_le_bytes()); // ehsize
    e[54..56].copy_from_slice(&0x38u16.to_le_bytes()); // phentsize
    e[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = 0x40;
    e[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
    e[ph + 4..ph + 8].copy_from_slice(&7u32.to_le_bytes()); // RWX
    e[ph + 8..ph + 16].copy_from_slice(&0x78u64.to_le_bytes());
    e[ph + 16..ph + 24].copy_from_slice(&addr.to_le_bytes());
    e[ph + 24..ph + 32].copy_from_slice(&addr.to_le_bytes());
    e[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
    e[ph + 40..ph + 48].copy_from_slice(&mem_size.max(code.len() as u64).to_le_bytes());
    e.extend_from_slice(code);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 16 << 20;

    #[test]
    fn tiny_elf_round_trips() {
        let elf = tiny_elf(0x100000, &[0x90, 0xf4], 0x2000);
        let p = load(&elf, RAM).unwrap();
        assert_eq!(p.entry, 0x100000);
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.segments[0].data, vec![0x90, 0xf4]);
        assert_eq!(p.extent(), (0x100000, 0x102000));
    }

    #[test]
    fn bad_images_are_rejected() {
        assert_eq!(load(b"", RAM), Err(Error::Truncated("header")));
        assert_eq!(load(&[0u8; 64], RAM), Err(Error::NotElf("bad magic")));
        let mut elf = tiny_elf(0x100000, &[0x90], 1);
        elf.truncate(0x60);
        assert_eq!(load(&elf, RAM), Err(Error::Truncated("program header")));
    }

    #[test]
    fn misplaced_segments_are_rejected() {
        let low = tiny_elf(0x8000, &[0x90], 1);
        assert!(matches!(
            load(&low, RAM),
            Err(Error::OverlapsBootArea { .. })
        ));
        let high = tiny_elf(RAM - 1, &[0x90, 0x90], 2);
        assert!(matches!(load(&high, RAM), Err(Error::OutsideRam { .. })));
        let wrap = tiny_elf(u64::MAX - 1, &[0x90, 0x90], 2);
        assert!(matches!(load(&wrap, RAM), Err(Error::OutsideRam { .. })));
    }

    #[test]
    fn entry_must_be_loaded() {
        let mut elf = tiny_elf(0x100000, &[0x90], 1);
        elf[24..32].copy_from_slice(&0x200000u64.to_le_bytes());
        assert_eq!(load(&elf, RAM), Err(Error::BadEntry(0x200000)));
    }

    #[test]
    fn corrupted_files_give_errors_not_panics() {
        let good = tiny_elf(0x10_0000, &[0xf4; 32], 0x2000);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut e = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % e.len();
                e[i] = (x >> 32) as u8;
            }
            let _ = load(&e, 64 << 20);
            let cut = (x as usize >> 8) % e.len();
            let _ = load(&e[..cut], 64 << 20);
        }
    }

    #[test]
    fn a_huge_bss_is_refused_before_anything_is_built() {
        let e = tiny_elf(0x10_0000, &[0xf4; 16], MAX_PROGRAM_MEMORY + 4096);
        assert!(matches!(load(&e, 64 << 30), Err(Error::TooLarge(_))));
        let ok = tiny_elf(0x10_0000, &[0xf4; 16], 1 << 20);
        assert!(load(&ok, 64 << 30).is_ok());
    }
}
