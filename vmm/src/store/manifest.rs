//! The manifest: `ROOT/snapshots/<name>/manifest.json`, the one wire type of a chunked
//! snapshot (JSON, versioned). Decoding validates every field, so hostile bytes give an error,
//! never a panic or an out-of-range chunk (fuzzed: `fuzz/fuzz_targets/manifest.rs`).

use std::path::Path;

use kvmpager::abi::PAGE_SIZE;
use serde::{Deserialize, Serialize};

use super::{CHUNK_SIZE, Hash};
use crate::snapshot::{Meta, VcpuState};

/// The `format` field.
pub const FORMAT: &str = "kvmpager-chunked-snapshot";
/// The manifest version this VMM writes and reads.
pub const VERSION: u32 = 1;
/// Largest manifest read (a 1 GiB guest's chunk list is ~140 KiB).
pub const MAX_BYTES: usize = 16 << 20;

/// A chunked snapshot's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The snapshot's name.
    pub name: String,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Bytes per chunk ([`CHUNK_SIZE`]); chunk `i` is RAM `[i * chunk_size, +chunk_size)`,
    /// the last one cut at `ram_size`.
    pub chunk_size: u64,
    /// Page size (4096).
    pub page_size: u64,
    /// Guest RAM size in bytes.
    pub ram_size: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The guest's monotonic clock (ns) when the VM was paused.
    pub clock_ns: i64,
    /// Per-vCPU state, index order.
    pub cpus: Vec<VcpuState>,
    /// One entry per chunk of RAM: the BLAKE3 hex of its bytes, or `null` when all zero.
    pub chunks: Vec<Option<String>>,
    /// Pages (numbers) to prefetch, in first-touch order.
    pub working_set: Vec<u64>,
    /// Bytes of RAM in non-zero chunks.
    pub data_bytes: u64,
    /// BLAKE3 hex of this manifest serialized (compact JSON) with `checksum` = "".
    pub checksum: String,
}

/// Parsed chunk list: `None` for zero chunks.
pub type Chunks = Vec<Option<Hash>>;

impl Manifest {
    /// A sealed manifest (checksum set).
    pub fn new(name: &str, meta: &Meta, chunks: &[Option<Hash>], working_set: Vec<u64>) -> Self {
        let created_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let data_bytes = (0..chunks.len())
            .filter(|&i| chunks[i].is_some())
            .map(|i| chunk_len(meta.ram_size, CHUNK_SIZE, i))
            .sum();
        let mut m = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            name: name.into(),
            created_unix_ms,
            chunk_size: CHUNK_SIZE,
            page_size: PAGE_SIZE,
            ram_size: meta.ram_size,
            vcpus: meta.vcpus,
            clock_ns: meta.clock_ns,
            cpus: meta.cpus.clone(),
            chunks: chunks.iter().map(|c| c.map(|h| h.hex())).collect(),
            working_set,
            data_bytes,
            checksum: String::new(),
        };
        m.checksum = m.compute_checksum();
        m
    }

    fn compute_checksum(&self) -> String {
        let mut m = self.clone();
        m.checksum = String::new();
        let bytes = serde_json::to_vec(&m).expect("manifest serializes");
        Hash::of(&bytes).hex()
    }

    /// The JSON text.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    /// Parses and validates manifest bytes; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<(Manifest, Chunks), String> {
        if bytes.len() > MAX_BYTES {
            return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("truncated or corrupt: {e}"))?;
        let chunks = m.validate()?;
        Ok((m, chunks))
    }

    /// Checks every field; returns the parsed chunk list.
    pub fn validate(&self) -> Result<Chunks, String> {
        if self.format != FORMAT {
            return Err(format!("format is {:?}, not {FORMAT:?}", self.format));
        }
        if self.version != VERSION {
            return Err(format!(
                "version {} (this kvmpager reads version {VERSION})",
                self.version
            ));
        }
        if self.checksum != self.compute_checksum() {
            return Err("checksum mismatch: the manifest is corrupt".into());
        }
        if self.chunk_size != CHUNK_SIZE || self.page_size != PAGE_SIZE {
            return Err(format!(
                "chunk size {} / page size {} (this kvmpager uses {CHUNK_SIZE} / {PAGE_SIZE})",
                self.chunk_size, self.page_size
            ));
        }
        self.meta()
            .validate(Path::new("manifest.json"))
            .map_err(|e| e.to_string())?;
        let want = self.ram_size.div_ceil(self.chunk_size);
        if self.chunks.len() as u64 != want {
            return Err(format!(
                "{} chunks listed for {} bytes of RAM (want {want})",
                self.chunks.len(),
                self.ram_size
            ));
        }
        let pages = self.ram_size / PAGE_SIZE;
        if let Some(p) = self.working_set.iter().find(|&&p| p >= pages) {
            return Err(format!("working-set page {p} lies outside RAM"));
        }
        self.chunks
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                None => Ok(None),
                Some(h) => Hash::parse(h)
                    .map(Some)
                    .ok_or_else(|| format!("chunk {i}: {h:?} is not a BLAKE3 hex hash")),
            })
            .collect()
    }

    /// The snapshot metadata a restore needs (vCPUs, RAM size, clock).
    pub fn meta(&self) -> Meta {
        Meta::sealed(
            self.ram_size,
            self.cpus.clone(),
            self.clock_ns,
            self.data_bytes,
            self.vcpus,
        )
    }
}

/// Length of chunk `i` of a RAM of `ram_size` bytes.
pub fn chunk_len(ram_size: u64, chunk_size: u64, i: usize) -> u64 {
    let start = i as u64 * chunk_size;
    ram_size.saturating_sub(start).min(chunk_size)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample(chunks: usize) -> Manifest {
        let meta = Meta::sealed(
            chunks as u64 * CHUNK_SIZE,
            vec![VcpuState::default()],
            7,
            0,
            1,
        );
        let list: Vec<Option<Hash>> = (0..chunks)
            .map(|i| (i % 3 != 0).then(|| Hash::of(&i.to_le_bytes())))
            .collect();
        Manifest::new("t", &meta, &list, vec![1, 0, 5])
    }

    #[test]
    fn manifests_round_trip_and_reject_changes() {
        let m = sample(16);
        let (back, chunks) = Manifest::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(chunks.len(), 16);
        assert!(chunks[0].is_none() && chunks[1].is_some());
        let mut bad = m.clone();
        bad.chunks.pop();
        assert!(bad.validate().unwrap_err().contains("checksum"));
        bad.checksum = bad.compute_checksum();
        assert!(bad.validate().unwrap_err().contains("chunks listed"));
        let mut bad = m.clone();
        bad.working_set.push(1 << 40);
        bad.checksum = bad.compute_checksum();
        assert!(bad.validate().unwrap_err().contains("outside RAM"));
        let mut bad = m.clone();
        bad.chunks[1] = Some("zz".into());
        bad.checksum = bad.compute_checksum();
        assert!(bad.validate().unwrap_err().contains("not a BLAKE3"));
        let text = m.encode();
        let e = Manifest::decode(&text[..text.len() / 2]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::decode(&b);
        }

        #[test]
        fn decoding_mutated_manifests_never_panics(at in 0usize..4096, byte in any::<u8>()) {
            let mut text = sample(8).encode();
            let i = at % text.len();
            text[i] = byte;
            if let Ok((m, chunks)) = Manifest::decode(&text) {
                prop_assert_eq!(chunks.len() as u64, m.ram_size.div_ceil(m.chunk_size));
            }
        }
    }
}
