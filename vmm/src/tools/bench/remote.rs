//! Case 6: snapshots in object storage, against nginx (WebDAV) on loopback started by the
//! bench ([`crate::tools::servers::Nginx`]).
//!
//! The `pattern` guest writes `restore_size` bytes and snapshots into a directory; a local
//! restore records its working set; the snapshot is copied to nginx. Then, per repetition:
//! - baseline: the local-directory restore with the working set prefetched;
//! - cold: the URL restore with an empty chunk cache, working set prefetched (16 in flight);
//! - warm: the same again with the cache from the cold run (it must fetch nothing).
//!
//! Clock: host, from the restore call to the VM's stop (`time_to_stop_ns`; the guest exits
//! right after its last touch: verifying the pattern). Cache files still being written then
//! are not counted; the restore returns once they are in. Also: the network floor (the same
//! chunks fetched alone, 16 in flight); 256 chunks prefetched through 20 ms of injected
//! latency per request (object_store's `ThrottledStore` over the HTTP store), 16 in flight vs
//! 1; dedupe of a second snapshot of the same guest after it ran a little (new chunks / stored
//! chunks); the chunk cache's size after a restore through a cache bounded below the data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::throttle::{ThrottleConfig, ThrottledStore};

use super::{Figure, Options, Report, Target, median, size_name};
use crate::config::{SnapshotConfig, SnapshotThen, VmConfig};
use crate::store::{self, ChunkCache, ChunkStore, Fetcher, FetcherConfig, Hash, StoreUrl};
use crate::tools::{demo, servers::Nginx};
use crate::{RemoteOptions, RunResult, StopReason, guests, snapshot};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pattern_config(dir: &Path, mib: u64, rounds: u64, target: &str) -> Result<VmConfig, String> {
    let params = dir.join(format!("params-{rounds}.img"));
    demo::write_pattern_params(&params, mib, 0x5eed, rounds).map_err(|e| e.to_string())?;
    let mut c = VmConfig::new(guests::PATTERN.elf.to_vec());
    c.memory = ((demo::PATTERN_GPA >> 20) + mib + 16).next_power_of_two() << 20;
    c.memory = c.memory.max(128 << 20);
    c.vcpus = 1;
    c.image = Some(params);
    c.timeout = Some(Duration::from_secs(120));
    c.snapshot = Some(SnapshotConfig {
        dir: target.into(),
        then: SnapshotThen::Stop,
    });
    Ok(c)
}

fn restore_config() -> VmConfig {
    let mut c = VmConfig::new(Vec::new());
    c.timeout = Some(Duration::from_secs(120));
    c
}

fn check(what: &str, r: &RunResult, want: &StopReason) -> Result<(), String> {
    if &r.stop == want {
        Ok(())
    } else {
        Err(format!("{what}: {} ({})", r.stop, r.console_text()))
    }
}

/// Runs case 6.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("kvmpager-bench6-{}", std::process::id())));
    let dir = &scratch.0;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let nginx = Nginx::start(&dir.join("nginx"))?;
    let mib = (opts.restore_size >> 20).max(1);
    let local = dir.join("snap");
    let r = crate::run(&pattern_config(dir, mib, 1, &local.display().to_string())?)
        .map_err(|e| e.to_string())?;
    check(
        "snapshot",
        &r,
        &StopReason::Snapshotted(local.display().to_string()),
    )?;
    let ws = local.join(snapshot::WORKING_SET_FILE);
    let mut rc = restore_config();
    rc.record = Some(ws.clone());
    let r = crate::restore(&local, &rc).map_err(|e| e.to_string())?;
    check("recording restore", &r, &StopReason::Exit(0))?;
    let url = nginx.url("bench/s1");
    let cache_root = dir.join("caches");
    store::copy(
        &local.display().to_string(),
        &url,
        &cache_root.join("copy"),
        1 << 30,
    )?;
    restore_rows(opts, report, &local, &url, &cache_root)?;
    latency_row(opts, report, &nginx)?;
    dedupe_row(report, dir, mib, &nginx)?;
    cache_bound_row(report, &url, &cache_root, mib)
}

fn remote_opts(cache: &Path, bytes: u64) -> RemoteOptions {
    RemoteOptions {
        cache_dir: cache.to_path_buf(),
        cache_bytes: bytes,
        prefetch: true,
        prefetch_concurrency: 16,
    }
}

/// Local, cold and warm restores, `reps` each; the median of each.
fn restore_rows(
    opts: &Options,
    report: &mut Report,
    local: &Path,
    url: &str,
    caches: &Path,
) -> Result<(), String> {
    let (mut t_local, mut t_cold, mut t_warm) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cold_fetched, mut warm_fetched, mut cold_bytes) = (0, 0, 0);
    let mut lc = restore_config();
    lc.prefetch = Some(local.join(snapshot::WORKING_SET_FILE));
    // An untimed restore first: the process's first VM pays one-time costs.
    crate::restore(local, &lc).map_err(|e| e.to_string())?;
    let reps = opts.reps.max(3);
    for rep in 0..reps {
        let r = crate::restore(local, &lc).map_err(|e| e.to_string())?;
        check("local restore", &r, &StopReason::Exit(0))?;
        t_local.push(r.stats.time_to_stop_ns as f64);
        let cache = caches.join(format!("rep{rep}"));
        for warm in [false, true] {
            let r = crate::restore_url(url, &restore_config(), &remote_opts(&cache, 4 << 30))
                .map_err(|e| e.to_string())?;
            check("URL restore", &r, &StopReason::Exit(0))?;
            let t = r.stats.time_to_stop_ns as f64;
            let s = r.stats.remote.unwrap_or_default();
            if warm {
                t_warm.push(t);
                warm_fetched += s.chunks_fetched;
            } else {
                t_cold.push(t);
                cold_fetched = s.chunks_fetched;
                cold_bytes = s.bytes_fetched;
            }
        }
    }
    let base = median(&mut t_local);
    let floor = http_floor(url, reps)?;
    let view = format!(
        "host clock, restore call -> the VM's stop (`time_to_stop_ns`: the guest exits after its \
         last touch; cache files may still be going in); median of {reps}, interleaved"
    );
    report.push(
        Figure::new(
            6,
            "restore from nginx, cold cache, working set prefetched",
            "ns",
        )
        .value(median(&mut t_cold))
        .baseline("local directory restore, working set prefetched", base)
        .target(Target::AtMost(1.5))
        .view(view.clone())
        .note(format!(
            "{cold_fetched} chunks ({}) fetched, 16 in flight",
            size_name(cold_bytes)
        )),
    );
    report.push(
        Figure::new(6, "restore from nginx, warm cache", "ns")
            .value(median(&mut t_warm))
            .baseline("local directory restore, working set prefetched", base)
            .target(Target::AtMost(1.1))
            .view(view)
            .note(format!(
                "chunks fetched by warm restores: {warm_fetched} (must be 0)"
            )),
    );
    report.push(
        Figure::new(6, "GET of the same chunks alone, 16 in flight", "ns")
            .value(floor)
            .baseline("local directory restore, working set prefetched", base)
            .view(format!(
                "host clock, first request -> last body received; median of {reps}; no \
                 verification, cache, supply or guest: the network floor of the cold row"
            )),
    );
    if warm_fetched > 0 {
        return Err(format!("warm restores fetched {warm_fetched} chunks"));
    }
    Ok(())
}

/// The network floor of a cold restore: every chunk of the snapshot at `url` fetched into
/// memory, 16 in flight, and nothing else (median of `reps` runs).
fn http_floor(url: &str, reps: usize) -> Result<f64, String> {
    use futures::StreamExt;
    let url = store::SnapshotUrl::parse(url).map_err(|e| e.to_string())?;
    let cs = ChunkStore::new(url.store.clone());
    // Two threads, as the fetcher's runtime has.
    let rt = store::runtime("bench-floor", 2).map_err(|e| e.to_string())?;
    let (_, chunks) = rt
        .block_on(cs.get_manifest(&url.manifest_rel()))
        .map_err(|e| e.to_string())?;
    let chunks: Vec<Hash> = chunks.into_iter().flatten().collect();
    let mut times = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let got: Result<u64, String> = rt.block_on(
            futures::stream::iter(chunks.iter().map(|h| {
                let cs = cs.clone();
                let rel = ChunkStore::chunk_rel(h);
                async move { cs.get(&rel).await.map(|b| b.len() as u64) }
            }))
            .buffer_unordered(16)
            .fold(Ok(0), |acc: Result<u64, String>, r| async move {
                Ok(acc? + r.map_err(|e| e.to_string())?)
            }),
        );
        got?;
        times.push(t0.elapsed().as_nanos() as f64);
    }
    Ok(median(&mut times))
}

/// 256 chunks through 20 ms per request: 16 in flight vs 1.
fn latency_row(opts: &Options, report: &mut Report, nginx: &Nginx) -> Result<(), String> {
    let chunk = if opts.restore_size >= 64 << 20 {
        512 << 10
    } else {
        64 << 10
    };
    let base = StoreUrl::parse(&nginx.url("latency")).map_err(|e| e.to_string())?;
    let plain = ChunkStore::new(base.clone());
    let rt = store::runtime("bench-upload", 2).map_err(|e| e.to_string())?;
    let chunks: Vec<(Hash, u64)> = (0..256u32)
        .map(|i| {
            let b: Vec<u8> = (0..chunk)
                .map(|j| (j as u32 ^ i.wrapping_mul(2654435761)) as u8)
                .collect();
            let h = Hash::of(&b);
            rt.block_on(plain.put_if_absent(&h, b.into()))
                .map(|_| (h, chunk as u64))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let throttled = ThrottledStore::new(
        base.store.clone(),
        ThrottleConfig {
            wait_get_per_call: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let slow = StoreUrl {
        store: Arc::new(throttled),
        ..base
    };
    let mut times = Vec::new();
    for n in [16, 1] {
        let cache =
            std::env::temp_dir().join(format!("kvmpager-bench6-lat-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let c = ChunkCache::open(&cache, 1 << 30).map_err(|e| e.to_string())?;
        let cfg = FetcherConfig {
            prefetch_concurrency: n,
            ..Default::default()
        };
        let f = Fetcher::new(ChunkStore::new(slow.clone()), c, cfg).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        f.prefetch_blocking(chunks.clone());
        times.push(t0.elapsed().as_nanos() as f64);
        let got = f.stats().prefetched_chunks;
        let _ = std::fs::remove_dir_all(&cache);
        if got != 256 {
            return Err(format!("latency prefetch fetched {got} of 256 chunks"));
        }
    }
    report.push(
        Figure::new(
            6,
            "prefetch 256 chunks at 20 ms/request, 16 in flight",
            "ns",
        )
        .value(times[0])
        .baseline("one at a time", times[1])
        .target(Target::AtMost(0.1))
        .view("host clock, first request -> last chunk verified and cached")
        .note(format!(
            "{} chunks from nginx; latency injected with ThrottledStore",
            size_name(chunk as u64)
        )),
    );
    Ok(())
}

/// A second snapshot of the same guest after it ran a little: new chunks / stored chunks.
fn dedupe_row(report: &mut Report, dir: &Path, mib: u64, nginx: &Nginx) -> Result<(), String> {
    let (u1, u2) = (nginx.url("dedupe/r1"), nginx.url("dedupe/r2"));
    let r = crate::run(&pattern_config(dir, mib, 2, &u1)?).map_err(|e| e.to_string())?;
    check("first snapshot", &r, &StopReason::Snapshotted(u1.clone()))?;
    let mut rc = restore_config();
    rc.snapshot = Some(SnapshotConfig {
        dir: u2.clone().into(),
        then: SnapshotThen::Stop,
    });
    let cache = dir.join("caches/dedupe");
    let mut o = remote_opts(&cache, 1 << 30);
    o.prefetch = false;
    let r = crate::restore_url(&u1, &rc, &o).map_err(|e| e.to_string())?;
    check("second snapshot", &r, &StopReason::Snapshotted(u2))?;
    let up = r
        .snapshots
        .first()
        .and_then(|w| w.upload.clone())
        .ok_or("the second snapshot reported no upload")?;
    let stored = (up.new_chunks + up.reused_chunks) as f64;
    report.push(
        Figure::new(6, "dedupe: new chunks in a second snapshot", "chunks")
            .value(up.new_chunks as f64)
            .baseline("non-zero chunks in it", stored)
            .target(Target::AtMost(0.1))
            .view("chunk counts (512 KiB chunks)")
            .note(format!(
                "{:.1} % new; {} reused, {} zero",
                up.new_percent(),
                up.reused_chunks,
                up.zero_chunks
            )),
    );
    Ok(())
}

/// A cold restore through a cache bounded to a quarter of the data: the cache's size after.
fn cache_bound_row(report: &mut Report, url: &str, caches: &Path, mib: u64) -> Result<(), String> {
    let bound = ((mib << 20) / 4).max(1 << 20);
    let cache = caches.join("bounded");
    let r = crate::restore_url(url, &restore_config(), &remote_opts(&cache, bound))
        .map_err(|e| e.to_string())?;
    check("bounded-cache restore", &r, &StopReason::Exit(0))?;
    let used: u64 = std::fs::read_dir(&cache)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    report.push(
        Figure::new(6, "chunk cache size after a restore", "bytes")
            .value(used as f64)
            .baseline("its bound", bound as f64)
            .target(Target::AtMost(1.0))
            .view("bytes of files in the cache directory")
            .note(format!("data {} MiB; LRU eviction", mib)),
    );
    Ok(())
}
