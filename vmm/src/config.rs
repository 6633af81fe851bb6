//! What a VM is made of: vCPU count, memory size, time limit, guest program, RAM policy.
//!
//! Parsing of command-line types lives in `cli.rs`; this module only has the plain values and
//! the size-suffix parser they share.

use std::path::PathBuf;
use std::time::Duration;

use kvmpager::abi::{PAGE_SIZE, layout};

use crate::kernel::{self, SupplyStrategy};

/// Errors in a VM configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A size string could not be parsed.
    #[error("invalid size {0:?}: expected a number with an optional K, M or G suffix")]
    BadSize(String),
    /// The vCPU count is outside the supported range.
    #[error("vCPU count {0} is outside 1..={MAX_VCPUS}")]
    BadVcpus(u32),
    /// The memory size is too small, too large or not page aligned.
    #[error("memory size {0:#x} must be page aligned and within {MIN_MEMORY:#x}..={MAX_MEMORY:#x}")]
    BadMemory(u64),
    /// The demo pattern does not fit in RAM.
    #[error(
        "the demo pattern ends at {end:#x}, past the end of RAM ({ram:#x}); give more --memory"
    )]
    PatternTooLarge {
        /// Where the pattern's data ends.
        end: u64,
        /// RAM size.
        ram: u64,
    },
    /// An option that needs pager-backed RAM was given with `lazy_ram` off.
    #[error("{0} needs lazy RAM (drop --no-lazy-ram)")]
    NeedsLazyRam(&'static str),
    /// An external pager serves RAM, which this setting cannot combine with.
    #[error("an external pager (--pager-socket/--pager-exec) cannot be combined with {0}")]
    ExternalPager(&'static str),
    /// The read-ahead window is not a power of two within 4 KiB..=16 MiB.
    #[error("read-ahead {0:#x} must be a power of two within 4K..=16M")]
    BadReadahead(u64),
}

/// What the VMM does after writing a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotThen {
    /// Stop the VM (the run ends with `StopReason::Snapshotted`).
    #[default]
    Stop,
    /// Let the guest go on.
    Continue,
}

/// Where and how snapshots are taken (the `Snapshot` hypercall, or SIGUSR1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// The snapshot directory (replaced atomically by each snapshot).
    pub dir: PathBuf,
    /// What happens after a snapshot.
    pub then: SnapshotThen,
}

impl SnapshotConfig {
    /// Whether the target is a snapshot URL (`crate::store`), not a directory.
    pub fn is_url(&self) -> bool {
        self.dir.to_str().is_some_and(crate::store::is_url)
    }
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Most vCPUs a VM may have (each gets its own TSS and exception stack in the boot area).
pub const MAX_VCPUS: u32 = 32;
/// Default number of vCPUs.
pub const DEFAULT_VCPUS: u32 = 2;
/// Default guest RAM size (256 MiB).
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Default for [`GuestLimits::vmo_bytes`]: 4 GiB.
pub const DEFAULT_GUEST_VMO_LIMIT: u64 = 4 << 30;

/// What a guest may hold at once. Going over a limit fails only the guest's call, with the
/// status Zircon gives for that resource; the VM and the VMM go on. They bound the host
/// memory, mappings and memslots a hostile guest can make the VMM use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLimits {
    /// Live handles (`ZX_ERR_NO_RESOURCES` past it).
    pub handles: usize,
    /// Live VMOs, pager VMOs and children included (`ZX_ERR_NO_RESOURCES`).
    pub vmos: usize,
    /// Total bytes of live VMOs (`ZX_ERR_NO_MEMORY`).
    pub vmo_bytes: u64,
    /// Page-request and COMPLETE packets queued for the guest's pagers and not yet read
    /// (`zx_pager_create_vmo` gives `ZX_ERR_NO_MEMORY` at the limit).
    pub queued_packets: usize,
    /// Live `VmarMap` mappings, each a KVM memslot (`ZX_ERR_NO_RESOURCES`; fewer if KVM has
    /// fewer memslots).
    pub mappings: u32,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            handles: 1 << 16,
            vmos: 1 << 14,
            vmo_bytes: DEFAULT_GUEST_VMO_LIMIT,
            queued_packets: kernel::MAX_UNREAD_PACKETS,
            mappings: 256,
        }
    }
}

impl GuestLimits {
    /// The kernel's share of these limits.
    pub fn kernel_limits(&self) -> kernel::Limits {
        kernel::Limits {
            handles: self.handles,
            vmos: self.vmos,
            vmo_bytes: self.vmo_bytes,
            queued_packets: self.queued_packets,
        }
    }
}
/// Smallest guest RAM (boot area + a 1 MiB program + stacks).
pub const MIN_MEMORY: u64 = 4 << 20;
/// Default read-ahead window of the host pager (one huge page).
pub const DEFAULT_READAHEAD: u64 = 2 << 20;
/// Largest guest RAM: RAM must end below the VMO aperture.
pub const MAX_MEMORY: u64 = layout::APERTURE_START;

/// Everything needed to build and run one VM.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Number of vCPUs (1..=[`MAX_VCPUS`]).
    pub vcpus: u32,
    /// Guest RAM size in bytes (page aligned).
    pub memory: u64,
    /// Wall-clock limit; the VM is stopped when it passes. `None` = no limit.
    pub timeout: Option<Duration>,
    /// The guest program (an ELF64 executable linked at `GUEST_LOAD_ADDR`).
    pub guest_elf: Vec<u8>,
    /// Back guest RAM with a pager VMO served on demand by the built-in host pager.
    pub lazy_ram: bool,
    /// Echo console output to stdout as it arrives (it is always captured as well).
    pub echo_console: bool,
    /// A raw, sparse memory image backing RAM from guest-physical 0 (lazy RAM only); the boot
    /// area and the program are supplied over it.
    pub image: Option<PathBuf>,
    /// Back RAM with the built-in pattern pager serving the demo image with this many bytes of
    /// data, computed on first touch (lazy RAM only; not with `image`).
    pub demo_pattern: Option<u64>,
    /// The host pager widens each request to an aligned window of this many bytes.
    pub readahead: u64,
    /// Supply whole 2 MiB-aligned runs as huge pages where the host has them.
    pub huge_pages: bool,
    /// Snapshots are allowed (and written here) when set.
    pub snapshot: Option<SnapshotConfig>,
    /// Record the pages the guest faults on and write them here at exit.
    pub record: Option<PathBuf>,
    /// Supply this recorded working set before the guest starts.
    pub prefetch: Option<PathBuf>,
    /// Prefetch on a background thread while the guest runs instead of before it starts.
    pub prefetch_while_running: bool,
    /// What the guest may hold at once (handles, VMOs, VMO bytes, queued packets, mappings).
    pub limits: GuestLimits,
    /// Stop the VM when a page request (of the host pager or a guest pager) has waited this
    /// long, naming the VMO and offset. `None`: wait as long as Zircon would (forever).
    pub fault_timeout: Option<Duration>,
    /// Print a progress line on stderr during long prefetches.
    pub progress: bool,
    /// How SUPPLY fills pager VMOs, for the host pager and guest pagers alike.
    pub supply: SupplyStrategy,
    /// When the VM stops, hash all of guest RAM (BLAKE3, lazy RAM only) into
    /// [`crate::RunResult::ram_blake3`], to compare restores.
    pub ram_hash: bool,
    /// Restore only: back RAM with the snapshot's host-wide shared root, copy-on-write
    /// (`--share`; see [`crate::host_pager::SharedRoot`]).
    pub share: bool,
    /// Pin the threads that serve this VM's faults (fault service, host pager) and its vCPU
    /// threads to host CPUs: vCPU `i` on CPU `home + i`, the fault threads on vCPU 0's CPU,
    /// `home` chosen round-robin per VM; a pinned pager thread does not poll its port (on
    /// one CPU polling only delays the threads it waits for). Off in this configuration's
    /// default; the CLI turns it on (`--no-pin` keeps it off): on the measured host the
    /// pinned, non-polling handoff gives every run the same fault latency, where unpinned
    /// runs landed on one CPU or two by chance (1.4x vs 1.5-3x of the raw handler).
    pub pin_threads: bool,
    /// Serve the control API (HTTP/1.1, `crate::api`) on this Unix socket while the VM runs.
    pub api_socket: Option<PathBuf>,
    /// Serve lazy RAM by an external pager process instead of the built-in host pager
    /// ([`crate::pager_proto`]); [`VmConfig::image`] (on a restore: the snapshot's `ram.img`)
    /// is then only handed to an exec'd pager.
    pub external_pager: Option<crate::host_pager::external::ExternalPager>,
}

impl VmConfig {
    /// A configuration with the defaults for everything but the guest program.
    pub fn new(guest_elf: Vec<u8>) -> Self {
        VmConfig {
            vcpus: DEFAULT_VCPUS,
            memory: DEFAULT_MEMORY,
            timeout: None,
            guest_elf,
            lazy_ram: true,
            echo_console: false,
            image: None,
            demo_pattern: None,
            prefetch_while_running: false,
            limits: GuestLimits::default(),
            fault_timeout: None,
            readahead: DEFAULT_READAHEAD,
            huge_pages: true,
            supply: SupplyStrategy::Auto,
            api_socket: None,
            snapshot: None,
            record: None,
            prefetch: None,
            progress: false,
            ram_hash: false,
            share: false,
            pin_threads: false,
            external_pager: None,
        }
    }

    /// Checks the numeric limits.
    pub fn validate(&self) -> Result<()> {
        if self.vcpus == 0 || self.vcpus > MAX_VCPUS {
            return Err(Error::BadVcpus(self.vcpus));
        }
        let m = self.memory;
        if !m.is_multiple_of(PAGE_SIZE) || !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
            return Err(Error::BadMemory(m));
        }
        let r = self.readahead;
        if !r.is_power_of_two() || !(PAGE_SIZE..=16 << 20).contains(&r) {
            return Err(Error::BadReadahead(r));
        }
        if let Some(len) = self.demo_pattern {
            let end = crate::tools::demo::DATA_GPA.saturating_add(len);
            if end > self.memory {
                return Err(Error::PatternTooLarge {
                    end,
                    ram: self.memory,
                });
            }
        }
        if self.external_pager.is_some() {
            for (set, what) in [
                (!self.lazy_ram, "--no-lazy-ram"),
                (self.demo_pattern.is_some(), "the pattern pager"),
                (self.snapshot.is_some(), "snapshotting"),
                (self.record.is_some(), "recording a working set"),
                (self.prefetch.is_some(), "prefetching a working set"),
                (self.share, "shared RAM (--share)"),
            ] {
                if set {
                    return Err(Error::ExternalPager(what));
                }
            }
        }
        if !self.lazy_ram {
            for (set, what) in [
                (self.image.is_some(), "a memory image"),
                (self.demo_pattern.is_some(), "the pattern pager"),
                (self.snapshot.is_some(), "snapshotting"),
                (self.record.is_some(), "recording a working set"),
                (self.prefetch.is_some(), "prefetching a working set"),
            ] {
                if set {
                    return Err(Error::NeedsLazyRam(what));
                }
            }
        }
        Ok(())
    }
}

/// Parses `"256M"`, `"1G"`, `"4096"`, `"64k"` into bytes (binary units).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || Error::BadSize(s.to_string());
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        Some(_) => (t, 0),
        None => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn limits_are_checked() {
        let mut c = VmConfig::new(vec![]);
        assert!(c.validate().is_ok());
        c.vcpus = 0;
        assert_eq!(c.validate(), Err(Error::BadVcpus(0)));
        c.vcpus = 1;
        c.memory = 4097;
        assert!(c.validate().is_err());
        c.memory = MAX_MEMORY + PAGE_SIZE;
        assert!(c.validate().is_err());
        c.memory = DEFAULT_MEMORY;
        c.readahead = 3 << 12;
        assert_eq!(c.validate(), Err(Error::BadReadahead(3 << 12)));
        c.readahead = DEFAULT_READAHEAD;
        c.lazy_ram = false;
        c.image = Some("x.img".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("needs lazy RAM")
        );
    }

    #[test]
    fn a_demo_pattern_must_fit_in_ram() {
        let mut c = VmConfig::new(Vec::new());
        c.demo_pattern = Some(crate::tools::demo::DEFAULT_DATA_LEN);
        c.memory = 64 << 20;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("past the end of RAM")
        );
        c.memory = 256 << 20;
        c.validate().unwrap();
    }
}
