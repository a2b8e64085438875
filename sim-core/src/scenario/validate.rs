//! Checks a configuration for what serde's types alone cannot see, apart
//! from each node's own checks, which its kind makes: a scenario with no
//! nodes, a run that would never end, links and faults that name nodes.
//! Each failure names the field's path.

use super::schema::{Config, FaultSpec};
use crate::broker::LogSpec;
use crate::kind::{Invalid, Topology};

fn fail<T>(parts: &[&str], message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid::at(parts, message))
}

/// Validates `c`, returning the first problem found.
pub(super) fn validate(c: &Config) -> Result<(), Invalid> {
    let topology = c.topology();
    if topology.is_empty() {
        return fail(&["producers"], "the scenario has no nodes: add producers, brokers and consumers");
    }
    check_run(c)?;
    if let Err((i, message)) = crate::check::check_names(&c.invariants) {
        return fail(&["invariants", &i.to_string()], message);
    }
    for node in topology.nodes() {
        node.kind_ref().validate(node, topology)?;
        // Any kind's effect domain, user-registered ones too, becomes a key
        // (`domains.NAME.lost`).
        if let Some(domain) = node.kind_ref().domain(node, topology) {
            crate::names::check("an effect domain", &domain).map_err(|m| node.invalid("domain", m))?;
        }
    }
    check_network(c)?;
    for (i, f) in c.faults.iter().enumerate() {
        check_fault(&i.to_string(), f, topology)?;
    }
    check_alarms(c)
}

/// Each alarm watches a gauge some node of the scenario reports, or the
/// built-in total queue depth.
fn check_alarms(c: &Config) -> Result<(), Invalid> {
    let mut known: Vec<&str> =
        c.topology().nodes().iter().flat_map(|n| n.kind_ref().gauges().iter().copied()).collect();
    known.push(crate::alarms::QUEUE_DEPTH);
    known.sort_unstable();
    known.dedup();
    let suggest = |name: &str, known: &[&str]| {
        let candidates: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        crate::expect::closest(name, &candidates).map(str::to_string)
    };
    crate::alarms::check(&c.alarms, &known, suggest)
        .map_err(|(i, field, message)| Invalid::at(&["alarms", &i.to_string(), field], message))
}

/// The run's limits, and a run phase that ends: with no `duration_ms`,
/// every source of messages (a producer, a client) needs a count.
fn check_run(c: &Config) -> Result<(), Invalid> {
    if c.run.sample_interval_ms.0 <= 0.0 {
        return fail(&["run", "sample_interval_ms"], "expected a duration above 0");
    }
    if c.run.max_events == 0 {
        return fail(&["run", "max_events"], "expected at least 1");
    }
    if c.run.max_memory_mb == 0 {
        return fail(&["run", "max_memory_mb"], "expected at least 1");
    }
    if c.run.duration_ms.is_some() {
        return Ok(());
    }
    let mut sources = c.topology().nodes().iter().filter_map(|n| Some((n, n.kind_ref().messages(n)?))).peekable();
    if sources.peek().is_none() {
        return fail(&["run", "duration_ms"], "the run never ends: with no producers, set run.duration_ms");
    }
    if let Some((n, _)) = sources.find(|(_, count)| count.is_none()) {
        return Err(n.invalid(
            "messages",
            format!("the run never ends: give every {} a `messages` count, or set run.duration_ms", n.kind()),
        ));
    }
    Ok(())
}

fn check_network(c: &Config) -> Result<(), Invalid> {
    let topology = c.topology();
    c.network.latency.check().or_else(|m| fail(&["network", "latency"], m))?;
    for (i, l) in c.network.links.iter().enumerate() {
        let i = i.to_string();
        for (field, n) in [("from", &l.from), ("to", &l.to)] {
            if topology.node(n).is_none() {
                let message = format!("no node named `{n}` (nodes: {})", topology.list_all());
                return fail(&["network", "links", &i, field], message);
            }
        }
        if let Some(d) = &l.latency {
            d.check().or_else(|m| fail(&["network", "links", &i, "latency"], m))?;
        }
    }
    Ok(())
}

/// The number of members when `name` is a replicated consumer table's own
/// node (which runs nothing: a fault must name a member).
fn replicated(topology: &Topology, name: &str) -> Option<u32> {
    let queue =
        topology.spec::<crate::consumer::ConsumerSpec>(name).filter(|s| s.member.is_none()).and_then(|s| s.replicas);
    let log = topology
        .spec::<crate::log_consumer::LogConsumerSpec>(name)
        .filter(|s| s.member.is_none())
        .and_then(|s| s.replicas);
    queue.or(log)
}

/// Checks fault number `i`.
fn check_fault(i: &str, f: &FaultSpec, topology: &Topology) -> Result<(), Invalid> {
    let (at, until) = f.window_ms();
    if let Some(u) = until {
        if u < at {
            return fail(&["faults", i, "until_ms"], format!("ends ({u} ms) before it begins ({at} ms)"));
        }
    }
    let check = |field: &str, names: &[String]| -> Result<(), Invalid> {
        if let Some(n) = names.iter().find(|n| topology.node(n).is_none()) {
            return fail(&["faults", i, field], format!("no node named `{n}` (nodes: {})", topology.list_all()));
        }
        match names.iter().find_map(|n| replicated(topology, n).map(|r| (n, r))) {
            Some((n, r)) => fail(
                &["faults", i, field],
                format!("`{n}` is a replicated table (`replicas = {r}`) and runs nothing itself: name one of its members, `{n}-1` to `{n}-{r}`"),
            ),
            None => Ok(()),
        }
    };
    match f {
        FaultSpec::Partition { groups, .. } => {
            if groups.is_empty() || groups.iter().any(Vec::is_empty) {
                return fail(&["faults", i, "groups"], "expected one or more non-empty groups of node names");
            }
            // A node on two sides of one partition would be cut off from
            // itself: the fault would mean nothing.
            let all = groups.concat();
            if let Some(n) = all.iter().enumerate().find_map(|(k, n)| all[..k].contains(n).then_some(n)) {
                return fail(&["faults", i, "groups"], format!("`{n}` is named twice: each node belongs to one side"));
            }
            check("groups", &groups.concat())
        }
        FaultSpec::OneWayPartition { from, to, .. } => {
            if from.is_empty() || to.is_empty() {
                return fail(&["faults", i, "from"], "expected non-empty `from` and `to` lists");
            }
            check("from", from)?;
            check("to", to)
        }
        FaultSpec::Crash { node, .. } => check("node", std::slice::from_ref(node)),
        FaultSpec::NodeLoss { node, .. } => {
            check("node", std::slice::from_ref(node))?;
            if topology.node(node).is_some_and(|n| n.kind() != "queue-cluster-node") {
                let message = format!("`{node}` keeps no disk this fault could lose: node-loss applies to a queue cluster's nodes (`NAME-1` ..); use `crash`");
                return fail(&["faults", i, "node"], message);
            }
            Ok(())
        }
        FaultSpec::Slow { node, factor, .. } => {
            check("node", std::slice::from_ref(node))?;
            if factor.0 < 1.0 {
                let message = format!("expected a slowdown factor of 1 or more, got {}", factor.0);
                return fail(&["faults", i, "factor"], message);
            }
            Ok(())
        }
        FaultSpec::Errors { node, .. } => {
            check("node", std::slice::from_ref(node))?;
            check_errors_fault(i, node, topology)
        }
        FaultSpec::LossSpike { nodes, .. }
        | FaultSpec::DuplicateSpike { nodes, .. }
        | FaultSpec::Reorder { nodes, .. } => check("nodes", nodes),
        FaultSpec::ReplicaCrash { .. } | FaultSpec::LeaderCrash { .. } | FaultSpec::PowerLoss { .. } => {
            check_replica_fault(i, f, topology)
        }
    }
}

/// An `errors` fault names a node that answers calls (its kind says so).
fn check_errors_fault(i: &str, node: &str, topology: &Topology) -> Result<(), Invalid> {
    match topology.node(node) {
        Some(n) if !n.kind_ref().accepts_errors_fault() => {
            let message = format!(
                "`{node}` is a {}, which answers no calls and calls nothing: an `errors` fault applies to nodes that do (stores, services, queue consumers)",
                n.kind()
            );
            fail(&["faults", i, "node"], message)
        }
        _ => Ok(()),
    }
}

/// A fault aimed at a replica names a log broker, and a replica, topic and
/// partition it has.
fn check_replica_fault(i: &str, f: &FaultSpec, topology: &Topology) -> Result<(), Invalid> {
    let (broker, topic, partition, replica) = match f {
        FaultSpec::ReplicaCrash { broker, replica, .. } => (broker, None, None, Some(*replica)),
        FaultSpec::LeaderCrash { broker, topic, partition, .. } => (broker, Some(topic), Some(*partition), None),
        FaultSpec::PowerLoss { broker, replicas, .. } => (broker, None, None, replicas.iter().copied().max()),
        _ => return Ok(()),
    };
    let Some(l) = topology.spec::<LogSpec>(broker) else {
        return fail(&["faults", i, "broker"], format!("no log broker named `{broker}`"));
    };
    if let Some(n) = l.brokers {
        let message = format!(
            "`{broker}` is a cluster of {n} brokers, each a node: crash one with a `crash` fault on its node \
             (`{}` .. `{}`), or cut it off with a `partition`",
            crate::broker::cluster::broker_name(broker, 0),
            crate::broker::cluster::broker_name(broker, n.saturating_sub(1) as u16)
        );
        return fail(&["faults", i, "kind"], message);
    }
    if replica.is_some_and(|r| r >= l.replicas) {
        let field = if matches!(f, FaultSpec::PowerLoss { .. }) { "replicas" } else { "replica" };
        return fail(&["faults", i, field], format!("expected from 0 to {}", l.replicas - 1));
    }
    if let Some(t) = topic {
        let Some(spec) = l.topics.get(t) else {
            return fail(&["faults", i, "topic"], format!("no topic `{t}` (topics: {})", l.topic_list()));
        };
        if partition.is_some_and(|p| p >= spec.partitions) {
            return fail(&["faults", i, "partition"], format!("expected from 0 to {}", spec.partitions - 1));
        }
    }
    Ok(())
}
