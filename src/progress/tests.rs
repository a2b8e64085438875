//! The bar's arithmetic: what it shows for a set of runs.

use super::*;
use sim_core::engine::RUN_SHARE;
use sim_core::scenario::Scenario;

fn config(producers: &str) -> Config {
    let text = format!(
        r#"
name = "p"
concept = "progress"
run = {{ duration_ms = 1000 }}
{producers}
[brokers.q]
kind = "queue"
[consumers.c]
source = "q"
processing = {{ dist = "constant", ms = 1 }}
"#
    );
    Scenario::parse("p.toml", &text).expect("valid").configs().expect("valid").remove(0).1
}

const P: &str = "target = \"q\"\narrival = { process = \"poisson\", rate_per_s = 10 }";

#[test]
fn planned_messages_add_every_count_and_are_unknown_if_one_source_has_none() {
    let two = config(&format!("[producers.a]\n{P}\nmessages = 30\n[producers.b]\n{P}\nmessages = 12"));
    assert_eq!(planned_messages(&two), Some(42));
    let open = config(&format!("[producers.a]\n{P}\nmessages = 30\n[producers.b]\n{P}"));
    assert_eq!(planned_messages(&open), None);
}

fn snap(phase: Option<Phase>, now: u64, events: u64) -> Snapshot {
    Snapshot { now, events, produced: 0, phase, drain_from: 10, run_ns: Some(10), drain_ns: 100 }
}

#[test]
fn the_status_averages_the_runs_and_follows_the_one_furthest_behind() {
    let snaps = [
        (snap(Some(Phase::Done), 50, 1000), None),
        (snap(Some(Phase::Run), 5, 300), None),
        (snap(Some(Phase::Drain), 60, 700), None),
        (snap(None, 0, 0), None),
    ];
    let s = Status::of(&snaps);
    // Done 1, half the run phase 0.45, half the drain 0.95, not started 0.
    let mean = (1.0 + RUN_SHARE * 0.5 + (RUN_SHARE + (1.0 - RUN_SHARE) * 0.5)) / 4.0;
    assert!((s.fraction.unwrap() - mean).abs() < 1e-12, "{s:?}");
    assert_eq!((s.events, s.done, s.runs), (2000, 1, 4));
    assert_eq!(s.behind, Some(snaps[1]), "the run phase at 5 ns is furthest behind");
    let line = s.line(Some(2.5e6), Duration::from_secs(10));
    assert!(line.contains("sim 0.0 s of 0.0 s") && line.contains("2.50 M events/s"), "{line}");
    assert!(line.contains("1/4 runs done") && line.contains(&format!("{:.0}%", mean * 100.0)), "{line}");
    // 60% done in 10 s: 6.7 s left at the same pace.
    assert!(line.contains("60% ETA 0:06 · sim"), "{line}");
    // A run phase bound by its count of messages is told by that count.
    let counted = Snapshot { run_ns: None, produced: 412_000, ..snap(Some(Phase::Run), 5, 300) };
    let line = Status::of(&[(counted, Some(1_000_000))]).line(None, Duration::from_secs(1));
    assert!(line.contains("sim 0.0 s, 412.0 k of 1.00 M msgs") && line.contains(" 37%"), "{line}");
    // A run with no plan leaves the estimate unknown.
    let blind = Snapshot { run_ns: None, ..snap(Some(Phase::Run), 5, 300) };
    let s = Status::of(&[(blind, None)]);
    assert_eq!(s.fraction, None);
    let line = s.line(None, Duration::from_secs(3));
    assert!(line.contains("] ? ETA ?"), "{line}");
}

#[test]
fn the_gauge_fills_with_the_fraction() {
    assert_eq!(gauge(0.0, 10), "[>         ]");
    assert_eq!(gauge(0.5, 10), "[=====>    ]");
    assert_eq!(gauge(1.0, 10), "[==========]");
    assert_eq!(gauge(7.0, 4), "[====]", "clamped");
}

#[test]
fn the_estimate_assumes_the_same_pace() {
    assert_eq!(eta(0.25, Duration::from_secs(10)), Some(Duration::from_secs(30)));
    assert_eq!(eta(1.0, Duration::from_secs(10)), Some(Duration::ZERO));
    assert_eq!(eta(0.0, Duration::from_secs(10)), None, "nothing to go on yet");
    assert_eq!(wall_time(Duration::from_secs(30)), "0:30");
    assert_eq!(wall_time(Duration::from_secs(3725)), "1:02:05");
}

#[test]
fn simulated_time_reads_in_a_fitting_unit() {
    assert_eq!(sim_time(1_500_000_000), "1.5 s");
    assert_eq!(sim_time(600_000_000_000), "10.0 min");
    assert_eq!(sim_time(3 * 3_600_000_000_000), "3.0 h");
    assert_eq!(sim_time(30 * 86_400_000_000_000), "30.0 days");
    assert_eq!((si(950.0), si(12_345.0), si(4_560_000.0)), ("950".into(), "12.3 k".into(), "4.56 M".into()));
}

#[test]
fn the_rate_is_taken_over_the_last_window() {
    let mut r = Rate::default();
    let t = Instant::now();
    assert_eq!(r.add(t, 0), None, "one poll gives no rate");
    assert_eq!(r.add(t + Duration::from_secs(1), 1000), Some(1000.0));
    assert_eq!(r.add(t + Duration::from_secs(2), 2000), Some(1000.0));
    // From 3 s on, the first poll is older than the window: only the pace
    // of the last two seconds counts.
    assert_eq!(r.add(t + Duration::from_secs(3), 5000), Some(2000.0));
    assert_eq!(r.add(t + Duration::from_secs(4), 5000), Some(1500.0));
}
