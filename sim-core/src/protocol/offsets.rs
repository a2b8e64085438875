//! The records of a cluster's internal `__consumer_offsets` partitions: what
//! a group coordinator writes there, and reads back when it takes a group
//! over (see [`crate::broker::cluster`]).
//!
//! Two kinds, as Kafka's offset and group-metadata records: an
//! [`OffsetsRecord::Commit`] for each committed offset, and an
//! [`OffsetsRecord::Group`] with a group's generation, members and
//! assignment each time a rebalance settles or its membership changes.
//! The newest record of each key wins when the log is read back (Kafka
//! compacts the topic by key; here nothing is compacted, the whole log is
//! read).
//!
//! In a replica's log such a record stands as a [`ReplicaRecord`] whose
//! record id is [`OFFSETS_RECORD`] (no produced message: the ledger never
//! hears of it), and its content travels beside it, in
//! [`super::cluster::DataPart::offsets`], one per record.
//!
//! [`ReplicaRecord`]: super::cluster::ReplicaRecord

use super::{MsgId, NodeId};

/// The record id of every internal record: not a produced message.
pub const OFFSETS_RECORD: MsgId = MsgId::MAX;

/// The size of a commit record on the wire (key: group, topic, partition;
/// value: offset, leader epoch, metadata, timestamps).
pub const COMMIT_BYTES: u32 = 96;

/// One record of an offsets partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// Group `group` committed `offset` of `partition`.
    Commit(CommitRecord),
    /// Group metadata: the state a new coordinator starts from.
    Group(Box<GroupRecord>),
}

/// An offset commit, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitRecord {
    /// Group index.
    pub group: u16,
    /// Partition of the group's topic.
    pub partition: u32,
    /// The next offset to read.
    pub offset: u64,
    /// The leader epoch committed with it (KIP-320).
    pub epoch: Option<u32>,
    /// The member that committed it, and its generation.
    pub by: (NodeId, u32),
}

/// A group's metadata: generation, members and assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Group index.
    pub group: u16,
    /// The generation.
    pub generation: u32,
    /// The next member id to hand out.
    pub next_id: u32,
    /// The members, in the order they first joined.
    pub members: Vec<MemberRecord>,
    /// The assignment of the generation, by member id, per partition.
    pub target: Vec<Option<u32>>,
    /// Who owns each partition now, by member id.
    pub owner: Vec<Option<u32>>,
}

/// One member in a [`GroupRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Its member id.
    pub id: u32,
    /// Its node.
    pub node: NodeId,
    /// The incarnation of its node.
    pub session: u32,
    /// A static member (`group_instance_id`).
    pub static_member: bool,
    /// The generation whose assignment it fetched.
    pub synced: u32,
    /// The partitions it said it owns at its last join.
    pub owned: Vec<u32>,
}

impl OffsetsRecord {
    /// The group it is about.
    pub fn group(&self) -> u16 {
        match self {
            OffsetsRecord::Commit(c) => c.group,
            OffsetsRecord::Group(g) => g.group,
        }
    }

    /// Its size on the wire and in the log.
    pub fn bytes(&self) -> u32 {
        match self {
            OffsetsRecord::Commit(_) => COMMIT_BYTES,
            OffsetsRecord::Group(g) => {
                let members: usize = g.members.iter().map(|m| 48 + 4 * m.owned.len()).sum();
                (64 + members + 8 * g.target.len()) as u32
            }
        }
    }
}
