//! The external pager wire protocol (`kvmpager run|restore --pager-socket|--pager-exec`),
//! defined once: message kinds, their fixed little-endian layouts, an encoder and a decoder
//! that never panics on any input.
//!
//! Every message is an 8-byte header (`u32` total size including the header, `u16` kind,
//! `u16` zero) and a fixed-size body; nothing is larger than [`MAX_MESSAGE`]. The VMM sends
//! [`Msg::Hello`] once (with the data region's memfd attached by `SCM_RIGHTS`), then one
//! [`Msg::Packet`] per port packet of the RAM VMO; the pager sends [`Msg::Op`]s, each answered
//! by one [`Msg::Reply`] carrying the same `id` and a `zx_status_t`. [`client`] is a typed
//! client for pagers written in Rust.

use kvmpager::abi::PortPacket;

pub mod client;

/// The protocol version this VMM speaks (in [`Msg::Hello`]).
pub const VERSION: u32 = 1;
/// Size of the header.
pub const HEADER: usize = 8;
/// No message is larger (a larger size in a header is a protocol error).
pub const MAX_MESSAGE: usize = 4096;
/// Most VMOs one hello can name.
pub const MAX_VMOS: usize = (MAX_MESSAGE - HEADER - 16) / 16;

/// Kind of [`Msg::Hello`] (VMM to pager).
pub const KIND_HELLO: u16 = 1;
/// Kind of [`Msg::Packet`] (VMM to pager).
pub const KIND_PACKET: u16 = 2;
/// Kind of [`Msg::Op`] (pager to VMM).
pub const KIND_OP: u16 = 3;
/// Kind of [`Msg::Reply`] (VMM to pager).
pub const KIND_REPLY: u16 = 4;

/// `Op::op`: supply `[offset, offset + length)` from the data region at `data`.
pub const OP_SUPPLY: u32 = kvmpager::abi::pager_op::ZX_PAGER_SUPPLY_PAGES;
/// `Op::op`: `zx_pager_detach_vmo` (offset, length and data must be 0).
pub const OP_DETACH: u32 = 0x11;
pub use kvmpager::abi::pager_op::{
    ZX_PAGER_OP_DIRTY as OP_DIRTY, ZX_PAGER_OP_FAIL as OP_FAIL,
    ZX_PAGER_OP_WRITEBACK_BEGIN as OP_WRITEBACK_BEGIN,
    ZX_PAGER_OP_WRITEBACK_END as OP_WRITEBACK_END,
};

/// One pager VMO as the hello names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmoInfo {
    /// The port key of its packets.
    pub key: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// An operation the pager asks for (`zx_pager_op_range`'s arguments, plus SUPPLY and DETACH).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Op {
    /// Chosen by the pager; echoed in the reply.
    pub id: u64,
    /// Key of the VMO (from the hello).
    pub key: u64,
    /// `OP_*`.
    pub op: u32,
    /// Byte offset in the VMO (page aligned).
    pub offset: u64,
    /// Byte length (page aligned).
    pub length: u64,
    /// SUPPLY: offset in the data region; FAIL: the status (as i64); WRITEBACK_BEGIN: options.
    pub data: u64,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// VMM to pager, first: version, data region size, the VMOs.
    Hello {
        /// [`VERSION`].
        version: u32,
        /// Size of the data region (the attached memfd).
        region_size: u64,
        /// The pager VMOs served.
        vmos: Vec<VmoInfo>,
    },
    /// VMM to pager: a port packet of one of the VMOs (48 bytes, `zx_port_packet_t`).
    Packet(PortPacket),
    /// Pager to VMM.
    Op(Op),
    /// VMM to pager: the answer to the op with this `id`.
    Reply {
        /// The op's id.
        id: u64,
        /// `zx_status_t`.
        status: i32,
    },
}

/// Why bytes are not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or the header's size.
    #[error("truncated message ({got} of {want} bytes)")]
    Truncated {
        /// Bytes there.
        got: usize,
        /// Bytes needed.
        want: usize,
    },
    /// The size is below the header or above [`MAX_MESSAGE`].
    #[error("message size {0} out of range (8..={MAX_MESSAGE})")]
    BadSize(u32),
    /// Unknown kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u16),
    /// The size does not match the kind's layout, or a reserved field is not zero.
    #[error("malformed message of kind {kind} ({size} bytes)")]
    Malformed {
        /// The kind.
        kind: u16,
        /// Its size.
        size: u32,
    },
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Sleeps until `sock` has something to read (or is closed, or in error). Both ends call this
/// before a `read` that would block: a thread asleep in `read` on a Unix socket is also woken
/// each time the peer *consumes* bytes this socket sent (the kernel's write-space wake-up does
/// not look at what the sleeper waits for), which on this protocol is twice per fault for
/// nothing; `poll` for `POLLIN` filters those wake-ups out.
pub fn wait_readable(sock: &std::os::unix::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` that outlives the call; the count says one.
    while unsafe { libc::poll(&mut fds, 1, -1) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
}

/// Reads a header: the total size of the message it starts (checked against the limits).
pub fn message_size(header: &[u8]) -> Result<usize, DecodeError> {
    if header.len() < HEADER {
        return Err(DecodeError::Truncated {
            got: header.len(),
            want: HEADER,
        });
    }
    let size = u32_at(header, 0);
    if (size as usize) < HEADER || size as usize > MAX_MESSAGE {
        return Err(DecodeError::BadSize(size));
    }
    Ok(size as usize)
}

impl Msg {
    /// The message's kind.
    pub fn kind(&self) -> u16 {
        match self {
            Msg::Hello { .. } => KIND_HELLO,
            Msg::Packet(_) => KIND_PACKET,
            Msg::Op(_) => KIND_OP,
            Msg::Reply { .. } => KIND_REPLY,
        }
    }

    /// The message's bytes, header included.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&[0; HEADER]);
        match self {
            Msg::Hello {
                version,
                region_size,
                vmos,
            } => {
                b.extend_from_slice(&version.to_le_bytes());
                b.extend_from_slice(&(vmos.len() as u32).to_le_bytes());
                b.extend_from_slice(&region_size.to_le_bytes());
                for v in vmos {
                    b.extend_from_slice(&v.key.to_le_bytes());
                    b.extend_from_slice(&v.size.to_le_bytes());
                }
            }
            Msg::Packet(p) => b.extend_from_slice(&p.to_bytes()),
            Msg::Op(o) => {
                for x in [o.id, o.key, u64::from(o.op), o.offset, o.length, o.data] {
                    b.extend_from_slice(&x.to_le_bytes());
                }
            }
            Msg::Reply { id, status } => {
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(&status.to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
            }
        }
        let size = b.len() as u32;
        b[0..4].copy_from_slice(&size.to_le_bytes());
        b[4..6].copy_from_slice(&self.kind().to_le_bytes());
        b
    }

    /// Decodes one whole message (`b` is exactly its bytes). Never panics.
    pub fn decode(b: &[u8]) -> Result<Msg, DecodeError> {
        let size = message_size(b)?;
        if b.len() < size {
            return Err(DecodeError::Truncated {
                got: b.len(),
                want: size,
            });
        }
        let b = &b[..size];
        let kind = u16_at(b, 4);
        let bad = DecodeError::Malformed {
            kind,
            size: size as u32,
        };
        if u16_at(b, 6) != 0 {
            return Err(bad);
        }
        let body = &b[HEADER..];
        match kind {
            KIND_HELLO => Self::decode_hello(body).ok_or(bad),
            KIND_PACKET => {
                let arr: &[u8; 48] = body.try_into().map_err(|_| bad)?;
                Ok(Msg::Packet(PortPacket::from_bytes(arr)))
            }
            KIND_OP if body.len() == 48 => {
                let op = u64_at(body, 16);
                let op = u32::try_from(op).map_err(|_| bad)?;
                Ok(Msg::Op(Op {
                    id: u64_at(body, 0),
                    key: u64_at(body, 8),
                    op,
                    offset: u64_at(body, 24),
                    length: u64_at(body, 32),
                    data: u64_at(body, 40),
                }))
            }
            KIND_REPLY if body.len() == 16 && u32_at(body, 12) == 0 => Ok(Msg::Reply {
                id: u64_at(body, 0),
                status: u32_at(body, 8) as i32,
            }),
            KIND_OP | KIND_REPLY => Err(bad),
            k => Err(DecodeError::UnknownKind(k)),
        }
    }

    fn decode_hello(body: &[u8]) -> Option<Msg> {
        let count = u32_at(body, 4) as usize;
        if body.len() < 16 || count > MAX_VMOS || body.len() != 16 + count * 16 {
            return None;
        }
        let vmos = (0..count)
            .map(|i| VmoInfo {
                key: u64_at(body, 16 + i * 16),
                size: u64_at(body, 24 + i * 16),
            })
            .collect();
        Some(Msg::Hello {
            version: u32_at(body, 0),
            region_size: u64_at(body, 8),
            vmos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            Msg::Hello {
                version: VERSION,
                region_size: 16 << 20,
                vmos: vec![VmoInfo {
                    key: 7,
                    size: 1 << 30,
                }],
            },
            Msg::Packet(PortPacket::default()),
            Msg::Op(Op {
                id: 1,
                key: 2,
                op: OP_SUPPLY,
                offset: 4096,
                length: 8192,
                data: 0,
            }),
            Msg::Reply { id: 9, status: -10 },
        ];
        let sizes = [40, 56, 56, 24];
        for (m, size) in msgs.iter().zip(sizes) {
            let b = m.encode();
            assert_eq!(b.len(), size);
            assert_eq!(Msg::decode(&b).as_ref(), Ok(m));
            for cut in 0..b.len() {
                assert!(Msg::decode(&b[..cut]).is_err());
            }
        }
    }

    #[test]
    fn oversized_and_unknown_are_errors() {
        let mut b = Msg::Reply { id: 1, status: 0 }.encode();
        b[0..4].copy_from_slice(&(MAX_MESSAGE as u32 + 1).to_le_bytes());
        assert!(matches!(Msg::decode(&b), Err(DecodeError::BadSize(_))));
        let mut b = Msg::Reply { id: 1, status: 0 }.encode();
        b[4] = 99;
        assert_eq!(Msg::decode(&b), Err(DecodeError::UnknownKind(99)));
    }

    #[test]
    fn a_hello_names_several_vmos_in_order_up_to_max_vmos() {
        for n in [1, 2, 3, MAX_VMOS] {
            let vmos: Vec<VmoInfo> = (0..n as u64)
                .map(|i| VmoInfo {
                    key: 0x100 + i,
                    size: (i + 1) << 21,
                })
                .collect();
            let m = Msg::Hello {
                version: VERSION,
                region_size: 16 << 20,
                vmos: vmos.clone(),
            };
            let b = m.encode();
            assert_eq!(b.len(), 24 + 16 * n);
            assert!(b.len() <= MAX_MESSAGE);
            let Ok(Msg::Hello { vmos: got, .. }) = Msg::decode(&b) else {
                panic!("hello with {n} VMOs does not decode");
            };
            assert_eq!(got, vmos);
        }
        // One more VMO than fits: the message is over MAX_MESSAGE and refused.
        let too_many = Msg::Hello {
            version: VERSION,
            region_size: 0,
            vmos: vec![VmoInfo { key: 1, size: 1 }; MAX_VMOS + 1],
        };
        let b = too_many.encode();
        assert!(matches!(Msg::decode(&b), Err(DecodeError::BadSize(_))));
        // A count that disagrees with the size is malformed.
        let mut b = Msg::Hello {
            version: VERSION,
            region_size: 0,
            vmos: vec![VmoInfo { key: 1, size: 1 }; 3],
        }
        .encode();
        b[12] = 2;
        assert!(matches!(
            Msg::decode(&b),
            Err(DecodeError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = Msg::decode(&b) {
                let size = message_size(&b).unwrap();
                prop_assert_eq!(m.encode(), b[..size].to_vec());
            }
        }
    }
}
