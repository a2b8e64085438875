//! A voter of a cluster's controller quorum (`controllers` > 1): a KRaft
//! controller node that runs the quorum's Raft ([`super::quorum`]) and,
//! while it is the active controller (the quorum's leader), makes the
//! controller's decisions ([`super::controller`] explains the rules).
//!
//! **Decisions as records.** The active controller decides on the state
//! its whole metadata log leads to (its committed state plus the records
//! not yet committed), and appends each decision that changes anything as
//! a record: a fencing, a heartbeat that registers or unfences a broker,
//! an accepted ISR change. Every voter applies each record, once
//! committed, to its own [`ClusterState`]; only the active controller then
//! acts on it: it pushes the change to every broker, counts it, and
//! answers the ISR proposal it came from. Nothing uncommitted reaches a
//! broker: heartbeats are answered from the committed state.
//!
//! **Failover.** A new active controller first commits its `LeaderChange`
//! record, which commits every record before it; then it pushes an empty
//! metadata update to every broker, so that they learn it leads, and gives
//! every broker a fresh session, as today's controller does on restart.
//! A voter that is not active answers a broker with `NotController` and
//! the leader it knows.
//!
//! **Timing** (Kafka's defaults): a follower that has not heard from the
//! leader for `controller.quorum.fetch.timeout.ms` (2 s) stands for
//! election; a candidate that has not won within a random time between one
//! and two `controller.quorum.election.timeout.ms` (1 s) waits a random
//! backoff of up to `controller.quorum.election.backoff.max.ms` (1 s) and
//! stands again; the leader holds a fetch that finds nothing new for up to
//! 500 ms (KRaft's fixed fetch wait).
//!
//! **Health** gauges are reported by the active controller only (none
//! while there is none); `active_controllers` counts the voters that
//! believe they lead (two, while a deposed leader cut off has not heard).
//!
//! Left out: decisions take no time; the voters' log is durable at once
//! (KRaft flushes before it acknowledges); the metrics a deposed leader
//! counted are not taken back (its records were committed, or it would not
//! have counted them).

use super::controller::{count, health_gauges, report_health, ClusterState, Outcome};
use super::layout::Layout;
use super::quorum::{Quorum, ToVoter, VoterIx};
use crate::broker::LogSpec;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, NodeId};
use crate::metrics::Gauges;
use crate::protocol::cluster::{BrokerIx, ClusterMsg, MetadataRecord, MetadataUpdate, PartState};
use crate::time::{ms_to_ns, Duration, Time};
use std::collections::BTreeMap;

/// Kafka's `controller.quorum.fetch.timeout.ms`.
pub const FETCH_TIMEOUT_MS: f64 = 2000.0;
/// Kafka's `controller.quorum.election.timeout.ms`.
pub const ELECTION_TIMEOUT_MS: f64 = 1000.0;
/// Kafka's `controller.quorum.election.backoff.max.ms`.
pub const ELECTION_BACKOFF_MAX_MS: f64 = 1000.0;
/// KRaft's longest wait of a fetch that finds nothing new.
const FETCH_WAIT_MS: f64 = 500.0;

/// A voter's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoterTimer {
    /// Fence the brokers whose session expired (active controller).
    SessionCheck,
    /// The fetch or election timeout number `gen` ran out.
    Election {
        /// Its number: only the newest counts.
        generation: u32,
    },
    /// The held fetch of `voter` may be due.
    FetchWait {
        /// The voter.
        voter: VoterIx,
    },
}

impl Timer for VoterTimer {
    fn to_word(self) -> u64 {
        match self {
            VoterTimer::SessionCheck => 1,
            VoterTimer::Election { generation } => 2 << 56 | u64::from(generation),
            VoterTimer::FetchWait { voter } => 3 << 56 | u64::from(voter),
        }
    }
    fn from_word(word: u64) -> Option<Self> {
        match word >> 56 {
            0 if word == 1 => Some(VoterTimer::SessionCheck),
            2 => Some(VoterTimer::Election { generation: word as u32 }),
            3 => Some(VoterTimer::FetchWait { voter: word as u8 }),
            _ => None,
        }
    }
}

/// A held fetch: its epoch, end, last epoch, and until when.
type Held = (u32, u64, u32, Time);

/// A running controller voter.
pub struct Voter {
    layout: Layout,
    me: VoterIx,
    quorum: Quorum,
    /// The committed records applied, in order (durable: the log is).
    state: ClusterState,
    applied: u64,
    /// Active controller only: the state with every record of its log.
    ahead: Option<ClusterState>,
    session: Duration,
    last_heard: Vec<Time>,
    armed: bool,
    generation: u32,
    /// Between a lost election and the next.
    backing_off: bool,
    held: BTreeMap<VoterIx, Held>,
    /// Per voter, the commit offset last sent it.
    sent_commit: Vec<u64>,
    /// Active controller: when each voter last fetched.
    last_fetch: Vec<Time>,
}

impl Voter {
    /// Voter `me` of the cluster `spec` describes (voter 0 leads at start).
    pub fn new(spec: &LogSpec, layout: Layout, me: VoterIx) -> Self {
        let n = layout.broker_count();
        let voters = layout.voters.len();
        let state = ClusterState::new(
            n,
            layout.replicas.clone(),
            spec.min_insync_replicas as usize,
            spec.unclean_leader_election,
        );
        let quorum = Quorum::new(me, voters, 0);
        let ahead = quorum.is_leader().then(|| state.clone());
        Voter {
            layout,
            me,
            applied: quorum.commit(),
            quorum,
            state,
            ahead,
            session: ms_to_ns(spec.election_delay_ms.0),
            last_heard: vec![0; n],
            armed: false,
            generation: 0,
            backing_off: false,
            held: BTreeMap::new(),
            sent_commit: vec![0; voters],
            last_fetch: vec![0; voters],
        }
    }

    /// The committed state.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    fn send_voters(&self, ctx: &mut Ctx<VoterTimer>, msgs: Vec<ToVoter>) {
        for (v, m) in msgs {
            ctx.send(self.layout.voters[usize::from(v)], m);
        }
    }

    /// Sets the fetch timeout (as a follower) or election timeout (as a
    /// candidate) anew.
    fn reset_election(&mut self, ctx: &mut Ctx<VoterTimer>) {
        self.generation = self.generation.wrapping_add(1);
        let ms = if self.quorum.is_candidate() {
            ELECTION_TIMEOUT_MS * (1.0 + crate::rng::unit(ctx.rng()))
        } else {
            FETCH_TIMEOUT_MS
        };
        ctx.set_background_timer(ms_to_ns(ms).max(1), VoterTimer::Election { generation: self.generation });
    }

    fn on_election_timer(&mut self, ctx: &mut Ctx<VoterTimer>, generation: u32) {
        if generation != self.generation {
            return;
        }
        if self.quorum.is_leader() {
            return self.check_quorum(ctx);
        }
        if self.quorum.is_candidate() && !self.backing_off {
            self.backing_off = true;
            self.generation = self.generation.wrapping_add(1);
            let ms = ELECTION_BACKOFF_MAX_MS * crate::rng::unit(ctx.rng());
            ctx.set_background_timer(ms_to_ns(ms).max(1), VoterTimer::Election { generation: self.generation });
            return;
        }
        self.backing_off = false;
        let votes = self.quorum.stand();
        ctx.metric_add("controller_elections_started", 1.0);
        ctx.mark("controller election started");
        self.send_voters(ctx, votes);
        self.after_quorum(ctx, false);
        self.reset_election(ctx);
    }

    /// The active controller resigns when fewer than a majority of the
    /// voters (itself included) fetched from it within the fetch timeout
    /// (KAFKA-15489), so that a leader cut off from the others stops
    /// answering brokers.
    fn check_quorum(&mut self, ctx: &mut Ctx<VoterTimer>) {
        let since = ctx.now().saturating_sub(ms_to_ns(FETCH_TIMEOUT_MS));
        let me = usize::from(self.me);
        let fetched = self.last_fetch.iter().enumerate().filter(|&(v, &t)| v == me || t >= since).count();
        if fetched <= self.layout.voters.len() / 2 {
            self.quorum.resign();
            ctx.mark("controller resigned");
            self.after_quorum(ctx, true);
            return;
        }
        self.reset_election(ctx);
    }

    /// After any change to the quorum: takes up or leaves leadership,
    /// applies what is newly committed, answers held fetches.
    fn after_quorum(&mut self, ctx: &mut Ctx<VoterTimer>, was_leader: bool) {
        let leads = self.quorum.is_leader();
        if leads && !was_leader {
            self.take_lead(ctx);
        } else if !leads && was_leader {
            self.ahead = None;
            self.held.clear();
            self.reset_election(ctx);
        }
        self.apply_committed(ctx);
        if leads {
            self.answer_held(ctx);
        }
    }

    fn take_lead(&mut self, ctx: &mut Ctx<VoterTimer>) {
        let mut ahead = self.state.clone();
        for e in &self.quorum.log()[self.applied as usize..] {
            replay(&mut ahead, &e.record);
        }
        self.ahead = Some(ahead);
        self.backing_off = false;
        self.sent_commit.iter_mut().for_each(|c| *c = 0);
        let now = ctx.now();
        self.last_heard.iter_mut().for_each(|t| *t = now);
        self.last_fetch.iter_mut().for_each(|t| *t = now);
        self.reset_election(ctx);
        ctx.metric_add("controller_failovers", 1.0);
        ctx.mark("controller elected");
        self.armed = false;
        self.arm(ctx);
    }

    /// Applies the records committed since the last call; the active
    /// controller acts on each.
    fn apply_committed(&mut self, ctx: &mut Ctx<VoterTimer>) {
        while self.applied < self.quorum.commit() {
            let entry = self.quorum.log()[self.applied as usize].clone();
            self.applied += 1;
            let outcome = replay(&mut self.state, &entry.record);
            if !self.quorum.is_leader() {
                continue;
            }
            match entry.record {
                MetadataRecord::LeaderChange if entry.epoch == self.quorum.epoch() => self.hello(ctx),
                MetadataRecord::AlterPartition { broker, state } => {
                    let state = Box::new(self.state.part(state.partition).clone());
                    ctx.send(self.layout.node_of(broker), ClusterMsg::AlterPartitionAck { accepted: true, state });
                }
                _ => {}
            }
            if let Some(update) = &outcome.update {
                self.push(ctx, update);
                count(ctx, &outcome, &self.state);
            }
        }
    }

    /// Tells every broker, by an empty update, that this voter leads.
    fn hello(&self, ctx: &mut Ctx<VoterTimer>) {
        let v = self.state.version();
        let update = MetadataUpdate { since: v, version: v, parts: Vec::new(), fenced: self.state.fenced_list() };
        self.push(ctx, &update);
        report_health(ctx, &self.state);
    }

    fn push(&self, ctx: &mut Ctx<VoterTimer>, update: &MetadataUpdate) {
        for b in 0..self.state.brokers() as BrokerIx {
            ctx.send(self.layout.node_of(b), ClusterMsg::Metadata(Box::new(update.clone())));
        }
    }

    /// Appends `record` (as the active controller) and commits what it can.
    fn append(&mut self, ctx: &mut Ctx<VoterTimer>, record: MetadataRecord) {
        self.quorum.append(record);
        self.after_quorum(ctx, true);
    }

    fn not_controller(&self, ctx: &mut Ctx<VoterTimer>, to: NodeId) {
        let leader = self.quorum.leader().map(|l| self.layout.voters[usize::from(l)]);
        ctx.send(to, ClusterMsg::NotController { leader, epoch: self.quorum.epoch() });
    }

    fn on_heartbeat(&mut self, ctx: &mut Ctx<VoterTimer>, from: NodeId, b: BrokerIx, incarnation: u32, version: u64) {
        if usize::from(b) >= self.state.brokers() {
            return;
        }
        let Some(ahead) = self.ahead.as_mut() else { return self.not_controller(ctx, from) };
        let known = ahead.knows(b);
        let beat = ahead.heartbeat(b, incarnation, version);
        if !beat.current {
            return;
        }
        self.last_heard[usize::from(b)] = ctx.now();
        if beat.outcome.update.is_some() || !known {
            self.append(ctx, MetadataRecord::Heartbeat { broker: b, incarnation, version });
        }
        // Always answered (from what is committed), so that a broker
        // notices a controller that stopped answering.
        let v = self.state.version();
        let answer = if version < v {
            self.state.since(version)
        } else {
            MetadataUpdate { since: v, version: v, parts: Vec::new(), fenced: self.state.fenced_list() }
        };
        ctx.send(from, ClusterMsg::Metadata(Box::new(answer)));
        self.arm(ctx);
    }

    fn on_alter_partition(&mut self, ctx: &mut Ctx<VoterTimer>, from: NodeId, b: BrokerIx, proposal: &PartState) {
        let Some(ahead) = self.ahead.as_mut() else { return self.not_controller(ctx, from) };
        let Some(verdict) = ahead.alter_partition(b, proposal) else { return };
        if verdict.accepted && verdict.outcome.update.is_some() {
            // Answered once committed.
            self.append(ctx, MetadataRecord::AlterPartition { broker: b, state: proposal.clone() });
            return;
        }
        let state = Box::new(self.state.part(proposal.partition).clone());
        ctx.send(from, ClusterMsg::AlterPartitionAck { accepted: verdict.accepted, state });
    }

    fn on_session_check(&mut self, ctx: &mut Ctx<VoterTimer>) {
        self.armed = false;
        let Some(ahead) = self.ahead.as_mut() else { return };
        let now = ctx.now();
        let expired: Vec<BrokerIx> = (0..ahead.brokers() as BrokerIx)
            .filter(|&b| !ahead.is_fenced(b) && self.last_heard[usize::from(b)] + self.session <= now)
            .collect();
        if !expired.is_empty() && ahead.fence(&expired).update.is_some() {
            self.append(ctx, MetadataRecord::Fence(expired));
        }
        self.arm(ctx);
    }

    /// Sets the session check for the earliest deadline of an unfenced
    /// broker, unless one is pending.
    fn arm(&mut self, ctx: &mut Ctx<VoterTimer>) {
        let Some(ahead) = &self.ahead else { return };
        if self.armed {
            return;
        }
        let deadline = (0..ahead.brokers())
            .filter(|&b| !ahead.is_fenced(b as BrokerIx))
            .map(|b| self.last_heard[b] + self.session)
            .min();
        if let Some(at) = deadline {
            self.armed = true;
            ctx.set_background_timer(at.saturating_sub(ctx.now()).max(1), VoterTimer::SessionCheck);
        }
    }

    fn fetch(&mut self, ctx: &mut Ctx<VoterTimer>) {
        if let Some(f) = self.quorum.fetch() {
            self.send_voters(ctx, vec![f]);
        }
    }

    /// A follower's fetch, at the leader: answered now if there is news
    /// for it, else held for up to the fetch wait.
    fn on_fetch(&mut self, ctx: &mut Ctx<VoterTimer>, voter: VoterIx, held: Held) {
        let was = self.quorum.is_leader();
        let (epoch, end, last_epoch, until) = held;
        // A new fetch replaces the one held.
        self.held.remove(&voter);
        if let Some(t) = self.last_fetch.get_mut(usize::from(voter)) {
            *t = ctx.now();
        }
        let answer = self.quorum.on_fetch(epoch, voter, end, last_epoch);
        self.after_quorum(ctx, was);
        let Some((data, idle)) = answer else { return };
        let vi = usize::from(voter);
        if idle && data.commit <= self.sent_commit[vi] && ctx.now() < until {
            self.held.insert(voter, held);
            ctx.set_background_timer(until - ctx.now(), VoterTimer::FetchWait { voter });
            return;
        }
        self.held.remove(&voter);
        self.sent_commit[vi] = data.commit;
        ctx.send(self.layout.voters[vi], ClusterMsg::QuorumData(Box::new(data)));
    }

    fn answer_held(&mut self, ctx: &mut Ctx<VoterTimer>) {
        let held: Vec<(VoterIx, Held)> = self.held.iter().map(|(&v, &h)| (v, h)).collect();
        for (v, h) in held {
            let (epoch, end, last_epoch, _) = h;
            let Some((data, idle)) = self.quorum.on_fetch(epoch, v, end, last_epoch) else { continue };
            if idle && data.commit <= self.sent_commit[usize::from(v)] {
                continue;
            }
            self.held.remove(&v);
            self.sent_commit[usize::from(v)] = data.commit;
            ctx.send(self.layout.voters[usize::from(v)], ClusterMsg::QuorumData(Box::new(data)));
        }
    }

    fn on_quorum(&mut self, ctx: &mut Ctx<VoterTimer>, msg: ClusterMsg) {
        let was = self.quorum.is_leader();
        let (epoch, leader) = (self.quorum.epoch(), self.quorum.leader());
        match msg {
            ClusterMsg::QuorumVote { epoch, candidate, last_epoch, end } => {
                let answer = self.quorum.on_vote(epoch, candidate, last_epoch, end);
                let granted = matches!(answer.1, ClusterMsg::QuorumVoteAnswer { granted: true, .. });
                self.send_voters(ctx, vec![answer]);
                if granted {
                    self.reset_election(ctx);
                }
            }
            ClusterMsg::QuorumVoteAnswer { epoch, voter, granted, leader } => {
                let begin = self.quorum.on_vote_answer(epoch, voter, granted, leader);
                self.send_voters(ctx, begin);
            }
            ClusterMsg::BeginQuorum { epoch, leader } => self.quorum.on_begin(epoch, leader),
            ClusterMsg::QuorumFetch { epoch, voter, end, last_epoch } => {
                let until = ctx.now() + ms_to_ns(FETCH_WAIT_MS);
                return self.on_fetch(ctx, voter, (epoch, end, last_epoch, until));
            }
            ClusterMsg::QuorumData(d) => {
                if self.quorum.on_data(&d) {
                    self.reset_election(ctx);
                    self.fetch(ctx);
                }
                return self.after_quorum(ctx, was);
            }
            _ => return,
        }
        let followed = self.quorum.leader() != leader || self.quorum.epoch() != epoch;
        if followed && !self.quorum.is_leader() && !self.quorum.is_candidate() && self.quorum.leader().is_some() {
            self.reset_election(ctx);
            self.fetch(ctx);
        }
        self.after_quorum(ctx, was);
    }

    fn on_held_due(&mut self, ctx: &mut Ctx<VoterTimer>, voter: VoterIx) {
        let Some(&(epoch, end, last_epoch, until)) = self.held.get(&voter) else { return };
        if ctx.now() < until {
            return;
        }
        self.held.remove(&voter);
        if let Some((data, _)) = self.quorum.on_fetch(epoch, voter, end, last_epoch) {
            self.sent_commit[usize::from(voter)] = data.commit;
            ctx.send(self.layout.voters[usize::from(voter)], ClusterMsg::QuorumData(Box::new(data)));
        }
    }
}

/// Applies one record to `state`, as every voter does.
pub(super) fn replay(state: &mut ClusterState, record: &MetadataRecord) -> Outcome {
    match record {
        MetadataRecord::LeaderChange => Outcome::default(),
        MetadataRecord::Fence(brokers) => state.fence(brokers),
        MetadataRecord::Heartbeat { broker, incarnation, version } => {
            state.heartbeat(*broker, *incarnation, *version).outcome
        }
        MetadataRecord::AlterPartition { broker, state: p } => {
            state.alter_partition(*broker, p).map(|v| v.outcome).unwrap_or_default()
        }
    }
}

impl Component for Voter {
    type Timer = VoterTimer;

    fn start(&mut self, ctx: &mut Ctx<VoterTimer>) {
        if self.quorum.is_leader() {
            let now = ctx.now();
            self.last_heard.iter_mut().for_each(|t| *t = now);
            let names = ["leader_elections", "unclean_elections", "isr_shrinks", "isr_expands", "brokers_fenced"];
            for name in names.into_iter().chain(["controller_failovers"]) {
                ctx.metric_add(name, 0.0);
            }
            report_health(ctx, &self.state);
            self.last_fetch.iter_mut().for_each(|t| *t = now);
            self.reset_election(ctx);
            self.arm(ctx);
        } else {
            self.reset_election(ctx);
            self.fetch(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<VoterTimer>, from: NodeId, msg: Msg) {
        let Msg::Cluster(m) = msg else { return };
        match m {
            ClusterMsg::BrokerHeartbeat { broker, incarnation, version } => {
                self.on_heartbeat(ctx, from, broker, incarnation, version);
            }
            ClusterMsg::AlterPartition { broker, state } => self.on_alter_partition(ctx, from, broker, &state),
            m => self.on_quorum(ctx, m),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<VoterTimer>, timer: VoterTimer) {
        match timer {
            VoterTimer::SessionCheck => self.on_session_check(ctx),
            VoterTimer::Election { generation } => self.on_election_timer(ctx, generation),
            VoterTimer::FetchWait { voter } => self.on_held_due(ctx, voter),
        }
    }

    fn crash(&mut self) {
        // The log, the epoch and the vote are on disk (and the state they
        // make); the role, sessions, held fetches and timers are not.
        self.quorum.crash();
        self.ahead = None;
        self.held.clear();
        self.armed = false;
        self.backing_off = false;
        self.generation = self.generation.wrapping_add(1);
    }

    fn gauges(&self, _now: Time, out: &mut Gauges) {
        let leads = self.ahead.is_some();
        out.sum("active_controllers", f64::from(u8::from(leads)));
        if leads {
            health_gauges(&self.state, out);
        }
    }
}
