//! The built-in host pager that serves pager-backed guest RAM.
//!
//! Guest RAM with lazy RAM on is a pager VMO of the VM's *host* process (the guest can never
//! name it). A host thread waits on the pager's port; for each READ request it asks a
//! [`PageSource`] for the bytes, writes them into an aux VMO and moves them in with
//! `zx_pager_supply_pages`. The [`PageSource`] is the seam for other pagers (pattern, file
//! image, snapshot restore); today there is [`ZeroFill`].

use std::sync::Arc;
use std::thread::JoinHandle;

use kvmpager::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use kvmpager::abi::status::{ZX_ERR_CANCELED, name};
use kvmpager::abi::{Handle, PortPacket, Status};

use crate::kernel::Process;

/// Errors of the host pager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel call failed.
    #[error("{call} failed: {}", name(*.status))]
    Kernel {
        /// Which call.
        call: &'static str,
        /// Its status.
        status: Status,
    },
    /// The pager thread could not be started.
    #[error("cannot start the host pager thread: {0}")]
    Spawn(std::io::Error),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn kernel(call: &'static str) -> impl FnOnce(Status) -> Error {
    move |status| Error::Kernel { call, status }
}

/// Where the contents of guest RAM pages come from.
pub trait PageSource: Send + 'static {
    /// Fills `buf` with the contents of RAM at byte offset `offset`.
    fn fill(&mut self, offset: u64, buf: &mut [u8]);
}

/// RAM that starts as zeros.
#[derive(Debug, Default)]
pub struct ZeroFill;

impl PageSource for ZeroFill {
    fn fill(&mut self, _offset: u64, buf: &mut [u8]) {
        buf.fill(0);
    }
}

/// Largest piece one supply moves (bounds the aux VMO and the fill buffer).
const MAX_SUPPLY: u64 = 2 << 20;
/// Port key of the RAM VMO.
const RAM_KEY: u64 = 0x0052_414d; // "RAM"

/// A pager, its port and the pager VMO it serves.
pub struct HostPager {
    process: Arc<Process>,
    pager: Handle,
    port: Handle,
    vmo: Handle,
}

impl HostPager {
    /// Creates a pager VMO of `size` bytes in `process` (which should be a host process).
    pub fn create(process: &Arc<Process>, size: u64) -> Result<Self> {
        let pager = process.pager_create(0).map_err(kernel("zx_pager_create"))?;
        let port = process.port_create(0).map_err(kernel("zx_port_create"))?;
        let vmo = process
            .pager_create_vmo(pager, 0, port, RAM_KEY, size)
            .map_err(kernel("zx_pager_create_vmo"))?;
        Ok(HostPager {
            process: process.clone(),
            pager,
            port,
            vmo,
        })
    }

    /// The pager VMO (guest RAM).
    pub fn vmo(&self) -> Handle {
        self.vmo
    }

    /// Supplies `data` (page-aligned offset and length) at `offset` of the VMO.
    pub fn supply(&self, offset: u64, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        let p = &self.process;
        let aux = p.vmo_create(len, 0).map_err(kernel("zx_vmo_create"))?;
        let r = p.vmo_write(aux, data, 0).map_err(kernel("zx_vmo_write"));
        let r = r.and_then(|_| {
            p.pager_supply_pages(self.pager, self.vmo, offset, len, aux, 0)
                .map_err(kernel("zx_pager_supply_pages"))
        });
        let _ = p.handle_close(aux);
        r
    }

    /// Serves READ requests from `source` on a new thread until the process is killed.
    /// `on_error` is called once if serving fails for another reason.
    pub fn start(
        self,
        mut source: Box<dyn PageSource>,
        on_error: impl FnOnce(Error) + Send + 'static,
    ) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("host-pager".into())
            .spawn(move || {
                if let Err(e) = self.serve(source.as_mut()) {
                    on_error(e);
                }
            })
            .map_err(Error::Spawn)
    }

    fn serve(&self, source: &mut dyn PageSource) -> Result<()> {
        loop {
            let packet = match self.process.port_wait(self.port, None) {
                Ok(p) => p,
                Err(ZX_ERR_CANCELED) => return Ok(()),
                Err(status) => {
                    return Err(Error::Kernel {
                        call: "zx_port_wait",
                        status,
                    });
                }
            };
            if !self.handle_packet(&packet, source)? {
                return Ok(());
            }
        }
    }

    /// Handles one packet; `false` when no more requests will come.
    fn handle_packet(&self, p: &PortPacket, source: &mut dyn PageSource) -> Result<bool> {
        if p.packet_type != ZX_PKT_TYPE_PAGE_REQUEST {
            return Ok(true);
        }
        match p.page_request.command {
            ZX_PAGER_VMO_READ => {
                self.serve_read(p.page_request.offset, p.page_request.length, source)?
            }
            ZX_PAGER_VMO_COMPLETE => return Ok(false),
            _ => {}
        }
        Ok(true)
    }

    fn serve_read(&self, offset: u64, length: u64, source: &mut dyn PageSource) -> Result<()> {
        let mut buf = Vec::new();
        let mut done = 0;
        while done < length {
            let n = (length - done).min(MAX_SUPPLY);
            buf.resize(n as usize, 0);
            source.fill(offset + done, &mut buf);
            self.supply(offset + done, &buf)?;
            done += n;
        }
        Ok(())
    }
}
