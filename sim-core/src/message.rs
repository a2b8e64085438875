//! The wire vocabulary: every message a component can send another. One enum
//! for the whole simulator keeps dispatch a `match` and lets the engine and
//! the ledger observe the messages that matter (a broker's ack reaching a
//! producer, a delivery reaching a consumer) without trusting components.

/// Global identity of one produced message, assigned by the ledger in
/// production order (0, 1, 2, ...).
pub type MsgId = u64;

/// Index of a node (component) in the simulation, in topology order.
pub type NodeId = u32;

/// The part of a produced message every hop carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The ledger's identity for the message.
    pub id: MsgId,
    /// The message key (ordering is judged within a key).
    pub key: u64,
}

/// How much replication a log producer waits for before its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No ack at all (`acks=0`): fire-and-forget.
    None,
    /// The leader appended it (`acks=1`).
    Leader,
    /// Every in-sync replica has it (`acks=all`).
    All,
}

/// Why a fetch from a log was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// Served (possibly with no records).
    None,
    /// The consumer does not own the partition in the group's current
    /// generation, or the group is rebalancing: stop and wait for the new
    /// assignment.
    NotOwner,
}

/// One read-process-write transaction: append `outputs` to `out_topic`
/// and move the group's offset of `partition` from `start` to `end`,
/// atomically, or do nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Group index.
    pub group: u16,
    /// The member's generation (a zombie's is stale: fenced).
    pub generation: u32,
    /// Input partition.
    pub partition: u32,
    /// The committed offset the transaction starts from.
    pub start: u64,
    /// The offset it commits.
    pub end: u64,
    /// Output topic index.
    pub out_topic: u16,
    /// Output records.
    pub outputs: Vec<Record>,
}

/// A message in flight between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Producer to broker: append/enqueue this record.
    Publish {
        /// The record.
        rec: Record,
        /// Whether the producer waits for a [`Msg::PublishAck`].
        want_ack: bool,
        /// Which attempt this is (1 for the first send).
        attempt: u32,
        /// The idempotent producer's session (0: not idempotent).
        epoch: u32,
        /// The idempotent producer's sequence number within `epoch`.
        seq: u64,
    },
    /// Broker to producer: the publish of `id` was accepted or refused.
    PublishAck {
        /// Which message.
        id: MsgId,
        /// False when the broker refused it (queue full).
        accepted: bool,
        /// The attempt being answered.
        attempt: u32,
    },
    /// Broker to consumer: process this record.
    Deliver {
        /// The record.
        rec: Record,
        /// Broker-assigned delivery tag, echoed back in the ack.
        tag: u64,
        /// True when this is a redelivery after a timeout or a reconnect.
        redelivered: bool,
    },
    /// Consumer to broker: the delivery `tag` is done; forget it.
    Ack {
        /// The delivery tag from [`Msg::Deliver`].
        tag: u64,
    },
    /// Consumer to broker: processing delivery `tag` failed. With `requeue`
    /// the broker delivers it again; without, it dead-letters it.
    Nack {
        /// The delivery tag from [`Msg::Deliver`].
        tag: u64,
        /// Whether to try again.
        requeue: bool,
    },
    /// Consumer to broker: (re)connect and accept up to `prefetch` unacked
    /// deliveries at once. Sent at start and after a restart, and repeated
    /// until the broker confirms with [`Msg::Subscribed`].
    Subscribe {
        /// How many unacknowledged deliveries the consumer accepts at once.
        prefetch: u32,
        /// Which (re)start of the consumer this is: a repeat with the same
        /// session is a retransmission, not a reconnect.
        session: u32,
        /// Auto-ack: the broker forgets each message the moment it sends it
        /// and sends without limit (prefetch does not apply).
        auto_ack: bool,
    },
    /// Broker to consumer: the subscription of `session` is in place.
    Subscribed {
        /// The session confirmed: a confirmation of an older one is stale.
        session: u32,
    },
    /// Producer to log broker: append this record to `partition` of `topic`.
    Produce {
        /// The record.
        rec: Record,
        /// What the producer waits for.
        acks: Acks,
        /// Which attempt this is (1 for the first send).
        attempt: u32,
        /// The idempotent producer's session (0: not idempotent).
        epoch: u32,
        /// The idempotent producer's sequence number in this partition.
        seq: u64,
        /// Topic index (in the broker's topic order).
        topic: u16,
        /// Partition within the topic.
        partition: u32,
    },
    /// Group member to log broker: I am alive, in `session`, holding the
    /// assignment of `generation` (0: none). An unknown member or session
    /// joins the group.
    Heartbeat {
        /// Group index.
        group: u16,
        /// The member's (re)start count.
        session: u32,
        /// The generation whose assignment the member holds.
        generation: u32,
    },
    /// Log broker to group member: the group's state. Stable: your
    /// partitions and where to start reading each (the committed offset).
    GroupState {
        /// The group's generation.
        generation: u32,
        /// True while a rebalance is in progress (stop fetching).
        rebalancing: bool,
        /// (partition, committed offset) for each partition assigned to you.
        partitions: Vec<(u32, u64)>,
    },
    /// Group member to log broker: records of `partition` from `offset`.
    Fetch {
        /// Group index.
        group: u16,
        /// The member's generation.
        generation: u32,
        /// Partition of the group's topic.
        partition: u32,
        /// First offset wanted.
        offset: u64,
        /// Most records wanted.
        max: u32,
    },
    /// Log broker to group member: records of `partition` starting at
    /// `offset` (which may differ from the offset asked for when that was
    /// out of range).
    Records {
        /// Partition.
        partition: u32,
        /// Offset of the first record (or where to read next, when empty).
        offset: u64,
        /// The records, in offset order.
        recs: Vec<Record>,
        /// Why nothing was served, if so.
        error: FetchError,
    },
    /// Group member to log broker: commit `offset` (the next to read) for
    /// `partition`.
    Commit {
        /// Group index.
        group: u16,
        /// The member's generation.
        generation: u32,
        /// Partition.
        partition: u32,
        /// The next offset to read.
        offset: u64,
    },
    /// Group member to log broker: one read-process-write transaction
    /// (boxed: it is rare and large, and every message pays for the
    /// largest variant).
    TxnCommit(Box<Transaction>),
    /// Log broker to group member: the outcome of a transaction.
    TxnAck {
        /// Input partition.
        partition: u32,
        /// The group's committed offset for it now.
        committed: u64,
        /// True when the transaction is (now or before) committed.
        ok: bool,
    },
    /// Log broker to group member: the outcome of a [`Msg::Commit`].
    CommitAck {
        /// Partition.
        partition: u32,
        /// The offset that was to be committed.
        offset: u64,
        /// False when the member was fenced (it no longer owns the partition).
        ok: bool,
    },
    /// Sent by the engine on behalf of a node whose process died, to every
    /// node it had sent to: its connections closed. The network may delay
    /// or lose it like any message.
    PeerDown,
    /// Broker to consumer: your subscription of `session` was cancelled
    /// (you held a delivery too long); everything you held was taken back.
    Cancelled {
        /// The session cancelled: a notice for an older session is stale.
        session: u32,
    },
}

impl Msg {
    /// The produced message this carries, if any.
    pub fn msg_id(&self) -> Option<MsgId> {
        match self {
            Msg::Publish { rec, .. } | Msg::Deliver { rec, .. } | Msg::Produce { rec, .. } => Some(rec.id),
            Msg::Records { recs, .. } => recs.first().map(|r| r.id),
            Msg::TxnCommit(t) => t.outputs.first().map(|r| r.id),
            Msg::PublishAck { id, .. } => Some(*id),
            Msg::Ack { .. }
            | Msg::Nack { .. }
            | Msg::Subscribe { .. }
            | Msg::Subscribed { .. }
            | Msg::Cancelled { .. }
            | Msg::PeerDown
            | Msg::Heartbeat { .. }
            | Msg::GroupState { .. }
            | Msg::Fetch { .. }
            | Msg::Commit { .. }
            | Msg::TxnAck { .. }
            | Msg::CommitAck { .. } => None,
        }
    }

    /// A short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Publish { .. } => "publish",
            Msg::PublishAck { .. } => "publish-ack",
            Msg::Deliver { .. } => "deliver",
            Msg::Ack { .. } => "ack",
            Msg::Subscribe { .. } => "subscribe",
            Msg::Subscribed { .. } => "subscribed",
            Msg::Nack { .. } => "nack",
            Msg::Cancelled { .. } => "cancelled",
            Msg::PeerDown => "peer-down",
            Msg::Produce { .. } => "produce",
            Msg::Heartbeat { .. } => "heartbeat",
            Msg::GroupState { .. } => "group-state",
            Msg::Fetch { .. } => "fetch",
            Msg::Records { .. } => "records",
            Msg::Commit { .. } => "commit",
            Msg::TxnCommit(_) => "txn-commit",
            Msg::TxnAck { .. } => "txn-ack",
            Msg::CommitAck { .. } => "commit-ack",
        }
    }

    /// Folds every field into `digest`, so that two histories that differ in
    /// any message differ in digest.
    pub(crate) fn fold(&self, digest: &mut crate::trace::Digest) {
        digest.add(self.code());
        match *self {
            Msg::Publish { rec, want_ack, attempt, epoch, seq } => {
                digest.add(rec.id);
                digest.add(rec.key);
                digest.add(u64::from(want_ack) << 32 | u64::from(attempt));
                digest.add(u64::from(epoch));
                digest.add(seq);
            }
            Msg::PublishAck { id, accepted, attempt } => {
                digest.add(id);
                digest.add(u64::from(accepted) << 32 | u64::from(attempt));
            }
            Msg::Deliver { rec, tag, redelivered } => {
                digest.add(rec.id);
                digest.add(rec.key);
                digest.add(tag);
                digest.add(u64::from(redelivered));
            }
            Msg::Ack { tag } => digest.add(tag),
            Msg::Nack { tag, requeue } => {
                digest.add(tag);
                digest.add(u64::from(requeue));
            }
            Msg::Subscribe { prefetch, session, auto_ack } => {
                digest.add(u64::from(prefetch) << 32 | u64::from(session));
                digest.add(u64::from(auto_ack));
            }
            Msg::Cancelled { session } | Msg::Subscribed { session } => digest.add(u64::from(session)),
            Msg::PeerDown => {}
            Msg::Produce { rec, acks, attempt, epoch, seq, topic, partition } => {
                digest.add(rec.id);
                digest.add(rec.key);
                digest.add((acks as u64) << 32 | u64::from(attempt));
                digest.add(u64::from(epoch));
                digest.add(seq);
                digest.add(u64::from(topic) << 32 | u64::from(partition));
            }
            Msg::Heartbeat { group, session, generation } => {
                digest.add(u64::from(group));
                digest.add(u64::from(session) << 32 | u64::from(generation));
            }
            Msg::GroupState { generation, rebalancing, ref partitions } => {
                digest.add(u64::from(generation) << 1 | u64::from(rebalancing));
                for &(p, o) in partitions {
                    digest.add(u64::from(p));
                    digest.add(o);
                }
            }
            Msg::Fetch { group, generation, partition, offset, max } => {
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition) << 32 | u64::from(max));
                digest.add(offset);
            }
            Msg::Records { partition, offset, ref recs, error } => {
                digest.add(u64::from(partition) << 8 | error as u64);
                digest.add(offset);
                for r in recs {
                    digest.add(r.id);
                }
            }
            Msg::Commit { group, generation, partition, offset } => {
                digest.add(u64::from(group) << 32 | u64::from(generation));
                digest.add(u64::from(partition));
                digest.add(offset);
            }
            Msg::TxnCommit(ref t) => {
                digest.add(u64::from(t.group) << 32 | u64::from(t.generation));
                digest.add(u64::from(t.partition) << 16 | u64::from(t.out_topic));
                digest.add(t.start);
                digest.add(t.end);
                for r in &t.outputs {
                    digest.add(r.id);
                }
            }
            Msg::TxnAck { partition, committed, ok } | Msg::CommitAck { partition, offset: committed, ok } => {
                digest.add(u64::from(partition) << 1 | u64::from(ok));
                digest.add(committed);
            }
        }
    }

    pub(crate) fn code(&self) -> u64 {
        match self {
            Msg::Publish { .. } => 1,
            Msg::PublishAck { .. } => 2,
            Msg::Deliver { .. } => 3,
            Msg::Ack { .. } => 4,
            Msg::Subscribe { .. } => 5,
            Msg::Subscribed { .. } => 6,
            Msg::Nack { .. } => 7,
            Msg::Cancelled { .. } => 8,
            Msg::PeerDown => 9,
            Msg::Produce { .. } => 10,
            Msg::Heartbeat { .. } => 11,
            Msg::GroupState { .. } => 12,
            Msg::Fetch { .. } => 13,
            Msg::Records { .. } => 14,
            Msg::Commit { .. } => 15,
            Msg::TxnCommit(_) => 16,
            Msg::TxnAck { .. } => 17,
            Msg::CommitAck { .. } => 18,
        }
    }
}

// Every message pays for the largest variant in the event slab: keep it
// as small as the publish (box rare, large variants).
const _: () = assert!(std::mem::size_of::<Msg>() <= 40);
