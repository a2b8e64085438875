//! The `queue` broker kind: the `[brokers.NAME]` table with `kind =
//! "queue"`, its defaults, its checks (dead letters, subscription names)
//! and the construction of a [`QueueBroker`]. Its consumers tell it, while
//! the engine is assembled, which subscription each reads ([`QueueReaders`]).

use super::exchange::ExchangeSpec;
use super::QueueBroker;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Invalid, Kind, Node, Topology};
use crate::message::NodeId;
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A queue broker as written in a scenario file (`kind = "queue"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Most messages a queue holds ready (waiting, not counting unacked), as
    /// RabbitMQ's `x-max-length`; unbounded when absent. What happens to a
    /// publish beyond it is `overflow`'s.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Whether the queue survives a crash of the broker (default true).
    #[serde(default = "yes")]
    pub durable: bool,
    /// How long a consumer may hold a delivery without acking before the
    /// broker cancels it and takes back all it holds (RabbitMQ's
    /// `consumer_timeout`, default 30 min).
    #[serde(default = "default_redelivery_timeout")]
    pub redelivery_timeout_ms: Millis,
    /// RabbitMQ's `x-delivery-limit`: how many times a message may come
    /// back (nacked with requeue, or taken back from a closed channel or a
    /// timed-out consumer) and still be delivered again; returned once
    /// more, it is dead-lettered. Unlimited when absent (a classic queue's
    /// default; a quorum queue's is 20 in RabbitMQ 4.x).
    #[serde(default)]
    pub delivery_limit: Option<u32>,
    /// How long a message may wait, from its publication, before it
    /// expires (`x-message-ttl`). 0 delivers a message only to a consumer
    /// that can take it at once.
    #[serde(default)]
    pub ttl_ms: Option<Millis>,
    /// The broker that receives dead and expired messages; none means they
    /// are discarded.
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// Fan-out: one queue per subscription, each getting a copy of every
    /// publish. Empty (the default) means point-to-point: one queue.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, SubscriptionSpec>,
    /// How long a durable broker lets persistent messages gather before it
    /// writes them to disk (fsync) and confirms them, at most (default
    /// 200 ms, RabbitMQ's queue sync interval).
    #[serde(default)]
    pub sync_interval_ms: Option<Millis>,
    /// The exchange a queue's dead letters are published to, inside this
    /// broker (`""` is the default exchange); none means they are discarded
    /// (or sent to `dead_letter`). A queue's own setting overrides it.
    #[serde(default)]
    pub dead_letter_exchange: Option<String>,
    /// The routing key dead letters are published with; absent, each keeps
    /// the key it was published with. A queue's own setting overrides it.
    #[serde(default)]
    pub dead_letter_routing_key: Option<String>,
    /// Named queues, each with the arguments it sets for itself (the
    /// broker's own settings apply to every queue that does not). Empty
    /// means one implicit queue (or one per subscription).
    #[serde(default)]
    pub queues: BTreeMap<String, QueueArgs>,
    /// Exchanges, besides the default exchange `""` that reaches each queue
    /// by its name.
    #[serde(default)]
    pub exchanges: BTreeMap<String, ExchangeSpec>,
    /// What a full queue (`capacity`) does with a publish (`x-overflow`).
    #[serde(default)]
    pub overflow: Overflow,
    /// The old name of `delivery_limit`, refused at validation with the
    /// conversion (it counted deliveries, not returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// A RabbitMQ-like cluster of this many nodes, `NAME-1` .. `NAME-N`
    /// (see [`crate::broker::queue_cluster`]); absent: one node.
    #[serde(default)]
    pub nodes: Option<u32>,
    /// In a cluster, the queue's type: classic (the default, as RabbitMQ
    /// declares a queue) or quorum.
    #[serde(default)]
    pub queue_type: Option<crate::broker::queue_cluster::QueueType>,
    /// In a cluster, the node (1-based) that holds a classic queue, or
    /// first leads a quorum queue (default 1).
    #[serde(default)]
    pub home: Option<u32>,
    /// In a cluster, a quorum queue's replicas (RabbitMQ's
    /// `x-quorum-initial-group-size`; default 3, or every node if fewer).
    #[serde(default)]
    pub group_size: Option<u32>,
    // Dead-letter replay (issue 15; see `replay.rs`).
    /// A dead-letter broker's replay: the broker its shovel moves the
    /// messages back to, at `replay_at_ms`.
    #[serde(default)]
    pub replay_to: Option<String>,
    /// When the shovel moves the messages held then back to `replay_to`.
    #[serde(default)]
    pub replay_at_ms: Option<Millis>,
}

/// What a queue at its `capacity` does with a new publish (RabbitMQ's
/// `x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest ready message and accept the
    /// publish: RabbitMQ's default.
    #[default]
    DropHead,
    /// Refuse the publish: a negative confirm, or a silent drop for a
    /// producer without confirms.
    RejectPublish,
    /// Refuse the publish as `reject-publish` does, and dead-letter the
    /// refused message.
    RejectPublishDlx,
}

/// A named queue's own arguments, each overriding the broker's setting of
/// the same name (RabbitMQ's `x-` arguments at declaration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueArgs {
    /// See [`QueueSpec::durable`].
    #[serde(default)]
    pub durable: Option<bool>,
    /// See [`QueueSpec::capacity`].
    #[serde(default)]
    pub capacity: Option<u64>,
    /// See [`QueueSpec::delivery_limit`].
    #[serde(default)]
    pub delivery_limit: Option<u32>,
    /// See [`QueueSpec::overflow`].
    #[serde(default)]
    pub overflow: Option<Overflow>,
    /// See [`QueueSpec::ttl_ms`].
    #[serde(default)]
    pub ttl_ms: Option<Millis>,
    /// See [`QueueSpec::dead_letter_exchange`].
    #[serde(default)]
    pub dead_letter_exchange: Option<String>,
    /// See [`QueueSpec::dead_letter_routing_key`].
    #[serde(default)]
    pub dead_letter_routing_key: Option<String>,
    /// A dead-letter queue: it holds what could not be processed, for a
    /// person or a replay, and each message it takes counts in
    /// `dead_lettered` (default false; a wait queue of a delayed retry is
    /// not one).
    #[serde(default)]
    pub dead_letter_queue: Option<bool>,
}

impl QueueSpec {
    /// The names of its queues, in queue-number order: the named queues,
    /// or the subscriptions, or the one implicit queue (`""`).
    pub fn queue_names(&self) -> Vec<&str> {
        if !self.queues.is_empty() {
            self.queues.keys().map(String::as_str).collect()
        } else if !self.subscriptions.is_empty() {
            self.subscriptions.keys().map(String::as_str).collect()
        } else {
            vec![""]
        }
    }

    /// Whether it routes through declared queues and exchanges.
    pub fn routes(&self) -> bool {
        !self.queues.is_empty()
    }

    /// The arguments of queue number `i` (none for an implicit queue or a
    /// subscription's).
    pub fn args(&self, i: usize) -> QueueArgs {
        self.queues.values().nth(i).cloned().unwrap_or_default()
    }
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            capacity: None,
            durable: yes(),
            redelivery_timeout_ms: default_redelivery_timeout(),
            delivery_limit: None,
            ttl_ms: None,
            dead_letter: None,
            subscriptions: BTreeMap::new(),
            sync_interval_ms: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            queues: BTreeMap::new(),
            exchanges: BTreeMap::new(),
            overflow: Overflow::default(),
            max_deliveries: None,
            nodes: None,
            queue_type: None,
            home: None,
            group_size: None,
            replay_to: None,
            replay_at_ms: None,
        }
    }
}

/// One subscription of a fan-out broker, as written in its `subscriptions`
/// table: `email = { durable = true }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Whether its queue outlives its consumers (default true): it exists
    /// from the start and keeps what is published while none of them is
    /// connected. A non-durable one exists only while one is connected.
    #[serde(default = "yes")]
    pub durable: bool,
}

impl Default for SubscriptionSpec {
    fn default() -> Self {
        SubscriptionSpec { durable: yes() }
    }
}

fn yes() -> bool {
    true
}

fn default_redelivery_timeout() -> Millis {
    Millis(1_800_000.0)
}

/// RabbitMQ's queue sync interval (`SYNC_INTERVAL` of its queue process),
/// milliseconds.
pub const DEFAULT_SYNC_INTERVAL_MS: f64 = 200.0;

/// What the consumers of a queue broker tell it while the engine is
/// assembled (see [`Build::note`]): the subscription (its index, in name
/// order) each consumer node reads, for a fan-out broker.
#[derive(Debug, Default)]
pub struct QueueReaders {
    /// Consumer node to subscription index.
    pub route: BTreeMap<NodeId, usize>,
}

/// The queue broker kind (`kind = "queue"`).
pub struct QueueBrokerKind;

impl Kind for QueueBrokerKind {
    type Spec = QueueSpec;
    const NAME: &'static str = "queue";
    const SECTION: &'static str = "brokers";
    const METRICS: &'static [&'static str] = &[
        "deleted_with_subscription",
        "dropped_no_subscriber",
        "dropped_head",
        "confirms_at_sync",
        "publishes_confirmed_at_sync",
        "unroutable",
        "dead_letter_cycles",
        "leader_elections",
        "replayed",
        "max_unacked",
    ];
    const GAUGES: &'static [&'static str] = &["stored_bytes", "unacked"];
    const ERRORS: &'static [&'static str] = &[
        "rejected-by-consumer",
        "delivery-limit",
        "expired",
        "consumer-timeout",
        "rejected",
        "dropped-head",
        "no-leader",
    ];

    fn validate(&self, node: &Node, q: &QueueSpec, topology: &Topology) -> Result<(), Invalid> {
        crate::broker::queue_cluster::validate(node, q)?;
        if let Some(dlq) = &q.dead_letter {
            if !topology.is_in(dlq, "brokers") || dlq == node.name() {
                return node
                    .fail("dead_letter", format!("expected another broker (brokers: {})", topology.list("brokers")));
            }
        }
        if let Some(n) = q.max_deliveries {
            let limit = n.saturating_sub(1);
            return node.fail(
                "max_deliveries",
                format!(
                    "renamed `delivery_limit`, which counts returns as RabbitMQ's x-delivery-limit does: \
                     `max_deliveries = {n}` is `delivery_limit = {limit}`"
                ),
            );
        }
        for sub in q.subscriptions.keys() {
            // The name becomes an effect domain, read in paths like `domains.NAME.lost`.
            crate::names::check("a subscription name", sub).map_err(|m| node.invalid_at(&["subscriptions", sub], m))?;
        }
        super::routing::check(node, q)?;
        check_replay(node, q, topology)?;
        dead_letter_loop(node, topology)
    }

    fn members(&self, name: &str, q: &QueueSpec) -> Vec<crate::kind::Member> {
        crate::broker::queue_cluster::members(name, q)
    }

    fn build(&self, node: &Node, q: &QueueSpec, build: &mut Build) -> Box<dyn DynComponent> {
        if q.nodes.is_some() {
            return crate::broker::queue_cluster::table_node();
        }
        let route = build.take_note::<QueueReaders>(node.name()).route;
        let mut broker = QueueBroker::new(q, q.dead_letter.as_deref().map(|d| build.id(d)), route);
        if build.topology().specs::<QueueSpec>().any(|(_, o)| o.dead_letter.as_deref() == Some(node.name())) {
            broker = broker.holding_dead_letters();
        }
        if let (Some(to), Some(at)) = (&q.replay_to, q.replay_at_ms) {
            broker = broker.replaying(build.id(to), crate::time::ms_to_ns(at.0));
        }
        if !q.routes() {
            return boxed(broker);
        }
        let publishers = build.take_note::<QueuePublishers>(node.name()).routes;
        let (router, routes, dlx) = super::routing::resolve(q, &publishers);
        for (producer, ids) in super::routing::route_ids(&publishers) {
            build.note::<PublishRoutes>(&producer).ids = ids;
        }
        boxed(broker.with_routing(router, routes, dlx))
    }
}

/// What a queue broker's producers tell it before it is built (see
/// [`Kind::declare`]): each producer's exchange and routing keys, by name.
#[derive(Debug, Default)]
pub struct QueuePublishers {
    /// Producer name to (exchange, routing keys).
    pub routes: BTreeMap<String, (String, Vec<String>)>,
}

/// What a queue broker tells each of its producers: the broker's numbers
/// of the routes (exchange and routing key) it publishes with, one per
/// routing key, in the producer's order.
#[derive(Debug, Default)]
pub struct PublishRoutes {
    /// Route numbers, one per routing key.
    pub ids: Vec<u16>,
}

/// A replay names another queue broker without routing, and its time;
/// it moves the broker's one queue.
fn check_replay(node: &Node, q: &QueueSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(to) = &q.replay_to else {
        if q.replay_at_ms.is_some() {
            return node.fail("replay_at_ms", "a replay needs the broker it moves the messages to: set replay_to");
        }
        return Ok(());
    };
    if q.replay_at_ms.is_none() {
        return node.fail("replay_to", "a replay needs its time: set replay_at_ms");
    }
    if to == node.name() {
        return node.fail("replay_to", "expected the work broker, not this one: it would move its messages to itself");
    }
    let Some(target) = topology.spec::<QueueSpec>(to) else {
        return node.fail("replay_to", format!("no queue broker named `{to}` (brokers: {})", topology.list("brokers")));
    };
    if target.routes() || target.nodes.is_some() {
        let why = format!("`{to}` routes through exchanges or is a cluster: a replay publishes to a broker's implicit queue (or its subscriptions)");
        return node.fail("replay_to", why);
    }
    if !q.queues.is_empty() || !q.subscriptions.is_empty() || q.nodes.is_some() {
        return node.fail(
            "replay_to",
            "a replay moves a dead-letter broker's one queue: remove its queues, subscriptions or nodes",
        );
    }
    Ok(())
}

/// Dead letters must end somewhere: follows the chain, refuses a loop.
fn dead_letter_loop(node: &Node, topology: &Topology) -> Result<(), Invalid> {
    let mut seen = vec![node.name()];
    let mut next = topology.spec::<QueueSpec>(node.name()).and_then(|q| q.dead_letter.as_deref());
    while let Some(b) = next {
        if seen.contains(&b) {
            let why = format!(
                "dead letters would go round in a loop: {} -> {b} (between brokers they may not; within one broker, a queue's dead_letter_exchange may lead back to it, as in a delayed retry: see queues and exchanges)",
                seen.join(" -> ")
            );
            return node.fail("dead_letter", why);
        }
        seen.push(b);
        next = topology.spec::<QueueSpec>(b).and_then(|q| q.dead_letter.as_deref());
    }
    Ok(())
}
