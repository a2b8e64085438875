//! The terminal table: variants side by side, then each expectation.

use sim_core::summary::{Summary, VariantSummary};

/// A table row: its label and how to read its value from a variant.
type Row = (&'static str, fn(&VariantSummary) -> f64);
use std::fmt::Write as _;

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Renders the summary as a table of variants and a list of expectations.
pub fn render(s: &Summary) -> String {
    let rows: [Row; 15] = [
        ("produced", |v| v.counts.produced as f64),
        ("acked", |v| v.counts.acked as f64),
        ("processed", |v| v.counts.processed as f64),
        ("lost", |v| v.counts.lost as f64),
        ("duplicated", |v| v.counts.duplicated as f64),
        ("reordered", |v| v.counts.reordered as f64),
        ("in flight at end", |v| v.counts.in_flight as f64),
        ("send failed", |v| v.counts.send_failed as f64),
        ("errors", |v| v.errors as f64),
        ("throughput /s", |v| v.throughput_per_s),
        ("latency mean ms", |v| v.latency_ms.mean),
        ("latency p50 ms", |v| v.latency_ms.p50),
        ("latency p99 ms", |v| v.latency_ms.p99),
        ("latency max ms", |v| v.latency_ms.max),
        ("max queue depth", |v| v.max_queue_depth as f64),
    ];
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    // A latency that leaves out messages still in flight when the drain ran
    // out of time is marked, and explained under the table.
    let partial = |v: &VariantSummary| !v.run.drain_complete && v.counts.in_flight > 0;
    let cell = |v: &VariantSummary, label: &str, f: fn(&VariantSummary) -> f64| {
        let mark = if partial(v) && label.starts_with("latency") { "*" } else { "" };
        format!("{}{mark}", number(f(v)))
    };
    let cells: Vec<Vec<String>> =
        s.variants.iter().map(|(_, v)| rows.iter().map(|(l, f)| cell(v, l, *f)).collect()).collect();
    let widths: Vec<usize> = s
        .variants
        .iter()
        .zip(&cells)
        .map(|((name, _), col)| col.iter().map(String::len).chain([name.len()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:label_w$}", "");
    for ((name, _), w) in s.variants.iter().zip(&widths) {
        let _ = write!(out, "  {name:>w$}");
    }
    out.push('\n');
    for (i, (label, _)) in rows.iter().enumerate() {
        let _ = write!(out, "{label:label_w$}");
        for (col, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", col[i]);
        }
        out.push('\n');
    }
    for (name, v) in s.variants.iter().filter(|(_, v)| partial(v)) {
        let _ = writeln!(
            out,
            "* {name}: over the {} messages that finished; {} were still in flight when {}",
            v.latency_ms.count,
            v.counts.in_flight,
            if v.run.stopped.is_some() { "the run stopped at a limit" } else { "the drain ran out of time" }
        );
    }
    let any = s.variants.iter().any(|(_, v)| !v.expectations.is_empty());
    if any {
        out.push_str("expectations:\n");
        for (name, v) in &s.variants {
            for e in &v.expectations {
                let mark = if e.held { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "  {mark} {name}: {} (was {})", e.expect, number(e.actual));
            }
        }
    }
    out
}
