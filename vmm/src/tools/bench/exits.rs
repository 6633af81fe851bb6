//! Case 1: the hypercall round trip (`Null`) vs the raw port-I/O exit.
//!
//! Both are timed with the host's monotonic clock read while an exit is being handled, so
//! they compare like with like:
//! - `Null`: the `bench_exits` guest (mode NULL) on the full VMM — vCPU loop, exit dispatch,
//!   hypercall decode, `Null` — timing its loop with `ClockGetMonotonic` (which the VMM reads
//!   while handling that exit).
//! - raw: the same guest (mode RAW) doing a bare `out 0xe1, eax` in a loop, on a vCPU loop
//!   here that does nothing but re-enter `KVM_RUN` (no decode, no sync-regs copy); it reads
//!   the clock at its first and last counted exit.
//!
//! The VM for the raw loop is built by `Vm::new` like any other (same boot state, same lazy
//! RAM); only the vCPU loop differs.

use std::sync::Arc;
use std::time::Instant;

use kvm_ioctls::VcpuExit;
use kvmpager::abi::EXCEPTION_PORT;

use super::{Figure, MAGIC, Options, Report, Target, guest_config, median, run_guest};
use crate::boot;
use crate::config::VmConfig;
use crate::vm::Vm;

const MODE_NULL: u64 = 1;
const MODE_RAW: u64 = 2;
/// Exits left out before the raw loop starts its clock.
const RAW_WARMUP: u64 = 200;
const MEMORY: u64 = 64 << 20;

/// Runs case 1.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let n = opts.exit_calls;
    let (mut null, mut bare, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    let mut err = None;
    for _ in 0..opts.reps {
        match null_loop(n) {
            Ok((a, b)) => {
                null.push(a);
                bare.push(b);
            }
            Err(e) => err = Some(e),
        }
        match raw_loop(n) {
            Ok(r) => raw.push(r),
            Err(e) => err = Some(e),
        }
    }
    let med = |v: &mut Vec<f64>| (!v.is_empty()).then(|| median(v));
    let (null_ns, bare_ns, raw_ns) = (med(&mut null), med(&mut bare), med(&mut raw));
    let base = "raw port-I/O exit, VMM only re-enters";
    let view = format!(
        "host clock at exit handling; median of {} reps x {n} calls",
        opts.reps
    );
    report.push(
        Figure::new(1, "Null hypercall round trip", "ns")
            .value(null_ns)
            .baseline(base, raw_ns)
            .target(Target::AtMost(1.5))
            .view(view.clone())
            .note("full VMM: vCPU loop, exit dispatch, decode, sync regs"),
    );
    report.push(
        Figure::new(1, "Null via bare out (only rax set)", "ns")
            .value(bare_ns)
            .baseline(base, raw_ns)
            .view(view)
            .note("same path as Null; the guest side sets no argument registers"),
    );
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One NULL-mode run: (ns per `Null` call, ns per bare-form call).
fn null_loop(n: u64) -> Result<(f64, f64), String> {
    null_loop_with(n, |_, _| Ok(()))
}

/// [`null_loop`], calling `before_start` with the VM and its configuration before the vCPUs
/// start (case 6 starts the control socket there).
pub(crate) fn null_loop_with(
    n: u64,
    before_start: impl FnOnce(&Arc<Vm>, &VmConfig) -> Result<(), String>,
) -> Result<(f64, f64), String> {
    let mut cfg = guest_config("bench_exits", 1, MEMORY)?;
    cfg.lazy_ram = true;
    let done = run_guest(&cfg, &[MAGIC, MODE_NULL, n], |vm| before_start(vm, &cfg))?;
    let r = done.results(5)?;
    if r[4] != 0 {
        return Err(format!("{} Null calls did not return ZX_OK", r[4]));
    }
    Ok((r[2] as f64 / r[1] as f64, r[3] as f64 / r[1] as f64))
}

/// One RAW-mode run: ns per exit.
fn raw_loop(n: u64) -> Result<f64, String> {
    let mut cfg = guest_config("bench_exits", 1, MEMORY)?;
    cfg.lazy_ram = true;
    let vm = Vm::new(&cfg).map_err(|e| e.to_string())?;
    let result = raw_vcpu(&vm, n);
    vm.kill_processes();
    result
}

fn raw_vcpu(vm: &Vm, n: u64) -> Result<f64, String> {
    let params: Vec<u8> = [MAGIC, MODE_RAW, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    vm.ram()
        .write(super::PARAMS_GPA, &params)
        .map_err(|s| format!("writing parameters: status {s}"))?;
    let kvm = |what: &'static str| move |e: kvm_ioctls::Error| format!("{what}: {e}");
    let mut fd = vm.fd().create_vcpu(0).map_err(kvm("KVM_CREATE_VCPU"))?;
    fd.set_cpuid2(vm.cpuid()).map_err(kvm("KVM_SET_CPUID2"))?;
    let sregs = fd.get_sregs().map_err(kvm("KVM_GET_SREGS"))?;
    fd.set_sregs(&boot::initial_sregs(sregs, 0, vm.features()))
        .map_err(kvm("KVM_SET_SREGS"))?;
    fd.set_fpu(&boot::initial_fpu())
        .map_err(kvm("KVM_SET_FPU"))?;
    let regs = boot::initial_regs(vm.entry(), 0, 1, vm.ram().size());
    fd.set_regs(&regs).map_err(kvm("KVM_SET_REGS"))?;
    let total = RAW_WARMUP + n;
    let (mut count, mut t0) = (0u64, Instant::now());
    loop {
        match fd.run() {
            Ok(VcpuExit::IoOut(port, _)) if port != EXCEPTION_PORT => {
                count += 1;
                if count == RAW_WARMUP {
                    t0 = Instant::now();
                } else if count == total {
                    return Ok(t0.elapsed().as_nanos() as f64 / n as f64);
                }
            }
            Ok(other) => return Err(format!("raw vCPU loop: unexpected exit {other:?}")),
            Err(e) if matches!(e.errno(), libc::EINTR | libc::EAGAIN) => {}
            Err(e) => return Err(format!("KVM_RUN: {e}")),
        }
    }
}
