//! Stream aggregation: `scenarios/stream-aggregation.toml` through the real
//! `asyncsim` binary (event time with lateness and dedup is exact; the
//! other variants are wrong in the way each promises), a named regression
//! test per anomaly on a small pipeline, and bad aggregator settings
//! refused with the file, line and field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, run_summary, TempDir};
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

#[test]
fn the_scenario_counts_exactly_by_event_time_and_wrongly_otherwise() {
    let dir = TempDir::new("stream-aggregation");
    let (summary, _) = run_summary("scenarios/stream-aggregation.toml", "3", &dir.path().join("out"));
    let v = &summary["variants"];
    for name in ["event-time", "processing-time", "no-lateness", "no-dedup"] {
        assert_eq!(num(&v[name], "aggregation.true_events"), 7200.0, "{name}: one truth per click");
        assert_eq!(num(&v[name], "in_flight"), 0.0, "{name}");
    }
    let agg = |n: &str, k: &str| num(&v[n], &format!("aggregation.{k}"));
    assert_eq!(agg("event-time", "abs_error"), 0.0);
    assert_eq!(agg("event-time", "exact"), agg("event-time", "buckets"));
    // Processing time loses and adds nothing: the total is right, the
    // minutes are wrong.
    assert_eq!(agg("processing-time", "counted_events"), 7200.0);
    assert!(agg("processing-time", "abs_error") > 0.0);
    // Without dedup, the overcount is exactly the extra applications the
    // ledger saw in the aggregator's domain.
    let extra = agg("no-dedup", "counted_events") - agg("no-dedup", "true_events");
    assert_eq!(extra, num(&v["no-dedup"], "duplicated"));
    assert!(extra > 0.0);
    // Without lateness, the undercount is exactly the clicks lost as too late.
    let missing = agg("no-lateness", "true_events") - agg("no-lateness", "counted_events");
    assert_eq!(missing, num(&v["no-lateness"], "lost_by_cause.too_late"));
    assert!(missing > 0.0);
}

/// A small click pipeline: one member, one aggregator, clicks that
/// happened `delay` before they are produced.
fn pipeline(delay: &str, aggregator: &str, network: &str) -> String {
    format!(
        r#"
name = "clicks"
concept = "c"
[network]
latency = {{ dist = "constant", ms = 1 }}
{network}
[producers.p]
target = "k"
topic = "t"
arrival = {{ process = "constant", rate_per_s = 50 }}
messages = 3000
keys = {{ distribution = "uniform", count = 5 }}
event_delay = {delay}
[brokers.k]
kind = "log"
topics = {{ t = {{ partitions = 2 }} }}
[consumers.c]
source = "k"
topic = "t"
sink = "agg"
processing = {{ dist = "constant", ms = 1 }}
[processors.agg]
window_ms = 10000
{aggregator}
"#
    )
}

fn run(text: &str) -> RunOutput {
    let scenario = Scenario::parse("clicks.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (_, config) = scenario.configs().expect("valid").into_iter().next().expect("one variant");
    run_config(&config, 1, 0).completed().unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn aggregation(out: &RunOutput) -> sim_core::observer::tallies::AggregationSummary {
    out.state.aggregation.clone().expect("an aggregator reported")
}

#[test]
fn a_duplicate_overcounts_without_dedup_and_not_with_it() {
    let constant = r#"{ dist = "constant", ms = 0 }"#;
    let dup = "duplicate_probability = 0.05";
    let without = run(&pipeline(constant, "dedup = false", dup));
    let a = aggregation(&without);
    assert!(a.overcounted > 0 && a.undercounted == 0, "{a:?}");
    assert_eq!(a.counted_events - a.true_events, without.counts.duplicated);
    let with = run(&pipeline(constant, "dedup = true", dup));
    assert_eq!(aggregation(&with).abs_error, 0, "{:?}", aggregation(&with));
    assert!(with.metrics["duplicates_dropped"] > 0.0);
}

#[test]
fn a_late_event_lands_in_the_wrong_processing_time_window() {
    // Every click is 3 s old: 30% of each 10 s window's clicks arrive in
    // the next window, so every full window is off, and the total is not.
    let out = run(&pipeline(r#"{ dist = "constant", ms = 3000 }"#, "time = \"processing\"", ""));
    let a = aggregation(&out);
    assert_eq!(a.counted_events, a.true_events, "nothing lost or doubled");
    assert!(a.abs_error > 0 && a.overcounted > 0 && a.undercounted > 0, "{a:?}");
    // By event time, the same clicks count exactly.
    let by_event = run(&pipeline(r#"{ dist = "constant", ms = 3000 }"#, "", ""));
    assert_eq!(aggregation(&by_event).abs_error, 0);
}

#[test]
fn an_event_past_the_lateness_is_dropped_and_counted() {
    // Delays up to 20 s against a watermark at the newest click and no
    // lateness: a click older than the window end the watermark passed is
    // dropped, lost with cause too_late, and its window undercounted.
    let delay = r#"{ dist = "uniform", min_ms = 0, max_ms = 20000 }"#;
    let out = run(&pipeline(delay, "allowed_lateness_ms = 0", ""));
    let a = aggregation(&out);
    let dropped = out.metrics["late_dropped"];
    assert!(dropped > 0.0);
    assert_eq!(a.true_events - a.counted_events, out.counts.lost);
    assert_eq!(out.counts.lost_by_cause.get("too_late").copied(), Some(out.counts.lost));
    assert_eq!(a.overcounted, 0);
    // With a lateness above the largest delay, none is.
    let late_ok = run(&pipeline(delay, "allowed_lateness_ms = 25000", ""));
    assert_eq!(aggregation(&late_ok).abs_error, 0);
    assert!(late_ok.metrics["late_updates"] > 0.0);
}

fn refused(name: &str, text: &str, needle: &str, field: &str) {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let line = text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1;
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, line, field);
}

#[test]
fn bad_aggregator_settings_are_refused_with_the_field() {
    let zero = r#"{ dist = "constant", ms = 0 }"#;
    let t = pipeline(zero, "time = \"processing\"\nallowed_lateness_ms = 5", "");
    refused("agg-lateness", &t, "allowed_lateness_ms", "allowed_lateness_ms");
    let t = pipeline(zero, "time = \"sideways\"", "");
    refused("agg-time", &t, "sideways", "time");
    let t = pipeline(r#"{ dist = "uniform", min_ms = 5, max_ms = 1 }"#, "", "");
    refused("agg-delay", &t, "max_ms = 1", "event_delay");
    let t = pipeline(zero, "", "").replace("window_ms = 10000", "window_ms = 0");
    refused("agg-window", &t, "window_ms = 0", "window_ms");
}
