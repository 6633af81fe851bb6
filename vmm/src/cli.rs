//! Command-line parsing and the run summary of `kvmpager`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kvmpager_vmm::config::{DEFAULT_VCPUS, parse_size};
use kvmpager_vmm::{RunResult, StopReason, VmConfig, guests};

/// kvmpager: a KVM micro-VMM whose guests get Zircon's user-pager model.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a guest program (the embedded default guest when --guest is not given).
    Run(RunArgs),
}

/// Default embedded guest.
const DEFAULT_GUEST: &str = "hello";

#[derive(Debug, Args)]
struct RunArgs {
    /// Guest ELF file, or `embedded:NAME` for a program built into kvmpager.
    #[arg(long)]
    guest: Option<String>,
    /// Number of vCPUs.
    #[arg(long, default_value_t = DEFAULT_VCPUS)]
    vcpus: u32,
    /// Guest RAM size (e.g. 256M, 1G).
    #[arg(long, default_value = "256M", value_parser = parse_size_arg)]
    memory: u64,
    /// Stop the VM after this many seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// Serve guest RAM on demand with the built-in host pager (default).
    #[arg(long, overrides_with = "no_lazy_ram")]
    lazy_ram: bool,
    /// Back guest RAM with a plain VMO instead.
    #[arg(long)]
    no_lazy_ram: bool,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let Command::Run(args) = Cli::parse().command;
    match config(&args).and_then(|c| kvmpager_vmm::run(&c).map_err(|e| e.to_string())) {
        Ok(r) => report(&r),
        Err(e) => {
            eprintln!("kvmpager: {e}");
            1
        }
    }
}

fn guest_elf(guest: Option<&str>) -> Result<Vec<u8>, String> {
    let name = match guest {
        None => DEFAULT_GUEST,
        Some(g) => match g.strip_prefix("embedded:") {
            Some(n) => n,
            None => {
                let path = PathBuf::from(g);
                return std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()));
            }
        },
    };
    guests::by_name(name)
        .map(|p| p.elf.to_vec())
        .ok_or_else(|| format!("no embedded guest named {name:?}"))
}

fn config(a: &RunArgs) -> Result<VmConfig, String> {
    let mut c = VmConfig::new(guest_elf(a.guest.as_deref())?);
    c.vcpus = a.vcpus;
    c.memory = a.memory;
    c.lazy_ram = !a.no_lazy_ram;
    c.echo_console = true;
    c.timeout = match a.timeout {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(format!("invalid timeout {s}")),
        None => None,
    };
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Prints the summary and returns the exit code: the guest's (`code & 0xff`), else 1.
fn report(r: &RunResult) -> i32 {
    eprintln!("--- kvmpager: {}", r.stop);
    eprintln!("{}", r.stats.summary());
    match r.stop {
        StopReason::Exit(code) => (code & 0xff) as i32,
        _ => {
            eprintln!("kvmpager: VM stopped: {}", r.stop);
            1
        }
    }
}
