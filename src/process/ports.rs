//! Port calls: `zx_port_create` and `zx_port_wait`.

use std::time::Instant;

use super::{Process, Result};
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::{Handle, PortPacket};
use crate::handle::KernelObject;
use crate::port::Port;

impl Process {
    /// `zx_port_create`: `options` must be 0.
    pub fn port_create(&self, options: u32) -> Result<Handle> {
        if options != 0 {
            return Err(ZX_ERR_INVALID_ARGS);
        }
        self.install(KernelObject::Port(Port::new()), ZX_DEFAULT_PORT_RIGHTS)
    }

    /// `zx_port_wait` (needs READ): the next packet, or `ZX_ERR_TIMED_OUT` at `deadline`
    /// (`None`: wait forever), or `ZX_ERR_CANCELED` once the process is killed.
    pub fn port_wait(&self, port: Handle, deadline: Option<Instant>) -> Result<PortPacket> {
        let port = self.port(port, ZX_RIGHT_READ)?;
        let deadline = match self.shared.wait_limit() {
            Some(limit) => {
                let cap = Instant::now() + limit;
                Some(deadline.map_or(cap, |d| d.min(cap)))
            }
            None => deadline,
        };
        port.wait(deadline, &self.shared.killed)
    }
}
