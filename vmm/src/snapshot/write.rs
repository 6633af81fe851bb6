//! Writing a snapshot: `meta.json` and a sparse `ram.img` into `DIR.tmp-<pid>`, then renamed
//! into place.

use std::fs::{self, File};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use kvmpager::abi::PAGE_SIZE;

use super::{
    Error, FORMAT, META_FILE, Meta, RAM_FILE, Result, VERSION, VcpuState, invalid, io_err,
};
use crate::host_pager::PageSource;
use crate::kernel::Vmo;

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
    /// For snapshots written to a URL: what the upload did.
    pub upload: Option<crate::store::UploadStats>,
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
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(parent)
    {
        let _ = d.sync_all();
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
        upload: None,
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
pub(crate) fn subtract(run: Range<u64>, present: &[Range<u64>]) -> Vec<Range<u64>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
