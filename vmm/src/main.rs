//! The `kvmpager` command: a thin shim over [`kvmpager_vmm::run`].

mod cli;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    std::process::exit(cli::main());
}
