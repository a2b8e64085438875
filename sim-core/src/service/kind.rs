//! The `service` kind: its `[services.NAME]` table, defaults, checks (the
//! dependencies' targets, the worker mode's broker and notify node) and the
//! construction of a [`Service`].

use super::breaker::BreakerConfig;
use super::{Service, Worker};
use crate::broker::{LogSpec, QueueSpec};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, KindPlot, Node, Topology};
pub use crate::reliable::Jitter;
use crate::time::ms_to_ns;
use crate::units::{Millis, Probability};
use serde::{Deserialize, Serialize};

/// How a service calls its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOrder {
    /// One after the other, in the order written; the first failure ends the request.
    #[default]
    Sequence,
    /// All at once; the reply waits for every one.
    Parallel,
}

/// A circuit breaker's settings as written (resilience4j's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Opens at or above this failure rate (resilience4j: 50 %).
    #[serde(default = "half")]
    pub failure_rate_threshold: Probability,
    /// Outcomes of the last this many calls are kept while closed (100).
    #[serde(default = "hundred")]
    pub sliding_window: u32,
    /// Outcomes needed before the rate is judged (100).
    #[serde(default = "hundred")]
    pub minimum_calls: u32,
    /// Time spent open before trying half-open (60 s).
    #[serde(default = "minute")]
    pub open_ms: Millis,
    /// Trial calls permitted half-open (10).
    #[serde(default = "ten")]
    pub half_open_calls: u32,
}

/// One dependency of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// The service or store called.
    pub target: String,
    /// How long one attempt waits for its reply.
    #[serde(default = "second")]
    pub timeout_ms: Millis,
    /// Attempts after the first.
    #[serde(default)]
    pub retries: u32,
    /// The wait before the first retry.
    #[serde(default = "hundred_ms")]
    pub backoff_ms: Millis,
    /// Each retry's backoff is the previous one times this.
    #[serde(default = "two")]
    pub backoff_multiplier: f64,
    /// Randomness added to the backoff.
    #[serde(default)]
    pub jitter: Jitter,
    /// At most this many calls in flight to it (0: no limit).
    #[serde(default)]
    pub bulkhead: u32,
    /// A circuit breaker in front of it.
    #[serde(default)]
    pub breaker: Option<BreakerSpec>,
}

/// A request/response service as written in a scenario file (`[services.NAME]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Requests handled at once (Tomcat's maxThreads, 200).
    #[serde(default = "two_hundred")]
    pub workers: u32,
    /// Requests waiting for a worker beyond the busy ones (acceptCount, 100).
    #[serde(default = "hundred")]
    pub queue_limit: u32,
    /// Own work per request, before the dependencies.
    #[serde(default)]
    pub processing: Dist,
    /// The service's own failures (500 after processing).
    #[serde(default)]
    pub error_probability: Probability,
    /// Sequence or parallel.
    #[serde(default)]
    pub calls: CallOrder,
    /// Honour callers' deadlines.
    #[serde(default)]
    pub propagate_deadline: bool,
    /// Worker mode: take requests from this queue broker.
    #[serde(default)]
    pub source: Option<String>,
    /// Worker mode: tell this node when a job ends.
    #[serde(default)]
    pub notify: Option<String>,
    /// Worker mode: wait before a failed job is tried again.
    #[serde(default = "second")]
    pub job_retry_ms: Millis,
    /// Worker mode: tries of a job before it is given up (0: no limit).
    #[serde(default)]
    pub job_attempts: u32,
    /// The calls it makes, in order.
    #[serde(default)]
    pub dependencies: Vec<DependencySpec>,
}

fn half() -> Probability {
    Probability(0.5)
}
fn hundred() -> u32 {
    100
}
fn two_hundred() -> u32 {
    200
}
fn ten() -> u32 {
    10
}
fn minute() -> Millis {
    Millis(60_000.0)
}
fn second() -> Millis {
    Millis(1000.0)
}
fn hundred_ms() -> Millis {
    Millis(100.0)
}
fn two() -> f64 {
    2.0
}

impl BreakerSpec {
    /// Its settings for the state machine.
    pub fn config(&self) -> BreakerConfig {
        BreakerConfig {
            failure_rate_threshold: self.failure_rate_threshold.0,
            sliding_window: self.sliding_window,
            minimum_calls: self.minimum_calls,
            open_ns: ms_to_ns(self.open_ms.0),
            half_open_calls: self.half_open_calls,
        }
    }
}

/// The service kind.
pub struct ServiceKind;

/// Most dependencies one service may have.
const MAX_DEPENDENCIES: usize = 1000;

impl Kind for ServiceKind {
    type Spec = ServiceSpec;
    const NAME: &'static str = "service";
    const ACCEPTS_ERRORS_FAULT: bool = true;
    const SECTION: &'static str = "services";
    const METRICS: &'static [&'static str] = &[
        "requests_rejected",
        "dependency_timeouts",
        "dependency_errors",
        "dependency_retries",
        "breaker_opened",
        "breaker_rejected",
        "bulkhead_rejected",
        "work_for_gone_callers",
        "expired_dropped",
        "pool_saturation_max",
        "job_retries",
        "jobs_failed",
    ];
    const GAUGES: &'static [&'static str] = &["pool_busy", "accept_queue"];
    const PLOTS: &'static [KindPlot] = &[KindPlot {
        name: "service-pools",
        title: "Services' worker pools in use",
        y_label: "fraction of workers busy",
        gauges: &["pool_busy"],
    }];

    fn validate(&self, node: &Node, s: &ServiceSpec, topology: &Topology) -> Result<(), Invalid> {
        if !(1..=1_000_000).contains(&s.workers) {
            return node.fail("workers", "expected from 1 to 1000000");
        }
        s.processing.check().map_err(|m| node.invalid("processing", m))?;
        if s.dependencies.len() > MAX_DEPENDENCIES {
            return node.fail("dependencies", format!("at most {MAX_DEPENDENCIES} dependencies"));
        }
        for (i, d) in s.dependencies.iter().enumerate() {
            check_dependency(node, i, d, topology)?;
        }
        check_no_cycle(node, topology)?;
        check_worker_mode(node, s, topology)
    }

    fn footprint(&self, s: &ServiceSpec) -> Footprint {
        let slots = f64::from(s.workers);
        Footprint {
            bytes: slots * 128.0,
            serves_per_s: slots * 1000.0 / s.processing.mean_ms(),
            ..Footprint::default()
        }
    }

    fn build(&self, node: &Node, s: &ServiceSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let targets: Vec<_> = s.dependencies.iter().map(|d| build.id(&d.target)).collect();
        let worker =
            s.source.as_ref().map(|source| Worker::new(s, build.id(source), s.notify.as_ref().map(|n| build.id(n))));
        boxed(Service::new(node.name(), s, &targets, worker))
    }
}

/// Checks dependency `i`: its target is another service or a store, and
/// its numbers make sense.
fn check_dependency(node: &Node, i: usize, d: &DependencySpec, topology: &Topology) -> Result<(), Invalid> {
    let at = i.to_string();
    let field = |f: &'static str| -> Vec<&str> { vec!["dependencies", at.as_str(), f] };
    let fail = |f: &'static str, m: String| Err(node.invalid_at(&field(f), m));
    if d.target == node.name() {
        return fail("target", "a service cannot call itself".to_string());
    }
    if !(topology.is_in(&d.target, "services") || topology.is_in(&d.target, "stores")) {
        let known = [topology.list("services"), topology.list("stores")].join(", ");
        return fail("target", format!("no service or store named `{}` (known: {known})", d.target));
    }
    if d.timeout_ms.0 <= 0.0 {
        return fail("timeout_ms", "expected a timeout above 0".to_string());
    }
    if !(d.backoff_multiplier.is_finite() && (1.0..=100.0).contains(&d.backoff_multiplier)) {
        return fail("backoff_multiplier", format!("expected from 1 to 100, got {}", d.backoff_multiplier));
    }
    if d.retries > 1000 {
        return fail("retries", "expected at most 1000".to_string());
    }
    let Some(b) = &d.breaker else { return Ok(()) };
    let bfield = |f: &'static str| -> Vec<&str> { vec!["dependencies", at.as_str(), "breaker", f] };
    if b.failure_rate_threshold.0 <= 0.0 {
        return Err(node.invalid_at(&bfield("failure_rate_threshold"), "expected above 0 (and at most 1)"));
    }
    for (f, v) in [
        ("sliding_window", b.sliding_window),
        ("minimum_calls", b.minimum_calls),
        ("half_open_calls", b.half_open_calls),
    ] {
        if !(1..=1_000_000).contains(&v) {
            return Err(node.invalid_at(&bfield(f), "expected from 1 to 1000000"));
        }
    }
    Ok(())
}

/// Refuses a cycle of calls through this service (A calls B, which calls
/// A): every request would call round it until a timeout ended it. The
/// refusal names the cycle.
fn check_no_cycle(node: &Node, topology: &Topology) -> Result<(), Invalid> {
    let calls = |name: &str| -> Vec<String> {
        topology
            .spec::<ServiceSpec>(name)
            .map(|s| s.dependencies.iter().map(|d| d.target.clone()).collect())
            .unwrap_or_default()
    };
    // Depth-first from this service, with the path so far.
    let mut stack: Vec<(String, Vec<String>)> = vec![(node.name().to_string(), vec![node.name().to_string()])];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in calls(&at) {
            if next == node.name() {
                let cycle = [path.clone(), vec![next]].concat().join(" -> ");
                return node.fail("dependencies", format!("the calls go round in a cycle: {cycle}"));
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next]].concat()));
            }
        }
    }
    Ok(())
}

/// Checks `source`, `notify` and the job settings.
fn check_worker_mode(node: &Node, s: &ServiceSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(source) = &s.source else {
        for (f, set) in [
            ("notify", s.notify.is_some()),
            ("job_attempts", s.job_attempts != 0),
            ("job_retry_ms", s.job_retry_ms != second()),
        ] {
            if set {
                return node.fail(f, "applies only to a worker: set source = \"BROKER\"");
            }
        }
        return Ok(());
    };
    if topology.spec::<LogSpec>(source).is_some() {
        return node.fail("source", format!("`{source}` is a log broker: a worker reads a queue broker"));
    }
    let Some(q) = topology.spec::<QueueSpec>(source) else {
        return node
            .fail("source", format!("no queue broker named `{source}` (brokers: {})", topology.list("brokers")));
    };
    if !q.queues.is_empty() || !q.subscriptions.is_empty() {
        return node.fail(
            "source",
            format!("`{source}` declares queues or subscriptions: a worker reads a point-to-point broker"),
        );
    }
    if let Some(n) = &s.notify {
        // Of sim-core's kinds only an edge acknowledges `Done`: any other
        // would leave the worker resending it, and the job held, forever.
        // A kind registered outside sim-core may take it.
        const NEVER_ACK_DONE: [&str; 11] = [
            "producer",
            "queue",
            "log",
            "consumer",
            "log-consumer",
            "client",
            "users",
            "service",
            "store",
            "saga",
            "saga-step",
        ];
        match topology.node(n) {
            Some(t) if !NEVER_ACK_DONE.contains(&t.kind()) => {}
            _ => {
                let edges = topology.list("edges");
                return node.fail(
                    "notify",
                    format!("no edge named `{n}`: a worker tells an edge its jobs are done (edges: {edges})"),
                );
            }
        }
    }
    Ok(())
}
