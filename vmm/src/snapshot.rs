//! Snapshots: a paused VM written to a directory, and read back for a lazy restore.
//!
//! ```text
//! DIR/meta.json      format, version, RAM size, vCPU count, guest clock, per-vCPU registers
//!                    (regs, sregs, x87/SSE state), and an FNV-1a checksum of all of that
//! DIR/ram.img        guest RAM, raw and sparse: exactly RAM-size bytes long, only non-zero
//!                    pages written (`Vmo::write_file`), holes everywhere else
//! DIR/workingset.bin optional: pages the guest faulted on after a restore (`--record`)
//! ```
//!
//! The guest's boot tables (GDT, IDT, TSSs, page tables) live in RAM, and guests run at CPL 3
//! without interrupts, so registers plus RAM are the whole VM. A snapshot is written into
//! `DIR.tmp-<pid>` and renamed into place only when complete: a failed snapshot leaves nothing
//! half-written. Reading validates everything (format, version, checksum, sizes, `ram.img`
//! length) before any guest state is built; the RAM contents are checked only by length, so
//! a restore costs the same whatever the RAM size.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use kvm_bindings::{kvm_dtable, kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use kvmpager::abi::PAGE_SIZE;
use kvmpager::vmo::Vmo;
use serde::{Deserialize, Serialize};

use crate::config::{MAX_MEMORY, MAX_VCPUS, MIN_MEMORY};
use crate::host_pager::PageSource;

/// The `format` field of `meta.json`.
pub const FORMAT: &str = "kvmpager-snapshot";
/// The snapshot format version this VMM writes and reads.
pub const VERSION: u32 = 1;
/// Name of the metadata file.
pub const META_FILE: &str = "meta.json";
/// Name of the RAM image.
pub const RAM_FILE: &str = "ram.img";
/// Default name of the working-set file.
pub const WORKING_SET_FILE: &str = "workingset.bin";
/// Largest `meta.json` read (a 32-vCPU snapshot is far smaller).
const MAX_META_BYTES: u64 = 4 << 20;

/// Errors reading or writing a snapshot or working set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The snapshot is not valid.
    #[error("invalid snapshot {path}: {reason}")]
    Invalid {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The VM could not be snapshotted.
    #[error("cannot snapshot the VM: {0}")]
    Vm(String),
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---- vCPU state ----------------------------------------------------------------------------

/// General-purpose registers (`kvm_regs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

macro_rules! copy_fields {
    ($from:expr => $to:ident { $($f:ident),* }) => {
        {
            #[allow(clippy::needless_update)]
            let v = $to { $($f: $from.$f,)* ..Default::default() };
            v
        }
    };
}

impl From<&kvm_regs> for Regs {
    fn from(r: &kvm_regs) -> Self {
        copy_fields!(r => Regs { rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11, r12,
            r13, r14, r15, rip, rflags })
    }
}

impl From<&Regs> for kvm_regs {
    fn from(r: &Regs) -> Self {
        copy_fields!(r => kvm_regs { rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11,
            r12, r13, r14, r15, rip, rflags })
    }
}

/// A segment register (`kvm_segment`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub type_: u8,
    pub present: u8,
    pub dpl: u8,
    pub db: u8,
    pub s: u8,
    pub l: u8,
    pub g: u8,
    pub avl: u8,
    pub unusable: u8,
}

impl From<&kvm_segment> for Segment {
    fn from(s: &kvm_segment) -> Self {
        copy_fields!(s => Segment { base, limit, selector, type_, present, dpl, db, s, l, g,
            avl, unusable })
    }
}

impl From<&Segment> for kvm_segment {
    fn from(s: &Segment) -> Self {
        copy_fields!(s => kvm_segment { base, limit, selector, type_, present, dpl, db, s, l,
            g, avl, unusable })
    }
}

/// A descriptor-table register (`kvm_dtable`): base and limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Dtable {
    pub base: u64,
    pub limit: u16,
}

/// Special registers (`kvm_sregs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: Dtable,
    pub idt: Dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
}

impl From<&kvm_sregs> for Sregs {
    fn from(s: &kvm_sregs) -> Self {
        let seg = Segment::from;
        let dt = |d: &kvm_dtable| Dtable {
            base: d.base,
            limit: d.limit,
        };
        Sregs {
            cs: seg(&s.cs),
            ds: seg(&s.ds),
            es: seg(&s.es),
            fs: seg(&s.fs),
            gs: seg(&s.gs),
            ss: seg(&s.ss),
            tr: seg(&s.tr),
            ldt: seg(&s.ldt),
            gdt: dt(&s.gdt),
            idt: dt(&s.idt),
            cr0: s.cr0,
            cr2: s.cr2,
            cr3: s.cr3,
            cr4: s.cr4,
            cr8: s.cr8,
            efer: s.efer,
            apic_base: s.apic_base,
        }
    }
}

impl Sregs {
    /// Applies these registers over `base` (a vCPU's current sregs, for KVM-owned fields).
    pub fn apply(&self, base: kvm_sregs) -> kvm_sregs {
        let seg = kvm_segment::from;
        let dt = |d: &Dtable| kvm_dtable {
            base: d.base,
            limit: d.limit,
            ..Default::default()
        };
        kvm_sregs {
            cs: seg(&self.cs),
            ds: seg(&self.ds),
            es: seg(&self.es),
            fs: seg(&self.fs),
            gs: seg(&self.gs),
            ss: seg(&self.ss),
            tr: seg(&self.tr),
            ldt: seg(&self.ldt),
            gdt: dt(&self.gdt),
            idt: dt(&self.idt),
            cr0: self.cr0,
            cr2: self.cr2,
            cr3: self.cr3,
            cr4: self.cr4,
            cr8: self.cr8,
            efer: self.efer,
            apic_base: self.apic_base,
            ..base
        }
    }
}

/// x87 and SSE state (`kvm_fpu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Fpu {
    pub fpr: [[u8; 16]; 8],
    pub fcw: u16,
    pub fsw: u16,
    pub ftwx: u8,
    pub last_opcode: u16,
    pub last_ip: u64,
    pub last_dp: u64,
    pub xmm: [[u8; 16]; 16],
    pub mxcsr: u32,
}

impl From<&kvm_fpu> for Fpu {
    fn from(f: &kvm_fpu) -> Self {
        copy_fields!(f => Fpu { fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp, xmm,
            mxcsr })
    }
}

impl From<&Fpu> for kvm_fpu {
    fn from(f: &Fpu) -> Self {
        copy_fields!(f => kvm_fpu { fpr, fcw, fsw, ftwx, last_opcode, last_ip, last_dp, xmm,
            mxcsr })
    }
}

/// Everything of one vCPU a snapshot keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuState {
    /// General registers.
    pub regs: Regs,
    /// Special registers.
    pub sregs: Sregs,
    /// x87/SSE state.
    pub fpu: Fpu,
}

// ---- meta.json -----------------------------------------------------------------------------

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for snapshots this VMM writes.
    pub version: u32,
    /// Guest RAM size in bytes.
    pub ram_size: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The guest's monotonic clock (ns) when the VM was paused.
    pub clock_ns: i64,
    /// Bytes of `ram.img` that hold data (the rest are holes).
    pub ram_data_bytes: u64,
    /// Per-vCPU state, index order.
    pub cpus: Vec<VcpuState>,
    /// FNV-1a of this metadata serialized with `checksum` = 0, as 16 hex digits.
    pub checksum: String,
}

impl Meta {
    fn compute_checksum(&self) -> String {
        let mut m = self.clone();
        m.checksum = String::new();
        let bytes = serde_json::to_vec(&m).expect("metadata serializes");
        format!("{:016x}", fnv1a(&bytes))
    }

    /// Checks everything but the files.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.format != FORMAT {
            return Err(invalid(
                path,
                format!("format is {:?}, not {FORMAT:?}", self.format),
            ));
        }
        if self.version != VERSION {
            return Err(invalid(
                path,
                format!(
                    "version {} (this kvmpager reads version {VERSION})",
                    self.version
                ),
            ));
        }
        if self.checksum != self.compute_checksum() {
            return Err(invalid(path, "checksum mismatch: the metadata is corrupt"));
        }
        let m = self.ram_size;
        if m % PAGE_SIZE != 0 || !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
            return Err(invalid(path, format!("RAM size {m:#x} is out of range")));
        }
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS || self.cpus.len() != self.vcpus as usize {
            return Err(invalid(
                path,
                format!("{} vCPUs with {} saved states", self.vcpus, self.cpus.len()),
            ));
        }
        Ok(())
    }
}

/// A validated snapshot, ready to restore.
#[derive(Debug)]
pub struct Snapshot {
    /// The directory.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: Meta,
}

impl Snapshot {
    /// Reads and validates the snapshot in `dir`: metadata (format, version, checksum, sizes)
    /// and the RAM image (a regular file exactly RAM-size bytes long).
    pub fn open(dir: &Path) -> Result<Snapshot> {
        if !dir.is_dir() {
            let why = if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            return Err(invalid(dir, why));
        }
        let meta_path = dir.join(META_FILE);
        let file = File::open(&meta_path).map_err(io_err(&meta_path))?;
        let mut text = Vec::new();
        file.take(MAX_META_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(io_err(&meta_path))?;
        if text.len() as u64 > MAX_META_BYTES {
            return Err(invalid(&meta_path, "larger than 4 MiB"));
        }
        let meta: Meta = serde_json::from_slice(&text)
            .map_err(|e| invalid(&meta_path, format!("truncated or corrupt: {e}")))?;
        meta.validate(&meta_path)?;
        let ram = dir.join(RAM_FILE);
        let md = fs::metadata(&ram).map_err(io_err(&ram))?;
        if !md.is_file() {
            return Err(invalid(&ram, "not a regular file"));
        }
        if md.len() != meta.ram_size {
            return Err(invalid(
                &ram,
                format!(
                    "{} bytes long, but the snapshot's RAM is {} bytes (truncated?)",
                    md.len(),
                    meta.ram_size
                ),
            ));
        }
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    /// Path of the RAM image.
    pub fn ram_path(&self) -> PathBuf {
        self.dir.join(RAM_FILE)
    }
}

// ---- writing -------------------------------------------------------------------------------

/// What a snapshot writer needs from the VM.
pub struct SnapshotSource<'a> {
    /// The RAM VMO (a pager VMO: its present pages are exactly what the guest has seen).
    pub ram: &'a Vmo,
    /// Where RAM pages that are not present come from.
    pub pages: &'a dyn PageSource,
    /// The paused vCPUs' states.
    pub cpus: Vec<VcpuState>,
    /// The guest clock.
    pub clock_ns: i64,
}

/// What a written snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The directory.
    pub dir: PathBuf,
    /// Bytes of RAM data written (non-zero pages).
    pub ram_data_bytes: u64,
    /// Of those, bytes copied from the VM's page source (pages the guest never touched).
    pub from_source_bytes: u64,
}

/// Writes a snapshot of `src` to `dir`, atomically: into `DIR.tmp-<pid>`, then renamed over
/// `dir` (an existing snapshot there is replaced).
pub fn write(dir: &Path, src: &SnapshotSource<'_>) -> Result<Written> {
    let name = dir
        .file_name()
        .ok_or_else(|| invalid(dir, "not a directory name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.with_file_name(format!("{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let r = write_into(&tmp, src).and_then(|w| {
        replace_dir(&tmp, dir)?;
        Ok(Written {
            dir: dir.to_path_buf(),
            ..w
        })
    });
    if r.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    r
}

fn replace_dir(tmp: &Path, dir: &Path) -> Result<()> {
    let old = dir.with_file_name(format!(
        "{}.old-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let had_old = dir.exists();
    if had_old {
        fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    if let Err(e) = fs::rename(tmp, dir) {
        if had_old {
            let _ = fs::rename(&old, dir);
        }
        return Err(io_err(dir)(e));
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn write_into(tmp: &Path, src: &SnapshotSource<'_>) -> Result<Written> {
    fs::create_dir_all(tmp).map_err(io_err(tmp))?;
    let ram_path = tmp.join(RAM_FILE);
    let ram = File::create(&ram_path).map_err(io_err(&ram_path))?;
    ram.set_len(src.ram.size()).map_err(io_err(&ram_path))?;
    let present = src.ram.present_runs();
    let mut data = 0;
    for run in &present {
        data += write_present(src.ram, &ram, run.start * PAGE_SIZE..run.end * PAGE_SIZE)
            .map_err(|e| invalid(&ram_path, e))?;
    }
    let mut from_source = 0;
    for run in src
        .pages
        .data_runs()
        .map_err(|e| Error::Vm(e.to_string()))?
    {
        for gap in subtract(run, &present) {
            from_source += gap.end - gap.start;
            src.pages
                .copy_to(&ram, gap)
                .map_err(|e| Error::Vm(e.to_string()))?;
        }
    }
    ram.sync_all().map_err(io_err(&ram_path))?;
    let mut meta = Meta {
        format: FORMAT.into(),
        version: VERSION,
        ram_size: src.ram.size(),
        vcpus: src.cpus.len() as u32,
        clock_ns: src.clock_ns,
        ram_data_bytes: data + from_source,
        cpus: src.cpus.clone(),
        checksum: String::new(),
    };
    meta.checksum = meta.compute_checksum();
    let meta_path = tmp.join(META_FILE);
    let mut f = File::create(&meta_path).map_err(io_err(&meta_path))?;
    let text = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
    f.write_all(&text).map_err(io_err(&meta_path))?;
    f.sync_all().map_err(io_err(&meta_path))?;
    Ok(Written {
        dir: tmp.to_path_buf(),
        ram_data_bytes: data + from_source,
        from_source_bytes: from_source,
    })
}

/// Writes the non-zero pages of the present byte range `run` with `Vmo::write_file`; returns
/// the bytes written.
fn write_present(ram: &Vmo, out: &File, run: Range<u64>) -> std::result::Result<u64, String> {
    const CHUNK: u64 = 2 << 20;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut written = 0;
    let mut at = run.start;
    while at < run.end {
        let n = (run.end - at).min(CHUNK);
        ram.peek(at, &mut buf[..n as usize])
            .map_err(|s| format!("reading RAM at {at:#x}: {}", kvmpager::abi::status::name(s)))?;
        let pages = (n / PAGE_SIZE) as usize;
        let zero = |p: usize| {
            buf[p * PAGE_SIZE as usize..(p + 1) * PAGE_SIZE as usize]
                .iter()
                .all(|&b| b == 0)
        };
        let mut p = 0;
        while p < pages {
            if zero(p) {
                p += 1;
                continue;
            }
            let start = p;
            while p < pages && !zero(p) {
                p += 1;
            }
            let (off, len) = (
                at + start as u64 * PAGE_SIZE,
                (p - start) as u64 * PAGE_SIZE,
            );
            ram.write_file(off, len, out, off).map_err(|s| {
                format!(
                    "writing RAM at {off:#x}: {}",
                    kvmpager::abi::status::name(s)
                )
            })?;
            written += len;
        }
        at += n;
    }
    Ok(written)
}

/// `run` minus the page runs `present` (sorted page-number ranges); byte ranges.
fn subtract(run: Range<u64>, present: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = run.start;
    let first = present.partition_point(|p| p.end * PAGE_SIZE <= run.start);
    for p in &present[first..] {
        let (ps, pe) = (p.start * PAGE_SIZE, p.end * PAGE_SIZE);
        if ps >= run.end {
            break;
        }
        if ps > at {
            out.push(at..ps);
        }
        at = at.max(pe);
    }
    if at < run.end {
        out.push(at..run.end);
    }
    out
}

// ---- working sets --------------------------------------------------------------------------

const WS_MAGIC: &[u8; 8] = b"KVMPWSET";
const WS_HEADER: usize = 8 + 4 + 4 + 8 + 8;

/// Writes a working set: the page numbers `pages` of a RAM of `ram_size` bytes.
///
/// Layout (little endian): magic `KVMPWSET`, version u32 (1), page size u32, RAM size u64,
/// count u64, `count` page numbers u64, then FNV-1a (u64) of everything before it.
pub fn write_working_set(path: &Path, ram_size: u64, pages: &[u64]) -> Result<()> {
    let mut b = Vec::with_capacity(WS_HEADER + 8 * pages.len() + 8);
    b.extend_from_slice(WS_MAGIC);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    b.extend_from_slice(&ram_size.to_le_bytes());
    b.extend_from_slice(&(pages.len() as u64).to_le_bytes());
    for p in pages {
        b.extend_from_slice(&p.to_le_bytes());
    }
    let sum = fnv1a(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, &b).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads and validates a working set for a RAM of `ram_size` bytes.
pub fn read_working_set(path: &Path, ram_size: u64) -> Result<Vec<u64>> {
    let b = fs::read(path).map_err(io_err(path))?;
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    if b.len() < WS_HEADER + 8 || &b[..8] != WS_MAGIC {
        return Err(invalid(
            path,
            "not a kvmpager working set (bad magic or too short)",
        ));
    }
    if u32_at(8) != 1 || u64::from(u32_at(12)) != PAGE_SIZE {
        return Err(invalid(
            path,
            "unsupported working-set version or page size",
        ));
    }
    let count = u64_at(24);
    let expect = (count as usize)
        .checked_mul(8)
        .and_then(|n| n.checked_add(WS_HEADER + 8));
    if expect != Some(b.len()) {
        return Err(invalid(
            path,
            "truncated: the length does not match the page count",
        ));
    }
    let body = b.len() - 8;
    if fnv1a(&b[..body]) != u64_at(body) {
        return Err(invalid(
            path,
            "checksum mismatch: the working set is corrupt",
        ));
    }
    if u64_at(16) != ram_size {
        return Err(invalid(
            path,
            format!("recorded for {} bytes of RAM, not {ram_size}", u64_at(16)),
        ));
    }
    let pages: Vec<u64> = (0..count as usize)
        .map(|i| u64_at(WS_HEADER + 8 * i))
        .collect();
    if let Some(p) = pages.iter().find(|&&p| p >= ram_size / PAGE_SIZE) {
        return Err(invalid(path, format!("page {p} lies outside RAM")));
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kvmpager-snap-{}-{name}", std::process::id()))
    }

    fn meta() -> Meta {
        let mut m = Meta {
            format: FORMAT.into(),
            version: VERSION,
            ram_size: 64 << 20,
            vcpus: 1,
            clock_ns: 5,
            ram_data_bytes: 0,
            cpus: vec![VcpuState::default()],
            checksum: String::new(),
        };
        m.checksum = m.compute_checksum();
        m
    }

    #[test]
    fn metadata_checksum_catches_changes() {
        let p = Path::new("meta.json");
        let mut m = meta();
        m.validate(p).unwrap();
        m.cpus[0].regs.rip = 1;
        let e = m.validate(p).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        let mut m = meta();
        m.version = 9;
        assert!(m.validate(p).unwrap_err().to_string().contains("version 9"));
    }

    #[test]
    fn register_conversions_round_trip() {
        let r = kvm_regs {
            rax: 1,
            r15: 2,
            rip: 3,
            rflags: 0x3002,
            ..Default::default()
        };
        let back = kvm_regs::from(&Regs::from(&r));
        assert_eq!(
            (back.rax, back.r15, back.rip, back.rflags),
            (1, 2, 3, 0x3002)
        );
        let mut s = kvm_sregs::default();
        s.cs.selector = 0x23;
        s.cs.l = 1;
        s.gdt.limit = 0x1ff;
        s.cr3 = 0x10000;
        s.interrupt_bitmap[0] = 9;
        let back = Sregs::from(&s).apply(s);
        assert_eq!(
            (back.cs.selector, back.cs.l, back.gdt.limit),
            (0x23, 1, 0x1ff)
        );
        assert_eq!((back.cr3, back.interrupt_bitmap[0]), (0x10000, 9));
        let f = kvm_fpu {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        };
        let back = kvm_fpu::from(&Fpu::from(&f));
        assert_eq!((back.fcw, back.mxcsr), (0x37f, 0x1f80));
    }

    #[test]
    fn open_rejects_bad_snapshots_with_clear_errors() {
        let d = tmp("open");
        let _ = fs::remove_dir_all(&d);
        assert!(
            Snapshot::open(&d)
                .unwrap_err()
                .to_string()
                .contains("no such directory")
        );
        fs::create_dir_all(&d).unwrap();
        assert!(
            Snapshot::open(&d)
                .unwrap_err()
                .to_string()
                .contains("meta.json")
        );
        let m = meta();
        let text = serde_json::to_vec(&m).unwrap();
        fs::write(d.join(META_FILE), &text[..text.len() / 2]).unwrap();
        let e = Snapshot::open(&d).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt"), "{e}");
        fs::write(d.join(META_FILE), &text).unwrap();
        let e = Snapshot::open(&d).unwrap_err().to_string();
        assert!(e.contains("ram.img"), "{e}");
        File::create(d.join(RAM_FILE))
            .unwrap()
            .set_len(4096)
            .unwrap();
        let e = Snapshot::open(&d).unwrap_err().to_string();
        assert!(e.contains("truncated?"), "{e}");
        File::create(d.join(RAM_FILE))
            .unwrap()
            .set_len(m.ram_size)
            .unwrap();
        Snapshot::open(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn working_sets_round_trip_and_reject_corruption() {
        let p = tmp("ws");
        write_working_set(&p, 64 << 20, &[3, 1, 2]).unwrap();
        assert_eq!(read_working_set(&p, 64 << 20).unwrap(), vec![3, 1, 2]);
        assert!(
            read_working_set(&p, 32 << 20)
                .unwrap_err()
                .to_string()
                .contains("recorded for")
        );
        let mut b = fs::read(&p).unwrap();
        b[WS_HEADER] ^= 1;
        fs::write(&p, &b).unwrap();
        assert!(
            read_working_set(&p, 64 << 20)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        fs::write(&p, &b[..b.len() - 3]).unwrap();
        assert!(
            read_working_set(&p, 64 << 20)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        fs::remove_file(&p).unwrap();
    }

    #[test]
    fn subtract_removes_present_pages() {
        let p = PAGE_SIZE;
        let present = [2..4, 6..7];
        assert_eq!(
            subtract(0..8 * p, &present),
            vec![0..2 * p, 4 * p..6 * p, 7 * p..8 * p]
        );
        assert_eq!(subtract(2 * p..4 * p, &present), Vec::<Range<u64>>::new());
        assert_eq!(subtract(3 * p..5 * p, &present), vec![4 * p..5 * p]);
    }
}
