//! What the fault search may draw ([`Space`]), and the drawing itself.
//!
//! A space is read from one variant's [`Config`]: the nodes a fault may name
//! (every node but a replicated table, which runs nothing itself; a crash
//! may take down any of them: a producer's crash fails what it held, which
//! the ledger counts as `send_failed`, not lost), the log brokers with
//! replicas (replica and leader crashes), and the length of the run phase,
//! inside which every window is drawn.
//!
//! Left out: faults of kinds `errors`, `reorder`, `power-loss` and
//! `node-loss` (a scenario can still declare them itself), and workload
//! variations (the search varies the seed, not the scenario's rates).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim_core::broker::LogSpec;
use sim_core::consumer::ConsumerSpec;
use sim_core::log_consumer::LogConsumerSpec;
use sim_core::scenario::{Config, FaultSpec};
use sim_core::units::{Millis, Positive, Probability};

/// Every fault kind the search can draw, as a scenario names it.
pub const KINDS: [&str; 8] = [
    "partition",
    "one-way-partition",
    "crash",
    "loss-spike",
    "duplicate-spike",
    "slow",
    "replica-crash",
    "leader-crash",
];

/// How the search is bounded: from the command line.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SearchOpts {
    /// Most faults in one case (at least 1).
    pub max_faults: usize,
    /// Fault kinds to draw from (empty: every kind the space allows).
    pub kinds: Vec<String>,
    /// Nodes faults may name (empty: every node a fault may name).
    pub nodes: Vec<String>,
    /// Length of the run phase in ms, when the configuration does not fix
    /// it (`run.duration_ms`): measured on the baseline run.
    pub run_ms: Option<f64>,
}

/// A log broker that replicates, as the drawing sees it.
#[derive(Clone, Debug)]
struct Replicated {
    name: String,
    replicas: u32,
    /// (topic, partitions).
    topics: Vec<(String, u32)>,
}

/// What may be drawn for one variant.
#[derive(Clone, Debug)]
pub struct Space {
    /// Nodes a partition or a spike may name, in id order.
    pub nodes: Vec<String>,
    /// Nodes a crash or a slow-down may name.
    pub crashable: Vec<String>,
    /// Log brokers with replicas (single-node ones: a cluster's brokers are
    /// nodes, crashed with `crash`).
    logs: Vec<Replicated>,
    /// The kinds drawn, each one the space can make.
    pub kinds: Vec<&'static str>,
    /// Length of the run phase, in ms: every window starts inside it.
    pub run_ms: f64,
    /// Most faults in one case.
    pub max_faults: usize,
}

/// Whether `name` is a replicated table (its members are the nodes).
fn replicated_table(c: &Config, name: &str) -> bool {
    let queue = c.spec::<ConsumerSpec>(name).is_some_and(|s| s.member.is_none() && s.replicas.is_some());
    let log = c.spec::<LogConsumerSpec>(name).is_some_and(|s| s.member.is_none() && s.replicas.is_some());
    queue || log
}

impl Space {
    /// The space of `c`, narrowed by `opts`.
    pub fn from_config(c: &Config, opts: &SearchOpts) -> Space {
        let chosen = |n: &str| opts.nodes.is_empty() || opts.nodes.iter().any(|x| x == n);
        let nodes: Vec<String> = c
            .topology()
            .nodes()
            .iter()
            .filter(|n| !replicated_table(c, n.name()) && chosen(n.name()))
            .map(|n| n.name().to_string())
            .collect();
        let crashable = nodes.clone();
        let logs: Vec<Replicated> = c
            .specs::<LogSpec>()
            .filter(|(n, s)| s.brokers.is_none() && s.replicas > 1 && chosen(n))
            .map(|(n, s)| Replicated {
                name: n.to_string(),
                replicas: s.replicas,
                topics: s.topics.iter().map(|(t, spec)| (t.clone(), spec.partitions)).collect(),
            })
            .collect();
        let run_ms = c.run.duration_ms.map(|d| d.0).or(opts.run_ms).unwrap_or(10_000.0).max(1.0);
        let mut space = Space { nodes, crashable, logs, kinds: Vec::new(), run_ms, max_faults: opts.max_faults.max(1) };
        space.kinds = KINDS
            .iter()
            .copied()
            .filter(|k| opts.kinds.is_empty() || opts.kinds.iter().any(|x| x == k))
            .filter(|k| space.can_draw(k))
            .collect();
        space
    }

    /// Whether this space has what a fault of `kind` needs.
    fn can_draw(&self, kind: &str) -> bool {
        match kind {
            "partition" | "one-way-partition" => self.nodes.len() >= 2,
            "crash" | "slow" => !self.crashable.is_empty(),
            "loss-spike" | "duplicate-spike" => true,
            "replica-crash" | "leader-crash" => !self.logs.is_empty(),
            _ => false,
        }
    }

    /// Draws one fault, its window anywhere in the run phase.
    pub fn draw_fault(&self, rng: &mut ChaCha8Rng) -> FaultSpec {
        let at = (rng.random::<f64>() * self.run_ms).floor();
        self.draw_fault_at(rng, at)
    }

    /// Draws one fault starting at `at_ms` (within the run phase): its kind, its targets and its
    /// length (from 1% to half of the run phase, log-uniform).
    pub fn draw_fault_at(&self, rng: &mut ChaCha8Rng, at_ms: f64) -> FaultSpec {
        let kinds = if self.kinds.is_empty() { &["loss-spike"][..] } else { &self.kinds[..] };
        let kind = kinds[rng.random_range(0..kinds.len())];
        let (lo, hi) = ((self.run_ms / 100.0).ln(), (self.run_ms / 2.0).ln());
        let length = (lo + rng.random::<f64>() * (hi - lo)).exp().ceil().max(1.0);
        // A start past the run phase (a window chained on a long one) is
        // pulled back into it.
        let at = at_ms.clamp(0.0, (self.run_ms - 1.0).max(0.0)).floor();
        let (at_ms, until_ms) = (Millis(at), Some(Millis(at + length)));
        match kind {
            "partition" => {
                let (a, b) = self.split(rng);
                FaultSpec::Partition { at_ms, until_ms, groups: vec![a, b] }
            }
            "one-way-partition" => {
                let (from, to) = self.split(rng);
                FaultSpec::OneWayPartition { at_ms, until_ms, from, to }
            }
            "crash" => FaultSpec::Crash { at_ms, until_ms, node: pick(rng, &self.crashable).clone() },
            "slow" => {
                let factor = Positive((2.0 + rng.random::<f64>() * 18.0).round());
                FaultSpec::Slow { at_ms, until_ms, node: pick(rng, &self.crashable).clone(), factor }
            }
            "loss-spike" | "duplicate-spike" => self.spike(rng, kind, at_ms, until_ms),
            _ => self.log_fault(rng, kind, at_ms, until_ms),
        }
    }

    /// Two non-empty sides, at random: each node on one side (2 in 5
    /// each) or on neither (1 in 5: a bridge, as in Jepsen, that still
    /// reaches both).
    fn split(&self, rng: &mut ChaCha8Rng) -> (Vec<String>, Vec<String>) {
        loop {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for n in &self.nodes {
                match rng.random_range(0..5) {
                    0 | 1 => a.push(n.clone()),
                    2 | 3 => b.push(n.clone()),
                    _ => {}
                }
            }
            if !a.is_empty() && !b.is_empty() {
                return (a, b);
            }
        }
    }

    /// A loss or duplicate spike of probability 0.1 to 0.5 (rounded to a
    /// hundredth), on one node's links or on every link.
    fn spike(&self, rng: &mut ChaCha8Rng, kind: &str, at_ms: Millis, until_ms: Option<Millis>) -> FaultSpec {
        let probability = Probability(((0.1 + rng.random::<f64>() * 0.4) * 100.0).round() / 100.0);
        let nodes = if rng.random::<bool>() { vec![pick(rng, &self.nodes).clone()] } else { Vec::new() };
        if kind == "loss-spike" {
            FaultSpec::LossSpike { at_ms, until_ms, probability, nodes }
        } else {
            FaultSpec::DuplicateSpike { at_ms, until_ms, probability, nodes }
        }
    }

    /// A replica crash or a leader crash of a replicated log broker.
    fn log_fault(&self, rng: &mut ChaCha8Rng, kind: &str, at_ms: Millis, until_ms: Option<Millis>) -> FaultSpec {
        let log = pick(rng, &self.logs);
        if kind == "replica-crash" {
            let replica = rng.random_range(0..log.replicas);
            return FaultSpec::ReplicaCrash { at_ms, until_ms, broker: log.name.clone(), replica };
        }
        let (topic, partitions) = pick(rng, &log.topics).clone();
        let partition = rng.random_range(0..partitions.max(1));
        FaultSpec::LeaderCrash { at_ms, until_ms, broker: log.name.clone(), topic, partition }
    }
}

/// One item of a non-empty list, uniformly.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}
