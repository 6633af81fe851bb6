//! Shared fixtures for the pager-kernel tests: a process with a pager, a port and a pager VMO,
//! and aux VMOs filled with recognisable bytes.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvmpager::Process;
use kvmpager::abi::status::*;
use kvmpager::abi::{Handle, PAGE_SIZE, PortPacket, Status};

/// Page size as usize.
pub const PS: usize = PAGE_SIZE as usize;

/// A process with one pager, one port and one pager VMO.
pub struct Fixture {
    /// The process.
    pub p: Arc<Process>,
    /// The pager.
    pub pager: Handle,
    /// The port its VMO reports to.
    pub port: Handle,
    /// The pager VMO.
    pub vmo: Handle,
    /// The VMO's key.
    pub key: u64,
}

impl Fixture {
    /// A fixture whose pager VMO has `pages` pages.
    pub fn new(pages: u64) -> Fixture {
        let p = Process::new();
        let pager = p.pager_create(0).expect("pager_create");
        let port = p.port_create(0).expect("port_create");
        let key = 0x5ee0_0000 + pages;
        let vmo = p
            .pager_create_vmo(pager, 0, port, key, pages * PAGE_SIZE)
            .expect("pager_create_vmo");
        Fixture {
            p,
            pager,
            port,
            vmo,
            key,
        }
    }

    /// A committed aux VMO of `pages` pages, page i filled with `pattern(seed, i)`.
    pub fn aux(&self, pages: u64, seed: u8) -> Handle {
        aux(&self.p, pages, seed)
    }

    /// Supplies `[page, page + n)` from a fresh aux VMO filled with `seed`.
    pub fn supply(&self, page: u64, n: u64, seed: u8) -> Result<(), Status> {
        let aux = self.aux(n, seed);
        let r = self.p.pager_supply_pages(
            self.pager,
            self.vmo,
            page * PAGE_SIZE,
            n * PAGE_SIZE,
            aux,
            0,
        );
        self.p.handle_close(aux).unwrap();
        r
    }

    /// The next packet, failing the test after 5 s.
    pub fn packet(&self) -> PortPacket {
        self.p
            .port_wait(self.port, Some(Instant::now() + Duration::from_secs(5)))
            .expect("expected a packet within 5 s")
    }

    /// Asserts the port stays empty for 100 ms.
    pub fn no_packet(&self) {
        let r = self
            .p
            .port_wait(self.port, Some(Instant::now() + Duration::from_millis(100)));
        assert_eq!(r.err(), Some(ZX_ERR_TIMED_OUT), "unexpected packet: {r:?}");
    }

    /// Committed bytes of a VMO.
    pub fn committed(&self, vmo: Handle) -> u64 {
        self.p.vmo_get_info(vmo).unwrap().committed_bytes
    }

    /// Bytes of the pager VMO's page `page`, read without raising requests.
    pub fn peek(&self, page: u64) -> Vec<u8> {
        let mut buf = vec![0; PS];
        self.p
            .vmo_object(self.vmo)
            .unwrap()
            .peek(page * PAGE_SIZE, &mut buf)
            .unwrap();
        buf
    }
}

/// The bytes of page `page` of an aux filled with `seed`.
pub fn pattern(seed: u8, page: u64) -> Vec<u8> {
    (0..PS)
        .map(|i| seed ^ (page as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7))
        .collect()
}

/// A committed anonymous VMO of `pages` pages filled with `pattern(seed, i)`.
pub fn aux(p: &Process, pages: u64, seed: u8) -> Handle {
    let h = p.vmo_create(pages * PAGE_SIZE, 0).expect("vmo_create");
    for i in 0..pages {
        p.vmo_write(h, &pattern(seed, i), i * PAGE_SIZE).unwrap();
    }
    h
}
