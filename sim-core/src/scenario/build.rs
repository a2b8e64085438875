//! Turns a validated [`Config`] into a ready-to-run [`Engine`]. Node ids
//! follow a fixed order (producers, brokers, consumers, clients, each by
//! name), and every random stream is named after its node, so the run
//! depends only on the configuration and the seed.

use super::schema::{Config, FaultSpec};
use crate::broker::{BrokerSpec, GroupInfo, LogBroker, LogSpec, QueueBroker};
use crate::client::Client;
use crate::consumer::{AckTiming, Consumer, ConsumerSpec};
use crate::engine::{boxed, Engine, Node, RunError, RunLimits, RunOutput};
use crate::log_consumer::{CommitMode, LogConsumer, LogConsumerSetup};
use crate::message::NodeId;
use crate::net::{Fault, FaultAction, LinkModel, Network, NodeFault};
use crate::producer::LogTarget;
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

    let log_of = |broker: &str| match config.brokers.get(broker) {
        Some(BrokerSpec::Log(l)) => Some(l),
        _ => None,
    };
    let topic_index = |l: &LogSpec, topic: &str| l.topics.keys().position(|t| t == topic).unwrap_or(0);

    // Effect domains, numbered in order of first use by consumer order. A
    // group member's domain defaults to its group.
    let n = names.len();
    let mut domains: Vec<String> = Vec::new();
    let mut domain_of = vec![0; n];
    let users = config.consumers.iter().map(|(name, c)| (name, config.consumer_domain(c)));
    for (name, d) in users.chain(config.clients.iter().map(|(name, c)| (name, c.domain_name()))) {
        let i = domains.iter().position(|x| *x == d).unwrap_or_else(|| {
            domains.push(d);
            domains.len() - 1
        });
        domain_of[id(name) as usize] = i as crate::ledger::DomainId;
    }

    // Consumer groups of each log broker, in order of first member.
    let mut groups: BTreeMap<&str, Vec<GroupInfo>> = BTreeMap::new();
    for (name, c) in &config.consumers {
        let Some(l) = log_of(&c.source) else { continue };
        let list = groups.entry(c.source.as_str()).or_default();
        let g = group_name(c);
        if !list.iter().any(|x| x.name == g) {
            list.push(GroupInfo {
                name: g,
                topic: topic_index(l, c.topic.as_deref().unwrap_or("")),
                domain: domain_of[id(name) as usize],
                assignor: c.assignment.unwrap_or_default(),
            });
        }
    }

    let mut nodes: Vec<(String, Box<dyn Node>)> = Vec::with_capacity(names.len());
    for (name, p) in &config.producers {
        let log = log_of(&p.target).map(|l| {
            let t = p.topic.as_deref().unwrap_or("");
            let partitions = l.topics.get(t).map_or(1, |t| t.partitions.max(1));
            LogTarget { topic: topic_index(l, t) as u16, partitions }
        });
        nodes.push((name.clone(), boxed(Producer::new(p, id(&p.target), log))));
    }
    for (name, b) in &config.brokers {
        let component: Box<dyn Node> = match b {
            BrokerSpec::Queue(q) => {
                // A fan-out broker routes each consumer's acks and subscribes
                // to the subscription it names (numbered in name order).
                let route = config
                    .consumers
                    .iter()
                    .filter(|(_, c)| c.source == *name)
                    .filter_map(|(c_name, c)| {
                        let sub = c.subscription.as_deref()?;
                        Some((id(c_name), q.subscriptions.keys().position(|s| s == sub)?))
                    })
                    .collect();
                boxed(QueueBroker::new(q, q.dead_letter.as_deref().map(id), route))
            }
            BrokerSpec::Log(l) => boxed(LogBroker::new(l, groups.remove(name.as_str()).unwrap_or_default())),
        };
        nodes.push((name.clone(), component));
    }
    // Dedup stores by name, numbered in order of first use.
    let mut stores: Vec<String> = Vec::new();
    for (name, c) in &config.consumers {
        // A group member's default store is its group's (two groups are two
        // services, each with its own database).
        let store_name = match (log_of(&c.source), &c.dedup_store) {
            (Some(_), None) => c.store_name().map(|_| format!("{}/{}", c.source, group_name(c))),
            _ => c.store_name(),
        };
        let store = store_name.map(|s| match stores.iter().position(|x| *x == s) {
            Some(i) => i,
            None => {
                stores.push(s);
                stores.len() - 1
            }
        });
        let component: Box<dyn Node> = match log_of(&c.source) {
            Some(l) => boxed(LogConsumer::new(log_setup(c, l, id(&c.source), store, &group_ids(config, &c.source)))),
            None => {
                let mut consumer = Consumer::new(c, id(&c.source), store);
                if let Some(to) = &c.forward_to {
                    consumer = consumer.with_forward(c, id(to));
                }
                boxed(consumer)
            }
        };
        nodes.push((name.clone(), component));
    }
    for (name, c) in &config.clients {
        nodes.push((name.clone(), boxed(Client::new(c, id(&c.target), id(&c.responses)))));
    }

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

    let faults = config.faults.iter().enumerate().map(|(i, f)| resolve_fault(i, f, &id, &names, config)).collect();
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

/// The consumer group of a log consumer.
fn group_name(c: &ConsumerSpec) -> String {
    c.group_name()
}

/// The groups of log broker `broker`, in the order the broker numbers them.
fn group_ids(config: &Config, broker: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for c in config.consumers.values().filter(|c| c.source == broker) {
        let g = group_name(c);
        if !ids.contains(&g) {
            ids.push(g);
        }
    }
    ids
}

fn log_setup(
    c: &ConsumerSpec,
    l: &LogSpec,
    broker: NodeId,
    store: Option<usize>,
    groups: &[String],
) -> LogConsumerSetup {
    let group = groups.iter().position(|g| *g == group_name(c)).unwrap_or(0) as u16;
    let output = c.output_topic.as_deref().map(|t| {
        let index = l.topics.keys().position(|x| x == t).unwrap_or(0) as u16;
        (index, l.topics.get(t).map_or(1, |t| t.partitions.max(1)))
    });
    LogConsumerSetup {
        broker,
        group,
        processing: c.processing.clone(),
        commit: match c.ack {
            AckTiming::Before => CommitMode::Before,
            AckTiming::After | AckTiming::AfterForward => CommitMode::After,
            AckTiming::Auto => CommitMode::Auto(ms_to_ns(c.auto_commit_interval_ms.map_or(5000.0, |m| m.0))),
        },
        max_poll_records: c.max_poll_records.unwrap_or(500).max(1),
        heartbeat_ns: ms_to_ns(c.heartbeat_interval_ms.map_or(300.0, |m| m.0)).max(1),
        request_timeout_ns: ms_to_ns(c.resubscribe_ms.0).max(1),
        store,
        output,
        transactional: c.transactional,
    }
}

fn resolve_fault(index: usize, f: &FaultSpec, id: &dyn Fn(&str) -> NodeId, names: &[String], config: &Config) -> Fault {
    let log_of = |broker: &str| match config.brokers.get(broker) {
        Some(BrokerSpec::Log(l)) => Some(l),
        _ => None,
    };
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
        FaultSpec::ReplicaCrash { broker, replica, .. } => (
            FaultAction::Part { node: id(broker), fault: NodeFault::ReplicaCrash { replica: *replica } },
            format!("crash {broker} replica {replica}"),
        ),
        FaultSpec::LeaderCrash { broker, topic, partition, .. } => {
            let t = log_of(broker).map_or(0, |l| l.topics.keys().position(|x| x == topic).unwrap_or(0)) as u16;
            (
                FaultAction::Part {
                    node: id(broker),
                    fault: NodeFault::LeaderCrash { topic: t, partition: *partition, fault: index as u32 },
                },
                format!("crash the leader of {broker}/{topic}/{partition}"),
            )
        }
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
