//! Calls every `rt::sys` wrapper once, in call-number order, with recognisable arguments, for
//! the host test `vmm/tests/abi_rt.rs`, which runs this program on a vCPU whose hypercalls it
//! answers itself and checks every register each wrapper set against the ABI's argument table
//! (`abi::Call::args`). Not meant for `kvmpager run`: the real VMM would reject the made-up
//! handles.
//!
//! The convention both sides follow (written in both files):
//! - IN argument `i` of call `c` that is a value, option bits, a handle or an aperture address
//!   is `tag(c, i)`; a boolean is `true`; the `n`-th buffer of a call is `16 + n` bytes long.
//! - Buffers the VMM reads hold `text(c, n)`; the host stores `pattern(c, k)` bytes into
//!   out-values and written buffers, and returns `tag(c, 0xff)` from calls that return a value.
//! - This program checks what each wrapper returned (out-values, written buffers, values)
//!   against that, says `ok` (or `bad: <calls>`) with `ConsoleWrite`, and exits with code
//!   `tag(Exit, 0)`.
#![no_std]
#![no_main]

use rt::abi::Call;
use rt::sys::{self, Handle};

rt::entry!(main);

/// The recognisable value of argument `i` of call `c`.
const fn tag(c: Call, i: u64) -> u64 {
    0xa000_0000 | (c as u64) << 8 | i
}

/// Byte `k` of what the host stores for call `c`.
const fn pattern(c: Call, k: usize) -> u8 {
    ((c as u8) << 3) ^ (k as u8) ^ 0xa5
}

/// The `n`-th buffer the VMM reads for call `c`: `16 + n` lowercase letters.
fn text(c: Call, n: usize, buf: &mut [u8; 32]) -> &str {
    let len = 16 + n;
    for (k, b) in buf[..len].iter_mut().enumerate() {
        *b = b'a' + ((c as usize + 7 * n + k) % 26) as u8;
    }
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// Whether `bytes` are what the host stores for call `c`.
fn stored(c: Call, bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(k, &b)| b == pattern(c, k))
}

/// The calls whose result was not what the host gave.
struct Bad {
    calls: [Option<Call>; 32],
    n: usize,
}

impl Bad {
    fn check(&mut self, c: Call, good: bool) {
        if !good && self.n < self.calls.len() {
            self.calls[self.n] = Some(c);
            self.n += 1;
        }
    }
}

fn h(c: Call, i: u64) -> Handle {
    Handle(tag(c, i) as u32)
}

fn handle_stored(c: Call, r: rt::Result<Handle>) -> bool {
    r.is_ok_and(|h| stored(c, &h.0.to_le_bytes()))
}

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let mut bad = Bad {
        calls: [None; 32],
        n: 0,
    };
    basics(&mut bad);
    vmos(&mut bad);
    pagers(&mut bad);
    rest(&mut bad);
    verdict(&bad);
    sys::exit(tag(Call::Exit, 0) as i64)
}

/// `Null` .. `HandleReplace` (`Exit` comes last).
fn basics(bad: &mut Bad) {
    use Call::*;
    bad.check(Null, sys::null().is_ok());
    let mut t = [0; 32];
    bad.check(
        ConsoleWrite,
        sys::console_write(text(ConsoleWrite, 0, &mut t).as_bytes()).is_ok(),
    );
    let now = sys::clock_monotonic();
    bad.check(
        ClockGetMonotonic,
        now == tag(ClockGetMonotonic, 0xff) as i64,
    );
    bad.check(HandleClose, sys::handle_close(h(HandleClose, 0)).is_ok());
    let r = sys::handle_duplicate(h(HandleDuplicate, 0), tag(HandleDuplicate, 1) as u32);
    bad.check(HandleDuplicate, handle_stored(HandleDuplicate, r));
    let r = sys::handle_replace(h(HandleReplace, 0), tag(HandleReplace, 1) as u32);
    bad.check(HandleReplace, handle_stored(HandleReplace, r));
}

/// `VmoCreate` .. `VmoGetInfo`.
fn vmos(bad: &mut Bad) {
    use Call::*;
    let r = sys::vmo_create(tag(VmoCreate, 0), tag(VmoCreate, 1) as u32);
    bad.check(VmoCreate, handle_stored(VmoCreate, r));
    let mut buf = [0u8; 16];
    let r = sys::vmo_read(h(VmoRead, 0), &mut buf, tag(VmoRead, 2));
    bad.check(VmoRead, r.is_ok() && stored(VmoRead, &buf));
    let mut t = [0; 32];
    let text = text(VmoWrite, 0, &mut t).as_bytes();
    let r = sys::vmo_write(h(VmoWrite, 0), text, tag(VmoWrite, 2));
    bad.check(VmoWrite, r.is_ok());
    let r = sys::vmo_get_size(h(VmoGetSize, 0));
    bad.check(
        VmoGetSize,
        r.is_ok_and(|s| stored(VmoGetSize, &s.to_le_bytes())),
    );
    let (op, off, size) = (tag(VmoOpRange, 1), tag(VmoOpRange, 2), tag(VmoOpRange, 3));
    let r = sys::vmo_op_range(h(VmoOpRange, 0), op as u32, off, size);
    bad.check(VmoOpRange, r.is_ok());
    let c = VmoCreateChild;
    let r = sys::vmo_create_child(h(c, 0), tag(c, 1) as u32, tag(c, 2), tag(c, 3));
    bad.check(c, handle_stored(c, r));
    let r = sys::vmo_get_info(h(VmoGetInfo, 0));
    bad.check(
        VmoGetInfo,
        r.is_ok_and(|i| stored(VmoGetInfo, &info_bytes(&i))),
    );
}

/// The 48 bytes of a [`rt::abi::VmoInfo`] as the VMM stores them.
fn info_bytes(info: &rt::abi::VmoInfo) -> [u8; 48] {
    let mut b = [0u8; 48];
    // SAFETY: `VmoInfo` is `repr(C)`, 48 bytes of integers without padding (asserted in the
    // ABI), so all its bytes are initialised and may be read as `u8`s.
    let src = unsafe { core::slice::from_raw_parts((info as *const rt::abi::VmoInfo).cast(), 48) };
    b.copy_from_slice(src);
    b
}

/// `PagerCreate` .. `PagerOpRange`.
fn pagers(bad: &mut Bad) {
    use Call::*;
    let r = sys::pager_create(tag(PagerCreate, 0) as u32);
    bad.check(PagerCreate, handle_stored(PagerCreate, r));
    let c = PagerCreateVmo;
    let r = sys::pager_create_vmo(h(c, 0), tag(c, 1) as u32, h(c, 2), tag(c, 3), tag(c, 4));
    bad.check(c, handle_stored(c, r));
    let c = PagerDetachVmo;
    bad.check(c, sys::pager_detach_vmo(h(c, 0), h(c, 1)).is_ok());
    let c = PagerVmoOp;
    let (op, off, len) = (tag(c, 2) as u32, tag(c, 3), tag(c, 4));
    let r = sys::pager_vmo_op(h(c, 0), h(c, 1), op, off, len, h(c, 5), tag(c, 6));
    bad.check(c, r.is_ok());
    let c = PagerSupplyPages;
    let r = sys::pager_supply_pages(h(c, 0), h(c, 1), tag(c, 2), tag(c, 3), h(c, 4), tag(c, 5));
    bad.check(c, r.is_ok());
    let c = PagerOpRange;
    let (op, off, len) = (tag(c, 1) as u32, tag(c, 3), tag(c, 4));
    let r = sys::pager_op_range(h(c, 0), op, h(c, 2), off, len, tag(c, 5));
    bad.check(c, r.is_ok());
}

/// `PortCreate` .. `Snapshot`.
fn rest(bad: &mut Bad) {
    use Call::*;
    let r = sys::port_create(tag(PortCreate, 0) as u32);
    bad.check(PortCreate, handle_stored(PortCreate, r));
    let r = sys::port_wait(h(PortWait, 0), tag(PortWait, 1) as i64);
    bad.check(PortWait, r.is_ok_and(|p| stored(PortWait, &p.to_bytes())));
    let c = VmarMap;
    let r = sys::vmar_map(tag(c, 0) as u32, tag(c, 1), h(c, 2), tag(c, 3), tag(c, 4));
    bad.check(c, r.is_ok());
    bad.check(
        VmarUnmap,
        sys::vmar_unmap(tag(VmarUnmap, 0), tag(VmarUnmap, 1)).is_ok(),
    );
    bad.check(
        VcpuCount,
        sys::vcpu_count() == tag(VcpuCount, 0xff) as usize,
    );
    let (mut t0, mut t1) = ([0; 32], [0; 32]);
    let (name, msg) = (text(TestReport, 0, &mut t0), text(TestReport, 1, &mut t1));
    bad.check(TestReport, sys::test_report(name, true, msg).is_ok());
    bad.check(Snapshot, sys::snapshot().is_ok());
    issue15(bad);
}

/// `VmoSetSize` .. `KvmpagerSetExceptionPort`.
fn issue15(bad: &mut Bad) {
    use Call::*;
    let c = VmoSetSize;
    bad.check(c, sys::vmo_set_size(h(c, 0), tag(c, 1)).is_ok());
    let c = PagerQueryDirtyRanges;
    let mut buf = [0u8; 16];
    let r = sys::pager_query_dirty_ranges_raw(h(c, 0), h(c, 1), tag(c, 2), tag(c, 3), &mut buf);
    let counts = r.map(|n| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.actual.to_le_bytes());
        b[8..].copy_from_slice(&n.avail.to_le_bytes());
        b
    });
    bad.check(
        c,
        counts.is_ok_and(|b| stored(c, &b)) && stored(c, &buf),
    );
    let c = PagerQueryVmoStats;
    let mut buf = [0u8; 16];
    let r = sys::pager_query_vmo_stats_raw(h(c, 0), h(c, 1), tag(c, 2) as u32, &mut buf);
    bad.check(c, r.is_ok() && stored(c, &buf));
    let c = KvmpagerSetExceptionPort;
    bad.check(c, sys::set_exception_port(h(c, 0), tag(c, 1)).is_ok());
}

/// `ok`, or `bad:` and the calls whose results were wrong, on the console.
fn verdict(bad: &Bad) {
    if bad.n == 0 {
        let _ = sys::console_write(b"ok");
        return;
    }
    let mut line = rt::String::from("bad:");
    for c in bad.calls.iter().flatten() {
        line += &rt::format!(" {c:?}");
    }
    let _ = sys::console_write(line.as_bytes());
}
