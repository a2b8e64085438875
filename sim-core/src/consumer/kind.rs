//! The `consumer` kind: a consumer of a queue broker. Its
//! `[consumers.NAME]` table, defaults, checks (the source broker and its
//! subscriptions, forwarding) and the construction of a [`Consumer`].

use super::{AckTiming, Consumer, Effect, ForwardAcks, OnFailure};
use crate::broker::{LogSpec, QueueReaders, QueueSpec};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::units::{Millis, Probability};
use serde::{Deserialize, Serialize};

/// A consumer of a queue broker as written in a scenario file
/// (`[consumers.NAME]` whose `source` is a queue broker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// The queue broker it subscribes to.
    pub source: String,
    /// How long processing one message takes.
    pub processing: Dist,
    /// Messages processed at once (servers, in queueing terms).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Unacked deliveries the broker may push ahead (`basic.qos`); 0 or
    /// absent is no limit, RabbitMQ's default.
    #[serde(default)]
    pub prefetch: Option<u32>,
    /// How long to wait for the broker to confirm a subscription before
    /// asking again.
    #[serde(default = "default_resubscribe")]
    pub resubscribe_ms: Millis,
    /// When to ack: after the effect (at-least-once) or on receipt (at-most-once).
    #[serde(default)]
    pub ack: AckTiming,
    /// Whether the effect is deduplicated by message id.
    #[serde(default)]
    pub effect: Effect,
    /// Probability that one processing attempt fails (transient failure).
    #[serde(default)]
    pub failure_probability: Probability,
    /// Probability that a message is poison: it fails every time (permanent failure).
    #[serde(default)]
    pub poison_probability: Probability,
    /// The dedup store of an idempotent effect; consumers naming the same
    /// store share it. Default: one store per source broker (per
    /// subscription of a fan-out broker).
    #[serde(default)]
    pub dedup_store: Option<String>,
    /// The effect domain this consumer's effect belongs to (see the
    /// ledger): consumers of one domain change the same state, and every
    /// message must take effect once in every domain. Default: the
    /// subscription's name, else `default`.
    #[serde(default)]
    pub domain: Option<String>,
    /// After the effect, publish the same record (same id and key) to this
    /// queue broker: a service that changes X and must tell B to change Y,
    /// or a server that replies on a response queue.
    #[serde(default)]
    pub forward_to: Option<String>,
    /// Whether a forward waits for the next broker's ack (default: fire-and-forget).
    #[serde(default)]
    pub forward_acks: ForwardAcks,
    /// How long a forward waits for the broker's ack before the attempt
    /// fails (default 1 s; with `forward_acks = "broker"`).
    #[serde(default)]
    pub forward_ack_timeout_ms: Option<Millis>,
    /// How many times a failed forward is sent again (default 0; the outbox
    /// relay retries until acked).
    #[serde(default)]
    pub forward_retries: Option<u32>,
    /// Pause between a failed forward attempt and the next (default 0).
    #[serde(default)]
    pub forward_retry_backoff_ms: Option<Millis>,
    /// Time from the local commit to the forward leaving: the window in
    /// which a crash separates the two steps (default 0).
    #[serde(default)]
    pub forward_delay: Dist,
    /// Transactional outbox: the forward is recorded in the same local
    /// transaction as the effect (durable), and a relay publishes it until
    /// the broker acks it.
    #[serde(default)]
    pub outbox: bool,
    /// The subscription it reads, when its source broker fans out (one of
    /// the broker's `subscriptions`); consumers of one subscription compete
    /// for its messages.
    #[serde(default)]
    pub subscription: Option<String>,
    /// The queue it reads, when its source broker declares `queues`;
    /// consumers of one queue compete for its messages.
    #[serde(default)]
    pub queue: Option<String>,
    /// What to do with a message whose processing failed transiently:
    /// `"requeue"` (nack with requeue, the default), `"reject"` (nack
    /// without requeue: it is dead-lettered), `"retry"` (retry in place,
    /// then reject) or `"drop"` (ack it without its effect: lost).
    #[serde(default)]
    pub on_failure: OnFailure,
    // Retry in place and schema versions (issue 15, dead letters).
    /// With `on_failure = "retry"`: attempts in all, the first included
    /// (default 3).
    #[serde(default)]
    pub retry_attempts: Option<u32>,
    /// With `on_failure = "retry"`: the pause before each retry (default 1 s).
    #[serde(default)]
    pub retry_backoff_ms: Option<Millis>,
    /// The newest message schema version it reads (1 or 2); absent: every
    /// version (see [`crate::contract`]).
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// When it is upgraded to read every version (with `schema_version = 1`).
    #[serde(default)]
    pub schema_upgrade_at_ms: Option<Millis>,
    // Replicated consumers (issue 15: consumer lag and autoscaling).
    /// Makes the table N identical members, `NAME-1` .. `NAME-N`, and
    /// their controller, `NAME-controller` ([`crate::replicas`]).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// The price of one member running for an hour, in dollars.
    #[serde(default = "crate::replicas::default_price")]
    pub price_per_hour: f64,
    /// Which member of a replicated table this node is (never written).
    #[serde(skip)]
    pub member: Option<crate::replicas::MemberOf>,
}

impl ConsumerSpec {
    /// The name of this consumer's effect domain: `domain`, else its
    /// subscription's name (each subscriber keeps its own state), else
    /// `default`.
    pub fn domain_name(&self) -> String {
        let read = self.subscription.clone().or_else(|| self.queue.clone());
        self.domain.clone().or(read).unwrap_or_else(|| "default".to_string())
    }

    /// The name of the dedup store this consumer uses, if its effect is
    /// idempotent: `dedup_store`, or else the name of its source broker
    /// (`BROKER/SUBSCRIPTION` for a subscriber: each subscription gets
    /// every message, so subscribers must not share a store).
    pub fn store_name(&self) -> Option<String> {
        let default = || match self.subscription.as_ref().or(self.queue.as_ref()) {
            Some(sub) => format!("{}/{sub}", self.source),
            None => self.source.clone(),
        };
        (self.effect == Effect::Idempotent).then(|| self.dedup_store.clone().unwrap_or_else(default))
    }
}

fn one() -> u32 {
    1
}

fn default_resubscribe() -> Millis {
    Millis(1000.0)
}

/// The queue consumer kind: the default of `[consumers.NAME]` whose
/// `source` is not a log broker.
#[derive(Clone, Copy)]
pub struct ConsumerKind;

impl Kind for ConsumerKind {
    type Spec = ConsumerSpec;
    const NAME: &'static str = "consumer";
    const SECTION: &'static str = "consumers";
    const METRICS: &'static [&'static str] = &["outbox_max_entries", "retries_in_place", "new_fields_ignored"];
    const ERRORS: &'static [&'static str] = &[
        "permanent-failure",
        "transient-failure",
        "forward-failed",
        "forward-timeout",
        "schema-mismatch",
        "retries-exhausted",
    ];
    const ACCEPTS_ERRORS_FAULT: bool = true;

    fn validate(&self, node: &Node, k: &ConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
        if k.member.is_some() {
            return Ok(()); // its table's checks are its own
        }
        crate::replicas::check_replicas(node, k.replicas, k.price_per_hour)?;
        check_source(node, &k.source, topology)?;
        if topology.spec::<LogSpec>(&k.source).is_some() {
            let message = format!("`{}` is a log broker: its consumers are of kind `log-consumer`", k.source);
            return node.fail("source", message);
        }
        k.processing.check().map_err(|m| node.invalid("processing", m))?;
        if !(1..=1_000_000).contains(&k.concurrency) {
            return node.fail("concurrency", "expected from 1 to 1000000");
        }
        check_effect(node, k.effect, &k.dedup_store)?;
        node.check_name("domain", k.domain.as_deref())?;
        if k.ack == AckTiming::Auto {
            return node.fail("ack", "\"auto\" (auto-commit) applies only to log consumers");
        }
        forwarding(node, k, topology)?;
        failure_policy(node, k)?;
        if let Some(q) = topology.spec::<QueueSpec>(&k.source) {
            check_subscription(node, k, q)?;
        }
        forward_loops(node, k, topology)
    }

    fn domain(&self, k: &ConsumerSpec, _topology: &Topology) -> Option<String> {
        Some(k.domain_name())
    }

    fn footprint(&self, p: &ConsumerSpec) -> Footprint {
        if p.replicas.is_some() && p.member.is_none() {
            return Footprint::default(); // its members serve
        }
        let slots = f64::from(p.concurrency);
        Footprint { bytes: slots * 64.0, serves_per_s: slots * 1000.0 / p.processing.mean_ms(), ..Footprint::default() }
    }

    fn members(&self, name: &str, k: &ConsumerSpec) -> Vec<crate::kind::Member> {
        let n = k.replicas.unwrap_or(0);
        let c = crate::replicas::ControllerSpec {
            table: name.to_string(),
            pool: n,
            running: n,
            price_per_hour: k.price_per_hour,
            scaling: None,
        };
        crate::replicas::members(c, ConsumerKind, k, |k, of| ConsumerSpec { member: Some(of), ..k.clone() })
    }

    fn build(&self, node: &Node, k: &ConsumerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        if k.replicas.is_some() && k.member.is_none() {
            return boxed(crate::replicas::GroupName);
        }
        let store = k.store_name().map(|s| build.store(s));
        // A fan-out broker routes each consumer's acks and subscribes it to
        // the subscription it names (numbered in name order).
        let sub = build.topology().spec::<QueueSpec>(&k.source).and_then(|q| {
            let name = k.subscription.as_deref().or(k.queue.as_deref())?;
            q.queue_names().iter().position(|s| *s == name)
        });
        if let Some(sub) = sub {
            let id = build.id(node.name());
            build.note::<QueueReaders>(&k.source).route.insert(id, sub);
        }
        let mut consumer = Consumer::new(k, build.id(&k.source), store);
        if let Some(to) = &k.forward_to {
            consumer = consumer.with_forward(k, build.id(to));
        }
        boxed(consumer)
    }
}

/// Checks the retry-in-place and schema settings.
fn failure_policy(node: &Node, k: &ConsumerSpec) -> Result<(), Invalid> {
    if k.on_failure != OnFailure::Retry {
        for (field, set) in
            [("retry_attempts", k.retry_attempts.is_some()), ("retry_backoff_ms", k.retry_backoff_ms.is_some())]
        {
            if set {
                return node.fail(field, "applies only to a retry in place: set on_failure = \"retry\"");
            }
        }
    }
    if k.retry_attempts == Some(0) {
        return node.fail("retry_attempts", "expected at least 1 (the first attempt counts)");
    }
    if k.schema_version.is_some_and(|v| !(1..=2).contains(&v)) {
        return node.fail("schema_version", "expected 1 or 2 (a producer writes version 1, then 2 once upgraded)");
    }
    if k.schema_upgrade_at_ms.is_some() && k.schema_version != Some(1) {
        return node.fail("schema_upgrade_at_ms", "upgrades a reader of version 1: set schema_version = 1");
    }
    Ok(())
}

/// Refuses a `source` that names no broker.
pub(crate) fn check_source(node: &Node, source: &str, topology: &Topology) -> Result<(), Invalid> {
    if let Some(why) = crate::broker::queue_cluster::refuse_cluster_name(topology, source) {
        return node.fail("source", why);
    }
    if topology.is_in(source, "brokers") {
        return Ok(());
    }
    node.fail("source", format!("no broker named `{source}` (brokers: {})", topology.list("brokers")))
}

/// Refuses a dedup store without an idempotent effect.
pub(crate) fn check_effect(node: &Node, effect: Effect, dedup_store: &Option<String>) -> Result<(), Invalid> {
    node.check_name("dedup_store", dedup_store.as_deref())?;
    if dedup_store.is_some() && effect != Effect::Idempotent {
        return node.fail("dedup_store", "only an idempotent effect uses a dedup store: set effect = \"idempotent\"");
    }
    Ok(())
}

/// Checks `queue` against the source broker's queues.
fn check_queue(node: &Node, k: &ConsumerSpec, q: &QueueSpec) -> Result<(), Invalid> {
    let queues = crate::kind::quoted(q.queues.keys().map(String::as_str));
    let source = &k.source;
    if let (Some(sub), false) = (&k.subscription, q.queues.is_empty()) {
        let why = format!(
            "the broker `{source}` declares queues, not subscriptions: write queue = \"{sub}\" (queues: {queues})"
        );
        return node.fail("subscription", why);
    }
    match &k.queue {
        Some(name) if q.queues.is_empty() => node.fail(
            "queue",
            format!("the broker `{source}` declares no queues: remove `queue = \"{name}\"`, or declare it in brokers.{source}.queues"),
        ),
        Some(name) if !q.queues.contains_key(name) => {
            node.fail("queue", format!("the broker `{source}` has no queue `{name}` (queues: {queues})"))
        }
        None if !q.queues.is_empty() => node.fail(
            "queue",
            format!("the broker `{source}` declares queues: name the one this consumer reads, with queue = \"NAME\" (queues: {queues})"),
        ),
        _ => Ok(()),
    }
}

/// Checks `subscription` against the source broker's subscriptions.
fn check_subscription(node: &Node, k: &ConsumerSpec, q: &QueueSpec) -> Result<(), Invalid> {
    if !q.queues.is_empty() || k.queue.is_some() {
        return check_queue(node, k, q);
    }
    let subs = crate::kind::quoted(q.subscriptions.keys().map(String::as_str));
    let source = &k.source;
    match &k.subscription {
        Some(sub) if q.subscriptions.is_empty() => node.fail(
            "subscription",
            format!(
                "the broker `{source}` declares no subscriptions (it is point-to-point): remove `subscription = \"{sub}\"`, or declare it in brokers.{source}.subscriptions"
            ),
        ),
        Some(sub) if !q.subscriptions.contains_key(sub) => node.fail(
            "subscription",
            format!("the broker `{source}` has no subscription `{sub}` (subscriptions: {subs})"),
        ),
        None if !q.subscriptions.is_empty() => node.fail(
            "subscription",
            format!(
                "the broker `{source}` fans out to subscriptions: name the one this consumer reads, with subscription = \"NAME\" (subscriptions: {subs})"
            ),
        ),
        _ => Ok(()),
    }
}

/// Checks `forward_*`, `outbox` and `ack = "after-forward"`.
fn forwarding(node: &Node, k: &ConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
    let acked = k.forward_acks == ForwardAcks::Broker;
    let Some(to) = &k.forward_to else {
        return without_forward(node, k, acked);
    };
    if !topology.is_in(to, "brokers") {
        return node.fail("forward_to", format!("no broker named `{to}` (brokers: {})", topology.list("brokers")));
    }
    if *to == k.source {
        return node.fail("forward_to", "expected a broker other than `source`: it would forward to itself forever");
    }
    // A forward is a publish: a log broker takes produce requests to a topic instead.
    if topology.spec::<LogSpec>(to).is_some() {
        return node.fail("forward_to", format!("`{to}` is a log broker: forward_to names a queue broker"));
    }
    if topology.spec::<QueueSpec>(to).is_some_and(QueueSpec::routes) {
        let why = format!("`{to}` routes through exchanges, and a forward carries no routing key: forward to a broker without `queues`");
        return node.fail("forward_to", why);
    }
    k.forward_delay.check().map_err(|m| node.invalid("forward_delay", m))?;
    if !acked {
        unacked_forward(node, k)?;
    }
    if k.outbox {
        if k.forward_retries.is_some() {
            return node.fail("forward_retries", "the outbox relay retries until acked: remove it");
        }
        if k.ack == AckTiming::AfterForward {
            return node.fail(
                "ack",
                "with the outbox the forward is safe once committed: the input is acked then (ack = \"after\")",
            );
        }
    }
    Ok(())
}

/// A consumer that does not forward sets no forward setting.
fn without_forward(node: &Node, k: &ConsumerSpec, acked: bool) -> Result<(), Invalid> {
    let set = [
        ("forward_acks", acked),
        ("forward_ack_timeout_ms", k.forward_ack_timeout_ms.is_some()),
        ("forward_retries", k.forward_retries.is_some()),
        ("forward_retry_backoff_ms", k.forward_retry_backoff_ms.is_some()),
        ("forward_delay", k.forward_delay != Dist::default()),
        ("outbox", k.outbox),
    ];
    if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
        return node.fail(field, "applies only to a consumer that forwards: set forward_to");
    }
    if k.ack == AckTiming::AfterForward {
        return node.fail("ack", "\"after-forward\" needs a forward: set forward_to");
    }
    Ok(())
}

/// A fire-and-forget forward sets nothing that waits for the broker's ack.
fn unacked_forward(node: &Node, k: &ConsumerSpec) -> Result<(), Invalid> {
    for (field, set) in [
        ("forward_ack_timeout_ms", k.forward_ack_timeout_ms.is_some()),
        ("forward_retries", k.forward_retries.is_some()),
        ("forward_retry_backoff_ms", k.forward_retry_backoff_ms.is_some()),
    ] {
        if set {
            return node.fail(
                field,
                "applies only when the forward waits for the broker's ack: set forward_acks = \"broker\"",
            );
        }
    }
    if k.ack == AckTiming::AfterForward {
        return node
            .fail("ack", "\"after-forward\" acks the input when the forward is acked: set forward_acks = \"broker\"");
    }
    if k.outbox {
        return node.fail(
            "outbox",
            "the outbox relay deletes an entry once the broker acks it: set forward_acks = \"broker\"",
        );
    }
    Ok(())
}

/// Refuses forwards that go round in a loop (a consumer of `a` forwards
/// to `b`, whose consumer forwards back to `a`): a record would circulate
/// for ever.
fn forward_loops(node: &Node, k: &ConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(first) = k.forward_to.as_deref() else { return Ok(()) };
    let next = |broker: &str| -> Vec<&str> {
        topology
            .specs::<ConsumerSpec>()
            .filter(|(_, c)| c.source == broker)
            .filter_map(|(_, c)| c.forward_to.as_deref())
            .collect()
    };
    // Every broker reachable from this forward, breadth first.
    let mut seen: Vec<&str> = vec![first];
    let mut i = 0;
    while i < seen.len() {
        for b in next(seen[i]) {
            if b == k.source {
                let message = format!("forwards would go round in a loop: {} -> {first} -> ... -> {b}", k.source);
                return node.fail("forward_to", message);
            }
            if !seen.contains(&b) {
                seen.push(b);
            }
        }
        i += 1;
    }
    Ok(())
}
