//! The scenario file schema: plain serde structs with units in their names.
//! A scenario file (after its variant's overrides are merged in) is read
//! into [`Config`]: its top-level fields with serde, its node tables by
//! their kinds. Every field and its default is
//! documented in `docs/scenario-format.md`.

use crate::dist::Dist;
use crate::kind::Topology;
use crate::units::{Millis, Positive, Probability};
use serde::{Deserialize, Serialize};

/// One fully resolved configuration: the base of a scenario with one
/// variant's overrides (and any `--set`) applied. The node tables
/// (`[producers.NAME]`, `[brokers.NAME]`, ...) are read by their kinds
/// (see [`crate::registry`]) into its [`Topology`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Short name of the scenario.
    pub name: String,
    /// The concept it teaches, in one line.
    pub concept: String,
    /// A longer explanation of what the scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// The seed used when the command line gives none.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Durations and limits of the run.
    #[serde(default)]
    pub run: RunSpec,
    /// The network between nodes.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Scheduled faults.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Expectations checked on every variant (`"lost == 0"`).
    #[serde(default)]
    pub expect: Vec<String>,
    /// Invariants claimed for every variant (`"no-loss"`; see
    /// [`crate::check`]); a variant's own are added to these.
    #[serde(default)]
    pub invariants: Vec<String>,
    /// Thresholds on gauges, judged after each run (see [`crate::alarms`]).
    #[serde(default)]
    pub alarms: Vec<crate::alarms::AlarmSpec>,
    /// The nodes, read from the sections by their kinds.
    #[serde(skip)]
    pub(super) nodes: Topology,
    /// A hash of the resolved scenario (see [`Config::fingerprint`]).
    #[serde(skip)]
    pub(super) fingerprint: u64,
}

impl Config {
    /// Identifies what ran: a 64-bit FNV-1a hash, in hex, of the resolved
    /// scenario (every key and value of the file's tables after the
    /// variant's `set` and `--set`, keys sorted, so that comments, layout
    /// and key order do not count) and the variant's expectations. 0 for a configuration not
    /// resolved from a scenario.
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }

    /// Every node, in id order.
    pub fn topology(&self) -> &Topology {
        &self.nodes
    }

    /// The spec of node `name`, if it is a `T`
    /// (`config.spec::<ProducerSpec>("p")`).
    pub fn spec<T: 'static>(&self, name: &str) -> Option<&T> {
        self.nodes.spec(name)
    }

    /// Every node whose spec is a `T`, with its name, in id order.
    pub fn specs<T: 'static>(&self) -> impl Iterator<Item = (&str, &T)> + '_ {
        self.nodes.specs()
    }

    /// The effect domains, in the order they are numbered: each node's that
    /// applies effects (consumers, then clients, each in name order), each
    /// named once. A scenario without such nodes has none (the ledger then
    /// has one, `default`).
    pub fn effect_domains(&self) -> Vec<String> {
        self.nodes.domains().0
    }
}

fn default_seed() -> u64 {
    1
}

/// Durations and limits of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Length of the run phase; when absent, it ends once every producer
    /// has produced its `messages`.
    #[serde(default)]
    pub duration_ms: Option<Millis>,
    /// Longest drain phase (faults healed, producers stopped).
    #[serde(default = "default_drain")]
    pub drain_ms: Millis,
    /// Interval of the time series.
    #[serde(default = "default_sample")]
    pub sample_interval_ms: Millis,
    /// Most events a run may dispatch (a bound on runaway scenarios).
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Most memory, in MiB, the run's growing state (event queue, ledger,
    /// queues and logs) may hold: a run that exceeds it stops with what it
    /// measured, rather than exhaust the machine.
    #[serde(default = "default_max_memory_mb")]
    pub max_memory_mb: u64,
    /// Steady-state analysis of the run phase's time series (warm-up
    /// deletion, batch means), reported as the summary's `steady_state`;
    /// none unless asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<crate::stats::SteadyStateSpec>,
    /// How many seeds `asyncsim run` runs a variant at (S, S+1, ...) when
    /// one of its expectations is an interval (`... at 95%`).
    #[serde(default = "default_replications")]
    pub replications: u64,
}

fn default_replications() -> u64 {
    20
}

fn default_drain() -> Millis {
    Millis(60_000.0)
}
fn default_sample() -> Millis {
    Millis(1_000.0)
}
fn default_max_events() -> u64 {
    100_000_000
}
fn default_max_memory_mb() -> u64 {
    2048
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            duration_ms: None,
            drain_ms: default_drain(),
            sample_interval_ms: default_sample(),
            max_events: default_max_events(),
            max_memory_mb: default_max_memory_mb(),
            steady_state: None,
            replications: default_replications(),
        }
    }
}

/// The network: defaults for every link, and per-link exceptions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Latency of every link without its own.
    #[serde(default)]
    pub latency: Dist,
    /// Probability that a message is lost.
    #[serde(default = "zero")]
    pub loss_probability: Probability,
    /// Probability that a message is delivered twice.
    #[serde(default = "zero")]
    pub duplicate_probability: Probability,
    /// Probability that a message leaves its connection's order.
    #[serde(default = "zero")]
    pub reorder_probability: Probability,
    /// How fast each connection transmits (none: instantly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<crate::size::Bandwidth>,
    /// Links that differ from the defaults.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
}

fn zero() -> Probability {
    Probability(0.0)
}

/// A link that differs from the network's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end.
    pub from: String,
    /// The other end.
    pub to: String,
    /// Whether the settings apply in both directions (default true).
    #[serde(default = "yes")]
    pub both_ways: bool,
    /// Latency on this link.
    #[serde(default)]
    pub latency: Option<Dist>,
    /// Loss probability on this link.
    #[serde(default)]
    pub loss_probability: Option<Probability>,
    /// Duplication probability on this link.
    #[serde(default)]
    pub duplicate_probability: Option<Probability>,
    /// Reorder probability on this link.
    #[serde(default)]
    pub reorder_probability: Option<Probability>,
    /// Bandwidth of this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<crate::size::Bandwidth>,
}

fn yes() -> bool {
    true
}

/// A scheduled fault. Every fault begins at `at_ms` and, if `until_ms` is
/// given, ends then; otherwise it lasts until the drain heals it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", try_from = "FaultTable")]
pub enum FaultSpec {
    /// Nodes in different groups cannot talk, either way. A single group is
    /// cut off from every node not in it.
    Partition {
        /// Start.
        at_ms: Millis,
        /// End (heal).
        until_ms: Option<Millis>,
        /// The sides of the partition.
        groups: Vec<Vec<String>>,
    },
    /// Messages from `from` nodes to `to` nodes are dropped; the other way works.
    OneWayPartition {
        /// Start.
        at_ms: Millis,
        /// End (heal).
        until_ms: Option<Millis>,
        /// Senders that are cut off.
        from: Vec<String>,
        /// Receivers they cannot reach.
        to: Vec<String>,
    },
    /// The node crashes, losing volatile state; it restarts at `until_ms`.
    Crash {
        /// Crash time.
        at_ms: Millis,
        /// Restart time.
        until_ms: Option<Millis>,
        /// Which node.
        node: String,
    },
    /// The node's links and processing are `factor` times slower.
    Slow {
        /// Start.
        at_ms: Millis,
        /// End.
        until_ms: Option<Millis>,
        /// Which node.
        node: String,
        /// Latency multiplier.
        factor: Positive,
    },
    /// Replica `replica` of log broker `broker` crashes; it restarts at
    /// `until_ms`. Partitions it led elect a new leader.
    ReplicaCrash {
        /// Start.
        at_ms: Millis,
        /// Restart.
        until_ms: Option<Millis>,
        /// The log broker.
        broker: String,
        /// Which replica (0-based).
        replica: u32,
    },
    /// Whichever replica leads `partition` of `topic` at `at_ms` crashes;
    /// it restarts at `until_ms`.
    LeaderCrash {
        /// Start.
        at_ms: Millis,
        /// Restart.
        until_ms: Option<Millis>,
        /// The log broker.
        broker: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },
    /// The replicas `replicas` of log broker `broker` (all of them when the
    /// list is empty or absent) lose power at once: they crash, and each
    /// loses what it had not flushed to disk. They restart at `until_ms`.
    PowerLoss {
        /// Start.
        at_ms: Millis,
        /// Power back.
        until_ms: Option<Millis>,
        /// The log broker.
        broker: String,
        /// Which replicas (0-based); empty: all.
        replicas: Vec<u32>,
    },
    /// Node `node` (a queue cluster's node) is lost with its disk: it
    /// crashes and forgets its durable state too; it comes back empty at
    /// `until_ms` (never, without it).
    NodeLoss {
        /// Start.
        at_ms: Millis,
        /// Back, empty.
        until_ms: Option<Millis>,
        /// Which node.
        node: String,
    },
    /// Node `node` (one that answers calls: a store, a service) answers
    /// each call with 500 with `probability` (default 1), without doing
    /// the work.
    Errors {
        /// Start.
        at_ms: Millis,
        /// End.
        until_ms: Option<Millis>,
        /// Which node.
        node: String,
        /// The probability that a call is answered 500.
        probability: Probability,
    },
    /// Loss rises to `probability` on links touching `nodes` (all links
    /// when `nodes` is empty or absent).
    LossSpike {
        /// Start.
        at_ms: Millis,
        /// End.
        until_ms: Option<Millis>,
        /// Loss probability during the spike.
        probability: Probability,
        /// Nodes whose links are affected.
        nodes: Vec<String>,
    },
    /// Duplication rises to `probability` on links touching `nodes` (all
    /// links when `nodes` is empty or absent).
    DuplicateSpike {
        /// Start.
        at_ms: Millis,
        /// End.
        until_ms: Option<Millis>,
        /// Duplication probability during the spike.
        probability: Probability,
        /// Nodes whose links are affected.
        nodes: Vec<String>,
    },
    /// Reordering rises to `probability` on links touching `nodes` (all
    /// links when `nodes` is empty or absent): such messages leave their
    /// connection's order.
    Reorder {
        /// Start.
        at_ms: Millis,
        /// End.
        until_ms: Option<Millis>,
        /// Reorder probability during the fault.
        probability: Probability,
        /// Nodes whose links are affected.
        nodes: Vec<String>,
    },
}

/// A `[[faults]]` table as written (see the `tagged` module).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultTable {
    kind: FaultKind,
    at_ms: Option<Millis>,
    until_ms: Option<Millis>,
    groups: Option<Vec<Vec<String>>>,
    from: Option<Vec<String>>,
    to: Option<Vec<String>>,
    node: Option<String>,
    factor: Option<Positive>,
    probability: Option<Probability>,
    nodes: Option<Vec<String>>,
    broker: Option<String>,
    replica: Option<u32>,
    replicas: Option<Vec<u32>>,
    topic: Option<String>,
    partition: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FaultKind {
    Partition,
    OneWayPartition,
    Crash,
    Slow,
    LossSpike,
    DuplicateSpike,
    Reorder,
    ReplicaCrash,
    LeaderCrash,
    PowerLoss,
    NodeLoss,
    Errors,
}

impl FaultKind {
    /// Its name in a file, and the fields it takes besides `at_ms` and `until_ms`.
    fn takes(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            FaultKind::Partition => ("partition", &["groups"]),
            FaultKind::OneWayPartition => ("one-way-partition", &["from", "to"]),
            FaultKind::Crash => ("crash", &["node"]),
            FaultKind::Slow => ("slow", &["node", "factor"]),
            FaultKind::LossSpike => ("loss-spike", &["probability", "nodes"]),
            FaultKind::DuplicateSpike => ("duplicate-spike", &["probability", "nodes"]),
            FaultKind::Reorder => ("reorder", &["probability", "nodes"]),
            FaultKind::ReplicaCrash => ("replica-crash", &["broker", "replica"]),
            FaultKind::LeaderCrash => ("leader-crash", &["broker", "topic", "partition"]),
            FaultKind::PowerLoss => ("power-loss", &["broker", "replicas"]),
            FaultKind::NodeLoss => ("node-loss", &["node"]),
            FaultKind::Errors => ("errors", &["node", "probability"]),
        }
    }
}

impl TryFrom<FaultTable> for FaultSpec {
    type Error = String;

    fn try_from(t: FaultTable) -> Result<Self, String> {
        use crate::tagged::{need, only, present};
        let p = present!(
            t,
            at_ms,
            until_ms,
            groups,
            from,
            to,
            node,
            factor,
            probability,
            nodes,
            broker,
            replica,
            replicas,
            topic,
            partition
        );
        let (name, takes) = t.kind.takes();
        let w = &format!("a `{name}` fault");
        only(&p, &[&["at_ms", "until_ms"][..], takes].concat(), w)?;
        let (at_ms, until_ms) = (need(t.at_ms, "at_ms", w)?, t.until_ms);
        Ok(match t.kind {
            FaultKind::Partition => FaultSpec::Partition { at_ms, until_ms, groups: need(t.groups, "groups", w)? },
            FaultKind::OneWayPartition => {
                FaultSpec::OneWayPartition { at_ms, until_ms, from: need(t.from, "from", w)?, to: need(t.to, "to", w)? }
            }
            FaultKind::Crash => FaultSpec::Crash { at_ms, until_ms, node: need(t.node, "node", w)? },
            FaultKind::Slow => FaultSpec::Slow {
                at_ms,
                until_ms,
                node: need(t.node, "node", w)?,
                factor: need(t.factor, "factor", w)?,
            },
            FaultKind::ReplicaCrash => FaultSpec::ReplicaCrash {
                at_ms,
                until_ms,
                broker: need(t.broker, "broker", w)?,
                replica: need(t.replica, "replica", w)?,
            },
            FaultKind::LeaderCrash => FaultSpec::LeaderCrash {
                at_ms,
                until_ms,
                broker: need(t.broker, "broker", w)?,
                topic: need(t.topic, "topic", w)?,
                partition: t.partition.unwrap_or(0),
            },
            FaultKind::PowerLoss => power_loss(t, at_ms, until_ms, w)?,
            FaultKind::NodeLoss => FaultSpec::NodeLoss { at_ms, until_ms, node: need(t.node, "node", w)? },
            FaultKind::Errors => errors(t, at_ms, until_ms, w)?,
            FaultKind::LossSpike | FaultKind::DuplicateSpike | FaultKind::Reorder => spike(t, at_ms, until_ms, w)?,
        })
    }
}

/// A `loss-spike`, `duplicate-spike` or `reorder` fault: `nodes` defaults
/// to none (every link).
fn spike(t: FaultTable, at_ms: Millis, until_ms: Option<Millis>, w: &str) -> Result<FaultSpec, String> {
    let probability = crate::tagged::need(t.probability, "probability", w)?;
    let nodes = t.nodes.unwrap_or_default();
    Ok(match t.kind {
        FaultKind::LossSpike => FaultSpec::LossSpike { at_ms, until_ms, probability, nodes },
        FaultKind::DuplicateSpike => FaultSpec::DuplicateSpike { at_ms, until_ms, probability, nodes },
        _ => FaultSpec::Reorder { at_ms, until_ms, probability, nodes },
    })
}

/// An `errors` fault: `probability` defaults to 1 (every call fails).
fn errors(t: FaultTable, at_ms: Millis, until_ms: Option<Millis>, w: &str) -> Result<FaultSpec, String> {
    let node = crate::tagged::need(t.node, "node", w)?;
    Ok(FaultSpec::Errors { at_ms, until_ms, node, probability: t.probability.unwrap_or(Probability(1.0)) })
}

/// A `power-loss` fault: `replicas` defaults to every replica.
fn power_loss(t: FaultTable, at_ms: Millis, until_ms: Option<Millis>, w: &str) -> Result<FaultSpec, String> {
    let broker = crate::tagged::need(t.broker, "broker", w)?;
    Ok(FaultSpec::PowerLoss { at_ms, until_ms, broker, replicas: t.replicas.unwrap_or_default() })
}

impl FaultSpec {
    /// (start, end) in milliseconds.
    pub fn window_ms(&self) -> (f64, Option<f64>) {
        let (a, u) = match self {
            FaultSpec::Partition { at_ms, until_ms, .. }
            | FaultSpec::OneWayPartition { at_ms, until_ms, .. }
            | FaultSpec::Crash { at_ms, until_ms, .. }
            | FaultSpec::NodeLoss { at_ms, until_ms, .. }
            | FaultSpec::Errors { at_ms, until_ms, .. }
            | FaultSpec::Slow { at_ms, until_ms, .. }
            | FaultSpec::LossSpike { at_ms, until_ms, .. }
            | FaultSpec::DuplicateSpike { at_ms, until_ms, .. }
            | FaultSpec::Reorder { at_ms, until_ms, .. }
            | FaultSpec::ReplicaCrash { at_ms, until_ms, .. }
            | FaultSpec::LeaderCrash { at_ms, until_ms, .. }
            | FaultSpec::PowerLoss { at_ms, until_ms, .. } => (at_ms, until_ms),
        };
        (a.0, u.map(|u| u.0))
    }

    /// (start, end) in milliseconds, an open end taken as the start.
    pub fn span_ms(&self) -> (f64, f64) {
        let (a, u) = self.window_ms();
        (a, u.unwrap_or(a))
    }

    /// This fault with its window set to [`at`, `until`] milliseconds.
    pub fn with_window(&self, at: f64, until: f64) -> FaultSpec {
        let mut f = self.clone();
        let (a, u) = match &mut f {
            FaultSpec::Partition { at_ms, until_ms, .. }
            | FaultSpec::OneWayPartition { at_ms, until_ms, .. }
            | FaultSpec::Crash { at_ms, until_ms, .. }
            | FaultSpec::NodeLoss { at_ms, until_ms, .. }
            | FaultSpec::Errors { at_ms, until_ms, .. }
            | FaultSpec::Slow { at_ms, until_ms, .. }
            | FaultSpec::LossSpike { at_ms, until_ms, .. }
            | FaultSpec::DuplicateSpike { at_ms, until_ms, .. }
            | FaultSpec::Reorder { at_ms, until_ms, .. }
            | FaultSpec::ReplicaCrash { at_ms, until_ms, .. }
            | FaultSpec::LeaderCrash { at_ms, until_ms, .. }
            | FaultSpec::PowerLoss { at_ms, until_ms, .. } => (at_ms, until_ms),
        };
        *a = Millis(at);
        *u = Some(Millis(until));
        f
    }
}
