//! The protocol inside a RabbitMQ-like queue cluster
//! ([`crate::broker::queue_cluster`]): a client's node forwarding its
//! channel's publishes, consumers and acks to the queue's leader (or a
//! classic queue's home node) and relaying confirms back, and the Raft
//! messages of a quorum queue's replicas (append entries, pre-votes and
//! votes).
//!
//! Left out: Erlang distribution itself (node monitoring, net ticks), and
//! Raft snapshots (a replica catches up by replaying the log).

use super::{MsgId, NodeId, Observed, Protocol, Record};
use crate::digest::Digest;
use crate::time::Time;

/// A command of a quorum queue's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The leader's first entry of its term: committing it commits every
    /// entry of earlier terms (Raft's rule), after which it serves.
    Noop,
    /// A message enters the queue.
    Enqueue {
        /// The message.
        rec: Record,
        /// When the leader appended it (TTL counts from here).
        at: Time,
        /// The node whose channel published it (it relays the confirm).
        via: NodeId,
        /// The publisher.
        producer: NodeId,
        /// The publisher's attempt.
        attempt: u32,
        /// Whether the publisher waits for a confirm.
        want_ack: bool,
    },
    /// A message leaves the queue for good: acked, dead-lettered or expired.
    Settle(MsgId),
}

/// One entry of a quorum queue's Raft log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// The term of the leader that appended it.
    pub term: u32,
    /// What it does.
    pub cmd: Command,
}

/// Raft's AppendEntries: replication and heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The leader's term.
    pub term: u32,
    /// The index of the entry just before `entries` (0: none).
    pub prev_index: u64,
    /// Its term.
    pub prev_term: u32,
    /// Entries to append after `prev_index`.
    pub entries: Vec<LogEntry>,
    /// The leader's commit index.
    pub commit: u64,
}

/// How a consumer settled a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// basic.ack.
    Ack,
    /// basic.nack, with or without requeue.
    Nack {
        /// Whether to deliver it again.
        requeue: bool,
    },
}

/// A message between the nodes of a queue cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueClusterMsg {
    /// A channel's node to the queue's leader (or home): a publish.
    Forward {
        /// The message.
        rec: Record,
        /// The publisher.
        producer: NodeId,
        /// Its attempt.
        attempt: u32,
        /// Whether it waits for a confirm.
        want_ack: bool,
    },
    /// The leader (or home) to the channel's node: the publish is safe
    /// (committed by a majority, for a quorum queue).
    Confirm {
        /// Which message.
        id: MsgId,
        /// The publisher to tell.
        producer: NodeId,
        /// The attempt confirmed.
        attempt: u32,
    },
    /// A channel's node to the leader: its consumer subscribes.
    Consume {
        /// The consumer.
        consumer: NodeId,
        /// Its prefetch.
        prefetch: u32,
        /// Its session.
        session: u32,
        /// Auto-ack.
        auto_ack: bool,
    },
    /// A channel's node to the leader: its consumer settled a delivery.
    Settle {
        /// The consumer.
        consumer: NodeId,
        /// The delivery tag.
        tag: u64,
        /// Ack or nack.
        how: Settlement,
    },
    /// A channel's node to the leader: its consumer's connection closed.
    Gone {
        /// The consumer.
        consumer: NodeId,
    },
    /// Leader to replica (and, empty, to the other nodes: who leads).
    Append(Box<Append>),
    /// Replica to leader: the answer to an append.
    AppendReply {
        /// The replica's term.
        term: u32,
        /// Whether the entries were appended.
        ok: bool,
        /// The replica's last index matching the leader's log (when ok),
        /// else where the leader should try again from (minus one).
        matched: u64,
        /// Whether the replica votes (one that lost its disk does not
        /// until it caught up).
        voter: bool,
    },
    /// A candidate asks for a vote (`pre`: would you vote, without
    /// changing any term).
    Vote {
        /// The term it asks for.
        term: u32,
        /// Its last log index.
        last_index: u64,
        /// Its last log term.
        last_term: u32,
        /// A pre-vote.
        pre: bool,
    },
    /// The answer to a vote request.
    VoteReply {
        /// The voter's term (the asked one, for a pre-vote granted).
        term: u32,
        /// Whether the vote was granted.
        granted: bool,
        /// An answer to a pre-vote.
        pre: bool,
    },
}

impl From<QueueClusterMsg> for super::Msg {
    fn from(m: QueueClusterMsg) -> Self {
        super::Msg::QueueCluster(m)
    }
}

impl Protocol for QueueClusterMsg {
    fn name(&self) -> &'static str {
        match self {
            QueueClusterMsg::Forward { .. } => "qc-forward",
            QueueClusterMsg::Confirm { .. } => "qc-confirm",
            QueueClusterMsg::Consume { .. } => "qc-consume",
            QueueClusterMsg::Settle { .. } => "qc-settle",
            QueueClusterMsg::Gone { .. } => "qc-gone",
            QueueClusterMsg::Append(_) => "qc-append",
            QueueClusterMsg::AppendReply { .. } => "qc-append-reply",
            QueueClusterMsg::Vote { .. } => "qc-vote",
            QueueClusterMsg::VoteReply { .. } => "qc-vote-reply",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match self {
            QueueClusterMsg::Forward { rec, .. } => Some(rec.id),
            QueueClusterMsg::Confirm { id, .. } => Some(*id),
            _ => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match self {
            QueueClusterMsg::Forward { rec, producer, attempt, want_ack } => {
                digest.add(90);
                digest.add(rec.id);
                digest.add(u64::from(*producer) << 32 | u64::from(*attempt));
                digest.add(u64::from(*want_ack));
            }
            QueueClusterMsg::Confirm { id, producer, attempt } => {
                digest.add(91);
                digest.add(*id);
                digest.add(u64::from(*producer) << 32 | u64::from(*attempt));
            }
            QueueClusterMsg::Consume { consumer, prefetch, session, auto_ack } => {
                digest.add(92);
                digest.add(u64::from(*consumer) << 32 | u64::from(*prefetch));
                digest.add(u64::from(*session) << 1 | u64::from(*auto_ack));
            }
            QueueClusterMsg::Settle { consumer, tag, how } => {
                digest.add(93);
                digest.add(u64::from(*consumer));
                digest.add(*tag);
                digest.add(match how {
                    Settlement::Ack => 0,
                    Settlement::Nack { requeue } => 1 + u64::from(*requeue),
                });
            }
            QueueClusterMsg::Gone { consumer } => {
                digest.add(94);
                digest.add(u64::from(*consumer));
            }
            QueueClusterMsg::Append(a) => fold_append(digest, a),
            QueueClusterMsg::AppendReply { term, ok, matched, voter } => {
                digest.add(96);
                digest.add(u64::from(*term) << 2 | u64::from(*ok) << 1 | u64::from(*voter));
                digest.add(*matched);
            }
            QueueClusterMsg::Vote { term, last_index, last_term, pre } => {
                digest.add(97);
                digest.add(u64::from(*term) << 1 | u64::from(*pre));
                digest.add(*last_index);
                digest.add(u64::from(*last_term));
            }
            QueueClusterMsg::VoteReply { term, granted, pre } => {
                digest.add(98);
                digest.add(u64::from(*term) << 2 | u64::from(*granted) << 1 | u64::from(*pre));
            }
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        match self {
            QueueClusterMsg::Forward { rec, .. } => out.push(rec.id),
            QueueClusterMsg::Append(a) => out.extend(a.entries.iter().filter_map(|e| match e.cmd {
                Command::Enqueue { rec, .. } => Some(rec.id),
                _ => None,
            })),
            _ => {}
        }
    }

    fn observe(&self, _see: &mut impl FnMut(Observed)) {
        // Confirms and deliveries reach clients in the queue protocol.
    }

    fn wire_bytes(&self) -> u64 {
        match self {
            QueueClusterMsg::Forward { rec, .. } => super::wire::control(0) + u64::from(rec.bytes),
            QueueClusterMsg::Append(a) => {
                let bytes = a.entries.iter().map(|e| match e.cmd {
                    Command::Enqueue { rec, .. } => 32 + u64::from(rec.bytes),
                    _ => 16,
                });
                super::wire::control(0) + bytes.sum::<u64>()
            }
            _ => super::wire::control(0),
        }
    }
}

fn fold_append(digest: &mut Digest, a: &Append) {
    digest.add(95);
    digest.add(u64::from(a.term) << 32 | u64::from(a.prev_term));
    digest.add(a.prev_index);
    digest.add(a.commit);
    for e in &a.entries {
        digest.add(u64::from(e.term));
        match e.cmd {
            Command::Noop => digest.add(0),
            Command::Enqueue { rec, at, via, producer, attempt, want_ack } => {
                digest.add(1);
                digest.add(rec.id);
                digest.add(at);
                digest.add(u64::from(via) << 32 | u64::from(producer));
                digest.add(u64::from(attempt) << 1 | u64::from(want_ack));
            }
            Command::Settle(id) => {
                digest.add(2);
                digest.add(id);
            }
        }
    }
}
