//! Boot-time CPU structures as bytes and register values: page tables, GDT, TSS, IDT, the CPL-0
//! exception stub, and the initial register state of each vCPU.
//!
//! Everything here is a pure function (no KVM, no guest memory), so it is unit-tested directly.
//! Guest programs run at CPL 3 with IOPL 3 (so `out` works); the only CPL-0 code is the
//! exception stub, which reports an exception on `EXCEPTION_PORT` and stops. The boot area
//! (below 1 MiB) is mapped supervisor-only: a guest cannot touch the structures here.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use kvmpager::abi::{EXCEPTION_PORT, ExceptionReport, HYPERCALL_PORT, layout as abi_layout};

use crate::layout::*;

/// Size of the boot area image ([`boot_area`]): guest-physical `0..BOOT_AREA_END`.
pub const BOOT_AREA_SIZE: usize = BOOT_AREA_END as usize;

/// Page-table entry bits: present, writable, user.
const PTE_P_RW_US: u64 = 0x7;
/// Page-table entry bits: present, writable, supervisor-only.
const PTE_P_RW: u64 = 0x3;
/// Page-table entry bit: large page (1 GiB in a PDPT, 2 MiB in a PD).
const PTE_PS: u64 = 0x80;
const GIB: u64 = 1 << 30;
const TWO_MIB: u64 = 2 << 20;

/// GDT limit: the five fixed descriptors and a TSS descriptor for every possible vCPU.
const GDT_LIMIT: u16 = (5 * 8 + 16 * crate::config::MAX_VCPUS as usize - 1) as u16;

/// Exception vectors for which the CPU pushes an error code.
const VECTORS_WITH_ERROR_CODE: [u8; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];
/// Number of exception vectors routed to the stub.
pub const EXCEPTION_VECTORS: usize = 32;
/// Bytes per vector entry in the stub.
const STUB_ENTRY_SIZE: usize = 16;

/// Guest-physical 1 GiB-slots (PDPT indices) that the identity map covers: RAM and aperture.
fn mapped_gibs(ram_size: u64) -> impl Iterator<Item = u64> {
    let ram = 0..ram_size.div_ceil(GIB);
    let first = abi_layout::APERTURE_START / GIB;
    ram.chain(first..first + abi_layout::APERTURE_SIZE / GIB)
}

/// Identity-mapping page tables for RAM and the aperture, placed at `PAGE_TABLES_START`
/// (PML4, then PDPT, then page directories — only GiB 0's when `gib_pages` is true —, then
/// one page table for the first 2 MiB).
///
/// Everything has the U/S bit so CPL-3 code can use it, except the boot area (below
/// `BOOT_AREA_END`, 1 MiB: these tables, the GDT, IDT, TSSs, exception stub and stacks), which
/// the first 2 MiB's page table maps supervisor-only: a CPL-3 access to it is an ordinary
/// page fault, so a guest cannot rewrite its own page tables.
pub fn page_tables(ram_size: u64, gib_pages: bool) -> Vec<u8> {
    let pml4 = PAGE_TABLES_START;
    let pdpt = pml4 + 0x1000;
    let mut t = vec![0u8; 0x2000];
    put_u64(&mut t, 0, pdpt | PTE_P_RW_US);
    for gib in mapped_gibs(ram_size) {
        let entry = if gib_pages && gib != 0 {
            (gib * GIB) | PTE_P_RW_US | PTE_PS
        } else {
            let pd = PAGE_TABLES_START + t.len() as u64;
            t.extend(page_directory(gib * GIB));
            pd | PTE_P_RW_US
        };
        put_u64(&mut t, 0x1000 + gib as usize * 8, entry);
    }
    // GiB 0 always comes first, so its page directory is the one at +0x2000.
    let pt = PAGE_TABLES_START + t.len() as u64;
    t.extend(boot_page_table());
    put_u64(&mut t, 0x2000, pt | PTE_P_RW_US);
    t
}

/// The page table of guest-physical `0..2 MiB` (4 KiB pages): the boot area supervisor-only,
/// the rest (the program at `GUEST_LOAD_ADDR`) user-accessible.
fn boot_page_table() -> Vec<u8> {
    let mut pt = vec![0u8; 0x1000];
    for i in 0..512u64 {
        let addr = i * 0x1000;
        let flags = if addr < BOOT_AREA_END {
            PTE_P_RW
        } else {
            PTE_P_RW_US
        };
        put_u64(&mut pt, i as usize * 8, addr | flags);
    }
    pt
}

/// One page directory mapping the 1 GiB starting at `base` with 2 MiB pages.
fn page_directory(base: u64) -> Vec<u8> {
    let mut pd = vec![0u8; 0x1000];
    for i in 0..512u64 {
        put_u64(
            &mut pd,
            i as usize * 8,
            (base + i * TWO_MIB) | PTE_P_RW_US | PTE_PS,
        );
    }
    pd
}

/// The GDT: null, kernel code, kernel data, user data, user code, then one 16-byte TSS
/// descriptor per vCPU.
pub fn gdt(vcpus: u32) -> Vec<u8> {
    let mut g = Vec::new();
    for d in [
        0u64,
        0x00AF_9A00_0000_FFFF, // KERNEL_CS: 64-bit code, DPL 0
        0x00CF_9200_0000_FFFF, // KERNEL_DS: data, DPL 0
        0x00CF_F200_0000_FFFF, // USER_DS: data, DPL 3
        0x00AF_FA00_0000_FFFF, // USER_CS: 64-bit code, DPL 3
    ] {
        g.extend_from_slice(&d.to_le_bytes());
    }
    for i in 0..vcpus {
        g.extend_from_slice(&tss_descriptor(tss_addr(i)));
    }
    g
}

/// A 64-bit available-TSS system descriptor for a TSS at `base` (limit 103).
fn tss_descriptor(base: u64) -> [u8; 16] {
    let limit = TSS_SIZE as u64 - 1;
    let low = (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | 0x89 << 40 // present, type 9 (64-bit TSS, available)
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&low.to_le_bytes());
    d[8..].copy_from_slice(&(base >> 32).to_le_bytes());
    d
}

/// Size of a TSS with its I/O permission bitmap (ports `0..IO_BITMAP_PORTS`) and the
/// terminating `0xff` byte the CPU may read past the last bitmap byte.
pub const TSS_SIZE: usize = 104 + IO_BITMAP_PORTS / 8 + 1;
/// Ports covered by the I/O bitmap; every port at or above is denied.
const IO_BITMAP_PORTS: usize = 256;

/// A 64-bit TSS whose RSP0 is `rsp0`, with an I/O permission bitmap that allows CPL 3 exactly
/// the ports a 32-bit `out` to the hypercall or exception port touches (`0xe1..=0xe5`).
///
/// The bitmap matters where the guest's IOPL does not survive (PVM keeps the hardware
/// RFLAGS, IOPL 0, after the first exit and its emulator then checks the bitmap); on VMX/SVM
/// IOPL 3 skips the check. Either way the ABI ports reach the VMM from CPL 3.
pub fn tss(rsp0: u64) -> [u8; TSS_SIZE] {
    let mut t = [0u8; TSS_SIZE];
    t[4..12].copy_from_slice(&rsp0.to_le_bytes());
    t[0x66..0x68].copy_from_slice(&104u16.to_le_bytes());
    t[104..].fill(0xff);
    for port in HYPERCALL_PORT..EXCEPTION_PORT + 4 {
        t[104 + usize::from(port) / 8] &= !(1 << (port % 8));
    }
    t
}

/// The IDT: vectors 0..32 are DPL-0 interrupt gates to the stub entries; the rest not present.
pub fn idt() -> Vec<u8> {
    let mut idt = vec![0u8; 256 * 16];
    for v in 0..EXCEPTION_VECTORS {
        let off = STUB_START + (v * STUB_ENTRY_SIZE) as u64;
        let low = (off & 0xffff)
            | u64::from(KERNEL_CS) << 16
            | 0x8E << 40 // present, DPL 0, 64-bit interrupt gate
            | ((off >> 16) & 0xffff) << 48;
        idt[v * 16..v * 16 + 8].copy_from_slice(&low.to_le_bytes());
        idt[v * 16 + 8..v * 16 + 16].copy_from_slice(&(off >> 32).to_le_bytes());
    }
    idt
}

/// The CPL-0 exception stub (hand-assembled).
///
/// Entry `v` (at `STUB_START + 16 * v`): `push 0` (when the CPU pushed no error code),
/// `push v`, `jmp common`. Common code:
/// ```text
/// pop rax            ; vector
/// pop rdi            ; error code
/// mov rsi, [rsp]     ; faulting rip from the interrupt frame
/// mov rdx, cr2
/// out EXCEPTION_PORT, eax
/// cli; hlt; jmp .-1  ; never resumed: the VMM stops the VM
/// ```
pub fn exception_stub() -> Vec<u8> {
    let common = EXCEPTION_VECTORS * STUB_ENTRY_SIZE;
    let mut s = vec![0xCC; common]; // int3 padding
    for v in 0..EXCEPTION_VECTORS {
        let mut e = Vec::with_capacity(STUB_ENTRY_SIZE);
        if !VECTORS_WITH_ERROR_CODE.contains(&(v as u8)) {
            e.extend_from_slice(&[0x6A, 0x00]); // push 0
        }
        e.extend_from_slice(&[0x6A, v as u8]); // push v
        let next = v * STUB_ENTRY_SIZE + e.len() + 5;
        let rel = (common as i32) - (next as i32);
        e.push(0xE9); // jmp rel32
        e.extend_from_slice(&rel.to_le_bytes());
        s[v * STUB_ENTRY_SIZE..v * STUB_ENTRY_SIZE + e.len()].copy_from_slice(&e);
    }
    s.extend_from_slice(&[
        0x58, // pop rax
        0x5F, // pop rdi
        0x48,
        0x8B,
        0x34,
        0x24, // mov rsi, [rsp]
        0x0F,
        0x20,
        0xD2, // mov rdx, cr2
        0xE7,
        EXCEPTION_PORT as u8, // out EXCEPTION_PORT, eax
        0xFA,
        0xF4,
        0xEB,
        0xFD, // cli; hlt; jmp back to hlt
    ]);
    s
}

/// What [`exception_stub`] reports, read back from the registers at its `out`.
pub fn exception_report(vector: u8, r: &kvm_regs) -> ExceptionReport {
    ExceptionReport {
        vector,
        error_code: r.rdi,
        rip: r.rsi,
        cr2: r.rdx,
    }
}

/// The whole boot area (guest-physical `0..BOOT_AREA_END`) as one image.
pub fn boot_area(vcpus: u32, ram_size: u64, gib_pages: bool) -> Vec<u8> {
    let mut img = vec![0u8; BOOT_AREA_SIZE];
    let mut put = |addr: u64, bytes: &[u8]| {
        img[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
    };
    put(GDT_START, &gdt(vcpus));
    put(IDT_START, &idt());
    for i in 0..vcpus {
        put(tss_addr(i), &tss(exception_stack_top(i)));
    }
    put(STUB_START, &exception_stub());
    put(PAGE_TABLES_START, &page_tables(ram_size, gib_pages));
    img
}

/// Size in bytes of the page tables [`page_tables`] builds.
pub fn page_tables_size(ram_size: u64, gib_pages: bool) -> u64 {
    let pds = if gib_pages {
        1
    } else {
        mapped_gibs(ram_size).count() as u64
    };
    0x2000 + pds * 0x1000 + 0x1000
}

/// Boot-time contents of guest RAM as whole pages: the boot area and the program's segments.
///
/// Plain RAM writes the runs with `vmo_write`; pager-backed RAM supplies them before the vCPUs
/// start, so only pages the guest touches later are faulted in.
#[derive(Debug, Default)]
pub struct BootImage {
    pages: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl BootImage {
    /// Copies `bytes` to guest-physical `gpa` in the image (adding zero pages as needed).
    pub fn write(&mut self, gpa: u64, bytes: &[u8]) {
        let page = PAGE as u64;
        let (mut at, mut rest) = (gpa, bytes);
        while !rest.is_empty() {
            let base = at & !(page - 1);
            let off = (at - base) as usize;
            let n = rest.len().min(PAGE - off);
            let p = self.pages.entry(base).or_insert_with(|| vec![0; PAGE]);
            p[off..off + n].copy_from_slice(&rest[..n]);
            (at, rest) = (at + n as u64, &rest[n..]);
        }
    }

    /// Adds zero pages for `gpa..gpa+len` where there are none yet (e.g. `.bss`).
    pub fn zero(&mut self, gpa: u64, len: u64) {
        let page = PAGE as u64;
        let mut base = gpa & !(page - 1);
        while base < gpa + len {
            self.pages.entry(base).or_insert_with(|| vec![0; PAGE]);
            base += page;
        }
    }

    /// Contiguous runs of pages as `(gpa, bytes)`, in address order.
    pub fn runs(&self) -> Vec<(u64, Vec<u8>)> {
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (&gpa, page) in &self.pages {
            match runs.last_mut() {
                Some((start, data)) if *start + data.len() as u64 == gpa => {
                    data.extend_from_slice(page)
                }
                _ => runs.push((gpa, page.clone())),
            }
        }
        runs
    }
}

const PAGE: usize = kvmpager::abi::PAGE_SIZE as usize;

/// The boot image of a VM: boot area plus the program's segments (with their `.bss`).
pub fn boot_image(
    program: &crate::loader::Program,
    vcpus: u32,
    ram_size: u64,
    gib_pages: bool,
) -> BootImage {
    let mut img = BootImage::default();
    img.write(0, &boot_area(vcpus, ram_size, gib_pages));
    for seg in &program.segments {
        img.zero(seg.addr, seg.mem_size);
        img.write(seg.addr, &seg.data);
    }
    img
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// CPU feature bits the boot state depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// CPUID.80000001H:EDX.Page1GB.
    pub gib_pages: bool,
    /// CPUID.80000001H:EDX.NX.
    pub nx: bool,
}

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NX: u64 = 1 << 11;
/// RFLAGS: reserved bit 1 and IOPL = 3.
pub const INITIAL_RFLAGS: u64 = 0x2 | 0x3000;

fn segment(selector: u16, type_: u8, dpl: u8, l: u8, db: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl,
        db,
        s: 1,
        l,
        g: 1,
        ..Default::default()
    }
}

/// Special registers of vCPU `index`: long mode, CPL 3, its own TSS, the shared GDT/IDT.
///
/// `base` supplies the fields KVM owns (APIC base, interrupt bitmap); the rest is overwritten.
pub fn initial_sregs(base: kvm_sregs, index: u32, features: CpuFeatures) -> kvm_sregs {
    let mut s = base;
    s.cs = segment(USER_CS, 0xb, 3, 1, 0);
    let data = segment(USER_DS, 0x3, 3, 0, 1);
    (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
    s.tr = kvm_segment {
        base: tss_addr(index),
        limit: TSS_SIZE as u32 - 1,
        selector: tss_selector(index),
        type_: 0xb, // 64-bit TSS, busy
        present: 1,
        ..Default::default()
    };
    s.ldt = kvm_segment {
        type_: 2,
        unusable: 1,
        ..Default::default()
    };
    s.gdt.base = GDT_START;
    s.gdt.limit = GDT_LIMIT;
    s.idt.base = IDT_START;
    s.idt.limit = 256 * 16 - 1;
    s.cr0 = CR0_PE | CR0_MP | CR0_NE | CR0_WP | CR0_PG;
    s.cr3 = PAGE_TABLES_START;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.efer = EFER_LME | EFER_LMA | if features.nx { EFER_NX } else { 0 };
    s
}

/// General registers at entry: `rip` = entry, `rdi` = vCPU index, `rsi` = vCPU count,
/// `rdx` = RAM size, `rsp` = top of this vCPU's stack.
pub fn initial_regs(entry: u64, index: u32, vcpus: u32, ram_size: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rdi: u64::from(index),
        rsi: u64::from(vcpus),
        rdx: ram_size,
        rsp: vcpu_stack_top(ram_size, index),
        rflags: INITIAL_RFLAGS,
        ..Default::default()
    }
}

/// x87/SSE state at entry: default control words.
pub fn initial_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn gib_page_tables_map_ram_and_aperture() {
        let t = page_tables(256 << 20, true);
        assert_eq!(t.len() as u64, page_tables_size(256 << 20, true));
        assert_eq!(u64_at(&t, 0), (PAGE_TABLES_START + 0x1000) | 7);
        // GiB 0 goes through a page directory (for the boot area's page table).
        assert_eq!(u64_at(&t, 0x1000), (PAGE_TABLES_START + 0x2000) | 7);
        assert_eq!(u64_at(&t, 0x2000 + 8), (2 << 20) | 0x87);
        assert_eq!(u64_at(&t, 0x1000 + 8), 0); // RAM is under 1 GiB
        assert_eq!(u64_at(&t, 0x1000 + 64 * 8), (64 << 30) | 0x87);
        assert_eq!(u64_at(&t, 0x1000 + 127 * 8), (127 << 30) | 0x87);
        assert_eq!(u64_at(&t, 0x1000 + 128 * 8), 0);
    }

    #[test]
    fn two_mib_page_tables_fit_and_map_ram_and_aperture() {
        let ram = 3 << 30;
        let t = page_tables(ram, false);
        assert_eq!(t.len() as u64, page_tables_size(ram, false));
        assert!(PAGE_TABLES_START + t.len() as u64 <= PAGE_TABLES_END);
        let pd1 = u64_at(&t, 0x1000 + 8) & !0xfff;
        let off = (pd1 - PAGE_TABLES_START) as usize;
        assert_eq!(u64_at(&t, off + 8), ((1 << 30) + (2 << 20)) | 0x87);
        let ap = u64_at(&t, 0x1000 + 64 * 8) & !0xfff;
        assert_eq!(
            u64_at(&t, (ap - PAGE_TABLES_START) as usize),
            (64 << 30) | 0x87
        );
        // The largest RAM still fits the page-table area.
        let max = page_tables_size(crate::config::MAX_MEMORY, false);
        assert!(PAGE_TABLES_START + max <= PAGE_TABLES_END);
    }

    /// The boot area is supervisor-only, in both page-table shapes; the program's pages and
    /// everything above are user pages; every address keeps its identity mapping.
    #[test]
    fn the_boot_area_is_supervisor_only() {
        for gib_pages in [true, false] {
            let t = page_tables(256 << 20, gib_pages);
            assert_eq!(t.len() as u64, page_tables_size(256 << 20, gib_pages));
            let pd = (u64_at(&t, 0x1000) & !0xfff) - PAGE_TABLES_START;
            let pde = u64_at(&t, pd as usize);
            assert_eq!(pde & 0x87, 7, "PD entry 0 points to a page table");
            let pt = ((pde & !0xfff) - PAGE_TABLES_START) as usize;
            for i in 0..512u64 {
                let e = u64_at(&t, pt + i as usize * 8);
                assert_eq!(e & !0xfff, i * 0x1000, "identity map of page {i}");
                let user = i * 0x1000 >= BOOT_AREA_END;
                assert_eq!(e & 0xfff, if user { 7 } else { 3 }, "page {i}");
            }
            assert!(PAGE_TABLES_START + t.len() as u64 <= PAGE_TABLES_END);
        }
    }

    #[test]
    fn gdt_has_user_segments_and_tss_descriptors() {
        let g = gdt(2);
        assert_eq!(g.len(), 5 * 8 + 2 * 16);
        assert_eq!(u64_at(&g, USER_CS as usize & !7) >> 45 & 3, 3); // DPL 3
        let tss1 = u64_at(&g, tss_selector(1) as usize);
        assert_eq!(tss1 & 0xffff, TSS_SIZE as u64 - 1);
        assert_eq!((tss1 >> 16) & 0xff_ffff, tss_addr(1));
        assert_eq!((tss1 >> 40) & 0xff, 0x89);
    }

    #[test]
    fn idt_gates_point_into_the_stub() {
        let idt = idt();
        let stub = exception_stub();
        for v in 0..EXCEPTION_VECTORS {
            let low = u64_at(&idt, v * 16);
            let off = (low & 0xffff) | ((low >> 48) << 16);
            assert_eq!(off, STUB_START + (v * STUB_ENTRY_SIZE) as u64);
            assert_eq!((low >> 16) & 0xffff, u64::from(KERNEL_CS));
        }
        assert_eq!(u64_at(&idt, 32 * 16), 0);
        assert!(STUB_START + stub.len() as u64 <= EXCEPTION_STACKS_START);
    }

    #[test]
    fn stub_entries_jump_to_common_code() {
        let s = exception_stub();
        let common = EXCEPTION_VECTORS * STUB_ENTRY_SIZE;
        for v in [0usize, 13, 14, 31] {
            let e = &s[v * STUB_ENTRY_SIZE..];
            let has_code = VECTORS_WITH_ERROR_CODE.contains(&(v as u8));
            let at = if has_code { 0 } else { 2 };
            assert_eq!(&e[at..at + 2], &[0x6A, v as u8]);
            assert_eq!(e[at + 2], 0xE9);
            let rel = i32::from_le_bytes(e[at + 3..at + 7].try_into().unwrap());
            let next = (v * STUB_ENTRY_SIZE + at + 7) as i32;
            assert_eq!((next + rel) as usize, common);
        }
        assert_eq!(&s[common..common + 2], &[0x58, 0x5F]);
    }

    #[test]
    fn boot_image_merges_pages_into_runs() {
        let mut img = BootImage::default();
        img.write(0x1ffe, b"abcd");
        img.zero(0x5000, 1);
        let runs = img.runs();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, 0x1000);
        assert_eq!(runs[0].1.len(), 0x2000);
        assert_eq!(&runs[0].1[0xffe..0x1002], b"abcd");
        assert_eq!((runs[1].0, runs[1].1.len()), (0x5000, 0x1000));
    }

    #[test]
    fn tss_has_rsp0_and_no_io_bitmap() {
        let t = tss(0x8400);
        assert_eq!(u64_at(&t, 4), 0x8400);
        assert_eq!(u16::from_le_bytes([t[0x66], t[0x67]]), 104);
        assert!(TSS_SIZE as u64 <= crate::layout::TSS_STRIDE);
        let allowed = |p: usize| t[104 + p / 8] & (1 << (p % 8)) == 0;
        assert!((0xe1..=0xe5).all(allowed));
        assert!(!allowed(0xe0) && !allowed(0xe6) && !allowed(0x80));
        assert_eq!(t[TSS_SIZE - 1], 0xff);
    }

    #[test]
    fn entry_state_is_cpl3_long_mode() {
        let f = CpuFeatures {
            gib_pages: true,
            nx: true,
        };
        let s = initial_sregs(kvm_sregs::default(), 1, f);
        assert_eq!(s.cs.dpl, 3);
        assert_eq!(s.cs.selector & 3, 3);
        assert_eq!(s.ss.dpl, 3);
        assert_eq!(s.cs.l, 1);
        assert_eq!(s.tr.base, tss_addr(1));
        assert_ne!(s.efer & EFER_NX, 0);
        let r = initial_regs(0x100000, 1, 2, 256 << 20);
        assert_eq!(r.rsp, (256 << 20) - VCPU_STACK_SIZE);
        assert_eq!(r.rflags & 0x3000, 0x3000);
        assert_eq!((r.rdi, r.rsi, r.rdx), (1, 2, 256 << 20));
    }
}
