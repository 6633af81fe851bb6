//! The local chunk cache: a directory of verified chunks named by their hash, bounded in
//! bytes, least-recently-used chunks evicted first.
//!
//! Files are written to `.tmp-<pid>-<hex>` and renamed into place, so a reader never sees half
//! a chunk; every read is verified against the name (a bad file is deleted and refetched).
//! The directory is scanned once (recency = modification time, which reads bump): at open, or
//! — [`ChunkCache::open_unscanned`], the fetcher's way — later on the cache writer's thread,
//! so a restore never waits for a large cache's listing; reads need no index. The scan
//! removes temporary files over a minute old (a live writer's are younger) and applies the
//! bound. Several processes may share a directory: each keeps its own index and applies the
//! bound to what it sees.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Error, Hash, Result};
use crate::sync::lock;

/// The default cache directory: `$XDG_CACHE_HOME/kvmpager/chunks`, else
/// `$HOME/.cache/kvmpager/chunks`, else `$TMPDIR/kvmpager-chunks`.
pub fn default_cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = env("XDG_CACHE_HOME") {
        return x.join("kvmpager/chunks");
    }
    if let Some(h) = env("HOME") {
        return h.join(".cache/kvmpager/chunks");
    }
    std::env::temp_dir().join("kvmpager-chunks")
}

#[derive(Default)]
struct Index {
    /// Hash -> (size, tick of last use).
    entries: HashMap<Hash, (u64, u64)>,
    /// Tick -> hash, oldest first.
    lru: BTreeMap<u64, Hash>,
    total: u64,
    tick: u64,
}

impl Index {
    fn touch(&mut self, h: Hash, size: u64) {
        self.tick += 1;
        if let Some((old_size, old_tick)) = self.entries.insert(h, (size, self.tick)) {
            self.lru.remove(&old_tick);
            self.total -= old_size;
        }
        self.lru.insert(self.tick, h);
        self.total += size;
    }

    fn remove(&mut self, h: &Hash) {
        if let Some((size, tick)) = self.entries.remove(h) {
            self.lru.remove(&tick);
            self.total -= size;
        }
    }
}

/// A bounded directory of chunks.
pub struct ChunkCache {
    dir: PathBuf,
    bound: u64,
    index: std::sync::Mutex<Index>,
}

impl ChunkCache {
    /// Opens (creating) the cache in `dir`, at most `bound` bytes of chunks, and scans it.
    pub fn open(dir: &Path, bound: u64) -> Result<ChunkCache> {
        let c = ChunkCache::open_unscanned(dir, bound)?;
        c.scan()?;
        Ok(c)
    }

    /// Opens (creating) the cache in `dir` without listing it: [`ChunkCache::scan`] must
    /// follow before the bound means anything (until then only chunks used here count).
    pub fn open_unscanned(dir: &Path, bound: u64) -> Result<ChunkCache> {
        fs::create_dir_all(dir).map_err(|error| Error::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        Ok(ChunkCache {
            dir: dir.to_path_buf(),
            bound,
            index: Default::default(),
        })
    }

    /// Lists the directory into the index (chunks already used here stay newest), removes
    /// stale temporary files and applies the bound.
    pub fn scan(&self) -> Result<()> {
        let io = |error| Error::Io {
            path: self.dir.clone(),
            error,
        };
        let mut found = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(md) = e.metadata() else { continue };
            let modified = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.starts_with(".tmp-") {
                let old = modified.elapsed().is_ok_and(|a| a.as_secs() >= 60);
                if old {
                    let _ = fs::remove_file(e.path());
                }
                continue;
            }
            if let Some(h) = Hash::parse(&name) {
                found.push((modified, h, md.len()));
            }
        }
        found.sort();
        let mut ix = lock(&self.index);
        let mut used: Vec<(u64, Hash, u64)> = ix
            .entries
            .iter()
            .map(|(h, &(size, tick))| (tick, *h, size))
            .collect();
        used.sort();
        *ix = Index::default();
        for (_, h, size) in found {
            ix.touch(h, size);
        }
        for (_, h, size) in used {
            ix.touch(h, size);
        }
        self.evict(&mut ix);
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound in bytes.
    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// Bytes of chunks held now.
    pub fn bytes(&self) -> u64 {
        lock(&self.index).total
    }

    fn path(&self, h: &Hash) -> PathBuf {
        self.dir.join(h.hex())
    }

    /// Whether chunk `h` has a file here (not verified).
    pub fn contains(&self, h: &Hash) -> bool {
        self.path(h).exists()
    }

    /// The verified bytes of chunk `h` (`len` bytes long), if cached; a file that does not
    /// verify is deleted.
    pub fn get(&self, h: &Hash, len: u64) -> Option<Vec<u8>> {
        let path = self.path(h);
        let bytes = fs::read(&path).ok()?;
        if bytes.len() as u64 != len || Hash::of(&bytes) != *h {
            log::warn!("cache: {} does not verify; deleting it", path.display());
            let _ = fs::remove_file(&path);
            lock(&self.index).remove(h);
            return None;
        }
        if let Ok(f) = File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        let mut ix = lock(&self.index);
        ix.touch(*h, len);
        self.evict_except(&mut ix, Some(h));
        Some(bytes)
    }

    /// Chunk `h`'s file, opened, if it is cached and `len` bytes long (not re-hashed: files
    /// are written only after verification, and renamed into place whole). The fast path of
    /// the pager, which reads it straight into an aux VMO.
    pub fn open_file(&self, h: &Hash, len: u64) -> Option<File> {
        let f = File::open(self.path(h)).ok()?;
        let md = f.metadata().ok()?;
        if md.len() != len {
            return None;
        }
        // Recency for later processes: the mtime, bumped at most once a minute.
        let stale = md
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age > std::time::Duration::from_secs(60));
        if stale {
            let _ = f.set_modified(SystemTime::now());
        }
        let mut ix = lock(&self.index);
        ix.touch(*h, len);
        self.evict_except(&mut ix, Some(h));
        Some(f)
    }

    /// Stores chunk `h` (already verified); chunks larger than the bound are not kept.
    pub fn put(&self, h: &Hash, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 > self.bound {
            return Ok(());
        }
        let path = self.path(h);
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", std::process::id(), h.hex()));
        let io = |error| Error::Io {
            path: tmp.clone(),
            error,
        };
        fs::write(&tmp, bytes).map_err(io)?;
        fs::rename(&tmp, &path).map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })?;
        let mut ix = lock(&self.index);
        ix.touch(*h, bytes.len() as u64);
        self.evict_except(&mut ix, Some(h));
        Ok(())
    }

    fn evict(&self, ix: &mut Index) {
        self.evict_except(ix, None)
    }

    /// Deletes least-recently-used chunks until the total is within the bound (`keep` last).
    fn evict_except(&self, ix: &mut Index, keep: Option<&Hash>) {
        while ix.total > self.bound {
            let victim = ix.lru.values().find(|h| Some(*h) != keep).or(keep).copied();
            let Some(v) = victim else { break };
            let _ = fs::remove_file(self.path(&v));
            ix.remove(&v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kvmpager-cache-{}-{name}", std::process::id()))
    }

    fn du(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn cache_stays_within_its_bound_evicting_lru() {
        let d = tmp("lru");
        let _ = fs::remove_dir_all(&d);
        let c = ChunkCache::open(&d, 3000).unwrap();
        let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000]).collect();
        let hs: Vec<Hash> = chunks.iter().map(|b| Hash::of(b)).collect();
        for i in 0..3 {
            c.put(&hs[i], &chunks[i]).unwrap();
        }
        assert!(c.get(&hs[0], 1000).is_some()); // 0 is now the newest
        c.put(&hs[3], &chunks[3]).unwrap(); // evicts 1
        assert!(c.bytes() <= 3000 && du(&d) <= 3000);
        assert!(c.get(&hs[1], 1000).is_none());
        assert_eq!(c.get(&hs[0], 1000).unwrap(), chunks[0]);
        // A corrupted file is not served and is deleted.
        fs::write(d.join(hs[3].hex()), vec![9u8; 1000]).unwrap();
        assert!(c.get(&hs[3], 1000).is_none());
        assert!(!d.join(hs[3].hex()).exists());
        // An unscanned open counts only what it uses until its scan, which keeps those
        // newest.
        let u = ChunkCache::open_unscanned(&d, 3000).unwrap();
        assert_eq!(u.bytes(), 0);
        assert!(u.get(&hs[0], 1000).is_some());
        u.put(&hs[4], &chunks[4]).unwrap();
        assert_eq!(u.bytes(), 2000);
        u.scan().unwrap();
        assert!(u.bytes() <= 3000 && du(&d) <= 3000);
        assert!(u.contains(&hs[0]) && u.contains(&hs[4]));
        drop(u);
        // Reopening with a smaller bound trims.
        drop(c);
        let c = ChunkCache::open(&d, 1000).unwrap();
        assert!(c.bytes() <= 1000 && du(&d) <= 1000);
        fs::remove_dir_all(&d).unwrap();
    }
}
