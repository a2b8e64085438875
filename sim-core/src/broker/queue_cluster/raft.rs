//! A quorum queue's replica: Raft as Ra (RabbitMQ's Raft library) runs it,
//! reduced to what decides safety and availability. The leader appends
//! commands (enqueue, settle, and a no-op when it takes over), sends them
//! to the other replicas, and commits an entry once a majority holds it;
//! applying a committed enqueue puts the message in the queue (so only
//! committed messages are delivered) and confirms its publish. A replica
//! that stops hearing from its leader for its election timeout asks the
//! others first whether they would vote for it (pre-vote, as Ra does, so
//! that a replica back from a partition does not depose a working leader),
//! then for their votes, with a new term. A leader that hears of a newer
//! term steps down; a follower truncates entries that conflict with its
//! leader's log.
//!
//! A replica that lost its disk comes back empty as a non-voting member
//! (RabbitMQ 4.x adds a replica as a non-voter until it has caught up):
//! it neither votes nor stands until it holds its leader's commit index.
//!
//! Left out: log compaction and snapshots (a replica replays the whole
//! log), membership changes, leader transfer, and the time a write to disk
//! takes (an append is durable the moment it is made).

use super::node::{confirm, policy, NodeTimer, QueueClusterNode};
use super::Layout;
use crate::broker::queue::core::{Entry, QueueCore};
use crate::engine::Ctx;
use crate::ledger::{DupCause, LossCause};
use crate::message::{MsgId, NodeId, Record};
use crate::protocol::queue_cluster::{Append, Command, LogEntry, QueueClusterMsg as Qc};
use crate::time::{Duration, Time};
use std::collections::{BTreeMap, BTreeSet};

/// The most entries one append carries.
const MAX_BATCH: usize = 512;

/// A replica's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks whether the others would vote for it.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// One replica of a quorum queue.
pub struct Raft {
    me: NodeId,
    /// The other replicas.
    peers: Vec<NodeId>,
    majority: usize,
    term: u32,
    voted_for: Option<NodeId>,
    log: Vec<LogEntry>,
    commit: u64,
    applied: u64,
    voter: bool,
    role: Role,
    leader: Option<NodeId>,
    last_heard: Time,
    timeout: Duration,
    next: BTreeMap<NodeId, u64>,
    matched: BTreeMap<NodeId, u64>,
    granted: BTreeSet<NodeId>,
    noop: u64,
    /// Committed messages not yet settled, by (id, log index).
    live: BTreeMap<(MsgId, u64), (Record, Time)>,
    /// The queue, on a leader that has committed its no-op.
    pub(super) core: Option<QueueCore>,
}

impl Raft {
    /// A replica at the start: the home node leads term 1, with an empty queue.
    pub(super) fn new(me: NodeId, layout: &Layout) -> Raft {
        let home = layout.nodes[layout.home];
        let mut r = Raft::empty(me, layout);
        (r.term, r.voted_for, r.leader, r.voter) = (1, Some(home), Some(home), true);
        if me == home {
            r.role = Role::Leader;
            r.next = r.peers.iter().map(|&p| (p, 1)).collect();
            r.matched = r.peers.iter().map(|&p| (p, 0)).collect();
            r.core = Some(new_core(layout, 1));
        }
        r
    }

    /// A replica with nothing: lost its disk, not voting until caught up.
    pub(super) fn empty(me: NodeId, layout: &Layout) -> Raft {
        let peers: Vec<NodeId> = layout.replicas.iter().copied().filter(|&p| p != me).collect();
        Raft {
            me,
            peers,
            majority: layout.majority(),
            term: 0,
            voted_for: None,
            log: Vec::new(),
            commit: 0,
            applied: 0,
            voter: false,
            role: Role::Follower,
            leader: None,
            last_heard: 0,
            timeout: layout.election_min_ns,
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
            granted: BTreeSet::new(),
            noop: 0,
            live: BTreeMap::new(),
            core: None,
        }
    }

    /// Its current term.
    pub fn term(&self) -> u32 {
        self.term
    }
    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Its log's length.
    pub fn log_len(&self) -> u64 {
        self.log.len() as u64
    }
    /// Its commit index.
    pub fn commit(&self) -> u64 {
        self.commit
    }
    /// Whether it votes.
    pub fn voter(&self) -> bool {
        self.voter
    }
    /// The committed, unsettled messages it holds.
    pub fn live(&self) -> usize {
        self.live.len()
    }
    /// The commands of its log.
    pub fn commands(&self) -> impl Iterator<Item = Command> + '_ {
        self.log.iter().map(|e| e.cmd)
    }

    fn term_at(&self, index: u64) -> u32 {
        if index == 0 {
            0
        } else {
            self.log.get(index as usize - 1).map_or(0, |e| e.term)
        }
    }

    fn last(&self) -> (u32, u64) {
        (self.term_at(self.log.len() as u64), self.log.len() as u64)
    }

    /// The replica's process crashed: its log, term and vote are on disk.
    pub(super) fn crash(&mut self) {
        self.role = Role::Follower;
        self.leader = None;
        self.core = None;
        self.granted.clear();
        self.next.clear();
        self.matched.clear();
    }

    /// Becomes a follower in `term` (a newer one, or its own after losing).
    fn follow(&mut self, term: u32) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.leader = None;
        }
        if self.role == Role::Leader {
            self.leader = None;
        }
        self.role = Role::Follower;
        self.core = None;
        self.granted.clear();
    }

    pub(super) fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.live.keys().map(|&(id, _)| id));
    }

    pub(super) fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<LogEntry>();
        let live = std::mem::size_of::<((MsgId, u64), (Record, Time))>() + 16;
        self.log.capacity() * entry + self.live.len() * live + self.core.as_ref().map_or(0, QueueCore::memory_bytes)
    }

    /// Sends `peer` the entries it lacks (none: a heartbeat).
    fn send_append(&mut self, ctx: &mut Ctx<NodeTimer>, peer: NodeId) {
        let next = self.next.get(&peer).copied().unwrap_or(1).max(1);
        let prev = (next - 1).min(self.log.len() as u64);
        let end = self.log.len().min(prev as usize + MAX_BATCH);
        let entries = self.log[prev as usize..end].to_vec();
        self.next.insert(peer, end as u64 + 1);
        let a =
            Append { term: self.term, prev_index: prev, prev_term: self.term_at(prev), entries, commit: self.commit };
        ctx.send(peer, Qc::Append(Box::new(a)));
    }

    fn replicate(&mut self, ctx: &mut Ctx<NodeTimer>) {
        for p in self.peers.clone() {
            self.send_append(ctx, p);
        }
    }

    /// Appends `cmd` to a leader's log.
    fn push(&mut self, cmd: Command) {
        self.log.push(LogEntry { term: self.term, cmd });
    }

    /// Commits what a majority holds (an entry of its own term, and with
    /// it all before), then applies it. Returns whether the leader became
    /// ready to serve.
    fn advance(&mut self, ctx: &mut Ctx<NodeTimer>, layout: &Layout) -> bool {
        let mut held: Vec<u64> = self.peers.iter().map(|p| self.matched.get(p).copied().unwrap_or(0)).collect();
        held.push(self.log.len() as u64);
        held.sort_unstable_by(|a, b| b.cmp(a));
        let n = held[self.majority - 1];
        if n > self.commit && self.term_at(n) == self.term {
            self.commit = n;
        }
        self.apply(ctx, layout)
    }

    /// Applies committed entries. Returns whether the leader became ready.
    fn apply(&mut self, ctx: &mut Ctx<NodeTimer>, layout: &Layout) -> bool {
        let mut ready = false;
        while self.applied < self.commit {
            self.applied += 1;
            let e = self.log[self.applied as usize - 1];
            match e.cmd {
                Command::Noop => {
                    if self.role == Role::Leader && self.applied == self.noop && self.core.is_none() {
                        self.serve(ctx, layout);
                        ready = true;
                    }
                }
                Command::Enqueue { rec, at, via, producer, attempt, want_ack } => {
                    self.live.insert((rec.id, self.applied), (rec, at));
                    if let Some(core) = &mut self.core {
                        core.queue.push_back(Entry { persistent: true, ..Entry::new(rec, at, None, core.policy()) });
                    }
                    if want_ack && self.role == Role::Leader && e.term == self.term {
                        confirm(ctx, self.me, via, rec.id, producer, attempt);
                    }
                }
                Command::Settle(id) => {
                    let first = self.live.range((id, 0)..=(id, u64::MAX)).next().map(|(&k, _)| k);
                    if let Some(k) = first {
                        self.live.remove(&k);
                    }
                }
            }
        }
        if let Some(core) = &mut self.core {
            core.dispatch(ctx);
        }
        ready
    }

    /// A new leader serves the queue: every committed, unsettled message
    /// in log order. Those an earlier leader had delivered come again.
    fn serve(&mut self, ctx: &mut Ctx<NodeTimer>, layout: &Layout) {
        let mut core = new_core(layout, self.term);
        let mut msgs: Vec<(u64, Record, Time)> = self.live.iter().map(|(&(_, i), &(r, at))| (i, r, at)).collect();
        msgs.sort_unstable_by_key(|m| m.0);
        for (_, rec, at) in msgs {
            ctx.resent(rec.id, DupCause::Redelivered);
            core.queue.push_back(Entry { persistent: true, ..Entry::new(rec, at, None, core.policy()) });
        }
        self.core = Some(core);
    }

    /// Where a leader whose append after `prev` did not match should try
    /// again from (minus one): the end of this log if it is shorter, else
    /// before the whole term of the conflicting entry, and never below
    /// the commit index (committed entries are the leader's too).
    fn retry_from(&self, prev: u64) -> u64 {
        let len = self.log.len() as u64;
        if prev > len {
            return len;
        }
        let t = self.term_at(prev);
        let mut i = prev;
        while i > self.commit + 1 && self.term_at(i - 1) == t {
            i -= 1;
        }
        (i - 1).max(self.commit).min(prev.saturating_sub(1))
    }

    /// Removes entries from `index` on (they conflict with the leader's).
    fn truncate(&mut self, ctx: &mut Ctx<NodeTimer>, index: u64) {
        debug_assert!(index > self.commit, "a committed entry is never truncated");
        for e in self.log.drain(index as usize - 1..) {
            if let Command::Enqueue { rec, .. } = e.cmd {
                ctx.discarded(rec.id, LossCause::TruncatedAfterPartition);
            }
        }
    }
}

/// A leader's queue: its deliveries' tags start at its term, so that an
/// ack meant for an earlier leader's delivery matches none of its own.
fn new_core(layout: &Layout, term: u32) -> QueueCore {
    QueueCore::new(policy(layout), true, 0, None).tracking_settled().with_first_tag(u64::from(term) << 40)
}

/// A random election timeout.
fn draw_timeout(ctx: &mut Ctx<NodeTimer>, layout: &Layout) -> Duration {
    let u = crate::rng::unit(ctx.rng());
    layout.election_min_ns + (u * layout.election_spread_ns as f64) as Duration
}

impl QueueClusterNode {
    /// Starts (or restarts) the replica's timers.
    pub(super) fn start_raft(&mut self, ctx: &mut Ctx<NodeTimer>) {
        let Some(r) = &mut self.raft else { return };
        r.timeout = draw_timeout(ctx, &self.layout);
        r.last_heard = ctx.now();
        ctx.set_background_timer(self.layout.heartbeat_ns, NodeTimer::Heartbeat);
        ctx.set_background_timer(r.timeout, NodeTimer::Election);
        if r.role == Role::Leader {
            let (me, term) = (r.me, r.term);
            self.learn_leader(ctx, me, term);
        }
    }

    /// A publish reached this replica: a leader appends it.
    pub(super) fn propose_enqueue(
        &mut self,
        ctx: &mut Ctx<NodeTimer>,
        via: NodeId,
        rec: Record,
        producer: NodeId,
        attempt: u32,
        want_ack: bool,
    ) {
        let r = self.raft.as_mut().expect("a replica");
        if r.role != Role::Leader {
            ctx.error("no-leader");
            ctx.discarded(rec.id, LossCause::NoLeader);
            return;
        }
        r.push(Command::Enqueue { rec, at: ctx.now(), via, producer, attempt, want_ack });
        r.replicate(ctx);
        let ready = r.advance(ctx, &self.layout);
        self.became_ready(ctx, ready);
    }

    /// A leader replicates the settlements its queue made.
    pub(super) fn replicate_settled(&mut self, ctx: &mut Ctx<NodeTimer>) {
        let Some(r) = &mut self.raft else { return };
        let Some(core) = &mut r.core else { return };
        let ids = core.take_settled();
        if ids.is_empty() {
            return;
        }
        for id in ids {
            r.push(Command::Settle(id));
        }
        r.replicate(ctx);
        let ready = r.advance(ctx, &self.layout);
        self.became_ready(ctx, ready);
    }

    fn became_ready(&mut self, ctx: &mut Ctx<NodeTimer>, ready: bool) {
        if ready {
            self.resubscribe_hosted(ctx);
        }
    }

    /// The leader's period: heartbeats (and any entries a follower lacks)
    /// to the replicas, and who leads to the other nodes.
    pub(super) fn on_heartbeat(&mut self, ctx: &mut Ctx<NodeTimer>) {
        ctx.set_background_timer(self.layout.heartbeat_ns, NodeTimer::Heartbeat);
        let Some(r) = &mut self.raft else { return };
        if r.role != Role::Leader {
            return;
        }
        r.replicate(ctx);
        let me = r.me;
        for &n in &self.layout.nodes {
            if n != me && !r.peers.contains(&n) {
                let a = Append { term: r.term, prev_index: 0, prev_term: 0, entries: Vec::new(), commit: 0 };
                ctx.send(n, Qc::Append(Box::new(a)));
            }
        }
    }

    /// A follower that has not heard from a leader for its timeout stands.
    pub(super) fn on_election_timer(&mut self, ctx: &mut Ctx<NodeTimer>) {
        let Some(r) = &mut self.raft else { return };
        let now = ctx.now();
        if r.role == Role::Leader || !r.voter {
            r.last_heard = now;
        } else if now >= r.last_heard.saturating_add(r.timeout) {
            r.timeout = draw_timeout(ctx, &self.layout);
            r.last_heard = now;
            self.stand(ctx, true);
        }
        let Some(r) = &mut self.raft else { return };
        let due = r.last_heard.saturating_add(r.timeout).saturating_sub(now).max(1);
        ctx.set_background_timer(due, NodeTimer::Election);
    }

    /// Asks the other replicas for (pre-)votes.
    fn stand(&mut self, ctx: &mut Ctx<NodeTimer>, pre: bool) {
        let r = self.raft.as_mut().expect("a replica");
        if pre {
            r.role = Role::PreCandidate;
        } else {
            r.term += 1;
            r.voted_for = Some(r.me);
            r.role = Role::Candidate;
            r.leader = None;
            ctx.mark("election started");
        }
        r.core = None;
        r.granted = BTreeSet::from([r.me]);
        if r.granted.len() >= r.majority {
            return self.won(ctx, pre);
        }
        let (last_term, last_index) = r.last();
        let term = if pre { r.term + 1 } else { r.term };
        for &p in &r.peers {
            ctx.send(p, Qc::Vote { term, last_index, last_term, pre });
        }
    }

    /// A majority granted: a pre-candidate stands, a candidate leads.
    fn won(&mut self, ctx: &mut Ctx<NodeTimer>, pre: bool) {
        if pre {
            return self.stand(ctx, false);
        }
        let r = self.raft.as_mut().expect("a replica");
        r.role = Role::Leader;
        r.leader = Some(r.me);
        let next = r.log.len() as u64 + 1;
        r.next = r.peers.iter().map(|&p| (p, next)).collect();
        r.matched = r.peers.iter().map(|&p| (p, 0)).collect();
        r.push(Command::Noop);
        r.noop = r.log.len() as u64;
        ctx.metric_add("leader_elections", 1.0);
        ctx.mark("leader elected");
        r.replicate(ctx);
        let (me, term) = (r.me, r.term);
        let ready = r.advance(ctx, &self.layout);
        self.learn_leader(ctx, me, term);
        self.became_ready(ctx, ready);
    }

    /// A vote request from candidate `from`.
    pub(super) fn on_vote(&mut self, ctx: &mut Ctx<NodeTimer>, from: NodeId, term: u32, last: (u64, u32), pre: bool) {
        let min = self.layout.election_min_ns;
        let Some(r) = &mut self.raft else { return };
        let now = ctx.now();
        let up_to_date = (last.1, last.0) >= r.last();
        if pre {
            let leader_alive = r.role == Role::Leader || (r.leader.is_some() && now < r.last_heard.saturating_add(min));
            let granted = r.voter && term > r.term && up_to_date && !leader_alive;
            ctx.send(from, Qc::VoteReply { term, granted, pre });
            return;
        }
        if term > r.term {
            r.follow(term);
        }
        let granted = r.voter && term == r.term && r.voted_for.is_none_or(|v| v == from) && up_to_date;
        if granted {
            r.voted_for = Some(from);
            r.last_heard = now;
        }
        ctx.send(from, Qc::VoteReply { term: r.term, granted, pre });
    }

    /// An answer to this replica's vote request.
    pub(super) fn on_vote_reply(
        &mut self,
        ctx: &mut Ctx<NodeTimer>,
        from: NodeId,
        term: u32,
        granted: bool,
        pre: bool,
    ) {
        let Some(r) = &mut self.raft else { return };
        let asked = if pre { (Role::PreCandidate, r.term + 1) } else { (Role::Candidate, r.term) };
        if !pre && term > r.term {
            r.follow(term);
            return;
        }
        if granted && (r.role, term) == asked {
            r.granted.insert(from);
            if r.granted.len() >= r.majority {
                self.won(ctx, pre);
            }
        }
    }

    /// Entries (or a heartbeat) from leader `from`.
    pub(super) fn on_append(&mut self, ctx: &mut Ctx<NodeTimer>, from: NodeId, a: Append) {
        let Some(r) = &mut self.raft else {
            return self.learn_leader(ctx, from, a.term);
        };
        if a.term < r.term {
            let reply = Qc::AppendReply { term: r.term, ok: false, matched: 0, voter: r.voter };
            return ctx.send(from, reply);
        }
        if a.term > r.term || r.role != Role::Follower {
            r.follow(a.term);
        }
        r.term = a.term;
        r.leader = Some(from);
        r.last_heard = ctx.now();
        let reply = self.follow_entries(ctx, from, a.prev_index, a.prev_term, a.entries, a.commit);
        ctx.send(from, reply);
        self.learn_leader(ctx, from, a.term);
    }

    /// Appends a leader's entries after `prev` if the logs match there.
    fn follow_entries(
        &mut self,
        ctx: &mut Ctx<NodeTimer>,
        from: NodeId,
        prev: u64,
        prev_term: u32,
        entries: Vec<LogEntry>,
        commit: u64,
    ) -> Qc {
        let layout = &self.layout;
        let r = self.raft.as_mut().expect("a replica");
        let len = r.log.len() as u64;
        if prev > len || r.term_at(prev) != prev_term {
            return Qc::AppendReply { term: r.term, ok: false, matched: r.retry_from(prev), voter: r.voter };
        }
        let mut index = prev;
        for e in entries {
            index += 1;
            if index <= r.log.len() as u64 {
                if r.term_at(index) == e.term {
                    continue;
                }
                r.truncate(ctx, index);
            }
            r.log.push(e);
        }
        r.commit = r.commit.max(commit.min(index));
        r.apply(ctx, layout);
        if !r.voter && index >= commit && commit > 0 {
            // Caught up: it votes again (as having voted for this leader).
            r.voter = true;
            r.voted_for = Some(from);
        }
        Qc::AppendReply { term: r.term, ok: true, matched: index, voter: r.voter }
    }

    /// A replica's answer to an append.
    pub(super) fn on_append_reply(
        &mut self,
        ctx: &mut Ctx<NodeTimer>,
        from: NodeId,
        term: u32,
        ok: bool,
        matched: u64,
        _voter: bool,
    ) {
        let Some(r) = &mut self.raft else { return };
        if term > r.term {
            r.follow(term);
            return;
        }
        if r.role != Role::Leader || term < r.term {
            return;
        }
        if ok {
            let m = r.matched.entry(from).or_insert(0);
            *m = (*m).max(matched);
            let n = r.next.entry(from).or_insert(1);
            *n = (*n).max(matched + 1);
            let ready = r.advance(ctx, &self.layout);
            self.became_ready(ctx, ready);
        } else {
            // Sent again with the next append or heartbeat, not at once: a
            // refusal comes back for every append in flight, and answering
            // each would multiply them.
            // The follower holds no more than it says: after a disk loss,
            // less than it once did, so what it matched before no longer
            // counts towards a majority.
            let m = r.matched.entry(from).or_insert(0);
            *m = (*m).min(matched);
            r.next.insert(from, matched + 1);
        }
    }
}
