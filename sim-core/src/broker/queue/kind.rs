//! The `queue` broker kind: the `[brokers.NAME]` table with `kind =
//! "queue"`, its defaults, its checks (dead letters, subscription names)
//! and the construction of a [`QueueBroker`]. Its consumers tell it, while
//! the engine is assembled, which subscription each reads ([`QueueReaders`]).

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
    /// Most messages a queue holds (waiting, not counting unacked); unbounded when absent.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Whether the queue survives a crash of the broker (default true).
    #[serde(default = "yes")]
    pub durable: bool,
    /// How long a consumer may hold a delivery without acking before the
    /// broker cancels it and takes back all it holds (default 30 s).
    #[serde(default = "default_redelivery_timeout")]
    pub redelivery_timeout_ms: Millis,
    /// Deliveries without an ack after which a message is dead-lettered
    /// instead of delivered again; unlimited when absent.
    #[serde(default)]
    pub max_deliveries: Option<u32>,
    /// How long a message may wait, from its publication, before it expires.
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
}

impl Default for QueueSpec {
    fn default() -> Self {
        QueueSpec {
            capacity: None,
            durable: yes(),
            redelivery_timeout_ms: default_redelivery_timeout(),
            max_deliveries: None,
            ttl_ms: None,
            dead_letter: None,
            subscriptions: BTreeMap::new(),
            nodes: None,
            queue_type: None,
            home: None,
            group_size: None,
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
    Millis(30_000.0)
}

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
    const METRICS: &'static [&'static str] =
        &["deleted_with_subscription", "dropped_no_subscriber", "leader_elections"];
    const ERRORS: &'static [&'static str] = &[
        "rejected-by-consumer",
        "max-deliveries",
        "expired",
        "consumer-timeout",
        "rejected",
        "fenced",
        "out-of-order",
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
        if q.max_deliveries == Some(0) {
            return node.fail("max_deliveries", "expected at least 1");
        }
        for sub in q.subscriptions.keys() {
            // The name becomes an effect domain, read in paths like `domains.NAME.lost`.
            crate::names::check("a subscription name", sub).map_err(|m| node.invalid_at(&["subscriptions", sub], m))?;
        }
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
        boxed(QueueBroker::new(q, q.dead_letter.as_deref().map(|d| build.id(d)), route))
    }
}

/// Dead letters must end somewhere: follows the chain, refuses a loop.
fn dead_letter_loop(node: &Node, topology: &Topology) -> Result<(), Invalid> {
    let mut seen = vec![node.name()];
    let mut next = topology.spec::<QueueSpec>(node.name()).and_then(|q| q.dead_letter.as_deref());
    while let Some(b) = next {
        if seen.contains(&b) {
            return node
                .fail("dead_letter", format!("dead letters would go round in a loop: {} -> {b}", seen.join(" -> ")));
        }
        seen.push(b);
        next = topology.spec::<QueueSpec>(b).and_then(|q| q.dead_letter.as_deref());
    }
    Ok(())
}
