//! Soak, end to end: two vCPUs, many pager VMOs, concurrent faults and supplies for about a
//! minute of guest clock, every byte verified.
//!
//! Guest: `guest/programs/src/bin/soak.rs`. vCPU 0 is the pager: each round it creates 32–64
//! pager VMOs (1 page to 2 MiB, up to 6 MiB in all), serves every READ request from its port
//! by supplying deterministic content (a function of round, VMO and offset) from an aux VMO,
//! and races the faults with unasked supplies — at the page vCPU 1 is touching, at random
//! ranges, over present ranges, whole 2 MiB VMOs from small- and huge-page aux VMOs. vCPU 1
//! maps most VMOs, touches their pages in scrambled order (read and write faults) or reads them
//! with `zx_vmo_read`, checks every byte, checks everything again in a final pass, unmaps; vCPU 0
//! closes the VMOs and must get one COMPLETE packet each. The guest stops after 60 s of guest
//! clock or 100,000 rounds and prints a summary line; any wrong byte, unexpected status or
//! packet, or 10 s without progress (a lost wakeup) makes it exit non-zero; a page request
//! unanswered for 10 s stops the VM (`fault_timeout`), naming the VMO and offset.
//!
//! Here: the VM (2 vCPUs, default lazy RAM) must exit 0 well within a wall-clock limit, the
//! summary's figures must add up (`bytes_verified == pages * 4096`, one COMPLETE per VMO, …),
//! and the VMM's own statistics must show the faults and supplies really happened.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kvmpager::abi::PAGE_SIZE;
use kvmpager_vmm::{VmConfig, guests, skip_without_kvm};

/// Safety net for a hang the guest cannot report (both vCPUs stuck inside calls).
const TIMEOUT: Duration = Duration::from_secs(150);
/// The guest's `DURATION_NS`: no new round starts after this much guest clock.
const GUEST_DURATION_S: f64 = 60.0;
/// The guest's `MAX_ROUNDS`.
const GUEST_MAX_ROUNDS: u64 = 100_000;
/// The guest's VMOs per round (`MIN_VMOS..=MAX_VMOS`) and most pages per round.
const MIN_VMOS: u64 = 32;
const MAX_VMOS: u64 = 64;
const MAX_ROUND_PAGES: u64 = 1536;
/// Fewest rounds a minute must get through (a run here does several hundred).
const MIN_ROUNDS: u64 = 10;

/// The `key=value` pairs of the summary line (`soak: rounds=…`) and the `soak: detail …` lines.
fn summary_fields(console: &str) -> HashMap<String, String> {
    console
        .lines()
        .filter_map(|l| {
            l.strip_prefix("soak: detail ")
                .or_else(|| l.starts_with("soak: rounds=").then(|| &l["soak: ".len()..]))
        })
        .flat_map(str::split_whitespace)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The integer field `key` (panics with the console if it is missing).
fn num(f: &HashMap<String, String>, key: &str, console: &str) -> u64 {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no integer {key}= in the summary:\n{console}"))
}

/// Two vCPUs fault on and supply many pager VMOs concurrently for a minute; every byte is
/// verified, nothing hangs, and the VMM counted the faults and supplies.
#[test]
fn two_vcpus_soak_many_pager_vmos_for_a_minute() {
    if skip_without_kvm() {
        return;
    }
    let mut c = VmConfig::new(guests::SOAK.elf.to_vec());
    c.vcpus = 2;
    c.timeout = Some(TIMEOUT);
    // A page request nobody answers (a lost packet, or both vCPUs stuck inside calls) stops
    // the VM with the VMO and offset instead of waiting for the time limit.
    c.fault_timeout = Some(Duration::from_secs(10));
    c.echo_console = false;
    assert!(c.lazy_ram, "the soak runs over the default lazy RAM");

    let t0 = Instant::now();
    let r = kvmpager_vmm::run(&c).expect("the VM runs");
    let wall = t0.elapsed();
    let console = r.console_text();
    eprintln!(
        "--- console:\n{console}--- stop: {} ({wall:.1?})\n{}",
        r.stop,
        r.stats.summary()
    );
    assert_eq!(r.exit_code, Some(0), "stop: {}\n{console}", r.stop);

    let s = summary_fields(&console);
    assert!(s.contains_key("rounds"), "no summary line:\n{console}");
    let n = |k: &str| num(&s, k, &console);
    let rounds = n("rounds");
    let (vmos, pages, verified) = (n("vmos"), n("pages"), n("bytes_verified"));
    let (supplies, prefetches, reads) = (n("supplies"), n("prefetches"), n("reads"));
    let seconds: f64 = s
        .get("seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no seconds= in the summary:\n{console}"));

    // Bounded in time and count: it ran the whole minute (or every round), and no longer than
    // a round past it.
    assert!(
        seconds >= GUEST_DURATION_S || rounds == GUEST_MAX_ROUNDS,
        "stopped after {seconds} s and {rounds} rounds"
    );
    assert!(seconds < GUEST_DURATION_S + 30.0, "{seconds} s");
    assert!(wall < TIMEOUT, "took {wall:?}");
    assert!(rounds >= MIN_ROUNDS, "only {rounds} rounds in a minute");
    assert!(
        (rounds * MIN_VMOS..=rounds * MAX_VMOS).contains(&vmos),
        "{vmos} VMOs in {rounds} rounds"
    );
    assert!(
        (vmos..=rounds * MAX_ROUND_PAGES).contains(&pages),
        "{pages} pages in {vmos} VMOs, {rounds} rounds"
    );
    // Every byte of every VMO checked once in the unit pass, and again in the final pass.
    assert_eq!(verified, pages * PAGE_SIZE, "bytes_verified vs pages");
    assert!(n("reverified_bytes") >= verified);
    // One COMPLETE per closed VMO.
    assert_eq!(n("completes"), vmos);
    // Both demand supplies and unasked ones, of every kind.
    assert!(
        reads > 0 && prefetches > 0,
        "reads {reads}, prefetches {prefetches}"
    );
    assert!(supplies >= reads + prefetches, "{supplies} supplies");
    assert!(n("read_pages") + n("prefetched_pages") >= pages);
    assert!(n("chases") > 0 && n("present_resupplies") > 0);
    assert!(n("whole_small") + n("whole_huge") > 0);
    assert!(n("pager_checked_bytes") > 0);
    // vCPU 1 faulted through mappings (reads and writes) and read with zx_vmo_read.
    assert!(n("read_touches") > 0 && n("write_touches") > 0 && n("vmo_read_units") > 0);
    assert!(n("stamps") >= n("write_touches"));

    // The VMM saw it too (its counters include the lazy RAM's host pager).
    let st = &r.stats;
    assert!(
        st.faults >= 1000,
        "only {} userfaultfd faults on pager VMOs",
        st.faults
    );
    assert!(
        st.requests >= reads,
        "{} page requests < {reads} READ packets",
        st.requests
    );
    assert!(
        st.pages_supplied >= pages,
        "{} pages supplied < {pages} pages of the soak's VMOs",
        st.pages_supplied
    );
    assert!(st.bytes_moved + st.bytes_copied + st.bytes_remapped >= pages * PAGE_SIZE);
    assert!(st.fault_latency_p50_ns > 0 && st.fault_latency_max_ns >= st.fault_latency_p50_ns);
}
