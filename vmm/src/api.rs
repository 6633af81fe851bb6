//! The control API: HTTP/1.1 with JSON bodies over a Unix socket (`run|restore --api-socket`),
//! for programs that drive VMs: state, pause/resume/stop, snapshots, live statistics, pager
//! requests and Prometheus metrics. The document `vmm/src/api/openapi.json` describes it and
//! `vmm/tests/api_openapi.rs` checks the server against it.
//!
//! The room, by layer:
//! - `wire`: the JSON bodies, defined once and versioned ([`wire::API_VERSION`]).
//! - `action`: what a client can ask ([`VmAction`]), executed against a [`Control`] — no HTTP,
//!   unit-tested with a fake VM; `live`: [`Control`] for the running VM.
//! - `metrics`: the Prometheus text of one reading.
//! - `http`: the transport (parse, route, limits, timeouts) and `socket`: the socket file.
//! - `client`: the blocking client the tests use, and `commands`: the `kvmpager` client
//!   subcommands built on it (`snapshot --api-socket`, `stat`, `top`).

pub mod action;
pub mod client;
pub mod commands;
pub mod http;
pub mod live;
pub mod metrics;
pub mod socket;
pub mod wire;

use std::path::Path;
use std::sync::Arc;

pub use action::{Control, VmAction, VmResponse, execute};
pub use http::{Limits, Server};
pub use socket::ApiSocket;

use crate::config::VmConfig;
use crate::vm::Vm;

/// The OpenAPI document of this API, as it is in the repository (the server does not serve it).
pub const OPENAPI: &str = include_str!("api/openapi.json");

/// Serves `vm` (started with `cfg`; `restored_from` the snapshot it resumes) on `socket`.
pub fn serve(
    socket: ApiSocket,
    vm: &Arc<Vm>,
    cfg: &VmConfig,
    restored_from: Option<&Path>,
) -> std::io::Result<Server> {
    let control = Arc::new(live::LiveVm::new(vm.clone(), cfg, restored_from));
    Server::start(socket, control, Limits::default())
}
