//! Fatal fault by closing the pager: vCPU 0 maps a pager VMO and reads one of its pages
//! through the aperture, blocking inside KVM; vCPU 1, the pager, checks the READ packet and
//! closes its (only) pager handle. The page can never arrive, so the VM must stop with
//! `StopReason::FatalFault` naming `ZX_ERR_BAD_STATE` and the page's address
//! (`tests/vmm_fatal_faults.rs`). It never exits by itself: exit code 1 means the read
//! returned, 3 a wrong or missing packet, 4 a failed close.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use rt::abi::packet::{ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::{PAGE_SIZE, PageRequest, PortPacket, layout};
use rt::sys::{self, Handle};
use rt::{Pager, Port, println};

rt::entry!(main);

const NAME: &str = "fatal_pager_closed";
const ACTION: &str = "closing the pager handle";

fn act(p: Handle, _v: Handle) -> rt::Result<()> {
    sys::handle_close(p)
}

/// The pager VMO is 2 MiB, so its host memory starts 2 MiB aligned and the host address in the
/// stop reason names the page: it is `PAGE * PAGE_SIZE` into a 2 MiB block.
const VMO_SIZE: u64 = 2 << 20;
/// The page vCPU 0 touches.
const PAGE: u64 = 5;
/// Port key of the pager VMO.
const KEY: u64 = 0xfa7a_1000;
/// How long the pager waits for the READ packet.
const PACKET_WAIT_NS: i64 = 10_000_000_000;

static PAGER: AtomicU32 = AtomicU32::new(0);
static VMO: AtomicU32 = AtomicU32::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);

fn main(vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    if vcpu == 1 {
        pager();
    }
    if vcpu != 0 {
        rt::park();
    }
    if ncpus < 2 {
        println!("{NAME}: needs 2 vCPUs (vCPU 1 is the pager)");
        return 2;
    }
    let pager = Pager::create(0).expect("pager");
    let port = Port::create(0).expect("port");
    let vmo = pager
        .create_vmo(0, &port, KEY, VMO_SIZE)
        .expect("pager VMO");
    let gpa = layout::APERTURE_START;
    vmo.map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, gpa, 0, VMO_SIZE)
        .expect("map");
    PORT.store(port.raw(), Ordering::Release);
    VMO.store(vmo.raw(), Ordering::Release);
    PAGER.store(pager.into_handle().0, Ordering::Release);
    let at = gpa + PAGE * PAGE_SIZE;
    println!("{NAME}: vCPU 0 reads gpa {at:#x} (page {PAGE})");
    // SAFETY: the page is mapped (identity) in the aperture; the read blocks inside KVM until
    // the page is supplied, which never happens.
    let v = unsafe { core::ptr::read_volatile(at as *const u64) };
    println!("{NAME}: the read returned {v:#x}: the fault was not fatal");
    1
}

/// vCPU 1: waits for exactly `READ [PAGE, +1 page)`, then makes the page unresolvable.
fn pager() -> ! {
    while PAGER.load(Ordering::Acquire) == 0 {
        core::hint::spin_loop();
    }
    let (p, v, port) = (
        Handle(PAGER.load(Ordering::Acquire)),
        Handle(VMO.load(Ordering::Acquire)),
        Handle(PORT.load(Ordering::Acquire)),
    );
    let want = PortPacket {
        key: KEY,
        packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
        status: 0,
        page_request: PageRequest {
            command: ZX_PAGER_VMO_READ,
            offset: PAGE * PAGE_SIZE,
            length: PAGE_SIZE,
            ..Default::default()
        },
    };
    match sys::port_wait(port, sys::clock_monotonic() + PACKET_WAIT_NS) {
        Ok(pkt) if pkt == want => {}
        Ok(pkt) => {
            println!("{NAME}: vCPU 1 got {pkt:?}, expected {want:?}");
            sys::exit(3)
        }
        Err(s) => {
            println!("{NAME}: vCPU 1: PortWait: {s:?}");
            sys::exit(3)
        }
    }
    println!(
        "{NAME}: vCPU 1 got READ [{:#x}, +{:#x}); {ACTION}",
        want.page_request.offset, want.page_request.length
    );
    // Nothing is printed after this: the VM stops as soon as the fault is fatal.
    if let Err(s) = act(p, v) {
        println!("{NAME}: vCPU 1: {ACTION} failed: {s:?}");
        sys::exit(4)
    }
    rt::park()
}
