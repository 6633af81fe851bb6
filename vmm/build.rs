//! Builds the guest programs in `guest/` (a separate cargo workspace) and tells the crate where
//! they are, so a plain `cargo build`/`cargo test` always embeds up-to-date guests.
//!
//! - Runs `$CARGO build --release --manifest-path guest/Cargo.toml --target-dir
//!   $OUT_DIR/guest-target --target x86_64-unknown-linux-gnu` with the working directory set to
//!   `guest/`, so `guest/.cargo/config.toml` (relocation-model=static) applies, and with the
//!   outer build's `CARGO_*`/`RUST*` variables removed so its flags and target dir don't leak in.
//! - Emits `KVMPAGER_GUEST_DIR` (the directory with the ELFs) and writes
//!   `$OUT_DIR/guest_programs.rs`, one constant per `guest/programs/src/bin/*.rs`, which
//!   `src/guests.rs` includes.
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guests are built for the host target (see `guest/.cargo/config.toml`).
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("vmm/ has a parent")
        .to_path_buf();
    let guest = root.join("guest");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    for p in [
        "guest/Cargo.toml",
        "guest/Cargo.lock",
        "guest/guest.ld",
        "guest/.cargo/config.toml",
        "guest/rt/Cargo.toml",
        "guest/rt/src",
        "guest/programs/Cargo.toml",
        "guest/programs/build.rs",
        "guest/programs/src",
        // The guests compile the root crate without "std" (its `abi` module).
        "Cargo.toml",
        "src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    let programs = list_programs(&guest.join("programs/src/bin"));
    let target_dir = out_dir.join("guest-target");
    build_guests(&guest, &target_dir);

    let elf_dir = target_dir.join(GUEST_TARGET).join("release");
    for name in &programs {
        let elf = elf_dir.join(name);
        assert!(
            elf.is_file(),
            "guest build succeeded but {} is missing",
            elf.display()
        );
    }
    println!("cargo:rustc-env=KVMPAGER_GUEST_DIR={}", elf_dir.display());
    fs::write(
        out_dir.join("guest_programs.rs"),
        generate(&guest, &elf_dir, &programs),
    )
    .expect("writing guest_programs.rs");
}

/// Names of the guest programs: the `*.rs` files in `bin_dir`, sorted.
fn list_programs(bin_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(bin_dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", bin_dir.display()))
        .map(|e| e.expect("reading guest/programs/src/bin").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        assert!(
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "guest program name {n:?} must be [A-Za-z0-9_]+ (it becomes a Rust constant)"
        );
    }
    names
}

/// Runs the nested cargo build; panics with its output if it fails.
fn build_guests(guest: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guest)
        .arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--target")
        .arg(GUEST_TARGET);
    // Like uhyve's `sanitize`: drop what the outer cargo set for this build script (or the
    // user set for the outer build) — RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS, RUSTC_WRAPPER,
    // CARGO_TARGET_DIR, CARGO_BUILD_*, CARGO_PKG_*, CARGO_CFG_*, TARGET, PROFILE, ... Kept:
    // toolchain selection and the jobserver (CARGO_MAKEFLAGS), so the nested build shares the
    // outer build's job slots instead of adding its own.
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
    ];
    const DROP: &[&str] = &[
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "OUT_DIR",
    ];
    for (key, _) in env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let leaky = k.starts_with("CARGO") || k.starts_with("RUST") || DROP.contains(&k);
        if leaky && !KEEP.contains(&k) {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running cargo to build the guests: {e}"));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!(
            "building the guest programs failed ({}); the nested build's output is above. \
             Reproduce with: cd {} && cargo build --release",
            out.status,
            guest.display()
        );
    }
}

/// The first `//!` line of a program's source, for its constant's doc comment.
fn summary(src: &Path) -> String {
    fs::read_to_string(src)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("//!").map(|d| d.trim().to_string()))
        })
        .unwrap_or_default()
}

/// Rust source with one `GuestProgram` constant per program and `ALL`.
fn generate(guest: &Path, elf_dir: &Path, programs: &[String]) -> String {
    let mut s = String::from("// Generated by vmm/build.rs from guest/programs/src/bin/.\n");
    for name in programs {
        let src = guest.join("programs/src/bin").join(format!("{name}.rs"));
        let path = elf_dir.join(name);
        let doc = format!(
            "`{name}` (`guest/programs/src/bin/{name}.rs`): {}",
            summary(&src)
        );
        writeln!(
            s,
            "#[doc = {doc:?}]\npub const {upper}: GuestProgram = GuestProgram {{ name: {name:?}, \
             path: {path:?}, elf: include_bytes!({path:?}) }};",
            upper = name.to_ascii_uppercase(),
            path = path.to_str().expect("OUT_DIR is UTF-8"),
        )
        .unwrap();
    }
    s.push_str("/// Every guest program, sorted by name.\npub const ALL: &[GuestProgram] = &[");
    for name in programs {
        write!(s, "{}, ", name.to_ascii_uppercase()).unwrap();
    }
    s.push_str("];\n");
    s
}
