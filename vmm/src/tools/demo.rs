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

/// The demo data word at word index `i` of chunk-aligned data (0 inside holes).
fn data_word(i: u64) -> u64 {
    let words = CHUNK / 8;
    if is_hole(i / words) {
        0
    } else {
        splitmix64(i ^ DEMO_SEED)
    }
}

/// The checksum of `data_len` bytes of demo data.
pub fn checksum(data_len: u64) -> u64 {
    (0..data_len / 8).fold(FNV_BASIS, |h, i| fnv_word(h, data_word(i)))
}

/// The 40-byte demo header for `data_len` bytes of data.
fn header(data_len: u64) -> Vec<u8> {
    let mut hdr = Vec::with_capacity(40);
    hdr.extend_from_slice(DEMO_MAGIC);
    hdr.extend_from_slice(&1u32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&DATA_GPA.to_le_bytes());
    hdr.extend_from_slice(&data_len.to_le_bytes());
    hdr.extend_from_slice(&checksum(data_len).to_le_bytes());
    hdr
}

fn check_len(data_len: u64) -> io::Result<()> {
    if data_len == 0 || !data_len.is_multiple_of(CHUNK) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "demo data length must be a non-zero multiple of 2 MiB",
        ));
    }
    Ok(())
}

/// The demo image computed rather than stored: what the built-in pattern pager serves.
#[derive(Clone, Debug)]
pub struct DemoPattern {
    data_len: u64,
    header: Vec<u8>,
}

impl DemoPattern {
    /// The image for `data_len` bytes of data (a non-zero multiple of [`CHUNK`]).
    pub fn new(data_len: u64) -> io::Result<DemoPattern> {
        check_len(data_len)?;
        Ok(DemoPattern {
            data_len,
            header: header(data_len),
        })
    }

    /// What the image holds.
    pub fn image(&self) -> DemoImage {
        let data_bytes = (0..self.data_len / CHUNK).filter(|c| !is_hole(*c)).count() as u64 * CHUNK;
        DemoImage {
            data_len: self.data_len,
            data_bytes,
            checksum: u64::from_le_bytes(self.header[32..40].try_into().unwrap_or_default()),
        }
    }

    /// Byte ranges (guest-physical) that may hold non-zero bytes.
    pub fn data_runs(&self) -> Vec<std::ops::Range<u64>> {
        let header = std::iter::once(HEADER_GPA..HEADER_GPA + 4096);
        let data = (0..self.data_len / CHUNK)
            .filter(|c| !is_hole(*c))
            .map(|c| DATA_GPA + c * CHUNK..DATA_GPA + (c + 1) * CHUNK);
        header.chain(data).collect()
    }

    /// Fills `buf` with the image's bytes at guest-physical `gpa` (zeros outside it).
    pub fn fill(&self, gpa: u64, buf: &mut [u8]) {
        buf.fill(0);
        let end = gpa + buf.len() as u64;
        let hdr_end = HEADER_GPA + self.header.len() as u64;
        if gpa < hdr_end && HEADER_GPA < end {
            let from = gpa.max(HEADER_GPA);
            let to = end.min(hdr_end);
            buf[(from - gpa) as usize..(to - gpa) as usize].copy_from_slice(
                &self.header[(from - HEADER_GPA) as usize..(to - HEADER_GPA) as usize],
            );
        }
        let (data_from, data_to) = (gpa.max(DATA_GPA), end.min(DATA_GPA + self.data_len));
        let mut at = data_from;
        while at < data_to {
            let word_start = (at - DATA_GPA) / 8 * 8 + DATA_GPA;
            let bytes = data_word((word_start - DATA_GPA) / 8).to_le_bytes();
            let lo = (at - word_start) as usize;
            let n = (8 - lo).min((data_to - at) as usize);
            let dst = (at - gpa) as usize;
            buf[dst..dst + n].copy_from_slice(&bytes[lo..lo + n]);
            at += n as u64;
        }
    }
}

/// Writes a demo image of `data_len` bytes (a multiple of [`CHUNK`]) to `path`.
pub fn write_image(path: &Path, data_len: u64) -> io::Result<DemoImage> {
    let pattern = DemoPattern::new(data_len)?;
    let f = File::create(path)?;
    let mut buf = vec![0u8; CHUNK as usize];
    for run in pattern.data_runs() {
        let len = (run.end - run.start) as usize;
        pattern.fill(run.start, &mut buf[..len]);
        f.write_all_at(&buf[..len], run.start)?;
    }
    f.set_len(DATA_GPA + data_len)?;
    Ok(pattern.image())
}

/// Writes an image holding only the `pattern` guest's parameter page: write `mib` MiB at
/// [`PATTERN_GPA`] with `seed`, then `rounds` times snapshot and verify.
pub fn write_pattern_params(path: &Path, mib: u64, seed: u64, rounds: u64) -> io::Result<()> {
    write_pattern_params_rewriting(path, mib, seed, rounds, 0)
}

/// [`write_pattern_params`], and after each verification the guest writes the first
/// `permille`/1000 of its pattern again (the same words: RAM is written, not changed).
pub fn write_pattern_params_rewriting(
    path: &Path,
    mib: u64,
    seed: u64,
    rounds: u64,
    permille: u64,
) -> io::Result<()> {
    let f = File::create(path)?;
    let mut b = Vec::new();
    b.extend_from_slice(PATTERN_MAGIC);
    for w in [mib, seed, rounds, permille] {
        b.extend_from_slice(&w.to_le_bytes());
    }
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
    fn the_pattern_is_byte_for_byte_the_written_image() {
        let path = std::env::temp_dir().join(format!("kvmpager-demo-unit-{}", std::process::id()));
        let img = write_image(&path, 3 * CHUNK).unwrap();
        let file = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let p = DemoPattern::new(3 * CHUNK).unwrap();
        assert_eq!(p.image(), img);
        let mut buf = vec![0u8; file.len()];
        p.fill(0, &mut buf);
        assert!(buf == file, "computed bytes differ from the file");
        // Unaligned windows agree too.
        let mut part = vec![0u8; 1000];
        p.fill(DATA_GPA + 4093, &mut part);
        let at = (DATA_GPA + 4093) as usize;
        assert_eq!(&part[..], &file[at..at + 1000]);
        assert_eq!(checksum(3 * CHUNK), img.checksum);
    }

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
