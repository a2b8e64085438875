//! The `producer` kind: the `[producers.NAME]` table, its defaults, its
//! checks (the target broker, ack settings, a log target's topic) and the
//! construction of a [`Producer`].

use super::settings::idempotence_fits;
use super::{AckMode, Arrival, Keys, LogTarget, Partitioner, Producer};
use crate::broker::LogSpec;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::ledger::MAX_KEYS;
use crate::size::MessageBytes;
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
    /// Fire-and-forget, or wait for the broker's ack (default: `"all"` to
    /// a log broker, `"none"` to a queue; see [`super::Settings`] for every
    /// default).
    #[serde(default)]
    pub acks: Option<AckMode>,
    /// How long to wait for an ack before the attempt counts as failed.
    #[serde(default)]
    pub ack_timeout_ms: Option<Millis>,
    /// How many times to resend after a timeout or a refusal.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Pause before each resend.
    #[serde(default)]
    pub retry_backoff_ms: Option<Millis>,
    /// Most requests awaiting an ack at once; the rest wait in the
    /// producer's buffer.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Longest time, from production, that the producer keeps trying to
    /// send a message.
    #[serde(default)]
    pub delivery_timeout_ms: Option<Millis>,
    /// Idempotent producer: every send carries a session epoch and sequence
    /// number, and the broker appends each message once and in order.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// Log producers: a batch is full at this many bytes (Kafka's
    /// `batch.size`).
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// Log producers: a batch is full at this many records.
    #[serde(default)]
    pub batch_records: Option<u32>,
    /// Log producers: how long a batch that is not full waits for more
    /// records (Kafka's `linger.ms`).
    #[serde(default)]
    pub linger_ms: Option<Millis>,
    /// Log producers: the size of each record, in bytes (what fills a
    /// batch; default 1,024), or a distribution drawn per record.
    #[serde(default)]
    pub message_bytes: Option<MessageBytes>,
    /// The topic to write to, when the target is a log broker.
    #[serde(default)]
    pub topic: Option<String>,
    /// How a log producer picks a record's partition.
    #[serde(default)]
    pub partitioner: Partitioner,
}

/// The producer kind (`[producers.NAME]`, the default of its section).
pub struct ProducerKind;

impl Kind for ProducerKind {
    type Spec = ProducerSpec;
    const NAME: &'static str = "producer";
    const SECTION: &'static str = "producers";
    const ERRORS: &'static [&'static str] = &["delivery-timeout", "ack-timeout", "out-of-order-sequence"];
    const METRICS: &'static [&'static str] = &["epoch_bumps"];

    fn validate(&self, node: &Node, p: &ProducerSpec, topology: &Topology) -> Result<(), Invalid> {
        if !topology.is_in(&p.target, "brokers") {
            let brokers = topology.list("brokers");
            return node.fail("target", format!("no broker named `{}` (brokers: {brokers})", p.target));
        }
        if let Some(why) = crate::broker::queue_cluster::refuse_cluster_name(topology, &p.target) {
            return node.fail("target", why);
        }
        if p.idempotent == Some(true) && topology.node(&p.target).is_some_and(|n| n.kind() == "queue-cluster-node") {
            return node.fail("idempotent", "publisher deduplication is not modelled in a queue cluster: remove it");
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
        let producer = Producer::new(p, build.id(&p.target), log);
        match build.topology().spec::<LogSpec>(&p.target).and_then(|l| l.brokers) {
            Some(n) => {
                use crate::broker::cluster::broker_name;
                let brokers = (0..n).map(|i| build.id(&broker_name(&p.target, i as u16))).collect();
                boxed(producer.in_cluster(brokers))
            }
            None => boxed(producer),
        }
    }
}

/// Checks the settings of retries and acks against each other.
fn check_acks(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    for (field, zero) in [("batch_size", p.batch_size == Some(0)), ("batch_records", p.batch_records == Some(0))] {
        if zero {
            return node.fail(field, "expected at least 1");
        }
    }
    if let Some(Err(e)) = p.message_bytes.as_ref().map(MessageBytes::check) {
        return node.fail("message_bytes", e);
    }
    if p.acks == Some(AckMode::None) {
        for (field, set) in [
            ("max_in_flight", p.max_in_flight.is_some()),
            ("delivery_timeout_ms", p.delivery_timeout_ms.is_some()),
            ("idempotent", p.idempotent == Some(true)),
        ] {
            if set {
                return node.fail(field, "applies only when the producer waits for acks: set acks = \"all\"");
            }
        }
    }
    Ok(())
}

/// A queue producer's retry rules (a log producer's are Kafka's: see
/// [`check_log_target`]).
fn check_queue_acks(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    if p.acks.unwrap_or_default() == AckMode::None {
        for (field, set) in [
            ("max_in_flight", p.max_in_flight.is_some()),
            ("delivery_timeout_ms", p.delivery_timeout_ms.is_some()),
            ("idempotent", p.idempotent == Some(true)),
        ] {
            if set {
                return node.fail(field, "applies only when the producer waits for acks: set acks = \"broker\"");
            }
        }
    }
    if p.idempotent == Some(true) {
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
    if p.idempotent == Some(true) {
        // Set explicitly, idempotence with a setting that rules it out is
        // an error; on by default, it turns itself off (see `Settings`).
        if let Some((field, why)) = idempotence_fits(p) {
            return node.fail(field, why);
        }
    }
    Ok(())
}

/// A producer to a queue broker names no topic and acks as a queue does.
fn check_queue_target(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    if p.topic.is_some() {
        return node.fail("topic", "only log brokers have topics");
    }
    for (field, set) in [
        ("batch_size", p.batch_size.is_some()),
        ("batch_records", p.batch_records.is_some()),
        ("linger_ms", p.linger_ms.is_some()),
        ("message_bytes", p.message_bytes.is_some()),
    ] {
        if set {
            return node.fail(field, "only log producers batch: a queue producer sends each message alone");
        }
    }
    check_queue_acks(node, p)?;
    if matches!(p.acks, Some(AckMode::Leader | AckMode::All)) {
        return node.fail("acks", "acks \"1\" and \"all\" are for log brokers: use \"broker\" for a queue");
    }
    Ok(())
}
