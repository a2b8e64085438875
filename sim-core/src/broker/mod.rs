//! Brokers: the middlemen that hold messages between producers and
//! consumers. This module holds the queue broker (RabbitMQ-like, one FIFO
//! queue with acks and redelivery); partitioned logs (Kafka-like) belong
//! beside it, chosen by the `kind` field of a broker in a scenario file.

mod queue;

pub use queue::{QueueBroker, QueueSpec};

use serde::{Deserialize, Serialize};

/// A broker as written in a scenario file: `kind` selects the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BrokerSpec {
    /// One FIFO queue with acks, redelivery and optional capacity.
    Queue(QueueSpec),
}
