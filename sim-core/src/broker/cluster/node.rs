//! A broker of a log cluster (Kafka in KRaft mode): a network node hosting
//! replicas of some partitions ([`super::replica`]), leading some
//! ([`super::leader`]) and following others ([`super::follower`]).
//!
//! **Its view.** A broker acts only on what it knows: the partition states
//! the controller sent it ([`ClusterMsg::Metadata`], and the answers to its
//! ISR proposals). Every broker starts from the state the layout implies
//! (each partition led by its preferred replica, epoch 0, every replica in
//! sync). A leader cut off from the controller keeps leading on its view
//! (a stale leader): it accepts `acks = 1` writes, which are cut off its
//! log when it comes back and follows the new leader. A state is applied
//! when its partition epoch or leader epoch is newer than the one held.
//! Becoming leader starts its leader epoch at its log end; ceasing to lead
//! refuses the acks still waiting, and points the parked consumers'
//! fetches at the new leader.
//!
//! **Liveness.** It heartbeats to the controller every
//! `heartbeat_interval_ms` with its incarnation (its restart count) and
//! the metadata version it has seen.
//!
//! **Crashes.** The logs (and the metadata view, as KRaft brokers keep
//! the metadata log on disk) survive a process crash; waiting acks, parked
//! fetches, the followers' positions and the outstanding fetches do not. A
//! restarted broker heartbeats with a new incarnation from version 0 and
//! serves clients again once the controller's first metadata reaches it
//! (or after three heartbeats with none: it was told nothing new), as a
//! Kafka broker waits to catch up with the metadata log before it unfences.
//!
//! **Clients.** A produce or a consumer's fetch to a broker that does not
//! lead the partition (as far as it knows) is refused with its view of the
//! topic's leaders (`ClusterMsg::Leaders`, KIP-951's hint). A
//! `MetadataRequest` is answered from its view. Group messages go to
//! [`ClusterBroker::on_group_message`]: the broker that leads a group's
//! `__consumer_offsets` partition (as its view says) coordinates the group
//! with the [`Coordinator`] the single-node broker runs, keeping commits
//! and group metadata as records of that partition; the others answer
//! `NOT_COORDINATOR` (see [`super::group_log`]).
//!
//! Transactions: see [`super::txn`]. Groups: see [`super::group_log`].
//!
//! Left out: controlled shutdown, rack-aware follower fetching (KIP-392),
//! quotas.

use super::group_log::GroupLogs;
use super::layout::Layout;
use super::leader::{Batch, Lead, Read};
use super::replica::Replica;
use crate::broker::log::elr::Rules;
use crate::broker::{CoordTimer, Coordinator, GroupInfo, LogSpec};
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, NodeId};
use crate::protocol::cluster::{BrokerIx, ClusterMsg, FetchPart, MetadataUpdate, PartState};
use crate::protocol::{LogMsg, ProduceError};
use crate::time::{ms_to_ns, Duration, Time};
use std::collections::BTreeMap;

/// A cluster broker's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerTimer {
    /// Heartbeat to the controller.
    Heartbeat,
    /// Check the ISRs of the partitions led (every half of `replica_lag_max_ms`).
    IsrCheck,
    /// The fetch number `seq` sent to `leader` may have gone unanswered.
    FetchTimeout {
        /// The leader broker.
        leader: BrokerIx,
        /// The fetch's number.
        seq: u32,
    },
    /// The parked fetch of `follower` may be due.
    FetchWait {
        /// The follower broker.
        follower: BrokerIx,
    },
    /// A timer of the group coordinator it embeds.
    Coord(CoordTimer),
    /// The transaction coordinator's retries and timeouts.
    Txn,
    /// Offset commits waiting for their record may have timed out.
    CommitTimeout,
}

impl From<CoordTimer> for BrokerTimer {
    fn from(t: CoordTimer) -> Self {
        BrokerTimer::Coord(t)
    }
}

impl Timer for BrokerTimer {
    fn to_word(self) -> u64 {
        let (kind, broker, seq) = match self {
            BrokerTimer::Heartbeat => (1, 0, 0),
            BrokerTimer::IsrCheck => (2, 0, 0),
            BrokerTimer::FetchTimeout { leader, seq } => (3, leader, seq),
            BrokerTimer::FetchWait { follower } => (4, follower, 0),
            BrokerTimer::Txn => (6, 0, 0),
            BrokerTimer::CommitTimeout => (12, 0, 0),
            // The coordinator's bits fit below the top byte.
            BrokerTimer::Coord(c) => return 5 << 56 | c.to_bits(),
        };
        kind << 56 | u64::from(broker) << 32 | u64::from(seq)
    }
    fn from_word(word: u64) -> Option<Self> {
        if word >> 56 == 5 {
            return CoordTimer::from_bits(word & ((1 << 56) - 1)).map(BrokerTimer::Coord);
        }
        let broker = ((word >> 32) & 0xffff) as BrokerIx;
        let seq = word as u32;
        Some(match word >> 56 {
            1 if word == 1 << 56 => BrokerTimer::Heartbeat,
            2 if word == 2 << 56 => BrokerTimer::IsrCheck,
            3 => BrokerTimer::FetchTimeout { leader: broker, seq },
            4 if seq == 0 => BrokerTimer::FetchWait { follower: broker },
            6 if word == 6 << 56 => BrokerTimer::Txn,
            12 if word == 12 << 56 => BrokerTimer::CommitTimeout,
            _ => return None,
        })
    }
}

/// The settings a broker runs by.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub min_isr: usize,
    pub strict_min_isr: bool,
    pub lag_max_ns: Duration,
    pub heartbeat_ns: Duration,
    pub wait_max_ns: Duration,
    pub socket_timeout_ns: Duration,
}

impl Config {
    fn of(spec: &LogSpec) -> Self {
        let ms = |m: Option<crate::units::Millis>, default: f64| ms_to_ns(m.map_or(default, |m| m.0)).max(1);
        Config {
            min_isr: spec.min_insync_replicas.max(1) as usize,
            strict_min_isr: Rules::of(spec).unwrap_or_default().strict_min_isr,
            lag_max_ns: ms_to_ns(spec.replica_lag_max_ms.0).max(2),
            heartbeat_ns: ms(spec.heartbeat_interval_ms, 2000.0),
            wait_max_ns: ms(spec.replica_fetch_wait_max_ms, 500.0),
            socket_timeout_ns: ms(spec.replica_socket_timeout_ms, 30_000.0),
        }
    }
}

/// How many heartbeats a restarted broker waits for metadata before it
/// serves clients on the view it kept.
const READY_AFTER_HEARTBEATS: u32 = 3;

/// A running cluster broker.
pub struct ClusterBroker {
    pub(super) layout: Layout,
    pub(super) me: BrokerIx,
    /// Its restart count.
    pub(super) incarnation: u32,
    /// The newest metadata version applied (0 after a restart).
    pub(super) version: u64,
    /// Serves clients (false after a restart until it hears from the controller).
    pub(super) ready: bool,
    heartbeats_unready: u32,
    /// The controller answered since the last heartbeat (see [`super::active`]).
    pub(super) controller_answered: bool,
    /// It turned to another controller voter since the last heartbeat.
    pub(super) redirected: bool,
    /// Its view of every partition's state.
    pub(super) views: Vec<PartState>,
    /// The brokers the controller last said are fenced.
    pub(super) fenced: Vec<BrokerIx>,
    /// The replicas it hosts, by partition (none where it hosts none).
    pub(super) replicas: Vec<Option<Replica>>,
    pub(super) groups: Vec<GroupInfo>,
    /// The coordinator of the groups this broker coordinates.
    pub(super) coordinator: Coordinator,
    /// Transactions: as their coordinator, as leader, as reader.
    pub(super) txn: super::txn::BrokerTxns,
    /// Its offsets partitions' records, and the groups it coordinates.
    pub(super) group_logs: GroupLogs,
    pub(super) cfg: Config,
    /// Follower side: per leader broker, the hosted partitions it leads
    /// in this broker's view.
    pub(super) follows: Vec<Vec<u32>>,
    /// Follower side: the number of the fetch outstanding at each leader.
    pub(super) fetching: BTreeMap<BrokerIx, u32>,
    pub(super) fetch_seq: u32,
    /// Leader side: each follower's parked fetch, and until when.
    pub(super) parked_fetches: BTreeMap<BrokerIx, (Box<[FetchPart]>, Time, u32)>,
}

impl ClusterBroker {
    /// Broker `me` of the cluster `spec` describes, laid out as `layout`,
    /// coordinating (some of) `groups`.
    pub fn new(spec: &LogSpec, layout: Layout, me: BrokerIx, groups: Vec<GroupInfo>) -> Self {
        let layout = layout.with_groups(groups.iter().map(|g| g.name.as_str()));
        let views = initial_views(&layout);
        let group_logs = GroupLogs::new(&layout, &groups);
        let partitions: Vec<usize> = layout.topics.iter().map(|t| t.partitions as usize).collect();
        let replicas = layout.replicas.iter().map(|rs| rs.contains(&me).then(Replica::default)).collect();
        let mut b = ClusterBroker {
            follows: vec![Vec::new(); layout.broker_count()],
            layout,
            me,
            incarnation: 0,
            version: 0,
            ready: true,
            heartbeats_unready: 0,
            controller_answered: true,
            redirected: false,
            views,
            fenced: Vec::new(),
            replicas,
            coordinator: Coordinator::new(spec, groups.clone(), &partitions),
            group_logs,
            groups,
            cfg: Config::of(spec),
            fetching: BTreeMap::new(),
            fetch_seq: 0,
            parked_fetches: BTreeMap::new(),
            txn: Default::default(),
        };
        b.index_follows();
        b
    }

    /// Whether this broker leads `pi` and serves clients now.
    pub(super) fn leads(&self, pi: u32) -> bool {
        let pi = pi as usize;
        self.ready
            && self.views.get(pi).is_some_and(|v| v.leader == Some(self.me))
            && self.replicas[pi].as_ref().is_some_and(|r| r.lead.is_some())
    }

    pub(super) fn replica(&self, pi: u32) -> &Replica {
        self.replicas[pi as usize].as_ref().expect("a hosted replica")
    }

    pub(super) fn replica_mut(&mut self, pi: u32) -> &mut Replica {
        self.replicas[pi as usize].as_mut().expect("a hosted replica")
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<BrokerTimer>) {
        self.pick_controller();
        let (broker, incarnation, version) = (self.me, self.incarnation, self.version);
        ctx.send(self.layout.controller, ClusterMsg::BrokerHeartbeat { broker, incarnation, version });
        ctx.set_background_timer(self.cfg.heartbeat_ns, BrokerTimer::Heartbeat);
        if !self.ready {
            self.heartbeats_unready += 1;
            if self.heartbeats_unready > READY_AFTER_HEARTBEATS {
                self.become_ready(ctx);
            }
        }
    }

    fn become_ready(&mut self, ctx: &mut Ctx<BrokerTimer>) {
        self.ready = true;
        for pi in 0..self.views.len() as u32 {
            if self.leads_on_view(pi) {
                self.take_lead(ctx, pi);
            }
        }
        self.fetch_all(ctx);
    }

    /// Its view says it leads `pi`, which it hosts.
    fn leads_on_view(&self, pi: u32) -> bool {
        self.views[pi as usize].leader == Some(self.me) && self.replicas[pi as usize].is_some()
    }

    // ---- metadata ----

    fn on_metadata(&mut self, ctx: &mut Ctx<BrokerTimer>, u: MetadataUpdate) {
        // Partition states are whole, so each applies on its own; the
        // version is the update's only if it builds on what this broker
        // has (a push after one it missed does not make it complete).
        if u.since <= self.version {
            self.version = self.version.max(u.version);
        }
        self.fenced = u.fenced;
        for state in u.parts {
            self.apply_state(ctx, state);
        }
        if !self.ready {
            self.become_ready(ctx);
        }
    }

    /// Applies a partition's state if it is newer than the one held.
    pub(super) fn apply_state(&mut self, ctx: &mut Ctx<BrokerTimer>, state: PartState) {
        let pi = state.partition;
        let Some(old) = self.views.get(pi as usize) else { return };
        if state.partition_epoch <= old.partition_epoch && state.leader_epoch <= old.leader_epoch {
            return;
        }
        let new_leadership = state.leader_epoch != old.leader_epoch || state.leader != old.leader;
        let was = self.leads(pi);
        self.views[pi as usize] = state;
        if new_leadership {
            self.index_follows();
        }
        if self.replicas[pi as usize].is_none() {
            return;
        }
        if let Some(lead) = self.replica_mut(pi).lead.as_mut() {
            lead.pending = None; // the state moved on: a proposal is void
        }
        let leads = self.ready && self.leads_on_view(pi);
        if was && (!leads || new_leadership) {
            self.resign(ctx, pi);
        }
        if leads && (new_leadership || !was) {
            self.take_lead(ctx, pi);
        } else if leads {
            self.advance_hw(ctx, pi);
        }
        if !leads {
            if let Some(l) = self.views[pi as usize].leader {
                self.fetch_from(ctx, l);
            }
        }
    }

    /// Becomes leader of `pi`: its epoch starts at this log's end.
    fn take_lead(&mut self, ctx: &mut Ctx<BrokerTimer>, pi: u32) {
        let (me, now) = (self.me, ctx.now());
        let epoch = self.views[pi as usize].leader_epoch;
        let replicas = self.layout.replicas[pi as usize].clone();
        let r = self.replica_mut(pi);
        r.epochs.record(epoch, r.end());
        r.lead = Some(Lead::new(&replicas, me, r.end(), now));
        self.advance_hw(ctx, pi);
        self.group_log_led(ctx, pi);
    }

    /// Stops leading `pi`: the waiting acks are refused, the parked
    /// consumers are told to look for the leader.
    fn resign(&mut self, ctx: &mut Ctx<BrokerTimer>, pi: u32) {
        let Some(lead) = self.replica_mut(pi).lead.take() else { return };
        self.group_log_resigned(ctx, pi);
        for w in lead.waiters.into_values().flatten() {
            let error = ProduceError::NotLeader;
            ctx.send(w.producer, LogMsg::ProduceAck { ids: w.ids, accepted: false, attempt: w.attempt, error });
        }
        let (topic, _) = self.layout.local(pi);
        for f in lead.parked {
            let (partition, offset, recs) = (f.partition, f.offset, Vec::new());
            let error = crate::protocol::FetchError::NotLeader;
            ctx.send(f.member, LogMsg::Records { partition, offset, recs, error, epoch: 0 });
            self.send_leaders(ctx, f.member, topic);
        }
        // Parked followers' fetches hear that this broker leads no more.
        self.wake_followers(ctx, pi);
    }

    // ---- groups ----

    /// A group message (heartbeat, join, sync, leave, commit,
    /// transactions) from `from`: see [`super::group_log`].
    pub fn on_group_message(&mut self, ctx: &mut Ctx<BrokerTimer>, from: NodeId, msg: LogMsg) {
        let Some(group) = group_of(&msg) else { return };
        self.group_request(ctx, from, group, msg);
    }

    fn on_cluster(&mut self, ctx: &mut Ctx<BrokerTimer>, from: NodeId, msg: ClusterMsg) {
        match msg {
            ClusterMsg::Metadata(u) if self.heard_controller(from) => self.on_metadata(ctx, *u),
            ClusterMsg::AlterPartitionAck { state, .. } if self.heard_controller(from) => {
                let pi = state.partition;
                if let Some(lead) = self.replicas.get_mut(pi as usize).and_then(|r| r.as_mut()?.lead.as_mut()) {
                    lead.pending = None;
                }
                self.apply_state(ctx, *state);
                if self.leads(pi) {
                    self.advance_hw(ctx, pi);
                }
            }
            ClusterMsg::ReplicaFetch { broker, seq, parts } => self.on_replica_fetch(ctx, broker, seq, parts, true),
            ClusterMsg::ReplicaData { broker, seq, parts } => self.on_replica_data(ctx, broker, seq, parts),
            ClusterMsg::MetadataRequest { topic } => self.send_leaders(ctx, from, topic),
            ClusterMsg::FindCoordinator { group } => {
                let node = self.coordinator_node(group);
                ctx.send(from, ClusterMsg::Coordinator { group, node });
            }
            ClusterMsg::NotController { leader, .. } => self.on_not_controller(ctx, from, leader),
            m => self.on_txn_cluster(ctx, from, m),
        }
    }

    fn on_log(&mut self, ctx: &mut Ctx<BrokerTimer>, from: NodeId, msg: LogMsg) {
        match msg {
            LogMsg::Produce { recs, acks, attempt, epoch, seq, topic, partition } => {
                match self.layout.global(topic, partition) {
                    Some(pi) if !recs.is_empty() => {
                        self.produce(ctx, from, topic, pi, Batch { recs, acks, attempt, epoch, seq });
                    }
                    _ => ctx.error("unknown-partition"),
                }
            }
            LogMsg::Fetch { group, partition, offset, max, max_bytes, epoch, .. } => {
                let Some(g) = self.groups.get(usize::from(group)) else { return };
                let topic = g.topic as u16;
                let committed = self.read_committed(group);
                let read = Read { member: from, group, partition, offset, max, max_bytes, epoch, committed };
                self.consumer_fetch(ctx, topic, read);
            }
            m @ (LogMsg::TxnWrite { .. } | LogMsg::TxnCommit(_)) => self.on_txn_client(ctx, from, m),
            m => self.on_group_message(ctx, from, m),
        }
    }
}

/// The group a group message is about.
fn group_of(msg: &LogMsg) -> Option<u16> {
    match msg {
        LogMsg::Heartbeat { group, .. }
        | LogMsg::JoinGroup { group, .. }
        | LogMsg::SyncGroup { group, .. }
        | LogMsg::LeaveGroup { group, .. }
        | LogMsg::Commit { group, .. }
        | LogMsg::TxnWrite { group, .. } => Some(*group),
        LogMsg::TxnCommit(t) => Some(t.group),
        _ => None,
    }
}

/// Every partition led by its preferred replica, epoch 0, all in sync.
pub(super) fn initial_views(layout: &Layout) -> Vec<PartState> {
    layout.replicas.iter().enumerate().map(|(pi, rs)| PartState::initial(pi as u32, rs)).collect()
}

impl Component for ClusterBroker {
    type Timer = BrokerTimer;

    fn start(&mut self, ctx: &mut Ctx<BrokerTimer>) {
        self.heartbeat(ctx);
        ctx.set_background_timer(self.cfg.lag_max_ns / 2, BrokerTimer::IsrCheck);
        if self.ready {
            self.become_ready(ctx);
        }
        self.arm_txn(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<BrokerTimer>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Cluster(m) => self.on_cluster(ctx, from, m),
            Msg::Log(m) => self.on_log(ctx, from, m),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<BrokerTimer>, timer: BrokerTimer) {
        match timer {
            BrokerTimer::Heartbeat => self.heartbeat(ctx),
            BrokerTimer::IsrCheck => {
                self.check_isr(ctx);
                ctx.set_background_timer(self.cfg.lag_max_ns / 2, BrokerTimer::IsrCheck);
            }
            BrokerTimer::FetchTimeout { leader, seq } => self.fetch_timed_out(ctx, leader, seq),
            BrokerTimer::FetchWait { follower } => self.fetch_wait_over(ctx, follower),
            BrokerTimer::Coord(t) => self.coord_timer(ctx, t),
            BrokerTimer::Txn => self.txn_tick(ctx),
            BrokerTimer::CommitTimeout => self.commit_timeouts(ctx),
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<BrokerTimer>) {
        self.coordinator.drain(ctx);
    }

    fn crash(&mut self) {
        // The logs and the metadata view are on disk; the rest is memory.
        for r in self.replicas.iter_mut().flatten() {
            r.lead = None;
        }
        self.fetching.clear();
        self.parked_fetches.clear();
        self.coordinator.crash();
        self.txn.crash();
        self.group_logs.crash();
        self.version = 0;
        self.ready = false;
        self.heartbeats_unready = 0;
        self.controller_answered = true;
    }

    fn restart(&mut self, ctx: &mut Ctx<BrokerTimer>) {
        self.incarnation += 1;
        self.start(ctx);
    }

    fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<super::replica::Entry>();
        self.replicas.iter().flatten().map(|r| r.log.capacity() * entry).sum()
    }

    fn gauges(&self, _now: Time, out: &mut crate::metrics::Gauges) {
        // Kafka's UnderReplicatedPartitions, as its leaders report it.
        let under = (0..self.views.len() as u32)
            .filter(|&pi| self.leads(pi) && self.views[pi as usize].isr.len() < self.layout.replicas[pi as usize].len())
            .count();
        out.sum("under_replicated_by_leaders", under as f64);
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
