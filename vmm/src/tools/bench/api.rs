//! Case 8: what the control socket costs the guest. Cases 1 (the `Null` hypercall) and 3
//! (host pager faults, guest view) run with the API server up and a scraper polling
//! `GET /metrics` at 10 Hz, against the same runs without either, alternating in one bench
//! run. The runs are longer than cases 1 and 3 (2x the calls, 4x the faults) so that the
//! scraper polls many times during each. A third figure is load-independent: the scrape's own
//! round trip (client to server and back, p50) against the 100 ms it has per poll, i.e. the
//! share of one CPU the scraping takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Figure, Options, Report, Target, exits, faults, median, quantile};
use crate::api::{self, ApiSocket, Server, client};
use crate::config::VmConfig;
use crate::vm::Vm;

/// How often the scraper polls `/metrics`.
const SCRAPE_PERIOD: Duration = Duration::from_millis(100);

/// The API server of one bench VM and a thread polling its `/metrics`.
struct Scraper {
    server: Option<Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<f64>>>,
}

impl Scraper {
    /// Serves `vm` on a fresh socket and starts polling it.
    fn start(vm: &Arc<Vm>, cfg: &VmConfig, path: PathBuf) -> Result<Scraper, String> {
        let socket = ApiSocket::bind(&path).map_err(|e| e.to_string())?;
        let server = api::serve(socket, vm, cfg, None).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut took = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                if client::get_text(&path, "/metrics").is_ok() {
                    took.push(t.elapsed().as_nanos() as f64);
                }
                std::thread::sleep(SCRAPE_PERIOD);
            }
            took
        });
        Ok(Scraper {
            server: Some(server),
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling and serving; the round trip of each successful scrape (ns).
    fn finish(mut self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        let took = self.thread.take().and_then(|t| t.join().ok());
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        took.unwrap_or_default()
    }
}

/// Runs `run` with a scraper started before the vCPUs; the result and each scrape's round
/// trip (ns).
fn scraped<T>(
    run: impl FnOnce(&mut dyn FnMut(&Arc<Vm>, &VmConfig) -> Result<(), String>) -> Result<T, String>,
) -> Result<(T, Vec<f64>), String> {
    let path = std::env::temp_dir().join(format!("kvmpager-bench-api-{}.sock", std::process::id()));
    let mut scraper = None;
    let r = run(&mut |vm, cfg| {
        scraper = Some(Scraper::start(vm, cfg, path.clone())?);
        Ok(())
    });
    let scrapes = scraper.map(Scraper::finish).unwrap_or_default();
    r.map(|t| (t, scrapes))
}

/// Runs case 8.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let reps = (opts.reps * 2).max(2);
    let calls = opts.exit_calls * 2;
    let faults = (opts.faults * 4).min(40_000);
    let (mut null_off, mut null_on, mut p50_off, mut p50_on) = (vec![], vec![], vec![], vec![]);
    let mut scrapes = Vec::new();
    for _ in 0..reps {
        null_off.push(exits::null_loop_with(calls, |_, _| Ok(()))?.0);
        let (r, n) = scraped(|hook| exits::null_loop_with(calls, |vm, cfg| hook(vm, cfg)))?;
        null_on.push(r.0);
        scrapes.extend(n);
        p50_off.push(p50(faults::host_pager_with(faults, |_, _| Ok(()))?.0));
        let (r, n) = scraped(|hook| faults::host_pager_with(faults, |vm, cfg| hook(vm, cfg)))?;
        p50_on.push(p50(r.0));
        scrapes.extend(n);
    }
    let view = format!(
        "median of {reps} alternating reps; {} scrapes in all",
        scrapes.len()
    );
    let base = "same case, no API socket";
    report.push(
        Figure::new(8, "Null hypercall, /metrics scraped at 10 Hz", "ns")
            .value(median(&mut null_on))
            .baseline(base, median(&mut null_off))
            .target(Target::AtMost(1.05))
            .view(format!("{view}; {calls} calls per run"))
            .note("case 1 with the control socket up and a 10 Hz scraper"),
    );
    report.push(
        Figure::new(8, "host pager fault p50, /metrics scraped at 10 Hz", "ns")
            .value(median(&mut p50_on))
            .baseline(base, median(&mut p50_off))
            .target(Target::AtMost(1.05))
            .view(format!("{view}; {faults} faults per run"))
            .note("case 3 (guest view) with the control socket up and a 10 Hz scraper"),
    );
    let n = scrapes.len();
    report.push(
        Figure::new(8, "GET /metrics round trip p50 (scraper's duty)", "ns")
            .value((n > 0).then(|| p50(scrapes)))
            .baseline("the 100 ms poll period", SCRAPE_PERIOD.as_nanos() as f64)
            .target(Target::AtMost(0.01))
            .view(format!("{n} scrapes during the runs above"))
            .note("connect, request, render, answer, close: the share of one CPU scraping takes"),
    );
    Ok(())
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}
