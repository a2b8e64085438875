//! The `producer` kind: the `[producers.NAME]` table, its defaults, its
//! checks (the target broker, ack settings, a log target's topic) and the
//! construction of a [`Producer`].

use super::{AckMode, Arrival, Keys, LogTarget, Partitioner, Producer};
use crate::broker::LogSpec;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::ledger::MAX_KEYS;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// A producer as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    /// The broker it sends to.
    pub target: String,
    /// When messages are produced.
    pub arrival: Arrival,
    /// How many messages to produce; unlimited when absent (then the run
    /// needs a `run.duration_ms`).
    #[serde(default)]
    pub messages: Option<u64>,
    /// Which keys messages carry.
    #[serde(default)]
    pub keys: Keys,
    /// Fire-and-forget, or wait for the broker's ack.
    #[serde(default)]
    pub acks: AckMode,
    /// How long to wait for an ack before the attempt counts as failed.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_ms: Millis,
    /// How many times to resend after a timeout or a refusal (default 0;
    /// an idempotent producer resends until acked).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Pause before each resend.
    #[serde(default)]
    pub retry_backoff_ms: Millis,
    /// Most messages awaiting an ack at once (with `acks = "broker"`); the
    /// rest wait in the producer's buffer. Unlimited when absent.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Longest time, from production, that the producer keeps trying to
    /// send a message (with `acks = "broker"`); unlimited when absent.
    #[serde(default)]
    pub delivery_timeout_ms: Option<Millis>,
    /// Idempotent producer: every send carries a session epoch and sequence
    /// number, and the broker appends each message once and in order.
    #[serde(default)]
    pub idempotent: bool,
    /// The topic to write to, when the target is a log broker.
    #[serde(default)]
    pub topic: Option<String>,
    /// How a log producer picks a record's partition.
    #[serde(default)]
    pub partitioner: Partitioner,
}

fn default_ack_timeout() -> Millis {
    Millis(1000.0)
}

/// The producer kind (`[producers.NAME]`, the default of its section).
pub struct ProducerKind;

impl Kind for ProducerKind {
    type Spec = ProducerSpec;
    const NAME: &'static str = "producer";
    const SECTION: &'static str = "producers";
    const ERRORS: &'static [&'static str] = &["delivery-timeout", "ack-timeout"];

    fn validate(&self, node: &Node, p: &ProducerSpec, topology: &Topology) -> Result<(), Invalid> {
        if !topology.is_in(&p.target, "brokers") {
            let brokers = topology.list("brokers");
            return node.fail("target", format!("no broker named `{}` (brokers: {brokers})", p.target));
        }
        p.arrival.check().map_err(|m| node.invalid("arrival", m))?;
        check_acks(node, p)?;
        if p.max_in_flight == Some(0) {
            return node.fail("max_in_flight", "expected at least 1");
        }
        if p.messages == Some(0) {
            return node.fail("messages", "expected at least 1 (remove the producer to send nothing)");
        }
        check_keys(node, &p.keys)?;
        match topology.spec::<LogSpec>(&p.target) {
            Some(log) => check_log_target(node, p, log),
            None => check_queue_target(node, p),
        }
    }

    fn messages(&self, p: &ProducerSpec) -> Option<Option<u64>> {
        Some(p.messages)
    }

    fn footprint(&self, p: &ProducerSpec) -> Footprint {
        Footprint { produces_per_s: p.arrival.mean_rate_per_s(), ..Footprint::default() }
    }

    fn build(&self, _node: &Node, p: &ProducerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let log = build.topology().spec::<LogSpec>(&p.target).map(|l| {
            let topic = p.topic.as_deref().unwrap_or("");
            LogTarget { topic: l.topic_index(topic) as u16, partitions: l.partitions_of(topic) }
        });
        boxed(Producer::new(p, build.id(&p.target), log))
    }
}

/// Checks the settings of retries and acks against each other.
fn check_acks(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    if p.idempotent {
        for (field, set) in [("retries", p.retries.is_some()), ("delivery_timeout_ms", p.delivery_timeout_ms.is_some())]
        {
            if set {
                return node.fail(
                    field,
                    "an idempotent producer resends until acked (giving up would leave a gap in its sequence): remove it",
                );
            }
        }
    }
    if p.acks == AckMode::None {
        for (field, set) in [
            ("max_in_flight", p.max_in_flight.is_some()),
            ("delivery_timeout_ms", p.delivery_timeout_ms.is_some()),
            ("idempotent", p.idempotent),
        ] {
            if set {
                return node.fail(field, "applies only when the producer waits for acks: set acks = \"broker\"");
            }
        }
    }
    Ok(())
}

/// Checks the key count of a message source (a producer or a client).
pub(crate) fn check_keys(node: &Node, keys: &Keys) -> Result<(), Invalid> {
    let count = keys.count();
    if count == 0 || count > MAX_KEYS {
        return Err(node.invalid_at(&["keys", "count"], format!("expected from 1 to {MAX_KEYS} keys, got {count}")));
    }
    Ok(())
}

/// A producer to a log broker names one of its topics, and acks as Kafka allows.
fn check_log_target(node: &Node, p: &ProducerSpec, log: &LogSpec) -> Result<(), Invalid> {
    let Some(t) = &p.topic else {
        return node.fail(
            "topic",
            format!("`{}` is a log broker: name the topic to write to ({})", p.target, log.topic_list()),
        );
    };
    if !log.topics.contains_key(t) {
        return node.fail("topic", format!("no topic `{t}` (topics: {})", log.topic_list()));
    }
    if p.idempotent && p.acks == AckMode::Leader {
        return node.fail("acks", "an idempotent producer needs acks = \"all\" (as Kafka requires)");
    }
    Ok(())
}

/// A producer to a queue broker names no topic and acks as a queue does.
fn check_queue_target(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    if p.topic.is_some() {
        return node.fail("topic", "only log brokers have topics");
    }
    if matches!(p.acks, AckMode::Leader | AckMode::All) {
        return node.fail("acks", "acks \"1\" and \"all\" are for log brokers: use \"broker\" for a queue");
    }
    Ok(())
}
