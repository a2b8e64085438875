//! The cluster's controller: a KRaft controller, one node (with
//! `controllers` > 1, a quorum of them: [`super::voter`] runs these same
//! decisions behind a replicated metadata log). It alone decides
//! who leads each partition and which replicas are in sync, and tells every
//! broker ([`ClusterMsg::Metadata`]).
//!
//! **Liveness.** Each broker heartbeats every `heartbeat_interval_ms`. A
//! broker not heard from for `election_delay_ms` (Kafka's
//! `broker.session.timeout.ms`, 9 s) is **fenced**: it leaves every ISR it
//! is in, except where it is the last member (an ISR is never empty), and
//! each partition it led gets a new leader. The sessions are checked by one
//! timer set for the earliest deadline, not at every event.
//!
//! **Elections** (Kafka's `PartitionChangeBuilder`): **clean**, the first
//! replica in assignment order that is in the ISR and not fenced; else,
//! with `unclean_leader_election`, **unclean**, the first replica not
//! fenced, and the ISR becomes that replica alone (the state is marked
//! `unclean`); else the partition is **offline** (no leader) until a broker
//! that may lead it is unfenced, which then leads it.
//!
//! **Unfencing and restarts.** A fenced broker is unfenced at a heartbeat
//! showing it has applied the metadata up to its registration (Kafka 3.3+
//! compares the broker's metadata offset with that of its registration
//! record, not with the newest offset). A broker partitioned away is
//! therefore unfenced at its first heartbeat after the heal, and learns
//! what it missed from the answer. A heartbeat with a new `incarnation`
//! (the broker restarted) fences the broker, as Kafka 3.7+ does with a
//! re-registration after an unclean shutdown, and registers the new
//! incarnation at the resulting version: the broker is unfenced at its
//! first heartbeat after applying it, one heartbeat interval later.
//! Heartbeats of an older incarnation are ignored. The first incarnation
//! heard from a broker is its first registration, whatever its number.
//!
//! **ISR changes.** Only a partition's leader proposes them
//! ([`ClusterMsg::AlterPartition`]). A proposal is accepted when it comes
//! from the current leader with the current leader epoch and partition
//! epoch, and its ISR holds the leader, only replicas, and no fenced
//! broker (Kafka's `INELIGIBLE_REPLICA`, KIP-841). The answer carries the
//! state in force either way (Kafka answers errors without one).
//!
//! **Metadata.** Every decision that changes anything is one new metadata
//! version, pushed at once to every broker; a leader change bumps the
//! leader epoch, any change the partition epoch. A heartbeat whose version
//! is behind is answered with every partition changed since it. The state
//! is durable (Kafka's metadata log): a controller crash keeps it, and on
//! restart every broker gets a fresh session, as a newly active KRaft
//! controller gives them.
//!
//! **Health** (gauges in the time series, summed over clusters):
//! `offline_partitions`, `under_replicated_partitions` and
//! `under_min_isr_partitions` (partitions with a leader whose ISR lacks a
//! replica, or is below `min_insync_replicas`: as Kafka's leaders report
//! them, offline partitions count in neither), `fenced_brokers`. Metrics:
//! `leader_elections`, `unclean_elections`, `offline_partitions`
//! (partitions that lost their leader with nobody to elect), `isr_shrinks`
//! and `isr_expands` (accepted proposals; an ISR shrunk by fencing counts
//! in neither, as Kafka's leader-side rates), `brokers_fenced`, and the
//! highest counts reached, `offline_partitions_max` and
//! `under_replicated_partitions_max`.
//!
//! Simplifications: this component is a controller alone (`controllers`
//! = 1: no election, no replication delay; a quorum is [`super::voter`]),
//! and its decisions take no time; one version per decision rather than one offset per record;
//! brokers are registered from the scenario, so there is no registration
//! request, only heartbeats; no controlled shutdown; no automatic
//! preferred-leader rebalance (Kafka's `auto.leader.rebalance.enable`
//! moves leadership back every 5 minutes); no eligible leader replicas
//! (KIP-966) in clusters; the `unclean` mark stays until the next election
//! (Kafka's leader clears it, RECOVERED, in its next `AlterPartition`, and
//! may not grow the ISR before); no broker epochs in ISR proposals
//! (KIP-903): fencing a restarted broker keeps its old incarnation out.

mod election;

pub use election::{Beat, ClusterState, Health, Outcome, Verdict};

use super::layout::Layout;
use crate::broker::LogSpec;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, NodeId};
use crate::metrics::Gauges;
use crate::protocol::cluster::{BrokerIx, ClusterMsg, MetadataUpdate, PartState};
use crate::time::{ms_to_ns, Duration, Time};

/// The controller's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerTimer {
    /// Fence the brokers whose session expired.
    SessionCheck,
}

impl Timer for ControllerTimer {
    fn to_word(self) -> u64 {
        1
    }
    fn from_word(word: u64) -> Option<Self> {
        (word == 1).then_some(ControllerTimer::SessionCheck)
    }
}

/// A running controller.
pub struct Controller {
    layout: Layout,
    /// Durable: partition states, fencing, registrations, the version.
    state: ClusterState,
    /// The broker session timeout.
    session: Duration,
    /// Volatile: when each broker was last heard from.
    last_heard: Vec<Time>,
    /// Volatile: whether a session check is pending.
    armed: bool,
}

impl Controller {
    /// The controller of the cluster `spec` describes, laid out as `layout`.
    pub fn new(spec: &LogSpec, layout: Layout) -> Self {
        let n = layout.broker_count();
        let state = ClusterState::new(
            n,
            layout.replicas.clone(),
            spec.min_insync_replicas as usize,
            spec.unclean_leader_election,
        );
        Controller { layout, state, session: ms_to_ns(spec.election_delay_ms.0), last_heard: vec![0; n], armed: false }
    }

    /// The decisions' state.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    fn on_heartbeat(&mut self, ctx: &mut Ctx<ControllerTimer>, b: BrokerIx, incarnation: u32, version: u64) {
        if usize::from(b) >= self.state.brokers() {
            return;
        }
        let beat = self.state.heartbeat(b, incarnation, version);
        if !beat.current {
            return;
        }
        self.last_heard[usize::from(b)] = ctx.now();
        // The answer covers the change too: the others get the push.
        self.apply(ctx, &beat.outcome, Some(b));
        if let Some(answer) = beat.answer {
            ctx.send(self.layout.node_of(b), ClusterMsg::Metadata(Box::new(answer)));
        }
        self.arm(ctx);
    }

    fn on_alter_partition(&mut self, ctx: &mut Ctx<ControllerTimer>, from: NodeId, b: BrokerIx, proposal: &PartState) {
        let Some(verdict) = self.state.alter_partition(b, proposal) else { return };
        self.apply(ctx, &verdict.outcome, None);
        let ack = ClusterMsg::AlterPartitionAck { accepted: verdict.accepted, state: Box::new(verdict.state) };
        ctx.send(from, ack);
    }

    fn on_session_check(&mut self, ctx: &mut Ctx<ControllerTimer>) {
        self.armed = false;
        let now = ctx.now();
        let expired: Vec<BrokerIx> = (0..self.state.brokers() as BrokerIx)
            .filter(|&b| !self.state.is_fenced(b) && self.last_heard[usize::from(b)] + self.session <= now)
            .collect();
        if !expired.is_empty() {
            let outcome = self.state.fence(&expired);
            self.apply(ctx, &outcome, None);
        }
        self.arm(ctx);
    }

    /// Sets the session check for the earliest deadline of an unfenced
    /// broker, unless one is pending (it fires early at worst, and sets
    /// the next).
    fn arm(&mut self, ctx: &mut Ctx<ControllerTimer>) {
        if self.armed {
            return;
        }
        let deadline = (0..self.state.brokers())
            .filter(|&b| !self.state.is_fenced(b as BrokerIx))
            .map(|b| self.last_heard[b] + self.session)
            .min();
        if let Some(at) = deadline {
            self.armed = true;
            ctx.set_background_timer(at.saturating_sub(ctx.now()).max(1), ControllerTimer::SessionCheck);
        }
    }

    /// Pushes `outcome`'s update to every broker (but `skip`, which gets an
    /// answer covering it) and counts what happened.
    fn apply(&mut self, ctx: &mut Ctx<ControllerTimer>, outcome: &Outcome, skip: Option<BrokerIx>) {
        let Some(update) = &outcome.update else { return };
        self.push(ctx, update, skip);
        count(ctx, outcome, &self.state);
    }

    fn push(&self, ctx: &mut Ctx<ControllerTimer>, update: &MetadataUpdate, skip: Option<BrokerIx>) {
        for b in 0..self.state.brokers() as BrokerIx {
            if Some(b) != skip {
                ctx.send(self.layout.node_of(b), ClusterMsg::Metadata(Box::new(update.clone())));
            }
        }
    }

    fn report_health(&self, ctx: &mut Ctx<ControllerTimer>) {
        report_health(ctx, &self.state);
    }
}

/// Counts what a decision did (metrics and marks), `state` being the state
/// after it.
pub(super) fn count<T: Timer>(ctx: &mut Ctx<T>, o: &Outcome, state: &ClusterState) {
    let counts = [
        ("leader_elections", o.elections),
        ("unclean_elections", o.unclean),
        ("offline_partitions", o.offline),
        ("isr_shrinks", o.shrinks),
        ("isr_expands", o.expands),
        ("brokers_fenced", o.fenced.len() as u32),
    ];
    for (name, n) in counts {
        if n > 0 {
            ctx.metric_add(name, f64::from(n));
        }
    }
    report_health(ctx, state);
    if !o.fenced.is_empty() {
        ctx.mark("broker fenced");
    }
    if o.unclean > 0 {
        ctx.mark("unclean leader election");
    } else if o.elections > 0 {
        ctx.mark("leader elected");
    }
    if o.offline > 0 {
        ctx.mark("partition offline");
    }
    if o.shrinks > 0 {
        ctx.mark("isr shrunk");
    }
    if o.expands > 0 {
        ctx.mark("isr expanded");
    }
}

/// The highest health counts reached.
pub(super) fn report_health<T: Timer>(ctx: &mut Ctx<T>, state: &ClusterState) {
    let h = state.health();
    ctx.metric_max("offline_partitions_max", f64::from(h.offline));
    ctx.metric_max("under_replicated_partitions_max", f64::from(h.under_replicated));
}

/// The health gauges of `state`.
pub(super) fn health_gauges(state: &ClusterState, out: &mut Gauges) {
    let h = state.health();
    out.sum("offline_partitions", f64::from(h.offline));
    out.sum("under_replicated_partitions", f64::from(h.under_replicated));
    out.sum("under_min_isr_partitions", f64::from(h.under_min_isr));
    out.sum("fenced_brokers", f64::from(h.fenced));
}

impl Component for Controller {
    type Timer = ControllerTimer;

    fn start(&mut self, ctx: &mut Ctx<ControllerTimer>) {
        // Every broker starts (or, after a controller restart, starts
        // again) with a fresh session.
        let now = ctx.now();
        self.last_heard.iter_mut().for_each(|t| *t = now);
        for name in ["leader_elections", "unclean_elections", "isr_shrinks", "isr_expands", "brokers_fenced"] {
            ctx.metric_add(name, 0.0);
        }
        self.report_health(ctx);
        self.arm(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<ControllerTimer>, from: NodeId, msg: Msg) {
        let Msg::Cluster(m) = msg else { return };
        match m {
            ClusterMsg::BrokerHeartbeat { broker, incarnation, version } => {
                self.on_heartbeat(ctx, broker, incarnation, version);
            }
            ClusterMsg::AlterPartition { broker, state } => self.on_alter_partition(ctx, from, broker, &state),
            // Brokers and clients talk to brokers about the rest.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<ControllerTimer>, timer: ControllerTimer) {
        match timer {
            ControllerTimer::SessionCheck => self.on_session_check(ctx),
        }
    }

    fn crash(&mut self) {
        // The state is in the metadata log; sessions and the timer are not.
        self.armed = false;
    }

    fn gauges(&self, _now: Time, out: &mut Gauges) {
        health_gauges(&self.state, out);
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
