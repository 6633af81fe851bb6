//! The control socket driving real guests under `kvmpager run|restore --api-socket` (the
//! binary), through curl and through the Rust client: state, pause/resume of the `ticker`
//! guest (its ticks stop and go on with the next number; the exit code is unchanged), a pause
//! that parks a vCPU blocked in a page fault, `/pagers` with an overdue request, stop,
//! snapshots while running and while paused and their restores, `/stats`, `/metrics`, the
//! socket file's rules and the client subcommands.

mod api_util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use api_util::*;

const TICKER: [&str; 6] = [
    "run",
    "--guest",
    "embedded:ticker",
    "--vcpus",
    "2",
    "--timeout",
];

fn ticker(socket: &std::path::Path, extra: &[&str]) -> Vmm {
    let mut args: Vec<&str> = TICKER.to_vec();
    args.push("60");
    args.extend(extra);
    start(&args, socket)
}

/// Every tick from 1 to 300 exactly once, in order.
fn all_ticks(ticks: &[u64]) {
    assert_eq!(ticks, (1..=300).collect::<Vec<_>>().as_slice());
}

#[test]
fn pause_stops_the_ticks_and_resume_goes_on_with_the_next_one() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("pause");
    let socket = dir.join("vm.sock");
    let vm = ticker(&socket, &[]);
    let v = get(&socket, "/vm");
    assert_eq!(v["state"], "running");
    assert_eq!(v["vcpus"].as_array().unwrap().len(), 2);
    assert_eq!(v["memory_bytes"], 256 << 20);
    assert_eq!(v["config"]["vcpus"], 2);
    vm.wait_for(20, |l| ticks(l).len() >= 10);
    let curl_ok = have_curl();
    let (status, body) = if curl_ok {
        curl(&socket, "PUT", "/vm/pause", None)
    } else {
        (200, put(&socket, "/vm/pause", None).to_string())
    };
    assert_eq!(status, 200, "{body}");
    let paused: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(paused["state"], "paused", "{paused}");
    assert_eq!(paused["vcpus"], serde_json::json!(["parked", "parked"]));
    // Ticks printed before the answer may still be in the pipe; then nothing more comes.
    let at_pause = vm.settled_ticks();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(vm.ticks(), at_pause, "ticks went on while paused");
    assert_eq!(get(&socket, "/vm")["state"], "paused");
    let resumed = put(&socket, "/vm/resume", None);
    assert_eq!(resumed["state"], "running");
    let n = at_pause.len() as u64;
    vm.wait_for(20, |l| ticks(l).len() as u64 >= n + 5);
    let (code, lines, _) = vm.finish();
    assert_eq!(code, Some(7));
    all_ticks(&ticks(&lines));
    assert!(!socket.exists(), "the socket file outlived the VM");
}

#[test]
fn pause_parks_a_vcpu_blocked_in_a_page_fault_and_pagers_shows_the_overdue_request() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("fault");
    let socket = dir.join("vm.sock");
    let args = [
        "run",
        "--guest",
        "embedded:fatal_silent",
        "--vcpus",
        "2",
        "--timeout",
        "60",
        "--fault-timeout",
        "2",
    ];
    let vm = start(&args, &socket);
    vm.wait_for(20, |l| l.iter().any(|l| l.contains("never answering")));
    let paused = put(&socket, "/vm/pause", None);
    // vCPU 0 is blocked in the fault, vCPU 1 spins: both park.
    assert_eq!(paused["state"], "paused", "{paused}");
    std::thread::sleep(Duration::from_millis(2300));
    let p = get(&socket, "/pagers");
    assert_eq!(p["fault_timeout_ms"], 2000);
    let vmos = p["vmos"].as_array().unwrap();
    assert_eq!(vmos[0]["pager"], "host");
    let guest = vmos
        .iter()
        .find(|v| v["pager"] == "guest")
        .expect("the guest's pager VMO");
    let reqs = guest["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{p}");
    let r = &reqs[0];
    assert_eq!(
        (r["command"].as_str(), r["offset"].as_u64()),
        (Some("READ"), Some(5 * 4096))
    );
    assert_eq!(r["faulting"], true);
    assert_eq!(r["overdue"], true, "{r}");
    assert!(r["age_ms"].as_u64().unwrap() >= 2000);
    assert_eq!(r["guest_physical"], 0x10_0000_5000u64);
    // The watchdog waits while the VM is held; it stops the VM once it goes on.
    assert_eq!(get(&socket, "/vm")["state"], "paused");
    let text = client::get_text(&socket, "/metrics").unwrap();
    assert!(
        text.contains("kvmpager_outstanding_page_requests 1\n"),
        "{text}"
    );
    put(&socket, "/vm/resume", None);
    let (code, _, err) = vm.finish();
    assert_eq!(code, Some(1));
    assert!(
        err.contains("unanswered") && err.contains("guest pager never answered"),
        "{err}"
    );
}

#[test]
fn a_vcpu_blocked_in_a_hypercall_keeps_the_vm_pausing_and_a_snapshot_fails_cleanly() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("blocked");
    let socket = dir.join("vm.sock");
    let args = [
        "run",
        "--guest",
        "embedded:port_block",
        "--vcpus",
        "2",
        "--timeout",
        "60",
    ];
    let vm = start(&args, &socket);
    vm.wait_for(20, |l| l.iter().any(|l| l.contains("waiting")));
    // vCPU 0 is inside its PortWait once two looks 200 ms apart find it in a hypercall.
    let in_call = || get(&socket, "/vm")["vcpus"][0] == "in_hypercall";
    for _ in 0..100 {
        if in_call() {
            std::thread::sleep(Duration::from_millis(200));
            if in_call() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = std::time::Instant::now();
    let v = put(&socket, "/vm/pause", None);
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(v["state"], "pausing", "{v}");
    assert_eq!(v["vcpus"], serde_json::json!(["in_hypercall", "parked"]));
    let text = client::get_text(&socket, "/metrics").unwrap();
    assert!(
        text.contains("kvmpager_vm_state{state=\"pausing\"} 1"),
        "{text}"
    );
    // A snapshot needs every vCPU parked: it fails after its 5 s wait and leaves nothing.
    let target = dir.join("never");
    let body = format!(r#"{{"path": "{}"}}"#, target.display());
    let r = client::request(&socket, "PUT", "/snapshot", Some(&body)).unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("not every vCPU paused"), "{}", r.body);
    assert!(!target.exists());
    let v = put(&socket, "/vm/resume", None);
    assert_eq!(v["state"], "running");
    assert_eq!(v["vcpus"], serde_json::json!(["in_hypercall", "running"]));
    put(&socket, "/vm/stop", None);
    let (code, lines, _) = vm.finish();
    assert_eq!(code, Some(0));
    assert!(!lines.iter().any(|l| l.contains("returned")), "{lines:?}");
}

#[test]
fn stop_ends_the_vm_with_exit_code_0() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("stop");
    let socket = dir.join("vm.sock");
    let vm = ticker(&socket, &[]);
    vm.wait_for(20, |l| !ticks(l).is_empty());
    let (status, body) = if have_curl() {
        curl(&socket, "PUT", "/vm/stop", Some("{}"))
    } else {
        (200, put(&socket, "/vm/stop", None).to_string())
    };
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "stopped");
    assert_eq!(v["stop_reason"], "stopped through the API socket");
    let (code, lines, err) = vm.finish();
    assert_eq!(code, Some(0));
    assert!(ticks(&lines).len() < 300);
    assert!(err.contains("stopped through the API socket"), "{err}");
    assert!(!socket.exists());
}

#[test]
fn snapshots_while_running_and_while_paused_restore_where_they_were_taken() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("snap");
    let socket = dir.join("vm.sock");
    let vm = ticker(&socket, &[]);
    vm.wait_for(20, |l| ticks(l).len() >= 5);
    let running_snap = dir.join("running");
    let before = vm.ticks().len() as u64;
    let body = format!(r#"{{"path": "{}"}}"#, running_snap.display());
    let (status, answer) = if have_curl() {
        curl(&socket, "PUT", "/snapshot", Some(&body))
    } else {
        (200, put(&socket, "/snapshot", Some(&body)).to_string())
    };
    assert_eq!(status, 200, "{answer}");
    let done: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(done["state"], "running");
    assert_eq!(done["path"], running_snap.display().to_string());
    std::thread::sleep(Duration::from_millis(500));
    let after = vm.ticks().len() as u64;
    assert!(running_snap.join("meta.json").exists());

    put(&socket, "/vm/pause", None);
    let at_pause = vm.settled_ticks().len() as u64;
    let paused_snap = dir.join("paused");
    let body = format!(
        r#"{{"path": "{}", "then": "continue"}}"#,
        paused_snap.display()
    );
    let done = put(&socket, "/snapshot", Some(&body));
    assert_eq!(done["state"], "paused");
    assert!(done["ram_data_bytes"].as_u64().unwrap() > 0);
    put(&socket, "/vm/resume", None);
    let (code, lines, _) = vm.finish();
    assert_eq!(code, Some(7));
    all_ticks(&ticks(&lines));

    // The paused snapshot goes on with exactly the next tick.
    let restored = start(
        &["restore", paused_snap.to_str().unwrap()],
        &dir.join("r1.sock"),
    );
    let v = get(&restored.socket, "/vm");
    assert_eq!(
        v["config"]["restored_from"],
        paused_snap.display().to_string()
    );
    let (code, lines, _) = restored.finish();
    assert_eq!(code, Some(7));
    let t = ticks(&lines);
    assert_eq!(t, (at_pause + 1..=300).collect::<Vec<_>>());

    // The running snapshot goes on from a tick between what was seen before and after.
    let restored = start(
        &["restore", running_snap.to_str().unwrap()],
        &dir.join("r2.sock"),
    );
    let (code, lines, _) = restored.finish();
    assert_eq!(code, Some(7));
    let t = ticks(&lines);
    let first = t[0];
    assert!(
        (before + 1..=after + 1).contains(&first),
        "{before} {first} {after}"
    );
    assert_eq!(t, (first..=300).collect::<Vec<_>>());
}

#[test]
fn snapshot_then_stop_and_the_cli_client_commands() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("cli");
    let socket = dir.join("vm.sock");
    let snap_dir = dir.join("default-snap");
    let vm = ticker(&socket, &["--snapshot-dir", snap_dir.to_str().unwrap()]);
    vm.wait_for(20, |l| !ticks(l).is_empty());
    let bin = env!("CARGO_BIN_EXE_kvmpager");
    let sock = socket.to_str().unwrap();
    let stat = Command::new(bin).args(["stat", sock]).output().unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(
        stat.status.success() && text.contains("running") && text.contains("faults:"),
        "{text}"
    );
    let stat = Command::new(bin)
        .args(["stat", sock, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&stat.stdout).unwrap();
    assert_eq!(v["vm"]["state"], "running");
    assert!(v["stats"]["faults"].as_u64().unwrap() > 0);
    let top = Command::new(bin)
        .args(["top", sock, "--count", "2", "--interval", "0.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success() && text.contains("running") && text.contains("faults/s"),
        "{text}"
    );
    // No path: the VM's --snapshot-dir; --stop: the VM stops afterwards (exit 0).
    let snap = Command::new(bin)
        .args(["snapshot", "--api-socket", sock, "--stop"])
        .output()
        .unwrap();
    assert!(
        snap.status.success(),
        "{}",
        String::from_utf8_lossy(&snap.stderr)
    );
    assert!(snap_dir.join("meta.json").exists());
    let (code, _, err) = vm.finish();
    assert_eq!(code, Some(0));
    assert!(err.contains("snapshot written to"), "{err}");
    let gone = Command::new(bin).args(["stat", sock]).output().unwrap();
    assert_eq!(gone.status.code(), Some(1));
}

#[test]
fn stats_and_metrics_are_live_and_metrics_are_prometheus_text() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("metrics");
    let socket = dir.join("vm.sock");
    let vm = ticker(&socket, &[]);
    let stats = get(&socket, "/stats");
    for key in [
        "faults",
        "requests",
        "pages_supplied",
        "bytes_moved",
        "bytes_copied",
        "bytes_remapped",
        "file_bytes_read",
        "fault_latency_p99_ns",
        "pages_on_demand",
    ] {
        assert!(stats[key].is_u64(), "/stats lacks {key}: {stats}");
    }
    let text = if have_curl() {
        let (status, text) = curl(&socket, "GET", "/metrics", None);
        assert_eq!(status, 200);
        text
    } else {
        client::get_text(&socket, "/metrics").unwrap()
    };
    let m = prometheus::parse(&text);
    for name in [
        "kvmpager_page_faults_total",
        "kvmpager_page_requests_total",
        "kvmpager_pages_supplied_total",
        "kvmpager_file_read_bytes_total",
        "kvmpager_rss_bytes",
        "kvmpager_uptime_seconds",
    ] {
        assert!(m.value(name, "").is_some(), "{name} missing:\n{text}");
    }
    for path in ["moved", "remapped", "copied"] {
        assert!(
            m.value("kvmpager_supplied_bytes_total", &format!("path=\"{path}\""))
                .is_some()
        );
    }
    assert!(m.value("kvmpager_rss_bytes", "").unwrap() > 1e6);
    assert!(
        m.value("kvmpager_page_faults_total", "").unwrap()
            >= stats["faults"].as_u64().unwrap() as f64
    );
    m.check_histogram("kvmpager_fault_latency_seconds");
    let r = client::request(&socket, "GET", "/metrics", None).unwrap();
    assert!(
        r.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type
    );
    let (code, lines, _) = vm.finish();
    assert_eq!(code, Some(7));
    all_ticks(&ticks(&lines));
}

#[test]
fn the_socket_is_0600_a_stale_one_is_replaced_and_a_live_one_refused() {
    if skip_without_kvm() {
        return;
    }
    let dir = TempDir::new("socket");
    let socket = dir.join("vm.sock");
    // A crashed run's socket: bound, never removed, nobody accepting.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let vm = ticker(&socket, &[]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let second = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args([
            "run",
            "--guest",
            "embedded:hello",
            "--api-socket",
            socket.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another process is serving this API socket"),
        "{err}"
    );
    // The refused run left the live socket alone.
    assert_eq!(get(&socket, "/vm")["state"], "running");
    put(&socket, "/vm/stop", None);
    assert_eq!(vm.finish().0, Some(0));
}

/// A small, strict parser of the Prometheus text format (independent of the crate's).
mod prometheus {
    use std::collections::BTreeMap;

    pub struct Metrics {
        /// (name, labels) → value.
        samples: BTreeMap<(String, String), f64>,
    }

    pub fn parse(text: &str) -> Metrics {
        let mut types = BTreeMap::new();
        let mut helped = std::collections::BTreeSet::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.insert(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            assert!(
                !line.is_empty() && !line.starts_with('#'),
                "stray line {line:?}"
            );
            let (key, value) = line.rsplit_once(' ').expect("NAME VALUE");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match key.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
                None => (key, ""),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(v.starts_with('"') && v.ends_with('"'), "{pair}");
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(
                types.contains_key(family) && helped.contains(family),
                "{name} has no TYPE/HELP before it"
            );
            if types[family] == "counter" {
                assert!(name.ends_with("_total") && value >= 0.0, "{line}");
            }
            samples.insert((name.to_owned(), labels.to_owned()), value);
        }
        Metrics { samples }
    }

    impl Metrics {
        pub fn value(&self, name: &str, labels: &str) -> Option<f64> {
            self.samples
                .get(&(name.to_owned(), labels.to_owned()))
                .copied()
        }

        /// Buckets rise with `le`, never fall, and `+Inf` equals `_count`.
        pub fn check_histogram(&self, name: &str) {
            let bucket = format!("{name}_bucket");
            let mut buckets: Vec<(f64, f64)> = self
                .samples
                .iter()
                .filter(|((n, _), _)| *n == bucket)
                .map(|((_, l), v)| {
                    let le = l.strip_prefix("le=\"").unwrap().trim_end_matches('"');
                    (
                        if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap()
                        },
                        *v,
                    )
                })
                .collect();
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(buckets.len() >= 10);
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
            let (le, inf) = *buckets.last().unwrap();
            assert!(le.is_infinite());
            assert_eq!(Some(inf), self.value(&format!("{name}_count"), ""));
            assert!(inf > 0.0, "no fault latency recorded");
            assert!(self.value(&format!("{name}_sum"), "").unwrap() > 0.0);
        }
    }
}
