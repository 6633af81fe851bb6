//! Case 6: what the control socket costs the guest. Cases 1 (the `Null` hypercall) and 3
//! (host pager faults, guest view) run with the API server up and a scraper polling
//! `GET /metrics` at 10 Hz, against the same runs without either, alternating in one bench
//! run. The runs are longer than cases 1 and 3 (2x the calls, 4x the faults) so that the
//! scraper polls many times during each.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

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
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Scraper {
    /// Serves `vm` on a fresh socket and starts polling it.
    fn start(vm: &Arc<Vm>, cfg: &VmConfig, path: PathBuf) -> Result<Scraper, String> {
        let socket = ApiSocket::bind(&path).map_err(|e| e.to_string())?;
        let server = api::serve(socket, vm, cfg, None).map_err(|e| e.to_string())?;
        let (stop, scrapes) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, n) = (stop.clone(), scrapes.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if client::get_text(&path, "/metrics").is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(SCRAPE_PERIOD);
            }
        });
        Ok(Scraper {
            server: Some(server),
            stop,
            scrapes,
            thread: Some(thread),
        })
    }

    /// Stops polling and serving; the number of successful scrapes.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        self.scrapes.load(Ordering::Relaxed)
    }
}

/// Runs `run` with a scraper started before the vCPUs; the result and the scrapes.
fn scraped<T>(
    run: impl FnOnce(&mut dyn FnMut(&Arc<Vm>, &VmConfig) -> Result<(), String>) -> Result<T, String>,
) -> Result<(T, u64), String> {
    let path = std::env::temp_dir().join(format!("kvmpager-bench-api-{}.sock", std::process::id()));
    let mut scraper = None;
    let r = run(&mut |vm, cfg| {
        scraper = Some(Scraper::start(vm, cfg, path.clone())?);
        Ok(())
    });
    let scrapes = scraper.map_or(0, Scraper::finish);
    r.map(|t| (t, scrapes))
}

/// Runs case 6.
pub fn run(opts: &Options, report: &mut Report) -> Result<(), String> {
    let reps = opts.reps.max(2);
    let calls = opts.exit_calls * 2;
    let faults = (opts.faults * 4).min(40_000);
    let (mut null_off, mut null_on, mut p50_off, mut p50_on) = (vec![], vec![], vec![], vec![]);
    let mut scrapes = 0;
    for _ in 0..reps {
        null_off.push(exits::null_loop_with(calls, |_, _| Ok(()))?.0);
        let (r, n) = scraped(|hook| exits::null_loop_with(calls, |vm, cfg| hook(vm, cfg)))?;
        null_on.push(r.0);
        scrapes += n;
        p50_off.push(p50(faults::host_pager_with(faults, |_, _| Ok(()))?.0));
        let (r, n) = scraped(|hook| faults::host_pager_with(faults, |vm, cfg| hook(vm, cfg)))?;
        p50_on.push(p50(r.0));
        scrapes += n;
    }
    let view = format!("median of {reps} alternating reps; {scrapes} scrapes in all");
    let base = "same case, no API socket";
    report.push(
        Figure::new(6, "Null hypercall, /metrics scraped at 10 Hz", "ns")
            .value(median(&mut null_on))
            .baseline(base, median(&mut null_off))
            .target(Target::AtMost(1.05))
            .view(format!("{view}; {calls} calls per run"))
            .note("case 1 with the control socket up and a 10 Hz scraper"),
    );
    report.push(
        Figure::new(6, "host pager fault p50, /metrics scraped at 10 Hz", "ns")
            .value(median(&mut p50_on))
            .baseline(base, median(&mut p50_off))
            .target(Target::AtMost(1.05))
            .view(format!("{view}; {faults} faults per run"))
            .note("case 3 (guest view) with the control socket up and a 10 Hz scraper"),
    );
    Ok(())
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}
