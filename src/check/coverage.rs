//! Coverage of one run, for the guided fault search ([`super::guided`]):
//! the run's *features*, a set of short strings naming what it reached.
//! Two runs that reach the same features count as the same behaviour; a
//! run with a feature no earlier run of its lane had is new behaviour, and
//! the guided search keeps its case to mutate.
//!
//! The features of a run, drawn from its marks and its summary only:
//!
//! - `mark:ROLE:WHAT`: a protocol moment (a mark, see
//!   [`sim_core::engine::Fact::Mark`]) at a node of this role: the node's
//!   name without a trailing `-N` (so `kafka-1`, `kafka-2` are both
//!   `kafka`: symmetric replicas are one role);
//! - `marks:WHAT:B`: how many times the moment happened, bucketed (`B` as
//!   below);
//! - `then:A>B`: moment `B` came next after moment `A` (in time order,
//!   repeats of one moment folded into one): the order of protocol moments,
//!   so "isr shrunk" then "unclean leader election" is new even when both
//!   were seen apart. This is the search's view of the component state
//!   transitions;
//! - `error:KIND`, `lost:CAUSE`, `dup:CAUSE`: error kinds, causes of loss
//!   and of duplication seen (over every effect domain);
//! - `alarm:NAME`: an alarm that fired;
//! - `metric:NAME:B` for every non-zero metric, and `count:NAME:B` for the
//!   ledger's counts (lost, duplicated, reordered, inconsistent, errors,
//!   acked_lost, dead_lettered, send_failed, in_flight) and the network's
//!   drops and duplicates;
//! - `violated:INVARIANT` for each invariant that did not hold.
//!
//! Buckets `B` are AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31,
//! 32-127, 128+ (written `1`, `2`, `3`, `4`, `8`, `16`, `32`, `128`), for
//! non-negative whole figures; a fractional figure is bucketed by its
//! rounded-up value. Zero is no feature. So a figure's order of magnitude
//! counts, not its exact value (which would make nearly every run new).
//!
//! Left out, and why: latencies and throughput (they move with every seed:
//! every run would be new); which node each count happened at (the marks
//! carry that); an engine-level record of (receiver kind, message kind)
//! pairs delivered: the marks, metrics and error kinds the kinds already
//! report name their state changes in their own words, and a per-event
//! record would cost the hot loop on every run for the search's sake.

use super::case::Ran;
use serde_json::Value;
use std::collections::BTreeSet;

/// A run's features.
pub type Features = BTreeSet<String>;

/// The summary's counts that become `count:` features (JSON pointers).
const COUNTS: [&str; 13] = [
    "lost",
    "duplicated",
    "reordered",
    "inconsistent",
    "errors",
    "acked_lost",
    "dead_lettered",
    "send_failed",
    "in_flight",
    "network/dropped_loss",
    "network/dropped_partition",
    "network/dropped_crashed",
    "network/duplicated",
];

/// The features `ran` reached.
pub fn features(ran: &Ran) -> Features {
    let mut out = Features::new();
    marks(&ran.marks, &mut out);
    summary(&ran.summary, &mut out);
    for j in ran.judgements.iter().filter(|j| !j.held) {
        out.insert(format!("violated:{}", j.invariant));
    }
    out
}

/// The features of a run's marks: (time in ns, node, what).
pub fn marks(marks: &[(u64, String, &'static str)], out: &mut Features) {
    let mut sorted: Vec<&(u64, String, &'static str)> = marks.iter().collect();
    sorted.sort_by_key(|m| m.0);
    let mut counts: Vec<(&str, u64)> = Vec::new();
    let mut last: Option<&str> = None;
    for (_, node, what) in sorted {
        out.insert(format!("mark:{}:{what}", role(node)));
        match counts.iter_mut().find(|(w, _)| w == what) {
            Some(c) => c.1 += 1,
            None => counts.push((what, 1)),
        }
        if let Some(prev) = last.filter(|p| p != what) {
            out.insert(format!("then:{prev}>{what}"));
        }
        last = Some(what);
    }
    for (what, n) in counts {
        out.insert(format!("marks:{what}:{}", bucket(n)));
    }
}

/// The features of a variant's summary.
pub fn summary(s: &Value, out: &mut Features) {
    for (key, prefix) in [("errors_by_kind", "error"), ("lost_by_cause", "lost"), ("duplicated_by_cause", "dup")] {
        nonzero_keys(s.get(key), prefix, out);
        for domain in s.get("domains").and_then(Value::as_object).into_iter().flat_map(|d| d.values()) {
            nonzero_keys(domain.get(key), prefix, out);
        }
    }
    for (name, alarm) in s.get("alarms").and_then(Value::as_object).into_iter().flatten() {
        if alarm.get("fired").and_then(Value::as_f64).is_some_and(|n| n > 0.0) {
            out.insert(format!("alarm:{name}"));
        }
    }
    for (name, v) in s.get("metrics").and_then(Value::as_object).into_iter().flatten() {
        if let Some(b) = v.as_f64().and_then(bucket_of) {
            out.insert(format!("metric:{name}:{b}"));
        }
    }
    for key in COUNTS {
        let v = s.pointer(&format!("/{key}")).and_then(Value::as_f64);
        if let Some(b) = v.and_then(bucket_of) {
            out.insert(format!("count:{key}:{b}"));
        }
    }
}

/// One `prefix:KEY` feature per key of `map` with a non-zero value.
fn nonzero_keys(map: Option<&Value>, prefix: &str, out: &mut Features) {
    for (k, v) in map.and_then(Value::as_object).into_iter().flatten() {
        if v.as_f64().is_some_and(|n| n != 0.0) {
            out.insert(format!("{prefix}:{k}"));
        }
    }
}

/// A node's role: its name without a trailing `-N` (`kafka-2`: `kafka`).
pub fn role(node: &str) -> &str {
    match node.rsplit_once('-') {
        Some((stem, n)) if !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => node,
    }
}

/// The bucket of a figure: none for zero, a negative or a non-finite
/// figure, else [`bucket`] of it rounded up.
fn bucket_of(v: f64) -> Option<u64> {
    (v.is_finite() && v > 0.0).then(|| bucket(v.ceil().min(u64::MAX as f64) as u64))
}

/// AFL's hit-count bucket of `n` >= 1: the lowest value of its bucket.
pub fn bucket(n: u64) -> u64 {
    match n {
        0 => 0,
        1..=3 => n,
        4..=7 => 4,
        8..=15 => 8,
        16..=31 => 16,
        32..=127 => 32,
        _ => 128,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_fold_numbered_replicas_only() {
        assert_eq!(role("kafka-2"), "kafka");
        assert_eq!(role("kafka"), "kafka");
        assert_eq!(role("rabbit-a"), "rabbit-a");
        assert_eq!(role("-3"), "-3");
        assert_eq!(role("node-"), "node-");
    }

    #[test]
    fn buckets_are_afl_hit_counts() {
        let got: Vec<u64> = [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 10_000].iter().map(|&n| bucket(n)).collect();
        assert_eq!(got, [1, 2, 3, 4, 4, 8, 8, 16, 16, 32, 32, 128, 128]);
        assert_eq!(bucket_of(0.0), None);
        assert_eq!(bucket_of(f64::NAN), None);
        assert_eq!(bucket_of(0.2), Some(1));
        assert_eq!(bucket_of(5.5), Some(4));
    }

    #[test]
    fn marks_give_roles_counts_and_order() {
        let m = |t: u64, node: &str, what: &'static str| (t, node.to_string(), what);
        // Out of time order on purpose: the order is by time.
        let marks = [
            m(30, "kafka", "leader elected"),
            m(10, "kafka", "isr shrunk"),
            m(20, "kafka", "isr shrunk"),
            m(40, "kafka-1", "log truncated"),
            m(40, "kafka-2", "log truncated"),
        ];
        let mut out = Features::new();
        super::marks(&marks, &mut out);
        let want = [
            "mark:kafka:isr shrunk",
            "mark:kafka:leader elected",
            "mark:kafka:log truncated",
            "marks:isr shrunk:2",
            "marks:leader elected:1",
            "marks:log truncated:2",
            "then:isr shrunk>leader elected",
            "then:leader elected>log truncated",
        ];
        assert_eq!(out.iter().map(String::as_str).collect::<Vec<_>>(), want);
    }

    #[test]
    fn summaries_give_causes_alarms_and_bucketed_figures() {
        let s = json!({
            "lost": 12, "duplicated": 0, "acked_lost": 3,
            "lost_by_cause": {"truncated_after_partition": 12, "crash": 0},
            "duplicated_by_cause": {},
            "errors_by_kind": {"not-enough-replicas": 40},
            "domains": {"readers": {"lost_by_cause": {"leader_failover": 1}}},
            "alarms": {"offline": {"fired": 0}, "lag": {"fired": 2}},
            "metrics": {"isr_shrinks": 2.0, "rebalances": 0.0, "ratio": 0.25},
            "network": {"dropped_partition": 70, "dropped_loss": 0}
        });
        let mut out = Features::new();
        summary(&s, &mut out);
        let want = [
            "alarm:lag",
            "count:acked_lost:3",
            "count:lost:8",
            "count:network/dropped_partition:32",
            "error:not-enough-replicas",
            "lost:leader_failover",
            "lost:truncated_after_partition",
            "metric:isr_shrinks:2",
            "metric:ratio:1",
        ];
        assert_eq!(out.iter().map(String::as_str).collect::<Vec<_>>(), want);
    }
}
