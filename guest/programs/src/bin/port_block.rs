//! A vCPU that never comes back from a hypercall, for the control-socket tests
//! (`vmm/tests/api_control.rs`): vCPU 0 prints `port_block: waiting` and waits in `PortWait`
//! with no deadline on a port nothing ever queues to; vCPU 1 spins in guest code. A pause
//! parks vCPU 1 and reports vCPU 0 as `in_hypercall` (the VM stays `pausing`).
#![no_std]
#![no_main]

use rt::abi::ZX_TIME_INFINITE;
use rt::{Port, println};

rt::entry!(main);

fn main(vcpu: usize, _ncpus: usize, _ram: u64) -> i64 {
    if vcpu != 0 {
        rt::park();
    }
    let Ok(port) = Port::create(0) else {
        println!("port_block: cannot create a port");
        return 1;
    };
    println!("port_block: waiting");
    let r = port.wait(ZX_TIME_INFINITE);
    println!("port_block: the wait returned {:?}", r.err());
    2
}
