//! Snapshots in object storage, end to end, against real servers (nginx WebDAV, moto S3)
//! started by the tests on free loopback ports: one `kvmpager` process snapshots, another
//! restores with an empty chunk cache, and the guest's RAM hash (BLAKE3 over all RAM when it
//! exits) matches the local-directory restore of the same snapshot. Faults come from a proxy
//! in front of the real nginx: 500s, dropped connections, corrupt and truncated chunks, a
//! missing chunk, a server that stops or stalls mid-restore.

mod microvm_util;
mod remote_util;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use microvm_util::*;
use remote_util::*;
use serde_json::Value;

fn fetched(v: &Value) -> u64 {
    v["stats"]["remote"]["chunks_fetched"].as_u64().unwrap()
}

fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).sum())
        .unwrap_or(0)
}

#[test]
fn http_restore_in_another_process_is_byte_identical_and_a_warm_cache_fetches_nothing() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("remote-http");
    let url = f.nginx.url("store/s1");
    let cache = f.dir.join("cache");
    let cold = restore_ok(&url, &cache, &[], &[]);
    assert_eq!(cold["ram_blake3"].as_str().unwrap(), f.reference);
    assert!(fetched(&cold) > 0);
    assert_eq!(cold["stats"]["remote"]["failures"], 0);
    // Warm: everything the guest touches is cached; not one GET.
    let warm = restore_ok(&url, &cache, &[], &[]);
    assert_eq!(warm["ram_blake3"].as_str().unwrap(), f.reference);
    assert_eq!(fetched(&warm), 0, "{}", warm["stats"]["remote"]);
    // Prefetching the manifest's working set, cold: same bytes, the prefetch did the fetching.
    let pre = restore_ok(&url, &f.dir.join("cache2"), &["--prefetch"], &[]);
    assert_eq!(pre["ram_blake3"].as_str().unwrap(), f.reference);
    assert!(
        pre["stats"]["remote"]["prefetched_chunks"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(pre["stats"]["pages_prefetched"].as_u64().unwrap() > 0);
    // A 2 MiB cache (4 chunks) never holds more, and the bytes are still right.
    let small = f.dir.join("cache3");
    let s = restore_ok(&url, &small, &["--cache-size", "2M"], &[]);
    assert_eq!(s["ram_blake3"].as_str().unwrap(), f.reference);
    assert!(du(&small) <= 2 << 20, "{} bytes cached", du(&small));
    // And pulled back into a directory, the snapshot restores as the original did.
    let back = f.dir.join("back").display().to_string();
    let out = kvmpager(
        &[
            "snapshot",
            "copy",
            &url,
            &back,
            "--cache-dir",
            f.dir.join("cache4").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let b = restore_ok(&back, &cache, &[], &[]);
    assert_eq!(b["ram_blake3"].as_str().unwrap(), f.reference);
    let _ = &f.local;
}

#[test]
fn run_snapshots_to_a_url_and_a_second_snapshot_mostly_dedupes() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("remote-dedupe");
    let nginx = Nginx::start(&dir.join("nginx"));
    // Round 1 written by the Snapshot hypercall straight to the URL.
    let v = snapshot_pattern(dir.path(), &nginx.url("store/r1"), 2, &[]);
    let up = &v["uploads"][0];
    assert!(up["new_chunks"].as_u64().unwrap() >= MIB * 2, "{up}");
    assert_eq!(up["reused_chunks"], 0);
    assert!(up["zero_chunks"].as_u64().unwrap() > 0);
    // Restored in another process, the guest verifies and snapshots round 2 to a new name.
    let out = kvmpager(
        &[
            "restore",
            &nginx.url("store/r1"),
            "--cache-dir",
            dir.join("c").to_str().unwrap(),
            "--snapshot-dir",
            &nginx.url("store/r2"),
            "--timeout",
            "60",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let up = &v["uploads"][0];
    let (new, reused) = (
        up["new_chunks"].as_u64().unwrap(),
        up["reused_chunks"].as_u64().unwrap(),
    );
    let pct = 100.0 * new as f64 / (new + reused) as f64;
    eprintln!("dedupe: second snapshot {new} new / {reused} reused chunks = {pct:.1} % new");
    assert!(pct <= 10.0, "{up}");
    // The same VM snapshotted again unchanged uploads only a manifest, and fetches nothing:
    // untouched chunks are named by the hashes the manifest already has.
    let cc = dir.join("copy-cache");
    let out = kvmpager(
        &[
            "snapshot",
            "copy",
            &nginx.url("store/r2"),
            &nginx.url("store/r2b"),
            "--cache-dir",
            cc.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stderr(&out).contains("upload: 0 new chunks"),
        "{}",
        stderr(&out)
    );
    assert_eq!(du(&cc), 0, "the copy fetched chunks");
    // Round 2 restores in a third process and finishes.
    let r = restore_ok(&nginx.url("store/r2"), &dir.join("c2"), &[], &[]);
    assert_eq!(r["exit_code"], 0);
}

#[test]
fn ls_lists_snapshots_and_gc_deletes_only_old_unreferenced_chunks() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("remote-gc");
    let store = f.nginx.url("store");
    let out = kvmpager(
        &["snapshot", "copy", &f.local, &f.nginx.url("store/s2")],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let out = kvmpager(&["snapshot", "ls", &store, "--json"], &[]);
    let names: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    // Orphans: one old, one fresh (a snapshot still uploading).
    let chunks = f.nginx.root().join("store/chunks");
    let old = chunks.join("a".repeat(64));
    let young = chunks.join("b".repeat(64));
    std::fs::write(&old, b"x").unwrap();
    std::fs::write(&young, b"y").unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let before = std::fs::read_dir(&chunks).unwrap().count();
    let out = kvmpager(&["snapshot", "gc", &store, "--json"], &[]);
    let g = json(&out);
    assert_eq!(
        (g["deleted"].as_u64(), g["kept_young"].as_u64()),
        (Some(1), Some(1)),
        "{g}"
    );
    assert!(!old.exists() && young.exists());
    assert_eq!(std::fs::read_dir(&chunks).unwrap().count(), before - 1);
    // Both snapshots still restore, byte for byte.
    let r = restore_ok(&f.nginx.url("store/s2"), &f.dir.join("c"), &[], &[]);
    assert_eq!(r["ram_blake3"].as_str().unwrap(), f.reference);
}

#[test]
fn s3_snapshot_restores_in_another_process_with_sigv4() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("remote-s3");
    let moto = Moto::start("kvmpager");
    let env = moto.env();
    let local = dir.join("snap").display().to_string();
    snapshot_pattern(dir.path(), &local, 1, &[]);
    let reference = restore_ok(&local, &dir.join("c0"), &[], &[])["ram_blake3"].clone();
    let url = "s3://kvmpager/pre/fix/s1";
    let out = kvmpager(&["snapshot", "copy", &local, url], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = restore_ok(url, &dir.join("c1"), &["--prefetch"], &env);
    assert_eq!(v["ram_blake3"], reference);
    assert!(fetched(&v) > 0);
    // Straight from a run, too.
    snapshot_pattern(dir.path(), "s3://kvmpager/pre/run1", 1, &env);
    let out = kvmpager(&["snapshot", "ls", "s3://kvmpager/pre", "--json"], &env);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
    restore_ok("s3://kvmpager/pre/run1", &dir.join("c2"), &[], &env);
    // Without credentials the server says no, and kvmpager says so.
    let bad = vec![
        ("AWS_ENDPOINT_URL".to_string(), env[0].1.clone()),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
        ("AWS_ACCESS_KEY_ID".into(), "x".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "y".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ];
    let out = restore("s3://kvmpager/nope/s1", &dir.join("c3"), &[], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nope/snapshots/s1/manifest.json"),
        "{}",
        stderr(&out)
    );
}

/// Restores the fixture's snapshot through a proxy injecting `fault`, with an empty cache.
fn through(f: &Fixture, fault: Fault, extra: &[&str]) -> (Output, FaultProxy, Duration) {
    let proxy = FaultProxy::start(f.nginx.port, fault);
    let cache = f.dir.join(&format!("cache-{fault:?}"));
    let t0 = Instant::now();
    let out = restore(&proxy.url("store/s1"), &cache, extra, &[]);
    (out, proxy, t0.elapsed())
}

#[test]
fn recoverable_faults_are_retried_and_the_bytes_are_right() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("remote-retry");
    for fault in [Fault::Errors(3), Fault::Drops(3), Fault::Corrupt(2)] {
        let (out, proxy, _) = through(&f, fault, &[]);
        assert_eq!(out.status.code(), Some(0), "{fault:?}: {}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["ram_blake3"].as_str().unwrap(), f.reference, "{fault:?}");
        assert!(proxy.chunk_gets.load(std::sync::atomic::Ordering::SeqCst) > fetched(&v));
        if fault == Fault::Corrupt(2) {
            assert_eq!(v["stats"]["remote"]["integrity_errors"], 2);
        }
    }
}

/// The non-zero chunks' names, in RAM order.
fn chunk_names(f: &Fixture) -> Vec<String> {
    f.chunks().into_iter().flatten().collect()
}

fn assert_failed_naming_chunk(f: &Fixture, out: &Output, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(want), "{err}");
    assert!(err.contains("guest RAM page 0x"), "{err}");
    assert!(err.contains("store/s1"), "{err}");
    assert!(
        chunk_names(f).iter().any(|c| err.contains(c.as_str())),
        "{err}"
    );
    // Never wrong bytes: the guest did not get to say it verified anything.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("verified every byte"));
}

#[test]
fn unrecoverable_faults_fail_the_page_request_naming_chunk_page_and_url() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("remote-faults");
    let (out, _p, _) = through(&f, Fault::Corrupt(u64::MAX), &[]);
    assert_failed_naming_chunk(&f, &out, "ZX_ERR_IO_DATA_INTEGRITY");
    let (out, _p, _) = through(&f, Fault::Truncate, &[]);
    assert_failed_naming_chunk(&f, &out, "chunk");
    // The prefetch path fails the same way, before the guest starts.
    let (out, _p, _) = through(&f, Fault::Corrupt(u64::MAX), &["--prefetch"]);
    assert_failed_naming_chunk(&f, &out, "ZX_ERR_IO_DATA_INTEGRITY");
    // The server stops mid-restore: retries, then a clear failure in bounded time.
    let (out, p, t) = through(&f, Fault::StopAfter(4), &[]);
    assert!(p.chunk_gets.load(std::sync::atomic::Ordering::SeqCst) > 4);
    assert_failed_naming_chunk(&f, &out, "chunk");
    assert!(t < Duration::from_secs(40), "{t:?}");
    // A server that never answers: --fault-timeout stops the VM.
    let (out, _p, t) = through(&f, Fault::Stall, &["--fault-timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unanswered") || stderr(&out).contains("timeout"),
        "{}",
        stderr(&out)
    );
    assert!(t < Duration::from_secs(15), "{t:?}");
}

#[test]
fn a_manifest_missing_a_chunk_fails_naming_it() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("remote-missing");
    let names = chunk_names(&f);
    for c in &names {
        std::fs::remove_file(f.nginx.root().join("store/chunks").join(c)).unwrap();
    }
    let out = restore(&f.nginx.url("store/s1"), &f.dir.join("c"), &[], &[]);
    assert_failed_naming_chunk(&f, &out, "Not Found");
}

#[test]
fn sigusr1_snapshots_to_a_file_url_and_bad_urls_are_clear_errors() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("remote-signal");
    let url = format!("file://{}/store/spin", dir.path().display());
    let out = snapshot_spin_by_signal(&url, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["uploads"][0]["url"], url.as_str());
    assert!(dir.join("store/snapshots/spin/manifest.json").is_file());
    // The spinning guest resumes in another process (and times out).
    let cache = dir.join("cache");
    let c = cache.to_str().unwrap();
    let out = kvmpager(
        &[
            "restore",
            &url,
            "--cache-dir",
            c,
            "--timeout",
            "0.5",
            "--json",
        ],
        &[],
    );
    assert_eq!(json(&out)["stop"], "timed out", "{}", stderr(&out));
    // Snapshotted again from a restore: nothing new to upload.
    let url2 = format!("file://{}/store/spin2", dir.path().display());
    let c2 = dir.join("cache2");
    let out = snapshot_by_signal(&[
        "restore",
        &url,
        "--cache-dir",
        c2.to_str().unwrap(),
        "--timeout",
        "30",
        "--snapshot-dir",
        &url2,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let up = &v["uploads"][0];
    assert_eq!(up["new_chunks"], 0, "{up}");
    assert!(up["reused_chunks"].as_u64().unwrap() > 0, "{up}");
    // Bad URLs and snapshots: exit 1 with a clear message, before any guest runs.
    for (bad, want) in [
        (
            format!("file://{}/store/nope", dir.path().display()),
            "manifest.json",
        ),
        (
            "http://127.0.0.1:1/x/y".to_string(),
            "127.0.0.1:1/x/snapshots/y/manifest.json",
        ),
        ("ftp://h/x".to_string(), "unsupported scheme"),
        ("file://relative/x".to_string(), "absolute path"),
        ("http://h/".to_string(), "ROOT/NAME"),
    ] {
        let out = kvmpager(&["restore", &bad, "--cache-dir", c], &[]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(stderr(&out).contains(want), "{bad}: {}", stderr(&out));
    }
    let m = dir.join("store/snapshots/spin/manifest.json");
    let mut text = std::fs::read(&m).unwrap();
    let i = text.len() / 2;
    text[i] ^= 1;
    std::fs::write(&m, &text).unwrap();
    let out = kvmpager(&["restore", &url, "--cache-dir", c], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid snapshot"),
        "{}",
        stderr(&out)
    );
}
