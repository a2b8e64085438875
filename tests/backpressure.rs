//! Back-pressure (issue 15): property tests of the strategies, a
//! closed-form check of an unbounded queue under a constant overload, and
//! the relations between the variants of `scenarios/backpressure.toml`
//! run through the command line.
//!
//! - `throttle`: a bounded queue refusing publishes, a producer waiting for
//!   confirms, retrying, and blocking its callers on a bounded buffer: for
//!   random rates, capacities and buffers, nothing is lost and the queue
//!   never holds more than its bound.
//! - `drop-newest` / `drop-oldest`: a fire-and-forget producer into a
//!   bounded queue: what is lost is exactly what the queue shed (its
//!   `rejected` or `dropped-head` errors), with that cause and no other.
//! - `grow`: Poisson arrivals at rate a into an unbounded queue served at a
//!   constant rate s < a: the backlog grows at a - s a second.

use crate::common;

use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

/// Runs the one variant of `text` with `seed`.
fn run(text: &str, seed: u64) -> RunOutput {
    let scenario = Scenario::parse("generated.toml", text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
    let mut configs = scenario.configs().unwrap_or_else(|e| panic!("configs: {e}\n{text}"));
    let (_, config) = configs.remove(0);
    run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\n{text}"))
}

/// A producer at `rate` msg/s for `duration_ms` into a queue broker with
/// `broker` settings, drained by one consumer of `service_ms` a message
/// with credit `prefetch`; `producer` adds the producer's settings.
fn scenario(rate: f64, duration_ms: u64, service_ms: f64, prefetch: u32, broker: &str, producer: &str) -> String {
    format!(
        r#"
name = "generated"
concept = "back-pressure"
seed = 1
[run]
duration_ms = {duration_ms}
drain_ms = 600_000
[network]
latency = {{ dist = "uniform", min_ms = 0.2, max_ms = 2 }}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
keys = {{ distribution = "uniform", count = 10 }}
{producer}
[brokers.b]
kind = "queue"
{broker}
[consumers.c]
source = "b"
processing = {{ dist = "exponential", mean_ms = {service_ms} }}
prefetch = {prefetch}
"#
    )
}

proptest! {
    #![proptest_config(common::proptest_config(24))]

    #[test]
    fn throttle_loses_nothing_and_the_queue_never_passes_its_bound(
        rate in 200.0..3_000.0f64,
        capacity in 1u64..400,
        service_ms in 1.0..20.0f64,
        prefetch in 1u32..10,
        in_flight in 1u32..50,
        buffer in 1u64..400,
        max_block_ms in 1u64..1_000,
        backoff_ms in 0u64..50,
        seed in 1u64..1_000,
    ) {
        let broker = format!("capacity = {capacity}\noverflow = \"reject-publish\"");
        let producer = format!(
            "acks = \"broker\"\nack_timeout_ms = 50\nretries = 1_000_000\nretry_backoff_ms = {backoff_ms}\n\
             max_in_flight = {in_flight}\nbuffer_messages = {buffer}\nmax_block_ms = {max_block_ms}"
        );
        let text = scenario(rate, 1_500, service_ms, prefetch, &broker, &producer);
        let out = run(&text, seed);
        let c = &out.counts;
        prop_assert_eq!(c.lost, 0, "nothing is lost: {:?}\n{}", c, text);
        prop_assert!(out.max_queue_depth <= capacity, "depth {} > bound {capacity}\n{text}", out.max_queue_depth);
        prop_assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed);
        // What failed, failed at the caller: a blocked send that gave up.
        prop_assert_eq!(c.send_failed, out.errors.get("buffer-full").copied().unwrap_or(0), "{:?}", out.errors);
        common::nothing_unexplained(&out).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn what_a_shedding_queue_loses_is_exactly_what_it_shed(
        rate in 200.0..3_000.0f64,
        capacity in 0u64..400,
        service_ms in 1.0..20.0f64,
        prefetch in 1u32..10,
        drop_head in any::<bool>(),
        seed in 1u64..1_000,
    ) {
        let overflow = if drop_head { "drop-head" } else { "reject-publish" };
        let broker = format!("capacity = {capacity}\noverflow = \"{overflow}\"");
        let text = scenario(rate, 1_500, service_ms, prefetch, &broker, "");
        let out = run(&text, seed);
        let c = &out.counts;
        let (error, cause) = if drop_head { ("dropped-head", "dropped_head") } else { ("rejected", "shed") };
        let shed = out.errors.get(error).copied().unwrap_or(0);
        prop_assert_eq!(c.lost, shed, "lost {} shed {}: {:?}\n{}", c.lost, shed, c, text);
        let by_cause: Vec<(&str, u64)> = c.lost_by_cause.iter().map(|(k, v)| (*k, *v)).collect();
        let expected = if shed > 0 { vec![(cause, shed)] } else { vec![] };
        prop_assert_eq!(by_cause, expected, "lost for no other cause\n{}", text);
        prop_assert_eq!(c.send_failed, 0);
        prop_assert!(out.max_queue_depth <= capacity.max(1));
    }
}

/// A constant overload: Poisson arrivals at `A` msg/s into an unbounded
/// queue, one consumer taking exactly `1000 / SERVICE_MS` msg/s (a constant
/// service time, so the departures have no variance while it is busy).
const A: f64 = 1_000.0;
const SERVICE_MS: f64 = 10.0;
const T_S: f64 = 20.0;
const LATENCY_MS: f64 = 1.0;

fn overload() -> String {
    format!(
        r#"
name = "overload"
concept = "grow"
seed = 1
[run]
duration_ms = {}
drain_ms = 1
sample_interval_ms = 1_000
[network]
latency = {{ dist = "constant", ms = {LATENCY_MS} }}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {A} }}
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = {SERVICE_MS} }}
prefetch = 1
"#,
        T_S * 1000.0
    )
}

/// The queue depth sampled at `t` seconds.
fn depth_at(out: &RunOutput, t: f64) -> f64 {
    let s = out.samples.iter().find(|s| (s.time_s - t).abs() < 1e-9).unwrap_or_else(|| panic!("no sample at {t} s"));
    s.queue_depth as f64
}

#[test]
fn an_unbounded_queue_under_constant_overload_grows_at_arrival_minus_service_rate() {
    // Between two samples h seconds apart while the consumer is busy, the
    // depth changes by (arrivals in h) - s*h, up to the one delivery the
    // consumer holds (prefetch 1) and what is on the wire (at most a few
    // messages in LATENCY_MS): arrivals are Poisson(A*h), so the growth
    // rate measured over h has mean A - s and standard deviation
    // sqrt(A*h)/h = sqrt(A/h). Averaged over n independent seeds, the
    // deviation is sqrt(A/h/n); allow 5 of them (a 1-in-1.7-million miss for
    // a normal), plus the boundary terms: 2 held (a delivery in progress at
    // each end) and the arrivals of 2 link latencies at each end, over h.
    let s = 1000.0 / SERVICE_MS;
    let (t0, t1) = (T_S / 2.0, T_S);
    let h = t1 - t0;
    let seeds = 1..=5u64;
    let n = seeds.clone().count() as f64;
    let text = overload();
    let rates: Vec<f64> = seeds
        .map(|seed| {
            let out = run(&text, seed);
            (depth_at(&out, t1) - depth_at(&out, t0)) / h
        })
        .collect();
    let mean = rates.iter().sum::<f64>() / n;
    let boundary = (2.0 + 2.0 * 2.0 * A * LATENCY_MS / 1000.0) / h;
    let tolerance = 5.0 * (A / h / n).sqrt() + boundary;
    assert!(
        (mean - (A - s)).abs() <= tolerance,
        "the backlog grew at {mean:.1}/s ({rates:?}), expected {} ± {tolerance:.1}",
        A - s
    );
    // And each run on its own, at its own (wider) bound.
    for r in &rates {
        assert!((r - (A - s)).abs() <= 5.0 * (A / h).sqrt() + boundary, "{r} in {rates:?}");
    }
}

/// The variants of `scenarios/backpressure.toml` at `seed`, by name.
fn variants(seed: &str, name: &str) -> serde_json::Value {
    let dir = common::TempDir::new(name);
    let (summary, _) = common::run_summary("scenarios/backpressure.toml", seed, dir.path());
    summary["variants"].clone()
}

#[test]
fn the_scenario_shows_each_strategy_putting_the_excess_in_its_own_place() {
    let v = variants("1", "bp-relations");
    let n = |variant: &str, path: &str| common::num(&v[variant], path);
    // throttle: nothing lost, the bound held, the callers paid.
    assert_eq!(n("throttle", "lost"), 0.0);
    assert!(n("throttle", "max_queue_depth") <= 1000.0);
    assert!(n("throttle", "send_failed") > 0.0);
    assert!(n("throttle", "send_ms.p99") > 10.0 * n("grow", "send_ms.p99").max(1.0));
    // grow: nothing lost, a backlog beyond the others' bound, stored bytes.
    assert_eq!(n("grow", "lost"), 0.0);
    assert!(n("grow", "max_queue_depth") > n("throttle", "max_queue_depth"));
    assert!(n("grow", "max_stored_bytes") >= 4096.0 * 1000.0);
    assert!(n("grow", "max_stored_bytes") > n("throttle", "max_stored_bytes"));
    // drop-*: they lose, for their own cause.
    for (variant, cause) in [("drop-newest", "shed"), ("drop-oldest", "dropped_head")] {
        assert!(n(variant, "lost") > 0.0);
        assert_eq!(n(variant, "lost"), n(variant, &format!("lost_by_cause.{cause}")));
        assert!(n(variant, "latency_ms.p99") < n("grow", "latency_ms.p99"), "shedding bounds the wait");
    }
    // rate-limit: the queue stays short, the producer-side latency grows.
    assert_eq!(n("rate-limit", "lost"), 0.0);
    assert!(n("rate-limit", "max_queue_depth") * 10.0 < n("grow", "max_queue_depth"));
    assert!(n("rate-limit", "send_ms.p99") > n("grow", "latency_ms.p50"));
    // credit: the broker holds the backlog, the consumer at most its credit.
    assert_eq!(n("credit", "lost"), 0.0);
    assert!(n("credit", "metrics.max_unacked") <= 20.0);
    assert!(n("credit", "max_queue_depth") > 1000.0);
}

/// Column `column` of `variant`'s row at `time_s` in a timeseries.csv.
fn series(csv: &str, variant: &str, time_s: &str, column: &str) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (v, t, c) = (at("variant"), at("time_s"), at(column));
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[v] == variant && r[t] == time_s)
        .unwrap_or_else(|| panic!("no row {variant} at {time_s} s"));
    row[c].parse().expect("a number")
}

/// The credit variant's time series, with extra `--set` arguments.
fn credit_series(name: &str, set: &[&str]) -> String {
    let dir = common::TempDir::new(name);
    let out = dir.path().to_str().expect("UTF-8").to_string();
    let mut args = vec!["run", "scenarios/backpressure.toml", "--variant", "credit", "--out", &out];
    for s in set {
        args.extend(["--set", s]);
    }
    let o = common::asyncsim(&args);
    // Exit 1 when a `--set` breaks an expectation of the variant: the run is whole.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", common::describe(&o));
    std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap_or_else(|_| common::describe(&o))
}

#[test]
fn without_credit_the_backlog_moves_into_the_consumer_and_a_crash_returns_all_of_it() {
    // The consumer crashes at 8 s for 1 s; half a second before, the burst
    // has left a backlog of a few thousand messages somewhere.
    let (credit, unlimited) =
        (credit_series("bp-credit", &[]), credit_series("bp-no-credit", &["consumers.worker.prefetch=0"]));
    let at = |csv: &str, t: &str, c: &str| series(csv, "credit", t, c);
    // With credit 20 the broker holds it, ready, and the consumer 20.
    assert!(at(&credit, "7.5", "queue_depth") > 1000.0);
    assert!(at(&credit, "7.5", "unacked") <= 20.0);
    // With unlimited credit the queue looks empty: the consumer holds it all.
    assert!(at(&unlimited, "7.5", "queue_depth") < 20.0, "{unlimited}");
    let held = at(&unlimited, "7.5", "unacked");
    assert!(held > 1000.0);
    // Its crash sends everything it held back to the queue at once.
    assert!(at(&unlimited, "8.5", "queue_depth") > held, "{unlimited}");
    assert!(at(&unlimited, "8.5", "unacked") == 0.0, "the consumer is down and holds nothing");
    // Both kept every message: the broker had them until acked.
    assert!(at(&credit, "7.5", "stored_bytes") >= 4096.0 * at(&credit, "7.5", "queue_depth"));
    assert!(at(&unlimited, "7.5", "stored_bytes") >= 4096.0 * held);
}
