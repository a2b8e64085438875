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
    /// What a full queue (`capacity`) does with a publish (`x-overflow`).
    #[serde(default)]
    pub overflow: Overflow,
    /// The old name of `delivery_limit`, refused at validation with the
    /// conversion (it counted deliveries, not returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
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
            overflow: Overflow::default(),
            max_deliveries: None,
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
    const METRICS: &'static [&'static str] = &["deleted_with_subscription", "dropped_no_subscriber", "dropped_head"];
    const ERRORS: &'static [&'static str] = &[
        "rejected-by-consumer",
        "delivery-limit",
        "expired",
        "consumer-timeout",
        "rejected",
        "fenced",
        "out-of-order",
        "dropped-head",
    ];

    fn validate(&self, node: &Node, q: &QueueSpec, topology: &Topology) -> Result<(), Invalid> {
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
        dead_letter_loop(node, topology)
    }

    fn build(&self, node: &Node, q: &QueueSpec, build: &mut Build) -> Box<dyn DynComponent> {
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
