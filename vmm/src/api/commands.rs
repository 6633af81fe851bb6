//! The client subcommands of `kvmpager`: `snapshot --api-socket`, `stat` (one reading) and
//! `top` (a live view of one or more VMs in the terminal), all through [`super::client`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::client;
use super::metrics;
use super::wire::{SnapshotDone, SnapshotRequest, Then, VmInfo};

/// `kvmpager snapshot --api-socket PATH [--path DIR] [--then stop]`.
pub fn snapshot(socket: &Path, dir: Option<&Path>, stop: bool) -> Result<i32, String> {
    let req = SnapshotRequest {
        path: dir.map(|d| d.display().to_string()),
        then: if stop { Then::Stop } else { Then::Continue },
    };
    let body = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    let done: SnapshotDone = client::call(socket, "PUT", "/snapshot", Some(&body))?;
    eprintln!(
        "kvmpager: snapshot written to {} ({:.1} MiB of RAM data); the VM is {}",
        done.path,
        done.ram_data_bytes as f64 / (1 << 20) as f64,
        serde_json::to_value(done.state)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("?")
    );
    Ok(0)
}

/// `kvmpager stat PATH [--json]`: the VM and its statistics, once.
pub fn stat(socket: &Path, json: bool) -> Result<i32, String> {
    let vm: serde_json::Value = client::call(socket, "GET", "/vm", None)?;
    let stats: serde_json::Value = client::call(socket, "GET", "/stats", None)?;
    if json {
        let v = serde_json::json!({ "vm": vm, "stats": stats });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let info: VmInfo = serde_json::from_value(vm).map_err(|e| e.to_string())?;
    println!("{}", vm_line(socket, &info));
    for (k, v) in stats.as_object().into_iter().flatten() {
        println!("  {k}: {v}");
    }
    Ok(0)
}

/// One line about a VM: socket, pid, state, vCPUs, RAM, uptime.
fn vm_line(socket: &Path, v: &VmInfo) -> String {
    let state = serde_json::to_value(v.state).unwrap_or_default();
    let parked = v
        .vcpus
        .iter()
        .filter(|c| **c == super::wire::VcpuState::Parked)
        .count();
    let mut line = format!(
        "{}: pid {} {} ({} vCPUs, {} parked), {} MiB RAM, up {:.1} s",
        socket.display(),
        v.pid,
        state.as_str().unwrap_or("?"),
        v.vcpus.len(),
        parked,
        v.memory_bytes >> 20,
        v.uptime_ns as f64 / 1e9
    );
    if let Some(r) = &v.stop_reason {
        line.push_str(&format!(" — {r}"));
    }
    line
}

/// What `top` remembers of one VM between refreshes.
#[derive(Default)]
struct Last {
    at: Option<Instant>,
    faults: f64,
}

/// `kvmpager top PATH... [--interval S] [--count N]`: redraws a table of every VM each
/// interval (N times, or until interrupted); a VM that stops answering shows its error.
pub fn top(sockets: &[PathBuf], interval: Duration, count: Option<u64>) -> Result<i32, String> {
    let mut last: Vec<Last> = sockets.iter().map(|_| Last::default()).collect();
    let mut n = 0;
    loop {
        let mut screen = String::from("\x1b[H\x1b[2J");
        screen.push_str(&format!(
            "{:<28} {:>8} {:>5} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "VM",
            "state",
            "vcpu",
            "up s",
            "faults",
            "faults/s",
            "moved MiB",
            "remap MiB",
            "copy MiB",
            "file MiB",
            "RSS MiB"
        ));
        for (socket, last) in sockets.iter().zip(last.iter_mut()) {
            screen.push_str(&row(socket, last));
            screen.push('\n');
        }
        print!("{screen}");
        let _ = std::io::stdout().flush();
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

fn row(socket: &Path, last: &mut Last) -> String {
    let name = socket.display().to_string();
    let name = if name.len() > 28 {
        format!("…{}", &name[name.len() - 27..])
    } else {
        name
    };
    let reading = client::call::<VmInfo>(socket, "GET", "/vm", None).and_then(|vm| {
        let text = client::get_text(socket, "/metrics")?;
        let m = metrics::parse(&text).ok_or("unparsable metrics")?;
        Ok((vm, m))
    });
    let (vm, m) = match reading {
        Ok(r) => r,
        Err(e) => return format!("{name:<28} {e}"),
    };
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    let mib = |k: &str| get(k) / (1u64 << 20) as f64;
    let faults = get("kvmpager_page_faults_total");
    let now = Instant::now();
    let rate = match last.at {
        Some(t) => (faults - last.faults) / now.duration_since(t).as_secs_f64().max(1e-3),
        None => 0.0,
    };
    (last.at, last.faults) = (Some(now), faults);
    let state = serde_json::to_value(vm.state).unwrap_or_default();
    format!(
        "{name:<28} {:>8} {:>5} {:>8.1} {:>10} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        state.as_str().unwrap_or("?"),
        vm.vcpus.len(),
        vm.uptime_ns as f64 / 1e9,
        faults,
        rate,
        mib("kvmpager_supplied_bytes_total{path=\"moved\"}"),
        mib("kvmpager_supplied_bytes_total{path=\"remapped\"}"),
        mib("kvmpager_supplied_bytes_total{path=\"copied\"}"),
        mib("kvmpager_file_read_bytes_total"),
        mib("kvmpager_rss_bytes"),
    )
}
