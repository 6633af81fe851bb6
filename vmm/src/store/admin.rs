//! `kvmpager snapshot ls` and `gc`: listing a store's snapshots, and deleting the chunks no
//! manifest references.
//!
//! GC and concurrent writers: a writer uploads chunks first and the manifest last, so for a
//! while its chunks are referenced by nothing. GC therefore deletes only unreferenced chunks
//! last modified more than `grace` ago (default 1 hour: longer than any upload), and refuses
//! to run if any manifest cannot be read (it might reference chunks).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{ChunkStore, Hash, Manifest, Result, StoreUrl};

/// One snapshot of a store.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: String,
    /// When written (ms since the Unix epoch).
    pub created_unix_ms: u64,
    /// Guest RAM size.
    pub ram_size: u64,
    /// Bytes in non-zero chunks.
    pub data_bytes: u64,
    /// Non-zero chunks referenced.
    pub chunks: u64,
    /// Working-set pages recorded.
    pub working_set_pages: u64,
    /// vCPUs.
    pub vcpus: u32,
}

/// What a GC did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcStats {
    /// Manifests read.
    pub snapshots: u64,
    /// Chunks in the store before.
    pub chunks: u64,
    /// Chunks some manifest references.
    pub referenced: u64,
    /// Unreferenced chunks deleted.
    pub deleted: u64,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// Unreferenced chunks kept because they are younger than the grace period.
    pub kept_young: u64,
}

/// Reads every manifest of the store: (name, manifest).
async fn manifests(store: &ChunkStore) -> Result<Vec<(String, Manifest, Vec<Option<Hash>>)>> {
    let mut out = Vec::new();
    for l in store.list("snapshots").await? {
        let Some(name) = l
            .rel
            .strip_prefix("snapshots/")
            .and_then(|r| r.strip_suffix("/manifest.json"))
        else {
            continue;
        };
        let (m, chunks) = store.get_manifest(&l.rel).await?;
        out.push((name.to_string(), m, chunks));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The snapshots in the store at `root` (by name).
pub fn list(root: &str) -> Result<Vec<SnapshotInfo>> {
    let store = ChunkStore::new(StoreUrl::parse(root)?);
    let rt = super::runtime("kvmpager-ls", 1)?;
    let ms = rt.block_on(manifests(&store))?;
    Ok(ms
        .into_iter()
        .map(|(name, m, chunks)| SnapshotInfo {
            name,
            created_unix_ms: m.created_unix_ms,
            ram_size: m.ram_size,
            data_bytes: m.data_bytes,
            chunks: chunks.iter().flatten().count() as u64,
            working_set_pages: m.working_set.len() as u64,
            vcpus: m.vcpus,
        })
        .collect())
}

/// Deletes the chunks of the store at `root` that no manifest references and that are older
/// than `grace`; with `dry_run` only counts them.
pub fn gc(root: &str, grace: Duration, dry_run: bool) -> Result<GcStats> {
    let store = ChunkStore::new(StoreUrl::parse(root)?);
    let rt = super::runtime("kvmpager-gc", 2)?;
    rt.block_on(gc_store(&store, grace, dry_run))
}

/// [`gc`] on a chunk store.
pub async fn gc_store(store: &ChunkStore, grace: Duration, dry_run: bool) -> Result<GcStats> {
    let ms = manifests(store).await?;
    let referenced: HashSet<Hash> = ms
        .iter()
        .flat_map(|(_, _, c)| c.iter().flatten())
        .copied()
        .collect();
    let mut stats = GcStats {
        snapshots: ms.len() as u64,
        referenced: referenced.len() as u64,
        ..Default::default()
    };
    let cutoff = SystemTime::now() - grace;
    for l in store.list("chunks").await? {
        stats.chunks += 1;
        let h = l.rel.strip_prefix("chunks/").and_then(Hash::parse);
        if h.is_some_and(|h| referenced.contains(&h)) {
            continue;
        }
        if l.modified > cutoff {
            stats.kept_young += 1;
            continue;
        }
        if !dry_run {
            store.delete(&l.rel).await?;
        }
        stats.deleted += 1;
        stats.deleted_bytes += l.size;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn gc_keeps_referenced_and_young_chunks() {
        let rt = crate::store::runtime("t", 1).unwrap();
        let root = StoreUrl::with_store("mem://", Arc::new(object_store::memory::InMemory::new()));
        let store = ChunkStore::new(root);
        let m = crate::store::manifest::tests::sample(16);
        let (_, chunks) = Manifest::decode(&m.encode()).unwrap();
        rt.block_on(async {
            store
                .put("snapshots/t/manifest.json", m.encode().into())
                .await
                .unwrap();
            for h in chunks.iter().flatten() {
                store
                    .put(&ChunkStore::chunk_rel(h), vec![1u8].into())
                    .await
                    .unwrap();
            }
            let orphan = Hash::of(b"orphan");
            store
                .put(&ChunkStore::chunk_rel(&orphan), vec![2u8].into())
                .await
                .unwrap();
            let young = gc_store(&store, Duration::from_secs(3600), false)
                .await
                .unwrap();
            assert_eq!((young.deleted, young.kept_young), (0, 1));
            let s = gc_store(&store, Duration::ZERO, false).await.unwrap();
            assert_eq!((s.snapshots, s.referenced, s.deleted), (1, 10, 1));
            assert_eq!(store.list("chunks").await.unwrap().len(), 10);
        });
    }
}
