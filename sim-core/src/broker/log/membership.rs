//! The group coordinator's side of Kafka's classic rebalance protocol
//! (Kafka 3.x/4.x consumers with `group.protocol = classic`).
//!
//! **Members.** A member is a member id, not a node: a consumer that
//! restarts joins as a new member, and the old one stays in the group,
//! owning its partitions, until its session times out (no heartbeat for
//! `session_timeout_ms`). A static member (`group_instance_id`, KIP-345)
//! is known by its instance: when it comes back within its session, it
//! takes its old place and assignment, without a rebalance.
//!
//! **A rebalance** starts when a member joins, leaves (its poll interval
//! ran out, KIP-62), or is expired. The coordinator does not push it: each
//! member hears of it in the answer to its next heartbeat, and rejoins at
//! its next poll (when the batch it is processing is done). The rebalance
//! completes when every known member has rejoined; a member that does not
//! rejoin is removed when its session expires or, at the latest, when the
//! rebalance timeout (the longest `max_poll_interval_ms` of the group)
//! passes. Then the generation is bumped, the assignment is computed, each
//! member is told ([`LogMsg::JoinAck`]) and asks for its partitions
//! ([`LogMsg::SyncGroup`]). So the pause is made of these rounds: the time
//! to notice, to finish a batch, to wait for the slowest or for a dead
//! member's session to end, and two round trips.
//!
//! **Protocols.** Eager: members revoke every partition before they
//! rejoin, so the whole group stops. Cooperative-sticky (KIP-429): members
//! rejoin with what they own and keep reading it; the new assignment keeps
//! every partition that need not move with its owner; one that must move
//! is first revoked by its owner, which then rejoins, and a second round
//! hands it to its new owner.
//!
//! **An empty group's first rebalance** waits `initial_rebalance_delay_ms`
//! (Kafka's `group.initial.rebalance.delay.ms`) for more members.
//!
//! Left out: the group leader computing the assignment (the coordinator
//! does it; the leader's SyncGroup round is folded into each member's own),
//! the extension of the initial delay by each new member, member ids handed
//! out in a first JoinGroup round (KIP-394), the new consumer protocol of
//! KIP-848, and a coordinator that fails (the broker keeps its groups).

use super::coordinator::{CoordTimer, Coordinator, GroupHost, HostTimer};
use super::group::{Member, Phase};
use crate::engine::Ctx;
use crate::message::NodeId;
use crate::protocol::LogMsg;

/// The answer to a member the coordinator does not know: rejoin as new.
const UNKNOWN: LogMsg = LogMsg::GroupState { generation: 0, rebalancing: true, partitions: Vec::new() };

impl Coordinator {
    /// A heartbeat: keeps the member's session alive; tells it of a
    /// rebalance it has not joined, or that it is not a member.
    pub fn heartbeat<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, from: NodeId, gi: usize, session: u32) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        let Some(m) = g.members.iter_mut().find(|m| m.node == from && m.session == session) else {
            return ctx.send(from, UNKNOWN);
        };
        m.last_seen = now;
        if g.phase == Phase::Preparing && !m.joined {
            let generation = g.generation;
            ctx.send(from, LogMsg::GroupState { generation, rebalancing: true, partitions: Vec::new() });
        }
        self.arm_expiry(ctx, gi);
    }

    /// A member (re)joins, owning `owned`.
    pub fn join_group<T: HostTimer>(
        &mut self,
        ctx: &mut Ctx<T>,
        from: NodeId,
        gi: usize,
        session: u32,
        owned: &[u32],
        static_member: bool,
    ) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        let empty = g.members.is_empty();
        let (i, quiet) = match g.find(from, session, static_member) {
            Some(i) => {
                let m = &mut g.members[i];
                let replaced = m.session != session;
                m.session = session;
                m.last_seen = now;
                // A static member back within its session, or a member that
                // asks again with nothing changed, gets the standing
                // assignment: no rebalance.
                let same = m.owned == owned || g.info.protocol == super::RebalanceProtocol::Eager;
                (i, replaced || same)
            }
            None => {
                let (id, owned) = (g.next_id, Vec::new());
                g.next_id += 1;
                let (joined, synced) = (false, 0);
                g.members.push(Member {
                    id,
                    node: from,
                    session,
                    static_member,
                    last_seen: now,
                    joined,
                    synced,
                    owned,
                });
                (g.members.len() - 1, false)
            }
        };
        self.arm_expiry(ctx, gi);
        let g = &mut self.groups[gi];
        if g.phase == Phase::Stable && quiet {
            g.members[i].synced = 0;
            return ctx.send(from, LogMsg::JoinAck { generation: g.generation });
        }
        g.set_owned(i, owned);
        if g.phase == Phase::Stable {
            self.start_rebalance(ctx, gi, empty);
        }
        self.groups[gi].members[i].joined = true;
        self.maybe_complete(ctx, gi);
    }

    /// A member asks for its assignment in `generation`.
    pub fn sync_group<T: HostTimer>(
        &mut self,
        ctx: &mut Ctx<T>,
        host: &impl GroupHost,
        from: NodeId,
        (gi, session): (usize, u32),
        generation: u32,
    ) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        let Some(m) = g.members.iter_mut().find(|m| m.node == from && m.session == session) else {
            return ctx.send(from, UNKNOWN);
        };
        m.last_seen = now;
        if g.phase == Phase::Preparing || generation != g.generation {
            let generation = g.generation;
            return ctx.send(from, LogMsg::GroupState { generation, rebalancing: true, partitions: Vec::new() });
        }
        m.synced = generation;
        let id = m.id;
        let partitions = self.assignment(host, gi, id);
        ctx.send(from, LogMsg::GroupState { generation, rebalancing: false, partitions });
    }

    /// The partitions of member `id` and where to start reading each.
    fn assignment(&self, host: &impl GroupHost, gi: usize, id: u32) -> Vec<(u32, u64, Option<u32>)> {
        let g = &self.groups[gi];
        let start = |p: usize| g.committed[p].unwrap_or_else(|| host.log_start(g.info.topic, p));
        g.assigned_to(id).into_iter().map(|p| (p as u32, start(p), g.committed_epoch[p])).collect()
    }

    /// A member leaves the group (its poll interval ran out).
    pub fn leave_group<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, from: NodeId, gi: usize, session: u32) {
        let g = &mut self.groups[gi];
        let Some(i) = g.members.iter().position(|m| m.node == from && m.session == session) else { return };
        g.remove(i);
        ctx.metric_add("members_left", 1.0);
        self.membership_changed(ctx, gi);
    }

    /// A member was removed: a stable group rebalances; one rebalancing
    /// may now have everyone it waits for.
    fn membership_changed<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        if self.groups[gi].phase == Phase::Stable {
            self.start_rebalance(ctx, gi, false);
        }
        self.maybe_complete(ctx, gi);
    }

    fn start_rebalance<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize, empty: bool) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        if g.phase == Phase::Preparing || g.members.is_empty() {
            return;
        }
        ctx.metric_add("rebalances", 1.0);
        ctx.mark("rebalance began");
        g.phase = Phase::Preparing;
        g.members.iter_mut().for_each(|m| m.joined = false);
        let timeout = g.info.rebalance_timeout_ns.max(1);
        g.join_deadline = now + timeout;
        ctx.set_timer(timeout, CoordTimer::Rebalance(gi as u32).into());
        if empty && self.initial_delay_ns > 0 {
            let delay = self.initial_delay_ns.min(timeout);
            g.initial_until = Some(now + delay);
            ctx.set_timer(delay, CoordTimer::Rebalance(gi as u32).into());
        }
    }

    /// Completes the rebalance under way once every member has rejoined
    /// (and an empty group's initial delay has passed): a new generation,
    /// its assignment, and a JoinAck to every member.
    fn maybe_complete<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        let waiting = g.initial_until.is_some_and(|t| now < t);
        if g.phase != Phase::Preparing || waiting || !g.all_joined() {
            return;
        }
        g.initial_until = None;
        g.phase = Phase::Stable;
        g.generation += 1;
        g.assign();
        ctx.mark("rebalance completed");
        ctx.cancel_timer(CoordTimer::Rebalance(gi as u32).into());
        let generation = g.generation;
        let members: Vec<NodeId> = g.members.iter().map(|m| m.node).collect();
        for m in members {
            ctx.send(m, LogMsg::JoinAck { generation });
        }
    }

    /// The rebalance timeout, or the end of the initial delay.
    pub(super) fn rebalance_timer<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        let now = ctx.now();
        let g = &mut self.groups[gi];
        if g.phase != Phase::Preparing {
            return;
        }
        if now >= g.join_deadline {
            let before = g.members.len();
            while let Some(i) = g.members.iter().position(|m| !m.joined) {
                g.remove(i);
            }
            ctx.metric_add("rejoin_timeouts", (before - g.members.len()) as f64);
            if g.members.is_empty() {
                g.phase = Phase::Stable;
                g.initial_until = None;
                return;
            }
        }
        self.maybe_complete(ctx, gi);
    }

    fn arm_expiry<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        let g = &mut self.groups[gi];
        if g.expiry_at.is_none() {
            g.expiry_at = Some(ctx.now() + self.session_ns);
            ctx.set_background_timer(self.session_ns, CoordTimer::Expiry(gi as u32).into());
        }
    }

    /// Arms the next session check, at the oldest member's expiry. It is a
    /// background timer (live members heartbeat for ever), except in the
    /// drain for a member that has gone silent (a third of its session):
    /// then the drain waits for its session to end, as its partitions do.
    fn arm_next_expiry<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        let (now, session) = (ctx.now(), self.session_ns);
        let g = &mut self.groups[gi];
        let Some(oldest) = g.members.iter().map(|m| m.last_seen).min() else { return };
        let at = oldest.saturating_add(session).max(now + 1);
        g.expiry_at = Some(at);
        let silent = now.saturating_sub(oldest) >= session / 3;
        if ctx.draining() && silent {
            ctx.set_timer(at - now, CoordTimer::Expiry(gi as u32).into());
        } else {
            ctx.set_background_timer(at - now, CoordTimer::Expiry(gi as u32).into());
        }
    }

    /// The drain begins: a session check a third of a session later finds
    /// the members gone silent, whose session ends then keep it going.
    pub fn drain<T: HostTimer>(&mut self, ctx: &mut Ctx<T>) {
        for gi in 0..self.groups.len() {
            if !self.groups[gi].members.is_empty() {
                ctx.cancel_timer(CoordTimer::Expiry(gi as u32).into());
                self.groups[gi].expiry_at = Some(ctx.now() + self.session_ns / 3 + 1);
                ctx.set_timer(self.session_ns / 3 + 1, CoordTimer::Expiry(gi as u32).into());
            }
        }
    }

    /// Removes the members whose session has run out.
    pub(super) fn expire_members<T: HostTimer>(&mut self, ctx: &mut Ctx<T>, gi: usize) {
        let now = ctx.now();
        let session = self.session_ns;
        let g = &mut self.groups[gi];
        g.expiry_at = None;
        let before = g.members.len();
        while let Some(i) = g.members.iter().position(|m| m.last_seen.saturating_add(session) <= now) {
            g.remove(i);
        }
        let expired = before - g.members.len();
        self.arm_next_expiry(ctx, gi);
        let g = &mut self.groups[gi];
        if expired > 0 {
            ctx.metric_add("members_expired", expired as f64);
            if g.members.is_empty() {
                g.phase = Phase::Stable;
                g.initial_until = None;
                return;
            }
            self.membership_changed(ctx, gi);
        }
    }
}
