//! Brokers: the middlemen that hold messages between producers and
//! consumers. This module holds the queue broker (RabbitMQ-like: one FIFO
//! queue with acks and redelivery, or one per subscription when it fans
//! out); partitioned logs (Kafka-like) belong
//! beside it, chosen by the `kind` field of a broker in a scenario file.

mod log;
mod queue;

pub use crate::protocol::{publish, Acks, FetchError, LogMsg, QueueMsg, Transaction};
pub use log::{key_partition, Assignor, GroupInfo, LogBroker, LogSpec, TopicSpec};
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
    /// Partitioned, replicated logs with consumer groups (Kafka-like).
    Log(LogSpec),
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
    topics: Option<std::collections::BTreeMap<String, TopicSpec>>,
    replicas: Option<u32>,
    min_insync_replicas: Option<u32>,
    unclean_leader_election: Option<bool>,
    replication: Option<crate::dist::Dist>,
    replica_lag_max_ms: Option<Millis>,
    election_delay_ms: Option<Millis>,
    session_timeout_ms: Option<Millis>,
    rebalance_delay_ms: Option<Millis>,
    subscriptions: Option<BTreeMap<String, SubscriptionSpec>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BrokerKind {
    Queue,
    Log,
}

impl TryFrom<BrokerTable> for BrokerSpec {
    type Error = String;

    fn try_from(t: BrokerTable) -> Result<Self, String> {
        use crate::tagged::{need, only, present};
        let p = present!(
            t,
            capacity,
            durable,
            redelivery_timeout_ms,
            max_deliveries,
            ttl_ms,
            dead_letter,
            subscriptions,
            topics,
            replicas,
            min_insync_replicas,
            unclean_leader_election,
            replication,
            replica_lag_max_ms,
            election_delay_ms,
            session_timeout_ms,
            rebalance_delay_ms
        );
        let defaults = QueueSpec::default();
        Ok(match t.kind {
            BrokerKind::Log => {
                let w = "a `log` broker";
                only(
                    &p,
                    &[
                        "topics",
                        "replicas",
                        "min_insync_replicas",
                        "unclean_leader_election",
                        "replication",
                        "replica_lag_max_ms",
                        "election_delay_ms",
                        "session_timeout_ms",
                        "rebalance_delay_ms",
                    ],
                    w,
                )?;
                let d = LogSpec::default();
                BrokerSpec::Log(LogSpec {
                    topics: need(t.topics, "topics", w)?,
                    replicas: t.replicas.unwrap_or(d.replicas),
                    min_insync_replicas: t.min_insync_replicas.unwrap_or(d.min_insync_replicas),
                    unclean_leader_election: t.unclean_leader_election.unwrap_or(d.unclean_leader_election),
                    replication: t.replication.unwrap_or(d.replication),
                    replica_lag_max_ms: t.replica_lag_max_ms.unwrap_or(d.replica_lag_max_ms),
                    election_delay_ms: t.election_delay_ms.unwrap_or(d.election_delay_ms),
                    session_timeout_ms: t.session_timeout_ms.unwrap_or(d.session_timeout_ms),
                    rebalance_delay_ms: t.rebalance_delay_ms.unwrap_or(d.rebalance_delay_ms),
                })
            }
            BrokerKind::Queue => {
                let allowed = [
                    "capacity",
                    "durable",
                    "redelivery_timeout_ms",
                    "max_deliveries",
                    "ttl_ms",
                    "dead_letter",
                    "subscriptions",
                ];
                only(&p, &allowed, "a `queue` broker")?;
                BrokerSpec::Queue(QueueSpec {
                    capacity: t.capacity,
                    durable: t.durable.unwrap_or(defaults.durable),
                    redelivery_timeout_ms: t.redelivery_timeout_ms.unwrap_or(defaults.redelivery_timeout_ms),
                    max_deliveries: t.max_deliveries,
                    ttl_ms: t.ttl_ms,
                    dead_letter: t.dead_letter,
                    subscriptions: t.subscriptions.unwrap_or_default(),
                })
            }
        })
    }
}
