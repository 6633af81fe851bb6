//! The C/C++ guest SDK (`guest/sdk/`) from the host side: where it is, the compiler and linker
//! flags of `kvmpager sdk --cflags/--cxxflags/--ldflags`, building its runtime library for gcc
//! or clang (cached, keyed by a hash of the SDK's files and the compiler), building programs,
//! and running Zircon's pager tests (`guest/sdk/tests/`) as `kvmpager test --suite zircon`.
//!
//! Nothing here is built by cargo: the C sources are compiled when asked, with the compiler
//! installed on the machine, so a build without clang still works; asking for clang when it is
//! missing is an [`SdkError::NoCompiler`] that says which commands were tried.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{RunResult, StopReason, VmConfig};

/// The SDK sources compiled into its runtime library (besides `crt0.S`, linked first).
const RUNTIME_C: [&str; 6] = [
    "syscalls.c",
    "start.c",
    "threads.c",
    "heap.c",
    "libc.c",
    "zxtest.c",
];
/// The C++ part of the runtime (operator new/delete, ABI hooks).
const RUNTIME_CXX: &str = "cxx.cc";
/// zxtest's default `main`, an archive member so a program's own `main` wins.
const ZXTEST_MAIN: &str = "zxtest_main.c";
/// The Zircon pager tests: sources under `guest/sdk/tests/`.
pub const ZIRCON_SOURCES: [&str; 3] = ["userpager.cc", "pager.cc", "pager-writeback.cc"];
/// vCPUs of a zircon suite run (vCPU 0 runs the tests, the rest are their threads).
pub const ZIRCON_VCPUS: usize = 32;
/// Guest RAM of a zircon suite run.
pub const ZIRCON_MEMORY: u64 = 256 << 20;

/// Why an SDK build could not be done.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The SDK directory is missing.
    #[error("the kvmpager SDK is not at {0} (set KVMPAGER_SDK to its guest/sdk directory)")]
    NoSdk(PathBuf),
    /// None of the compiler's commands runs.
    #[error("{0} is not installed (tried: {1}); on Debian: apt-get install -y {2}")]
    NoCompiler(&'static str, String, &'static str),
    /// A compiler or `ar` failed.
    #[error("`{0}` failed:\n{1}")]
    Build(String, String),
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The VM could not be built or started.
    #[error(transparent)]
    Vm(#[from] crate::Error),
}

/// A C/C++ toolchain the SDK supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Toolchain {
    /// gcc / g++.
    Gcc,
    /// clang / clang++ (any of `clang`, `clang-14` … `clang-19`).
    Clang,
}

impl Toolchain {
    /// Both toolchains.
    pub const ALL: [Toolchain; 2] = [Toolchain::Gcc, Toolchain::Clang];

    /// The toolchain's name (`gcc` or `clang`).
    pub fn name(self) -> &'static str {
        match self {
            Toolchain::Gcc => "gcc",
            Toolchain::Clang => "clang",
        }
    }

    /// Parses `gcc` or `clang`.
    pub fn parse(s: &str) -> Option<Toolchain> {
        Toolchain::ALL.into_iter().find(|t| t.name() == s)
    }

    fn candidates(self) -> Vec<(String, String)> {
        match self {
            Toolchain::Gcc => vec![("gcc".into(), "g++".into())],
            Toolchain::Clang => std::iter::once(String::new())
                .chain((14..=19).rev().map(|v| format!("-{v}")))
                .map(|s| (format!("clang{s}"), format!("clang++{s}")))
                .collect(),
        }
    }

    /// The C and C++ compiler commands found on this machine.
    pub fn commands(self) -> Result<(String, String), SdkError> {
        let cands = self.candidates();
        for (cc, cxx) in &cands {
            if runs(cc) && runs(cxx) {
                return Ok((cc.clone(), cxx.clone()));
            }
        }
        let tried: Vec<&str> = cands.iter().map(|c| c.0.as_str()).collect();
        let pkg = match self {
            Toolchain::Gcc => "gcc g++",
            Toolchain::Clang => "clang-14",
        };
        Err(SdkError::NoCompiler(self.name(), tried.join(", "), pkg))
    }
}

fn runs(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The SDK directory: `$KVMPAGER_SDK`, else `guest/sdk` of the source tree this was built from.
pub fn sdk_dir() -> PathBuf {
    match std::env::var_os("KVMPAGER_SDK") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/sdk"),
    }
}

fn checked_sdk_dir() -> Result<PathBuf, SdkError> {
    let d = sdk_dir();
    if d.join("include/zircon/syscalls.h").is_file() {
        Ok(d.canonicalize().unwrap_or(d))
    } else {
        Err(SdkError::NoSdk(d))
    }
}

/// Flags for compiling C (and C++) guest code: the SDK's include directory and a freestanding,
/// non-PIC x86-64 target.
pub fn cflags(sdk: &Path) -> Vec<String> {
    vec![
        format!("-I{}", sdk.join("include").display()),
        "-ffreestanding".into(),
        "-fno-pic".into(),
        "-fno-pie".into(),
        "-fno-stack-protector".into(),
        "-fno-asynchronous-unwind-tables".into(),
        "-U_FORTIFY_SOURCE".into(),
        "-mno-red-zone".into(),
    ]
}

/// [`cflags`] plus what C++ needs without a C++ runtime (no exceptions, RTTI or thread-safe
/// statics).
pub fn cxxflags(sdk: &Path) -> Vec<String> {
    let mut f = cflags(sdk);
    f.extend(
        ["-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]
            .iter()
            .map(|s| s.to_string()),
    );
    f
}

/// Link flags: static, no C library, the SDK's linker script, its `crt0.o` and runtime
/// library (built for `tc` into `lib`).
pub fn ldflags(sdk: &Path, lib: &Path) -> Vec<String> {
    vec![
        "-nostdlib".into(),
        "-static".into(),
        format!("-Wl,-T,{}", sdk.join("sdk.ld").display()),
        "-Wl,--build-id=none".into(),
        "-Wl,-z,noexecstack".into(),
        lib.join("crt0.o").display().to_string(),
        lib.join("libkvmpager_sdk.a").display().to_string(),
    ]
}

/// A hash of every file under the SDK directory (names and contents) and the toolchain.
fn sdk_hash(sdk: &Path, tc: Toolchain) -> Result<u64, SdkError> {
    let mut files = Vec::new();
    list_files(sdk, &mut files)?;
    files.sort();
    let mut h = DefaultHasher::new();
    tc.hash(&mut h);
    for f in files {
        f.strip_prefix(sdk).unwrap_or(&f).hash(&mut h);
        fs::read(&f).map_err(|e| io(&f, e))?.hash(&mut h);
    }
    Ok(h.finish())
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SdkError> {
    for e in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        if p.is_dir() {
            list_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn io(p: &Path, e: std::io::Error) -> SdkError {
    SdkError::Io(p.display().to_string(), e)
}

/// Where built runtimes and suites are cached: `$KVMPAGER_SDK_CACHE`, else a directory in the
/// system's temporary directory.
fn cache_root() -> PathBuf {
    match std::env::var_os("KVMPAGER_SDK_CACHE") {
        Some(p) => PathBuf::from(p),
        None => std::env::temp_dir().join("kvmpager-sdk-cache"),
    }
}

/// Runs a command; its output becomes the error if it fails.
fn run_cmd(cmd: &mut Command) -> Result<(), SdkError> {
    let shown = format!("{cmd:?}");
    let o = cmd
        .output()
        .map_err(|e| SdkError::Build(shown.clone(), e.to_string()))?;
    if o.status.success() {
        Ok(())
    } else {
        let mut msg = String::from_utf8_lossy(&o.stderr).into_owned();
        msg.push_str(&String::from_utf8_lossy(&o.stdout));
        Err(SdkError::Build(shown, msg))
    }
}

/// Warnings are errors in the SDK's own sources.
const STRICT: [&str; 4] = ["-O2", "-Wall", "-Wextra", "-Werror"];

fn compile(cc: &str, flags: &[String], std: &str, src: &Path, obj: &Path) -> Result<(), SdkError> {
    run_cmd(
        Command::new(cc)
            .args(flags)
            .args(STRICT)
            .arg(std)
            .arg("-fno-builtin")
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj),
    )
}

/// Builds the SDK runtime for `tc` (once per SDK content and toolchain; cached) and returns
/// the directory with `crt0.o` and `libkvmpager_sdk.a`.
pub fn build_runtime(tc: Toolchain) -> Result<PathBuf, SdkError> {
    let sdk = checked_sdk_dir()?;
    let (cc, cxx) = tc.commands()?;
    let dir = cache_root().join(format!(
        "runtime-{}-{:016x}",
        tc.name(),
        sdk_hash(&sdk, tc)?
    ));
    if dir.join("libkvmpager_sdk.a").is_file() {
        return Ok(dir);
    }
    let tmp = PathBuf::from(format!("{}.tmp-{}", dir.display(), std::process::id()));
    fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let src = sdk.join("src");
    let cf = cflags(&sdk);
    compile(
        &cc,
        &cf,
        "-std=c11",
        &src.join("crt0.S"),
        &tmp.join("crt0.o"),
    )?;
    let mut objs = Vec::new();
    for f in RUNTIME_C.iter().chain([&ZXTEST_MAIN]) {
        let o = tmp.join(format!("{f}.o"));
        compile(&cc, &cf, "-std=c11", &src.join(f), &o)?;
        objs.push(o);
    }
    let o = tmp.join("cxx.o");
    compile(
        &cxx,
        &cxxflags(&sdk),
        "-std=c++17",
        &src.join(RUNTIME_CXX),
        &o,
    )?;
    objs.push(o);
    run_cmd(
        Command::new("ar")
            .arg("rcs")
            .arg(tmp.join("libkvmpager_sdk.a"))
            .args(&objs),
    )?;
    // Another build may have won the race; either copy is complete.
    if fs::rename(&tmp, &dir).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    Ok(dir)
}

/// Compiles and links `sources` (C: `.c`, C++: `.cc`/`.cpp`, assembly: `.S`) against the SDK
/// with `tc` into the ELF `out`, with `extra` flags (e.g. `-O2`, `-Wall`).
pub fn build_program(
    tc: Toolchain,
    sources: &[PathBuf],
    out: &Path,
    extra: &[&str],
) -> Result<(), SdkError> {
    let sdk = checked_sdk_dir()?;
    let lib = build_runtime(tc)?;
    let (cc, cxx) = tc.commands()?;
    let is_cxx = |p: &PathBuf| p.extension().is_some_and(|e| e == "cc" || e == "cpp");
    let any_cxx = sources.iter().any(is_cxx);
    let objdir = PathBuf::from(format!("{}.objs", out.display()));
    fs::create_dir_all(&objdir).map_err(|e| io(&objdir, e))?;
    let mut objs = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let o = objdir.join(format!("{i}.o"));
        let (cmd, flags, std) = if is_cxx(s) {
            (&cxx, cxxflags(&sdk), "-std=c++17")
        } else {
            (&cc, cflags(&sdk), "-std=c11")
        };
        run_cmd(
            Command::new(cmd)
                .args(&flags)
                .arg(std)
                .args(extra)
                .arg("-c")
                .arg(s)
                .arg("-o")
                .arg(&o),
        )?;
        objs.push(o);
    }
    run_cmd(
        Command::new(if any_cxx { &cxx } else { &cc })
            .args(&objs)
            .args(ldflags(&sdk, &lib))
            .arg("-o")
            .arg(out),
    )
}

/// Builds Zircon's pager tests with `tc` (cached like the runtime) and returns the ELF.
pub fn build_zircon_suite(tc: Toolchain) -> Result<PathBuf, SdkError> {
    let sdk = checked_sdk_dir()?;
    let dir = cache_root().join(format!("zircon-{}-{:016x}", tc.name(), sdk_hash(&sdk, tc)?));
    let elf = dir.join("zircon-pager-tests");
    if elf.is_file() {
        return Ok(elf);
    }
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let tmp = PathBuf::from(format!("{}.tmp-{}", elf.display(), std::process::id()));
    let sources: Vec<PathBuf> = ZIRCON_SOURCES
        .iter()
        .map(|s| sdk.join("tests").join(s))
        .collect();
    build_program(tc, &sources, &tmp, &STRICT)?;
    fs::rename(&tmp, &elf).map_err(|e| io(&elf, e))?;
    Ok(elf)
}

/// The outcome of a zxtest program's run, parsed from its console.
#[derive(Clone, Debug)]
pub struct ZxtestResult {
    /// The count from `registered N cases`.
    pub registered: Option<usize>,
    /// Cases that passed.
    pub passed: Vec<String>,
    /// Cases that failed, with the first failure.
    pub failed: Vec<(String, String)>,
    /// Cases skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The closing `P passed, F failed`.
    pub summary: Option<(usize, usize)>,
    /// `TestReport` hypercalls received.
    pub reports: usize,
    /// The guest's exit code.
    pub exit_code: Option<i64>,
    /// Why the VM stopped.
    pub stop: StopReason,
    /// Everything the guest printed.
    pub console: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl ZxtestResult {
    /// Parses a finished run of a zxtest program.
    pub fn from_run(r: &RunResult, elapsed: Duration) -> ZxtestResult {
        let console = r.console_text();
        let mut res = ZxtestResult {
            registered: None,
            passed: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            summary: None,
            reports: r.test_reports.len(),
            exit_code: r.exit_code,
            stop: r.stop.clone(),
            console: String::new(),
            elapsed,
        };
        for l in console.lines() {
            res.parse_line(l);
        }
        res.console = console;
        res
    }

    fn parse_line(&mut self, l: &str) {
        let split = |rest: &str| match rest.split_once(": ") {
            Some((n, m)) => (n.to_string(), m.to_string()),
            None => (rest.to_string(), String::new()),
        };
        if let Some(n) = l
            .strip_prefix("registered ")
            .and_then(|r| r.strip_suffix(" cases"))
        {
            self.registered = self.registered.or(n.parse().ok());
        } else if let Some(n) = l.strip_prefix("[PASS] ") {
            self.passed.push(n.to_string());
        } else if let Some(r) = l.strip_prefix("[FAIL] ") {
            self.failed.push(split(r));
        } else if let Some(r) = l.strip_prefix("[SKIP] ") {
            self.skipped.push(split(r));
        } else if let Some(s) = parse_summary(l) {
            self.summary = Some(s);
        }
    }

    /// Cases that ran (passed, failed or skipped).
    pub fn ran(&self) -> usize {
        self.passed.len() + self.failed.len() + self.skipped.len()
    }

    /// Every registered case ran and reported, none failed, the closing line agrees and the
    /// guest exited with 0.
    pub fn ok(&self) -> bool {
        self.registered == Some(self.ran())
            && self.reports == self.ran()
            && self.failed.is_empty()
            && self.summary == Some((self.passed.len(), 0))
            && self.exit_code == Some(0)
    }

    /// Passed cases whose name starts with `prefix` (e.g. `Pager.`).
    pub fn passed_in(&self, prefix: &str) -> usize {
        self.passed.iter().filter(|n| n.starts_with(prefix)).count()
    }

    /// Prints every case, the skip count and the closing line.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "registered {} cases", self.registered.unwrap_or(0))?;
        for n in &self.passed {
            writeln!(out, "[PASS] {n}")?;
        }
        for (n, m) in &self.skipped {
            writeln!(out, "[SKIP] {n}: {m}")?;
        }
        for (n, m) in &self.failed {
            writeln!(out, "[FAIL] {n}: {m}")?;
        }
        if self.registered != Some(self.ran()) || !self.stop.is_exit() {
            writeln!(out, "cases run: {} (VM stop: {})", self.ran(), self.stop)?;
        }
        writeln!(out, "{} skipped", self.skipped.len())?;
        writeln!(
            out,
            "{} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        )
    }
}

/// `P passed, F failed`.
fn parse_summary(l: &str) -> Option<(usize, usize)> {
    let (p, f) = l.split_once(" passed, ")?;
    Some((p.parse().ok()?, f.strip_suffix(" failed")?.parse().ok()?))
}

/// Runs a zxtest ELF on `vcpus` vCPUs for at most `timeout`.
pub fn run_zxtest(elf: &[u8], vcpus: usize, timeout: Duration) -> Result<ZxtestResult, SdkError> {
    let mut c = VmConfig::new(elf.to_vec());
    c.vcpus = u32::try_from(vcpus).unwrap_or(u32::MAX);
    c.memory = ZIRCON_MEMORY;
    c.timeout = Some(timeout);
    c.echo_console = false;
    let start = Instant::now();
    let r = crate::run(&c)?;
    Ok(ZxtestResult::from_run(&r, start.elapsed()))
}

/// `kvmpager test --suite zircon`: builds Zircon's pager tests with `tc`, runs them and prints
/// the result to `out`.
pub fn run_zircon_suite(
    tc: Toolchain,
    vcpus: usize,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<ZxtestResult, SdkError> {
    let elf = build_zircon_suite(tc)?;
    let bytes = fs::read(&elf).map_err(|e| io(&elf, e))?;
    let r = run_zxtest(&bytes, vcpus, timeout)?;
    let _ = writeln!(
        out,
        "zircon pager tests built with {} ({})",
        tc.name(),
        elf.display()
    );
    let _ = r.print(out).and_then(|_| out.flush());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_parse() {
        let mut r = ZxtestResult {
            registered: None,
            passed: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            summary: None,
            reports: 3,
            exit_code: Some(1),
            stop: StopReason::Exit(1),
            console: String::new(),
            elapsed: Duration::ZERO,
        };
        for l in "registered 3 cases\n[PASS] A.b\n    x.cc:3: expected 1 == 2\n\
                  [FAIL] A.c: x.cc:3: expected 1 == 2\n[SKIP] A.d: needs zx_foo\n\
                  1 skipped\n1 passed, 1 failed\n"
            .lines()
        {
            r.parse_line(l);
        }
        assert_eq!(r.registered, Some(3));
        assert_eq!(r.passed, ["A.b"]);
        assert_eq!(
            r.failed,
            [("A.c".to_string(), "x.cc:3: expected 1 == 2".to_string())]
        );
        assert_eq!(r.skipped, [("A.d".to_string(), "needs zx_foo".to_string())]);
        assert_eq!(r.summary, Some((1, 1)));
        assert_eq!(r.ran(), 3);
        assert!(!r.ok());
        assert_eq!(r.passed_in("A."), 1);
    }

    #[test]
    fn toolchains_parse_by_name() {
        assert_eq!(Toolchain::parse("gcc"), Some(Toolchain::Gcc));
        assert_eq!(Toolchain::parse("clang"), Some(Toolchain::Clang));
        assert_eq!(Toolchain::parse("tcc"), None);
    }
}
