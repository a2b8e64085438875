//! `scenarios/fire-and-forget.toml` through the real CLI (issue 15): a
//! consumer that dies while its producers' publishes are still confirmed.
//! The queue-depth alarm goes on when the orders published since the crash
//! pass its threshold, which the daily cycle's integrated rate predicts
//! within a Poisson bound; and three simulated days cost events per order
//! and per sample only, never per idle millisecond.

use crate::common::{self, num, TempDir};
use serde_json::Value;
use std::f64::consts::TAU;

const FILE: &str = "scenarios/fire-and-forget.toml";

/// The daily cycle of the scenario's shop, read from the file.
struct Cycle {
    trough: f64,
    peak: f64,
    peak_at_s: f64,
}

fn cycle() -> Cycle {
    let text = std::fs::read_to_string(common::repo().join(FILE)).expect("the scenario");
    let t: toml::Table = toml::from_str(&text).expect("TOML");
    let a = &t["producers"]["shop"]["arrival"];
    let f = |k: &str| a[k].as_float().or_else(|| a[k].as_integer().map(|i| i as f64)).expect(k);
    assert_eq!(a["process"].as_str(), Some("daily"));
    Cycle { trough: f("trough_rate_per_s"), peak: f("peak_rate_per_s"), peak_at_s: f("peak_at_ms") / 1000.0 }
}

impl Cycle {
    /// Expected orders between `a` and `b` (seconds): the cosine's
    /// integral, written out here rather than taken from sim-core.
    fn expected(&self, a: f64, b: f64) -> f64 {
        let (mid, half, day) = ((self.peak + self.trough) / 2.0, (self.peak - self.trough) / 2.0, 86_400.0);
        let sin = |t: f64| (TAU * (t - self.peak_at_s) / day).sin();
        mid * (b - a) + half * day / TAU * (sin(b) - sin(a))
    }

    /// When the expected count from `from` reaches `n` (bisection).
    fn when(&self, from: f64, n: f64) -> f64 {
        let (mut lo, mut hi) = (from, from + 2.0 * 86_400.0);
        while hi - lo > 1e-3 {
            let mid = (lo + hi) / 2.0;
            if self.expected(from, mid) < n {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn variant<'a>(summary: &'a Value, name: &str) -> &'a Value {
    &summary["variants"][name]
}

#[test]
fn the_alarm_knows_when_the_backlog_passes_its_threshold_and_nobody_knows_without_one() {
    let dir = TempDir::new("fire-and-forget-alarm");
    let out = dir.path().join("out");
    let (summary, _) = common::run_summary(FILE, "3", &out);
    let c = cycle();
    // (variant, when the worker crashed, s). The alarm is on during the
    // interval whose closing sample exceeds 1,000 waiting, and `first_s`
    // is that interval's start. The count published since the crash is
    // Poisson: it passes 1,000 (plus the one delivery the crash hands
    // back, at prefetch 1) after the expected count reaches 1,001 - 5 sd
    // and before it reaches 1,001 + 5 sd, but for a chance below 1e-6.
    for (name, crash_s) in [("depth-alarm", 91_800.0), ("depth-alarm-daytime", 136_800.0)] {
        let v = variant(&summary, name);
        let first = num(v, "alarms.backlog.first_s");
        let (threshold, sd) = (1_000.0, 1_000f64.sqrt());
        let earliest = c.when(crash_s, threshold + 1.0 - 5.0 * sd) - 60.0;
        let latest = c.when(crash_s, threshold + 5.0 * sd);
        assert!(
            first >= earliest && first <= latest,
            "{name}: the alarm went on at {first} s, {:.0} s after the crash; expected between {earliest:.0} and {latest:.0}",
            first - crash_s
        );
        assert_eq!(num(v, "alarms.backlog.fired"), 1.0, "{name}: one failure, one alarm");
    }
    let night = num(variant(&summary, "depth-alarm"), "alarms.backlog.first_s") - 91_800.0;
    let day = num(variant(&summary, "depth-alarm-daytime"), "alarms.backlog.first_s") - 136_800.0;
    assert!(night > 5.0 * day, "a night-time crash takes longer to know ({night} s) than a daytime one ({day} s)");
    // Without an alarm the summary has none to report: nothing told anyone.
    let quiet = variant(&summary, "no-alarm");
    assert!(quiet.get("alarms").is_none(), "no alarm, no `alarms`: {quiet}");
    for name in ["no-alarm", "depth-alarm", "depth-alarm-daytime"] {
        let v = variant(&summary, name);
        // The shop's view: every order confirmed, no error, nothing failed.
        assert_eq!(num(v, "acked"), num(v, "produced"), "{name}: every publish confirmed");
        assert_eq!((num(v, "errors"), num(v, "send_failed"), num(v, "lost")), (0.0, 0.0, 0.0), "{name}");
    }
    // Orders published from the crash to the end of day 3 waited in the
    // queue: about the cycle's count over that time.
    let backlog = c.expected(91_800.0, 259_200.0);
    let depth = num(quiet, "max_queue_depth");
    assert!((depth - backlog).abs() < 5.0 * backlog.sqrt() + 2.0, "no-alarm: {depth} waiting, expected {backlog:.0}");
}

/// Events each order may cost at most on this path: its arrival timer,
/// the publish's arrival, the confirm's arrival, the broker's disk sync
/// timer (at most one per persistent publish), the producer's ack
/// deadline timer (at most one per publish), the delivery's arrival, the
/// processing timer, the ack's arrival, and the broker's consumer-timeout
/// timer (at most one per delivery).
const EVENTS_PER_ORDER: f64 = 9.0;

/// Events a run may spend on anything but orders: one sample per
/// `sample_interval_ms` (60 s) over the horizon; the queue protocol has no
/// heartbeats, but while the worker is down the broker repeats its
/// `cancelled` notice to it once per `redelivery_timeout_ms` (30 min);
/// plus a few dozen of start-up, crash, restart and phases.
fn idle_allowance(v: &Value) -> f64 {
    let horizon = num(v, "run.horizon_s");
    horizon / 60.0 + horizon / 1800.0 + 2.0 + 50.0
}

#[test]
fn three_days_cost_events_per_order_and_per_sample_never_per_idle_millisecond() {
    let dir = TempDir::new("fire-and-forget-idle");
    let out = dir.path().join("out");
    let (summary, _) = common::run_summary(FILE, "1", &out);
    for (name, v) in summary["variants"].as_object().expect("variants") {
        let (events, produced) = (num(v, "run.events"), num(v, "produced"));
        let bound = EVENTS_PER_ORDER * produced + idle_allowance(v);
        assert!(events <= bound, "{name}: {events} events for {produced} orders, at most {bound}");
    }
    // Nearly idle: about 130 orders in three days, so the horizon's
    // 260,000 seconds are all but empty. Anything that worked per idle
    // second, let alone per millisecond, would cost 260,000 events or more;
    // the bound allows 1/60 + 1/1800 of an event per idle second.
    let quiet = dir.path().join("quiet");
    let o = common::asyncsim(&[
        "run",
        FILE,
        "--variant",
        "no-alarm",
        "--no-plots",
        "--set",
        "producers.shop.arrival.trough_rate_per_s=0",
        "--set",
        "producers.shop.arrival.peak_rate_per_s=0.001",
        "--out",
        quiet.to_str().expect("UTF-8"),
    ]);
    // Its expectations (90,000 waiting) fail at this rate: exit 1, not 2 or 3.
    assert_eq!(o.status.code(), Some(1), "{}", common::describe(&o));
    let text = std::fs::read_to_string(quiet.join("summary.json")).expect("summary.json");
    let s: Value = serde_json::from_str(&text).expect("JSON");
    let v = variant(&s, "no-alarm");
    let (events, produced, horizon) = (num(v, "run.events"), num(v, "produced"), num(v, "run.horizon_s"));
    assert!(horizon > 259_200.0 && produced > 0.0 && produced < 400.0, "{produced} orders over {horizon} s");
    let idle_per_s = (events - EVENTS_PER_ORDER * produced) / horizon;
    assert!(
        events <= EVENTS_PER_ORDER * produced + idle_allowance(v),
        "{events} events for {produced} orders: {idle_per_s:.4} per idle second, at most 1/60 + 1/1800 and a few"
    );
}

#[test]
fn a_daily_cycle_upside_down_and_an_unknown_gauge_are_refused_with_their_field() {
    let dir = TempDir::new("fire-and-forget-bad");
    let text = r#"name = "bad"
concept = "test"
[run]
duration_ms = 1_000
[producers.p]
target = "b"
arrival = { process = "daily", trough_rate_per_s = 2, peak_rate_per_s = 1 }
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
processing = { dist = "constant", ms = 1 }
"#;
    let file = dir.write("s.toml", text);
    let err = common::assert_bad_input(&common::asyncsim(&["validate", file.to_str().unwrap()]));
    common::assert_names(&err, &file, 7, "producers.p.arrival");
    assert!(err.contains("peak_rate_per_s"), "{err}");
    // `queue_depth` is known in every scenario; a near miss is refused with it suggested.
    let alarm = |gauge: &str| {
        let t = text.replace("trough_rate_per_s = 2", "trough_rate_per_s = 0");
        format!("{t}[[alarms]]\ngauge = \"{gauge}\"\nabove = 10\n")
    };
    let ok = dir.write("ok.toml", &alarm("queue_depth"));
    let o = common::asyncsim(&["validate", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", common::describe(&o));
    let near = dir.write("near.toml", &alarm("queue_dept"));
    let err = common::assert_bad_input(&common::asyncsim(&["validate", near.to_str().unwrap()]));
    assert!(err.contains("did you mean `queue_depth`?"), "{err}");
}
