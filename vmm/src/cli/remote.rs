//! The snapshot-URL parts of the command line: `restore URL` options (cache, prefetch
//! concurrency) and `snapshot ls|gc URL`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand};
use kvmpager_vmm::store;

/// Options of `restore` that only snapshot URLs use.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// With a snapshot URL: the local chunk cache directory (default
    /// $XDG_CACHE_HOME/kvmpager/chunks, else ~/.cache/kvmpager/chunks).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// With a snapshot URL: most bytes the chunk cache may hold (least recently used chunks
    /// are evicted; K/M/G suffixes).
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = super::parse_size_arg)]
    pub cache_size: u64,
    /// With a snapshot URL and --prefetch: chunk fetches kept in flight.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub prefetch_concurrency: usize,
}

impl RemoteArgs {
    /// The library's options.
    pub fn options(&self, prefetch: bool) -> kvmpager_vmm::RemoteOptions {
        kvmpager_vmm::RemoteOptions {
            cache_dir: self
                .cache_dir
                .clone()
                .unwrap_or_else(store::default_cache_dir),
            cache_bytes: self.cache_size,
            prefetch,
            prefetch_concurrency: self.prefetch_concurrency,
        }
    }
}

/// `kvmpager snapshot ls|gc`.
#[derive(Debug, Subcommand)]
pub enum SnapshotAction {
    /// List the snapshots in a store (`file://`, `http(s)://`, `s3://` root URL).
    Ls {
        /// The store's root URL.
        url: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Copy a snapshot: directory or URL to directory or URL (push a local snapshot to a
    /// store, pull one into the directory format, or move it between stores).
    Copy {
        /// The snapshot to read (directory or snapshot URL).
        src: String,
        /// Where to write it (directory or snapshot URL).
        dst: String,
        #[command(flatten)]
        cache: RemoteArgs,
    },
    /// Delete the chunks no snapshot of a store references.
    Gc {
        /// The store's root URL.
        url: String,
        /// Keep unreferenced chunks younger than this many seconds (a snapshot being written
        /// uploads its chunks before its manifest).
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        grace: u64,
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `snapshot ls|gc`.
pub fn snapshot_action(a: &SnapshotAction) -> Result<i32, String> {
    match a {
        SnapshotAction::Ls { url, json } => {
            let list = store::list(url).map_err(|e| e.to_string())?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(0);
            }
            println!(
                "{:<24} {:>10} {:>10} {:>7} {:>8}  created",
                "NAME", "RAM", "DATA", "CHUNKS", "WS-PAGES"
            );
            for s in &list {
                let created = UNIX_EPOCH + Duration::from_millis(s.created_unix_ms);
                let age = created.elapsed().map_or(0, |d| d.as_secs());
                println!(
                    "{:<24} {:>9}M {:>9.1}M {:>7} {:>8}  {}s ago",
                    s.name,
                    s.ram_size >> 20,
                    s.data_bytes as f64 / (1 << 20) as f64,
                    s.chunks,
                    s.working_set_pages,
                    age
                );
            }
            Ok(0)
        }
        SnapshotAction::Copy { src, dst, cache } => {
            let o = cache.options(false);
            let w = store::copy(src, dst, &o.cache_dir, o.cache_bytes)?;
            eprintln!(
                "kvmpager: copied {src} to {} ({:.1} MiB of RAM data)",
                w.dir.display(),
                w.ram_data_bytes as f64 / (1 << 20) as f64
            );
            if let Some(u) = &w.upload {
                eprintln!(
                    "upload: {} new chunks, {} already stored, {} zero",
                    u.new_chunks, u.reused_chunks, u.zero_chunks
                );
            }
            Ok(0)
        }
        SnapshotAction::Gc {
            url,
            grace,
            dry_run,
            json,
        } => {
            let s =
                store::gc(url, Duration::from_secs(*grace), *dry_run).map_err(|e| e.to_string())?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                let verb = if *dry_run { "would delete" } else { "deleted" };
                println!(
                    "{} snapshots reference {} of {} chunks; {verb} {} unreferenced chunks ({:.1} MiB); kept {} younger than {grace} s",
                    s.snapshots,
                    s.referenced,
                    s.chunks,
                    s.deleted,
                    s.deleted_bytes as f64 / (1 << 20) as f64,
                    s.kept_young
                );
            }
            Ok(0)
        }
    }
}
