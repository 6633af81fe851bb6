//! Snapshots in object storage: content-addressed RAM chunks plus a manifest, written from a
//! paused VM and restored lazily, on any machine, through a bounded local chunk cache.
//!
//! A snapshot *URL* names a store and a snapshot in it: its last path segment is the snapshot
//! name, the rest is the store root (`s3://bucket/vms/web1` is snapshot `web1` of store
//! `s3://bucket/vms`). Forms: `file:///abs/dir/NAME`, `http(s)://host[:port]/path/NAME`
//! (WebDAV: GET with ranges, PUT, DELETE, PROPFIND), `s3://bucket[/prefix]/NAME` (endpoint,
//! region and credentials from `AWS_*` environment variables; cargo feature `s3`). Layout
//! under the store root:
//!
//! ```text
//! ROOT/chunks/<blake3-hex>               one RAM chunk (CHUNK_SIZE bytes; the last chunk of
//!                                        RAM may be shorter), named by the BLAKE3 of its bytes
//! ROOT/snapshots/<name>/manifest.json    the manifest (`manifest::Manifest`), written last
//! ```
//!
//! All-zero chunks are not stored. Chunks go up first (skipping those already in the store:
//! dedupe), the manifest last, so a snapshot is visible only once complete.
//!
//! Submodules: `url` (URL → object_store), `chunks` (the chunk-store interface over an
//! `ObjectStore`), `manifest` (the wire type), `cache` (the local LRU chunk cache), `fetch`
//! (the fetcher: its own tokio runtime, single-flight, demand-before-prefetch, retries,
//! verification), `source` (the host pager's [`ChunkSource`]), `write` (the uploader), `copy`
//! (between directories and URLs) and `admin` (`ls`, `gc`).

use std::path::PathBuf;

mod admin;
mod cache;
mod chunks;
mod copy;
mod fetch;
pub mod manifest;
mod source;
mod url;
mod write;

pub use admin::{GcStats, SnapshotInfo, gc, gc_store, list};
pub use cache::{ChunkCache, default_cache_dir};
pub use chunks::{ChunkStore, Hash};
pub use copy::copy;
pub use fetch::{Cancel, FetchStats, Fetcher, FetcherConfig};
pub use manifest::Manifest;
pub use source::{ChunkSource, RemoteSnapshot, SourceUsers, open_snapshot, root_key};
pub use url::{SnapshotUrl, StoreUrl, is_url, runtime};
pub use write::{UploadStats, ram_blake3, write_snapshot};

/// Bytes per chunk: 512 KiB, aligned to guest-physical offsets.
pub const CHUNK_SIZE: u64 = 512 << 10;

/// Errors of the object-store snapshot path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be used.
    #[error("invalid snapshot URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A store request failed (after retries).
    #[error("{url}: {error}")]
    Store {
        /// The object's URL.
        url: String,
        /// The error.
        error: Box<object_store::Error>,
    },
    /// A fetched chunk's bytes do not hash to its name.
    #[error("chunk {hash} from {url} is corrupt: {reason} (ZX_ERR_IO_DATA_INTEGRITY)")]
    Integrity {
        /// The chunk's name.
        hash: String,
        /// Where it came from.
        url: String,
        /// What was wrong (hash or length).
        reason: String,
    },
    /// The manifest or a listing is not valid.
    #[error("invalid snapshot {url}: {reason}")]
    Invalid {
        /// The manifest's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file (the cache) failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A chunk did not arrive in time.
    #[error("chunk {hash} from {url}: no answer within {secs} s")]
    Timeout {
        /// The chunk.
        hash: String,
        /// Where it was asked for.
        url: String,
        /// The wait.
        secs: u64,
    },
    /// A failure shared by every request that waited for the same fetch.
    #[error("{0}")]
    Shared(String),
    /// The fetcher's runtime could not be started or is gone.
    #[error("chunk fetcher: {0}")]
    Runtime(String),
}

impl Error {
    /// Whether this is a data-integrity failure (bytes that do not match their hash).
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Integrity { .. })
    }
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, Error>;
