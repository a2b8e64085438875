//! The group coordinator: what a Kafka broker does for the consumer groups
//! it coordinates, apart from serving their fetches. It owns the groups
//! (members, generations, assignments, who owns each partition now, the
//! committed offsets and the epochs committed with them) and their two
//! timers, and answers the group messages: heartbeat, join, sync, leave
//! (the rebalance protocol, see [`super::membership`]) and commit. A commit
//! is fenced: only the member that owns the partition, holding the
//! assignment of the current generation, may move its offset.
//!
//! It is a part, not a component: a host component embeds one and hands it
//! the group messages and timers. The single-node [`super::LogBroker`]
//! embeds one for all its groups; a cluster's broker embeds one for the
//! groups it coordinates. It works in any host's [`Ctx`]: its timers are a
//! [`CoordTimer`], which the host's timer type converts from (`From`), and
//! it learns what it needs of the logs through [`GroupHost`]. What the host
//! keeps to itself: the logs, and so the fetches (it asks
//! [`Coordinator::check_fetch`] whether the member owns the partition), the
//! consumer lag it reports, and the transactions.
//!
//! A host's side, in short (a cluster broker whose timer enum wraps the
//! coordinator's; the single-node broker instead maps [`CoordTimer`] onto
//! variants of its own, so its timer words stay as they were):
//!
//! ```ignore
//! enum NodeTimer { Replica(u32), Coord(CoordTimer) }
//! impl From<CoordTimer> for NodeTimer {
//!     fn from(t: CoordTimer) -> Self { NodeTimer::Coord(t) }
//! }
//! impl Timer for NodeTimer {
//!     fn to_word(self) -> u64 {
//!         match self {
//!             NodeTimer::Replica(p) => 1 << 56 | u64::from(p),
//!             // Its own top byte; the coordinator's bits fit below it.
//!             NodeTimer::Coord(c) => 2 << 56 | c.to_bits(),
//!         }
//!     }
//!     fn from_word(w: u64) -> Option<Self> {
//!         match w >> 56 {
//!             1 => Some(NodeTimer::Replica(w as u32)),
//!             2 => CoordTimer::from_bits(w & ((1 << 56) - 1)).map(NodeTimer::Coord),
//!             _ => None,
//!         }
//!     }
//! }
//! impl GroupHost for Logs<'_> {
//!     fn log_start(&self, topic: usize, partition: usize) -> u64 { /* its log's start, or 0 */ }
//! }
//! // In the host's handlers:
//! match coord.handle(ctx, &logs, from, &msg) {
//!     Handled::NotMine => { /* a fetch, a produce, ...: the host's own */ }
//!     Handled::Done => {}
//!     Handled::Committed { topic, partition } => { /* recount its lag figures */ }
//! }
//! NodeTimer::Coord(t) => coord.on_timer(ctx, t),
//! // drain: coord.drain(ctx); crash: coord.crash().
//! ```
//!
//! Groups are numbered as the members number them (the `group` of their
//! messages); a message for a group it does not know is not its own. A
//! host that coordinates only some groups routes only their messages to it
//! (the others' timers are then never set).
//!
//! A host that keeps the groups in a log (a cluster broker, in Kafka's
//! `__consumer_offsets`) also uses [`Coordinator::apply_commit`] (a commit
//! answered once its record is committed), [`Coordinator::group_record`],
//! [`Coordinator::load`] and [`Coordinator::unload`] (see the `durable`
//! part). The single-node broker keeps its groups in memory: their
//! committed offsets survive its crash there.
//!
//! Left out: offset retention, and the offsets' metadata strings.

use super::group::{Group, Phase};
use super::{GroupInfo, LogSpec};
use crate::engine::{Ctx, Timer};
use crate::message::NodeId;
use crate::protocol::{FetchError, LogMsg};
use crate::time::{ms_to_ns, Duration};

/// The coordinator's timers, by group number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordTimer {
    /// This group's rebalance timeout, or its initial delay, is over.
    Rebalance(u32),
    /// Expire this group's members that stopped heartbeating.
    Expiry(u32),
}

impl CoordTimer {
    /// How many low bits of a word [`CoordTimer::to_bits`] uses: a host
    /// keeps the bits above for its own timers.
    pub const BITS: u32 = 34;

    /// The timer as a number below `1 << CoordTimer::BITS`.
    pub fn to_bits(self) -> u64 {
        match self {
            CoordTimer::Rebalance(g) => 1 << 32 | u64::from(g),
            CoordTimer::Expiry(g) => 2 << 32 | u64::from(g),
        }
    }

    /// The timer `bits` stands for (see [`CoordTimer::to_bits`]).
    pub fn from_bits(bits: u64) -> Option<Self> {
        let g = bits as u32;
        match bits >> 32 {
            1 => Some(CoordTimer::Rebalance(g)),
            2 => Some(CoordTimer::Expiry(g)),
            _ => None,
        }
    }
}

impl Timer for CoordTimer {
    fn to_word(self) -> u64 {
        self.to_bits()
    }
    fn from_word(word: u64) -> Option<Self> {
        Self::from_bits(word)
    }
}

/// A host's timer type: one the coordinator's timers convert into.
pub trait HostTimer: Timer + From<CoordTimer> {}
impl<T: Timer + From<CoordTimer>> HostTimer for T {}

/// What the coordinator asks of its host's logs.
pub trait GroupHost {
    /// The first offset the log of `partition` of `topic` still holds:
    /// where a member starts reading a partition its group never
    /// committed (a host without that log may answer 0: the leader resets
    /// a fetch out of range).
    fn log_start(&self, topic: usize, partition: usize) -> u64;
}

/// What [`Coordinator::handle`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Not a group message, or one for a group it does not know: the
    /// host's own.
    NotMine,
    /// Handled (answered, where the protocol answers).
    Done,
    /// Handled, and the committed offset of `partition` of `topic` moved:
    /// a host that counts lag recounts that partition.
    Committed {
        /// The group's topic.
        topic: usize,
        /// The partition.
        partition: usize,
    },
}

/// A group coordinator (see the module's doc).
pub struct Coordinator {
    pub(super) groups: Vec<Group>,
    /// How long a member stays without a heartbeat (`session_timeout_ms`).
    pub(super) session_ns: Duration,
    /// How long an empty group's first rebalance waits for more members.
    pub(super) initial_delay_ns: Duration,
}

impl Coordinator {
    /// The coordinator of `groups` (numbered in this order), with `spec`'s
    /// session timeout and initial rebalance delay; `partitions[t]` is the
    /// partition count of topic `t` (in the broker's topic order).
    pub fn new(spec: &LogSpec, groups: Vec<GroupInfo>, partitions: &[usize]) -> Self {
        let groups = groups
            .into_iter()
            .map(|g| {
                let n = partitions.get(g.topic).copied().unwrap_or(1);
                Group::new(g, n)
            })
            .collect();
        Coordinator {
            groups,
            session_ns: ms_to_ns(spec.session_timeout_ms.0).max(1),
            initial_delay_ns: ms_to_ns(spec.initial_rebalance_delay_ms.0),
        }
    }

    /// How many groups it knows.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether it knows no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether it knows group `group`.
    #[inline]
    pub fn knows(&self, group: u16) -> bool {
        (group as usize) < self.groups.len()
    }

    /// Group `gi`'s settings.
    #[inline]
    pub fn info(&self, gi: usize) -> &GroupInfo {
        &self.groups[gi].info
    }

    /// Every group's settings, by number.
    pub fn infos(&self) -> impl Iterator<Item = &GroupInfo> {
        self.groups.iter().map(|g| &g.info)
    }

    /// Group `gi`'s committed offset of `partition`, if it committed one.
    #[inline]
    pub fn committed(&self, gi: usize, partition: usize) -> Option<u64> {
        self.groups[gi].committed.get(partition).copied().flatten()
    }

    /// The leader epoch committed with group `gi`'s offset of `partition`.
    pub fn committed_epoch(&self, gi: usize, partition: usize) -> Option<u32> {
        self.groups[gi].committed_epoch.get(partition).copied().flatten()
    }

    /// Whether `member` may commit `partition` of group `gi` in
    /// `generation` (false for a group it does not know).
    pub fn may_commit(&self, gi: usize, member: NodeId, generation: u32, partition: usize) -> bool {
        self.groups.get(gi).is_some_and(|g| g.may_commit(member, generation, partition))
    }

    /// Whether `member` may fetch `partition` of group `gi`: it owns it now.
    #[inline]
    pub fn may_fetch(&self, gi: usize, member: NodeId, generation: u32, partition: usize) -> bool {
        self.groups.get(gi).is_some_and(|g| g.may_fetch(member, generation, partition))
    }

    /// Checks a fetch of `partition` of group `gi` from `offset` by
    /// `from`: false, having answered [`FetchError::NotOwner`], when
    /// `from` does not own the partition.
    pub fn check_fetch<T: Timer>(
        &self,
        ctx: &mut Ctx<T>,
        from: NodeId,
        (gi, generation): (usize, u32),
        partition: u32,
        offset: u64,
    ) -> bool {
        if self.may_fetch(gi, from, generation, partition as usize) {
            return true;
        }
        let error = FetchError::NotOwner;
        ctx.send(from, LogMsg::Records { partition, offset, recs: Vec::new(), error, epoch: 0 });
        false
    }

    /// Moves group `gi`'s offset of `partition` to `offset`, committed by
    /// `by` (member, generation) with leader epoch `epoch`, unchecked: a
    /// transaction's commit, which its host checked.
    pub fn record_commit(&mut self, gi: usize, partition: usize, offset: u64, by: (NodeId, u32), epoch: Option<u32>) {
        let g = &mut self.groups[gi];
        g.committed[partition] = Some(offset);
        g.committed_by[partition] = Some(by);
        g.committed_epoch[partition] = epoch;
    }

    /// Handles `msg` from `from` if it is a group message of a group it
    /// knows: heartbeat, join, sync, leave or commit.
    pub fn handle<T: HostTimer>(
        &mut self,
        ctx: &mut Ctx<T>,
        host: &impl GroupHost,
        from: NodeId,
        msg: &LogMsg,
    ) -> Handled {
        match *msg {
            LogMsg::Heartbeat { group, session, .. } if self.knows(group) => {
                self.heartbeat(ctx, from, group as usize, session);
            }
            LogMsg::JoinGroup { group, session, ref owned, static_member } if self.knows(group) => {
                self.join_group(ctx, from, group as usize, session, owned, static_member);
            }
            LogMsg::SyncGroup { group, session, generation } if self.knows(group) => {
                self.sync_group(ctx, host, from, (group as usize, session), generation);
            }
            LogMsg::LeaveGroup { group, session } if self.knows(group) => {
                self.leave_group(ctx, from, group as usize, session);
            }
            LogMsg::Commit { group, generation, partition, offset, epoch } if self.knows(group) => {
                let (gi, p) = (group as usize, partition as usize);
                if self.commit(ctx, from, (gi, generation), p, (offset, epoch)) {
                    return Handled::Committed { topic: self.groups[gi].info.topic, partition: p };
                }
            }
            _ => return Handled::NotMine,
        }
        Handled::Done
    }

    /// A commit of `offset` (with leader epoch `epoch`) for `partition`
    /// of group `gi` by `from` in `generation`, answered with a
    /// [`LogMsg::CommitAck`]. True when the committed offset moved.
    pub fn commit<T: Timer>(
        &mut self,
        ctx: &mut Ctx<T>,
        from: NodeId,
        (gi, generation): (usize, u32),
        partition: usize,
        (offset, epoch): (u64, Option<u32>),
    ) -> bool {
        let ok = self.groups[gi].may_commit(from, generation, partition);
        if !ok {
            ctx.metric_add("commits_fenced", 1.0);
            ctx.send(from, LogMsg::CommitAck { partition: partition as u32, offset, ok });
            return false;
        }
        self.apply_commit(ctx, from, (gi, generation), partition, (offset, epoch))
    }

    /// One of its timers is due.
    pub fn on_timer<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, timer: CoordTimer) {
        match timer {
            CoordTimer::Rebalance(g) if (g as usize) < self.groups.len() => self.rebalance_timer(ctx, g as usize),
            CoordTimer::Expiry(g) if (g as usize) < self.groups.len() => self.expire_members(ctx, g as usize),
            _ => {}
        }
    }

    /// The host crashed: members, rebalances and timers are forgotten;
    /// committed offsets are kept (they are durable).
    pub fn crash(&mut self) {
        for g in &mut self.groups {
            g.members.clear();
            g.phase = Phase::Stable;
            g.initial_until = None;
            g.owner.iter_mut().for_each(|o| *o = None);
            g.target.iter_mut().for_each(|o| *o = None);
            g.expiry_at = None;
        }
    }
}

#[path = "coordinator_durable.rs"]
mod durable;

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
