//! A component kind defined outside sim-core, in this one file: an
//! **auditor** that reads a queue broker and takes `check_ms` to audit each
//! message before it acks it, with up to `parallel` audits at once.
//!
//! It shows the whole of adding a kind (see `docs/architecture.md`):
//! 1. the component: its state, its typed timers, its handlers, which act
//!    only through their `Ctx` (here it speaks the queue protocol: the
//!    library's `Subscription` does the subscribe handshake; it takes
//!    deliveries and acks them);
//! 2. the kind: its table (a serde struct), its checks of other nodes, its
//!    effect domain, the metric it reports, and its construction;
//! 3. one line to register it, then a scenario that uses it, run through
//!    the library, and its summary read.
//!
//! Run it with `cargo run --release -p sim-core --example auditor`; CI runs
//! the test at the bottom.

use sim_core::broker::QueueSpec;
use sim_core::engine::{boxed, Component, Ctx, DynComponent, Timer};
use sim_core::kind::{Build, Invalid, Kind, Node, Topology};
use sim_core::ledger::DomainId;
use sim_core::message::{Msg, MsgId, NodeId, Record};
use sim_core::protocol::QueueMsg;
use sim_core::registry::Registry;
use sim_core::scenario::{run_config, Scenario};
use sim_core::subscription::Subscription;
use sim_core::summary::VariantSummary;
use sim_core::time::{ms_to_ns, Duration};
use std::collections::BTreeMap;

// ---- the component ----

/// An auditor's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditTimer {
    /// The audit of the delivery with this tag is done.
    Done(u64),
    /// The broker has not confirmed the subscription: ask again.
    Resubscribe,
}

impl Timer for AuditTimer {
    fn to_word(self) -> u64 {
        match self {
            AuditTimer::Done(tag) => tag,
            AuditTimer::Resubscribe => u64::MAX,
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        Some(if word == u64::MAX { AuditTimer::Resubscribe } else { AuditTimer::Done(word) })
    }
}

/// A running auditor.
struct Auditor {
    source: NodeId,
    check_ns: Duration,
    /// The subscribe handshake, shared with sim-core's own consumers: asks
    /// until the broker confirms, with `parallel` as the prefetch.
    subscription: Subscription<AuditTimer>,
    /// Volatile: audits in progress, by delivery tag.
    auditing: BTreeMap<u64, Record>,
    /// The effect domain it applies effects in (the kind names it `audit`).
    domain: DomainId,
}

impl Auditor {
    fn new(source: NodeId, check_ns: Duration, parallel: u32) -> Self {
        let subscription = Subscription::new(source, parallel, false, ms_to_ns(1000.0), AuditTimer::Resubscribe);
        Auditor { source, check_ns, subscription, auditing: BTreeMap::new(), domain: 0 }
    }
}

impl Component for Auditor {
    type Timer = AuditTimer;

    fn start(&mut self, ctx: &mut Ctx<AuditTimer>) {
        self.domain = ctx.domain();
        self.subscription.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<AuditTimer>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Queue(QueueMsg::Subscribed { session }) => self.subscription.subscribed(ctx, session),
            Msg::Queue(QueueMsg::Cancelled { session }) => {
                // The broker took back what it had delivered: drop those audits.
                let taken_back = self.subscription.cancelled(ctx, session);
                if taken_back {
                    self.auditing.clear();
                }
            }
            Msg::Queue(QueueMsg::Deliver { rec, tag, .. }) => {
                ctx.start_processing(rec.id);
                self.auditing.insert(tag, rec);
                ctx.set_timer(self.check_ns, AuditTimer::Done(tag));
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<AuditTimer>, timer: AuditTimer) {
        match timer {
            AuditTimer::Done(tag) => {
                let Some(rec) = self.auditing.remove(&tag) else { return };
                // The ledger, not the auditor, judges loss and duplication:
                // the auditor only reports that the effect took place.
                ctx.apply_effect(rec.id);
                ctx.metric_add("audited", 1.0);
                ctx.send(self.source, QueueMsg::Ack { tag });
            }
            AuditTimer::Resubscribe => self.subscription.on_timer(ctx),
        }
    }

    fn crash(&mut self) {
        // Audits in progress are lost with the process; the broker delivers
        // them again once it hears the connection closed.
        self.auditing.clear();
        self.subscription.crash();
    }

    fn held_in(&self, out: &mut Vec<(MsgId, DomainId)>) {
        // Until audited, a message is still on its way to the audit domain:
        // in flight, not lost, if the run ends now.
        out.extend(self.auditing.values().map(|r| (r.id, self.domain)));
    }
}

// ---- the kind ----

/// An auditor as written in a scenario file: `[auditors.NAME]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditorSpec {
    /// The queue broker it reads.
    source: String,
    /// How long one audit takes.
    check_ms: f64,
    /// Audits at once (the broker's prefetch).
    #[serde(default = "one")]
    parallel: u32,
}

fn one() -> u32 {
    1
}

struct AuditorKind;

impl Kind for AuditorKind {
    type Spec = AuditorSpec;
    const NAME: &'static str = "auditor";
    const SECTION: &'static str = "auditors";
    const METRICS: &'static [&'static str] = &["audited"];

    fn validate(&self, node: &Node, spec: &AuditorSpec, topology: &Topology) -> Result<(), Invalid> {
        match topology.spec::<QueueSpec>(&spec.source) {
            None => node.fail("source", format!("no queue broker named `{}`", spec.source)),
            Some(q) if !q.subscriptions.is_empty() => {
                node.fail("source", "an auditor reads a point-to-point queue (one without subscriptions)")
            }
            Some(_) if !(spec.check_ms >= 0.0 && spec.check_ms.is_finite()) => {
                node.fail("check_ms", "expected a duration of 0 or more")
            }
            Some(_) if spec.parallel == 0 => node.fail("parallel", "expected at least 1"),
            Some(_) => Ok(()),
        }
    }

    fn domain(&self, _spec: &AuditorSpec, _topology: &Topology) -> Option<String> {
        Some("audit".to_string())
    }

    fn build(&self, _node: &Node, spec: &AuditorSpec, build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Auditor::new(build.id(&spec.source), ms_to_ns(spec.check_ms), spec.parallel))
    }
}

// ---- using it ----

const SCENARIO: &str = r#"
name = "audit"
concept = "a user-defined kind: audits take 2 ms each, eight at a time"

[network]
latency = { dist = "constant", ms = 1 }

[producers.shop]
target = "orders"
arrival = { process = "poisson", rate_per_s = 1000 }
messages = 5000

[brokers.orders]
kind = "queue"

[auditors.audit]
source = "orders"
check_ms = 2
parallel = 8
"#;

/// Registers the kind, runs the scenario, and returns its summary.
fn run() -> VariantSummary {
    let mut registry = Registry::builtin();
    registry.register(AuditorKind); // the one registry line
    let scenario = Scenario::parse_with("audit.toml", SCENARIO, registry).unwrap_or_else(|e| panic!("{e}"));
    let (_, config) = scenario.configs().expect("valid").remove(0);
    let out = run_config(&config, 7, 0).completed().expect("the run ends");
    VariantSummary::new("", &out, &[], &[])
}

fn main() {
    let s = run();
    println!(
        "produced {}, audited {}, lost {}, duplicated {}",
        s.counts.produced, s.counts.processed, s.counts.lost, s.counts.duplicated
    );
    println!("latency: mean {:.2} ms, p99 {:.2} ms", s.latency_ms.mean, s.latency_ms.p99);
}

#[test]
fn the_auditor_audits_every_message_once_in_about_two_milliseconds() {
    let s = run();
    assert_eq!(s.counts.produced, 5000);
    assert_eq!((s.counts.processed, s.counts.lost, s.counts.duplicated), (5000, 0, 0));
    assert_eq!(s.metrics.get("audited").copied(), Some(5000.0));
    // Every message takes at least its two network hops and its audit: 4 ms.
    assert!(s.latency_ms.p50 >= 4.0, "p50 {} ms", s.latency_ms.p50);
    // A delivery holds one of the 8 prefetch slots for 4 ms (1 ms to the
    // auditor, 2 ms of audit, 1 ms for the ack back). At 1000/s that is 4
    // Erlangs on 8 servers: Erlang C puts about 3% of messages in a wait
    // averaging 1/(8/4 - 1) = 1 ms, so the mean wait is near 0.03 ms and the
    // mean latency (1 ms publish + 1 ms deliver + 2 ms audit + wait) stays
    // well under 5 ms. Had the slots been 4, the load would be 1: unstable.
    assert!(s.latency_ms.mean < 5.0, "mean {} ms", s.latency_ms.mean);
}

#[test]
fn an_auditor_acks_a_delivery_only_once_its_audit_is_done() {
    use sim_core::engine::{Fact, Harness};
    let mut a = Auditor::new(1, ms_to_ns(2.0), 8);
    // Driven without an engine: each call returns what the handler emitted.
    let mut h = Harness::new(2);
    let start = h.start(&mut a);
    assert_eq!(start.sent(), [(1, QueueMsg::Subscribe { prefetch: 8, session: 1, auto_ack: false }.into())]);
    assert_eq!(
        h.message(&mut a, 1, QueueMsg::Subscribed { session: 1 }).cancelled::<AuditTimer>(),
        [AuditTimer::Resubscribe]
    );
    let rec = Record::new(42, 0);
    let took = h.message(&mut a, 1, QueueMsg::Deliver { rec, tag: 5, redelivered: false });
    assert_eq!(took.timers::<AuditTimer>(), [(ms_to_ns(2.0), AuditTimer::Done(5))]);
    assert!(took.sent().is_empty(), "no ack before the audit is done");
    let done = h.timer(&mut a, AuditTimer::Done(5));
    assert_eq!(done.facts(), [Fact::Applied(42)]);
    assert_eq!(done.sent(), [(1, QueueMsg::Ack { tag: 5 }.into())]);
}
