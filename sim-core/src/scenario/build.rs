//! Turns a validated [`Config`] into a ready-to-run [`Engine`]. Node ids
//! follow the topology's canonical order (by section rank: producers,
//! brokers, consumers, clients, then sections of registered kinds; then by
//! name), each kind builds its nodes, and every random stream is named
//! after its node, so the run depends only on the configuration and the
//! seed.

use super::schema::{Config, FaultSpec};
use crate::broker::LogSpec;
use crate::engine::{Engine, RunLimits, RunOutput};
use crate::kind::{Build, Topology};
use crate::message::NodeId;
use crate::net::{Fault, FaultAction, LinkModel, Network, NodeFault};
use crate::time::ms_to_ns;
use std::collections::BTreeMap;

/// Builds the engine for `config` with `seed`, recording a trace of at most
/// `trace_limit` events (0: none). The configuration must have been
/// validated (as every [`super::Scenario`] config is).
pub fn build_engine(config: &Config, seed: u64, trace_limit: usize) -> Engine {
    let topology = config.topology();
    let names = topology.names();
    let (domains, domain_of) = topology.domains();
    let nodes = Build::all(topology, &domain_of);
    let network = network(config, seed, &names);
    let id = |n: &str| topology.id(n).expect("validated: every node named exists");
    let faults = config.faults.iter().enumerate().map(|(i, f)| resolve_fault(i, f, &id, &names, topology)).collect();
    let limits = RunLimits {
        run_ns: config.run.duration_ms.map(|d| ms_to_ns(d.0)),
        drain_ns: ms_to_ns(config.run.drain_ms.0),
        sample_ns: ms_to_ns(config.run.sample_interval_ms.0).max(1),
        max_events: config.run.max_events,
        max_memory_bytes: config.run.max_memory_mb.saturating_mul(1 << 20),
        trace_limit,
    };
    let mut engine = Engine::new(seed, nodes, network, faults, limits);
    engine.set_domains(domains, domain_of);
    if let Some(spec) = &config.run.steady_state {
        engine.analyse_steady_state(spec.clone());
    }
    engine
}

/// The network: the default link model, refined by `network.links`.
fn network(config: &Config, seed: u64, names: &[String]) -> Network {
    let id = |n: &str| config.topology().id(n).expect("validated: links name nodes") as usize;
    let net = &config.network;
    let default = LinkModel {
        latency: net.latency.sampler(),
        loss_probability: net.loss_probability.0,
        duplicate_probability: net.duplicate_probability.0,
        reorder_probability: net.reorder_probability.0,
        bandwidth: net.bandwidth,
    };
    let mut links: BTreeMap<(usize, usize), LinkModel> = BTreeMap::new();
    // Later entries win, so a file can set a broad rule and then refine it.
    for l in &net.links {
        let (a, b) = (id(&l.from), id(&l.to));
        let mut pairs = vec![(a, b)];
        if l.both_ways {
            pairs.push((b, a));
        }
        for (x, y) in pairs {
            let m = links.entry((x, y)).or_insert_with(|| default.clone());
            if let Some(d) = &l.latency {
                m.latency = d.sampler();
            }
            if let Some(p) = l.loss_probability {
                m.loss_probability = p.0;
            }
            if let Some(p) = l.duplicate_probability {
                m.duplicate_probability = p.0;
            }
            if let Some(p) = l.reorder_probability {
                m.reorder_probability = p.0;
            }
            if l.bandwidth.is_some() {
                m.bandwidth = l.bandwidth;
            }
        }
    }
    let mut network = Network::new(seed, names, default);
    for ((from, to), model) in links {
        network.set_link(from as NodeId, to as NodeId, model);
    }
    network
}

fn resolve_fault(
    index: usize,
    f: &FaultSpec,
    id: &dyn Fn(&str) -> NodeId,
    names: &[String],
    topology: &Topology,
) -> Fault {
    let (at, until) = f.window_ms();
    let ids = |v: &[String]| v.iter().map(|n| id(n)).collect::<Vec<_>>();
    let show = |v: &[String]| format!("[{}]", v.join(", "));
    let (action, label) = match f {
        FaultSpec::Partition { groups, .. } => partition(groups, id, names.len()),
        FaultSpec::OneWayPartition { from, to, .. } => {
            let (a, b) = (ids(from), ids(to));
            let blocked = a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).collect();
            (FaultAction::Partition { blocked }, format!("one-way partition {} -> {}", show(from), show(to)))
        }
        FaultSpec::Crash { node, .. } => {
            (FaultAction::Crash { node: id(node), lose_disk: false }, format!("crash {node}"))
        }
        FaultSpec::NodeLoss { node, .. } => {
            (FaultAction::Crash { node: id(node), lose_disk: true }, format!("lose {node} with its disk"))
        }
        FaultSpec::ReplicaCrash { broker, replica, .. } => (
            FaultAction::Part { node: id(broker), fault: NodeFault::ReplicaCrash { replica: *replica } },
            format!("crash {broker} replica {replica}"),
        ),
        FaultSpec::PowerLoss { broker, replicas, .. } => (
            FaultAction::Part { node: id(broker), fault: NodeFault::PowerLoss { replicas: replicas.clone() } },
            power_loss_label(broker, replicas),
        ),
        FaultSpec::LeaderCrash { broker, topic, partition, .. } => {
            let t = topology.spec::<LogSpec>(broker).map_or(0, |l| l.topic_index(topic)) as u16;
            (
                FaultAction::Part {
                    node: id(broker),
                    fault: NodeFault::LeaderCrash { topic: t, partition: *partition, fault: index as u32 },
                },
                format!("crash the leader of {broker}/{topic}/{partition}"),
            )
        }
        FaultSpec::Errors { node, probability, .. } => errors(id(node), node, probability.0),
        FaultSpec::Slow { node, factor, .. } => {
            (FaultAction::Slow { node: id(node), factor: factor.0 }, format!("slow {node} x{}", factor.0))
        }
        FaultSpec::LossSpike { probability: p, nodes, .. } => {
            spike("loss spike", p.0, ids(nodes), &show(nodes), |probability, nodes| FaultAction::LossSpike {
                probability,
                nodes,
            })
        }
        FaultSpec::DuplicateSpike { probability: p, nodes, .. } => {
            spike("duplicate spike", p.0, ids(nodes), &show(nodes), |probability, nodes| FaultAction::DuplicateSpike {
                probability,
                nodes,
            })
        }
        FaultSpec::Reorder { probability: p, nodes, .. } => {
            spike("reorder", p.0, ids(nodes), &show(nodes), |probability, nodes| FaultAction::Reorder {
                probability,
                nodes,
            })
        }
    };
    Fault { start: ms_to_ns(at), end: until.map(ms_to_ns), action, label }
}

/// An `errors` fault: the node is told, with the probability in thousandths.
fn errors(node: NodeId, name: &str, probability: f64) -> (FaultAction, String) {
    let ppm = (probability * 1e6).round() as u32;
    let label =
        if ppm == 1_000_000 { format!("errors at {name}") } else { format!("errors at {name} p={probability}") };
    (FaultAction::Part { node, fault: NodeFault::Errors { ppm } }, label)
}

/// "power loss of kafka" or "power loss of kafka replicas [0, 2]".
fn power_loss_label(broker: &str, replicas: &[u32]) -> String {
    if replicas.is_empty() {
        return format!("power loss of {broker}");
    }
    let list: Vec<String> = replicas.iter().map(u32::to_string).collect();
    format!("power loss of {broker} replicas [{}]", list.join(", "))
}

/// The action and label of a partition between `groups` (one group: cut off
/// from the other `nodes` nodes).
fn partition(groups: &[Vec<String>], id: &dyn Fn(&str) -> NodeId, nodes: usize) -> (FaultAction, String) {
    let show = |v: &[String]| format!("[{}]", v.join(", "));
    let mut sides: Vec<Vec<NodeId>> = groups.iter().map(|g| g.iter().map(|n| id(n)).collect()).collect();
    let mut label = groups.iter().map(|g| show(g)).collect::<Vec<_>>().join(" | ");
    if sides.len() == 1 {
        // One group: cut off from everyone else.
        let rest: Vec<NodeId> = (0..nodes as NodeId).filter(|i| !sides[0].contains(i)).collect();
        sides.push(rest);
        label.push_str(" | rest");
    }
    let mut blocked = Vec::new();
    for (i, a) in sides.iter().enumerate() {
        for (j, b) in sides.iter().enumerate() {
            if i != j {
                blocked.extend(a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))));
            }
        }
    }
    (FaultAction::Partition { blocked }, format!("partition {label}"))
}

/// The action `make` makes of a spike of `probability` on the links of
/// `nodes` (`shown` as written; all links when empty), and its label.
fn spike(
    what: &str,
    probability: f64,
    nodes: Vec<NodeId>,
    shown: &str,
    make: fn(f64, Vec<NodeId>) -> FaultAction,
) -> (FaultAction, String) {
    let on = if nodes.is_empty() { "all links".to_string() } else { format!("links of {shown}") };
    (make(probability, nodes), format!("{what} {probability} on {on}"))
}

/// Builds and runs `config` with `seed` to the end.
/// A bound (`run.max_events`, `run.max_memory_mb`) may stop it early: see
/// [`RunOutput::stopped`].
pub fn run_config(config: &Config, seed: u64, trace_limit: usize) -> RunOutput {
    build_engine(config, seed, trace_limit).run()
}
