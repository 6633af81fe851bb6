//! Bad input gives a clear error before any guest runs: missing, truncated or corrupt
//! snapshots and working sets, images larger than RAM or missing, wrong sizes.

mod microvm_util;

use std::fs;

use kvmpager_vmm::snapshot::{self, Snapshot};
use kvmpager_vmm::{VmConfig, guests};
use microvm_util::*;

fn restore_err(dir: &std::path::Path, c: &VmConfig) -> String {
    match kvmpager_vmm::restore(dir, c) {
        Ok(r) => panic!("restore of a bad snapshot ran: {}", r.stop),
        Err(e) => e.to_string(),
    }
}

/// A real snapshot to break in different ways.
fn good_snapshot(dir: &TempDir) -> std::path::PathBuf {
    let c = pattern_config(dir, 4, 64 << 20, 1);
    let r = kvmpager_vmm::run(&c).unwrap();
    assert!(r.snapshots.len() == 1, "{}", r.stop);
    dir.join("snap")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn broken_snapshots_are_refused_with_clear_errors() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap-errors");
    let good = good_snapshot(&dir);
    let c = restore_config();
    let bad = dir.join("bad");

    let e = restore_err(&dir.join("missing"), &c);
    assert!(e.contains("no such directory"), "{e}");

    copy_dir(&good, &bad);
    fs::remove_file(bad.join("meta.json")).unwrap();
    let e = restore_err(&bad, &c);
    assert!(e.contains("meta.json"), "{e}");

    copy_dir(&good, &bad);
    let meta = fs::read(bad.join("meta.json")).unwrap();
    fs::write(bad.join("meta.json"), &meta[..meta.len() / 3]).unwrap();
    let e = restore_err(&bad, &c);
    assert!(e.contains("truncated or corrupt"), "{e}");

    copy_dir(&good, &bad);
    let text = String::from_utf8(meta.clone()).unwrap();
    let tampered = text.replacen("\"rip\": ", "\"rip\": 1", 1);
    assert_ne!(tampered, text);
    fs::write(bad.join("meta.json"), tampered).unwrap();
    let e = restore_err(&bad, &c);
    assert!(e.contains("checksum mismatch"), "{e}");

    copy_dir(&good, &bad);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(bad.join("ram.img"))
        .unwrap();
    f.set_len(32 << 20).unwrap();
    let e = restore_err(&bad, &c);
    assert!(e.contains("truncated?"), "{e}");

    copy_dir(&good, &bad);
    fs::remove_file(bad.join("ram.img")).unwrap();
    let e = restore_err(&bad, &c);
    assert!(e.contains("ram.img"), "{e}");

    // Working sets: missing, corrupt, recorded for another RAM size.
    let mut pc = restore_config();
    pc.prefetch = Some(dir.join("no-such-ws.bin"));
    let e = restore_err(&good, &pc);
    assert!(e.contains("no-such-ws.bin"), "{e}");
    let ws = dir.join("ws.bin");
    snapshot::write_working_set(&ws, 32 << 20, &[1, 2]).unwrap();
    pc.prefetch = Some(ws.clone());
    let e = restore_err(&good, &pc);
    assert!(e.contains("recorded for"), "{e}");
    fs::write(&ws, b"KVMPWSET garbage").unwrap();
    let e = restore_err(&good, &pc);
    assert!(e.contains("working set") || e.contains("truncated"), "{e}");

    // The good snapshot still opens and restores.
    Snapshot::open(&good).unwrap();
    assert_eq!(kvmpager_vmm::restore(&good, &c).unwrap().exit_code, Some(0));
}

#[test]
fn bad_images_are_refused_before_the_guest_starts() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("img-errors");
    let mut c = VmConfig::new(guests::HELLO.elf.to_vec());
    c.memory = 64 << 20;
    c.image = Some(dir.join("missing.img"));
    let e = kvmpager_vmm::run(&c).unwrap_err().to_string();
    assert!(
        e.contains("missing.img") && e.contains("cannot open"),
        "{e}"
    );

    let big = dir.join("big.img");
    fs::File::create(&big).unwrap().set_len(65 << 20).unwrap();
    c.image = Some(big);
    let e = kvmpager_vmm::run(&c).unwrap_err().to_string();
    assert!(e.contains("larger than guest RAM"), "{e}");

    c.image = Some(dir.path().to_path_buf());
    let e = kvmpager_vmm::run(&c).unwrap_err().to_string();
    assert!(
        e.contains("not a regular file") || e.contains("cannot"),
        "{e}"
    );

    c.image = Some(dir.join("x.img"));
    c.lazy_ram = false;
    let e = kvmpager_vmm::run(&c).unwrap_err().to_string();
    assert!(e.contains("needs lazy RAM"), "{e}");
}

#[test]
fn the_demo_guest_checksums_an_image_it_never_loaded() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("demo");
    let path = dir.join("demo.img");
    let img = kvmpager_vmm::tools::demo::write_image(&path, 16 << 20).unwrap();
    let mut c = VmConfig::new(guests::DEMO.elf.to_vec());
    c.image = Some(path);
    c.timeout = Some(std::time::Duration::from_secs(60));
    let r = kvmpager_vmm::run(&c).unwrap();
    show("demo", &r);
    assert_eq!(r.exit_code, Some(0), "{}", r.console_text());
    assert!(
        r.console_text()
            .contains(&format!("{:#018x}", img.checksum))
    );
    // The data came from the file (one copy into aux VMOs), the holes without reading it,
    // and everything moved into RAM.
    assert!(r.stats.file_bytes_read >= img.data_bytes);
    assert!(r.stats.zero_bytes >= img.data_len - img.data_bytes);
    assert!(r.stats.pages_on_demand >= img.data_len / 4096);
    assert_eq!(r.stats.bytes_copied, 0);
    // A different image gives a mismatch and exit code 1.
    kvmpager_vmm::tools::demo::write_image(dir.join("demo.img").as_path(), 16 << 20).unwrap();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("demo.img"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(
        &f,
        b"corrupt!",
        kvmpager_vmm::tools::demo::DATA_GPA + 8,
    )
    .unwrap();
    let r = kvmpager_vmm::run(&c).unwrap();
    assert_eq!(r.exit_code, Some(1), "{}", r.console_text());
    assert!(r.console_text().contains("MISMATCH"));
}

/// The demo checksums right whichever way SUPPLY fills RAM, and each strategy shows in the
/// counters (regression: the copy path once left old bytes in a reused aux VMO).
#[test]
fn the_demo_checksums_right_with_every_supply_strategy() {
    use kvmpager::vmo::SupplyStrategy;
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("demo-strategies");
    let path = dir.join("demo.img");
    let img = kvmpager_vmm::tools::demo::write_image(&path, 16 << 20).unwrap();
    for strategy in [
        SupplyStrategy::Move,
        SupplyStrategy::Remap,
        SupplyStrategy::Copy,
    ] {
        let mut c = VmConfig::new(guests::DEMO.elf.to_vec());
        c.image = Some(path.clone());
        c.supply = strategy;
        c.timeout = Some(std::time::Duration::from_secs(60));
        let r = kvmpager_vmm::run(&c).unwrap();
        show("demo", &r);
        assert_eq!(r.exit_code, Some(0), "{strategy:?}: {}", r.console_text());
        assert!(
            r.console_text()
                .contains(&format!("{:#018x}", img.checksum))
        );
        let s = &r.stats;
        match strategy {
            SupplyStrategy::Auto | SupplyStrategy::Move => {
                assert!(s.bytes_moved > 0 && s.bytes_copied == 0)
            }
            SupplyStrategy::Remap => assert!(s.bytes_remapped > 0 && s.bytes_copied == 0),
            SupplyStrategy::Copy => assert!(s.bytes_copied > 0 && s.bytes_moved == 0),
        }
    }
}

/// The built-in pattern pager serves the demo image with no file at all: the checksum
/// matches, nothing is read from a file, and the holes arrive as zero pages.
#[test]
fn the_pattern_pager_serves_the_demo_image_without_a_file() {
    if skip_without_kvm() {
        return;
    }
    let mut c = VmConfig::new(guests::DEMO.elf.to_vec());
    c.demo_pattern = Some(16 << 20);
    c.timeout = Some(std::time::Duration::from_secs(60));
    let r = kvmpager_vmm::run(&c).unwrap();
    show("demo over the pattern pager", &r);
    assert_eq!(r.exit_code, Some(0), "{}", r.console_text());
    let want = kvmpager_vmm::tools::demo::DemoPattern::new(16 << 20)
        .unwrap()
        .image();
    assert!(
        r.console_text()
            .contains(&format!("{:#018x}", want.checksum))
    );
    assert_eq!(r.stats.file_bytes_read, 0);
    assert!(r.stats.zero_bytes >= want.data_len - want.data_bytes);
    let mut bad = c.clone();
    bad.image = Some("x.img".into());
    bad.lazy_ram = false;
    assert!(kvmpager_vmm::run(&bad).is_err());
}
