//! The `producer` kind: the `[producers.NAME]` table, its defaults, its
//! checks (the target broker, ack settings, a log target's topic) and the
//! construction of a [`Producer`].

use super::settings::idempotence_fits;
use super::{AckMode, Arrival, Keys, LogTarget, Partitioner, Producer};
use crate::broker::{LogSpec, PublishRoutes, QueuePublishers, QueueSpec};
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::ledger::MAX_KEYS;
use crate::size::MessageBytes;
use crate::units::{Millis, Rate};
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
    /// The size of each record, in bytes (what fills a log producer's
    /// batch, what a queue broker stores; default 1,024), or a
    /// distribution drawn per record.
    #[serde(default)]
    pub message_bytes: Option<MessageBytes>,
    /// The topic to write to, when the target is a log broker.
    #[serde(default)]
    pub topic: Option<String>,
    /// How a log producer picks a record's partition.
    #[serde(default)]
    pub partitioner: Partitioner,
    /// Queue producers: publish persistent messages (AMQP delivery mode 2),
    /// which a durable queue keeps across a broker restart; transient
    /// (mode 1, the default of RabbitMQ's clients) when false or absent.
    #[serde(default)]
    pub persistent: Option<bool>,
    /// Queue producers: each message's own TTL (AMQP's `expiration`
    /// property); the queue applies the lower of it and its `ttl_ms`.
    #[serde(default)]
    pub message_ttl_ms: Option<Millis>,
    /// The exchange a queue producer publishes to, when its broker declares
    /// queues and exchanges (default `""`, the default exchange).
    #[serde(default)]
    pub exchange: Option<String>,
    /// The routing key of every publish.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Routing keys, one per publish: a message's key picks one
    /// (`key mod count`), so each key always takes the same route.
    #[serde(default)]
    pub routing_keys: Option<Vec<String>>,
    /// A click source: each message is an event that happened this long
    /// before it is produced (see [`crate::stream`]).
    #[serde(default)]
    pub event_delay: Option<crate::dist::Dist>,
    /// Each message is a write of its key, made (told to its user) as it
    /// is produced: see [`super::writes`]. `true` for plain writes (a
    /// source of truth: each is also stamped with its key's version, the
    /// per-aggregate sequence number, see [`crate::events`]).
    #[serde(default, deserialize_with = "super::writes::writes_form")]
    pub writes: Option<super::WritesSpec>,
    // Schema evolution (see crate::contract).
    /// From this time on, it writes version 2 of its message schema
    /// (version 1 before); absent, version 1 throughout.
    #[serde(default)]
    pub schema_upgrade_at_ms: Option<Millis>,
    /// Whether readers of version 1 can read version 2: `"breaking"` (the
    /// default: they reject it as poison) or `"compatible"` (they ignore
    /// its new fields).
    #[serde(default)]
    pub schema_change: Option<crate::contract::SchemaChange>,
    // Back-pressure (issue 15): see [`super::pressure`].
    /// A token-bucket rate limit: messages beyond it wait in the producer.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Queue producers waiting for confirms: most messages the producer
    /// holds (unsent, awaiting a confirm or a retry); a send beyond it
    /// blocks its caller (Kafka's `buffer.memory`, counted in messages).
    #[serde(default)]
    pub buffer_messages: Option<u64>,
    /// How long a caller blocks on a full buffer before its send fails
    /// (Kafka's `max.block.ms`; default 60 s).
    #[serde(default)]
    pub max_block_ms: Option<Millis>,
}

/// A producer's rate limit (`rate_limit = { rate_per_s = 100, burst = 10 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Tokens per second: the most messages a second that leave, on average.
    pub rate_per_s: Rate,
    /// The bucket's size: how many may leave at once after a quiet spell
    /// (default 1).
    #[serde(default = "one_token")]
    pub burst: u32,
}

fn one_token() -> u32 {
    1
}

/// Kafka's `max.block.ms`.
pub const DEFAULT_MAX_BLOCK_MS: f64 = 60_000.0;

impl ProducerSpec {
    /// The routing keys its publishes carry, when it names any (or an
    /// exchange, whose key is then `""`).
    pub fn routing_keys(&self) -> Vec<&str> {
        match (&self.routing_key, &self.routing_keys) {
            (Some(k), _) => vec![k.as_str()],
            (None, Some(ks)) => ks.iter().map(String::as_str).collect(),
            (None, None) if self.exchange.is_some() => vec![""],
            (None, None) => Vec::new(),
        }
    }
}

/// The producer kind (`[producers.NAME]`, the default of its section).
pub struct ProducerKind;

impl Kind for ProducerKind {
    type Spec = ProducerSpec;
    const NAME: &'static str = "producer";
    const SECTION: &'static str = "producers";
    const ERRORS: &'static [&'static str] =
        &["delivery-timeout", "ack-timeout", "out-of-order-sequence", "buffer-full"];
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
        if let Some(d) = &p.event_delay {
            d.check().map_err(|m| node.invalid("event_delay", m))?;
        }
        if p.idempotent == Some(true) && topology.spec::<LogSpec>(&p.target).is_none() {
            return node.fail("idempotent", no_queue_dedup(&p.target));
        }
        check_acks(node, p)?;
        check_schema(node, p)?;
        if p.max_in_flight == Some(0) {
            return node.fail("max_in_flight", "expected at least 1");
        }
        check_keys(node, &p.keys)?;
        check_pressure(node, p, topology)?;
        if let Some(w) = &p.writes {
            w.validate(node, topology)?;
            let other = topology.specs::<ProducerSpec>().find(|(n, q)| *n != node.name() && q.writes.is_some());
            if let Some((other, _)) = other {
                let why = format!("one producer of writes per scenario: `{other}` makes writes too, and each would number its keys' versions alone");
                return Err(node.invalid("writes", why));
            }
        }
        match topology.spec::<LogSpec>(&p.target) {
            Some(log) => check_log_target(node, p, log),
            None => {
                check_queue_target(node, p, topology)?;
                check_routing(node, p, topology)
            }
        }
    }

    fn messages(&self, p: &ProducerSpec) -> Option<Option<u64>> {
        Some(p.messages)
    }

    fn footprint(&self, p: &ProducerSpec) -> Footprint {
        Footprint { produces_per_s: p.arrival.mean_rate_per_s(), ..Footprint::default() }
    }

    fn declare(&self, node: &Node, p: &ProducerSpec, build: &mut Build) {
        let routed = build.topology().spec::<QueueSpec>(&p.target).is_some_and(QueueSpec::routes);
        if routed {
            let exchange = p.exchange.clone().unwrap_or_default();
            let keys = p.routing_keys().into_iter().map(String::from).collect();
            build.note::<QueuePublishers>(&p.target).routes.insert(node.name().to_string(), (exchange, keys));
        }
    }

    fn build(&self, node: &Node, p: &ProducerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let log = build.topology().spec::<LogSpec>(&p.target).map(|l| {
            let topic = p.topic.as_deref().unwrap_or("");
            LogTarget { topic: l.topic_index(topic) as u16, partitions: l.partitions_of(topic) }
        });
        let routes = build.take_note::<PublishRoutes>(node.name()).ids;
        let clicks = p.event_delay.as_ref().map(|d| crate::stream::Clicks::new(d, build));
        let producer = Producer::new(p, build.id(&p.target), log)
            .with_routes(routes)
            .with_clicks(clicks)
            .with_writes(p.writes.as_ref().map(|w| w.hook(build)));
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

/// Why a producer to queue broker `target` cannot be idempotent.
fn no_queue_dedup(target: &str) -> String {
    format!(
        "`{target}` is a queue broker, and RabbitMQ deduplicates publishes on streams only (a resend is enqueued \
         again): remove `idempotent`, and deduplicate at the consumer (`effect = \"idempotent\"`) or publish to a \
         log broker"
    )
}

/// A schema change needs an upgrade time.
fn check_schema(node: &Node, p: &ProducerSpec) -> Result<(), Invalid> {
    if p.schema_change.is_some() && p.schema_upgrade_at_ms.is_none() {
        return node.fail("schema_change", "a change of schema needs the time it happens: set schema_upgrade_at_ms");
    }
    Ok(())
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
        for (field, set) in
            [("max_in_flight", p.max_in_flight.is_some()), ("delivery_timeout_ms", p.delivery_timeout_ms.is_some())]
        {
            if set {
                return node.fail(field, "applies only when the producer waits for acks: set acks = \"broker\"");
            }
        }
    }
    Ok(())
}

/// Checks the back-pressure fields: a bounded buffer is a queue
/// producer's that waits for confirms.
fn check_pressure(node: &Node, p: &ProducerSpec, topology: &Topology) -> Result<(), Invalid> {
    if p.rate_limit.as_ref().is_some_and(|r| r.burst == 0) {
        return Err(node.invalid_at(&["rate_limit", "burst"], "expected at least 1 token"));
    }
    if p.max_block_ms.is_some() && p.buffer_messages.is_none() {
        return node.fail("max_block_ms", "applies only to a bounded buffer: set `buffer_messages` too");
    }
    let Some(n) = p.buffer_messages else { return Ok(()) };
    if n == 0 {
        return node.fail("buffer_messages", "expected at least 1");
    }
    if topology.spec::<LogSpec>(&p.target).is_some() {
        return node.fail(
            "buffer_messages",
            "modelled for queue producers only: a log producer's buffer (Kafka's `buffer.memory`) is not bounded here",
        );
    }
    if p.acks.unwrap_or_default() == super::AckMode::None {
        return node.fail(
            "buffer_messages",
            "a fire-and-forget producer holds nothing: set acks = \"broker\" for a buffer to fill",
        );
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
    for (field, set) in [
        ("exchange", p.exchange.is_some()),
        ("routing_key", p.routing_key.is_some()),
        ("routing_keys", p.routing_keys.is_some()),
    ] {
        if set {
            return node.fail(field, "only queue brokers route through exchanges: a log producer names a `topic`");
        }
    }
    if p.message_ttl_ms.is_some() {
        return node.fail("message_ttl_ms", "only queue brokers expire messages: a log keeps them for its retention");
    }
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
    if p.persistent.is_some() {
        return node
            .fail("persistent", "only a queue broker's messages have a delivery mode: a log keeps every record");
    }
    Ok(())
}

/// Checks `exchange`, `routing_key` and `routing_keys` against the queue
/// broker `q` (none: a target that is not a queue broker).
fn check_routing(node: &Node, p: &ProducerSpec, topology: &Topology) -> Result<(), Invalid> {
    let q = topology.spec::<QueueSpec>(&p.target);
    if p.routing_key.is_some() && p.routing_keys.is_some() {
        return node.fail("routing_keys", "set `routing_key` (one for every publish) or `routing_keys`, not both");
    }
    if p.routing_keys.as_ref().is_some_and(Vec::is_empty) {
        return node.fail("routing_keys", "expected at least one routing key");
    }
    let routed = p.exchange.is_some() || p.routing_key.is_some() || p.routing_keys.is_some();
    if q.is_some_and(QueueSpec::routes) && !routed {
        let why = format!(
            "the broker `{}` routes through exchanges: name a `routing_key` (the default exchange reaches the queue of that name) or an `exchange`",
            p.target
        );
        return node.fail("routing_key", why);
    }
    let Some(q) = q.filter(|_| routed) else { return Ok(()) };
    // A publish names its route in 16 bits (route 0 is the implicit one).
    let routes: usize = topology
        .specs::<ProducerSpec>()
        .filter(|(_, o)| o.target == p.target)
        .map(|(_, o)| o.routing_keys().len())
        .sum();
    if routes >= usize::from(u16::MAX) {
        let why = format!("the producers of `{}` name {routes} routing keys in all: at most 65,534", p.target);
        return node.fail("routing_keys", why);
    }
    let field = if p.exchange.is_some() {
        "exchange"
    } else if p.routing_key.is_some() {
        "routing_key"
    } else {
        "routing_keys"
    };
    if !q.routes() {
        let why = format!(
            "the broker `{}` declares no queues, so it has no exchanges to route through: declare them in brokers.{}.queues and brokers.{}.exchanges, or remove `{field}`",
            p.target, p.target, p.target
        );
        return node.fail(field, why);
    }
    match p.exchange.as_deref() {
        Some(x) if !x.is_empty() && !q.exchanges.contains_key(x) => {
            let list = crate::kind::quoted(std::iter::once("").chain(q.exchanges.keys().map(String::as_str)));
            node.fail("exchange", format!("the broker `{}` has no exchange `{x}` (exchanges: {list})", p.target))
        }
        _ => Ok(()),
    }
}

/// A producer to a queue broker names no topic and acks as a queue does.
fn check_queue_target(node: &Node, p: &ProducerSpec, topology: &Topology) -> Result<(), Invalid> {
    if p.topic.is_some() {
        return node.fail("topic", "only log brokers have topics");
    }
    if topology.spec::<crate::broker::QueueSpec>(&p.target).is_none() {
        // A node of a queue cluster: it keeps every message it confirmed
        // (a quorum queue as RabbitMQ does; a classic one here, a
        // simplification), and carries no per-message TTL.
        for (field, set) in [("persistent", p.persistent.is_some()), ("message_ttl_ms", p.message_ttl_ms.is_some())] {
            if set {
                return node.fail(field, "not modelled for a queue cluster's node: its queue keeps every message it confirmed, with no TTL of its own");
            }
        }
    }
    for (field, set) in [
        ("batch_size", p.batch_size.is_some()),
        ("batch_records", p.batch_records.is_some()),
        ("linger_ms", p.linger_ms.is_some()),
    ] {
        if set {
            return node.fail(field, "only log producers batch: a queue producer sends each message alone");
        }
    }
    check_queue_acks(node, p)?;
    if p.message_ttl_ms.is_some_and(|t| t.0.fract() != 0.0 || t.0 >= f64::from(u32::MAX)) {
        let m = "expected whole milliseconds below 4294967295 (AMQP's `expiration` is a 32-bit count of ms)";
        return node.fail("message_ttl_ms", m);
    }
    if matches!(p.acks, Some(AckMode::Leader | AckMode::All)) {
        return node.fail("acks", "acks \"1\" and \"all\" are for log brokers: use \"broker\" for a queue");
    }
    Ok(())
}
