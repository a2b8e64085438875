//! A group member's side of Kafka's classic rebalance protocol (see the
//! coordinator's side in the log broker's `membership` module).
//!
//! A member joins ([`LogMsg::JoinGroup`]), waits until the coordinator has
//! formed the generation ([`LogMsg::JoinAck`]), asks for its partitions
//! ([`LogMsg::SyncGroup`]) and reads them. A background heartbeat keeps its
//! session alive and brings news of a rebalance, which it acts on at its
//! next poll: when the batch it is processing is done (at once when idle).
//! With the eager protocol it then commits what it processed and revokes
//! every partition before it rejoins; with cooperative-sticky it rejoins
//! owning what it has, keeps reading, and later revokes only the
//! partitions its new assignment takes away (then rejoins once more).
//!
//! **The poll interval (KIP-62).** A batch whose processing runs longer
//! than `max_poll_interval_ms` makes the member leave the group at that
//! moment (a static member just stops heartbeating), as Kafka's heartbeat
//! thread does: the group rebalances without it, and when the batch is done
//! its offset commit fails (Kafka's `CommitFailedException`), its
//! partitions are lost without a commit, and it joins again as a new
//! member. The records it processed are read again by their new owner.
//!
//! Left out: the member-id round of KIP-394 (the coordinator accepts a
//! first JoinGroup at once), and commits that wait for a rebalance to end.

use super::{Assigned, CommitMode, LogConsumer, LogConsumerTimer};
use crate::broker::RebalanceProtocol;
use crate::engine::Ctx;
use crate::protocol::LogMsg;
use crate::time::Time;

/// Where a member is in joining its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Join {
    /// In the group (or about to rejoin at its next poll).
    #[default]
    Member,
    /// JoinGroup sent at this time, unanswered.
    Joining(Time),
    /// SyncGroup for this generation sent at this time, unanswered.
    Syncing(u32, Time),
}

/// An assignment: each partition with its committed offset and the leader
/// epoch committed with it.
pub(super) type Assignment = Vec<(u32, u64, Option<u32>)>;

/// A member's view of its group.
#[derive(Debug, Default)]
pub(super) struct Membership {
    pub join: Join,
    /// A rebalance was announced: rejoin at the next poll.
    pub rejoin: bool,
    /// It left the group (its poll interval ran out): its partitions are
    /// lost, and it joins as a new member at its next poll.
    pub left: bool,
    /// An assignment to take at the next poll: (generation, partitions).
    pub pending: Option<(u32, Assignment)>,
}

impl LogConsumer {
    fn cooperative(&self) -> bool {
        self.s.protocol == RebalanceProtocol::CooperativeSticky
    }

    /// Whether the next poll revokes every partition with a commit (an
    /// eager member that heard of a rebalance).
    pub(super) fn revoking(&self) -> bool {
        self.m.rejoin && !self.m.left && !self.cooperative() && self.m.join == Join::Member
    }

    pub(super) fn send_join(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        let owned = if self.cooperative() { self.assigned.keys().copied().collect() } else { Vec::new() };
        let msg = LogMsg::JoinGroup {
            group: self.s.group,
            session: self.session,
            owned,
            static_member: self.s.static_member,
        };
        if let Some(to) = self.group_node() {
            ctx.send(to, msg);
        }
        self.m.join = Join::Joining(ctx.now());
        // A foreground timer, unlike the heartbeat tick: a join lost on the
        // way must be resent even in the drain, or the member never reads.
        ctx.set_timer(self.s.request_timeout_ns.max(1), LogConsumerTimer::JoinRetry);
    }

    fn send_sync(&self, ctx: &mut Ctx<LogConsumerTimer>, generation: u32) {
        if let Some(to) = self.group_node() {
            ctx.send(to, LogMsg::SyncGroup { group: self.s.group, session: self.session, generation });
        }
        ctx.set_timer(self.s.request_timeout_ns.max(1), LogConsumerTimer::JoinRetry);
    }

    pub(super) fn on_join_ack(&mut self, ctx: &mut Ctx<LogConsumerTimer>, generation: u32) {
        if matches!(self.m.join, Join::Joining(_)) {
            self.m.join = Join::Syncing(generation, ctx.now());
            self.send_sync(ctx, generation);
        }
    }

    pub(super) fn on_group_state(
        &mut self,
        ctx: &mut Ctx<LogConsumerTimer>,
        generation: u32,
        rebalancing: bool,
        partitions: Assignment,
    ) {
        match (self.m.join, rebalancing) {
            (Join::Joining(_), _) => return, // already rejoining
            (Join::Syncing(g, _), false) if g == generation => {
                self.m.pending = Some((generation, partitions));
                self.m.join = Join::Member;
            }
            (_, false) => return, // a stale or repeated assignment
            (_, true) if generation == 0 => {
                // Not a member (expired or replaced): what it had is lost.
                self.lose_all();
                self.generation = 0;
                self.m.pending = None;
                self.m.rejoin = true;
                self.m.join = Join::Member;
            }
            (Join::Syncing(g, _), true) if generation < g => return,
            (Join::Member, true) if generation < self.generation => return,
            (_, true) => {
                self.m.rejoin = true;
                self.m.join = Join::Member;
            }
        }
        if !self.in_progress {
            self.poll(ctx);
            self.next(ctx);
        }
    }

    /// The member is between batches: act on what the group said.
    pub(super) fn poll(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.m.left {
            self.m.left = false;
            self.lose_all();
            self.generation = 0;
            self.session += 1;
            self.m.rejoin = true;
            self.m.join = Join::Member;
        }
        if let Some((generation, partitions)) = self.m.pending.take() {
            self.take_assignment(ctx, generation, partitions);
        }
        if self.m.rejoin && self.m.join == Join::Member {
            self.m.rejoin = false;
            if !self.cooperative() {
                self.revoke(ctx, None);
            }
            self.send_join(ctx);
        }
    }

    /// Commits what was processed of `only` (every partition: None), then
    /// gives it up.
    pub(super) fn revoke(&mut self, ctx: &mut Ctx<LogConsumerTimer>, only: Option<u32>) {
        let keep = |p: u32| only.is_some_and(|o| o != p);
        if !self.s.transactional && self.s.commit != CommitMode::Before {
            let done: Vec<(u32, (u64, Option<u32>))> = self
                .assigned
                .iter()
                .filter(|(&p, _)| !keep(p))
                .map(|(&p, a)| (p, (a.processed, a.processed_epoch)))
                .collect();
            for (p, at) in done {
                self.commit(ctx, p, at);
            }
        }
        self.assigned.retain(|&p, _| keep(p));
        self.committing.retain(|&p, _| keep(p));
        self.txns.retain(|&p, _| keep(p));
        self.batches.retain(|b| keep(b.partition));
    }

    /// Gives up every partition without a commit (they are someone
    /// else's already).
    fn lose_all(&mut self) {
        self.assigned.clear();
        self.committing.clear();
        self.txns.clear();
        // The batch in progress is finished (its commit will fail).
        self.batches.truncate(usize::from(self.in_progress));
    }

    fn take_assignment(&mut self, ctx: &mut Ctx<LogConsumerTimer>, generation: u32, partitions: Assignment) {
        self.generation = generation;
        let gone: Vec<u32> =
            self.assigned.keys().copied().filter(|p| !partitions.iter().any(|(q, _, _)| q == p)).collect();
        for p in &gone {
            self.revoke(ctx, Some(*p));
        }
        if !gone.is_empty() && self.cooperative() {
            self.m.rejoin = true; // the second round hands them to their new owners
        }
        for (p, committed, epoch) in partitions {
            if self.assigned.contains_key(&p) {
                continue; // kept: reading goes on where it is
            }
            let (position, processed, processed_epoch) = (committed, committed, epoch);
            let a = Assigned { position, processed, epoch, processed_epoch, fetch_sent: None, busy: false };
            self.assigned.insert(p, a);
            self.fetch(ctx, p);
        }
    }

    /// The batch in progress has run past the poll interval: leave.
    pub(super) fn poll_expired(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if !self.in_progress || self.m.left {
            return;
        }
        self.m.left = true;
        ctx.metric_add("poll_timeouts", 1.0);
        if let Some(to) = self.group_node().filter(|_| !self.s.static_member) {
            ctx.send(to, LogMsg::LeaveGroup { group: self.s.group, session: self.session });
        }
    }

    /// Heartbeats (unless it left), and resends a join or sync left
    /// unanswered.
    pub(super) fn keep_membership(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.m.left {
            return;
        }
        self.heartbeat(ctx);
        self.resend_join(ctx);
    }

    /// Resends a join or a sync left unanswered for a request timeout.
    pub(super) fn resend_join(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        if self.m.left {
            return;
        }
        let now = ctx.now();
        let late = |t: Time| now.saturating_sub(t) >= self.s.request_timeout_ns;
        match self.m.join {
            Join::Joining(t) if late(t) => {
                self.group_request_lost();
                self.send_join(ctx)
            }
            Join::Syncing(g, t) if late(t) => {
                self.group_request_lost();
                self.m.join = Join::Syncing(g, now);
                self.send_sync(ctx, g);
            }
            _ => {}
        }
    }

    /// The coordinator just became known: a join or sync made while it was
    /// not leaves now.
    pub(super) fn resend_join_now(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        match self.m.join {
            Join::Joining(_) if !self.m.left => self.send_join(ctx),
            Join::Syncing(g, _) if !self.m.left => {
                self.m.join = Join::Syncing(g, ctx.now());
                self.send_sync(ctx, g);
            }
            _ => {}
        }
    }

    /// A start or restart: a new incarnation that joins its group.
    pub(super) fn join_anew(&mut self, ctx: &mut Ctx<LogConsumerTimer>) {
        self.session += 1;
        self.generation = 0;
        self.m = super::membership::Membership::default();
        self.send_join(ctx);
    }
}
