//! The `log-consumer` kind: a member of a consumer group of a log broker.
//! Its `[consumers.NAME]` table, defaults, checks (topic, group agreement,
//! read-process-write settings) and the construction of a [`LogConsumer`].
//! How the group reads transactions (`isolation`) and how long its
//! transactions may stay open (`transaction_timeout_ms`) are told to the
//! broker, which applies them.

use super::failure::{Failures, OnFailure};
use super::{CommitMode, LogConsumer, LogConsumerSetup};
use crate::broker::{Assignor, GroupInfo, GroupTxn, LogGroups, LogSpec, RebalanceProtocol};
use crate::consumer::{check_effect, check_source, AckTiming, Effect};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, Node, Topology};
use crate::time::ms_to_ns;
use crate::units::{Millis, Probability};
use serde::{Deserialize, Serialize};

/// A consumer of a log broker as written in a scenario file
/// (`[consumers.NAME]` whose `source` is a log broker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConsumerSpec {
    /// The log broker it reads.
    pub source: String,
    /// How long processing one record takes.
    pub processing: Dist,
    /// The request timeout: how long to wait for an answer to a fetch, a
    /// commit or a transaction before sending it again.
    #[serde(default = "default_resubscribe")]
    pub resubscribe_ms: Millis,
    /// When offsets are committed: before processing a batch, after it, or
    /// every `auto_commit_interval_ms` (`"auto"`). Unset: `"auto"`, Kafka's
    /// `enable.auto.commit=true`; `"after"` for a transactional stage,
    /// whose commit is part of its transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckTiming>,
    /// Whether the effect is deduplicated by message id.
    #[serde(default)]
    pub effect: Effect,
    /// The dedup store of an idempotent effect; consumers naming the same
    /// store share it. Default: `BROKER/GROUP`, one per group.
    #[serde(default)]
    pub dedup_store: Option<String>,
    /// The effect domain this consumer's effect belongs to. Default: the
    /// group's name.
    #[serde(default)]
    pub domain: Option<String>,
    /// The topic to read (required).
    #[serde(default)]
    pub topic: Option<String>,
    /// The consumer group.
    #[serde(default = "default_group")]
    pub group: String,
    /// Most records per fetch.
    #[serde(default = "default_max_poll_records")]
    pub max_poll_records: u32,
    /// Most bytes a fetch returns (Kafka's `fetch.max.bytes`); the first
    /// record comes whatever its size.
    #[serde(default = "default_fetch_max_bytes")]
    pub fetch_max_bytes: u32,
    /// Most bytes a fetch returns from one partition (Kafka's
    /// `max.partition.fetch.bytes`); the first record comes whatever its size.
    #[serde(default = "default_max_partition_fetch_bytes")]
    pub max_partition_fetch_bytes: u32,
    /// With `ack = "auto"`: how often offsets are committed.
    #[serde(default = "default_auto_commit_interval")]
    pub auto_commit_interval_ms: Millis,
    /// How the group shares partitions among its members.
    #[serde(default)]
    pub assignment: Assignor,
    /// A topic of the same broker to write each processed record to (a
    /// read-process-write stage).
    #[serde(default)]
    pub output_topic: Option<String>,
    /// Write the output and commit the offsets in one transaction.
    #[serde(default)]
    pub transactional: bool,
    /// How often the member heartbeats to its group (Kafka's
    /// `heartbeat.interval.ms`, 3 s).
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval_ms: Millis,
    /// Longest the processing of one fetched batch may take before the
    /// member leaves its group (Kafka's `max.poll.interval.ms`, 300 s).
    #[serde(default = "default_max_poll_interval")]
    pub max_poll_interval_ms: Millis,
    /// The rebalance protocol: `"eager"` or `"cooperative-sticky"`.
    #[serde(default)]
    pub rebalance_protocol: RebalanceProtocol,
    /// Makes the member static (Kafka's `group.instance.id`): a restart
    /// within the session timeout takes back its partitions without a
    /// rebalance. Unique within the group.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// Whether records of open and aborted transactions are read
    /// (Kafka's `isolation.level`; its default is `read_uncommitted`).
    #[serde(default)]
    pub isolation: Isolation,
    /// With `transactional`: how long a transaction may stay open before
    /// the broker aborts it (Kafka's `transaction.timeout.ms`).
    #[serde(default = "default_transaction_timeout")]
    pub transaction_timeout_ms: Millis,
    /// A node each processed record is written to (a table, a read model,
    /// an aggregator), which applies the effect in its own domain.
    #[serde(default)]
    pub sink: Option<String>,
    /// With `sink`: how long to wait for the sink's answer before writing
    /// again.
    #[serde(default = "default_sink_timeout")]
    pub sink_timeout_ms: Millis,
    // Replicated consumers and autoscaling (issue 15: consumer lag and
    // autoscaling).
    /// Makes the table N identical members of its group, `NAME-1` ..
    /// `NAME-N`, and their controller, `NAME-controller`
    /// ([`crate::replicas`]); with `autoscale`, where the count starts.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Adds and removes members on the group's lag (needs `replicas`).
    #[serde(default)]
    pub autoscale: Option<crate::replicas::AutoscaleSpec>,
    /// The price of one member running for an hour, in dollars.
    #[serde(default = "crate::replicas::default_price")]
    pub price_per_hour: f64,
    /// Which member of a replicated table this node is (never written).
    #[serde(skip)]
    pub member: Option<crate::replicas::MemberOf>,
    // Retries and dead letters: processing failures and what is done with
    // a failed record (see `failure.rs`).
    /// Probability that one processing attempt fails (transient failure).
    #[serde(default)]
    pub failure_probability: Probability,
    /// Probability that a message is poison: every attempt at it fails.
    #[serde(default)]
    pub poison_probability: Probability,
    /// What is done with a record whose processing failed.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The waits before each retry in place; with `retry_topics`, the
    /// delay of each retry topic, in order.
    #[serde(default = "default_retry_delays")]
    pub retry_delays_ms: Vec<Millis>,
    /// The retry topics of the same broker, in order (`on_failure =
    /// "retry-queue"`).
    #[serde(default)]
    pub retry_topics: Vec<String>,
    /// The dead-letter topic of the same broker.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Makes the member a replay of the topic it reads (a dead-letter
    /// topic) into this topic of the same broker.
    #[serde(default)]
    pub replay_to_topic: Option<String>,
    /// With `replay_to_topic`: when the replay begins (from the start of
    /// the run).
    #[serde(default)]
    pub replay_at_ms: Option<Millis>,
}

/// Immediately, then 5 s, then 30 s.
fn default_retry_delays() -> Vec<Millis> {
    vec![Millis(0.0), Millis(5000.0), Millis(30_000.0)]
}

fn default_sink_timeout() -> Millis {
    Millis(1000.0)
}

/// Which records of transactions a log consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Everything below the high watermark, open and aborted transactions'
    /// records included (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, and never an aborted record.
    ReadCommitted,
}

fn default_resubscribe() -> Millis {
    Millis(1000.0)
}
fn default_group() -> String {
    "group".to_string()
}
fn default_max_poll_records() -> u32 {
    500
}
/// Kafka's `fetch.max.bytes` (50 MiB).
fn default_fetch_max_bytes() -> u32 {
    52_428_800
}
/// Kafka's `max.partition.fetch.bytes` (1 MiB).
fn default_max_partition_fetch_bytes() -> u32 {
    1_048_576
}
fn default_auto_commit_interval() -> Millis {
    Millis(5000.0)
}
fn default_heartbeat_interval() -> Millis {
    Millis(3000.0)
}
fn default_max_poll_interval() -> Millis {
    Millis(300_000.0)
}
fn default_transaction_timeout() -> Millis {
    Millis(60_000.0)
}

impl LogConsumerSpec {
    /// When offsets are committed, the default resolved.
    pub fn ack(&self) -> AckTiming {
        self.ack.unwrap_or(if self.transactional { AckTiming::After } else { AckTiming::Auto })
    }

    /// What the members of one group must agree on, as shown in errors.
    fn group_settings(&self) -> String {
        format!(
            "domain {:?}, assignment {:?}, rebalance_protocol {:?}, output_topic {:?}, transactional {}, isolation {:?}, transaction_timeout_ms {}",
            self.domain, self.assignment, self.rebalance_protocol, self.output_topic, self.transactional, self.isolation, self.transaction_timeout_ms.0
        )
    }
}

/// The log consumer kind: the default of `[consumers.NAME]` whose `source`
/// is a log broker.
#[derive(Clone, Copy)]
pub struct LogConsumerKind;

impl Kind for LogConsumerKind {
    type Spec = LogConsumerSpec;
    const NAME: &'static str = "log-consumer";
    const SECTION: &'static str = "consumers";
    const METRICS: &'static [&'static str] = &[
        "poll_timeouts",
        "commits_failed",
        "offset_commit_failures",
        "coordinator_lost",
        "failed_attempts",
        "retries_in_place",
        "retry_topic_writes",
        "dead_letter_writes",
        "skipped_failures",
        "replayed",
        "replay_stopped",
    ];
    const ERRORS: &'static [&'static str] = &["permanent-failure", "transient-failure"];
    const ACCEPTS_ERRORS_FAULT: bool = true;

    fn validate(&self, node: &Node, k: &LogConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
        if k.member.is_some() {
            return Ok(()); // its table's checks are its own
        }
        crate::replicas::check_replicas(node, k.replicas, k.price_per_hour)?;
        check_source(node, &k.source, topology)?;
        let Some(l) = topology.spec::<LogSpec>(&k.source) else {
            return node
                .fail("source", format!("`{}` is not a log broker: its consumers are of kind `consumer`", k.source));
        };
        k.processing.check().map_err(|m| node.invalid("processing", m))?;
        check_effect(node, k.effect, &k.dedup_store)?;
        node.check_name("domain", k.domain.as_deref())?;
        node.check_name("group", Some(&k.group))?;
        if k.ack() == AckTiming::AfterForward {
            let message = "applies only to consumers of a queue broker (a log stage writes with output_topic)";
            return node.fail("ack", message);
        }
        check_topics(node, k, l)?;
        check_group(node, k, topology)?;
        check_stage(node, k, l)?;
        for (field, v) in [
            ("max_poll_records", k.max_poll_records),
            ("fetch_max_bytes", k.fetch_max_bytes),
            ("max_partition_fetch_bytes", k.max_partition_fetch_bytes),
        ] {
            if v == 0 {
                return node.fail(field, "expected at least 1");
            }
        }
        check_heartbeat(node, k, l)?;
        if k.transaction_timeout_ms.0 <= 0.0 {
            return node.fail("transaction_timeout_ms", "expected a duration above 0");
        }
        if k.max_poll_interval_ms.0 <= 0.0 {
            return node.fail("max_poll_interval_ms", "expected a duration above 0");
        }
        check_sink(node, k, topology)?;
        check_failures(node, k, l)?;
        check_instance(node, k, topology)?;
        check_autoscale(node, k, l)
    }

    fn members(&self, name: &str, k: &LogConsumerSpec) -> Vec<crate::kind::Member> {
        let n = k.replicas.unwrap_or(0);
        let scaling = k.autoscale.clone().map(|autoscale| crate::replicas::ScalingSpec {
            source: k.source.clone(),
            group: k.group.clone(),
            topic: k.topic.clone().unwrap_or_default(),
            autoscale,
        });
        let c = crate::replicas::ControllerSpec {
            table: name.to_string(),
            pool: n.max(k.autoscale.as_ref().map_or(0, |a| a.max_replicas)),
            running: n,
            price_per_hour: k.price_per_hour,
            scaling,
        };
        crate::replicas::members(c, LogConsumerKind, k, |k, of| LogConsumerSpec {
            member: Some(of),
            group_instance_id: k.group_instance_id.as_ref().map(|id| format!("{id}-{}", of.index)),
            ..k.clone()
        })
    }

    fn domain(&self, k: &LogConsumerSpec, topology: &Topology) -> Option<String> {
        if let Some(to) = &k.replay_to_topic {
            // A replay applies nothing: what it holds is held for the
            // consumers of the topic it replays into.
            let target = topology
                .specs::<LogConsumerSpec>()
                .find(|(_, c)| c.source == k.source && c.topic.as_ref() == Some(to) && c.replay_to_topic.is_none());
            if let Some((_, c)) = target {
                return self.domain(c, topology);
            }
        }
        match k.sink.as_deref().and_then(|s| topology.node(s)) {
            // A consumer that writes to a sink has the sink's domain: what
            // it holds is held for the sink.
            Some(sink) => sink.kind_ref().domain(sink, topology),
            None => Some(k.domain.clone().unwrap_or_else(|| k.group.clone())),
        }
    }

    fn footprint(&self, p: &LogConsumerSpec) -> Footprint {
        if p.replicas.is_some() && p.member.is_none() {
            return Footprint::default(); // its members serve
        }
        Footprint { serves_per_s: 1000.0 / p.processing.mean_ms(), ..Footprint::default() }
    }

    fn build(&self, node: &Node, k: &LogConsumerSpec, build: &mut Build) -> Box<dyn DynComponent> {
        if k.replicas.is_some() && k.member.is_none() {
            return boxed(crate::replicas::GroupName);
        }
        let l = build.topology().spec::<LogSpec>(&k.source).expect("validated: the source is a log broker");
        // A group's default store is its own (two groups are two services,
        // each with its own database).
        let store_name = k.dedup_store.clone().unwrap_or_else(|| format!("{}/{}", k.source, k.group));
        let store = (k.effect == Effect::Idempotent).then(|| build.store(store_name));
        let max_poll_ns = ms_to_ns(k.max_poll_interval_ms.0).max(1);
        let (group, _) = group_of(k, node.name(), build);
        build.note::<LogGroups>(&k.source).count_member(group as usize);
        let read_committed = k.isolation == Isolation::ReadCommitted;
        let txn = GroupTxn { read_committed, timeout_ns: ms_to_ns(k.transaction_timeout_ms.0).max(1) };
        build.note::<LogGroups>(&k.source).set_txn(group as usize, txn);
        let output = k.output_topic.as_deref().map(|t| (l.topic_index(t) as u16, l.partitions_of(t)));
        let topic = k.topic.as_deref().unwrap_or("");
        let read = (l.topic_index(topic) as u16, l.partitions_of(topic));
        let brokers: Option<Vec<_>> = l
            .brokers
            .map(|n| (0..n).map(|i| build.id(&crate::broker::cluster::broker_name(&k.source, i as u16))).collect());
        let member = LogConsumer::new(LogConsumerSetup {
            broker: build.id(&k.source),
            group,
            processing: k.processing.clone(),
            commit: match k.ack() {
                AckTiming::Before => CommitMode::Before,
                AckTiming::After | AckTiming::AfterForward => CommitMode::After,
                AckTiming::Auto => CommitMode::Auto(ms_to_ns(k.auto_commit_interval_ms.0)),
            },
            max_poll_records: k.max_poll_records.max(1),
            fetch_bytes: k.fetch_max_bytes.min(k.max_partition_fetch_bytes).max(1),
            heartbeat_ns: ms_to_ns(k.heartbeat_interval_ms.0).max(1),
            max_poll_ns,
            protocol: k.rebalance_protocol,
            static_member: k.group_instance_id.is_some(),
            request_timeout_ns: ms_to_ns(k.resubscribe_ms.0).max(1),
            store,
            output,
            transactional: k.transactional,
            sink: k.sink.as_deref().map(|s| (build.id(s), ms_to_ns(k.sink_timeout_ms.0).max(1))),
            failures: failures(k, l, build.note::<LogGroups>(&k.source)),
        });
        let member = match (k.member, &k.autoscale) {
            (Some(of), a) => member.as_replica(of.running, a.as_ref().map_or(0, |a| ms_to_ns(a.startup_delay_ms.0))),
            (None, _) => member,
        };
        match brokers {
            Some(brokers) => {
                boxed(member.in_cluster(brokers, read.0, read.1).with_session(ms_to_ns(l.session_timeout_ms.0)))
            }
            None => boxed(member),
        }
    }
}

/// The number at its broker of the group consumer `k` (node `name`)
/// belongs to, telling the broker of the group if it is the first to
/// ask, and the partition count of the topic it reads.
pub(crate) fn group_of(k: &LogConsumerSpec, name: &str, build: &mut Build) -> (u16, u32) {
    let l = build.topology().spec::<LogSpec>(&k.source).expect("validated: the source is a log broker");
    let topic = k.topic.as_deref().unwrap_or("");
    let info = GroupInfo {
        name: k.group.clone(),
        topic: l.topic_index(topic),
        domain: build.domain(name),
        assignor: k.assignment,
        protocol: k.rebalance_protocol,
        rebalance_timeout_ns: ms_to_ns(k.max_poll_interval_ms.0).max(1),
    };
    let partitions = l.partitions_of(topic);
    (build.note::<LogGroups>(&k.source).join(info) as u16, partitions)
}

/// An autoscaled group: a table with `replicas`, reading a single-node
/// log broker, without static members.
fn check_autoscale(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    let Some(a) = &k.autoscale else { return Ok(()) };
    let Some(n) = k.replicas else {
        return node.fail("autoscale", "an autoscaler adds and removes replicas: set `replicas` (where it starts)");
    };
    if l.brokers.is_some() {
        return node.fail(
            "autoscale",
            "not modelled on a log cluster: the autoscaler asks a single-node log broker for the lag",
        );
    }
    if k.group_instance_id.is_some() {
        return node.fail(
            "group_instance_id",
            "static members do not leave their group when they stop: an autoscaled group's members are dynamic",
        );
    }
    a.check(node, n, l.partitions_of(k.topic.as_deref().unwrap_or("")))
}

/// A sink is another node, and it takes the effect: the consumer then
/// has no effect, domain or output of its own.
fn check_sink(node: &Node, k: &LogConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(sink) = &k.sink else { return Ok(()) };
    let names: Vec<String> =
        topology.nodes().iter().filter(|n| n.kind_ref().sink()).map(|n| n.name().to_string()).collect();
    let sinks = || crate::kind::quoted(names.iter().map(String::as_str));
    match topology.node(sink) {
        None => {
            let hint =
                crate::expect::closest(sink, &names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            return node.fail("sink", format!("no node `{sink}` (nodes that take writes: {}){hint}", sinks()));
        }
        Some(n) if !n.kind_ref().sink() => {
            let message = format!("`{sink}` is a {} and takes no writes (nodes that do: {})", n.kind(), sinks());
            return node.fail("sink", message);
        }
        Some(_) => {}
    }
    for (field, set) in [
        ("effect", k.effect == Effect::Idempotent),
        ("domain", k.domain.is_some()),
        ("output_topic", k.output_topic.is_some()),
    ] {
        if set {
            let message = format!("a consumer with a `sink` applies no effect of its own: `{sink}` does, and its kind decides whether duplicates are skipped and which domain it is in");
            return node.fail(field, message);
        }
    }
    if k.sink_timeout_ms.0 <= 0.0 {
        return node.fail("sink_timeout_ms", "expected a duration above 0");
    }
    Ok(())
}

/// The topic read must exist, and the output topic too (another one).
fn check_topics(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    let Some(t) = &k.topic else {
        let message = format!("`{}` is a log broker: name the topic to read ({})", k.source, l.topic_list());
        return node.fail("topic", message);
    };
    if !l.topics.contains_key(t) {
        return node.fail("topic", format!("no topic `{t}` (topics: {})", l.topic_list()));
    }
    Ok(())
}

/// The members of one group read one topic and agree on its settings.
fn check_group(node: &Node, k: &LogConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
    let first = topology.specs::<LogConsumerSpec>().find(|(_, c)| c.source == k.source && c.group == k.group);
    let Some((first, f)) = first.filter(|(name, _)| *name != node.name()) else {
        return Ok(());
    };
    let group = &k.group;
    if f.topic != k.topic {
        let other = f.topic.as_deref().unwrap_or_default();
        return node.fail("topic", format!("group `{group}` already reads topic `{other}`: one group reads one topic"));
    }
    let (theirs, settings) = (f.group_settings(), k.group_settings());
    if theirs != settings {
        return node.fail(
            "group",
            format!("members of group `{group}` must agree on domain, assignment, rebalance_protocol, output_topic, transactional, isolation and transaction_timeout_ms: `{first}` has {theirs}, this one {settings}"),
        );
    }
    Ok(())
}

/// The heartbeat interval is above 0 and below the broker's session
/// timeout, as Kafka's client requires (it refuses `heartbeat.interval.ms
/// >= session.timeout.ms`; a third of the session is its advice, not a rule).
fn check_heartbeat(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    let (heartbeat, session) = (k.heartbeat_interval_ms.0, l.session_timeout_ms.0);
    if heartbeat <= 0.0 {
        return node.fail("heartbeat_interval_ms", "expected a duration above 0");
    }
    if heartbeat >= session {
        let message = format!(
            "{heartbeat} ms is not below the session_timeout_ms of broker `{}` ({session} ms): a member would be expired between two heartbeats (Kafka refuses this too); set heartbeat_interval_ms below it, at most a third of it is usual",
            k.source
        );
        return node.fail("heartbeat_interval_ms", message);
    }
    Ok(())
}

/// A `group_instance_id` names one member of its group.
fn check_instance(node: &Node, k: &LogConsumerSpec, topology: &Topology) -> Result<(), Invalid> {
    let Some(id) = &k.group_instance_id else { return Ok(()) };
    let same =
        |c: &LogConsumerSpec| c.source == k.source && c.group == k.group && c.group_instance_id.as_ref() == Some(id);
    if let Some((other, _)) = topology.specs::<LogConsumerSpec>().find(|(name, c)| *name != node.name() && same(c)) {
        return node.fail(
            "group_instance_id",
            format!("`{other}` of group `{}` has it too: one instance id per member", k.group),
        );
    }
    Ok(())
}

/// A read-process-write stage writes to another topic of its broker, and
/// a transactional one commits with its output.
fn check_stage(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    if let Some(o) = &k.output_topic {
        if Some(o) == k.topic.as_ref() {
            return node.fail("output_topic", "a stage cannot write to the topic it reads");
        }
        if !l.topics.contains_key(o) {
            return node.fail("output_topic", format!("no topic `{o}` (topics: {})", l.topic_list()));
        }
    }
    if k.transactional {
        if k.output_topic.is_none() {
            return node.fail("transactional", "a transaction writes to an output topic: set output_topic");
        }
        if k.ack() != AckTiming::After {
            return node.fail("ack", "a transactional stage commits with its output: use ack = \"after\"");
        }
    }
    Ok(())
}

/// The retry and dead-letter settings, resolved; the dead-letter topic is
/// told to the broker (it counts what is appended there).
fn failures(k: &LogConsumerSpec, l: &LogSpec, groups: &mut LogGroups) -> Failures {
    let topic = |t: &str| (l.topic_index(t) as u16, l.partitions_of(t));
    let delays: Vec<_> = k.retry_delays_ms.iter().map(|d| ms_to_ns(d.0)).collect();
    let read = k.topic.as_deref().unwrap_or("");
    let at = k.retry_topics.iter().position(|t| t == read);
    let next = at.map_or(0, |i| i + 1);
    let next_retry = (k.on_failure == OnFailure::RetryQueue)
        .then(|| k.retry_topics.get(next).map(|t| (topic(t), delays.get(next).copied().unwrap_or(0))))
        .flatten();
    let dead_letter = k.dead_letter_topic.as_deref().map(topic);
    if let Some((t, _)) = dead_letter {
        groups.dead_letters.insert(usize::from(t));
    }
    Failures {
        failure_probability: k.failure_probability.0,
        poison_probability: k.poison_probability.0,
        on_failure: k.on_failure,
        delays,
        next_retry,
        dead_letter,
        reads_retry_topic: at.is_some(),
        replay: k.replay_to_topic.as_deref().map(|t| (topic(t), ms_to_ns(k.replay_at_ms.map_or(0.0, |m| m.0)))),
    }
}

/// The retry and dead-letter topics exist and differ from the topic read
/// (a retry topic excepted: its own consumer reads it); a retry queue has
/// its topics, one delay each; a replay names its time and does nothing
/// else.
fn check_failures(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    let exists = |field: &str, t: &str| -> Result<(), Invalid> {
        if l.topics.contains_key(t) {
            return Ok(());
        }
        node.fail(field, format!("no topic `{t}` (topics: {})", l.topic_list()))
    };
    for t in &k.retry_topics {
        exists("retry_topics", t)?;
    }
    if k.on_failure == OnFailure::RetryQueue && k.retry_topics.is_empty() {
        return node
            .fail("retry_topics", "`on_failure = \"retry-queue\"` writes failed records to retry topics: name them");
    }
    if !k.retry_topics.is_empty() && k.retry_delays_ms.len() != k.retry_topics.len() {
        let message = format!(
            "{} delays for {} retry topics: give one delay per retry topic, in order",
            k.retry_delays_ms.len(),
            k.retry_topics.len()
        );
        return node.fail("retry_delays_ms", message);
    }
    if let Some(t) = &k.dead_letter_topic {
        exists("dead_letter_topic", t)?;
        if k.topic.as_ref() == Some(t) || k.retry_topics.contains(t) {
            return node.fail("dead_letter_topic", "expected a topic of its own, neither read nor a retry topic");
        }
    }
    let cluster = l.brokers.is_some();
    for (field, set) in
        [("dead_letter_topic", k.dead_letter_topic.is_some()), ("replay_to_topic", k.replay_to_topic.is_some())]
    {
        if set && cluster {
            return node.fail(field, "dead-letter topics are modelled on a single-node log broker only (no `brokers`)");
        }
    }
    check_replay(node, k, l)
}

/// A replay copies records into another topic from `replay_at_ms` on, and
/// processes nothing itself.
fn check_replay(node: &Node, k: &LogConsumerSpec, l: &LogSpec) -> Result<(), Invalid> {
    let Some(to) = &k.replay_to_topic else {
        return match k.replay_at_ms {
            Some(_) => node.fail("replay_at_ms", "only a replay reads it: set `replay_to_topic` too"),
            None => Ok(()),
        };
    };
    if !l.topics.contains_key(to) {
        return node.fail("replay_to_topic", format!("no topic `{to}` (topics: {})", l.topic_list()));
    }
    if k.topic.as_ref() == Some(to) {
        return node.fail("replay_to_topic", "a replay cannot write to the topic it reads");
    }
    if k.replay_at_ms.is_none() {
        return node.fail("replay_at_ms", "a replay needs its start time (after the dependency is back)");
    }
    let others = [
        ("failure_probability", k.failure_probability.0 > 0.0),
        ("poison_probability", k.poison_probability.0 > 0.0),
        ("retry_topics", !k.retry_topics.is_empty()),
        ("dead_letter_topic", k.dead_letter_topic.is_some()),
        ("output_topic", k.output_topic.is_some()),
        ("sink", k.sink.is_some()),
        ("effect", k.effect == Effect::Idempotent),
    ];
    match others.iter().find(|(_, set)| *set) {
        Some((field, _)) => node.fail(field, "a replay (`replay_to_topic`) only copies records: it processes none"),
        None => Ok(()),
    }
}
