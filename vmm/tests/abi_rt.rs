//! The guest runtime agrees with the ABI's argument table: every `rt::sys` wrapper puts each
//! argument in the register `abi::Call::args` names, leaves the others 0, and reads its
//! out-value, written buffer or returned value from where the VMM puts them.
//!
//! Design: the guest program `abi_probe` (`guest/programs/src/bin/abi_probe.rs`) calls every
//! wrapper once, in call-number order, with recognisable arguments. The test runs it on a real
//! vCPU through the VMM's exit dispatch (`exit::run_once`), but with its own hypercall handler
//! ([`Probe`]) in place of the VMM's: it records each call's eight argument registers, reads
//! the buffers the table says the VMM reads, and stores recognisable bytes where the table
//! says the VMM writes. Then, for each call, every register is checked against its role in the
//! table (a value, option or handle argument `i` must be `tag(call, i)`, a length the length
//! of its buffer, a buffer read must hold the probe's text, a pointer must be in RAM, unused
//! registers 0), and the probe itself reports (`ConsoleWrite` of `ok`) that each wrapper
//! returned the bytes the host stored. A wrapper that swaps two arguments, misplaces an
//! out-pointer, or a table row that disagrees with rt, fails here naming the call and the
//! argument. The conventions (`tag`, `pattern`, `text`) are written in both files.

use std::sync::Arc;

use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};
use kvmpager::abi::{Call, ExceptionReport, Ret, Role};
use kvmpager_vmm::exit::{self, ExitAction, ExitHandler, StopReason};
use kvmpager_vmm::hypercall::{self, Hypercall};
use kvmpager_vmm::vm::Vm;
use kvmpager_vmm::{VmConfig, boot, skip_without_kvm};

/// The recognisable value of argument `i` of call `c` (as in `abi_probe.rs`).
const fn tag(c: Call, i: u64) -> u64 {
    0xa000_0000 | (c as u64) << 8 | i
}

/// Byte `k` of what the host stores for call `c` (as in `abi_probe.rs`).
const fn pattern(c: Call, k: usize) -> u8 {
    ((c as u8) << 3) ^ (k as u8) ^ 0xa5
}

/// The `n`-th buffer the VMM reads for call `c` (as in `abi_probe.rs`).
fn text(c: Call, n: usize) -> Vec<u8> {
    (0..16 + n)
        .map(|k| b'a' + ((c as usize + 7 * n + k) % 26) as u8)
        .collect()
}

/// One hypercall the probe made: its registers and the bytes of each buffer the VMM reads,
/// by argument index.
#[derive(Debug)]
struct Seen {
    hc: Hypercall,
    read: Vec<(usize, Vec<u8>)>,
    /// Pointers the host could not store through.
    errors: Vec<String>,
}

/// A vCPU that answers hypercalls as the ABI table describes them, recording each.
struct Probe {
    fd: VcpuFd,
    vm: Arc<Vm>,
    seen: Vec<Seen>,
}

impl Probe {
    /// vCPU 0 of `vm` with the boot entry state (as `vcpu::Vcpu::new` sets it up).
    fn new(vm: &Arc<Vm>) -> Probe {
        let mut fd = vm.fd().create_vcpu(0).expect("KVM_CREATE_VCPU");
        fd.set_cpuid2(vm.cpuid()).expect("KVM_SET_CPUID2");
        let sregs = fd.get_sregs().expect("KVM_GET_SREGS");
        let sregs = boot::initial_sregs(sregs, 0, vm.features());
        fd.set_sregs(&sregs).expect("KVM_SET_SREGS");
        fd.set_fpu(&boot::initial_fpu()).expect("KVM_SET_FPU");
        let regs = boot::initial_regs(vm.entry(), 0, vm.vcpus(), vm.ram().size());
        fd.set_regs(&regs).expect("KVM_SET_REGS");
        fd.set_sync_valid_reg(SyncReg::Register);
        Probe {
            fd,
            vm: vm.clone(),
            seen: Vec::new(),
        }
    }

    /// Records `hc`, reads and writes guest memory as its table row says, and returns `rax`.
    fn answer(&mut self, hc: Hypercall) -> Option<u64> {
        let Some(call) = Call::from_nr(hc.nr) else {
            panic!("the probe made an unknown call {:#x}", hc.nr);
        };
        let mut seen = Seen {
            hc,
            read: Vec::new(),
            errors: Vec::new(),
        };
        for (i, arg) in call.args().iter().enumerate() {
            self.serve(call, i, arg.role, &mut seen);
        }
        self.seen.push(seen);
        match call.ret() {
            Ret::Status => Some(0),
            Ret::Value => Some(tag(call, 0xff)),
            Ret::Never => None,
        }
    }

    /// What the VMM does with argument `i` of `call`: reads a buffer, or stores bytes.
    fn serve(&self, call: Call, i: usize, role: Role, seen: &mut Seen) {
        let a = seen.hc.args;
        let ram = self.vm.ram();
        let store = match (role.out_size(), role) {
            (Some(n), _) => Some(n),
            (None, Role::BufOut { len }) => Some(a[len as usize]),
            _ => None,
        };
        if let Some(n) = store {
            let bytes: Vec<u8> = (0..n as usize).map(|k| pattern(call, k)).collect();
            if let Err(s) = ram.write(a[i], &bytes) {
                seen.errors
                    .push(format!("storing {n} bytes at arg {i} ({:#x}): {s}", a[i]));
            }
        } else if let Role::BufIn { len } | Role::Str { len } = role {
            match ram.read(a[i], a[len as usize]) {
                Ok(b) => seen.read.push((i, b)),
                Err(s) => seen
                    .errors
                    .push(format!("reading arg {i} ({:#x}): {s}", a[i])),
            }
        }
    }
}

impl ExitHandler for Probe {
    fn run(&mut self) -> Result<VcpuExit<'_>, kvm_ioctls::Error> {
        self.fd.run()
    }

    fn index(&self) -> u32 {
        0
    }

    fn hypercall(&mut self) -> ExitAction {
        let hc = hypercall::decode(&self.fd.sync_regs().regs);
        match self.answer(hc) {
            Some(rax) => {
                self.fd.sync_regs_mut().regs.rax = rax;
                self.fd.set_sync_dirty_reg(SyncReg::Register);
                ExitAction::Continue
            }
            None => ExitAction::Stop(StopReason::Exit(hc.args[0] as i64)),
        }
    }

    fn exception_report(&mut self, vector: u8) -> ExceptionReport {
        boot::exception_report(vector, &self.fd.sync_regs().regs)
    }

    fn rip(&mut self) -> u64 {
        self.fd.get_regs().map(|r| r.rip).unwrap_or(0)
    }

    fn cpu_state(&mut self) -> String {
        format!("{:x?}", self.fd.get_regs())
    }

    fn internal_error(&mut self) -> (u32, Vec<u64>) {
        (0, Vec::new())
    }

    fn mmio(&mut self, _addr: u64, _len: usize, _write: Option<[u8; 8]>) -> bool {
        false
    }

    fn retry_after_registering_ram(&mut self) -> bool {
        false
    }
}

/// Runs the probe to its end; returns the calls it made and how it stopped.
fn run_probe() -> (Vec<Seen>, StopReason) {
    let mut cfg = VmConfig::new(kvmpager_vmm::guests::ABI_PROBE.elf.to_vec());
    cfg.vcpus = 1;
    cfg.memory = 4 << 20;
    let vm = Vm::new(&cfg).expect("the VM builds");
    let mut probe = Probe::new(&vm);
    let stop = loop {
        match exit::run_once(&mut probe).expect("KVM_RUN") {
            ExitAction::Continue => {}
            ExitAction::Stop(reason) => break reason,
        }
        assert!(probe.seen.len() < 64, "the probe does not stop");
    };
    let seen = std::mem::take(&mut probe.seen);
    drop(probe);
    vm.kill_processes();
    (seen, stop)
}

/// The mismatches between one recorded call and the table row of `call`.
fn check_call(call: Call, s: &Seen) -> Vec<String> {
    let a = s.hc.args;
    let mut bad = s.errors.clone();
    let args = call.args();
    for (i, arg) in args.iter().enumerate() {
        let want = match arg.role {
            Role::Value | Role::Options | Role::Handle | Role::Gpa => Some(tag(call, i as u64)),
            Role::Bool => Some(1),
            Role::Len => (0..)
                .map_while(|n| call.buffer(n).map(|b| (n, b)))
                .find(|&(_, (_, len))| len == i)
                .map(|(n, _)| 16 + n as u64),
            _ => None,
        };
        if let Some(w) = want.filter(|&w| w != a[i]) {
            bad.push(format!(
                "`{}` ({:?}) is {:#x}, not {w:#x}",
                arg.name, arg.role, a[i]
            ));
        }
    }
    for (n, (ptr, _)) in (0..).map_while(|n| call.buffer(n).map(|b| (n, b))) {
        let read = s
            .read
            .iter()
            .find(|(i, _)| *i == ptr)
            .map(|(_, b)| b.clone());
        if args[ptr].role.dir() == kvmpager::abi::Dir::In && read != Some(text(call, n)) {
            bad.push(format!(
                "`{}` holds {read:?}, not the probe's text",
                args[ptr].name
            ));
        }
    }
    for (i, &v) in a.iter().enumerate().skip(args.len()) {
        if v != 0 {
            bad.push(format!("register {i} (no argument) is {v:#x}, not 0"));
        }
    }
    bad
}

#[test]
fn rt_wrappers_put_every_argument_where_the_abi_table_says() {
    if skip_without_kvm() {
        return;
    }
    let (seen, stop) = run_probe();
    let made: Vec<u64> = seen.iter().map(|s| s.hc.nr).collect();
    // Every call in number order, then the verdict (`ConsoleWrite`), then `Exit` last.
    let mut want: Vec<u64> = Call::ALL
        .iter()
        .filter(|&&c| c != Call::Exit)
        .map(|&c| c as u64)
        .collect();
    want.extend([Call::ConsoleWrite as u64, Call::Exit as u64]);
    assert_eq!(made, want, "the probe's calls, by number");
    let mut failures = Vec::new();
    let probed = seen.iter().take(want.len() - 2).chain(seen.last());
    for s in probed {
        let call = Call::from_nr(s.hc.nr).unwrap();
        for f in check_call(call, s) {
            failures.push(format!("{call:?} {}: {f}", call.signature()));
        }
    }
    assert!(
        failures.is_empty(),
        "rt disagrees with the ABI table:\n  {}",
        failures.join("\n  ")
    );
    let verdict = &seen[seen.len() - 2].read[0].1;
    assert_eq!(
        String::from_utf8_lossy(verdict),
        "ok",
        "what the probe's wrappers returned"
    );
    assert_eq!(stop, StopReason::Exit(tag(Call::Exit, 0) as i64));
}
