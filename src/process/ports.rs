//! Port calls: `zx_port_create`, `zx_port_wait`, and kvmpager's exception port.

use std::time::Instant;

use super::{Process, Result};
use crate::abi::rights::*;
use crate::abi::status::*;
use crate::abi::{ExceptionPacket, Handle, PortPacket};
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

    /// Host side: serve `port`'s fault-dispatched packets on the fault service's thread with
    /// `server` (see [`Port::set_inline_server`]); needs READ.
    pub fn port_set_inline_server(
        &self,
        port: Handle,
        server: Option<crate::port::InlineServer>,
    ) -> Result<()> {
        self.port(port, ZX_RIGHT_READ)?.set_inline_server(server);
        Ok(())
    }

    /// `KvmpagerSetExceptionPort`: exception packets go to `port` (needs WRITE) with `key`
    /// from now on; `ZX_HANDLE_INVALID` turns them off.
    pub fn set_exception_port(&self, port: Handle, key: u64) -> Result<()> {
        let new = match port {
            crate::abi::ZX_HANDLE_INVALID => None,
            h => Some((self.port(h, ZX_RIGHT_WRITE)?, key)),
        };
        *self
            .exception_port
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Whether exception packets have a live port to go to.
    pub fn has_exception_port(&self) -> bool {
        let port = self
            .exception_port
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        port.as_ref().is_some_and(|(p, _)| !p.is_closed())
    }

    /// Queues `e` (its key replaced by the port's) on the exception port; `false` when there is
    /// no live port or the process's queued-packet limit is reached (the packet is dropped).
    pub fn deliver_exception(&self, e: ExceptionPacket) -> bool {
        let port = self
            .exception_port
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some((port, key)) = port.as_ref().filter(|(p, _)| !p.is_closed()) else {
            return false;
        };
        if self.shared.queued_packets() >= self.shared.limits().queued_packets {
            return false;
        }
        let packet = ExceptionPacket { key: *key, ..e }.to_port_packet();
        port.queue_charged(packet, None, Some(self.shared.packet_charge()));
        true
    }
}
