//! Working-set files (`workingset.bin`): the pages a restored guest faulted on, written by
//! `--record` and read back by `--prefetch`.

use std::fs;
use std::path::Path;

use kvmpager::abi::PAGE_SIZE;

use super::{Result, fnv1a, invalid, io_err};

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
    // A temporary name of its own per call: VMs of one process (`restore --clones`) write
    // `FILE`, `FILE.1`, ... at once, and `with_extension` would give `FILE.1` and `FILE.2`
    // the same one.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp-{}-{seq}", std::process::id()));
    let tmp = path.with_file_name(name);
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
    use crate::snapshot::tests::tmp;

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
}
