//! The guest-physical layout of a kvmpager VM.
//!
//! ```text
//! 0x0000_0000  unused (null page)                 } the boot area: supervisor-only pages,
//!                                                 } no guest pointer may touch it
//! 0x0000_1000  GDT: null, kernel code/data, user data/code, one TSS descriptor per vCPU
//! 0x0000_2000  IDT: 256 gates; vectors 0..32 go to the exception stub
//! 0x0000_3000  TSSs with their I/O permission bitmaps, one per vCPU (TSS_STRIDE bytes apart)
//! 0x0000_5000  exception stub (CPL 0): reports on EXCEPTION_PORT and stops
//! 0x0000_8000  per-vCPU CPL-0 exception stacks (EXCEPTION_STACK_SIZE each), up to 0x10000
//! 0x0001_0000  page tables (PML4, PDPT, page directories, the first 2 MiB's page table)
//! 0x0010_0000  guest program (GUEST_LOAD_ADDR)
//! RAM end      per-vCPU stacks (VCPU_STACK_SIZE each) at the top of RAM
//! 64 GiB       VMO aperture (zx_vmar_map), APERTURE_SIZE bytes
//! ```

use kvmpager::abi::layout::GUEST_LOAD_ADDR;

/// Guest-physical address of the GDT.
pub const GDT_START: u64 = 0x1000;
/// Guest-physical address of the IDT.
pub const IDT_START: u64 = 0x2000;
/// Guest-physical address of the first TSS.
pub const TSS_START: u64 = 0x3000;
/// Distance between two vCPUs' TSSs.
pub const TSS_STRIDE: u64 = 256;
/// Guest-physical address of the CPL-0 exception stub.
pub const STUB_START: u64 = 0x5000;
/// Start of the per-vCPU exception stacks.
pub const EXCEPTION_STACKS_START: u64 = 0x8000;
/// Size of one vCPU's exception stack.
pub const EXCEPTION_STACK_SIZE: u64 = 0x400;
/// Start of the page tables.
pub const PAGE_TABLES_START: u64 = 0x1_0000;
/// End of the page-table area (exclusive).
pub const PAGE_TABLES_END: u64 = GUEST_LOAD_ADDR;
/// End of the boot area: everything below is written by the VMM before the guest starts,
/// mapped supervisor-only, and out of bounds for guest pointers (`abi::layout::BOOT_AREA_END`).
pub const BOOT_AREA_END: u64 = kvmpager::abi::layout::BOOT_AREA_END;
/// Size of each vCPU's initial stack at the top of RAM.
pub const VCPU_STACK_SIZE: u64 = 64 << 10;

/// GDT selector of the 64-bit kernel (CPL 0) code segment.
pub const KERNEL_CS: u16 = 0x08;
/// GDT selector of the kernel data segment.
pub const KERNEL_DS: u16 = 0x10;
/// GDT selector of the user data segment (RPL 3).
pub const USER_DS: u16 = 0x18 | 3;
/// GDT selector of the 64-bit user code segment (RPL 3).
pub const USER_CS: u16 = 0x20 | 3;
/// GDT selector of vCPU 0's TSS; vCPU `i` uses `TSS_SELECTOR_BASE + 16 * i`.
pub const TSS_SELECTOR_BASE: u16 = 0x28;

/// Guest-physical address of vCPU `index`'s TSS.
pub fn tss_addr(index: u32) -> u64 {
    TSS_START + u64::from(index) * TSS_STRIDE
}

/// GDT selector of vCPU `index`'s TSS.
pub fn tss_selector(index: u32) -> u16 {
    TSS_SELECTOR_BASE + 16 * index as u16
}

/// Top (initial RSP0) of vCPU `index`'s CPL-0 exception stack.
pub fn exception_stack_top(index: u32) -> u64 {
    EXCEPTION_STACKS_START + (u64::from(index) + 1) * EXCEPTION_STACK_SIZE
}

/// Initial `rsp` of vCPU `index`: the 16-byte aligned top of its stack at the top of RAM.
pub fn vcpu_stack_top(ram_size: u64, index: u32) -> u64 {
    ram_size - u64::from(index) * VCPU_STACK_SIZE
}

/// Lowest address used by the vCPU stacks of a VM with `vcpus` vCPUs.
pub fn stacks_bottom(ram_size: u64, vcpus: u32) -> u64 {
    ram_size - u64::from(vcpus) * VCPU_STACK_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_VCPUS;

    #[test]
    fn per_vcpu_areas_fit_their_regions() {
        let last = MAX_VCPUS - 1;
        assert!(tss_addr(last) + crate::boot::TSS_SIZE as u64 <= STUB_START);
        assert!(exception_stack_top(last) <= PAGE_TABLES_START);
        assert_eq!(exception_stack_top(0) % 16, 0);
        assert!(u32::from(tss_selector(last)) + 16 <= 0x1000);
        assert_eq!(vcpu_stack_top(256 << 20, 1) % 16, 0);
    }
}
