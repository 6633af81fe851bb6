//! Fixtures for the conformance cases (Zircon's `userpager`): a pager, a port and a pager VMO
//! ([`Fx`]); page contents keyed by a seed, as Zircon's helpers key theirs ([`fill_page`],
//! [`check_page`], [`check_content`]); aux VMOs and what a supply must leave of them;
//! SUPPLY/FAIL on raw handles; page-request packets checked byte for byte ([`expect_packet`],
//! [`expect_no_packet`]); aperture mappings ([`map`]); and handles that must be BAD_HANDLE.

use core::sync::atomic::{AtomicU64, Ordering};

use rt::abi::packet::{ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use rt::abi::pager_op::{ZX_PAGER_OP_FAIL, ZX_PAGER_SUPPLY_PAGES};
use rt::abi::status::{
    ZX_ERR_BAD_STATE, ZX_ERR_BUFFER_TOO_SMALL, ZX_ERR_IO, ZX_ERR_IO_DATA_INTEGRITY, ZX_ERR_NO_SPACE,
};
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::{Call, layout};
use rt::harness::TestResult;
use rt::sys::{self, Handle};
use rt::{Pager, Port, Status, String, Vmo, check_eq, check_ok, format};

use super::{NO_PACKET_MS, PACKET_WAIT_MS, PAGE, PAGE_US, deadline_ms};

/// The five statuses FAIL may carry.
pub const FAIL_CODES: [i32; 5] = [
    ZX_ERR_IO,
    ZX_ERR_IO_DATA_INTEGRITY,
    ZX_ERR_BAD_STATE,
    ZX_ERR_NO_SPACE,
    ZX_ERR_BUFFER_TOO_SMALL,
];

/// A pager, a port and one pager VMO on it.
pub struct Fx {
    /// The pager.
    pub pager: Pager,
    /// The port the pager VMO's requests go to.
    pub port: Port,
    /// The pager VMO.
    pub vmo: Vmo,
    /// The pager VMO's port key.
    pub key: u64,
    /// The seed of the pager VMO's contents (see [`fill_page`]).
    pub seed: u64,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(0x5eed_0000_0000);

/// A fixture with a `pages`-page pager VMO.
pub fn fixture(pages: u64) -> Result<Fx, String> {
    fixture_with(pages, 0)
}

/// A fixture whose pager VMO is created with `options` (e.g. `ZX_VMO_TRAP_DIRTY`).
pub fn fixture_with(pages: u64, options: u32) -> Result<Fx, String> {
    let pager = check_ok!(Pager::create(0));
    let port = check_ok!(Port::create(0));
    let key = NEXT_KEY.fetch_add(0x1_0000, Ordering::Relaxed);
    let vmo = check_ok!(pager.create_vmo(options, &port, key, pages * PAGE));
    // Contents are keyed like Zircon's helpers: u64 word i of the VMO holds `seed + i`.
    Ok(Fx {
        pager,
        port,
        vmo,
        key,
        seed: key << 8,
    })
}

impl Fx {
    /// [`supply`] `[off, +len)` of this fixture's VMO with its pager, from `aux` at `aux_off`.
    pub fn supply(&self, off: u64, len: u64, aux: Handle, aux_off: u64) -> rt::Result<()> {
        supply(
            self.pager.handle(),
            self.vmo.handle(),
            off,
            len,
            aux,
            aux_off,
        )
    }

    /// [`supply_fresh`] `[off, +len)` of this fixture's VMO with its pager.
    pub fn supply_fresh(&self, off: u64, len: u64, seed: u64) -> TestResult {
        supply_fresh(self.pager.handle(), self.vmo.handle(), off, len, seed)
    }
}

/// The contents of logical page `page` for `seed`: u64 word i holds `seed + page * 512 + i`.
pub fn fill_page(buf: &mut [u8; PAGE_US], seed: u64, page: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        let v = seed.wrapping_add(page * (PAGE / 8)).wrapping_add(i as u64);
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Checks every byte of `got` against logical page `page` of `seed`.
pub fn check_page(got: &[u8; PAGE_US], seed: u64, page: u64, what: &str) -> TestResult {
    let mut want = [0u8; PAGE_US];
    fill_page(&mut want, seed, page);
    match got.iter().zip(want.iter()).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i:#x} of page {page} is {:#04x}, expected {:#04x} \
             (word there {:#018x}, expected {:#018x})",
            got[i],
            want[i],
            u64::from_le_bytes(got[i & !7..(i & !7) + 8].try_into().unwrap()),
            u64::from_le_bytes(want[i & !7..(i & !7) + 8].try_into().unwrap()),
        )),
    }
}

/// An aux VMO of `pages` pages, fully committed by `VmoWrite`: aux page k holds logical page
/// `first + k` of `seed`.
pub fn aux_filled(pages: u64, seed: u64, first: u64) -> Result<Vmo, String> {
    let aux = check_ok!(Vmo::create(pages * PAGE, 0));
    let mut buf = [0u8; PAGE_US];
    for k in 0..pages {
        fill_page(&mut buf, seed, first + k);
        check_ok!(aux.write(&buf, k * PAGE));
    }
    Ok(aux)
}

/// Reads `pages` pages of `vmo` from `offset` with `VmoRead` and checks every byte against
/// logical pages `first..` of `seed`.
pub fn check_content(
    vmo: Handle,
    offset: u64,
    pages: u64,
    seed: u64,
    first: u64,
    what: &str,
) -> TestResult {
    let mut buf = [0u8; PAGE_US];
    for k in 0..pages {
        if let Err(s) = sys::vmo_read(vmo, &mut buf, offset + k * PAGE) {
            return Err(format!(
                "{what}: VmoRead at {:#x}: {s:?}",
                offset + k * PAGE
            ));
        }
        check_page(&buf, seed, first + k, what)?;
    }
    Ok(())
}

/// Checks that `[offset, +len)` of an anonymous VMO reads as zeros.
pub fn check_zero(vmo: Handle, offset: u64, len: u64, what: &str) -> TestResult {
    let mut buf = [0xa5u8; PAGE_US];
    let mut at = offset;
    while at < offset + len {
        let n = ((offset + len - at) as usize).min(PAGE_US);
        if let Err(s) = sys::vmo_read(vmo, &mut buf[..n], at) {
            return Err(format!("{what}: VmoRead at {at:#x}: {s:?}"));
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(format!(
                "{what}: byte at {:#x} is {:#04x}, expected 0",
                at + i as u64,
                buf[i]
            ));
        }
        at += n as u64;
    }
    Ok(())
}

/// `VmoGetInfo`, its failure as a message.
pub fn info(vmo: Handle) -> Result<rt::abi::VmoInfo, String> {
    sys::vmo_get_info(vmo).map_err(|s| format!("VmoGetInfo: {s:?}"))
}

/// The VMO's `committed_bytes`.
pub fn committed(vmo: Handle) -> Result<u64, String> {
    Ok(info(vmo)?.committed_bytes)
}

/// The aux VMO is untouched: `pages` pages committed, holding logical pages `first..` of `seed`.
pub fn check_aux_untouched(aux: &Vmo, pages: u64, seed: u64, first: u64) -> TestResult {
    check_eq!(
        committed(aux.handle())?,
        pages * PAGE,
        "aux committed_bytes (aux must be untouched)"
    );
    check_content(
        aux.handle(),
        0,
        pages,
        seed,
        first,
        "aux (must be untouched)",
    )
}

/// The aux range `[off, +len)` is fully decommitted: it reads as zeros and `committed_bytes`
/// is `expect_committed`.
pub fn check_aux_decommitted(aux: &Vmo, off: u64, len: u64, expect_committed: u64) -> TestResult {
    check_eq!(
        committed(aux.handle())?,
        expect_committed,
        "aux committed_bytes after the supply"
    );
    check_zero(aux.handle(), off, len, "aux range after the supply")
}

/// `zx_pager_vmo_op(ZX_PAGER_SUPPLY_PAGES)` on raw handles.
pub fn supply(
    pager: Handle,
    vmo: Handle,
    off: u64,
    len: u64,
    aux: Handle,
    aux_off: u64,
) -> rt::Result<()> {
    sys::pager_vmo_op(pager, vmo, ZX_PAGER_SUPPLY_PAGES, off, len, aux, aux_off)
}

/// `ZX_PAGER_OP_FAIL` through `PagerVmoOp` (the status goes in `aux_offset`).
pub fn fail_op(pager: Handle, vmo: Handle, off: u64, len: u64, code: i32) -> rt::Result<()> {
    sys::pager_vmo_op(
        pager,
        vmo,
        ZX_PAGER_OP_FAIL,
        off,
        len,
        Handle::INVALID,
        code as i64 as u64,
    )
}

/// Supplies `[off, +len)` of `vmo` with logical pages of `seed` from a fresh aux VMO.
pub fn supply_fresh(pager: Handle, vmo: Handle, off: u64, len: u64, seed: u64) -> TestResult {
    let aux = aux_filled(len / PAGE, seed, off / PAGE)?;
    supply(pager, vmo, off, len, aux.handle(), 0)
        .map_err(|s| format!("supply [{off:#x}, +{len:#x}): {s:?}"))
}

/// `PortWait` into a raw 48-byte buffer (exactly what the VMM wrote).
pub fn port_wait_raw(port: Handle, deadline: i64) -> rt::Result<[u8; 48]> {
    let mut b = [0u8; 48];
    let args = [
        port.0 as u64,
        deadline as u64,
        b.as_mut_ptr() as u64,
        0,
        0,
        0,
        0,
        0,
    ];
    // SAFETY: the only pointer argument is `b`, 48 writable bytes owned by this frame, which is
    // exactly what `PortWait` writes.
    let rax = unsafe { rt::hypercall::hypercall(Call::PortWait as u64, args) };
    Status::from_rax(rax).ok().map(|_| b)
}

/// The 48 bytes of a page-request packet, built field by field from Zircon's layout.
pub fn packet_bytes(key: u64, command: u16, offset: u64, length: u64) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0..8].copy_from_slice(&key.to_le_bytes());
    b[8..12].copy_from_slice(&ZX_PKT_TYPE_PAGE_REQUEST.to_le_bytes());
    b[12..16].copy_from_slice(&0i32.to_le_bytes());
    b[16..18].copy_from_slice(&command.to_le_bytes());
    // flags (u16 @18) and reserved0 (u32 @20) are 0.
    b[24..32].copy_from_slice(&offset.to_le_bytes());
    b[32..40].copy_from_slice(&length.to_le_bytes());
    // reserved1 (u64 @40) is 0.
    b
}

/// A page-request packet's fields, for messages.
pub fn describe(b: &[u8; 48]) -> String {
    let p = rt::abi::PortPacket::from_bytes(b);
    format!(
        "{{key {:#x} type {} status {} command {} flags {} reserved0 {} offset {:#x} length {:#x} \
         reserved1 {}}}",
        p.key,
        p.packet_type,
        p.status,
        p.page_request.command,
        p.page_request.flags,
        p.page_request.reserved0,
        p.page_request.offset,
        p.page_request.length,
        p.page_request.reserved1
    )
}

/// Waits for the next packet and checks all 48 bytes.
pub fn expect_packet(port: Handle, key: u64, command: u16, offset: u64, length: u64) -> TestResult {
    let want = packet_bytes(key, command, offset, length);
    match port_wait_raw(port, deadline_ms(PACKET_WAIT_MS)) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!(
            "packet {}, expected {}",
            describe(&got),
            describe(&want)
        )),
        Err(s) => Err(format!(
            "PortWait: {s:?}, expected packet {}",
            describe(&want)
        )),
    }
}

/// Waits for the next packet and checks that it is READ(`offset`, `length`) for `key`.
pub fn expect_read(port: Handle, key: u64, offset: u64, length: u64) -> TestResult {
    expect_packet(port, key, ZX_PAGER_VMO_READ, offset, length)
}

/// No packet arrives within [`NO_PACKET_MS`].
pub fn expect_no_packet(port: Handle) -> TestResult {
    match port_wait_raw(port, deadline_ms(NO_PACKET_MS)) {
        Err(s) if s == Status::ERR_TIMED_OUT => Ok(()),
        Ok(got) => Err(format!("unexpected packet {}", describe(&got))),
        Err(s) => Err(format!("PortWait: {s:?}, expected ZX_ERR_TIMED_OUT")),
    }
}

static NEXT_GPA: AtomicU64 = AtomicU64::new(layout::APERTURE_START);

/// A VMO range mapped into the aperture; unmapped on drop.
pub struct Mapped {
    /// Where the range is mapped.
    pub gpa: u64,
    len: u64,
    live: bool,
}

impl Mapped {
    /// Unmaps the range now (and reports how that went).
    pub fn unmap(mut self) -> rt::Result<()> {
        self.live = false;
        sys::vmar_unmap(self.gpa, self.len)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.live {
            let _ = sys::vmar_unmap(self.gpa, self.len);
        }
    }
}

/// Maps `[off, +len)` of `vmo` read/write at a fresh aperture address (one guard page apart).
pub fn map(vmo: Handle, off: u64, len: u64) -> Result<Mapped, String> {
    let gpa = NEXT_GPA.fetch_add(len + PAGE, Ordering::Relaxed);
    sys::vmar_map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, gpa, vmo, off, len)
        .map_err(|s| format!("VmarMap at {gpa:#x}: {s:?}"))?;
    Ok(Mapped {
        gpa,
        len,
        live: true,
    })
}

/// Reads one page at guest-physical `gpa` (in the aperture) word by word.
pub fn read_mapped_page(gpa: u64) -> [u8; PAGE_US] {
    let mut out = [0u8; PAGE_US];
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let p = (gpa + i as u64 * 8) as *const u64;
        // SAFETY: `gpa` is a page of a live aperture mapping (identity mapped, so the address is
        // dereferenceable); the access may block in KVM until the pager supplies the page.
        let v = unsafe { core::ptr::read_volatile(p) };
        w.copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes logical page `page` of `seed` at guest-physical `gpa` word by word.
pub fn write_mapped_page(gpa: u64, seed: u64, page: u64) {
    let mut buf = [0u8; PAGE_US];
    fill_page(&mut buf, seed, page);
    for (i, w) in buf.chunks_exact(8).enumerate() {
        let p = (gpa + i as u64 * 8) as *mut u64;
        // SAFETY: `gpa` is a page of a live, writable aperture mapping of an anonymous VMO.
        unsafe { core::ptr::write_volatile(p, u64::from_le_bytes(w.try_into().unwrap())) };
    }
}

/// A handle value that names nothing: a closed handle.
pub fn closed_handle() -> Result<Handle, String> {
    let v = check_ok!(Vmo::create(PAGE, 0));
    let h = v.handle();
    check_ok!(v.close());
    Ok(h)
}

/// The handles that must give BAD_HANDLE: invalid, closed, made up.
pub fn bad_handles() -> Result<[Handle; 3], String> {
    Ok([Handle::INVALID, closed_handle()?, Handle(0x7ead_beef)])
}
