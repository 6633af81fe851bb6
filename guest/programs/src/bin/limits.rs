//! Runs into every per-guest limit the VMM sets (`VmConfig::limits`) and checks the status
//! Zircon gives for each: handles and VMOs `ZX_ERR_NO_RESOURCES`, VMO bytes (committed, so the
//! host really holds them) `ZX_ERR_NO_MEMORY`, unread pager packets `ZX_ERR_NO_MEMORY` from
//! `zx_pager_create_vmo`, and mappings `ZX_ERR_NO_RESOURCES` (outside the aperture
//! `ZX_ERR_OUT_OF_RANGE`). After each, freeing one makes room again. It prints one line per
//! limit (`limits: <what>: <count> then <status>`) and exits 0 while still holding all it
//! made, so the VMM must free everything itself (`vmm/tests/vmm_limits.rs` measures the host RSS).
//! Exit codes: 1 a limit never came, 2 the wrong status, 3 no room after freeing one.
#![no_std]
#![no_main]

use rt::abi::layout::{APERTURE_SIZE, APERTURE_START};
use rt::abi::rights::ZX_RIGHT_SAME_RIGHTS;
use rt::abi::vm_options::ZX_VM_PERM_READ;
use rt::abi::vmo_op::ZX_VMO_OP_COMMIT;
use rt::{Pager, Port, Status, Vec, Vmo, println};

rt::entry!(main);

/// Size of the VMOs that fill the byte limit.
const BIG: u64 = 8 << 20;
/// Bound on any loop, in case a limit is missing.
const MOST: usize = 1 << 16;

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    match run() {
        Ok(_kept) => {
            println!("limits: all held; exiting with everything still open");
            0
        }
        Err(code) => code,
    }
}

/// What the program keeps open until it exits.
struct Kept {
    _big: Vec<Vmo>,
    _port: Port,
    _pager: Pager,
    _mapped: Vmo,
}

fn run() -> Result<Kept, i64> {
    handles()?;
    vmos()?;
    let (pager, port) = packets()?;
    let mapped = mappings()?;
    // Last: once the bytes are used up, no other VMO can be made.
    let big = bytes()?;
    Ok(Kept {
        _big: big,
        _port: port,
        _pager: pager,
        _mapped: mapped,
    })
}

/// Repeats `make` until it fails; prints the count and checks the status is `want`.
fn fill<T>(
    what: &str,
    want: Status,
    mut make: impl FnMut() -> rt::Result<T>,
) -> Result<Vec<T>, i64> {
    let mut got = Vec::new();
    let last = loop {
        match make() {
            Ok(t) => got.push(t),
            Err(s) => break s,
        }
        if got.len() > MOST {
            println!("limits: {what}: no limit after {MOST}");
            return Err(1);
        }
    };
    println!("limits: {what}: {} then {last:?}", got.len());
    if last != want {
        return Err(2);
    }
    Ok(got)
}

/// `made` came back: one more fits.
fn room_again<T>(what: &str, made: rt::Result<T>) -> Result<T, i64> {
    made.map_err(|s| {
        println!("limits: {what}: no room after freeing one ({s:?})");
        3
    })
}

fn handles() -> Result<(), i64> {
    let vmo = Vmo::create(4096, 0).map_err(|_| 2)?;
    let mut dups = fill(
        "handles (duplicates of one)",
        Status::ERR_NO_RESOURCES,
        || vmo.duplicate(ZX_RIGHT_SAME_RIGHTS),
    )?;
    dups.pop();
    room_again("handles", vmo.duplicate(ZX_RIGHT_SAME_RIGHTS))?;
    Ok(())
}

fn vmos() -> Result<(), i64> {
    let mut v = fill("vmos", Status::ERR_NO_RESOURCES, || Vmo::create(4096, 0))?;
    v.pop();
    room_again("vmos", Vmo::create(4096, 0))?;
    Ok(())
}

fn bytes() -> Result<Vec<Vmo>, i64> {
    let mut v = fill("committed MiB in 8 MiB VMOs", Status::ERR_NO_MEMORY, || {
        let vmo = Vmo::create(BIG, 0)?;
        vmo.op_range(ZX_VMO_OP_COMMIT, 0, BIG)?;
        Ok(vmo)
    })?;
    v.pop();
    v.push(room_again("bytes", Vmo::create(BIG, 0))?);
    Ok(v)
}

fn packets() -> Result<(Pager, Port), i64> {
    let pager = Pager::create(0).map_err(|_| 2)?;
    let port = Port::create(0).map_err(|_| 2)?;
    let mut key = 0;
    // Each pager VMO closed without a detach leaves an unread COMPLETE packet.
    fill("unread packets", Status::ERR_NO_MEMORY, || {
        key += 1;
        pager.create_vmo(0, &port, key, 4096)?.close()
    })?;
    let _ = port.wait(0).map_err(|_| 3)?;
    room_again("packets", pager.create_vmo(0, &port, 0, 4096))?
        .close()
        .map_err(|_| 3)?;
    Ok((pager, port))
}

fn mappings() -> Result<Vmo, i64> {
    let vmo = Vmo::create(4096, 0).map_err(|_| 2)?;
    let mut at = APERTURE_START;
    let mapped = fill("mappings", Status::ERR_NO_RESOURCES, || {
        at += 4096;
        vmo.map(ZX_VM_PERM_READ, at - 4096, 0, 4096)
            .map(|_| at - 4096)
    })?;
    let past = vmo.map(ZX_VM_PERM_READ, APERTURE_START + APERTURE_SIZE, 0, 4096);
    println!("limits: mapping past the aperture: {past:?}");
    if past != Err(Status::ERR_OUT_OF_RANGE) {
        return Err(2);
    }
    if let Some(&last) = mapped.last() {
        rt::sys::vmar_unmap(last, 4096).map_err(|_| 3)?;
        room_again("mappings", vmo.map(ZX_VM_PERM_READ, last, 0, 4096))?;
    }
    Ok(vmo)
}
