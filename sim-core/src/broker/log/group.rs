//! A consumer group as its coordinator sees it: its members (each with a
//! member id, kept alive by heartbeats), a generation that every completed
//! rebalance bumps, the assignment of partitions to members, who owns each
//! partition now, and the committed offsets (durable).
//!
//! The rebalance protocol itself (join, sync, heartbeat, leave, session and
//! rebalance timeouts) is in [`super::membership`], the coordinator that
//! holds the groups in [`super::coordinator`]. Commits and fetches are
//! fenced by membership and ownership: a member that was removed (a zombie)
//! or lost a partition can no longer move its offset or read it.

use crate::ledger::DomainId;
use crate::message::NodeId;
use crate::time::{ms_to_ns, Duration, Time};
use serde::{Deserialize, Serialize};

/// How partitions are shared among a group's members (eager protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assignor {
    /// Each member gets a contiguous range of partitions.
    #[default]
    Range,
    /// Partitions are dealt to members in turn.
    RoundRobin,
}

/// How a group moves partitions in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before it rejoins: the whole
    /// group stops until the new assignment.
    #[default]
    Eager,
    /// Members keep the partitions that do not move and go on reading
    /// them; a partition that moves is revoked by its owner after the
    /// first round and handed out in a second one (KIP-429).
    CooperativeSticky,
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
    /// The assignment strategy (eager protocol).
    pub assignor: Assignor,
    /// The rebalance protocol.
    pub protocol: RebalanceProtocol,
    /// How long a rebalance waits for members to rejoin: the longest
    /// `max_poll_interval_ms` of its members (Kafka's rebalance timeout).
    pub rebalance_timeout_ns: Duration,
}

impl GroupInfo {
    /// An eager group named `name` reading `topic`, in effect domain
    /// `domain`, with Kafka's default rebalance timeout (300 s).
    pub fn new(name: &str, topic: usize, domain: DomainId, assignor: Assignor) -> Self {
        let (protocol, rebalance_timeout_ns) = (RebalanceProtocol::Eager, ms_to_ns(300_000.0));
        GroupInfo { name: name.into(), topic, domain, assignor, protocol, rebalance_timeout_ns }
    }
}

pub(super) struct Member {
    /// The member id, unique in the group (a restarted dynamic member gets
    /// a new one; a static member keeps its own).
    pub id: u32,
    pub node: NodeId,
    /// The incarnation of the node it speaks for.
    pub session: u32,
    /// Known by its node across restarts (`group_instance_id`).
    pub static_member: bool,
    pub last_seen: Time,
    /// Joined the rebalance under way.
    pub joined: bool,
    /// The generation whose assignment it last fetched (0: none).
    pub synced: u32,
    /// The partitions it said it owns when it last joined.
    pub owned: Vec<u32>,
}

/// Where a group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The assignment of `generation` stands.
    Stable,
    /// Waiting for every member to (re)join.
    Preparing,
}

pub(super) struct Group {
    pub info: GroupInfo,
    pub generation: u32,
    pub phase: Phase,
    /// Members, in the order they first joined.
    pub members: Vec<Member>,
    pub next_id: u32,
    /// The assignment of the current generation, by member id.
    pub target: Vec<Option<u32>>,
    /// Who may read and commit each partition now, by member id.
    pub owner: Vec<Option<u32>>,
    /// When a rebalance under way gives up on members yet to rejoin.
    pub join_deadline: Time,
    /// An empty group's first rebalance waits until then for more members.
    pub initial_until: Option<Time>,
    /// Committed offset per partition (durable).
    pub committed: Vec<Option<u64>>,
    /// Who made each partition's last commit, in which generation.
    pub committed_by: Vec<Option<(NodeId, u32)>>,
    /// The leader epoch committed with each offset (KIP-320).
    pub committed_epoch: Vec<Option<u32>>,
    pub expiry_at: Option<Time>,
}

impl Group {
    pub fn new(info: GroupInfo, partitions: usize) -> Self {
        Group {
            info,
            generation: 0,
            phase: Phase::Stable,
            members: Vec::new(),
            next_id: 1,
            target: vec![None; partitions],
            owner: vec![None; partitions],
            join_deadline: 0,
            initial_until: None,
            committed: vec![None; partitions],
            committed_by: vec![None; partitions],
            committed_epoch: vec![None; partitions],
            expiry_at: None,
        }
    }

    /// The member that speaks for `node` now: its latest incarnation.
    pub fn member_of(&self, node: NodeId) -> Option<&Member> {
        self.members.iter().filter(|m| m.node == node).max_by_key(|m| m.session)
    }

    /// The index of the member `node` is in `session`, or, for a static
    /// member, the member of its node whatever its session.
    pub fn find(&self, node: NodeId, session: u32, static_member: bool) -> Option<usize> {
        let same = |m: &Member| m.session == session || (static_member && m.static_member);
        self.members.iter().position(|m| m.node == node && same(m))
    }

    /// Whether `member` may commit `partition` in `generation`: it is in the
    /// group, holds the assignment of `generation`, and owns the partition.
    pub fn may_commit(&self, member: NodeId, generation: u32, partition: usize) -> bool {
        self.member_of(member)
            .is_some_and(|m| m.synced == generation && generation > 0 && self.owner.get(partition) == Some(&Some(m.id)))
    }

    /// Whether `member` may fetch `partition`: it owns it now (fetches are
    /// not fenced by generation, as in Kafka).
    pub fn may_fetch(&self, member: NodeId, _generation: u32, partition: usize) -> bool {
        self.member_of(member).is_some_and(|m| self.owner.get(partition) == Some(&Some(m.id)))
    }

    /// Removes the member at `i`: its partitions have no owner.
    pub fn remove(&mut self, i: usize) {
        let id = self.members.remove(i).id;
        for o in self.owner.iter_mut().chain(self.target.iter_mut()) {
            if *o == Some(id) {
                *o = None;
            }
        }
    }

    /// The member at `i` owns `owned` now and nothing else.
    pub fn set_owned(&mut self, i: usize, owned: &[u32]) {
        let id = self.members[i].id;
        for (p, o) in self.owner.iter_mut().enumerate() {
            if *o == Some(id) && !owned.contains(&(p as u32)) {
                *o = None;
            }
        }
        self.members[i].owned = owned.to_vec();
    }

    /// Computes the assignment of a new generation: with the eager
    /// protocol the assignor deals every partition afresh; with the
    /// cooperative one each member keeps what it owns up to its fair share,
    /// free partitions go to the members with the fewest, and a partition
    /// that must move stays with its owner until it revokes it.
    pub fn assign(&mut self) {
        let n = self.owner.len();
        self.target = vec![None; n];
        if self.members.is_empty() {
            return;
        }
        match self.info.protocol {
            RebalanceProtocol::Eager => {
                self.deal();
                self.owner = self.target.clone();
            }
            RebalanceProtocol::CooperativeSticky => self.sticky(),
        }
    }

    fn deal(&mut self) {
        let (n, m) = (self.owner.len(), self.members.len());
        match self.info.assignor {
            Assignor::Range => {
                let (each, extra) = (n / m, n % m);
                let mut p = 0;
                for (i, member) in self.members.iter().enumerate() {
                    let take = each + usize::from(i < extra);
                    for _ in 0..take {
                        self.target[p] = Some(member.id);
                        p += 1;
                    }
                }
            }
            Assignor::RoundRobin => {
                for p in 0..n {
                    self.target[p] = Some(self.members[p % m].id);
                }
            }
        }
    }

    fn sticky(&mut self) {
        let (n, m) = (self.owner.len(), self.members.len());
        let (each, mut extra) = (n / m, n % m);
        let mut count = vec![0usize; m];
        // Each member keeps what it owns, up to its share.
        for (i, member) in self.members.iter().enumerate() {
            let owns = self.owner.iter().filter(|&&o| o == Some(member.id)).count();
            let cap = if owns > each && extra > 0 {
                extra -= 1;
                each + 1
            } else {
                each
            };
            for p in 0..n {
                if self.owner[p] == Some(member.id) && count[i] < cap {
                    self.target[p] = Some(member.id);
                    count[i] += 1;
                }
            }
        }
        // Free partitions go to the members with the fewest.
        for p in 0..n {
            if self.owner[p].is_some() {
                continue;
            }
            let room = |c: usize| c < each || (c == each && extra > 0);
            let Some(i) = (0..m).filter(|&i| room(count[i])).min_by_key(|&i| count[i]) else { continue };
            if count[i] == each {
                extra -= 1;
            }
            count[i] += 1;
            self.target[p] = Some(self.members[i].id);
            self.owner[p] = Some(self.members[i].id);
        }
    }

    /// The partitions member `id` is assigned in the current generation.
    pub fn assigned_to(&self, id: u32) -> Vec<usize> {
        (0..self.target.len()).filter(|&p| self.target[p] == Some(id)).collect()
    }

    /// Whether every member has rejoined the rebalance under way.
    pub fn all_joined(&self) -> bool {
        self.members.iter().all(|m| m.joined)
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
