//! A typed client of the external pager protocol, for pagers written in Rust: receive the
//! hello (and the data region), take page requests, answer with SUPPLY/FAIL/… and read each
//! op's status.
//!
//! ```no_run
//! use kvmpager_vmm::pager_proto::client::Client;
//! let mut c = Client::from_env()?; // the socket `--pager-exec` gives (stdin)
//! while let Some(p) = c.next_packet()? {
//!     let page = vec![0u8; p.page_request.length as usize];
//!     c.supply(p.key, p.page_request.offset, &page)?;
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;

use kvmpager::abi::{PortPacket, Status};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use super::{HEADER, Msg, OP_FAIL, OP_SUPPLY, Op, VmoInfo, message_size};

/// A connected pager.
pub struct Client {
    sock: UnixStream,
    region: File,
    region_size: u64,
    /// The protocol version the VMM speaks.
    pub version: u32,
    /// The VMOs served.
    pub vmos: Vec<VmoInfo>,
    packets: VecDeque<PortPacket>,
    next_id: u64,
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Client {
    /// The data region the hello carried (a memfd of the VMM's, sealed against resizing).
    pub fn region(&self) -> &File {
        &self.region
    }

    /// The socket `--pager-exec` started this process with (fd in `KVMPAGER_PAGER_FD`).
    pub fn from_env() -> io::Result<Client> {
        let fd: i32 = std::env::var(crate::host_pager::external::ENV_FD)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| invalid("KVMPAGER_PAGER_FD is not set"))?;
        // SAFETY: the VMM handed this process the fd for exactly this use; nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::new(UnixStream::from(owned))
    }

    /// Takes a connected socket and reads the hello.
    pub fn new(sock: UnixStream) -> io::Result<Client> {
        let mut head = [0u8; HEADER];
        let (n, fd) = sock.recv_with_fd(&mut head[..]).map_err(io::Error::from)?;
        let region = fd.ok_or_else(|| invalid("the hello carried no data region"))?;
        let mut sock = sock;
        sock.read_exact(&mut head[n..])?;
        let size = message_size(&head).map_err(invalid)?;
        let mut buf = head.to_vec();
        buf.resize(size, 0);
        sock.read_exact(&mut buf[HEADER..])?;
        let Msg::Hello {
            version,
            region_size,
            vmos,
        } = Msg::decode(&buf).map_err(invalid)?
        else {
            return Err(invalid("the first message is not a hello"));
        };
        Ok(Client {
            sock,
            region,
            region_size,
            version,
            vmos,
            packets: VecDeque::new(),
            next_id: 1,
        })
    }

    fn read_msg(&mut self) -> io::Result<Option<Msg>> {
        let mut buf = vec![0u8; HEADER];
        super::wait_readable(&self.sock);
        match self.sock.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let size = message_size(&buf).map_err(invalid)?;
        buf.resize(size, 0);
        self.sock.read_exact(&mut buf[HEADER..])?;
        Msg::decode(&buf).map(Some).map_err(invalid)
    }

    /// The next page request (`None` when the VM went away).
    pub fn next_packet(&mut self) -> io::Result<Option<PortPacket>> {
        if let Some(p) = self.packets.pop_front() {
            return Ok(Some(p));
        }
        match self.read_msg()? {
            Some(Msg::Packet(p)) => Ok(Some(p)),
            Some(m) => Err(invalid(format!("unexpected message kind {}", m.kind()))),
            None => Ok(None),
        }
    }

    /// Sends raw bytes (to test how the VMM treats malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// Sends `op` (its id is set here) and waits for its status; packets that arrive
    /// meanwhile are queued for [`Client::next_packet`].
    pub fn op(&mut self, op: Op) -> io::Result<Status> {
        Ok(self.ops(&[op])?[0])
    }

    /// Sends `ops` in one write (their ids are set here), then waits for their statuses, in
    /// order: the VMM executes them back to back, with no round trip in between. Packets that
    /// arrive meanwhile are queued for [`Client::next_packet`].
    pub fn ops(&mut self, ops: &[Op]) -> io::Result<Vec<Status>> {
        let first = self.next_id;
        let mut bytes = Vec::new();
        for op in ops {
            bytes.extend(
                Msg::Op(Op {
                    id: self.next_id,
                    ..*op
                })
                .encode(),
            );
            self.next_id += 1;
        }
        self.sock.write_all(&bytes)?;
        let mut statuses = Vec::with_capacity(ops.len());
        while statuses.len() < ops.len() {
            match self.read_msg()? {
                Some(Msg::Packet(p)) => self.packets.push_back(p),
                Some(Msg::Reply { id, status }) if id == first + statuses.len() as u64 => {
                    statuses.push(status)
                }
                Some(m) => return Err(invalid(format!("unexpected message kind {}", m.kind()))),
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
        Ok(statuses)
    }

    /// Supplies `data` (page-aligned length) at `offset` of VMO `key`, through the data
    /// region in pieces of at most its size; returns the first non-OK status, or OK.
    pub fn supply(&mut self, key: u64, offset: u64, data: &[u8]) -> io::Result<Status> {
        for (i, piece) in data.chunks(self.region_size as usize).enumerate() {
            self.region.write_all_at(piece, 0)?;
            let at = offset + (i as u64) * self.region_size;
            let s = self.op(Op {
                key,
                op: OP_SUPPLY,
                offset: at,
                length: piece.len() as u64,
                ..Op::default()
            })?;
            if s != 0 {
                return Ok(s);
            }
        }
        Ok(0)
    }

    /// Fails `[offset, offset + length)` of VMO `key` with `status`.
    pub fn fail(
        &mut self,
        key: u64,
        offset: u64,
        length: u64,
        status: Status,
    ) -> io::Result<Status> {
        self.op(Op {
            key,
            op: OP_FAIL,
            offset,
            length,
            data: i64::from(status) as u64,
            ..Op::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use kvmpager::abi::PageRequest;
    use kvmpager::abi::packet::{ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};

    /// Reads one whole message from the VMM's end.
    fn read(s: &mut UnixStream) -> Msg {
        let mut b = vec![0u8; HEADER];
        s.read_exact(&mut b).unwrap();
        b.resize(message_size(&b).unwrap(), 0);
        s.read_exact(&mut b[HEADER..]).unwrap();
        Msg::decode(&b).unwrap()
    }

    #[test]
    fn the_client_takes_a_hello_with_three_vmos_and_supplies_any_of_them() {
        let (mut vmm, pager) = UnixStream::pair().unwrap();
        let path = std::env::temp_dir().join(format!("kvmpager-client-{}", std::process::id()));
        let region = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        region.set_len(1 << 20).unwrap();
        let vmos: Vec<VmoInfo> = [(0x10, 4 << 20), (0x20, 8 << 20), (0x30, 2 << 20)]
            .map(|(key, size)| VmoInfo { key, size })
            .to_vec();
        let hello = Msg::Hello {
            version: 1,
            region_size: 1 << 20,
            vmos: vmos.clone(),
        };
        vmm.send_with_fd(&hello.encode()[..], region.as_raw_fd())
            .unwrap();
        let packet = PortPacket {
            key: 0x30,
            packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
            status: 0,
            page_request: PageRequest {
                command: ZX_PAGER_VMO_READ,
                offset: 8192,
                length: 4096,
                ..PageRequest::default()
            },
        };
        vmm.write_all(&Msg::Packet(packet).encode()).unwrap();
        let mut c = Client::new(pager).unwrap();
        assert_eq!((c.version, &c.vmos), (1, &vmos));
        assert_eq!(c.next_packet().unwrap(), Some(packet));
        let vmm_side = std::thread::spawn(move || {
            let Msg::Op(op) = read(&mut vmm) else {
                panic!("not an op")
            };
            let mut page = vec![0u8; 4096];
            region.read_exact_at(&mut page, op.data).unwrap();
            vmm.write_all(
                &Msg::Reply {
                    id: op.id,
                    status: -14,
                }
                .encode(),
            )
            .unwrap();
            (op, page)
        });
        assert_eq!(c.supply(0x30, 8192, &[7u8; 4096]).unwrap(), -14);
        let (op, page) = vmm_side.join().unwrap();
        assert_eq!(
            (op.key, op.op, op.offset, op.length),
            (0x30, OP_SUPPLY, 8192, 4096)
        );
        assert!(page.iter().all(|&b| b == 7));
    }
}
