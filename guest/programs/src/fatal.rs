//! The fatal-fault guests (`fatal_fail`, `fatal_detach`, `fatal_pager_closed`,
//! `fatal_port_closed`, `fatal_silent`, `fatal_clone_detach`): vCPU 0 maps a
//! pager VMO (`fatal_clone_detach`: a copy-on-write clone of it, whose request names the pager
//! VMO) and reads one of its pages through the aperture, blocking inside KVM; vCPU 1, the
//! pager, checks the READ packet and then makes the page unresolvable in the way its [`Mode`]
//! says. The VM must stop with `StopReason::FatalFault` (`FaultTimeout` for `fatal_silent`,
//! run with a fault timeout) naming the page's address
//! (`vmm/tests/vmm_fatal_faults.rs`). The programs never exit by themselves: exit code 1 means the
//! read returned, 2 fewer than 2 vCPUs, 3 a wrong or missing packet, 4 a failed action.

use rt::abi::packet::{ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use rt::abi::pager_op::ZX_PAGER_OP_FAIL;
use rt::abi::status::ZX_ERR_IO;
use rt::abi::vmo_child::{ZX_VMO_CHILD_RESIZABLE, ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE};
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::{PAGE_SIZE, PageRequest, PortPacket, layout};
use rt::sys::{self, Handle};
use rt::{Pager, Port, println};

use crate::handoff::Handoff;

/// The pager VMO is 2 MiB, so its host memory starts 2 MiB aligned and the host address in the
/// stop reason names the page: it is `PAGE * PAGE_SIZE` into a 2 MiB block.
const VMO_SIZE: u64 = 2 << 20;
/// The page vCPU 0 touches.
const PAGE: u64 = 5;
/// Port key of the pager VMO.
const KEY: u64 = 0xfa7a_1000;
/// How long the pager waits for the READ packet.
const PACKET_WAIT_NS: i64 = 10_000_000_000;

static HANDOFF: Handoff = Handoff::new();

/// How the pager makes the page unresolvable.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `PagerVmoOp(ZX_PAGER_OP_FAIL)` with `ZX_ERR_IO` (`aux_offset` carries the status).
    Fail,
    /// `zx_pager_detach_vmo`.
    Detach,
    /// Closing the (only) pager handle.
    PagerClosed,
    /// Closing the (only) port handle.
    PortClosed,
    /// Nothing: the pager never answers (the VMM's fault timeout must stop the VM).
    Silent,
    /// vCPU 0 reads through a clone of the pager VMO; the pager detaches the pager VMO.
    CloneDetach,
}

impl Mode {
    /// The program's name, which prefixes its messages.
    fn name(self) -> &'static str {
        match self {
            Mode::Fail => "fatal_fail",
            Mode::Detach => "fatal_detach",
            Mode::PagerClosed => "fatal_pager_closed",
            Mode::PortClosed => "fatal_port_closed",
            Mode::Silent => "fatal_silent",
            Mode::CloneDetach => "fatal_clone_detach",
        }
    }

    /// What [`Mode::act`] does, for the messages.
    fn action(self) -> &'static str {
        match self {
            Mode::Fail => "failing it with ZX_ERR_IO",
            Mode::Detach => "detaching the VMO",
            Mode::PagerClosed => "closing the pager handle",
            Mode::PortClosed => "closing the port handle",
            Mode::Silent => "never answering",
            Mode::CloneDetach => "detaching the clone's parent",
        }
    }

    /// Makes page `PAGE` of VMO `v` (paged by `p`, requests on `port`) unresolvable.
    fn act(self, p: Handle, v: Handle, port: Handle) -> rt::Result<()> {
        match self {
            Mode::Fail => sys::pager_vmo_op(
                p,
                v,
                ZX_PAGER_OP_FAIL,
                PAGE * PAGE_SIZE,
                PAGE_SIZE,
                Handle::INVALID,
                ZX_ERR_IO as i64 as u64,
            ),
            Mode::Detach | Mode::CloneDetach => sys::pager_detach_vmo(p, v),
            Mode::PagerClosed => sys::handle_close(p),
            Mode::PortClosed => sys::handle_close(port),
            Mode::Silent => Ok(()),
        }
    }
}

/// The program's `main` for `mode`: vCPU 1 is the pager, vCPU 0 reads the page, the others
/// park.
pub fn main(mode: Mode, vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    let name = mode.name();
    if vcpu == 1 {
        pager(mode);
    }
    if vcpu != 0 {
        rt::park();
    }
    if ncpus < 2 {
        println!("{name}: needs 2 vCPUs (vCPU 1 is the pager)");
        return 2;
    }
    let pager = Pager::create(0).expect("pager");
    let port = Port::create(0).expect("port");
    let vmo = pager
        .create_vmo(0, &port, KEY, VMO_SIZE)
        .expect("pager VMO");
    let gpa = layout::APERTURE_START;
    let clone = match mode {
        Mode::CloneDetach => {
            let cow = ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE | ZX_VMO_CHILD_RESIZABLE;
            Some(vmo.create_child(cow, 0, VMO_SIZE).expect("clone"))
        }
        _ => None,
    };
    clone
        .as_ref()
        .unwrap_or(&vmo)
        .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, gpa, 0, VMO_SIZE)
        .expect("map");
    HANDOFF.publish(pager.into_handle(), vmo.handle(), port.handle());
    let at = gpa + PAGE * PAGE_SIZE;
    println!("{name}: vCPU 0 reads gpa {at:#x} (page {PAGE})");
    // SAFETY: the page is mapped (identity) in the aperture; the read blocks inside KVM until
    // the page is supplied, which never happens.
    let v = unsafe { core::ptr::read_volatile(at as *const u64) };
    println!("{name}: the read returned {v:#x}: the fault was not fatal");
    1
}

/// vCPU 1: waits for exactly `READ [PAGE, +1 page)`, then makes the page unresolvable.
fn pager(mode: Mode) -> ! {
    let (name, action) = (mode.name(), mode.action());
    let (p, v, port) = HANDOFF.wait();
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
            println!("{name}: vCPU 1 got {pkt:?}, expected {want:?}");
            sys::exit(3)
        }
        Err(s) => {
            println!("{name}: vCPU 1: PortWait: {s:?}");
            sys::exit(3)
        }
    }
    println!(
        "{name}: vCPU 1 got READ [{:#x}, +{:#x}); {action}",
        want.page_request.offset, want.page_request.length
    );
    // Nothing is printed after this: the VM stops as soon as the fault is fatal.
    if let Err(s) = mode.act(p, v, port) {
        println!("{name}: vCPU 1: {action} failed: {s:?}");
        sys::exit(4)
    }
    rt::park()
}
