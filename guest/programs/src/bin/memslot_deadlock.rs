//! Repro: a VmarMap (a KVM memslot change) while another vCPU is blocked in a pager fault
//! inside KVM never returns. Exits 0 if it does; hangs until the timeout if the bug is there.
//!
//! vCPU 0 maps a pager VMO and reads its page 0 through the aperture (it blocks in KVM, in
//! `handle_userfault`, holding `kvm->srcu`); vCPU 1 reads the READ packet, then calls VmarMap
//! for an unrelated VMO: `KVM_SET_USER_MEMORY_REGION` waits in `synchronize_srcu` for vCPU 0,
//! which waits for the supply that vCPU 1 would make next. Run:
//! `kvmpager run --guest embedded:memslot_deadlock --vcpus 2 --timeout 5`.
#![no_std]
#![no_main]

use kvmpager_guest_programs::handoff::Handoff;
use rt::abi::pager_op::ZX_PAGER_SUPPLY_PAGES;
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::{PAGE_SIZE, ZX_TIME_INFINITE, layout};
use rt::sys;
use rt::{Pager, Port, Vmo, println};

rt::entry!(main);

static HANDOFF: Handoff = Handoff::new();

const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu == 1 {
        pager();
    }
    if vcpu != 0 {
        rt::park();
    }
    let pager = Pager::create(0).expect("pager");
    let port = Port::create(0).expect("port");
    let vmo = pager.create_vmo(0, &port, 1, PAGE_SIZE).expect("pager VMO");
    vmo.map(RW, layout::APERTURE_START, 0, PAGE_SIZE)
        .expect("map");
    HANDOFF.publish(pager.handle(), vmo.handle(), port.handle());
    // SAFETY: the page is mapped (identity) in the aperture; the read blocks until supplied.
    let v = unsafe { core::ptr::read_volatile(layout::APERTURE_START as *const u64) };
    println!("memslot_deadlock: vCPU 0 got {v:#x}; no deadlock");
    0
}

fn pager() -> ! {
    let (p, v, port) = HANDOFF.wait();
    let pkt = sys::port_wait(port, ZX_TIME_INFINITE).expect("READ packet");
    println!(
        "memslot_deadlock: vCPU 1 got READ at {:#x}; now VmarMap",
        pkt.page_request.offset
    );
    let other = Vmo::create(PAGE_SIZE, 0).expect("vmo");
    let r = other.map(RW, layout::APERTURE_START + (1 << 30), 0, PAGE_SIZE);
    println!("memslot_deadlock: VmarMap returned {r:?}");
    let aux = Vmo::create(PAGE_SIZE, 0).expect("aux");
    aux.write(&[0x5a; 4096], 0).expect("aux write");
    sys::pager_vmo_op(p, v, ZX_PAGER_SUPPLY_PAGES, 0, PAGE_SIZE, aux.handle(), 0).expect("supply");
    rt::park()
}
