//! Turns a validated [`Config`] into a ready-to-run [`Engine`]. Node ids
//! follow a fixed order (producers, brokers, consumers, clients, each by
//! name), and every random stream is named after its node, so the run
//! depends only on the configuration and the seed.

use super::schema::{Config, FaultSpec};
use crate::broker::{BrokerSpec, QueueBroker};
use crate::client::Client;
use crate::consumer::Consumer;
use crate::engine::{Component, Engine, RunError, RunLimits, RunOutput};
use crate::message::NodeId;
use crate::net::{Fault, FaultAction, LinkModel, Network};
use crate::producer::Producer;
use crate::time::ms_to_ns;
use std::collections::BTreeMap;

/// Builds the engine for `config` with `seed`, recording a trace of at most
/// `trace_limit` events (0: none). The configuration must have been
/// validated (as every [`super::Scenario`] config is).
pub fn build_engine(config: &Config, seed: u64, trace_limit: usize) -> Engine {
    let mut names: Vec<String> = Vec::new();
    names.extend(config.producers.keys().cloned());
    names.extend(config.brokers.keys().cloned());
    names.extend(config.consumers.keys().cloned());
    // Clients come last, so that adding them shifts no other node's id.
    names.extend(config.clients.keys().cloned());
    let ids: BTreeMap<&str, NodeId> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as NodeId)).collect();
    let id = |n: &str| ids[n];

    let mut nodes: Vec<(String, Box<dyn Component>)> = Vec::with_capacity(names.len());
    for (name, p) in &config.producers {
        nodes.push((name.clone(), Box::new(Producer::new(p, id(&p.target)))));
    }
    for (name, b) in &config.brokers {
        let component: Box<dyn Component> = match b {
            BrokerSpec::Queue(q) => Box::new(QueueBroker::new(q, q.dead_letter.as_deref().map(id))),
        };
        nodes.push((name.clone(), component));
    }
    // Dedup stores by name, numbered in order of first use.
    let mut stores: Vec<String> = Vec::new();
    for (name, c) in &config.consumers {
        let store = c.store_name().map(|s| match stores.iter().position(|x| *x == s) {
            Some(i) => i,
            None => {
                stores.push(s);
                stores.len() - 1
            }
        });
        let mut consumer = Consumer::new(c, id(&c.source), store);
        if let Some(to) = &c.forward_to {
            consumer = consumer.with_forward(c, id(to));
        }
        nodes.push((name.clone(), Box::new(consumer)));
    }
    for (name, c) in &config.clients {
        nodes.push((name.clone(), Box::new(Client::new(c, id(&c.target), id(&c.responses)))));
    }

    let n = names.len();
    let net = &config.network;
    let default = LinkModel {
        latency: net.latency.sampler(),
        loss_probability: net.loss_probability.0,
        duplicate_probability: net.duplicate_probability.0,
    };
    let mut links: Vec<LinkModel> = vec![default; n * n];
    // Later entries win, so a file can set a broad rule and then refine it.
    for l in &net.links {
        let (a, b) = (id(&l.from) as usize, id(&l.to) as usize);
        let mut pairs = vec![(a, b)];
        if l.both_ways {
            pairs.push((b, a));
        }
        for (x, y) in pairs {
            let m = &mut links[x * n + y];
            if let Some(d) = &l.latency {
                m.latency = d.sampler();
            }
            if let Some(p) = l.loss_probability {
                m.loss_probability = p.0;
            }
            if let Some(p) = l.duplicate_probability {
                m.duplicate_probability = p.0;
            }
        }
    }
    let network = Network::new(seed, &names, |from, to| links[from * n + to].clone());

    // Effect domains, numbered in order of first use by node order.
    let domains = config.effect_domains();
    let mut domain_of = vec![0; n];
    let users = config.consumers.iter().map(|(name, c)| (name, c.domain_name()));
    for (name, d) in users.chain(config.clients.iter().map(|(name, c)| (name, c.domain_name()))) {
        let i = domains.iter().position(|x| *x == d).unwrap_or(0);
        domain_of[id(name) as usize] = i as crate::ledger::DomainId;
    }

    let faults = config.faults.iter().map(|f| resolve_fault(f, &id, &names)).collect();
    let limits = RunLimits {
        run_ns: config.run.duration_ms.map(|d| ms_to_ns(d.0)),
        drain_ns: ms_to_ns(config.run.drain_ms.0),
        sample_ns: ms_to_ns(config.run.sample_interval_ms.0).max(1),
        max_events: config.run.max_events,
        trace_limit,
    };
    let mut engine = Engine::new(seed, nodes, network, faults, limits);
    engine.set_domains(domains, domain_of);
    engine
}

fn resolve_fault(f: &FaultSpec, id: &dyn Fn(&str) -> NodeId, names: &[String]) -> Fault {
    let (at, until) = f.window_ms();
    let ids = |v: &[String]| v.iter().map(|n| id(n)).collect::<Vec<_>>();
    let show = |v: &[String]| format!("[{}]", v.join(", "));
    let (action, label) = match f {
        FaultSpec::Partition { groups, .. } => {
            let mut sides: Vec<Vec<NodeId>> = groups.iter().map(|g| ids(g)).collect();
            let mut label = groups.iter().map(|g| show(g)).collect::<Vec<_>>().join(" | ");
            if sides.len() == 1 {
                // One group: cut off from everyone else.
                let rest: Vec<NodeId> = (0..names.len() as NodeId).filter(|i| !sides[0].contains(i)).collect();
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
        FaultSpec::OneWayPartition { from, to, .. } => {
            let (a, b) = (ids(from), ids(to));
            let blocked = a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y))).collect();
            (FaultAction::Partition { blocked }, format!("one-way partition {} -> {}", show(from), show(to)))
        }
        FaultSpec::Crash { node, .. } => (FaultAction::Crash { node: id(node) }, format!("crash {node}")),
        FaultSpec::Slow { node, factor, .. } => {
            (FaultAction::Slow { node: id(node), factor: factor.0 }, format!("slow {node} x{}", factor.0))
        }
        FaultSpec::LossSpike { probability, nodes, .. } => {
            let on = if nodes.is_empty() { "all links".to_string() } else { format!("links of {}", show(nodes)) };
            (
                FaultAction::LossSpike { probability: probability.0, nodes: ids(nodes) },
                format!("loss spike {} on {on}", probability.0),
            )
        }
    };
    Fault { start: ms_to_ns(at), end: until.map(ms_to_ns), action, label }
}

/// Builds and runs `config` with `seed` to the end.
pub fn run_config(config: &Config, seed: u64, trace_limit: usize) -> Result<RunOutput, RunError> {
    build_engine(config, seed, trace_limit).run()
}
