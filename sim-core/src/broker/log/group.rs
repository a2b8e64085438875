//! A consumer group as its coordinator sees it: members kept alive by
//! heartbeats, a generation that every rebalance bumps, the assignment of
//! partitions to members, and the committed offsets (durable).
//!
//! A rebalance (a member joins, restarts, or misses its session timeout)
//! tells every member to stop, waits `rebalance_delay_ms` for them to
//! finish and commit, then hands out the new assignment. Commits and
//! fetches are fenced by generation and ownership: a member that lost a
//! partition (a zombie) can no longer move its offset.

use crate::ledger::DomainId;
use crate::message::NodeId;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// How partitions are shared among a group's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assignor {
    /// Each member gets a contiguous range of partitions.
    #[default]
    Range,
    /// Partitions are dealt to members in turn.
    RoundRobin,
}

/// What the broker needs to know of a group, from the scenario.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// The topic it reads (index in the broker's topic order).
    pub topic: usize,
    /// The effect domain of its members.
    pub domain: DomainId,
    /// The assignment strategy.
    pub assignor: Assignor,
}

pub(super) struct Member {
    pub node: NodeId,
    pub session: u32,
    pub last_seen: Time,
}

pub(super) struct Group {
    pub info: GroupInfo,
    pub generation: u32,
    /// Members, by node id.
    pub members: Vec<Member>,
    pub owner: Vec<Option<NodeId>>,
    pub prev_owner: Vec<Option<NodeId>>,
    pub rebalancing: bool,
    /// Committed offset per partition (durable).
    pub committed: Vec<Option<u64>>,
    /// Who made each partition's last commit, in which generation.
    pub committed_by: Vec<Option<(NodeId, u32)>>,
    /// The leader epoch committed with each offset (KIP-320).
    pub committed_epoch: Vec<Option<u32>>,
    pub expiry_at: Option<Time>,
    /// Per partition, the end of the highest range of offsets sent to the
    /// group: records below it that are sent again are redeliveries (only
    /// for the ledger's causes; it changes nothing the broker does).
    pub served: Vec<u64>,
}

impl Group {
    pub fn new(info: GroupInfo, partitions: usize) -> Self {
        Group {
            info,
            generation: 0,
            members: Vec::new(),
            owner: vec![None; partitions],
            prev_owner: vec![None; partitions],
            rebalancing: false,
            committed: vec![None; partitions],
            committed_by: vec![None; partitions],
            committed_epoch: vec![None; partitions],
            expiry_at: None,
            served: vec![0; partitions],
        }
    }

    /// Whether `member` may commit or fetch `partition` in `generation`:
    /// it owns it now, or owned it in the generation a rebalance in
    /// progress is replacing (its last chance to commit).
    pub fn may_commit(&self, member: NodeId, generation: u32, partition: usize) -> bool {
        if self.rebalancing {
            generation + 1 == self.generation && self.prev_owner.get(partition) == Some(&Some(member))
        } else {
            generation == self.generation && self.owner.get(partition) == Some(&Some(member))
        }
    }

    /// Whether `member` may fetch `partition` in `generation`.
    pub fn may_fetch(&self, member: NodeId, generation: u32, partition: usize) -> bool {
        !self.rebalancing && generation == self.generation && self.owner.get(partition) == Some(&Some(member))
    }

    /// Deals the partitions to the members.
    pub fn assign(&mut self) {
        let (n, m) = (self.owner.len(), self.members.len());
        self.owner = vec![None; n];
        if m == 0 {
            return;
        }
        match self.info.assignor {
            Assignor::Range => {
                let (each, extra) = (n / m, n % m);
                let mut p = 0;
                for (i, member) in self.members.iter().enumerate() {
                    let take = each + usize::from(i < extra);
                    for _ in 0..take {
                        self.owner[p] = Some(member.node);
                        p += 1;
                    }
                }
            }
            Assignor::RoundRobin => {
                for p in 0..n {
                    self.owner[p] = Some(self.members[p % m].node);
                }
            }
        }
    }

    /// The partitions `member` owns.
    pub fn partitions_of(&self, member: NodeId) -> Vec<usize> {
        (0..self.owner.len()).filter(|&p| self.owner[p] == Some(member)).collect()
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
