//! The chunk-store interface: the few object operations snapshots need (put-if-absent, ranged
//! get, list, delete), over any `ObjectStore`, with errors that name the object's URL.

use std::fmt;
use std::time::SystemTime;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::manifest::{Chunks, Manifest};
use super::{Error, Result, StoreUrl};

/// A chunk's name: the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(hex: &str) -> Option<Hash> {
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Hash(*h.as_bytes()))
    }

    /// 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.hex())
    }
}

/// An object in a listing.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Path relative to the store root.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modified.
    pub modified: SystemTime,
}

/// The store operations snapshots use; every error names the object's URL.
#[derive(Clone, Debug)]
pub struct ChunkStore {
    root: StoreUrl,
}

impl ChunkStore {
    /// The chunk store at `root`.
    pub fn new(root: StoreUrl) -> ChunkStore {
        ChunkStore { root }
    }

    /// The store root.
    pub fn root(&self) -> &StoreUrl {
        &self.root
    }

    /// `chunks/<hex>`.
    pub fn chunk_rel(hash: &Hash) -> String {
        format!("chunks/{hash}")
    }

    /// The URL of chunk `hash`.
    pub fn chunk_url(&self, hash: &Hash) -> String {
        self.root.url_of(&Self::chunk_rel(hash))
    }

    fn err(&self, rel: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
        let url = self.root.url_of(rel);
        move |e| Error::Store {
            url,
            error: Box::new(e),
        }
    }

    fn store(&self) -> &dyn ObjectStore {
        self.root.store.as_ref()
    }

    /// Whether the store has chunk `hash`, `len` bytes long.
    pub async fn has(&self, hash: &Hash, len: u64) -> Result<bool> {
        let rel = Self::chunk_rel(hash);
        match self.store().head(&self.root.path(&rel)).await {
            Ok(m) => Ok(m.size == len),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(&rel)(e)),
        }
    }

    /// Stores chunk `hash` unless the store has it; `true` if it was uploaded.
    pub async fn put_if_absent(&self, hash: &Hash, bytes: bytes::Bytes) -> Result<bool> {
        let rel = Self::chunk_rel(hash);
        let path = self.root.path(&rel);
        match self.store().head(&path).await {
            Ok(m) if m.size == bytes.len() as u64 => return Ok(false),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err(&rel)(e)),
        }
        self.put(&rel, bytes).await?;
        Ok(true)
    }

    /// Writes `rel`.
    pub async fn put(&self, rel: &str, bytes: bytes::Bytes) -> Result<()> {
        let path = self.root.path(rel);
        self.store()
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(self.err(rel))?;
        Ok(())
    }

    /// Reads bytes `range` of `rel`.
    pub async fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<bytes::Bytes> {
        let path = self.root.path(rel);
        self.store()
            .get_range(&path, range)
            .await
            .map_err(self.err(rel))
    }

    /// Reads all of `rel`.
    pub async fn get(&self, rel: &str) -> Result<bytes::Bytes> {
        let path = self.root.path(rel);
        let r = self.store().get(&path).await.map_err(self.err(rel))?;
        r.bytes().await.map_err(self.err(rel))
    }

    /// The manifest at `rel`, read and validated; one that does not decode is
    /// [`Error::Invalid`] naming its URL.
    pub async fn get_manifest(&self, rel: &str) -> Result<(Manifest, Chunks)> {
        let text = self.get(rel).await?;
        Manifest::decode(&text).map_err(|reason| Error::Invalid {
            url: self.root.url_of(rel),
            reason,
        })
    }

    /// Every object under `rel` (relative paths), recursively. Walks one level at a time
    /// (WebDAV servers such as nginx refuse `Depth: infinity`).
    pub async fn list(&self, rel: &str) -> Result<Vec<Listed>> {
        let prefix_len = self.root.prefix.as_ref().len();
        let mut out = Vec::new();
        let mut dirs = vec![self.root.path(rel)];
        while let Some(dir) = dirs.pop() {
            let r = match self.store().list_with_delimiter(Some(&dir)).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.err(rel)(e)),
            };
            dirs.extend(r.common_prefixes.into_iter().filter(|p| *p != dir));
            out.extend(r.objects.into_iter().map(|m| {
                Listed {
                    rel: m.location.as_ref()[prefix_len..]
                        .trim_start_matches('/')
                        .to_string(),
                    size: m.size,
                    modified: m.last_modified.into(),
                }
            }));
        }
        Ok(out)
    }

    /// Deletes `rel`.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        let path = self.root.path(rel);
        match self.store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(rel)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = Hash::of(b"abc");
        assert_eq!(Hash::parse(&h.hex()), Some(h));
        assert_eq!(Hash::parse(&h.hex().to_uppercase()), None);
        assert_eq!(Hash::parse("00"), None);
    }

    #[test]
    fn put_if_absent_uploads_once_and_lists() {
        let rt = crate::store::runtime("t", 1).unwrap();
        let root = StoreUrl::with_store("mem://", Arc::new(object_store::memory::InMemory::new()));
        let s = ChunkStore::new(root);
        let b = bytes::Bytes::from_static(b"hello");
        let h = Hash::of(&b);
        rt.block_on(async {
            assert!(s.put_if_absent(&h, b.clone()).await.unwrap());
            assert!(!s.put_if_absent(&h, b.clone()).await.unwrap());
            assert_eq!(
                &s.get_range(&ChunkStore::chunk_rel(&h), 1..3).await.unwrap()[..],
                b"el"
            );
            let l = s.list("chunks").await.unwrap();
            assert_eq!(l.len(), 1);
            assert_eq!(l[0].rel, ChunkStore::chunk_rel(&h));
            s.delete(&l[0].rel).await.unwrap();
            assert!(s.list("chunks").await.unwrap().is_empty());
        });
    }
}
