//! Memory images for the built-in guests: the default micro-VM's (`demo`) and the parameter
//! page of the snapshot test guest (`pattern`).
//!
//! `kvmpager run` with no arguments writes a demo image to a temporary file and backs guest
//! RAM with it; the `demo` guest checksums the image's data in place — memory the VMM never
//! loaded: every page arrives on first touch through the host pager, file data read straight
//! into aux VMOs and moved in, holes supplied as zero pages without reading the file.
//!
//! Layout (guest-physical; the guests hard-code the same numbers):
//! ```text
//! 16 MiB  header page: magic "KVMPDEMO", version u32 (1), u32 0, data GPA u64, data length
//!         u64, checksum u64           — or, for `pattern`: magic "KVMPPATT", MiB u64, seed u64,
//!         rounds u64
//! 18 MiB  data: 2 MiB chunks; every fourth chunk is a hole (zeros), the others hold the
//!         words splitmix64(word index ^ DEMO_SEED)
//! ```
//! The checksum is FNV-1a over the data's little-endian 64-bit words (one word per step).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Guest-physical address of the header page.
pub const HEADER_GPA: u64 = 16 << 20;
/// Guest-physical address of the demo data.
pub const DATA_GPA: u64 = 18 << 20;
/// Default length of the demo data.
pub const DEFAULT_DATA_LEN: u64 = 64 << 20;
/// Size of one chunk of the demo data.
pub const CHUNK: u64 = 2 << 20;
/// Seed of the demo data.
pub const DEMO_SEED: u64 = 0x6b76_6d70_6167_6572; // "kvmpager"
/// Magic of the demo header.
pub const DEMO_MAGIC: &[u8; 8] = b"KVMPDEMO";
/// Magic of the pattern guest's parameter page.
pub const PATTERN_MAGIC: &[u8; 8] = b"KVMPPATT";
/// Where the pattern guest writes its pattern.
pub const PATTERN_GPA: u64 = 32 << 20;

/// splitmix64.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One FNV-1a step over a 64-bit word.
pub fn fnv_word(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
}

/// FNV-1a's offset basis.
pub const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// Whether demo chunk `i` is a hole.
pub fn is_hole(chunk: u64) -> bool {
    chunk % 4 == 3
}

/// What a written demo image holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoImage {
    /// Bytes of data (holes included).
    pub data_len: u64,
    /// Bytes actually stored in the file.
    pub data_bytes: u64,
    /// The checksum the guest should compute.
    pub checksum: u64,
}

/// Writes a demo image of `data_len` bytes (a multiple of [`CHUNK`]) to `path`.
pub fn write_image(path: &Path, data_len: u64) -> io::Result<DemoImage> {
    if data_len == 0 || data_len % CHUNK != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "demo data length must be a non-zero multiple of 2 MiB",
        ));
    }
    let f = File::create(path)?;
    let mut h = FNV_BASIS;
    let mut buf = vec![0u8; CHUNK as usize];
    let words = CHUNK / 8;
    let mut stored = 0;
    for c in 0..data_len / CHUNK {
        if is_hole(c) {
            for _ in 0..words {
                h = fnv_word(h, 0);
            }
            continue;
        }
        for i in 0..words {
            let w = splitmix64((c * words + i) ^ DEMO_SEED);
            h = fnv_word(h, w);
            buf[(i * 8) as usize..(i * 8 + 8) as usize].copy_from_slice(&w.to_le_bytes());
        }
        f.write_all_at(&buf, DATA_GPA + c * CHUNK)?;
        stored += CHUNK;
    }
    let mut hdr = Vec::with_capacity(40);
    hdr.extend_from_slice(DEMO_MAGIC);
    hdr.extend_from_slice(&1u32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&DATA_GPA.to_le_bytes());
    hdr.extend_from_slice(&data_len.to_le_bytes());
    hdr.extend_from_slice(&h.to_le_bytes());
    f.write_all_at(&hdr, HEADER_GPA)?;
    f.set_len(DATA_GPA + data_len)?;
    Ok(DemoImage {
        data_len,
        data_bytes: stored,
        checksum: h,
    })
}

/// Writes an image holding only the `pattern` guest's parameter page: write `mib` MiB at
/// [`PATTERN_GPA`] with `seed`, then `rounds` times snapshot and verify.
pub fn write_pattern_params(path: &Path, mib: u64, seed: u64, rounds: u64) -> io::Result<()> {
    let f = File::create(path)?;
    let mut b = Vec::new();
    b.extend_from_slice(PATTERN_MAGIC);
    b.extend_from_slice(&mib.to_le_bytes());
    b.extend_from_slice(&seed.to_le_bytes());
    b.extend_from_slice(&rounds.to_le_bytes());
    f.write_all_at(&b, HEADER_GPA)?;
    f.set_len(HEADER_GPA + 4096)
}

/// The word the `pattern` guest writes at byte offset `off` of its region.
pub fn pattern_word(seed: u64, off: u64) -> u64 {
    splitmix64(seed ^ (off / 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_image_is_sparse_and_checksummed() {
        let p = std::env::temp_dir().join(format!("kvmpager-demo-test-{}", std::process::id()));
        let img = write_image(&p, 8 * CHUNK).unwrap();
        assert_eq!(img.data_bytes, 6 * CHUNK);
        let data = std::fs::read(&p).unwrap();
        assert_eq!(data.len() as u64, DATA_GPA + 8 * CHUNK);
        let mut h = FNV_BASIS;
        for w in data[DATA_GPA as usize..].chunks_exact(8) {
            h = fnv_word(h, u64::from_le_bytes(w.try_into().unwrap()));
        }
        assert_eq!(h, img.checksum);
        assert_eq!(
            &data[HEADER_GPA as usize..HEADER_GPA as usize + 8],
            DEMO_MAGIC
        );
        std::fs::remove_file(&p).unwrap();
    }
}
