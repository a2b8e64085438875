//! The coordinator's state as records of a log, for a host that keeps it in
//! Kafka's `__consumer_offsets` (a cluster broker, see
//! [`crate::broker::cluster`]): the group record to write when a group's
//! membership or assignment changed, the commit to apply once its record
//! is committed, and taking a group over from the records (loading it) or
//! giving it up (unloading it).
//!
//! A loaded group is stable in the generation of its last group record,
//! with that record's members and assignment, each member's session
//! starting afresh at the load (Kafka's loading schedules a new heartbeat
//! expiration for every member it loads), and the committed offsets of the
//! last commit record of each partition. A rebalance under way at the old
//! coordinator is not in the records: its members find out at their next
//! request (a member the group does not know rejoins).

use super::super::group::{Group, Member, Phase};
use super::{CoordTimer, Coordinator, HostTimer};
use crate::engine::{Ctx, Timer};
use crate::message::NodeId;
use crate::protocol::offsets::{GroupRecord, MemberRecord, OffsetsRecord};
use crate::protocol::LogMsg;

impl Coordinator {
    /// Whether `node` in `session` is a member of group `gi`.
    pub fn is_member(&self, gi: usize, node: NodeId, session: u32) -> bool {
        self.groups.get(gi).is_some_and(|g| g.members.iter().any(|m| m.node == node && m.session == session))
    }

    /// Moves group `gi`'s offset of `partition` as `from` (in
    /// `generation`) committed it, checked already, and answers it (a
    /// [`LogMsg::CommitAck`] that succeeded). True when the offset moved
    /// (an older commit of the same member, overtaken, does not move it).
    pub fn apply_commit<T: Timer>(
        &mut self,
        ctx: &mut Ctx<T>,
        from: NodeId,
        (gi, generation): (usize, u32),
        partition: usize,
        (offset, epoch): (u64, Option<u32>),
    ) -> bool {
        let g = &self.groups[gi];
        let behind = g.committed[partition].is_some_and(|c| offset < c);
        let moved = if behind && g.committed_by[partition] == Some((from, generation)) {
            // An older commit of the same member, overtaken on the
            // network: its connection would have kept them in order.
            ctx.metric_add("stale_commits", 1.0);
            false
        } else {
            if behind {
                ctx.metric_add("offset_regressions", 1.0);
            }
            self.record_commit(gi, partition, offset, (from, generation), epoch);
            true
        };
        ctx.send(from, LogMsg::CommitAck { partition: partition as u32, offset, ok: true });
        moved
    }

    /// Group `gi`'s metadata as a record: none while a rebalance is under
    /// way (Kafka writes it when the rebalance settles).
    pub fn group_record(&self, gi: usize) -> Option<GroupRecord> {
        let g = &self.groups[gi];
        if g.phase != Phase::Stable {
            return None;
        }
        let members = g
            .members
            .iter()
            .map(|m| MemberRecord {
                id: m.id,
                node: m.node,
                session: m.session,
                static_member: m.static_member,
                synced: m.synced,
                owned: m.owned.clone(),
            })
            .collect();
        let (generation, next_id) = (g.generation, g.next_id);
        Some(GroupRecord {
            group: gi as u16,
            generation,
            next_id,
            members,
            target: g.target.clone(),
            owner: g.owner.clone(),
        })
    }

    /// Forgets group `gi` (its coordination moved away): members,
    /// rebalance, committed offsets, and its timers.
    pub fn unload<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        ctx.cancel_timer(CoordTimer::Rebalance(gi as u32).into());
        ctx.cancel_timer(CoordTimer::Expiry(gi as u32).into());
        let g = &self.groups[gi];
        self.groups[gi] = Group::new(g.info.clone(), g.committed.len());
    }

    /// Takes group `gi` over from `log` (the records of its offsets
    /// partition, oldest first; other groups' records are skipped).
    pub fn load<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize, log: &[OffsetsRecord]) {
        self.unload(ctx, gi);
        let now = ctx.now();
        let g = &mut self.groups[gi];
        for rec in log.iter().filter(|r| usize::from(r.group()) == gi) {
            match rec {
                OffsetsRecord::Commit(c) => {
                    let p = c.partition as usize;
                    if p < g.committed.len() {
                        g.committed[p] = Some(c.offset);
                        g.committed_by[p] = Some(c.by);
                        g.committed_epoch[p] = c.epoch;
                    }
                }
                OffsetsRecord::Group(r) => restore(g, r, now),
            }
        }
        if !g.members.is_empty() {
            g.expiry_at = Some(now + self.session_ns);
            ctx.set_background_timer(self.session_ns, CoordTimer::Expiry(gi as u32).into());
        }
    }
}

/// Group `g` as record `r` says, its members last seen `now`.
fn restore(g: &mut Group, r: &GroupRecord, now: crate::time::Time) {
    g.generation = r.generation;
    g.next_id = r.next_id;
    g.phase = Phase::Stable;
    g.members = r
        .members
        .iter()
        .map(|m| Member {
            id: m.id,
            node: m.node,
            session: m.session,
            static_member: m.static_member,
            last_seen: now,
            joined: false,
            synced: m.synced,
            owned: m.owned.clone(),
        })
        .collect();
    if r.target.len() == g.target.len() && r.owner.len() == g.owner.len() {
        g.target.clone_from(&r.target);
        g.owner.clone_from(&r.owner);
    }
}
