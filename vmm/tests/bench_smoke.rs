//! `kvmpager bench` smoke test: a tiny configuration of every case produces every figure
//! with its baseline and ratio, and the JSON and SVG renderings. No timing assertions: the
//! speed targets are the benchmark's business (PASS/MISS in its table), not the tests'.

use kvmpager_vmm::skip_without_kvm;
use kvmpager_vmm::tools::bench::{self, Options};

#[test]
fn every_figure_has_a_baseline_and_a_ratio() {
    if skip_without_kvm() {
        return;
    }
    let report = bench::run(&Options::tiny());
    let table = report.table();
    eprintln!("{table}");
    // The one note allowed: no C compiler for case 9's C pager (its rows are then absent).
    let no_cc = |n: &String| n.starts_with("case 9: no C compiler");
    assert!(
        report.notes.iter().all(no_cc),
        "cases failed: {:?}",
        report.notes
    );
    let cases = [1, 2, 3, 4, 5, 6, 7, 9];
    for case in cases {
        assert!(
            report.figures.iter().any(|f| f.case == case),
            "no figure for case {case}"
        );
    }
    for f in &report.figures {
        assert!(f.value.is_some(), "{}: no value ({})", f.name, f.note);
        assert!(f.baseline.is_some(), "{}: no baseline", f.name);
        assert!(!f.baseline_name.is_empty(), "{}: unnamed baseline", f.name);
        let r = f.ratio.unwrap_or_else(|| panic!("{}: no ratio", f.name));
        assert!(r.is_finite() && r > 0.0, "{}: ratio {r}", f.name);
        if f.target.is_some() {
            assert!(
                matches!(f.verdict.as_deref(), Some("PASS" | "MISS")),
                "{}: no verdict",
                f.name
            );
        }
    }
    // The targets of the issues are judged: hypercall, SUPPLY, host pager latency (guest and
    // service views), external supply throughput (and the C pager's latency, given `cc`).
    let mut judged = vec![
        "Null hypercall",
        "SUPPLY 2 MiB",
        "host pager fault p50",
        "host pager fault p50, service view",
        "external SUPPLY 2 MiB",
    ];
    if !report.notes.iter().any(no_cc) {
        judged.push("C pager fault p50");
    }
    for needle in judged {
        assert!(
            report
                .figures
                .iter()
                .any(|f| f.name.contains(needle) && f.verdict.is_some()),
            "no judged figure for {needle}"
        );
    }
    assert!(report.distributions.len() >= 4);
    assert!(report.series.iter().any(|s| s.points.len() >= 2));

    let json = report.json();
    assert_eq!(json.matches("\"ratio\": ").count(), report.figures.len());
    for key in ["value", "baseline", "ratio"] {
        assert!(
            !json.contains(&format!("\"{key}\": null")),
            "JSON with a null {key}"
        );
    }
    assert!(json.contains("\"samples_ns\"") && json.contains("\"points\""));
    let svg = report.svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("not measured").count(), 0);
    assert!(table.contains("PASS") || table.contains("MISS"));
}

/// Case 8 (only run when named): cases 1 and 3 with the control socket scraped at 10 Hz, each
/// next to the same case without it.
#[test]
fn case_8_compares_runs_with_and_without_the_scraper() {
    if skip_without_kvm() {
        return;
    }
    let mut opts = Options::tiny();
    opts.cases = vec![8];
    let report = bench::run(&opts);
    assert!(report.notes.is_empty(), "case 8 failed: {:?}", report.notes);
    let figures: Vec<_> = report.figures.iter().filter(|f| f.case == 8).collect();
    assert_eq!(figures.len(), 3);
    for f in figures {
        assert!(
            f.name.contains("10 Hz") || f.name.contains("/metrics"),
            "{}",
            f.name
        );
        assert!(f.value.is_some() && f.baseline.is_some() && f.verdict.is_some());
    }
}
