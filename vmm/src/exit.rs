//! What a VM exit means: one `match` on `VcpuExit` that dispatches to a named handler and
//! returns an [`ExitAction`]. Guest behaviour never panics the VMM: everything unexpected
//! becomes a clean [`StopReason`].
//!
//! `EINTR`/`EAGAIN` from `KVM_RUN` are returned to the caller (the vCPU loop), which knows
//! whether a stop was requested.

use kvm_ioctls::VcpuExit;
use kvmpager::abi::{EXCEPTION_PORT, ExceptionReport, HYPERCALL_PORT};

/// Why a VM stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StopReason {
    /// The guest called `Exit(code)`.
    #[error("guest exited with code {0}")]
    Exit(i64),
    /// A CPU exception reached the exception stub.
    #[error("vCPU {vcpu}: guest exception {} (vector {}, error code {:#x}) at rip {:#x}, cr2 {:#x}",
        vector_name(.report.vector), .report.vector, .report.error_code, .report.rip, .report.cr2)]
    Exception {
        /// The vCPU that faulted.
        vcpu: u32,
        /// What the stub reported.
        report: ExceptionReport,
    },
    /// Port I/O on a port nothing handles.
    #[error("vCPU {vcpu}: unhandled port I/O ({dir}) on port {port:#x}")]
    UnhandledPort {
        /// The vCPU.
        vcpu: u32,
        /// The port.
        port: u16,
        /// "in" or "out".
        dir: &'static str,
    },
    /// An access to a guest-physical address with no memory behind it.
    #[error("vCPU {vcpu}: {dir} of unbacked guest-physical address {addr:#x}")]
    Mmio {
        /// The vCPU.
        vcpu: u32,
        /// The address.
        addr: u64,
        /// "read" or "write".
        dir: &'static str,
    },
    /// The vCPU halted (`hlt` only reaches the VMM from CPL 0).
    #[error("vCPU {vcpu}: halted at rip {rip:#x}")]
    Hlt {
        /// The vCPU.
        vcpu: u32,
        /// Where.
        rip: u64,
    },
    /// Triple fault (or another shutdown).
    #[error("vCPU {vcpu}: triple fault / shutdown; {state}")]
    Shutdown {
        /// The vCPU.
        vcpu: u32,
        /// Register dump.
        state: String,
    },
    /// KVM could not enter the guest.
    #[error("vCPU {vcpu}: VM entry failed, hardware reason {reason:#x}; {state}")]
    FailEntry {
        /// The vCPU.
        vcpu: u32,
        /// Hardware entry failure reason.
        reason: u64,
        /// Register dump.
        state: String,
    },
    /// KVM's internal error (e.g. emulation failure).
    #[error("vCPU {vcpu}: KVM internal error, suberror {suberror} data {data:x?}; {state}")]
    InternalError {
        /// The vCPU.
        vcpu: u32,
        /// `kvm_run.internal.suberror`.
        suberror: u32,
        /// `kvm_run.internal.data`.
        data: Vec<u64>,
        /// Register dump.
        state: String,
    },
    /// Any other exit reason.
    #[error("vCPU {vcpu}: unhandled exit {exit}")]
    UnhandledExit {
        /// The vCPU.
        vcpu: u32,
        /// The exit, as text.
        exit: String,
    },
    /// `KVM_RUN` failed.
    #[error("vCPU {vcpu}: KVM_RUN failed: {error}")]
    RunFailed {
        /// The vCPU.
        vcpu: u32,
        /// The error, as text.
        error: String,
    },
    /// A fault on a pager-backed page could not be resolved (its request was failed, or the
    /// VMO was detached or its pager closed).
    #[error("unresolvable page fault on VMO koid {vmo_koid} at offset {vmo_offset:#x}{} (host address {host_addr:#x}, thread {tid}): {}",
        at_gpa(*.guest_physical), kvmpager::abi::status::name(*.status))]
    FatalFault {
        /// Koid of the pager VMO.
        vmo_koid: u64,
        /// Offset of the page in the VMO.
        vmo_offset: u64,
        /// Where the page is in guest-physical memory (RAM or a `VmarMap` mapping), if mapped.
        guest_physical: Option<u64>,
        /// Host address of the faulting access.
        host_addr: u64,
        /// Status the page request failed with.
        status: i32,
        /// Host thread id.
        tid: u32,
    },
    /// A page request went unanswered for longer than `--fault-timeout`.
    #[error("{} page request of {len:#x} bytes on VMO koid {vmo_koid} at offset {offset:#x}{} unanswered for {waited_ms} ms (fault timeout {limit_ms} ms); the {} pager never answered",
        if *.command == kvmpager::abi::packet::ZX_PAGER_VMO_DIRTY { "DIRTY" } else { "READ" },
        at_gpa(*.guest_physical), if *.host_pager { "host" } else { "guest" })]
    FaultTimeout {
        /// Koid of the pager VMO.
        vmo_koid: u64,
        /// Offset of the first page asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// Where `offset` is in guest-physical memory, if mapped.
        guest_physical: Option<u64>,
        /// `ZX_PAGER_VMO_READ` or `ZX_PAGER_VMO_DIRTY`.
        command: u16,
        /// How long it had waited.
        waited_ms: u64,
        /// The limit.
        limit_ms: u64,
        /// Whether the VMO is guest RAM served by the VMM's host pager (else a guest pager's).
        host_pager: bool,
    },
    /// The host pager could not serve guest RAM.
    #[error("host pager failed: {0}")]
    HostPager(String),
    /// The time limit passed.
    #[error("timed out")]
    Timeout,
    /// A snapshot was written and the VM stopped (`--snapshot-then stop`).
    #[error("snapshot written to {0}; VM stopped")]
    Snapshotted(String),
    /// A control-socket client asked the VM to stop (`PUT /vm/stop`).
    #[error("stopped through the API socket")]
    Requested,
}

impl StopReason {
    /// Whether this is the guest's own, orderly exit.
    pub fn is_exit(&self) -> bool {
        matches!(self, StopReason::Exit(_))
    }
}

/// `" (guest-physical 0x…)"`, or nothing when the page is not mapped in the guest.
fn at_gpa(gpa: Option<u64>) -> String {
    gpa.map_or(String::new(), |g| format!(" (guest-physical {g:#x})"))
}

/// Mnemonic of an exception vector.
pub fn vector_name(v: u8) -> &'static str {
    const NAMES: [&str; 22] = [
        "#DE",
        "#DB",
        "NMI",
        "#BP",
        "#OF",
        "#BR",
        "#UD",
        "#NM",
        "#DF",
        "coprocessor overrun",
        "#TS",
        "#NP",
        "#SS",
        "#GP",
        "#PF",
        "reserved",
        "#MF",
        "#AC",
        "#MC",
        "#XM",
        "#VE",
        "#CP",
    ];
    NAMES.get(usize::from(v)).copied().unwrap_or("exception")
}

/// What the vCPU loop does after an exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitAction {
    /// Re-enter the guest.
    Continue,
    /// Stop the VM.
    Stop(StopReason),
}

/// The vCPU-side operations the exit handlers need.
pub trait ExitHandler {
    /// Runs the vCPU until the next exit (`KVM_RUN`).
    fn run(&mut self) -> Result<VcpuExit<'_>, kvm_ioctls::Error>;
    /// This vCPU's index.
    fn index(&self) -> u32;
    /// Handles a hypercall (registers are in the sync regs).
    fn hypercall(&mut self) -> ExitAction;
    /// The exception report in the registers (rdi, rsi, rdx) for `vector`.
    fn exception_report(&mut self, vector: u8) -> ExceptionReport;
    /// The current `rip`.
    fn rip(&mut self) -> u64;
    /// A one-line register dump.
    fn cpu_state(&mut self) -> String;
    /// `kvm_run.internal`: suberror and data.
    fn internal_error(&mut self) -> (u32, Vec<u64>);
    /// An access at `addr` with no memslot behind it: `len` bytes, `write` holding the bytes
    /// of a write. Returns whether the VMM completed the access (guest RAM registered with
    /// KVM lazily); `false` stops the VM.
    fn mmio(&mut self, addr: u64, len: usize, write: Option<[u8; 8]>) -> bool;
    /// After an internal error: whether it came from an instruction fetch in guest RAM not
    /// yet registered with KVM, which is now registered (re-entering retries it).
    fn retry_after_registering_ram(&mut self) -> bool;
}

/// An MMIO exit, copied out of `kvm_run` so the handler may use the vCPU.
struct Mmio {
    addr: u64,
    len: usize,
    write: Option<[u8; 8]>,
}

impl Mmio {
    fn new(addr: u64, data: &[u8], write: bool) -> Mmio {
        let len = data.len().min(8);
        let bytes = write.then(|| {
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&data[..len]);
            b
        });
        Mmio {
            addr,
            len,
            write: bytes,
        }
    }
}

/// Runs `h` once and decides what its exit means.
pub fn run_once<H: ExitHandler>(h: &mut H) -> Result<ExitAction, kvm_ioctls::Error> {
    let vcpu = h.index();
    let mut mmio = None;
    let action = match h.run()? {
        VcpuExit::IoOut(port, data) => {
            let value = le_u32(data);
            io_out(h, port, value)
        }
        VcpuExit::IoIn(port, _) => stop(StopReason::UnhandledPort {
            vcpu,
            port,
            dir: "in",
        }),
        VcpuExit::MmioRead(addr, data) => {
            mmio = Some(Mmio::new(addr, data, false));
            ExitAction::Continue
        }
        VcpuExit::MmioWrite(addr, data) => {
            mmio = Some(Mmio::new(addr, data, true));
            ExitAction::Continue
        }
        VcpuExit::Hlt => hlt(h),
        VcpuExit::Shutdown => shutdown(h),
        VcpuExit::FailEntry(reason, _) => fail_entry(h, reason),
        VcpuExit::InternalError => internal_error(h),
        VcpuExit::Intr => ExitAction::Continue,
        other => {
            let exit = format!("{other:?}");
            stop(StopReason::UnhandledExit { vcpu, exit })
        }
    };
    Ok(match mmio {
        Some(m) => mmio_access(h, m),
        None => action,
    })
}

fn mmio_access<H: ExitHandler>(h: &mut H, m: Mmio) -> ExitAction {
    let dir = if m.write.is_some() { "write" } else { "read" };
    if h.mmio(m.addr, m.len, m.write) {
        return ExitAction::Continue;
    }
    stop(StopReason::Mmio {
        vcpu: h.index(),
        addr: m.addr,
        dir,
    })
}

fn stop(reason: StopReason) -> ExitAction {
    ExitAction::Stop(reason)
}

/// The little-endian value of up to four bytes of port data.
fn le_u32(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}

fn io_out<H: ExitHandler>(h: &mut H, port: u16, value: u32) -> ExitAction {
    match port {
        HYPERCALL_PORT => h.hypercall(),
        EXCEPTION_PORT => {
            let report = h.exception_report(value as u8);
            stop(StopReason::Exception {
                vcpu: h.index(),
                report,
            })
        }
        _ => stop(StopReason::UnhandledPort {
            vcpu: h.index(),
            port,
            dir: "out",
        }),
    }
}

fn hlt<H: ExitHandler>(h: &mut H) -> ExitAction {
    let rip = h.rip();
    stop(StopReason::Hlt {
        vcpu: h.index(),
        rip,
    })
}

fn shutdown<H: ExitHandler>(h: &mut H) -> ExitAction {
    let state = h.cpu_state();
    stop(StopReason::Shutdown {
        vcpu: h.index(),
        state,
    })
}

fn fail_entry<H: ExitHandler>(h: &mut H, reason: u64) -> ExitAction {
    let state = h.cpu_state();
    stop(StopReason::FailEntry {
        vcpu: h.index(),
        reason,
        state,
    })
}

fn internal_error<H: ExitHandler>(h: &mut H) -> ExitAction {
    if h.retry_after_registering_ram() {
        return ExitAction::Continue;
    }
    let (suberror, data) = h.internal_error();
    let state = h.cpu_state();
    stop(StopReason::InternalError {
        vcpu: h.index(),
        suberror,
        data,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fabricated exit for the fake vCPU to return.
    #[derive(Clone, Copy)]
    enum Fake {
        Out(u16, u32),
        In(u16),
        MmioW(u64),
        Hlt,
        Shutdown,
        Internal,
        Intr,
        Debug,
        Errno(i32),
    }

    struct FakeVcpu {
        next: Fake,
        data: [u8; 8],
        hypercalls: u32,
    }

    impl ExitHandler for FakeVcpu {
        fn run(&mut self) -> Result<VcpuExit<'_>, kvm_ioctls::Error> {
            Ok(match self.next {
                Fake::Out(port, v) => {
                    self.data[..4].copy_from_slice(&v.to_le_bytes());
                    VcpuExit::IoOut(port, &self.data[..4])
                }
                Fake::In(port) => VcpuExit::IoIn(port, &mut self.data[..1]),
                Fake::MmioW(a) => VcpuExit::MmioWrite(a, &self.data[..8]),
                Fake::Hlt => VcpuExit::Hlt,
                Fake::Shutdown => VcpuExit::Shutdown,
                Fake::Internal => VcpuExit::InternalError,
                Fake::Intr => VcpuExit::Intr,
                Fake::Debug => VcpuExit::Debug(Default::default()),
                Fake::Errno(e) => return Err(kvm_ioctls::Error::new(e)),
            })
        }
        fn index(&self) -> u32 {
            3
        }
        fn hypercall(&mut self) -> ExitAction {
            self.hypercalls += 1;
            ExitAction::Continue
        }
        fn exception_report(&mut self, vector: u8) -> ExceptionReport {
            ExceptionReport {
                vector,
                error_code: 0,
                rip: 0x100123,
                cr2: 0xdead,
            }
        }
        fn rip(&mut self) -> u64 {
            0x4444
        }
        fn cpu_state(&mut self) -> String {
            "rip=0x4444".into()
        }
        fn internal_error(&mut self) -> (u32, Vec<u64>) {
            (1, vec![0x0f, 0x57])
        }
        fn mmio(&mut self, addr: u64, _len: usize, _write: Option<[u8; 8]>) -> bool {
            // The fake has "lazy RAM" below 1 MiB only.
            addr < 1 << 20
        }
        fn retry_after_registering_ram(&mut self) -> bool {
            false
        }
    }

    #[test]
    fn mmio_in_lazily_registered_ram_continues_and_elsewhere_stops() {
        assert!(matches!(
            exit_of(Fake::MmioW(0x8000)).0,
            Ok(ExitAction::Continue)
        ));
        assert!(matches!(
            exit_of(Fake::MmioW(0x12_3456_7000)).0,
            Ok(ExitAction::Stop(StopReason::Mmio { .. }))
        ));
    }

    fn exit_of(next: Fake) -> (Result<ExitAction, kvm_ioctls::Error>, u32) {
        let mut v = FakeVcpu {
            next,
            data: [0; 8],
            hypercalls: 0,
        };
        let r = run_once(&mut v);
        (r, v.hypercalls)
    }

    fn stop_of(next: Fake) -> StopReason {
        match exit_of(next).0 {
            Ok(ExitAction::Stop(r)) => r,
            other => panic!("expected a stop, got {other:?}"),
        }
    }

    #[test]
    fn hypercall_port_dispatches_to_the_hypercall_handler() {
        let (r, n) = exit_of(Fake::Out(HYPERCALL_PORT, 0));
        assert_eq!(r.unwrap(), ExitAction::Continue);
        assert_eq!(n, 1);
    }

    #[test]
    fn exception_port_stops_with_the_report() {
        let r = stop_of(Fake::Out(EXCEPTION_PORT, 14));
        let StopReason::Exception { vcpu: 3, report } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(report.vector, 14);
        let text = r.to_string();
        assert!(text.contains("#PF") && text.contains("0x100123") && text.contains("0xdead"));
    }

    #[test]
    fn other_ports_and_mmio_stop_naming_the_address() {
        let r = stop_of(Fake::Out(0x3f8, 0x41));
        assert_eq!(
            r,
            StopReason::UnhandledPort {
                vcpu: 3,
                port: 0x3f8,
                dir: "out"
            }
        );
        assert!(stop_of(Fake::In(0x60)).to_string().contains("0x60"));
        assert!(
            stop_of(Fake::MmioW(0x12_3456_7000))
                .to_string()
                .contains("0x1234567000")
        );
    }

    #[test]
    fn fatal_exits_stop_with_diagnostics() {
        assert_eq!(
            stop_of(Fake::Hlt),
            StopReason::Hlt {
                vcpu: 3,
                rip: 0x4444
            }
        );
        assert!(stop_of(Fake::Shutdown).to_string().contains("rip=0x4444"));
        let ie = stop_of(Fake::Internal).to_string();
        assert!(ie.contains("suberror 1") && ie.contains("f"), "{ie}");
        assert!(
            stop_of(Fake::Debug)
                .to_string()
                .contains("unhandled exit Debug")
        );
    }

    #[test]
    fn interrupts_continue_and_errnos_go_to_the_caller() {
        assert_eq!(exit_of(Fake::Intr).0.unwrap(), ExitAction::Continue);
        let e = exit_of(Fake::Errno(libc::EINTR)).0.unwrap_err();
        assert_eq!(e.errno(), libc::EINTR);
    }
}
