//! The cluster protocol (KRaft-like), spoken inside a log cluster between
//! its brokers and its controller, and between clients and brokers about
//! where partitions lead:
//!
//! - **liveness and metadata**: each broker heartbeats to the controller
//!   ([`ClusterMsg::BrokerHeartbeat`]); the controller answers with the
//!   partition states the broker has not seen, and pushes every change to
//!   every broker at once ([`ClusterMsg::Metadata`]), as KRaft brokers
//!   replicate the metadata log;
//! - **ISR changes**: only a partition's leader proposes them
//!   ([`ClusterMsg::AlterPartition`]), and only the controller decides;
//!   the answer ([`ClusterMsg::AlterPartitionAck`]) carries the state now
//!   in force, whether the proposal won or not;
//! - **replication**: a follower broker fetches, from each broker that
//!   leads partitions it follows, every such partition in one request
//!   ([`ClusterMsg::ReplicaFetch`]), saying where its log ends and the
//!   leader epoch of its last record; the leader answers with records, its
//!   high watermark, or the point where the follower's log diverged from
//!   its own ([`ClusterMsg::ReplicaData`]);
//! - **clients**: a producer or a consumer asks any broker where the
//!   partitions of a topic lead ([`ClusterMsg::MetadataRequest`]); a broker
//!   answers from its own view, which may be stale
//!   ([`ClusterMsg::Leaders`]). A broker that is asked to produce or fetch a
//!   partition it does not lead refuses, and sends its view along (Kafka's
//!   `NOT_LEADER_OR_FOLLOWER` with the new leader's hint, KIP-951). A group
//!   member asks which broker coordinates its group
//!   ([`ClusterMsg::FindCoordinator`]).
//!
//! Brokers are named by their index in the cluster (0-based, `u16`); the
//! [`crate::broker::cluster`] layout maps indices to network nodes.
//! Partitions are numbered across topics, in topic order, as in the single
//! log broker, except in client messages, which say (topic, partition).
//!
//! - **the controller quorum** (a cluster with `controllers` > 1): voters
//!   elect the active controller ([`ClusterMsg::QuorumVote`],
//!   [`ClusterMsg::BeginQuorum`]) and follow its metadata log by fetching
//!   it ([`ClusterMsg::QuorumFetch`], [`ClusterMsg::QuorumData`]); a voter
//!   that is not active answers a broker with [`ClusterMsg::NotController`].
//!
//! Left out: broker
//! registration (a broker is known from the scenario), and the metadata
//! log's snapshots (an update carries whole partition states).

use super::offsets::{OffsetsRecord, OFFSETS_RECORD};
use super::NodeId;
use super::{wire, MsgId, Protocol, Record};
use crate::digest::Digest;

/// A broker's index in its cluster.
pub type BrokerIx = u16;

/// One partition's state as the controller decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartState {
    /// The partition (numbered across topics).
    pub partition: u32,
    /// The broker that leads it, if any (none: offline).
    pub leader: Option<BrokerIx>,
    /// Bumped by every leader change.
    pub leader_epoch: u32,
    /// Bumped by every change (leader or ISR): an `AlterPartition` must
    /// name the current one.
    pub partition_epoch: u32,
    /// The in-sync replicas, in assignment order.
    pub isr: Vec<BrokerIx>,
    /// The current leader was elected from outside the ISR.
    pub unclean: bool,
}

/// One partition in a follower's fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPart {
    /// The partition.
    pub partition: u32,
    /// The follower's log end: the first offset wanted.
    pub offset: u64,
    /// The leader epoch of the follower's record at `offset - 1` (none for
    /// an empty log), for the divergence check.
    pub last_epoch: Option<u32>,
    /// The leader epoch the follower believes current: a leader with an
    /// older one is stale (it refuses nothing, but the follower learns).
    pub leader_epoch: u32,
}

/// One record as replicated: the record, the leader epoch that appended
/// it, and the idempotent producer's numbering, so that a follower that
/// becomes leader knows what a producer's retry repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// The record.
    pub rec: Record,
    /// The leader epoch that appended it.
    pub leader_epoch: u32,
    /// The producer's node.
    pub producer: NodeId,
    /// The producer's idempotent session (0: not idempotent).
    pub producer_epoch: u32,
    /// Its idempotent sequence number.
    pub seq: u64,
}

/// Why a leader did not serve a follower's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaError {
    /// Served (possibly with no records).
    None,
    /// This broker does not lead the partition (as far as it knows).
    NotLeader,
    /// The follower's leader epoch is newer than this broker's: this
    /// broker's metadata is behind (or it is a stale leader).
    UnknownEpoch,
}

/// One partition in a leader's answer to a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPart {
    /// The partition.
    pub partition: u32,
    /// Whether it was served.
    pub error: ReplicaError,
    /// The offset of `recs[0]` (the offset the follower asked for).
    pub offset: u64,
    /// The records from `offset`, in order.
    pub recs: Vec<ReplicaRecord>,
    /// The leader's high watermark.
    pub hw: u64,
    /// The leader's log start offset.
    pub log_start: u64,
    /// Set when the follower's log diverged: the follower's last epoch and
    /// the end offset of that epoch in the leader's log. The follower
    /// truncates to the smaller of that offset and its own end, then
    /// fetches again (KIP-595's fetch-based truncation).
    pub diverging: Option<(u32, u64)>,
    /// For an internal offsets partition: the content of each record of
    /// `recs`, in order (empty for a topic's partition).
    pub offsets: Vec<OffsetsRecord>,
}

/// A message of the cluster protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMsg {
    /// Broker to controller: I am alive, and I have seen the metadata up
    /// to `version`.
    BrokerHeartbeat {
        /// The broker.
        broker: BrokerIx,
        /// Its (re)start count: a restarted broker starts from version 0.
        incarnation: u32,
        /// The newest metadata version it has applied.
        version: u64,
    },
    /// Controller to broker: partition states newer than what the broker
    /// said it has (an answer to a heartbeat), or a change just made (a
    /// push). Applying an update is idempotent.
    Metadata(Box<MetadataUpdate>),
    /// Leader broker to controller: make `isr` the ISR of `partition`
    /// (Kafka's `AlterPartition`), if `leader_epoch` and `partition_epoch`
    /// are still current.
    AlterPartition {
        /// The leader proposing it.
        broker: BrokerIx,
        /// The proposal.
        state: Box<PartState>,
    },
    /// Controller to leader broker: the state of the partition now in
    /// force, and whether the proposal was accepted.
    AlterPartitionAck {
        /// True when the proposal was applied.
        accepted: bool,
        /// The partition's current state.
        state: Box<PartState>,
    },
    /// Follower broker to leader broker: the partitions it follows there.
    ReplicaFetch {
        /// The follower.
        broker: BrokerIx,
        /// The fetch's number at the follower, echoed in the answer, as a
        /// Kafka request's correlation id: the follower takes only the
        /// answer to the fetch it still waits on (a duplicate, or an answer
        /// to a fetch that timed out, would start a second fetch loop).
        /// Not folded into the digest: it follows from the fetches sent.
        seq: u32,
        /// Per partition, where its log ends.
        parts: Box<[FetchPart]>,
    },
    /// Leader broker to follower broker: the answer to a fetch.
    ReplicaData {
        /// The leader.
        broker: BrokerIx,
        /// The number of the fetch it answers.
        seq: u32,
        /// Per partition asked, what was served.
        parts: Box<[DataPart]>,
    },
    /// Client to broker: where do the partitions of `topic` lead?
    MetadataRequest {
        /// Topic index (in the cluster's topic order).
        topic: u16,
    },
    /// Broker to client: where the partitions of `topic` lead, as this
    /// broker knows.
    Leaders {
        /// Topic index.
        topic: u16,
        /// Per partition of the topic, in order: its leader's node, if any,
        /// and the leader epoch of that knowledge.
        leaders: Box<[(Option<NodeId>, u32)]>,
    },
    /// Group member to broker: which broker coordinates group `group`?
    FindCoordinator {
        /// Group index.
        group: u16,
    },
    /// Broker to group member: the coordinator of `group`, if it has one now.
    Coordinator {
        /// Group index.
        group: u16,
        /// Its node.
        node: Option<NodeId>,
    },
    /// Broker to group member: the transaction coordinator of the member's
    /// transactions for input `partition` of `group` (Kafka's
    /// `FindCoordinator` of key type TRANSACTION, answered with a redirect).
    TxnCoordinator {
        /// Group index.
        group: u16,
        /// Input partition (the transactional id's).
        partition: u32,
        /// The coordinator's node.
        node: NodeId,
    },
    /// Transaction coordinator to a partition's leader: write one record
    /// of an open transaction (`acks = all`, idempotent).
    TxnProduce(Box<TxnRecord>),
    /// Leader to transaction coordinator: the record `id` written to
    /// `partition` is replicated to the ISR (`ok`), or refused for now.
    TxnProduceAck {
        /// The partition (numbered across topics).
        partition: u32,
        /// The record.
        id: MsgId,
        /// Written and replicated.
        ok: bool,
    },
    /// Transaction coordinator to a partition's leader: write the commit
    /// or abort marker of a transaction (Kafka's `WriteTxnMarkers`).
    WriteTxnMarker(Box<TxnMarker>),
    /// Leader to transaction coordinator: the marker is written and
    /// replicated (`ok`), or refused for now.
    TxnMarkerAck {
        /// The marker asked for.
        marker: Box<TxnMarker>,
        /// Written and replicated.
        ok: bool,
    },
    /// Transaction coordinator to group coordinator: commit a group's
    /// offset as part of a transaction (Kafka's `TxnOffsetCommit`, here
    /// sent once the transaction's writes are all acknowledged).
    TxnOffsetCommit(Box<TxnOffsets>),
    /// Group coordinator to transaction coordinator: the outcome.
    TxnOffsetCommitAck {
        /// Group index.
        group: u16,
        /// Input partition.
        partition: u32,
        /// The group's committed offset now (the commit's, when `ok`).
        committed: u64,
        /// Committed (now or before).
        ok: bool,
        /// Not committed for now (this broker does not coordinate the
        /// group): sent again later. False with `ok` false: fenced.
        retriable: bool,
    },
    /// Controller voter to broker: I am not the active controller (Kafka's
    /// `NOT_CONTROLLER`); the active one is `leader` as far as I know.
    NotController {
        /// The active controller's node, if this voter knows one.
        leader: Option<NodeId>,
        /// The quorum epoch of that knowledge.
        epoch: u32,
    },
    /// Candidate voter to voter: vote for me in `epoch` (KIP-595's `Vote`).
    QuorumVote {
        /// The candidate's epoch.
        epoch: u32,
        /// The candidate's voter index.
        candidate: u8,
        /// The epoch of the candidate's last metadata record.
        last_epoch: u32,
        /// The candidate's log end.
        end: u64,
    },
    /// Voter to candidate: the answer to a vote request.
    QuorumVoteAnswer {
        /// The voter's epoch.
        epoch: u32,
        /// The voter's index.
        voter: u8,
        /// Whether the vote is granted.
        granted: bool,
        /// The leader of `epoch` the voter knows, if any.
        leader: Option<u8>,
    },
    /// New leader to voter: I lead `epoch` (KIP-595's `BeginQuorumEpoch`).
    BeginQuorum {
        /// The epoch.
        epoch: u32,
        /// The leader's voter index.
        leader: u8,
    },
    /// Voter to leader: send me the metadata log from `end` (KIP-595's
    /// `Fetch`: it also acknowledges every record before `end`).
    QuorumFetch {
        /// The fetcher's epoch.
        epoch: u32,
        /// The fetcher's voter index.
        voter: u8,
        /// Its log end.
        end: u64,
        /// The epoch of its record at `end - 1` (0 for an empty log).
        last_epoch: u32,
    },
    /// Leader to voter: the answer to a [`ClusterMsg::QuorumFetch`].
    QuorumData(Box<QuorumData>),
    /// Coordinator to group member: its heartbeat was taken (Kafka answers
    /// every heartbeat; the member's session timer restarts).
    HeartbeatOk {
        /// Group index.
        group: u16,
    },
    /// Broker to group member: a group request refused with one of Kafka's
    /// coordinator errors; `commit` names the (partition, offset) of a
    /// refused offset commit.
    GroupError {
        /// Group index.
        group: u16,
        /// Why.
        error: CoordError,
        /// The commit refused, if the request was one.
        commit: Option<(u32, u64)>,
    },
}

/// One record of a transaction, as its coordinator writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnRecord {
    /// The transactional producer's id (standing for the transactional id).
    pub producer: NodeId,
    /// The transaction's producer epoch (one per transaction here).
    pub epoch: u32,
    /// Its sequence number in the transaction's writes to `partition`.
    pub seq: u64,
    /// The partition (numbered across topics).
    pub partition: u32,
    /// The record.
    pub rec: Record,
}

/// A transaction's marker for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transactional producer's id.
    pub producer: NodeId,
    /// The transaction's producer epoch.
    pub epoch: u32,
    /// The partition (numbered across topics).
    pub partition: u32,
    /// Commit (true) or abort.
    pub commit: bool,
}

/// A transaction's offset commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsets {
    /// Group index.
    pub group: u16,
    /// Input partition.
    pub partition: u32,
    /// The member that wrote the transaction, and its generation.
    pub member: NodeId,
    /// The member's generation.
    pub generation: u32,
    /// The offset committed.
    pub end: u64,
    /// The leader epoch of the last input record, if known (KIP-320).
    pub epoch: Option<u32>,
}

/// One record of the controller quorum's metadata log: a decision's input,
/// which every voter applies, in log order, to its own cluster state once
/// it is committed (the state machine is deterministic, so every voter
/// reaches the same state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A new leader's first record of its epoch (Kafka's `LeaderChange`).
    LeaderChange,
    /// The session of these brokers expired: fence them.
    Fence(Vec<BrokerIx>),
    /// A heartbeat that changed something (a registration, an unfencing).
    Heartbeat {
        /// The broker.
        broker: BrokerIx,
        /// Its incarnation.
        incarnation: u32,
        /// The metadata version it had applied.
        version: u64,
    },
    /// An accepted ISR change.
    AlterPartition {
        /// The leader that proposed it.
        broker: BrokerIx,
        /// The proposal.
        state: PartState,
    },
}

/// A record in the metadata log, with the epoch of the leader that
/// appended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The quorum epoch that appended it.
    pub epoch: u32,
    /// The record.
    pub record: MetadataRecord,
}

/// A leader's answer to a voter's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumData {
    /// The leader's epoch.
    pub epoch: u32,
    /// The leader's voter index.
    pub leader: u8,
    /// The offset of `entries[0]` (the fetch's `end`).
    pub offset: u64,
    /// The records from `offset`.
    pub entries: Vec<LogEntry>,
    /// The leader's commit offset (its high watermark).
    pub commit: u64,
    /// Set when the voter's log diverged: truncate to this offset (at
    /// most), then fetch again.
    pub diverging: Option<u64>,
}

/// A coordinator error (Kafka's error codes of group requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordError {
    /// `NOT_COORDINATOR`: this broker does not coordinate the group (it
    /// does not lead its offsets partition, as far as it knows).
    NotCoordinator,
    /// `COORDINATOR_NOT_AVAILABLE`: the commit could not be written with
    /// enough in-sync replicas.
    NotAvailable,
    /// `REQUEST_TIMED_OUT`: the commit's record was not committed in time
    /// (`offsets.commit.timeout.ms`).
    TimedOut,
}

/// What a metadata update carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// The version this update builds on: it carries every change made
    /// after it. A broker whose version is older missed changes (a push
    /// lost while it was cut off): it may apply the states (each is whole,
    /// and newer by its epochs), but must not take `version` as its own,
    /// so that its next heartbeat asks for what it missed.
    pub since: u64,
    /// The metadata version after applying it.
    pub version: u64,
    /// The partition states that changed (each whole).
    pub parts: Vec<PartState>,
    /// The brokers the controller considers fenced now.
    pub fenced: Vec<BrokerIx>,
}

impl PartState {
    /// Partition `partition`'s state when the cluster starts: led by its
    /// preferred leader (the first of `replicas`), every replica in sync,
    /// epochs 0.
    pub fn initial(partition: u32, replicas: &[BrokerIx]) -> Self {
        PartState {
            partition,
            leader: replicas.first().copied(),
            leader_epoch: 0,
            partition_epoch: 0,
            isr: replicas.to_vec(),
            unclean: false,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        digest.add(u64::from(self.partition) << 32 | u64::from(self.leader.map_or(u16::MAX, |l| l)));
        digest.add(u64::from(self.leader_epoch) << 32 | u64::from(self.partition_epoch));
        digest.add(u64::from(self.unclean));
        self.isr.iter().for_each(|&b| digest.add(u64::from(b)));
    }
}

impl Protocol for ClusterMsg {
    fn name(&self) -> &'static str {
        match self {
            ClusterMsg::BrokerHeartbeat { .. } => "broker-heartbeat",
            ClusterMsg::Metadata(_) => "metadata",
            ClusterMsg::AlterPartition { .. } => "alter-partition",
            ClusterMsg::AlterPartitionAck { .. } => "alter-partition-ack",
            ClusterMsg::ReplicaFetch { .. } => "replica-fetch",
            ClusterMsg::ReplicaData { .. } => "replica-data",
            ClusterMsg::MetadataRequest { .. } => "metadata-request",
            ClusterMsg::Leaders { .. } => "leaders",
            ClusterMsg::FindCoordinator { .. } => "find-coordinator",
            ClusterMsg::Coordinator { .. } => "coordinator",
            ClusterMsg::TxnCoordinator { .. } => "txn-coordinator",
            ClusterMsg::TxnProduce(_) => "txn-produce",
            ClusterMsg::TxnProduceAck { .. } => "txn-produce-ack",
            ClusterMsg::WriteTxnMarker(_) => "write-txn-marker",
            ClusterMsg::TxnMarkerAck { .. } => "txn-marker-ack",
            ClusterMsg::TxnOffsetCommit(_) => "txn-offset-commit",
            ClusterMsg::TxnOffsetCommitAck { .. } => "txn-offset-commit-ack",
            ClusterMsg::NotController { .. } => "not-controller",
            ClusterMsg::QuorumVote { .. } => "quorum-vote",
            ClusterMsg::QuorumVoteAnswer { .. } => "quorum-vote-answer",
            ClusterMsg::BeginQuorum { .. } => "begin-quorum",
            ClusterMsg::QuorumFetch { .. } => "quorum-fetch",
            ClusterMsg::QuorumData(_) => "quorum-data",
            ClusterMsg::HeartbeatOk { .. } => "heartbeat-ok",
            ClusterMsg::GroupError { .. } => "group-error",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match self {
            ClusterMsg::ReplicaData { parts, .. } => {
                parts.iter().find_map(|p| p.recs.first()).map(|r| r.rec.id).filter(|&id| id != OFFSETS_RECORD)
            }
            ClusterMsg::TxnProduce(w) => Some(w.rec.id),
            _ => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match self {
            ClusterMsg::BrokerHeartbeat { broker, incarnation, version } => {
                digest.add(40);
                digest.add(u64::from(*broker) << 32 | u64::from(*incarnation));
                digest.add(*version);
            }
            ClusterMsg::Metadata(u) => {
                digest.add(41);
                digest.add(u.since);
                digest.add(u.version);
                u.parts.iter().for_each(|p| p.fold(digest));
                u.fenced.iter().for_each(|&b| digest.add(u64::from(b)));
            }
            ClusterMsg::AlterPartition { broker, state } => {
                digest.add(42);
                digest.add(u64::from(*broker));
                state.fold(digest);
            }
            ClusterMsg::AlterPartitionAck { accepted, state } => {
                digest.add(43);
                digest.add(u64::from(*accepted));
                state.fold(digest);
            }
            ClusterMsg::ReplicaFetch { broker, parts, .. } => {
                digest.add(44);
                digest.add(u64::from(*broker));
                for p in parts.iter() {
                    digest.add(u64::from(p.partition) << 32 | u64::from(p.leader_epoch));
                    digest.add(p.offset);
                    digest.add(p.last_epoch.map_or(u64::MAX, u64::from));
                }
            }
            ClusterMsg::ReplicaData { broker, parts, .. } => {
                digest.add(45);
                digest.add(u64::from(*broker));
                parts.iter().for_each(|p| fold_data(p, digest));
            }
            ClusterMsg::MetadataRequest { topic } => {
                digest.add(46);
                digest.add(u64::from(*topic));
            }
            ClusterMsg::Leaders { topic, leaders } => {
                digest.add(47);
                digest.add(u64::from(*topic));
                for &(node, epoch) in leaders.iter() {
                    digest.add(node.map_or(u64::MAX, u64::from) ^ u64::from(epoch) << 40);
                }
            }
            ClusterMsg::FindCoordinator { group } => {
                digest.add(48);
                digest.add(u64::from(*group));
            }
            ClusterMsg::Coordinator { group, node } => {
                digest.add(49);
                digest.add(u64::from(*group) << 40 ^ node.map_or(u64::MAX, u64::from));
            }
            ClusterMsg::NotController { .. }
            | ClusterMsg::QuorumVote { .. }
            | ClusterMsg::QuorumVoteAnswer { .. }
            | ClusterMsg::BeginQuorum { .. }
            | ClusterMsg::QuorumFetch { .. } => fold_quorum_msg(self, digest),
            ClusterMsg::QuorumData(d) => fold_quorum(d, digest),
            ClusterMsg::HeartbeatOk { .. } | ClusterMsg::GroupError { .. } => fold_group_answer(self, digest),
            _ => self.fold_txn(digest),
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        // Copies between replicas: while on the wire they are in flight.
        match self {
            ClusterMsg::ReplicaData { parts, .. } => {
                // (Records of an offsets partition are no produced messages.)
                out.extend(parts.iter().filter(|p| p.offsets.is_empty()).flat_map(|p| p.recs.iter().map(|r| r.rec.id)));
            }
            ClusterMsg::TxnProduce(w) => out.push(w.rec.id),
            _ => {}
        }
    }

    fn observe(&self, _see: &mut impl FnMut(super::Observed)) {
        // Replication and metadata prove nothing to the ledger: only acks
        // reaching producers and records reaching consumers do.
    }

    fn wire_bytes(&self) -> u64 {
        match self {
            ClusterMsg::ReplicaData { parts, .. } => {
                let mut bytes = wire::HEADER;
                for p in parts.iter() {
                    let recs: u64 = p.recs.iter().map(|r| u64::from(r.rec.bytes)).sum();
                    let header = if p.recs.is_empty() { 0 } else { wire::BATCH_HEADER };
                    bytes += wire::PARTITION + header + recs;
                }
                bytes
            }
            ClusterMsg::ReplicaFetch { parts, .. } => wire::HEADER + wire::PARTITION * parts.len() as u64,
            ClusterMsg::Metadata(u) => wire::control(u.parts.iter().map(|p| 3 + p.isr.len()).sum::<usize>()),
            ClusterMsg::AlterPartition { state, .. } | ClusterMsg::AlterPartitionAck { state, .. } => {
                wire::control(3 + state.isr.len())
            }
            ClusterMsg::Leaders { leaders, .. } => wire::control(leaders.len()),
            ClusterMsg::QuorumData(d) => wire::control(3 + d.entries.len() * 4),
            ClusterMsg::BrokerHeartbeat { .. }
            | ClusterMsg::MetadataRequest { .. }
            | ClusterMsg::FindCoordinator { .. }
            | ClusterMsg::Coordinator { .. }
            | ClusterMsg::NotController { .. }
            | ClusterMsg::QuorumVote { .. }
            | ClusterMsg::QuorumVoteAnswer { .. }
            | ClusterMsg::BeginQuorum { .. }
            | ClusterMsg::QuorumFetch { .. }
            | ClusterMsg::HeartbeatOk { .. } => wire::control(0),
            ClusterMsg::GroupError { .. } => wire::control(1),
            ClusterMsg::TxnProduce(w) => wire::HEADER + wire::batch(std::slice::from_ref(&w.rec)),
            ClusterMsg::TxnCoordinator { .. }
            | ClusterMsg::TxnProduceAck { .. }
            | ClusterMsg::WriteTxnMarker(_)
            | ClusterMsg::TxnMarkerAck { .. }
            | ClusterMsg::TxnOffsetCommitAck { .. } => wire::control(1),
            ClusterMsg::TxnOffsetCommit(_) => wire::control(2),
        }
    }
}

impl ClusterMsg {
    /// Folds a transaction message (the variants added for transactions).
    fn fold_txn(&self, digest: &mut Digest) {
        let marker = |digest: &mut Digest, m: &TxnMarker| {
            digest.add(u64::from(m.producer) << 32 | u64::from(m.epoch));
            digest.add(u64::from(m.partition) << 1 | u64::from(m.commit));
        };
        match self {
            ClusterMsg::TxnCoordinator { group, partition, node } => {
                digest.add(60);
                digest.add(u64::from(*group) << 32 | u64::from(*partition));
                digest.add(u64::from(*node));
            }
            ClusterMsg::TxnProduce(w) => {
                digest.add(61);
                digest.add(u64::from(w.producer) << 32 | u64::from(w.epoch));
                digest.add(w.seq);
                digest.add(u64::from(w.partition));
                digest.add(w.rec.id);
            }
            ClusterMsg::TxnProduceAck { partition, id, ok } => {
                digest.add(62);
                digest.add(u64::from(*partition) << 1 | u64::from(*ok));
                digest.add(*id);
            }
            ClusterMsg::WriteTxnMarker(m) => {
                digest.add(63);
                marker(digest, m);
            }
            ClusterMsg::TxnMarkerAck { marker: m, ok } => {
                digest.add(64 | u64::from(*ok) << 8);
                marker(digest, m);
            }
            ClusterMsg::TxnOffsetCommit(o) => {
                digest.add(65);
                digest.add(u64::from(o.group) << 32 | u64::from(o.partition));
                digest.add(u64::from(o.member) << 32 | u64::from(o.generation));
                digest.add(o.end);
                digest.add(o.epoch.map_or(u64::MAX, u64::from));
            }
            ClusterMsg::TxnOffsetCommitAck { group, partition, committed, ok, retriable } => {
                digest.add(66 | u64::from(*ok) << 8 | u64::from(*retriable) << 9);
                digest.add(u64::from(*group) << 32 | u64::from(*partition));
                digest.add(*committed);
            }
            _ => {}
        }
    }
}

fn fold_group_answer(msg: &ClusterMsg, digest: &mut Digest) {
    match msg {
        ClusterMsg::HeartbeatOk { group } => {
            digest.add(70);
            digest.add(u64::from(*group));
        }
        ClusterMsg::GroupError { group, error, commit } => {
            digest.add(71);
            digest.add(u64::from(*group) << 8 | *error as u64);
            if let Some((p, o)) = commit {
                digest.add(u64::from(*p));
                digest.add(*o);
            }
        }
        _ => {}
    }
}

fn fold_data(p: &DataPart, digest: &mut Digest) {
    digest.add(u64::from(p.partition) << 8 | p.error as u64);
    digest.add(p.offset);
    digest.add(p.hw);
    digest.add(p.log_start);
    if let Some((e, o)) = p.diverging {
        digest.add(u64::from(e));
        digest.add(o);
    }
    for r in &p.recs {
        digest.add(r.rec.id);
        digest.add(u64::from(r.leader_epoch) << 32 | u64::from(r.producer_epoch));
        digest.add(r.seq);
    }
    for o in &p.offsets {
        digest.add(match o {
            OffsetsRecord::Commit(c) => u64::from(c.group) << 48 ^ u64::from(c.partition) << 32 ^ c.offset,
            OffsetsRecord::Group(g) => u64::from(g.group) << 48 ^ 1 << 47 ^ u64::from(g.generation),
        });
    }
}

fn fold_quorum(d: &QuorumData, digest: &mut Digest) {
    digest.add(55);
    digest.add(u64::from(d.epoch) << 32 | u64::from(d.leader));
    digest.add(d.offset);
    digest.add(d.commit);
    digest.add(d.diverging.map_or(u64::MAX, |o| o));
    for e in &d.entries {
        digest.add(u64::from(e.epoch));
        match &e.record {
            MetadataRecord::LeaderChange => digest.add(1),
            MetadataRecord::Fence(bs) => bs.iter().for_each(|&b| digest.add(2 << 32 | u64::from(b))),
            MetadataRecord::Heartbeat { broker, incarnation, version } => {
                digest.add(3 << 32 | u64::from(*broker) << 16 | u64::from(*incarnation));
                digest.add(*version);
            }
            MetadataRecord::AlterPartition { broker, state } => {
                digest.add(4 << 32 | u64::from(*broker));
                state.fold(digest);
            }
        }
    }
}

fn fold_quorum_msg(m: &ClusterMsg, digest: &mut Digest) {
    match m {
        ClusterMsg::NotController { leader, epoch } => {
            digest.add(50);
            digest.add(u64::from(*epoch) << 40 ^ leader.map_or(u64::MAX, u64::from));
        }
        ClusterMsg::QuorumVote { epoch, candidate, last_epoch, end } => {
            digest.add(51);
            digest.add(u64::from(*epoch) << 32 | u64::from(*candidate));
            digest.add(u64::from(*last_epoch));
            digest.add(*end);
        }
        ClusterMsg::QuorumVoteAnswer { epoch, voter, granted, leader } => {
            digest.add(52);
            digest.add(u64::from(*epoch) << 32 | u64::from(*voter) << 8 | u64::from(*granted));
            digest.add(leader.map_or(u64::MAX, u64::from));
        }
        ClusterMsg::BeginQuorum { epoch, leader } => {
            digest.add(53);
            digest.add(u64::from(*epoch) << 32 | u64::from(*leader));
        }
        ClusterMsg::QuorumFetch { epoch, voter, end, last_epoch } => {
            digest.add(54);
            digest.add(u64::from(*epoch) << 32 | u64::from(*voter));
            digest.add(*end);
            digest.add(u64::from(*last_epoch));
        }
        _ => {}
    }
}
