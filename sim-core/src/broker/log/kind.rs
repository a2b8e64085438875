//! The `log` broker kind: the `[brokers.NAME]` table with `kind = "log"`,
//! its defaults, its checks (topics, replicas) and the construction of a
//! [`LogBroker`]. Its consumers tell it, while the engine is assembled,
//! which groups read it ([`LogGroups`]).

use super::elr::VERSIONS;
use super::{GroupInfo, GroupTxn, LogBroker};
use crate::broker::cluster::{MAX_BROKERS, MAX_CONTROLLERS};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, KindPlot, Member, Node, Topology};
use crate::time::Time;
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A topic of a log broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Number of partitions.
    #[serde(default = "one")]
    pub partitions: u32,
    /// Most records a partition keeps; older ones are deleted.
    #[serde(default)]
    pub retention_messages: Option<u64>,
    /// Longest a record is kept.
    #[serde(default)]
    pub retention_ms: Option<Millis>,
    /// The partition-count check: the rate the topic must take at its
    /// peak, in records per second (with `partition_rate_per_s`).
    #[serde(default)]
    pub expected_rate_per_s: Option<f64>,
    /// What one partition sustains, in records per second (in practice
    /// the slower of one consumer's rate and the broker's per partition).
    #[serde(default)]
    pub partition_rate_per_s: Option<f64>,
}

fn one() -> u32 {
    1
}

/// A log broker as written in a scenario file (`kind = "log"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// Topics, by name.
    pub topics: BTreeMap<String, TopicSpec>,
    /// Replicas of every partition (the replication factor).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Fewest in-sync replicas for an `acks = "all"` write.
    #[serde(default = "one")]
    pub min_insync_replicas: u32,
    /// Whether a replica outside the ISR may become leader.
    #[serde(default)]
    pub unclean_leader_election: bool,
    /// Time a follower's fetch takes.
    #[serde(default = "default_replication")]
    pub replication: Dist,
    /// How long a follower may stay behind before leaving the ISR
    /// (Kafka's `replica.lag.time.max.ms`, 30 s since 2.5).
    #[serde(default = "default_replica_lag_max")]
    pub replica_lag_max_ms: Millis,
    /// Time from a leader's death to the election of the next (a KRaft
    /// controller fences a silent broker after `broker.session.timeout.ms`,
    /// 9 s).
    #[serde(default = "default_election_delay")]
    pub election_delay_ms: Millis,
    /// A group member silent for this long is removed from its group
    /// (Kafka's `session.timeout.ms`, 45 s since 3.0).
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: Millis,
    /// How long an empty group's first rebalance waits for more members
    /// (Kafka's `group.initial.rebalance.delay.ms`, 3 s).
    #[serde(default = "default_initial_rebalance_delay")]
    pub initial_rebalance_delay_ms: Millis,
    /// How often each replica flushes its log to disk (Kafka's
    /// `log.flush.interval.ms`); unset, as Kafka's default, the broker
    /// never flushes and the operating system writes pages back when they
    /// are 30 s old (see [`super::disk`]). Matters only in a power loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<Millis>,
    /// Removed: kept only to explain what replaced it.
    #[serde(default, skip_serializing)]
    pub rebalance_delay_ms: Option<Millis>,
    /// The Kafka version whose replication rules apply (see [`super::elr`]).
    #[serde(default = "default_version")]
    pub version: String,
    /// Whether eligible leader replicas are tracked and elected (from 4.0;
    /// by default only from 4.1).
    #[serde(default)]
    pub eligible_leader_replicas: Option<bool>,
    /// The number of broker nodes: set, the broker is a cluster (see
    /// [`crate::broker::cluster`]): this table's node is its controller,
    /// and brokers `NAME-1` .. `NAME-N` are nodes of their own. Unset, the
    /// broker is one node holding every replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<u32>,
    /// Racks the brokers stand in (broker `i` in rack `i % racks`); replicas
    /// of a partition are spread over racks first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub racks: Option<u32>,
    /// How often a cluster's broker heartbeats to its controller (Kafka's
    /// `broker.heartbeat.interval.ms`, 2 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<Millis>,
    /// Longest a leader holds a follower's fetch that finds nothing new
    /// (Kafka's `replica.fetch.wait.max.ms`, 500 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_fetch_wait_max_ms: Option<Millis>,
    /// How long a follower waits for a fetch's answer before it sends
    /// another (Kafka's `replica.socket.timeout.ms`, 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_socket_timeout_ms: Option<Millis>,
    /// The number of controller voters (Kafka's `controller.quorum.voters`):
    /// unset or 1, this table's node alone; N > 1, a Raft quorum of this
    /// node and `NAME-controller-2` .. `NAME-controller-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<u32>,
}

impl Default for LogSpec {
    fn default() -> Self {
        LogSpec {
            topics: BTreeMap::new(),
            replicas: one(),
            min_insync_replicas: one(),
            unclean_leader_election: false,
            replication: default_replication(),
            replica_lag_max_ms: default_replica_lag_max(),
            election_delay_ms: default_election_delay(),
            session_timeout_ms: default_session_timeout(),
            initial_rebalance_delay_ms: default_initial_rebalance_delay(),
            flush_interval_ms: None,
            rebalance_delay_ms: None,
            version: default_version(),
            eligible_leader_replicas: None,
            brokers: None,
            racks: None,
            heartbeat_interval_ms: None,
            replica_fetch_wait_max_ms: None,
            replica_socket_timeout_ms: None,
            controllers: None,
        }
    }
}

fn default_version() -> String {
    super::elr::DEFAULT_VERSION.to_string()
}

fn default_replication() -> Dist {
    Dist::Constant { ms: Millis(1.0) }
}
fn default_replica_lag_max() -> Millis {
    Millis(30_000.0)
}
fn default_election_delay() -> Millis {
    Millis(9000.0)
}
fn default_session_timeout() -> Millis {
    Millis(45_000.0)
}
fn default_initial_rebalance_delay() -> Millis {
    Millis(3000.0)
}

impl LogSpec {
    /// The index of `topic` in name order (0 if there is none such).
    pub fn topic_index(&self, topic: &str) -> usize {
        self.topics.keys().position(|t| t == topic).unwrap_or(0)
    }

    /// The partitions of `topic` (1 if there is none such).
    pub fn partitions_of(&self, topic: &str) -> u32 {
        self.topics.get(topic).map_or(1, |t| t.partitions.max(1))
    }

    /// The topic names, quoted: "`a`, `b`".
    pub fn topic_list(&self) -> String {
        crate::kind::quoted(self.topics.keys().map(String::as_str))
    }
}

/// What the consumers of a log broker tell it while the engine is
/// assembled (see [`Build::note`]): its consumer groups, in order of their
/// first member.
#[derive(Debug, Default)]
pub struct LogGroups {
    /// The groups; a member's group number is its index here.
    pub groups: Vec<GroupInfo>,
    /// How each group reads and writes transactions (by group number).
    pub txn: Vec<GroupTxn>,
    /// How many members each group has (by group number).
    pub members: Vec<u32>,
    /// The dead-letter topics its consumers name (by topic index): what
    /// is appended there is dead-lettered.
    pub dead_letters: std::collections::BTreeSet<usize>,
}

impl LogGroups {
    /// The number of group `info.name`, adding `info` if it is new.
    pub fn join(&mut self, info: GroupInfo) -> usize {
        match self.groups.iter().position(|g| g.name == info.name) {
            Some(i) => {
                // The rebalance timeout is the longest poll interval of its members.
                let t = &mut self.groups[i].rebalance_timeout_ns;
                *t = (*t).max(info.rebalance_timeout_ns);
                i
            }
            None => {
                self.groups.push(info);
                self.groups.len() - 1
            }
        }
    }

    /// Counts one more member of group `group`.
    pub fn count_member(&mut self, group: usize) {
        if self.members.len() <= group {
            self.members.resize(group + 1, 0);
        }
        self.members[group] += 1;
    }

    /// Sets how group `group` reads and writes transactions.
    pub fn set_txn(&mut self, group: usize, txn: GroupTxn) {
        if self.txn.len() <= group {
            self.txn.resize(group + 1, GroupTxn::default());
        }
        self.txn[group] = txn;
    }
}

/// The checks of a cluster's counts: brokers, replicas, voters, racks.
fn check_counts(node: &Node, l: &LogSpec, n: u32) -> Result<(), Invalid> {
    if !(1..=MAX_BROKERS).contains(&n) {
        return node.fail("brokers", format!("expected from 1 to {MAX_BROKERS} brokers"));
    }
    if l.replicas > n {
        return node.fail("replicas", format!("expected at most the number of brokers ({n})"));
    }
    if l.controllers.is_some_and(|c| !(1..=MAX_CONTROLLERS).contains(&c)) {
        return node
            .fail("controllers", format!("expected from 1 to {MAX_CONTROLLERS} controller voters (3 or 5 advised)"));
    }
    if l.racks.is_some_and(|r| r == 0 || r > n) {
        return node.fail("racks", format!("expected from 1 to the number of brokers ({n})"));
    }
    Ok(())
}

/// The checks of a cluster's fields (`brokers` and the settings only a
/// cluster reads).
fn check_cluster(node: &Node, l: &LogSpec) -> Result<(), Invalid> {
    let only_cluster = [
        ("racks", l.racks.is_some()),
        ("heartbeat_interval_ms", l.heartbeat_interval_ms.is_some()),
        ("replica_fetch_wait_max_ms", l.replica_fetch_wait_max_ms.is_some()),
        ("replica_socket_timeout_ms", l.replica_socket_timeout_ms.is_some()),
        ("controllers", l.controllers.is_some()),
    ];
    let Some(n) = l.brokers else {
        return match only_cluster.iter().find(|(_, set)| *set) {
            Some((field, _)) => node.fail(field, "only a cluster reads it: set `brokers` too"),
            None => Ok(()),
        };
    };
    check_counts(node, l, n)?;
    let positive = [
        ("heartbeat_interval_ms", l.heartbeat_interval_ms),
        ("replica_fetch_wait_max_ms", l.replica_fetch_wait_max_ms),
        ("replica_socket_timeout_ms", l.replica_socket_timeout_ms),
    ];
    for (field, v) in positive {
        if v.is_some_and(|m| !(m.0 > 0.0 && m.0.is_finite())) {
            return node.fail(field, "expected a positive number of milliseconds");
        }
    }
    let heartbeat = l.heartbeat_interval_ms.map_or(2000.0, |m| m.0);
    if heartbeat >= l.election_delay_ms.0 {
        let message = format!(
            "a broker heartbeating every {heartbeat} ms would be fenced between heartbeats: the broker \
             session timeout (election_delay_ms, {} ms) must be longer",
            l.election_delay_ms.0
        );
        return node.fail("heartbeat_interval_ms", message);
    }
    Ok(())
}

/// The log broker kind (`kind = "log"`).
pub struct LogBrokerKind;

impl Kind for LogBrokerKind {
    type Spec = LogSpec;
    const NAME: &'static str = "log";
    const SECTION: &'static str = "brokers";
    const METRICS: &'static [&'static str] = &[
        "hottest_partition_share",
        "retention_deleted",
        "isr_expands",
        "isr_shrinks",
        "replica_crashes",
        "offline_partitions",
        "leader_elections",
        "unclean_elections",
        "truncated_records",
        "acked_records_truncated",
        "unflushed_records_dropped",
        "offset_resets",
        "truncations_detected",
        "rebalances",
        "partitions_needed",
        "partitions_short",
        "members_expired",
        "members_left",
        "rejoin_timeouts",
        "stale_commits",
        "offset_regressions",
        "commits_fenced",
        "transactions_fenced",
        "transactions_committed",
        "transactions_aborted",
        "transactions_timed_out",
        "hw_held_ms",
        "elr_elections",
        "brokers_fenced",
        "offline_partitions_max",
        "under_replicated_partitions_max",
        "isr_shrink_proposals",
        "replica_fetch_timeouts",
        "controller_failovers",
        "controller_elections_started",
        "coordinator_moves",
        "offset_commit_timeouts",
        "not_coordinator_answers",
    ];
    const ERRORS: &'static [&'static str] = &[
        "leader-not-available",
        "not-enough-replicas",
        "fenced",
        "out-of-order",
        "not-enough-replicas-after-append",
        "leader-crash-skipped",
        "transaction-aborted",
        "unknown-partition",
        "not-leader-or-follower",
    ];
    const GAUGES: &'static [&'static str] = &[
        "lag_records",
        "lag_seconds",
        "partition_lag_records",
        "partition_lag_seconds",
        "offline_partitions",
        "under_replicated_partitions",
        "under_min_isr_partitions",
        "fenced_brokers",
        "active_controllers",
    ];
    const PLOTS: &'static [KindPlot] = &[
        KindPlot {
            name: "lag-records",
            title: "Consumer lag by group",
            y_label: "lag (records)",
            gauges: &["lag_records"],
        },
        KindPlot {
            name: "lag-seconds",
            title: "Age of the oldest uncommitted record by group",
            y_label: "lag (seconds)",
            gauges: &["lag_seconds"],
        },
    ];

    fn validate(&self, node: &Node, l: &LogSpec, _topology: &Topology) -> Result<(), Invalid> {
        if l.topics.is_empty() {
            return node.fail("topics", "a log broker needs at least one topic");
        }
        if l.topics.len() > usize::from(u16::MAX) {
            return node.fail("topics", "too many topics");
        }
        for (t, spec) in &l.topics {
            if !(1..=100_000).contains(&spec.partitions) {
                return Err(node.invalid_at(&["topics", t, "partitions"], "expected from 1 to 100000"));
            }
            if spec.retention_messages == Some(0) {
                return Err(node.invalid_at(&["topics", t, "retention_messages"], "expected at least 1"));
            }
            check_sizing(node, t, spec)?;
        }
        if l.rebalance_delay_ms.is_some() {
            let message = "was removed: a rebalance now lasts as long as its protocol rounds take (members \
                           notice it at their next heartbeat, rejoin at their next poll, and a member that \
                           does not rejoin is waited for until its session_timeout_ms ends); the delay of \
                           an empty group's first rebalance is initial_rebalance_delay_ms";
            return node.fail("rebalance_delay_ms", message);
        }
        if !(1..=64).contains(&l.replicas) {
            return node.fail("replicas", "expected from 1 to 64 replicas");
        }
        if l.min_insync_replicas == 0 || l.min_insync_replicas > l.replicas {
            let message = format!("expected from 1 to the number of replicas ({})", l.replicas);
            return node.fail("min_insync_replicas", message);
        }
        if let Err(message) = super::elr::Rules::of(l) {
            let field = if VERSIONS.contains(&l.version.as_str()) { "eligible_leader_replicas" } else { "version" };
            return node.fail(field, message);
        }
        check_cluster(node, l)?;
        l.replication.check().map_err(|m| node.invalid("replication", m))
    }

    /// Each partition holds, per replica, its log end, ISR and ELR flags
    /// (and the ISR the ELR last saw), catch-up time and fetch in progress,
    /// besides its own state.
    fn footprint(&self, l: &LogSpec) -> Footprint {
        let partitions: f64 = l.topics.values().map(|t| f64::from(t.partitions)).sum();
        let per_replica = (8 + 1 + 2 + 8 + std::mem::size_of::<Option<(Time, u64, Time)>>()) as f64;
        let each = std::mem::size_of::<super::partition::Partition>() as f64 + f64::from(l.replicas) * per_replica;
        Footprint { bytes: partitions * each, ..Footprint::default() }
    }

    fn build(&self, node: &Node, l: &LogSpec, build: &mut Build) -> Box<dyn DynComponent> {
        if l.brokers.is_some() {
            // A cluster: this node is its controller; its brokers, built
            // next, read the groups' note.
            return crate::broker::cluster::kind_controller(build, node.name(), l);
        }
        let note = build.take_note::<LogGroups>(node.name());
        let sizing = sizing(l, &note);
        let mut broker =
            LogBroker::new(l, note.groups).with_transactions(note.txn).with_dead_letters(note.dead_letters);
        broker.sizing = sizing;
        boxed(broker)
    }

    fn members(&self, name: &str, l: &LogSpec) -> Vec<Member> {
        crate::broker::cluster::ClusterBrokerKind::members(name, l)
    }
}

/// The rates of the partition-count check come together, above 0.
fn check_sizing(node: &Node, t: &str, spec: &TopicSpec) -> Result<(), Invalid> {
    for (field, v, other) in [
        ("expected_rate_per_s", spec.expected_rate_per_s, spec.partition_rate_per_s),
        ("partition_rate_per_s", spec.partition_rate_per_s, spec.expected_rate_per_s),
    ] {
        match (v, other) {
            (Some(v), _) if !(v.is_finite() && v > 0.0) => {
                return Err(node.invalid_at(&["topics", t, field], "expected a rate above 0"));
            }
            (Some(_), None) => {
                let message = "the partition-count check needs both expected_rate_per_s and partition_rate_per_s";
                return Err(node.invalid_at(&["topics", t, field], message));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The partition-count rule of thumb: enough partitions for the expected
/// rate at what one partition sustains, and at least one per consumer (a
/// consumer beyond the partitions sits idle):
/// `max(ceil(expected / per_partition), consumers)`.
pub fn partitions_needed(expected_rate_per_s: f64, per_partition_rate_per_s: f64, consumers: u32) -> u32 {
    let by_rate = if per_partition_rate_per_s > 0.0 {
        (expected_rate_per_s / per_partition_rate_per_s).ceil().clamp(0.0, f64::from(u32::MAX)) as u32
    } else {
        0
    };
    by_rate.max(consumers)
}

/// The partition-count check of a broker's topics: for each topic with
/// its rates, [`partitions_needed`] with the most members of one group
/// reading it (`note` counts them: every member of a replicated table,
/// those it may start included); the most needed, and the most lacking.
fn sizing(l: &LogSpec, note: &LogGroups) -> (u32, u32) {
    let (mut needed, mut short) = (0, 0);
    for (ti, (_, spec)) in l.topics.iter().enumerate() {
        let (Some(expected), Some(per)) = (spec.expected_rate_per_s, spec.partition_rate_per_s) else { continue };
        let consumers = (note.groups.iter().enumerate())
            .filter(|(_, g)| g.topic == ti)
            .map(|(gi, _)| note.members.get(gi).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let n = partitions_needed(expected, per, consumers);
        needed = needed.max(n);
        short = short.max(n.saturating_sub(spec.partitions));
    }
    (needed, short)
}
