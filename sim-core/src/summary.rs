//! The stable output of a run: what `summary.json` holds. Keys are part of
//! the public contract (scripts and notebooks read them); add keys, never
//! rename or remove them.

use crate::engine::RunOutput;
use crate::expect::{self, Keys, Outcome};
use crate::kind::{Node, Topology};
use crate::ledger::{Counts, DomainCounts};
use crate::metrics::LatencySummary;
use crate::net::NetStats;
use crate::time::{ns_to_ms, ns_to_s};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Facts about the run itself.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunInfo {
    /// When the run phase ended (simulated seconds).
    pub run_end_s: f64,
    /// The horizon of rates: the later of the run's end and the last first
    /// application of an effect.
    pub horizon_s: f64,
    /// When the last message or timer was handled.
    pub last_event_s: f64,
    /// Events dispatched.
    pub events: u64,
    /// A digest of every dispatched event: equal digests, equal histories.
    pub trace_digest: String,
    /// False when the drain ran out of time (`run.drain_ms`) with work
    /// left: messages then in flight never got their chance, and the
    /// latencies (see their `count`) leave them out.
    pub drain_complete: bool,
    /// Present only when a bound (`run.max_events`, `run.max_memory_mb`)
    /// stopped the run early: the counts are what it had measured then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StoppedInfo>,
}

/// Which bound stopped a run, and when.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoppedInfo {
    /// `"max_events"` or `"max_memory"`.
    pub reason: &'static str,
    /// Simulated seconds when it stopped.
    pub at_s: f64,
}

/// A fault beginning or ending.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FaultEntry {
    /// When (simulated milliseconds).
    pub time_ms: f64,
    /// Which fault.
    pub fault: String,
    /// "begins", "ends", or "skipped" (scheduled after the run phase ended).
    pub event: &'static str,
}

/// One variant's results.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VariantSummary {
    /// What the variant shows.
    pub description: String,
    /// Which scenario it ran: a hash of the variant's resolved scenario
    /// (after its overrides and `--set`; see [`crate::scenario::Config::fingerprint`]),
    /// empty when the caller does not set it.
    pub scenario_hash: String,
    /// The ledger's counts: produced, acked, delivered, processed, lost,
    /// duplicated, reordered, in_flight, send_failed (keys at this level).
    #[serde(flatten)]
    pub counts: Counts,
    /// Messages whose effect was applied in some effect domains but not in
    /// all of them at the end (0 with one domain): X changed, Y never told.
    pub inconsistent: u64,
    /// Each effect domain's counts, by name (one entry, usually `default`,
    /// when the scenario has one domain).
    pub domains: BTreeMap<String, DomainCounts>,
    /// Named figures the scenario's components report (a broker's truncated
    /// records, a client's late responses, partition skew...).
    pub metrics: BTreeMap<String, f64>,
    /// Errors of every kind.
    pub errors: u64,
    /// First applications per simulated second over the horizon.
    pub throughput_per_s: f64,
    /// Production to first application.
    pub latency_ms: LatencySummary,
    /// Production to first start of processing.
    pub wait_ms: LatencySummary,
    /// The user-visible response time, measured at the users' side: from
    /// a request to the answer they see (success, error or their own
    /// timeout, retries included). Present when the scenario has users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<LatencySummary>,
    /// From a request to its outcome being known to the user: the
    /// response of a synchronous call, the poll or callback that brings
    /// an asynchronous one's. Present when the scenario has users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_ms: Option<LatencySummary>,
    /// Producer-side latency: from a message's production to its queue
    /// broker's confirm, or to its leaving the producer when
    /// fire-and-forget (waits for a rate limit's token and for room in
    /// the producer's buffer included). Present when the scenario has a
    /// producer to a queue broker; sends that failed are not in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_ms: Option<LatencySummary>,
    /// The highest fraction, 0 to 1, of an edge service's workers busy at
    /// once (an edge service is one users call): `metrics.pool_saturation_max`,
    /// repeated here. Present when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_saturation_max: Option<f64>,
    /// Money (`availability`, `withdrawals`, `overdraft`, `max_exposure`,
    /// `unsettled`, `reconciled_at_s`, keys at this level), as the state
    /// observer judged it ([`crate::observer::accounts`]). Present when
    /// the scenario moves money.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub money: Option<crate::observer::accounts::MoneySummary>,
    /// Replicated state: staleness of reads, consistency windows,
    /// divergence at the end ([`crate::observer::replicas`]). Present when
    /// the scenario has replicas, writes or reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<crate::observer::replicas::ConsistencySummary>,
    /// Aggregates against the true counts ([`crate::observer::tallies`]).
    /// Present when the scenario aggregates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<crate::observer::tallies::AggregationSummary>,
    /// Time-average number of produced, unapplied messages (Little's L).
    pub mean_in_system: f64,
    /// Highest total number of messages waiting in broker queues.
    pub max_queue_depth: u64,
    /// The most bytes queue brokers stored at once (ready and unacked
    /// messages), as sampled at each `run.sample_interval_ms` (the
    /// `stored_bytes` gauge). Present when the scenario has a queue broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stored_bytes: Option<u64>,
    /// Simulated seconds from the sampled peak of the queue depth to its
    /// first sample back at 1% of the peak or below; `null` when nothing
    /// waited or the backlog never drained.
    pub time_to_drain_s: Option<f64>,
    /// Distinct messages ever put into a dead-letter queue.
    pub dead_lettered: u64,
    /// What became of them: applied everywhere, still held, or neither.
    pub dead_letters: crate::ledger::DeadLetters,
    /// Consumer lag and autoscaling: `max_lag_s`, `max_consumers`,
    /// `consumer_hours`, `consumer_cost_usd` (keys at this level, each
    /// present where it applies; see [`crate::replicas::cost`]).
    #[serde(flatten)]
    pub scaling: crate::replicas::cost::ScalingSummary,
    /// The share of the effects due that were applied by the end:
    /// `processed / (produced x effect domains)`, 0 to 1 (with one domain,
    /// `processed / produced`); `null` when none was produced.
    pub success_rate: Option<f64>,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// What the network did.
    pub network: NetStats,
    /// Facts about the run.
    pub run: RunInfo,
    /// Faults as they began and ended.
    pub faults: Vec<FaultEntry>,
    /// What each of the scenario's alarms did (see [`crate::alarms`]);
    /// absent when it declares none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms: BTreeMap<String, crate::alarms::AlarmOutcome>,
    /// Each expectation and whether it held.
    pub expectations: Vec<Outcome>,
    /// Each invariant the variant claims and whether it held (see
    /// [`crate::check`]); absent when it claims none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<crate::check::Judgement>,
}

impl VariantSummary {
    /// Summarises `out`, judges `alarms` on its time series, then checks
    /// `expectations` against the summary.
    pub fn new(
        description: &str,
        out: &RunOutput,
        expectations: &[String],
        alarms: &[crate::alarms::AlarmSpec],
    ) -> Self {
        let c = &out.counts;
        let horizon_s = ns_to_s(out.end);
        let mut s = VariantSummary {
            description: description.to_string(),
            scenario_hash: String::new(),
            counts: c.clone(),
            inconsistent: out.inconsistent,
            domains: out.domains.clone(),
            metrics: out.metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            errors: out.errors_total,
            throughput_per_s: if horizon_s > 0.0 { c.processed as f64 / horizon_s } else { 0.0 },
            latency_ms: out.latency.clone(),
            wait_ms: out.wait.clone(),
            response_ms: out.timings[0].clone(),
            completion_ms: out.timings[1].clone(),
            send_ms: out.timings[2].clone(),
            pool_saturation_max: out.metrics.get(POOL_SATURATION_MAX).copied(),
            money: out.state.money.clone(),
            consistency: out.state.consistency.clone(),
            aggregation: out.state.aggregation.clone(),
            mean_in_system: out.mean_in_system,
            max_queue_depth: out.max_queue_depth,
            max_stored_bytes: gauge_peak(&out.samples, STORED_BYTES),
            time_to_drain_s: out.time_to_drain_s,
            dead_lettered: out.dead_letters.dead_lettered,
            dead_letters: out.dead_letters,
            scaling: crate::replicas::cost::ScalingSummary::of(&out.samples),
            success_rate: (c.produced > 0)
                .then(|| c.processed as f64 / (c.produced * out.domains.len().max(1) as u64) as f64),
            errors_by_kind: out.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            network: out.network.clone(),
            run: RunInfo {
                run_end_s: ns_to_s(out.run_end),
                horizon_s,
                last_event_s: ns_to_s(out.last_event),
                events: out.events,
                trace_digest: out.digest.clone(),
                drain_complete: out.drain_complete,
                stopped: out.stopped.map(|s| StoppedInfo { reason: s.reason, at_s: ns_to_s(s.at) }),
            },
            faults: out
                .fault_log
                .iter()
                .map(|(t, label, begins)| FaultEntry {
                    time_ms: ns_to_ms(*t),
                    fault: label.clone(),
                    event: begins.name(),
                })
                .collect(),
            alarms: crate::alarms::judge(alarms, &out.samples),
            expectations: Vec::new(),
            invariants: Vec::new(),
        };
        let json = serde_json::to_value(&s).unwrap_or_default();
        s.expectations = expectations.iter().map(|e| expect::evaluate(e, &json)).collect();
        s
    }

    /// Judges the claimed `invariants` (names, as [`crate::check`] reads
    /// them) on this summary.
    pub fn judge_invariants(&mut self, invariants: &[String]) {
        let json = serde_json::to_value(&*self).unwrap_or_default();
        self.invariants = crate::check::judge_all(invariants, &json);
    }

    /// True when every expectation and every claimed invariant held.
    pub fn all_held(&self) -> bool {
        self.expectations.iter().all(|e| e.held) && self.invariants.iter().all(|j| j.held)
    }
}

/// The whole `summary.json`: one scenario run, all its variants.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The version of asyncsim that ran it.
    pub asyncsim_version: String,
    /// The scenario's name.
    pub scenario: String,
    /// The concept it teaches.
    pub concept: String,
    /// The seed every variant ran with.
    pub seed: u64,
    /// Command-line overrides.
    pub overrides: serde_json::Map<String, serde_json::Value>,
    /// Results by variant, in file order.
    #[serde(serialize_with = "ordered")]
    pub variants: Vec<(String, VariantSummary)>,
}

fn ordered<S: Serializer>(v: &[(String, VariantSummary)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(v.len()))?;
    for (k, val) in v {
        map.serialize_entry(k, val)?;
    }
    map.end()
}

/// The gauge of the bytes a queue broker stores (see [`crate::broker`]'s
/// queue broker), whose peak the summary reports as `max_stored_bytes`.
pub const STORED_BYTES: &str = "stored_bytes";

/// The highest value gauge `name` had in a sample, when some node reported it.
fn gauge_peak(samples: &[crate::metrics::Sample], name: &str) -> Option<u64> {
    let values = samples.iter().filter_map(|s| s.gauges.iter().find(|(g, _)| g == name).map(|&(_, v)| v as u64));
    values.max()
}

/// The metric an edge service raises to its pool's highest busy fraction,
/// which the summary repeats at its top level.
pub const POOL_SATURATION_MAX: &str = "pool_saturation_max";

/// Metric names the engine itself reports, whatever the nodes: reportable
/// in every scenario. None today: every figure under `metrics` comes from a
/// component, whose kind declares it ([`crate::kind::Kind::METRICS`]).
/// `sim-core/tests/kinds.rs` checks the engine's sources against this list.
pub const ENGINE_METRICS: &[&str] = &[];

/// Error kinds the engine itself reports, whatever the nodes. None today,
/// as for [`ENGINE_METRICS`].
pub const ENGINE_ERRORS: &[&str] = &[];

/// The metric names and error kinds a run of `topology` can report, each
/// sorted: those the kinds of its nodes declare, and the engine's own. An
/// expectation may name only these (one never reported reads as 0).
pub fn reportable(topology: &Topology) -> (Vec<String>, Vec<String>) {
    let collect = |own: &[&str], of: fn(&Node) -> &'static [&'static str]| {
        let names: BTreeSet<&str> = topology.nodes().iter().flat_map(of).copied().chain(own.iter().copied()).collect();
        names.into_iter().map(str::to_string).collect()
    };
    (collect(ENGINE_METRICS, |n| n.kind_ref().metrics()), collect(ENGINE_ERRORS, |n| n.kind_ref().errors()))
}

/// The plots the kinds of `topology`'s nodes add ([`crate::kind::Kind::PLOTS`]),
/// each once, in the order their nodes come.
pub fn kind_plots(topology: &Topology) -> Vec<crate::kind::KindPlot> {
    let mut plots: Vec<crate::kind::KindPlot> = Vec::new();
    for node in topology.nodes() {
        for p in node.kind_ref().plots() {
            if !plots.iter().any(|q| q.name == p.name) {
                plots.push(*p);
            }
        }
    }
    plots
}

/// The keys an expectation may name, read off the summary's own shape.
pub fn expectation_keys() -> Keys {
    let every = VariantSummary {
        response_ms: Some(LatencySummary::default()),
        completion_ms: Some(LatencySummary::default()),
        send_ms: Some(LatencySummary::default()),
        max_stored_bytes: Some(0),
        pool_saturation_max: Some(0.0),
        money: Some(Default::default()),
        consistency: Some(Default::default()),
        aggregation: Some(Default::default()),
        time_to_drain_s: Some(0.0),
        scaling: crate::replicas::cost::ScalingSummary::every(),
        success_rate: Some(0.0),
        ..VariantSummary::default()
    };
    let summary = serde_json::to_value(every).unwrap_or_default();
    let domain = serde_json::to_value(DomainCounts::default()).unwrap_or_default();
    Keys::of(&summary, &domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_may_name_every_numeric_key_of_the_summary() {
        let keys = expectation_keys();
        for key in [
            "lost",
            "duplicated",
            "latency_ms.p99",
            "throughput_per_s",
            "run.events",
            "response_ms.p99",
            "completion_ms.p999",
            "send_ms.p99",
            "max_stored_bytes",
            "pool_saturation_max",
            "availability",
            "overdraft.count",
            "overdraft.amount",
            "max_exposure",
            "withdrawals.accounts_offline",
            "consistency.stale_fraction",
            "consistency.window_ms.p99",
            "consistency.own_not_found",
            "aggregation.abs_error",
            "time_to_drain_s",
            "dead_lettered",
            "dead_letters.held",
            "success_rate",
        ] {
            assert!(keys.known.iter().any(|k| k == key), "{key} is missing from {:?}", keys.known);
        }
        assert!(keys.per_domain.iter().any(|k| k == "latency_ms.p999"));
        let check = |e: &str| expect::check_all_in(&[e.to_string()], &keys, &expect::Scope::default());
        assert!(check("latency_ms.p99 < 10").is_ok());
        assert!(check("lots == 0").is_err());
    }
}
