//! The plots of one scenario, built from its variants' runs: the six every
//! scenario gets (latency by percentile, percentile bars, throughput,
//! queue depth and lag, outcomes, errors by kind), the causes of losses
//! and duplicates when there were any ([`super::causes`]), and those its kinds add
//! ([`sim_core::kind::KindPlot`]). Variant `i` has colour `i` in all of
//! them; fault windows and marks are taken from every variant (they are
//! the same in most scenarios: the schedule is the file's).

use super::figure::{thin, Bars, Body, Figure, Panel, Series, Threshold, Window};
use super::style::Dash;
use sim_core::alarms::{AlarmSpec, Level};
use sim_core::engine::RunOutput;
use sim_core::kind::KindPlot;
use sim_core::time::ns_to_s;
use sim_core::trace::FaultEvent;

/// One variant's run, as the plots see it.
pub struct PlotRun<'a> {
    /// The variant's name (the legend's text).
    pub name: &'a str,
    /// What its run produced.
    pub out: &'a RunOutput,
    /// The alarms its scenario set: their thresholds are drawn on the plots
    /// of their gauges.
    pub alarms: &'a [AlarmSpec],
}

/// Every figure of a scenario, in the order the report shows them.
pub(crate) fn figures(runs: &[PlotRun], kind_plots: &[KindPlot]) -> Vec<Figure> {
    let (windows, marks, x_max) = context(runs);
    let frame = |name: &str, title: &str, body: Body| Figure {
        name: name.to_string(),
        title: title.to_string(),
        body,
        windows: windows.clone(),
        marks: marks.clone(),
        x_max,
        runs: runs.len(),
    };
    let mut figs = vec![
        frame(
            "latency-cdf",
            "Latency by percentile (production to first effect)",
            Body::Tail(tail(runs, |o| (&o.latency_cdf, o.latency.count)), "latency (ms)"),
        ),
        frame("latency-percentiles", "Latency percentiles per variant", Body::Bars(percentiles(runs))),
        frame("throughput", "Throughput over time", Body::Time(vec![throughput(runs)])),
        frame("depth-lag", "Queue depth and consumer lag over time", Body::Time(depth_lag(runs))),
        frame("outcomes", "What happened to the messages", Body::Bars(outcomes(runs))),
    ];
    if let Some(stacks) = super::causes::stacks(runs) {
        figs.push(frame(super::CAUSES, "Why messages were lost or duplicated, by cause", Body::Stacks(stacks)));
    }
    figs.push(frame("errors", "Errors over time, by kind", Body::Time(vec![errors(runs)])));
    for kp in kind_plots {
        let body = if kp.is_staleness() {
            Body::Tail(
                tail(runs, |o| (&o.state.staleness_cdf, o.state.consistency.as_ref().map_or(0, |c| c.reads))),
                "staleness (ms)",
            )
        } else {
            Body::Time(kp.panels().iter().map(|p| kind_panel(runs, p)).collect())
        };
        figs.push(frame(kp.name, kp.title, body));
    }
    figs
}

/// Fault windows (begin to end, per label, in order), marks and the end
/// of the time axis, over all the runs.
fn context(runs: &[PlotRun]) -> (Vec<Window>, Vec<(f64, String)>, f64) {
    let mut windows: Vec<Window> = Vec::new();
    let mut marks: Vec<(f64, String)> = Vec::new();
    let mut x_max: f64 = 0.0;
    for (i, r) in runs.iter().enumerate() {
        let out = r.out;
        let end = ns_to_s(out.last_event.max(out.run_end));
        x_max = x_max.max(end).max(out.samples.last().map_or(0.0, |s| s.time_s));
        let mut open: Vec<(&str, f64)> = Vec::new();
        for (t, label, event) in &out.fault_log {
            match event {
                FaultEvent::Begins => open.push((label, ns_to_s(*t))),
                FaultEvent::Ends => {
                    if let Some(at) = open.iter().position(|(l, _)| *l == label) {
                        let (_, from_s) = open.remove(at);
                        push_window(&mut windows, label, from_s, ns_to_s(*t), i);
                    }
                }
                FaultEvent::Skipped => {}
            }
        }
        for (label, from_s) in open {
            push_window(&mut windows, label, from_s, end, i);
        }
        for &(t, node, what) in out.marks.iter().filter(|m| !sim_core::engine::quiet_mark(m.2)) {
            let who = out.names.get(node as usize).map_or("?", String::as_str);
            let m = (ns_to_s(t), format!("{what} ({who})"));
            if !marks.iter().any(|(s, w)| (s - m.0).abs() < 1e-3 && *w == m.1) {
                marks.push(m);
            }
        }
    }
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    (windows, marks, if x_max.is_finite() { x_max.max(1e-3) } else { 1.0 })
}

/// Adds variant `i`'s window, or notes that `i` had it too.
fn push_window(windows: &mut Vec<Window>, label: &str, from_s: f64, to_s: f64, i: usize) {
    match windows.iter_mut().find(|w| w.label == label && w.from_s == from_s && w.to_s == to_s) {
        Some(w) => w.variants.push(i),
        None => windows.push(Window { label: label.to_string(), from_s, to_s, variants: vec![i] }),
    }
}

/// A duration by percentile (the CDF and count `of` a run picks): each HDR
/// bucket's value, held from the previous bucket's fraction to its own (a
/// step), on the tail axis.
fn tail(runs: &[PlotRun], of: impl Fn(&RunOutput) -> (&Vec<(f64, f64)>, u64)) -> Vec<Series> {
    runs.iter()
        .enumerate()
        .filter(|(_, r)| !of(r.out).0.is_empty())
        .map(|(i, r)| {
            let (cdf, count) = of(r.out);
            let count = count.max(1) as f64;
            let mut points = Vec::with_capacity(cdf.len() * 2);
            let mut before = 0.0;
            for &(ms, f) in cdf.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
                points.push((tail_x(before, count), ms));
                points.push((tail_x(f, count), ms));
                before = f;
            }
            Series { label: r.name.to_string(), variant: i, dash: Dash::Solid, points }
        })
        .collect()
}

/// Where fraction `f` sits on the tail axis: `-log10(1 - f)` (0 at the
/// minimum, 1 at p90, 2 at p99...), capped where the data ends: with `n`
/// latencies, nothing is known beyond the `1 - 1/n` quantile.
pub(crate) fn tail_x(f: f64, n: f64) -> f64 {
    let cap = n.max(10.0).log10();
    if f >= 1.0 {
        cap
    } else {
        (-(1.0 - f).log10()).min(cap)
    }
}

fn percentiles(runs: &[PlotRun]) -> Bars {
    let bars: Vec<(String, usize, Vec<f64>)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let l = &r.out.latency;
            (r.name.to_string(), i, vec![l.p50, l.p90, l.p99, l.p999])
        })
        .collect();
    let positive: Vec<f64> =
        bars.iter().flat_map(|b| b.2.iter().copied()).filter(|v| *v > 0.0 && v.is_finite()).collect();
    let (lo, hi) = positive.iter().fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    Bars {
        groups: ["p50", "p90", "p99", "p99.9"].map(String::from).to_vec(),
        bars,
        y_label: "latency (ms)".into(),
        x_label: "percentile".into(),
        log: !positive.is_empty() && hi / lo > 50.0,
    }
}

fn outcomes(runs: &[PlotRun]) -> Bars {
    let bars = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let c = &r.out.counts;
            (
                r.name.to_string(),
                i,
                vec![c.lost as f64, c.duplicated as f64, c.reordered as f64, r.out.inconsistent as f64],
            )
        })
        .collect();
    Bars {
        groups: ["lost", "duplicated", "reordered", "inconsistent"].map(String::from).to_vec(),
        bars,
        y_label: "messages".into(),
        x_label: "outcome (judged by the ledger)".into(),
        log: false,
    }
}

/// A series of variant `i` read off its samples.
fn series(r: &PlotRun, i: usize, label: String, dash: Dash, y: impl Fn(&sim_core::metrics::Sample) -> f64) -> Series {
    let points =
        thin(r.out.samples.iter().map(|s| (s.time_s, y(s))).filter(|p| p.0.is_finite() && p.1.is_finite()).collect());
    Series { label, variant: i, dash, points }
}

fn throughput(runs: &[PlotRun]) -> Panel {
    let mut lines = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        lines.push(series(r, i, format!("{} processed", r.name), Dash::Solid, |s| s.processed_per_s));
        lines.push(series(r, i, format!("{} produced", r.name), Dash::Dashed, |s| s.produced_per_s));
    }
    Panel {
        y_label: "messages per second".into(),
        series: lines,
        empty_note: "no samples".into(),
        thresholds: Vec::new(),
    }
}

fn depth_lag(runs: &[PlotRun]) -> Vec<Panel> {
    let depth = runs
        .iter()
        .enumerate()
        .map(|(i, r)| series(r, i, format!("{} depth", r.name), Dash::Solid, |s| s.queue_depth as f64))
        .collect();
    let lag = runs
        .iter()
        .enumerate()
        .map(|(i, r)| series(r, i, format!("{} lag", r.name), Dash::Dashed, |s| s.lag as f64))
        .collect();
    vec![
        Panel {
            y_label: "waiting in brokers (messages)".into(),
            series: depth,
            empty_note: "no samples".into(),
            thresholds: depth_thresholds(runs),
        },
        Panel {
            y_label: "not yet applied (messages)".into(),
            series: lag,
            empty_note: "no samples".into(),
            thresholds: Vec::new(),
        },
    ]
}

/// Errors per second, one line per variant and error kind that occurred.
fn errors(runs: &[PlotRun]) -> Panel {
    let mut lines = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        for (n, kind) in r.out.errors.keys().enumerate() {
            let rate = |s: &sim_core::metrics::Sample| {
                s.errors_by_kind.iter().find(|(k, _)| k == kind).map_or(0.0, |(_, v)| *v)
            };
            lines.push(series(r, i, format!("{} {kind}", r.name), Dash::nth(n), rate));
        }
    }
    Panel {
        y_label: "errors per second".into(),
        series: lines,
        empty_note: "no errors in any variant".into(),
        thresholds: Vec::new(),
    }
}

/// A kind's plot: each of its gauges, per variant, and the thresholds of
/// the alarms set on them.
fn kind_panel(runs: &[PlotRun], kp: &KindPlot) -> Panel {
    let mut lines = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let mut names: Vec<&str> = Vec::new();
        for s in &r.out.samples {
            for (g, _) in &s.gauges {
                if kp.series_of(g).is_some() && !names.contains(&g.as_str()) {
                    names.push(g);
                }
            }
        }
        names.sort_unstable();
        for (n, g) in names.iter().enumerate() {
            let suffix = kp.series_of(g).unwrap_or(g);
            let alone = kp.gauges.len() == 1 && suffix == kp.gauges[0];
            let label = if alone { r.name.to_string() } else { format!("{} {suffix}", r.name) };
            let value = |s: &sim_core::metrics::Sample| s.gauges.iter().find(|(k, _)| k == g).map_or(0.0, |(_, v)| *v);
            lines.push(series(r, i, label, Dash::nth(n), value));
        }
    }
    let thresholds = thresholds(runs, kp);
    Panel { y_label: kp.y_label.to_string(), series: lines, empty_note: "nothing reported".into(), thresholds }
}

/// The alarms any variant set on the built-in `queue_depth`, each once.
fn depth_thresholds(runs: &[PlotRun]) -> Vec<Threshold> {
    thresholds_where(runs, |gauge| gauge == sim_core::alarms::QUEUE_DEPTH)
}

/// The alarms any variant set on a gauge of `kp`, each once.
fn thresholds(runs: &[PlotRun], kp: &KindPlot) -> Vec<Threshold> {
    thresholds_where(runs, |gauge| kp.series_of(gauge).is_some())
}

/// The alarms any variant set on a gauge that `watched` accepts, each once.
fn thresholds_where(runs: &[PlotRun], watched: impl Fn(&str) -> bool) -> Vec<Threshold> {
    let mut out: Vec<Threshold> = Vec::new();
    for a in runs.iter().flat_map(|r| r.alarms).filter(|a| watched(&a.gauge)) {
        let t = Threshold {
            above: a.above,
            label: format!("alarm {}: {} > {}", a.name(), a.gauge, a.above),
            critical: a.level == Level::Critical,
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_axis_puts_p90_at_1_and_p99_at_2_and_stops_where_the_data_does() {
        assert!((tail_x(0.9, 1e6) - 1.0).abs() < 1e-9);
        assert!((tail_x(0.99, 1e6) - 2.0).abs() < 1e-9);
        assert_eq!(tail_x(0.0, 1e6), 0.0);
        assert_eq!(tail_x(1.0, 1000.0), 3.0);
        assert_eq!(tail_x(0.99999, 1000.0), 3.0, "beyond 1 - 1/n nothing is known");
    }
}
