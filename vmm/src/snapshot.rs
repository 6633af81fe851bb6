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
//!
//! This module holds the format (names, `meta.json`) and reading; `state` the vCPU state types,
//! `write` the writer, `working_set` the working-set files (all re-exported here).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use kvmpager::abi::PAGE_SIZE;
use serde::{Deserialize, Serialize};

use crate::config::{MAX_MEMORY, MAX_VCPUS, MIN_MEMORY};

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

mod state;
mod working_set;
mod write;

pub use state::{Dtable, Fpu, Regs, Segment, Sregs, VcpuState};
pub use working_set::{read_working_set, write_working_set};
pub(crate) use write::subtract;
pub use write::{SnapshotSource, Written, write};

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
    /// Metadata with `checksum` set (the chunked store's manifests carry the same fields).
    pub fn sealed(
        ram_size: u64,
        cpus: Vec<VcpuState>,
        clock_ns: i64,
        ram_data_bytes: u64,
        vcpus: u32,
    ) -> Meta {
        let mut m = Meta {
            format: FORMAT.into(),
            version: VERSION,
            ram_size,
            vcpus,
            clock_ns,
            ram_data_bytes,
            cpus,
            checksum: String::new(),
        };
        m.checksum = m.compute_checksum();
        m
    }

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
        if !m.is_multiple_of(PAGE_SIZE) || !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
            return Err(invalid(path, format!("RAM size {m:#x} is out of range")));
        }
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS || self.cpus.len() != self.vcpus as usize {
            return Err(invalid(
                path,
                format!("{} vCPUs with {} saved states", self.vcpus, self.cpus.len()),
            ));
        }
        if self.clock_ns < 0 {
            return Err(invalid(
                path,
                format!("guest clock {} ns is negative", self.clock_ns),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A path under the temp dir for test `name`.
    pub(super) fn tmp(name: &str) -> PathBuf {
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
        let mut m = meta();
        m.clock_ns = -1;
        m.checksum = m.compute_checksum();
        assert!(m.validate(p).unwrap_err().to_string().contains("negative"));
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
}
