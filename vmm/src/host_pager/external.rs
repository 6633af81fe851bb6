//! The bridge to an external pager process (`--pager-socket PATH`, `--pager-exec CMD`).
//!
//! RAM stays a pager VMO of the host process; instead of serving it, the VMM hands its port's
//! packets to another process over a Unix stream socket and executes the operations that
//! process asks for on its behalf, with the same kernel calls the built-in pager makes, so the
//! kernel's own checks decide each answer's `zx_status_t`. The wire format is
//! [`crate::pager_proto`]. Two threads: `ext-pager-fwd` waits on the port and forwards packets;
//! `ext-pager-ops` reads operations and answers each with a status. Page requests raised by
//! faults are written to the socket by the fault service's own thread (the port's inline
//! server), so a fault costs no handoff to `ext-pager-fwd`. A reply to an op that woke a vCPU
//! is queued before the wake-up and `ext-pager-ops` yields: the fault thread usually sends it
//! in front of the vCPU's next page request, one write and one wake-up of the pager for both.
//!
//! Page data travels through a data region: a memfd of [`REGION_SIZE`] bytes that the VMM
//! creates, seals against resizing and sends with the hello (`SCM_RIGHTS`). The pager writes
//! page bytes into it and a SUPPLY names the region offset; the bridge copies the bytes out of
//! a read-only mapping of the region into an aux VMO with one `memcpy` (the only copy; a
//! huge-page aux VMO for whole 2 MiB runs) and *moves* them into RAM
//! (`zx_pager_supply_pages`). The supplies take their aux ranges in turn and `ext-pager-aux`
//! ([`refill`]) commits them again in the background, so page allocation (zeroing) is off the
//! supply's path. The region may be reused as soon as the SUPPLY's reply arrived.
//!
//! Failure: the socket closing, a message the decoder refuses, an op from a pager that does
//! not read its replies for [`WRITE_TIMEOUT`], or (`--pager-exec`) the pager exiting stop the
//! VM with a message saying which; a pager that never answers a request is caught by
//! `--fault-timeout` like any other pager. When the VM stops, the op being executed (if any)
//! still sends its reply and the packets still queued (a DETACH's COMPLETE) are forwarded,
//! each wait bounded by [`REPLY_GRACE`], before the socket closes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvmpager::abi::packet::ZX_PKT_TYPE_PAGE_REQUEST;
use kvmpager::abi::status::{
    ZX_ERR_CANCELED, ZX_ERR_INVALID_ARGS, ZX_ERR_NOT_FOUND, ZX_ERR_NOT_SUPPORTED,
    ZX_ERR_OUT_OF_RANGE, ZX_OK,
};
use kvmpager::abi::vmo_op::ZX_VMO_OP_DECOMMIT;
use kvmpager::abi::vmo_options::KVMPAGER_VMO_HUGE;
use kvmpager::abi::{HUGE_PAGE_SIZE, Handle, PAGE_SIZE, Status};
use kvmpager::hostmem::FileView;
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use super::{HostPager, RAM_KEY};
use crate::kernel::Vmo;
use crate::pager_proto::{
    self as proto, HEADER, Msg, OP_DETACH, OP_DIRTY, OP_FAIL, OP_SUPPLY, OP_WRITEBACK_BEGIN,
    OP_WRITEBACK_END, Op, VmoInfo,
};
use crate::sync::{lock, wait_timeout};

mod refill;

/// Size of the data region (the largest SUPPLY).
pub const REGION_SIZE: u64 = 16 << 20;
/// A pager that leaves its replies unread this long is stopped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a message started, the rest of it must arrive within this.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// When the VM stops, the op being executed gets this long to send its reply (a DETACH that
/// makes the guest's next fault fatal still reports its status) before the socket closes.
pub const REPLY_GRACE: Duration = Duration::from_millis(500);
/// Environment variable naming the pager's socket fd (`--pager-exec`: always 0, stdin).
pub const ENV_FD: &str = "KVMPAGER_PAGER_FD";
/// Environment variable naming the RAM image (`run`: the `--image` file; `restore`: the
/// snapshot's `ram.img`), for pagers that serve one.
pub const ENV_IMAGE: &str = "KVMPAGER_IMAGE";

/// How to reach the external pager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalPager {
    /// Connect to a pager listening on this Unix socket.
    Socket(PathBuf),
    /// Run this shell command with the socket as its stdin.
    Exec(String),
}

/// A connected bridge (before its threads start).
pub struct Bridge {
    pager: HostPager,
    sock: UnixStream,
    /// The data region's view and aux VMOs (the region's fd went to the pager).
    supplier: RegionSupplier,
    child: Option<Child>,
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> super::Error + '_ {
    move |error| super::Error::External {
        what: what.to_string(),
        error,
    }
}

/// A new data region (memfd) of `size` bytes, sealed against resizing (`F_SEAL_SHRINK`,
/// `F_SEAL_GROW`, `F_SEAL_SEAL`): the bridge copies out of a mapping of it, and a pager that
/// could shrink it would turn those copies into `SIGBUS`.
pub fn memfd(size: u64) -> io::Result<File> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create reads the NUL-terminated name and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"kvmpager-pager-data".as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor nobody else owns.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.set_len(size)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own open descriptor with an integer argument; no memory involved.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

impl Bridge {
    /// Reaches the pager (`how`) and sends it the hello for `pager`'s RAM VMO; `image` is
    /// passed to an exec'd pager in [`ENV_IMAGE`].
    pub fn connect(
        pager: HostPager,
        how: &ExternalPager,
        image: Option<&Path>,
    ) -> super::Result<Bridge> {
        let (sock, child) = match how {
            ExternalPager::Socket(p) => {
                let s = UnixStream::connect(p).map_err(io_err(&format!(
                    "connecting to the pager socket {}",
                    p.display()
                )))?;
                (s, None)
            }
            ExternalPager::Exec(cmd) => {
                let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair"))?;
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(cmd).env(ENV_FD, "0").process_group(0);
                c.stdin(Stdio::from(OwnedFd::from(theirs)));
                if let Some(i) = image {
                    c.env(ENV_IMAGE, i);
                }
                let child = c
                    .spawn()
                    .map_err(io_err(&format!("starting the pager `{cmd}`")))?;
                (ours, Some(child))
            }
        };
        sock.set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(io_err("pager socket"))?;
        let region = memfd(REGION_SIZE).map_err(io_err("creating the data region"))?;
        let supplier = RegionSupplier::new(&region).map_err(io_err("mapping the data region"))?;
        let hello = Msg::Hello {
            version: proto::VERSION,
            region_size: REGION_SIZE,
            vmos: vec![VmoInfo {
                key: RAM_KEY,
                size: pager.ram.size(),
            }],
        };
        let mut child = child;
        if let Err(e) = sock.send_with_fd(&hello.encode()[..], region.as_raw_fd()) {
            let what = match child.as_mut().and_then(exit_status) {
                Some(st) => format!("sending the hello (the pager process exited: {st})"),
                None => "sending the hello to the pager".into(),
            };
            return Err(io_err(&what)(io::Error::from(e)));
        }
        Ok(Bridge {
            pager,
            sock,
            supplier,
            child,
        })
    }

    /// The process id of the pager started by `--pager-exec` (none for `--pager-socket`).
    pub fn child_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the two threads; `on_stop` is called (once at most) with why the pager can no
    /// longer serve RAM.
    pub fn start(
        self,
        on_stop: impl Fn(String) + Send + Sync + 'static,
    ) -> super::Result<[JoinHandle<()>; 2]> {
        let Bridge {
            pager,
            sock,
            supplier,
            child,
        } = self;
        let shared = Arc::new(Shared {
            pager,
            writer: Mutex::new(Out {
                sock: sock.try_clone().map_err(io_err("pager socket"))?,
                held: None,
            }),
            shut: sock.try_clone().map_err(io_err("pager socket"))?,
            closing: AtomicBool::new(false),
            in_flight: InFlight::default(),
            child: Mutex::new(child),
            on_stop: Box::new(on_stop),
        });
        let weak = Arc::downgrade(&shared);
        let server: kvmpager::port::InlineServer =
            Arc::new(move || weak.upgrade().is_some_and(|s| s.forward_inline()));
        let p = &shared.pager;
        p.process
            .port_set_inline_server(p.port, Some(server))
            .map_err(|s| io_err("setting up the port")(io::Error::other(format!("status {s}"))))?;
        let s = shared.clone();
        let fwd = std::thread::Builder::new()
            .name("ext-pager-fwd".into())
            .spawn(move || s.forward())
            .map_err(super::Error::Spawn)?;
        let s = shared;
        let mut ops = Ops {
            supplier,
            reader: MsgReader::new(),
            sock,
        };
        let opt = std::thread::Builder::new()
            .name("ext-pager-ops".into())
            .spawn(move || s.serve_ops(&mut ops))
            .map_err(super::Error::Spawn)?;
        Ok([fwd, opt])
    }
}

/// The socket's writing side. Messages go out whole and in order; a reply may be held back
/// for a moment (see `serve_ops`), and then leaves in front of the next message written, or
/// on `flush`.
struct Out {
    sock: UnixStream,
    /// An encoded REPLY not written yet.
    held: Option<Vec<u8>>,
}

impl Out {
    /// Writes the held reply (if any) and `bytes`, in one write.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.held.take() {
            None => self.sock.write_all(bytes),
            Some(mut both) => {
                both.extend_from_slice(bytes);
                self.sock.write_all(&both)
            }
        }
    }

    /// Writes the held reply, if any.
    fn flush(&mut self) -> io::Result<()> {
        self.held.take().map_or(Ok(()), |r| self.sock.write_all(&r))
    }
}

struct Shared {
    pager: HostPager,
    writer: Mutex<Out>,
    /// Shuts the socket down without waiting for a blocked writer.
    shut: UnixStream,
    closing: AtomicBool,
    in_flight: InFlight,
    child: Mutex<Option<Child>>,
    on_stop: Box<dyn Fn(String) + Send + Sync>,
}

struct Ops {
    supplier: RegionSupplier,
    reader: MsgReader,
    sock: UnixStream,
}

/// Moves page data from a data region into a pager VMO (SUPPLY's data path), keeping its aux
/// VMO between supplies.
pub struct RegionSupplier {
    /// A read-only view of the data region, copied from with `memcpy`.
    view: FileView,
    /// `[small, huge]` aux VMOs of [`REGION_SIZE`] bytes, made on first use.
    aux: [Option<Aux>; 2],
    /// Commits the aux VMOs again as the supplies go round them (none if its thread did not
    /// start).
    refill: Option<refill::Refill>,
}

impl Shared {
    fn send(&self, m: &Msg) -> io::Result<()> {
        lock(&self.writer).send(&m.encode())
    }

    /// Port packets to the socket until the host process is killed.
    fn forward(&self) {
        let p = &self.pager;
        kvmpager::port::set_spin_before_sleep(p.spin());
        loop {
            let packet = match p.process.port_wait(p.port, None) {
                Ok(pk) => pk,
                Err(ZX_ERR_CANCELED) => break,
                Err(s) => {
                    self.fail(format!("zx_port_wait failed: {s}"));
                    break;
                }
            };
            if packet.packet_type != ZX_PKT_TYPE_PAGE_REQUEST {
                continue;
            }
            if let Err(e) = self.send(&Msg::Packet(packet)) {
                self.fail(self.send_failed(&e));
                break;
            }
        }
        let _ = p.process.port_set_inline_server(p.port, None);
        self.close();
    }

    /// Why sending a page request failed.
    fn send_failed(&self, e: &io::Error) -> String {
        match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => self.gone(),
            _ => format!("cannot send a page request to the pager: {e}"),
        }
    }

    /// The port's inline server: the fault service's thread sends the page requests its
    /// dispatch queued straight to the pager (no handoff to `ext-pager-fwd`), unless a reply
    /// is being written (then the forwarder is woken instead).
    fn forward_inline(&self) -> bool {
        if self.closing.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(mut w) = self.writer.try_lock() else {
            return false;
        };
        let p = &self.pager;
        while let Ok(packet) = p.process.port_wait(p.port, Some(Instant::now())) {
            if packet.packet_type != ZX_PKT_TYPE_PAGE_REQUEST {
                continue;
            }
            if let Err(e) = w.send(&Msg::Packet(packet).encode()) {
                drop(w);
                self.fail(self.send_failed(&e));
                break;
            }
        }
        true
    }

    /// The VM is going away: close the socket and stop an exec'd pager.
    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.shut.shutdown(Shutdown::Read);
        if self.in_flight.close(REPLY_GRACE) {
            self.drain();
        }
        let _ = self.shut.shutdown(Shutdown::Both);
        if let Some(mut c) = lock(&self.child).take() {
            // The pager runs in a process group of its own (the shell and what it started);
            // while its leader is not reaped, the group id cannot have been reused.
            let leader_alive = matches!(c.try_wait(), Ok(None));
            if let (true, Ok(pid)) = (leader_alive, i32::try_from(c.id())) {
                // SAFETY: kill(2) with a negative pid signals the group we created; no memory.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = c.wait();
        }
    }

    /// Forwards the packets still queued once the host process is killed: a DETACH executed
    /// as the VM stopped queued its COMPLETE after the port wait gave up. Writes wait at most
    /// [`REPLY_GRACE`].
    fn drain(&self) {
        let p = &self.pager;
        let _ = self.shut.set_write_timeout(Some(REPLY_GRACE));
        while let Ok(packet) = p.process.port_wait(p.port, Some(Instant::now())) {
            if packet.packet_type == ZX_PKT_TYPE_PAGE_REQUEST
                && self.send(&Msg::Packet(packet)).is_err()
            {
                break;
            }
        }
    }

    /// Reports why the pager cannot serve (unless the VM is already going away).
    fn fail(&self, why: String) {
        if !self.closing.swap(true, Ordering::SeqCst) {
            (self.on_stop)(format!("external pager: {why}"));
        }
    }

    /// Why the pager went away: its exit status if it was exec'd and exited.
    fn gone(&self) -> String {
        match lock(&self.child).as_mut().and_then(exit_status) {
            Some(st) => format!("the pager process exited ({st}) and closed its socket"),
            None => "the pager closed its socket".into(),
        }
    }

    fn serve_ops(&self, ops: &mut Ops) {
        loop {
            let msg = match ops.reader.next(&mut ops.sock) {
                Ok(Some(m)) => m,
                Ok(None) => return self.fail(self.gone()),
                Err(e) => return self.fail(e),
            };
            let Msg::Op(op) = msg else {
                return self.fail(format!(
                    "the pager sent a message of kind {} (only ops, kind {}, go to the VMM)",
                    msg.kind(),
                    proto::KIND_OP
                ));
            };
            if !self.in_flight.begin() {
                return;
            }
            let (status, wakes) =
                kvmpager::fault::with_deferred_faulter_wakes(|| self.execute(ops, &op));
            let reply = Msg::Reply { id: op.id, status }.encode();
            let sent = if wakes.is_empty() {
                lock(&self.writer).send(&reply)
            } else {
                // Queued before the vCPU wakes; on a shared CPU the woken vCPU runs at once,
                // and the yield lets the fault thread take its next fault first and send the
                // reply in front of that packet (one wake-up of the pager for both).
                lock(&self.writer).held = Some(reply);
                wakes.wake();
                // SAFETY: sched_yield has no arguments.
                unsafe { libc::sched_yield() };
                lock(&self.writer).flush()
            };
            self.in_flight.end();
            if let Err(e) = sent {
                return self.fail(format!(
                    "cannot send a reply to the pager (is it reading its socket?): {e}"
                ));
            }
        }
    }

    /// Executes `op` on the pager's behalf; returns its status.
    fn execute(&self, ops: &mut Ops, op: &Op) -> Status {
        let p = &self.pager;
        if op.key != RAM_KEY {
            return ZX_ERR_NOT_FOUND;
        }
        let r = match op.op {
            OP_SUPPLY => return self.supply(ops, op),
            OP_FAIL | OP_DIRTY | OP_WRITEBACK_BEGIN | OP_WRITEBACK_END => p
                .process
                .pager_op_range(p.pager, op.op, p.vmo, op.offset, op.length, op.data),
            OP_DETACH if op.offset == 0 && op.length == 0 && op.data == 0 => {
                p.process.pager_detach_vmo(p.pager, p.vmo)
            }
            OP_DETACH => Err(ZX_ERR_INVALID_ARGS),
            _ => Err(ZX_ERR_NOT_SUPPORTED),
        };
        r.map_or_else(|s| s, |_| ZX_OK)
    }

    /// SUPPLY: see [`RegionSupplier::supply`].
    fn supply(&self, ops: &mut Ops, op: &Op) -> Status {
        ops.supplier
            .supply(&self.pager, op.offset, op.length, op.data)
    }
}

impl RegionSupplier {
    /// A supplier from `region` (a [`memfd`] of [`REGION_SIZE`] bytes: sealed, so the
    /// pager cannot shrink it under the view).
    pub fn new(region: &File) -> io::Result<Self> {
        let view = FileView::map(region, REGION_SIZE).map_err(io::Error::other)?;
        Ok(RegionSupplier {
            view,
            aux: [None, None],
            refill: refill::Refill::start(),
        })
    }

    /// Supplies `region[data, data + length)` into `pager`'s RAM VMO at `offset`: one `memcpy`
    /// from the data region into the aux VMO, then a move into RAM. Returns the status the
    /// pager gets.
    pub fn supply(&mut self, pager: &HostPager, offset: u64, length: u64, data: u64) -> Status {
        let p = pager;
        let aligned = [offset, length, data]
            .iter()
            .all(|x| x.is_multiple_of(PAGE_SIZE));
        if !aligned || length == 0 {
            return ZX_ERR_INVALID_ARGS;
        }
        if data.checked_add(length).is_none_or(|e| e > REGION_SIZE) {
            return ZX_ERR_OUT_OF_RANGE;
        }
        let huge = offset.is_multiple_of(HUGE_PAGE_SIZE) && length.is_multiple_of(HUGE_PAGE_SIZE);
        let aux = match self.aux_vmo(pager, huge) {
            Ok(a) => a,
            Err(s) => return s,
        };
        let (at, refill) = aux.take(length);
        let (handle, vmo) = (aux.handle, aux.vmo.clone());
        let r = vmo.read_view(at, length, &self.view, data).and_then(|_| {
            p.process
                .pager_supply_pages(p.pager, p.vmo, offset, length, handle, at)
        });
        if r.is_err() {
            // SUPPLY leaves its aux range empty; a failed read may not have: empty it.
            let _ = p
                .process
                .vmo_op_range(handle, ZX_VMO_OP_DECOMMIT, at, length);
        }
        if let (true, Some(r)) = (refill, &self.refill) {
            r.request(&vmo);
        }
        r.map_or_else(|s| s, |_| ZX_OK)
    }

    /// Commits the whole huge (`huge`) or small aux VMO now, as the refill thread does in the
    /// background (bench case 9 measures the data path this way, without page allocation).
    pub fn commit_ahead(&mut self, pager: &HostPager, huge: bool) -> Result<(), Status> {
        let aux = self.aux_vmo(pager, huge)?;
        aux.vmo.commit(0, REGION_SIZE, &AtomicBool::new(false))
    }

    /// The aux VMO (huge pages for whole 2 MiB runs, so they are read into and moved as huge
    /// pages where the host has them).
    fn aux_vmo(&mut self, pager: &HostPager, huge: bool) -> Result<&mut Aux, Status> {
        let slot = &mut self.aux[usize::from(huge)];
        if let Some(a) = slot {
            return Ok(a);
        }
        let options = if huge { KVMPAGER_VMO_HUGE } else { 0 };
        let handle = pager.process.vmo_create(REGION_SIZE, options)?;
        let vmo = pager.process.vmo_object(handle)?;
        Ok(slot.insert(Aux {
            handle,
            vmo,
            cursor: 0,
        }))
    }
}

/// An aux VMO of [`REGION_SIZE`] bytes and where the next supply's range starts.
struct Aux {
    handle: Handle,
    vmo: Arc<Vmo>,
    cursor: u64,
}

impl Aux {
    /// The aux offset a supply of `len` bytes (at most [`REGION_SIZE`]) reads into: the next
    /// `len` bytes from the cursor, or the start once they would pass the end, so the ranges
    /// the refill committed since are used before the ones just emptied. Also whether the
    /// refill should run now (the supplies entered a new quarter of the VMO).
    fn take(&mut self, len: u64) -> (u64, bool) {
        let at = if self.cursor + len > REGION_SIZE {
            0
        } else {
            self.cursor
        };
        let quarter = REGION_SIZE / 4;
        let refill = at == 0 || (at + len - 1) / quarter != (at.max(1) - 1) / quarter;
        self.cursor = at + len;
        (at, refill)
    }
}

/// Whether an op is being executed, and whether the bridge is closing: closing waits (a
/// little) for the op in flight to be answered and refuses the ops read after it.
#[derive(Default)]
struct InFlight {
    /// (closing, executing)
    state: Mutex<(bool, bool)>,
    done: Condvar,
}

impl InFlight {
    /// An op is about to be executed; false once closing (it is dropped, unanswered).
    fn begin(&self) -> bool {
        let mut s = lock(&self.state);
        s.1 = !s.0;
        s.1
    }

    /// Its reply was sent (or could not be).
    fn end(&self) {
        let mut s = lock(&self.state);
        s.1 = false;
        // Only a closing bridge waits (`close` sets closing under this lock before it waits):
        // no wake-up system call per op otherwise.
        if s.0 {
            self.done.notify_all();
        }
    }

    /// Refuses further ops and waits up to `grace` for the one executing; returns whether
    /// none is executing now.
    fn close(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        let mut s = lock(&self.state);
        s.0 = true;
        while s.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = wait_timeout(&self.done, s, deadline - now);
        }
        true
    }
}

/// The exit status of an exec'd pager that exited (waiting up to 200 ms for it).
fn exit_status(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..20 {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Reads messages from the pager's socket through a buffer: one `read` usually brings a whole
/// message or several, and the socket's read timeout is only changed when a message has to be
/// waited for part-way ([`MESSAGE_TIMEOUT`]).
struct MsgReader {
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[at..end]`.
    at: usize,
    end: usize,
    /// Whether the socket's read timeout is set to [`MESSAGE_TIMEOUT`] now.
    timed: bool,
}

impl MsgReader {
    fn new() -> Self {
        MsgReader {
            buf: vec![0; 4 * proto::MAX_MESSAGE],
            at: 0,
            end: 0,
            timed: true,
        }
    }

    /// The next message: `Ok(None)` at a clean end of stream, `Err` naming the problem. Once a
    /// message's first byte arrived, the rest must follow within [`MESSAGE_TIMEOUT`].
    fn next(&mut self, sock: &mut UnixStream) -> Result<Option<Msg>, String> {
        if self.at == self.end {
            self.set_timed(sock, false);
            proto::wait_readable(sock);
            match self.fill(sock) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(format!("reading the socket: {e}")),
            }
        }
        self.want(sock, HEADER)?;
        let size = proto::message_size(&self.buf[self.at..self.at + HEADER])
            .map_err(|e| format!("bad message header: {e}"))?;
        self.want(sock, size)?;
        let msg = Msg::decode(&self.buf[self.at..self.at + size]);
        self.at += size;
        msg.map(Some).map_err(|e| format!("bad message: {e}"))
    }

    /// Makes sure `n` bytes (at most `MAX_MESSAGE`) of the current message are buffered.
    fn want(&mut self, sock: &mut UnixStream, n: usize) -> Result<(), String> {
        while self.end - self.at < n {
            self.set_timed(sock, true);
            match self.fill(sock) {
                Ok(0) => {
                    return Err(format!(
                        "truncated message: the socket closed after {} bytes",
                        self.end - self.at
                    ));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "truncated message: the rest of a {n}-byte message did not arrive within {:?}",
                        MESSAGE_TIMEOUT
                    ));
                }
                Err(e) => return Err(format!("reading the socket: {e}")),
            }
        }
        Ok(())
    }

    /// Reads what the socket has after the buffered bytes (moved to the front first).
    fn fill(&mut self, sock: &mut UnixStream) -> io::Result<usize> {
        if self.at > 0 {
            self.buf.copy_within(self.at..self.end, 0);
            self.end -= self.at;
            self.at = 0;
        }
        loop {
            match sock.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn set_timed(&mut self, sock: &UnixStream, timed: bool) {
        if self.timed != timed {
            let _ = sock.set_read_timeout(timed.then_some(MESSAGE_TIMEOUT));
            self.timed = timed;
        }
    }
}
