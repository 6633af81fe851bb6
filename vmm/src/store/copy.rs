//! `kvmpager snapshot copy SRC DST`: a snapshot from a directory or URL to a directory or URL
//! (a local snapshot pushed to a store, a chunked one pulled into the directory format, or
//! one store to another). RAM is read through the source's page source, as a snapshot of a
//! restored VM that never touched a page would be.

use std::path::Path;
use std::sync::Arc;

use super::{FetcherConfig, is_url, open_snapshot, write_snapshot};
use crate::host_pager::{ImageSource, PageSource};
use crate::kernel::Process;
use crate::snapshot::{self, Meta, Snapshot, SnapshotSource, Written};

/// Copies snapshot `src` to `dst` (each a directory or a snapshot URL); chunks of URL sources
/// go through the cache in `cache_dir` (bounded to `cache_bytes`).
pub fn copy(src: &str, dst: &str, cache_dir: &Path, cache_bytes: u64) -> Result<Written, String> {
    let (meta, pages, working_set) = open_source(src, cache_dir, cache_bytes)?;
    let host = Process::new();
    let err = |e: crate::kernel::CallFailed| e.to_string();
    let h = host
        .vmo_create(meta.ram_size, 0)
        .map_err(crate::kernel::kernel("zx_vmo_create"))
        .map_err(err)?;
    let ram = host
        .vmo_object(h)
        .map_err(crate::kernel::kernel("vmo_object"))
        .map_err(err)?;
    let s = SnapshotSource {
        ram: &ram,
        pages: pages.as_ref(),
        cpus: meta.cpus.clone(),
        clock_ns: meta.clock_ns,
    };
    if is_url(dst) {
        return write_snapshot(dst, &s, working_set).map_err(|e| e.to_string());
    }
    let w = snapshot::write(Path::new(dst), &s).map_err(|e| e.to_string())?;
    if !working_set.is_empty() {
        let ws = Path::new(dst).join(snapshot::WORKING_SET_FILE);
        snapshot::write_working_set(&ws, meta.ram_size, &working_set).map_err(|e| e.to_string())?;
    }
    Ok(w)
}

type Source = (Meta, Arc<dyn PageSource>, Vec<u64>);

fn open_source(src: &str, cache_dir: &Path, cache_bytes: u64) -> Result<Source, String> {
    if is_url(src) {
        let r = open_snapshot(src, cache_dir, cache_bytes, FetcherConfig::default())
            .map_err(|e| e.to_string())?;
        let ws = r.manifest.working_set.clone();
        return Ok((r.manifest.meta(), r.source, ws));
    }
    let snap = Snapshot::open(Path::new(src)).map_err(|e| e.to_string())?;
    let image =
        ImageSource::open(&snap.ram_path(), snap.meta.ram_size).map_err(|e| e.to_string())?;
    let ws_path = snap.dir.join(snapshot::WORKING_SET_FILE);
    let ws = if ws_path.exists() {
        snapshot::read_working_set(&ws_path, snap.meta.ram_size).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    Ok((snap.meta, Arc::new(image), ws))
}
