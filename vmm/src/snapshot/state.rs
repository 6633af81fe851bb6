//! The vCPU state a snapshot keeps (regs, sregs, x87/SSE), as serializable mirrors of the KVM
//! structures with conversions both ways.

use kvm_bindings::{kvm_dtable, kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use serde::{Deserialize, Serialize};

/// General-purpose registers (`kvm_regs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

macro_rules! copy_fields {
    ($from:expr => $to:ident { $($f:ident),* }) => {
        {
            #[allow(clippy::needless_update)]
            let v = $to { $($f: $from.$f,)* ..Default::default() };
            v
        }
    };
}

impl From<&kvm_regs> for Regs {
    fn from(r: &kvm_regs) -> Self {
        copy_fields!(r => Regs { rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11, r12,
            r13, r14, r15, rip, rflags })
    }
}

impl From<&Regs> for kvm_regs {
    fn from(r: &Regs) -> Self {
        copy_fields!(r => kvm_regs { rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11,
            r12, r13, r14, r15, rip, rflags })
    }
}

/// A segment register (`kvm_segment`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
}

impl From<&kvm_segment> for Segment {
    fn from(s: &kvm_segment) -> Self {
        copy_fields!(s => Segment { base, limit, selector, type_, present, dpl, db, s, l, g,
            avl, unusable })
    }
}

impl From<&Segment> for kvm_segment {
    fn from(s: &Segment) -> Self {
        copy_fields!(s => kvm_segment { base, limit, selector, type_, present, dpl, db, s, l,
            g, avl, unusable })
    }
}

/// A descriptor-table register (`kvm_dtable`): base and limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Dtable {
    pub base: u64,
    pub limit: u16,
}

/// Special registers (`kvm_sregs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: Dtable,
    pub idt: Dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
}

impl From<&kvm_sregs> for Sregs {
    fn from(s: &kvm_sregs) -> Self {
        let seg = Segment::from;
        let dt = |d: &kvm_dtable| Dtable {
            base: d.base,
            limit: d.limit,
        };
        Sregs {
            cs: seg(&s.cs),
            ds: seg(&s.ds),
            es: seg(&s.es),
            fs: seg(&s.fs),
            gs: seg(&s.gs),
            ss: seg(&s.ss),
            tr: seg(&s.tr),
            ldt: seg(&s.ldt),
            gdt: dt(&s.gdt),
            idt: dt(&s.idt),
            cr0: s.cr0,
            cr2: s.cr2,
            cr3: s.cr3,
            cr4: s.cr4,
            cr8: s.cr8,
            efer: s.efer,
            apic_base: s.apic_base,
        }
    }
}

impl Sregs {
    /// Applies these registers over `base` (a vCPU's current sregs, for KVM-owned fields).
    pub fn apply(&self, base: kvm_sregs) -> kvm_sregs {
        let seg = kvm_segment::from;
        let dt = |d: &Dtable| kvm_dtable {
            base: d.base,
            limit: d.limit,
            ..Default::default()
        };
        kvm_sregs {
            cs: seg(&self.cs),
            ds: seg(&self.ds),
            es: seg(&self.es),
            fs: seg(&self.fs),
            gs: seg(&self.gs),
            ss: seg(&self.ss),
            tr: seg(&self.tr),
            ldt: seg(&self.ldt),
            gdt: dt(&self.gdt),
            idt: dt(&self.idt),
            cr0: self.cr0,
            cr2: self.cr2,
            cr3: self.cr3,
            cr4: self.cr4,
            cr8: self.cr8,
            efer: self.efer,
            apic_base: self.apic_base,
            ..base
        }
    }
}

/// x87 and SSE state (`kvm_fpu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Fpu {
    pub fpr: [[u8; 16]; 8],
    pub fcw: u16,
    pub fsw: u16,
    pub ftwx: u8,
    pub last_opcode: u16,
    pub last_ip: u64,
    pub last_dp: u64,
    pub xmm: [[u8; 16]; 16],
    pub mxcsr: u32,
}

impl From<&kvm_fpu> for Fpu {
    fn from(f: &kvm_fpu) -> Self {
        copy_fields!(f => Fpu { fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp, xmm,
            mxcsr })
    }
}

impl From<&Fpu> for kvm_fpu {
    fn from(f: &Fpu) -> Self {
        copy_fields!(f => kvm_fpu { fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp, xmm,
            mxcsr })
    }
}

/// Everything of one vCPU a snapshot keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuState {
    /// General registers.
    pub regs: Regs,
    /// Special registers.
    pub sregs: Sregs,
    /// x87/SSE state.
    pub fpu: Fpu,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_conversions_round_trip() {
        let r = kvm_regs {
            rax: 1,
            r15: 2,
            rip: 3,
            rflags: 0x3002,
            ..Default::default()
        };
        let back = kvm_regs::from(&Regs::from(&r));
        assert_eq!(
            (back.rax, back.r15, back.rip, back.rflags),
            (1, 2, 3, 0x3002)
        );
        let mut s = kvm_sregs::default();
        s.cs.selector = 0x23;
        s.cs.l = 1;
        s.gdt.limit = 0x1ff;
        s.cr3 = 0x10000;
        s.interrupt_bitmap[0] = 9;
        let back = Sregs::from(&s).apply(s);
        assert_eq!(
            (back.cs.selector, back.cs.l, back.gdt.limit),
            (0x23, 1, 0x1ff)
        );
        assert_eq!((back.cr3, back.interrupt_bitmap[0]), (0x10000, 9));
        let f = kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        let back = kvm_fpu::from(&Fpu::from(&f));
        assert_eq!((back.fcw, back.mxcsr), (0x37f, 0x1f80));
    }
}
