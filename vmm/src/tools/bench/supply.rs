//! Case 2: SUPPLY throughput of `zx_pager_vmo_op` per run size and strategy, vs a raw
//! `UFFDIO_COPY` loop (what Firecracker's page-fault handler does: one 4 KiB copy per page).
//!
//! Host-side only: a kernel [`Process`], a fresh pager VMO per iteration, an aux VMO
//! committed ahead of the timed region; only the `zx_pager_vmo_op(SUPPLY)` call is timed.
//! The baseline copies the same number of bytes from a populated buffer into a
//! userfaultfd-registered region (`src/uffd.rs`, `src/hostmem.rs` directly), one
//! `UFFDIO_COPY` per 4 KiB page; a single `UFFDIO_COPY` of the whole run is reported too.
//! Buffers are reused and iterations capped so 1 GiB runs stay within a few GiB of RAM.

use std::sync::Arc;
use std::time::Instant;

use crate::kernel::{Process, SupplyStrategy};
use kvmpager::abi::pager_op::ZX_PAGER_SUPPLY_PAGES;
use kvmpager::abi::vmo_op::ZX_VMO_OP_COMMIT;
use kvmpager::abi::vmo_options::KVMPAGER_VMO_HUGE;
use kvmpager::abi::{HUGE_PAGE_SIZE, PAGE_SIZE};
use kvmpager::hostmem::HostMemory;
use kvmpager::uffd::Userfault;

use super::{Figure, Options, Report, Target, median, size_name};

const GIB: f64 = (1u64 << 30) as f64;

/// One way of supplying pages.
struct Way {
    name: &'static str,
    strategy: SupplyStrategy,
    huge_aux: bool,
    zero_copy: bool,
}

const WAYS: [Way; 6] = [
    Way {
        name: "auto (the default)",
        strategy: SupplyStrategy::Auto,
        huge_aux: false,
        zero_copy: true,
    },
    Way {
        name: "move (UFFDIO_MOVE)",
        strategy: SupplyStrategy::Move,
        huge_aux: false,
        zero_copy: true,
    },
    Way {
        name: "move, huge-page aux",
        strategy: SupplyStrategy::Move,
        huge_aux: true,
        zero_copy: true,
    },
    Way {
        name: "memslot remap (mremap)",
        strategy: SupplyStrategy::Remap,
        huge_aux: false,
        zero_copy: true,
    },
    Way {
        name: "remap, huge-page aux",
        strategy: SupplyStrategy::Remap,
        huge_aux: true,
        zero_copy: true,
    },
    Way {
        name: "copy (UFFDIO_COPY in SUPPLY)",
        strategy: SupplyStrategy::Copy,
        huge_aux: false,
        zero_copy: false,
    },
];

const BASELINE: &str = "raw UFFDIO_COPY loop, 4 KiB/ioctl";

/// Runs case 2.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let uffd = Userfault::new().map_err(|e| format!("userfaultfd: {e}"))?;
    if !uffd.supports_move() {
        report.note("case 2: the host kernel has no UFFDIO_MOVE; move rows fall back to copy");
    }
    for &size in &opts.supply_sizes {
        let iters = (opts.supply_budget / size).clamp(2, opts.supply_max_iters.max(2));
        if opts.verbose {
            eprintln!("bench: case 2: {} x {iters}", size_name(size));
        }
        let (loop_gib, one_gib) = match baseline(&uffd, size, iters) {
            Ok(b) => (Some(b.0), Some(b.1)),
            Err(e) => {
                report.note(format!("case 2 baseline at {}: {e}", size_name(size)));
                (None, None)
            }
        };
        if let Some(b) = loop_gib {
            report.point(BASELINE, size, b);
        }
        if let Some(b) = one_gib {
            report.point("raw UFFDIO_COPY, one ioctl per run", size, b);
        }
        for way in &WAYS {
            if way.huge_aux && size < HUGE_PAGE_SIZE {
                continue;
            }
            let name = format!("SUPPLY {}, {}", size_name(size), way.name);
            let mut fig = Figure::new(2, name, "GiB/s").baseline(BASELINE, loop_gib);
            match supply(way, size, iters) {
                Ok(m) => {
                    report.point(way.name, size, m.gib_s);
                    fig = fig.value(m.gib_s).note(format!(
                        "{iters} iters; per call {}; paths: {}; one-ioctl copy baseline {}",
                        super::report::fmt_ns(m.ns),
                        m.paths,
                        super::report::fmt_value(one_gib, "GiB/s"),
                    ));
                }
                Err(e) => fig = fig.note(format!("not available: {e}")),
            }
            if way.zero_copy {
                let t = if size >= HUGE_PAGE_SIZE { 20.0 } else { 2.0 };
                if size >= HUGE_PAGE_SIZE || size == PAGE_SIZE {
                    fig = fig.target(Target::AtLeast(t));
                }
            }
            report.push(fig.view("host, the SUPPLY call only (median)"));
        }
    }
    Ok(())
}

/// The baseline: (GiB/s of the per-page loop, GiB/s of one ioctl per run), medians.
fn baseline(uffd: &Userfault, size: u64, iters: u64) -> Result<(f64, f64), String> {
    let e = |w: &'static str| move |x: kvmpager::hostmem::HostMemError| format!("{w}: {x}");
    let src = HostMemory::new(size, false).map_err(e("source"))?;
    src.populate(0, size).map_err(e("populating the source"))?;
    let dst = HostMemory::new(size, false).map_err(e("destination"))?;
    uffd.register_missing(dst.host_addr(), size)
        .map_err(|x| format!("registering: {x}"))?;
    let (mut per_page, mut one) = (Vec::new(), Vec::new());
    let result = (|| {
        for _ in 0..iters {
            let t = Instant::now();
            for off in (0..size).step_by(PAGE_SIZE as usize) {
                uffd.copy(dst.host_addr() + off, src.host_addr() + off, PAGE_SIZE)
                    .map_err(|x| format!("UFFDIO_COPY: {x}"))?;
            }
            per_page.push(gib_s(size, t.elapsed().as_nanos() as f64));
            dst.discard(0, size).map_err(e("discard"))?;
            let t = Instant::now();
            uffd.copy(dst.host_addr(), src.host_addr(), size)
                .map_err(|x| format!("UFFDIO_COPY: {x}"))?;
            one.push(gib_s(size, t.elapsed().as_nanos() as f64));
            dst.discard(0, size).map_err(e("discard"))?;
        }
        Ok::<_, String>(())
    })();
    let _ = uffd.unregister(dst.host_addr(), size);
    result?;
    Ok((median(&mut per_page), median(&mut one)))
}

fn gib_s(bytes: u64, ns: f64) -> f64 {
    bytes as f64 / GIB / (ns.max(1.0) / 1e9)
}

struct Measured {
    gib_s: f64,
    ns: f64,
    paths: String,
}

/// Median throughput of `iters` supplies of `size` bytes the given way.
fn supply(way: &Way, size: u64, iters: u64) -> Result<Measured, String> {
    let p = Process::new();
    p.set_supply_strategy(way.strategy);
    let st = |call: &'static str| move |s: i32| format!("{call}: status {s}");
    let pager = p.pager_create(0).map_err(st("zx_pager_create"))?;
    let port = p.port_create(0).map_err(st("zx_port_create"))?;
    let before = p.counters();
    let mut ns = Vec::new();
    for _ in 0..iters {
        ns.push(one_supply(&p, pager, port, size, way.huge_aux)?);
    }
    let after = p.counters();
    let paths = super::supply_paths(&before, &after);
    let med = median(&mut ns);
    Ok(Measured {
        gib_s: gib_s(size, med),
        ns: med,
        paths,
    })
}

/// One timed supply into a fresh pager VMO; returns ns.
fn one_supply(
    p: &Arc<Process>,
    pager: kvmpager::abi::Handle,
    port: kvmpager::abi::Handle,
    size: u64,
    huge: bool,
) -> Result<f64, String> {
    let st = |call: &'static str| move |s: i32| format!("{call}: status {s}");
    let vmo = p
        .pager_create_vmo(pager, 0, port, 0, size)
        .map_err(st("zx_pager_create_vmo"))?;
    let opts = if huge { KVMPAGER_VMO_HUGE } else { 0 };
    let aux = p.vmo_create(size, opts).map_err(st("zx_vmo_create"))?;
    let r = p
        .vmo_op_range(aux, ZX_VMO_OP_COMMIT, 0, size)
        .map_err(st("commit aux"))
        .and_then(|_| {
            let t = Instant::now();
            p.pager_vmo_op(pager, vmo, ZX_PAGER_SUPPLY_PAGES, 0, size, aux, 0)
                .map_err(st("zx_pager_vmo_op(SUPPLY)"))?;
            Ok(t.elapsed().as_nanos() as f64)
        })
        .and_then(|ns| {
            let info = p.vmo_get_info(vmo).map_err(st("zx_vmo_get_info"))?;
            if info.committed_bytes != size {
                return Err(format!("supplied {} of {size} bytes", info.committed_bytes));
            }
            Ok(ns)
        });
    let _ = p.handle_close(aux);
    let _ = p.handle_close(vmo);
    r
}
