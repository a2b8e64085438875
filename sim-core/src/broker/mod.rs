//! Brokers: the middlemen that hold messages between producers and
//! consumers. This module holds the queue broker (RabbitMQ-like: one FIFO
//! queue with acks and redelivery, or one per subscription when it fans
//! out); the partitioned log (Kafka-like) beside it. Each is a kind of the
//! `brokers` section, chosen by the `kind` field of a broker in a scenario
//! file (see [`crate::registry`]).

pub mod cluster;
mod log;
mod queue;
pub mod queue_cluster;

pub use crate::protocol::{publish, Acks, FetchError, LogMsg, QueueMsg, Transaction};
pub use log::{
    key_partition, partitions_needed, Assignor, CoordTimer, Coordinator, GroupHost, GroupInfo, GroupTxn, Handled,
    HostTimer, LogBroker, LogBrokerKind, LogGroups, LogSpec, RebalanceProtocol, TopicSpec,
};
pub use queue::exchange;
pub use queue::{
    Overflow, PublishRoutes, QueueArgs, QueueBroker, QueueBrokerKind, QueuePublishers, QueueReaders, QueueSpec,
    SubscriptionSpec,
};
