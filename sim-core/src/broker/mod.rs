//! Brokers: the middlemen that hold messages between producers and
//! consumers. This module holds the queue broker (RabbitMQ-like: one FIFO
//! queue with acks and redelivery, or one per subscription when it fans
//! out); partitioned logs (Kafka-like) belong
//! beside it, chosen by the `kind` field of a broker in a scenario file.

mod queue;

pub use queue::{QueueBroker, QueueSpec, SubscriptionSpec};

use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A broker as written in a scenario file: `kind` selects the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", try_from = "BrokerTable")]
pub enum BrokerSpec {
    /// One FIFO queue with acks, redelivery and optional capacity, or one
    /// such queue per subscription (fan-out).
    Queue(QueueSpec),
}

/// A broker table as written (see the `tagged` module).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrokerTable {
    kind: BrokerKind,
    capacity: Option<u64>,
    durable: Option<bool>,
    redelivery_timeout_ms: Option<Millis>,
    max_deliveries: Option<u32>,
    ttl_ms: Option<Millis>,
    dead_letter: Option<String>,
    subscriptions: Option<BTreeMap<String, SubscriptionSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BrokerKind {
    Queue,
}

impl TryFrom<BrokerTable> for BrokerSpec {
    type Error = String;

    fn try_from(t: BrokerTable) -> Result<Self, String> {
        let defaults = QueueSpec::default();
        Ok(match t.kind {
            BrokerKind::Queue => BrokerSpec::Queue(QueueSpec {
                capacity: t.capacity,
                durable: t.durable.unwrap_or(defaults.durable),
                redelivery_timeout_ms: t.redelivery_timeout_ms.unwrap_or(defaults.redelivery_timeout_ms),
                max_deliveries: t.max_deliveries,
                ttl_ms: t.ttl_ms,
                dead_letter: t.dead_letter,
                subscriptions: t.subscriptions.unwrap_or_default(),
            }),
        })
    }
}
