//! Shared RAM and clones from a snapshot URL (`restore --share URL`, `--clones N URL`),
//! against a real nginx WebDAV server on a free loopback port: the pattern guest is
//! snapshotted, copied to nginx, and restored in new `kvmpager` processes, each test with a
//! private share directory (`KVMPAGER_SHARE_DIR` under /dev/shm). The root is filled once with
//! verified chunks and found filled by the next process; clones share one fetcher (one fetch
//! per chunk); every guest's RAM hash equals the local restore's. A chunk corrupted in the
//! store stops the VM naming it and never reaches the root. Assertions are counts and bytes.

mod microvm_util;
mod remote_util;

use std::path::PathBuf;

use kvmpager_vmm::tools::demo;
use microvm_util::*;
use remote_util::*;
use serde_json::Value;

/// Pattern size (MiB); guest RAM.
const RAM: u64 = 128 << 20;
const PAGE: usize = 4096;
const CHUNK: u64 = 512 << 10;

/// A share directory on tmpfs of this test alone, removed on drop.
struct ShareDir(PathBuf);

impl ShareDir {
    fn new(name: &str) -> ShareDir {
        let p = PathBuf::from(format!(
            "/dev/shm/kvmpager-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        ShareDir(p)
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("KVMPAGER_SHARE_DIR".into(), self.0.display().to_string())]
    }

    /// The root files in the directory.
    fn roots(&self) -> Vec<PathBuf> {
        let Ok(d) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        d.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "root"))
            .collect()
    }

    /// The one root file.
    fn root(&self) -> PathBuf {
        let r = self.roots();
        assert_eq!(r.len(), 1, "{r:?}");
        r[0].clone()
    }
}

impl Drop for ShareDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn distinct_chunks(f: &Fixture) -> u64 {
    let set: std::collections::HashSet<_> = f.chunks().into_iter().flatten().collect();
    set.len() as u64
}

#[test]
fn share_url_fills_the_root_once_and_other_processes_and_clones_find_it() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("shareurl-http");
    let url = f.nginx.url("store/s1");
    let share = ShareDir::new("shareurl-http");
    let env = share.env();
    // First VM: the root is filled from verified chunks, once.
    let first = restore_ok(&url, &f.dir.join("c1"), &["--share"], &env);
    assert_eq!(first["ram_blake3"].as_str().unwrap(), f.reference);
    let s = &first["stats"];
    assert_eq!(s["shared_ram"], true, "{s}");
    assert!(n(&s["root_fill_bytes"]) >= MIB << 20, "{s}");
    assert!(n(&s["remote"]["chunks_fetched"]) > 0, "{s}");
    let root = share.root();
    // Second process, empty chunk cache: the root holds every page; not one chunk fetched.
    let out = restore_unhashed(&url, &f.dir.join("c2"), &["--share"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = json(&out);
    guest_ok(&second);
    let s = &second["stats"];
    assert_eq!(s["root_fill_bytes"], 0, "{s}");
    assert!(n(&s["pages_shared"]) >= (MIB << 20) / PAGE as u64, "{s}");
    assert_eq!(s["remote"]["chunks_fetched"], 0, "{s}");
    // --prefetch over a filled root fetches nothing either (the root has the working set).
    let out = restore_unhashed(&url, &f.dir.join("c3"), &["--share", "--prefetch"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pre = json(&out);
    guest_ok(&pre);
    assert_eq!(
        pre["stats"]["remote"]["chunks_fetched"], 0,
        "{}",
        pre["stats"]
    );
    assert!(n(&pre["stats"]["pages_prefetched"]) > 0, "{}", pre["stats"]);
    // Hashed, the RAM is the local restore's; only what no guest touched is fetched (the
    // root keeps only touched pages: copies never fill it).
    let hashed = restore_ok(&url, &f.dir.join("c4"), &["--share"], &env);
    assert_eq!(hashed["ram_blake3"].as_str().unwrap(), f.reference);
    assert_eq!(hashed["stats"]["root_fill_bytes"], 0);
    let fetched = n(&hashed["stats"]["remote"]["chunks_fetched"]);
    let first_fetched = n(&first["stats"]["remote"]["chunks_fetched"]);
    assert!(fetched < first_fetched / 4, "{fetched} vs {first_fetched}");
    assert_eq!(share.roots(), vec![root.clone()], "one root per snapshot");
    // The root is the snapshot's RAM, byte for byte (holes where the snapshot has zeros).
    let img = std::fs::read(std::path::Path::new(&f.local).join("ram.img")).unwrap();
    let file = std::fs::read(&root).unwrap();
    let pattern = demo::PATTERN_GPA as usize..(demo::PATTERN_GPA + (MIB << 20)) as usize;
    assert!(
        file[pattern.clone()] == img[pattern],
        "the pattern is in the root"
    );
    // `kvmpager unshare URL` removes it.
    let out = kvmpager(&["unshare", &url], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!root.exists());
}

#[test]
fn url_clones_share_one_fetcher_and_one_root() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("shareurl-clones");
    let url = f.nginx.url("store/s1");
    let distinct = distinct_chunks(&f);
    let share = ShareDir::new("shareurl-clones");
    let clones = |extra: &[&str], cache: &str| {
        let mut args = vec!["--clones", "3"];
        args.extend_from_slice(extra);
        let out = restore(&url, &f.dir.join(cache), &args, &share.env());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        let cs = v["clones"].as_array().unwrap().clone();
        assert_eq!(cs.len(), 3, "{v}");
        for c in &cs {
            guest_ok(c);
            assert_eq!(c["ram_blake3"].as_str().unwrap(), f.reference);
        }
        (cs, v["totals"].clone())
    };
    // Shared, cold cache, empty share directory: one fetch per chunk at most for all three,
    // and the root filled about once (racing fillers may both write a window).
    let (cs, totals) = clones(&["--share"], "c1");
    let fetched = n(&totals["remote"]["chunks_fetched"]);
    assert!(
        fetched > 0 && fetched <= distinct,
        "{fetched} of {distinct}"
    );
    let filled: u64 = cs.iter().map(|c| n(&c["stats"]["root_fill_bytes"])).sum();
    let root = n(&totals["shared_root_bytes"]);
    assert!(root >= MIB << 20, "{totals}");
    assert!(
        (root..2 * root).contains(&filled),
        "filled {filled}, root {root}"
    );
    assert!(n(&totals["pages_shared"]) >= 3 * ((MIB << 20) / PAGE as u64));
    // Again, with the working set prefetched: the root is filled; the clones fetch only
    // what their RAM hashes read beyond it (never-touched RAM), once for all three.
    let (cs, totals) = clones(&["--share", "--prefetch"], "c2");
    let again = n(&totals["remote"]["chunks_fetched"]);
    assert!(again < fetched / 4, "{again} vs {fetched}");
    for c in &cs {
        assert_eq!(c["stats"]["root_fill_bytes"], 0);
    }
    // Private clones with the prefetch, cold cache: still one fetch per chunk at most.
    let (_, totals) = clones(&["--prefetch"], "c3");
    let fetched = n(&totals["remote"]["chunks_fetched"]);
    assert!(
        fetched > 0 && fetched <= distinct,
        "{fetched} of {distinct}"
    );
    assert!(n(&totals["remote"]["prefetched_chunks"]) > 0, "{totals}");
    assert_eq!(n(&totals["pages_shared"]), 0);
}

#[test]
fn a_corrupt_chunk_under_share_stops_the_vm_and_never_reaches_the_root() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("shareurl-corrupt");
    let url = f.nginx.url("store/s1");
    let share = ShareDir::new("shareurl-corrupt");
    let env = share.env();
    // Corrupt, in the store, the chunk holding the pattern's first page.
    let i = (demo::PATTERN_GPA / CHUNK) as usize;
    let name = f.chunks()[i].clone().expect("the pattern chunk holds data");
    let path = f.nginx.root().join("store/chunks").join(&name);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[1000] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let out = restore(&url, &f.dir.join("c1"), &["--share"], &env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "ZX_ERR_IO_DATA_INTEGRITY",
        "guest RAM page 0x",
        name.as_str(),
        "store/s1",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("verified every byte"));
    // The root: every page holds the snapshot's bytes or nothing, and the corrupt chunk's
    // pages are neither filled nor written.
    let root = share.root();
    let img = std::fs::read(std::path::Path::new(&f.local).join("ram.img")).unwrap();
    let file = std::fs::read(&root).unwrap();
    let zero = [0u8; PAGE];
    for (page, f) in file[..RAM as usize].chunks(PAGE).enumerate() {
        let want = img.get(page * PAGE..(page + 1) * PAGE).unwrap_or(&zero);
        assert!(f == want || f == zero, "root page {page} holds wrong bytes");
    }
    let state = &file[RAM as usize..];
    let pages = i * (CHUNK as usize / PAGE)..(i + 1) * (CHUNK as usize / PAGE);
    for p in pages {
        assert_eq!(
            state[p], 0,
            "page {p} of the corrupt chunk is marked filled"
        );
        assert!(
            file[p * PAGE..(p + 1) * PAGE] == zero,
            "page {p} was written"
        );
    }
    // Repaired in the store, the same root serves a good restore.
    std::fs::write(&path, &good).unwrap();
    let v = restore_ok(&url, &f.dir.join("c2"), &["--share"], &env);
    assert_eq!(v["ram_blake3"].as_str().unwrap(), f.reference);
    assert_eq!(share.roots(), vec![root]);
}

#[test]
fn file_and_s3_urls_share_and_clone_too() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("shareurl-file-s3");
    let local = f.local.as_str();
    let share = ShareDir::new("shareurl-file-s3");
    // file://: shared, then found filled.
    let url = format!("file://{}/store/s1", f.dir.path().display());
    let out = kvmpager(&["snapshot", "copy", local, &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let a = restore_ok(&url, &f.dir.join("c1"), &["--share"], &share.env());
    assert_eq!(a["ram_blake3"].as_str().unwrap(), f.reference);
    let b = restore_ok(&url, &f.dir.join("c2"), &["--share"], &share.env());
    assert_eq!(b["ram_blake3"].as_str().unwrap(), f.reference);
    assert_eq!(b["stats"]["root_fill_bytes"], 0, "{}", b["stats"]);
    // The same manifest from nginx names the same root (equal manifests, equal RAM).
    let c = restore_ok(
        &f.nginx.url("store/s1"),
        &f.dir.join("c3"),
        &["--share"],
        &share.env(),
    );
    assert_eq!(c["stats"]["root_fill_bytes"], 0, "{}", c["stats"]);
    assert_eq!(share.roots().len(), 1);
    // s3:// (moto, SigV4): two shared clones.
    let moto = Moto::start("kvmpager");
    let mut env = moto.env();
    let share3 = ShareDir::new("shareurl-s3");
    env.extend(share3.env());
    let s3 = "s3://kvmpager/pre/s1";
    let out = kvmpager(&["snapshot", "copy", local, s3], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = restore(s3, &f.dir.join("c4"), &["--share", "--clones", "2"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    for c in v["clones"].as_array().unwrap() {
        guest_ok(c);
        assert_eq!(c["ram_blake3"].as_str().unwrap(), f.reference);
    }
    let fetched = n(&v["totals"]["remote"]["chunks_fetched"]);
    assert!(
        fetched > 0 && fetched <= distinct_chunks(&f),
        "{}",
        v["totals"]
    );
    assert_eq!(share3.roots().len(), 1);
}

#[test]
fn shared_clones_over_a_stalled_server_stop_in_bounded_time() {
    if skip_without_kvm() {
        return;
    }
    let f = fixture("shareurl-stall");
    let share = ShareDir::new("shareurl-stall");
    let proxy = FaultProxy::start(f.nginx.port, Fault::Stall);
    let t0 = std::time::Instant::now();
    let out = restore(
        &proxy.url("store/s1"),
        &f.dir.join("c"),
        &["--share", "--clones", "2", "--fault-timeout", "2"],
        &share.env(),
    );
    let t = t0.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(t < std::time::Duration::from_secs(20), "{t:?}");
    let v = json(&out);
    for c in v["clones"].as_array().unwrap() {
        assert_ne!(c["exit_code"], 0, "{c}");
        assert!(
            !c["console"]
                .as_str()
                .unwrap()
                .contains("verified every byte")
        );
    }
    // Nothing was filled: every state byte of the root is 0.
    let file = std::fs::read(share.root()).unwrap();
    let state = &file[RAM as usize..RAM as usize + (RAM as usize / PAGE)];
    assert!(state.iter().all(|&b| b == 0), "pages marked filled");
}
