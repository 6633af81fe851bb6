//! The hypercall fuzzer's harness: turns arbitrary bytes into a sequence of vCPU exits —
//! almost all hypercalls, with hostile registers and guest-memory contents — and runs them
//! through the VMM's real exit dispatch ([`exit::run_once`]), hypercall decoder and handlers
//! ([`hypercall::handle`]) on a real VM. No vCPU runs: a scripted vCPU ([`FuzzVcpu`]) returns
//! the exits, and the harness plays the guest. After every step it checks that the VMM is
//! still sound and that the result is what the ABI promises.
//!
//! Used by the libFuzzer target in `fuzz/` (`cargo +nightly fuzz run hypercalls`), by
//! `vmm/tests/fuzz_hypercalls.rs` (the saved crashing inputs in `fuzz/regressions/`, then random
//! inputs) and by nothing else. README "Fuzzing" says how to run it.
//!
//! An input is a list of steps, each chosen by the bytes: an exit (1 in 16 is not a
//! hypercall: another port, an `in`, an access outside any memslot, `hlt`, ...) whose
//! hypercall number and eight arguments are drawn from values likely to matter, or a write of
//! arbitrary bytes into guest RAM. Each argument is drawn by its role in the ABI's argument
//! table (`abi::Call::args`): a handle from those the guest was given, option bits, page
//! multiples and wrapping lengths, pointers into scratch RAM or at the edges of RAM and holes,
//! aperture addresses; one in four, and every register that carries no argument, is drawn
//! from all of those and raw 64-bit values alike. Handles stored through out-pointers join the
//! pool later arguments draw from, so deep call sequences (pager, port, pager VMO, supply, map,
//! detach, ...) are reached. The oracle after each call: every limit held, a failed call left
//! no new handle, and a call with a guest pointer (the table's buffers and out-pointers) that
//! breaks the ABI's pointer rules gave `ZX_ERR_INVALID_ARGS` and asked no pager for pages.
//! The VM runs under small [`GuestLimits`] so the limits are hit, and with a short wait limit
//! so a call that waits for a pager that is the harness itself returns `ZX_ERR_TIMED_OUT`
//! instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;
use kvmpager::abi::layout::{APERTURE_SIZE, APERTURE_START};
use kvmpager::abi::status::{ZX_ERR_INVALID_ARGS, ZX_ERR_TIMED_OUT, ZX_OK};
use kvmpager::abi::{Call, PAGE_SIZE, Role};

use kvm_bindings::kvm_regs;
use kvm_ioctls::VcpuExit;
use kvmpager::abi::ExceptionReport;

use crate::config::{GuestLimits, VmConfig};
use crate::exit::{self, ExitAction, ExitHandler};
use crate::hypercall::{self, Hypercall, Outcome};
use crate::memory::POINTER_FLOOR;
use crate::vm::Vm;

/// Guest RAM of a fuzzed VM.
pub const RAM: u64 = 4 << 20;
/// Most steps of one input.
pub const MAX_STEPS: usize = 64;
/// Where the harness mostly points out-parameters.
const OUT: u64 = 0x30_0000;
/// Guest buffers the harness points at (RAM that holds nothing the harness needs).
const SCRATCH: u64 = 0x20_0000;
/// How long any call may wait: the only pager is the harness, which never answers while a
/// call runs.
const WAIT_LIMIT: Duration = Duration::from_micros(100);

/// The limits of a fuzzed guest: small, so the fuzzer reaches them.
pub fn limits() -> GuestLimits {
    GuestLimits {
        handles: 48,
        vmos: 24,
        vmo_bytes: 8 << 20,
        queued_packets: 32,
        mappings: 6,
    }
}

/// What one input did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseStats {
    /// Hypercalls made.
    pub calls: u64,
    /// Of those, how many returned `ZX_OK`.
    pub ok: u64,
    /// Whether the VM asked to stop (the `Exit` call).
    pub stopped: bool,
    /// Each hypercall's number and the status (or value) it returned, in order: saved inputs
    /// check that they still make the call they were saved for.
    pub log: Vec<(u64, i64)>,
}

/// What the guest's process held before a call, for the checks after it.
#[derive(Clone, Copy, Debug)]
struct Before {
    handles: usize,
    requests: u64,
    packets: usize,
}

/// Builds a fuzzing VM (`None` when KVM is unavailable), runs the steps `data` encodes, checks
/// the invariants after each, and tears the VM down. Panics when an invariant breaks: that is
/// what the fuzzer looks for, along with crashes and hangs.
pub fn run_case(data: &[u8]) -> Option<CaseStats> {
    let vm = fuzz_vm(data.first().is_some_and(|b| b & 0x80 != 0))?;
    let mut case = Case::new(&vm);
    let mut u = Unstructured::new(data.get(1..).unwrap_or_default());
    for _ in 0..MAX_STEPS {
        if u.is_empty() || case.step(&mut u).is_err() || case.stats.stopped {
            break;
        }
        case.check_invariants();
    }
    let stats = case.stats;
    vm.kill_processes();
    Some(stats)
}

/// A VM for one input: no vCPU ever runs; lazy (pager-backed) RAM when `lazy`.
fn fuzz_vm(lazy: bool) -> Option<Arc<Vm>> {
    let mut cfg = VmConfig::new(crate::guests::HELLO.elf.to_vec());
    cfg.vcpus = 1;
    cfg.memory = RAM;
    cfg.lazy_ram = lazy;
    cfg.limits = limits();
    match Vm::new(&cfg) {
        Ok(vm) => {
            vm.guest().set_wait_limit(Some(WAIT_LIMIT));
            Some(vm)
        }
        Err(e) => {
            log::warn!("no fuzzing VM: {e}");
            None
        }
    }
}

/// The state of one input's run.
struct Case<'a> {
    vm: &'a Vm,
    /// Handle values the guest was given (and some it made up).
    handles: Vec<u64>,
    stats: CaseStats,
}

type Step = arbitrary::Result<()>;

impl<'a> Case<'a> {
    fn new(vm: &'a Vm) -> Self {
        Case {
            vm,
            handles: Vec::new(),
            stats: CaseStats::default(),
        }
    }

    /// One step: mostly hypercalls, sometimes a write into guest RAM.
    fn step(&mut self, u: &mut Unstructured) -> Step {
        if u.ratio(1, 8)? {
            return self.write_ram(u);
        }
        let nr = self.call_number(u)?;
        let roles = Call::from_nr(nr).map_or(&[][..], Call::args);
        let mut args = [0u64; 8];
        for (i, a) in args.iter_mut().enumerate() {
            *a = match roles.get(i) {
                Some(arg) => self.arg_as(arg.role, u)?,
                None => self.arg(u)?,
            };
        }
        let exit = Scripted::arbitrary(u)?;
        let mut regs: kvm_regs = kvm_regs {
            rax: nr,
            rbx: u.arbitrary()?,
            rcx: u.arbitrary()?,
            rbp: u.arbitrary()?,
            r11: u.arbitrary()?,
            r14: u.arbitrary()?,
            r15: u.arbitrary()?,
            rip: u.arbitrary()?,
            ..Default::default()
        };
        [
            regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9, regs.r12, regs.r13,
        ] = args;
        self.exit(exit, regs);
        Ok(())
    }

    /// Runs one scripted exit through the VMM's exit dispatch (`exit::run_once`), which
    /// decodes the registers of a hypercall and calls the handler like a real vCPU would.
    fn exit(&mut self, exit: Scripted, regs: kvm_regs) {
        let g = self.vm.guest();
        let before = Before {
            handles: g.handle_count(),
            requests: g.counters().requests,
            packets: g.queued_packets(),
        };
        let mut vcpu = FuzzVcpu {
            vm: self.vm,
            regs,
            exit,
            data: [0; 8],
            hypercall: None,
        };
        let action = exit::run_once(&mut vcpu).expect("a scripted exit never fails");
        if let ExitAction::Stop(_) = action {
            self.stats.stopped = true;
        }
        if let Some((hc, outcome)) = vcpu.hypercall {
            self.check_call(&hc, &outcome, before);
            self.learn(&hc, &outcome);
        }
    }

    /// A call number: almost always a real call, sometimes any value.
    fn call_number(&self, u: &mut Unstructured) -> arbitrary::Result<u64> {
        if u.ratio(1, 32)? {
            return u.arbitrary();
        }
        Ok(*u.choose(&Call::ALL)? as u64)
    }

    /// An argument with `role` in the ABI table: mostly a value of that kind, one in four
    /// drawn like any register ([`Case::arg`]).
    fn arg_as(&self, role: Role, u: &mut Unstructured) -> arbitrary::Result<u64> {
        if u.ratio(1, 4)? {
            return self.arg(u);
        }
        let edge = u.ratio(1, 4)?;
        Ok(match role {
            Role::Handle => self.handle(u)?,
            Role::Options if u.arbitrary()? => 0,
            Role::Options => 1 << u.int_in_range(0..=31)?,
            Role::Bool => u.int_in_range(0..=1)?,
            Role::Value | Role::Len => self.length(u)?,
            Role::Gpa if !edge => APERTURE_START + u.int_in_range(0..=64)? * PAGE_SIZE,
            _ if edge => edge_address(u)?,
            Role::BufIn { .. } | Role::BufOut { .. } | Role::Str { .. } => {
                SCRATCH + u.int_in_range(0..=2 * PAGE_SIZE)?
            }
            _ => OUT,
        })
    }

    /// A handle the guest was given (or any 32-bit value when it has none).
    fn handle(&self, u: &mut Unstructured) -> arbitrary::Result<u64> {
        match u.choose(&self.handles) {
            Ok(&h) => Ok(h),
            Err(_) => Ok(u.arbitrary::<u32>()?.into()),
        }
    }

    /// A size, offset or length: small, page multiples, or wrapping.
    fn length(&self, u: &mut Unstructured) -> arbitrary::Result<u64> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => u.int_in_range(0..=2 * PAGE_SIZE)?,
            1 => u.int_in_range(0..=1024u64)? * PAGE_SIZE,
            2 => u64::MAX - u.int_in_range(0..=PAGE_SIZE)?,
            _ => u.arbitrary()?,
        })
    }

    /// Any argument register.
    fn arg(&self, u: &mut Unstructured) -> arbitrary::Result<u64> {
        Ok(match u.int_in_range(0..=9u8)? {
            0 | 1 => self.handle(u)?,
            2 => u.int_in_range(0..=16)?,
            3 => u.int_in_range(0..=1024u64)? * PAGE_SIZE,
            4 => OUT,
            5 => SCRATCH + u.int_in_range(0..=2 * PAGE_SIZE)?,
            6 => edge_address(u)?,
            7 => 1 << u.int_in_range(0..=63)?,
            8 => u64::MAX - u.int_in_range(0..=PAGE_SIZE)?,
            _ => u.arbitrary()?,
        })
    }

    /// Checks what the ABI promises about a call's result.
    fn check_call(&self, hc: &Hypercall, outcome: &Outcome, before: Before) {
        let g = self.vm.guest();
        if let Outcome::Return(r) = *outcome
            && r != ZX_OK as i64
        {
            assert!(
                g.handle_count() <= before.handles,
                "{hc:x?} failed with {r} but left a new handle"
            );
            // Only a call that gave up waiting leaves something behind: its page request.
            if r != ZX_ERR_TIMED_OUT as i64 {
                assert!(
                    g.queued_packets() <= before.packets,
                    "{hc:x?} failed with {r} but queued a packet"
                );
            }
        }
        if *outcome == Outcome::Return(ZX_OK.into()) {
            self.check_stored(hc);
        }
        if let Some((ptr, len)) = self.bad_pointer(hc) {
            assert_eq!(
                *outcome,
                Outcome::Return(ZX_ERR_INVALID_ARGS.into()),
                "{hc:x?}: bad pointer {ptr:#x} (+{len:#x}) must give ZX_ERR_INVALID_ARGS"
            );
            assert_eq!(
                g.counters().requests,
                before.requests,
                "{hc:x?}: a call with a bad pointer asked a pager for pages"
            );
        }
    }

    /// What a successful query stored is consistent: `actual` entries fit the buffer and are
    /// no more than `avail`, each a non-empty page-aligned run; the stats are 0 or MODIFIED.
    fn check_stored(&self, hc: &Hypercall) {
        let ram = self.vm.ram();
        let a = hc.args;
        match Call::from_nr(hc.nr) {
            Some(Call::PagerQueryDirtyRanges) => {
                let c = ram.read(a[6], 16).expect("a checked out-pointer");
                let word = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
                let (actual, avail) = (word(&c, 0), word(&c, 8));
                assert!(
                    actual <= avail && actual * 24 <= a[5],
                    "{hc:x?}: counts {actual}/{avail}"
                );
                for i in 0..actual {
                    let e = ram.read(a[4] + 24 * i, 24).expect("a checked buffer");
                    let (off, len) = (word(&e, 0), word(&e, 8));
                    assert!(
                        len > 0 && off % PAGE_SIZE == 0 && len % PAGE_SIZE == 0,
                        "{hc:x?}: entry {i} is {off:#x}+{len:#x}"
                    );
                }
            }
            Some(Call::PagerQueryVmoStats) => {
                let b = ram.read(a[3], 4).expect("a checked buffer");
                let modified = u32::from_le_bytes(b[..4].try_into().unwrap());
                assert!(modified <= 1, "{hc:x?}: modified {modified}");
            }
            _ => {}
        }
    }

    /// Learns the handle a successful call stored through its out-pointer, if it has one for a
    /// handle (`Role::OutHandle` in the ABI table).
    fn learn(&mut self, hc: &Hypercall, outcome: &Outcome) {
        self.stats.calls += 1;
        if let Outcome::Return(r) = *outcome {
            self.stats.log.push((hc.nr, r));
        }
        if *outcome != Outcome::Return(ZX_OK.into()) {
            return;
        }
        self.stats.ok += 1;
        let out = Call::from_nr(hc.nr).and_then(Call::out);
        let Some((i, Role::OutHandle)) = out else {
            return;
        };
        if let Ok(b) = self.vm.ram().read(hc.args[i], 4) {
            let h = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if h != 0 && self.handles.len() < 256 {
                self.handles.push(h.into());
            }
        }
    }

    /// The first guest buffer of `hc` that breaks the ABI's pointer rules (`abi.rs`, "Guest
    /// pointers"), if any: such a call must fail with `ZX_ERR_INVALID_ARGS` before anything
    /// else happens.
    fn bad_pointer(&self, hc: &Hypercall) -> Option<(u64, u64)> {
        let call = Call::from_nr(hc.nr)?;
        guest_buffers(call, &hc.args)
            .into_iter()
            .find(|&(ptr, len)| self.vm.ram().check(ptr, len).is_err())
    }

    /// Writes arbitrary bytes at an arbitrary place in RAM above the boot area.
    fn write_ram(&mut self, u: &mut Unstructured) -> Step {
        let len = u.int_in_range(1..=256u64)?;
        let gpa = u.int_in_range(POINTER_FLOOR..=RAM - len)?;
        let bytes = u.bytes(len as usize)?;
        self.vm
            .ram()
            .write(gpa, bytes)
            .expect("a write inside RAM succeeds");
        Ok(())
    }

    /// What must hold after every call, whatever the guest did.
    fn check_invariants(&self) {
        let (g, l) = (self.vm.guest(), limits());
        assert!(g.handle_count() <= l.handles, "handle limit broken");
        assert!(g.vmo_count() <= l.vmos, "VMO limit broken");
        assert!(g.vmo_memory() <= l.vmo_bytes, "VMO byte limit broken");
        assert!(
            g.queued_packets() <= l.queued_packets + 2 * l.vmos,
            "unread packets beyond their bound: {}",
            g.queued_packets()
        );
        assert!(
            self.vm.console().contents().len() <= 64 * crate::console::MAX_WRITE as usize,
            "console grew beyond what the calls could write"
        );
    }
}

/// The guest pointers (pointer, length) a call reads or writes through: its buffers and its
/// out-pointer, from the ABI's argument table (`abi::Call::args`).
fn guest_buffers(call: Call, a: &[u64; 8]) -> Vec<(u64, u64)> {
    let args = call.args().iter().enumerate();
    args.filter_map(|(i, arg)| {
        let len = match arg.role.buf_len() {
            Some(len) => a[len],
            None => arg.role.out_size()?,
        };
        Some((a[i], len))
    })
    .collect()
}

/// An address at an edge: the null page, the page tables and the end of the boot area, the end
/// of RAM, the hole above it, the aperture
/// and its end, or the top of the address space.
fn edge_address(u: &mut Unstructured) -> arbitrary::Result<u64> {
    let base = *u.choose(&[
        0,
        PAGE_SIZE,
        0x1_0000, // the page tables
        POINTER_FLOOR,
        RAM,
        RAM + PAGE_SIZE,
        APERTURE_START,
        APERTURE_START + APERTURE_SIZE,
        u64::MAX,
    ])?;
    let delta = u.int_in_range(0..=64u64)?;
    Ok(if u.arbitrary()? {
        base.wrapping_add(delta)
    } else {
        base.wrapping_sub(delta)
    })
}

/// The exit a [`FuzzVcpu`] reports: almost always a hypercall (`out` to the hypercall port),
/// sometimes another port, an `in`, an access outside any memslot, `hlt`, a shutdown or an
/// interrupted run.
#[derive(Clone, Copy, Debug)]
enum Scripted {
    Out { port: u16, size: usize },
    In { port: u16, size: usize },
    MmioRead { addr: u64, len: usize },
    MmioWrite { addr: u64, len: usize },
    Hlt,
    Shutdown,
    Intr,
}

impl Scripted {
    fn arbitrary(u: &mut Unstructured) -> arbitrary::Result<Scripted> {
        let size = *u.choose(&[1usize, 2, 4])?;
        let len = u.int_in_range(1..=8usize)?;
        if u.ratio(15, 16)? {
            return Ok(Scripted::Out {
                port: kvmpager::abi::HYPERCALL_PORT,
                size,
            });
        }
        Ok(match u.int_in_range(0..=6u8)? {
            0 => Scripted::Out {
                port: u.arbitrary()?,
                size,
            },
            1 => Scripted::In {
                port: u.arbitrary()?,
                size,
            },
            2 => Scripted::MmioRead {
                addr: edge_address(u)?,
                len,
            },
            3 => Scripted::MmioWrite {
                addr: edge_address(u)?,
                len,
            },
            4 => Scripted::Hlt,
            5 => Scripted::Shutdown,
            _ => Scripted::Intr,
        })
    }
}

/// A vCPU whose `KVM_RUN` returns a scripted exit, with its registers in memory: the exit
/// dispatch and the hypercall decoder run on it exactly as on a real vCPU.
struct FuzzVcpu<'a> {
    vm: &'a Vm,
    regs: kvm_regs,
    exit: Scripted,
    data: [u8; 8],
    /// The hypercall the exit made, and its outcome.
    hypercall: Option<(Hypercall, Outcome)>,
}

impl ExitHandler for FuzzVcpu<'_> {
    fn run(&mut self) -> Result<VcpuExit<'_>, kvm_ioctls::Error> {
        Ok(match self.exit {
            Scripted::Out { port, size } => VcpuExit::IoOut(port, &self.data[..size]),
            Scripted::In { port, size } => VcpuExit::IoIn(port, &mut self.data[..size]),
            Scripted::MmioRead { addr, len } => VcpuExit::MmioRead(addr, &mut self.data[..len]),
            Scripted::MmioWrite { addr, len } => VcpuExit::MmioWrite(addr, &self.data[..len]),
            Scripted::Hlt => VcpuExit::Hlt,
            Scripted::Shutdown => VcpuExit::Shutdown,
            Scripted::Intr => VcpuExit::Intr,
        })
    }

    fn index(&self) -> u32 {
        0
    }

    fn hypercall(&mut self) -> ExitAction {
        let hc = hypercall::decode(&self.regs);
        let outcome = hypercall::handle(self.vm, 0, hc);
        self.hypercall = Some((hc, outcome.clone()));
        match outcome {
            Outcome::Return(v) => {
                self.regs.rax = v as u64;
                ExitAction::Continue
            }
            Outcome::Stop(reason) => ExitAction::Stop(reason),
        }
    }

    fn exception_report(&mut self, vector: u8) -> ExceptionReport {
        crate::boot::exception_report(vector, &self.regs)
    }

    fn rip(&mut self) -> u64 {
        self.regs.rip
    }

    fn cpu_state(&mut self) -> String {
        format!("rip={:#x}", self.regs.rip)
    }

    fn internal_error(&mut self) -> (u32, Vec<u64>) {
        (0, Vec::new())
    }

    fn mmio(&mut self, addr: u64, len: usize, write: Option<[u8; 8]>) -> bool {
        if !self.vm.register_ram_at(addr) {
            return false;
        }
        match write {
            Some(bytes) => self.vm.ram().write(addr, &bytes[..len]).is_ok(),
            None => self.vm.ram().read(addr, len as u64).is_ok(),
        }
    }

    fn retry_after_registering_ram(&mut self) -> bool {
        false
    }
}
