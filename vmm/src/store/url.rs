//! Snapshot and store URLs: parsing, and building the `ObjectStore` behind them.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::{Error, Result};

/// Whether `s` is a URL (`SCHEME://...`), not a plain directory path. This module serves
/// `file://`, `http://`, `https://` and `s3://`; other schemes are refused by name.
pub fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
    })
}

/// A store root: where `chunks/` and `snapshots/` live.
#[derive(Clone, Debug)]
pub struct StoreUrl {
    /// The root URL as given (no trailing slash).
    pub url: String,
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The root's path inside `store`.
    pub prefix: ObjPath,
}

/// A snapshot: a store root and a name.
#[derive(Clone, Debug)]
pub struct SnapshotUrl {
    /// The store.
    pub store: StoreUrl,
    /// The snapshot's name (the URL's last segment).
    pub name: String,
}

fn bad(url: &str, reason: impl Into<String>) -> Error {
    Error::Url {
        url: url.into(),
        reason: reason.into(),
    }
}

/// Retries with backoff for requests that can recover (5xx, dropped connections, timeouts):
/// a few tries within 10 s, so a dead server fails a page request in bounded time.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 5,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Client options; `tls`: whether the store is reached over TLS. Plain-HTTP stores skip
/// loading the system's root certificates, which costs milliseconds per process.
fn client(tls: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(true)
        .with_no_system_certificates(!tls)
        .with_timeout(Duration::from_secs(20))
        .with_connect_timeout(Duration::from_secs(3))
}

impl StoreUrl {
    /// Parses a store root URL and builds its store (no request is made).
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let url = url.trim_end_matches('/').to_string();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(&url, "no scheme"))?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match scheme {
            "file" => (local(&url, rest)?, String::new()),
            "http" | "https" => {
                // The store is the origin and the URL's path the prefix: WebDAV listings
                // name objects by their full path.
                let path_at = rest.find('/').map_or(url.len(), |i| scheme.len() + 3 + i);
                let prefix = url[path_at..].trim_matches('/').to_string();
                (http(&url[..path_at])?, prefix)
            }
            "s3" => s3(&url, rest)?,
            other => return Err(bad(&url, format!("unsupported scheme {other:?}"))),
        };
        let prefix = ObjPath::parse(&prefix).map_err(|e| bad(&url, e.to_string()))?;
        Ok(StoreUrl { url, store, prefix })
    }

    /// A store over an existing `ObjectStore` (tests: in-memory, throttled stores).
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>) -> StoreUrl {
        StoreUrl {
            url: url.into(),
            store,
            prefix: ObjPath::default(),
        }
    }

    /// The path of `rel` (slash-separated) under the root.
    pub fn path(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .filter(|s| !s.is_empty())
            .fold(self.prefix.clone(), |p, s| p.clone().join(s))
    }

    /// The URL of `rel` under the root, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }
}

impl SnapshotUrl {
    /// Parses a snapshot URL: `ROOT/NAME`.
    pub fn parse(url: &str) -> Result<SnapshotUrl> {
        let trimmed = url.trim_end_matches('/');
        let (root, name) = trimmed
            .rsplit_once('/')
            .filter(|(root, _)| !root.ends_with('/') && root.contains("://"))
            .ok_or_else(|| {
                bad(
                    url,
                    "give ROOT/NAME: the last path segment names the snapshot",
                )
            })?;
        check_name(url, name)?;
        Ok(SnapshotUrl {
            store: StoreUrl::parse(root)?,
            name: name.into(),
        })
    }

    /// The manifest's path relative to the root.
    pub fn manifest_rel(&self) -> String {
        format!("snapshots/{}/manifest.json", self.name)
    }

    /// The snapshot URL as given.
    pub fn url(&self) -> String {
        format!("{}/{}", self.store.url, self.name)
    }
}

/// Snapshot names: 1..=128 of `[A-Za-z0-9._-]`, not starting with a dot.
fn check_name(url: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(
            url,
            format!("snapshot name {name:?} must be 1-128 of A-Z a-z 0-9 . _ - (no leading dot)"),
        ))
    }
}

fn local(url: &str, path: &str) -> Result<Arc<dyn ObjectStore>> {
    if !path.starts_with('/') {
        return Err(bad(
            url,
            "file:// URLs need an absolute path (file:///dir/NAME)",
        ));
    }
    std::fs::create_dir_all(path).map_err(|e| bad(url, format!("cannot create {path}: {e}")))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(path)
        .map_err(|e| bad(url, e.to_string()))?;
    Ok(Arc::new(fs))
}

fn http(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let s = object_store::http::HttpBuilder::new()
        .with_url(url)
        .with_retry(retry())
        .with_client_options(client(!url.starts_with("http://")))
        .build()
        .map_err(|e| bad(url, e.to_string()))?;
    Ok(Arc::new(s))
}

#[cfg(feature = "s3")]
fn s3(url: &str, rest: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad(url, "no bucket (s3://BUCKET/[PREFIX/]NAME)"));
    }
    // Path-style requests (the builder's default), so custom endpoints (moto, s3s, MinIO)
    // work without wildcard DNS.
    let b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry())
        .with_client_options(client(!s3_endpoint_is_plain_http()));
    let s = b.build().map_err(|e| bad(url, e.to_string()))?;
    Ok((Arc::new(s), prefix.to_string()))
}

/// Whether `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT` (the first set) names
/// a plain-HTTP endpoint.
#[cfg(feature = "s3")]
fn s3_endpoint_is_plain_http() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .is_some_and(|e| e.starts_with("http://"))
}

#[cfg(not(feature = "s3"))]
fn s3(url: &str, _rest: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    Err(bad(url, "this kvmpager was built without the `s3` feature"))
}

/// A tokio runtime of `threads` worker threads named `name` (the store's own: the pager and
/// vCPU threads never run on it, they wait on channels).
pub fn runtime(name: &str, threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_urls_split_into_root_and_name() {
        let s = SnapshotUrl::parse("http://127.0.0.1:1/a/b/web1/").unwrap();
        assert_eq!(s.name, "web1");
        assert_eq!(s.store.url, "http://127.0.0.1:1/a/b");
        assert_eq!(s.manifest_rel(), "snapshots/web1/manifest.json");
        assert!(SnapshotUrl::parse("http://").is_err());
        assert!(SnapshotUrl::parse("http://h/.x").is_err());
        assert!(SnapshotUrl::parse("ftp://h/x").is_err());
        assert!(is_url("s3://b/x") && !is_url("/tmp/x"));
    }

    #[test]
    fn paths_join_under_the_prefix() {
        let s = StoreUrl::with_store("memory://", Arc::new(object_store::memory::InMemory::new()));
        assert_eq!(s.path("chunks/ab").as_ref(), "chunks/ab");
    }
}
