//! Validation of what concerns log brokers: topics, producers and consumers
//! that name them, group settings, and faults aimed at replicas.

use super::schema::{Config, FaultSpec};
use crate::broker::BrokerSpec;
use crate::consumer::AckTiming;
use crate::producer::AckMode;
use std::collections::BTreeMap;

type Failure = (Vec<String>, String);

fn fail<T>(parts: &[&str], message: impl Into<String>) -> Result<T, Failure> {
    Err((parts.iter().map(|s| s.to_string()).collect(), message.into()))
}

fn topics_of(l: &crate::broker::LogSpec) -> String {
    l.topics.keys().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
}

/// Validates everything that involves log brokers.
pub(super) fn validate_logs(c: &Config) -> Result<(), Failure> {
    let log = |b: &str| match c.brokers.get(b) {
        Some(BrokerSpec::Log(l)) => Some(l),
        _ => None,
    };
    for (name, b) in &c.brokers {
        let BrokerSpec::Log(l) = b else { continue };
        if l.topics.is_empty() {
            return fail(&["brokers", name, "topics"], "a log broker needs at least one topic");
        }
        if l.topics.len() > usize::from(u16::MAX) {
            return fail(&["brokers", name, "topics"], "too many topics");
        }
        for (t, spec) in &l.topics {
            if !(1..=100_000).contains(&spec.partitions) {
                return fail(&["brokers", name, "topics", t, "partitions"], "expected from 1 to 100000");
            }
            if spec.retention_messages == Some(0) {
                return fail(&["brokers", name, "topics", t, "retention_messages"], "expected at least 1");
            }
        }
        if !(1..=64).contains(&l.replicas) {
            return fail(&["brokers", name, "replicas"], "expected from 1 to 64 replicas");
        }
        if l.min_insync_replicas == 0 || l.min_insync_replicas > l.replicas {
            return fail(
                &["brokers", name, "min_insync_replicas"],
                format!("expected from 1 to the number of replicas ({})", l.replicas),
            );
        }
        l.replication.check().or_else(|m| fail(&["brokers", name, "replication"], m))?;
    }
    for (name, p) in &c.producers {
        match log(&p.target) {
            Some(l) => {
                let Some(t) = &p.topic else {
                    return fail(
                        &["producers", name, "topic"],
                        format!("`{}` is a log broker: name the topic to write to ({})", p.target, topics_of(l)),
                    );
                };
                if !l.topics.contains_key(t) {
                    return fail(&["producers", name, "topic"], format!("no topic `{t}` (topics: {})", topics_of(l)));
                }
                if p.idempotent && p.acks == AckMode::Leader {
                    return fail(
                        &["producers", name, "acks"],
                        "an idempotent producer needs acks = \"all\" (as Kafka requires)",
                    );
                }
            }
            None => {
                if p.topic.is_some() {
                    return fail(&["producers", name, "topic"], "only log brokers have topics");
                }
                if matches!(p.acks, AckMode::Leader | AckMode::All) {
                    return fail(
                        &["producers", name, "acks"],
                        "acks \"1\" and \"all\" are for log brokers: use \"broker\" for a queue",
                    );
                }
            }
        }
    }
    // Forwards and requests are publishes: a log broker takes produce
    // requests to a topic instead.
    for (name, k) in &c.consumers {
        if let Some(to) = k.forward_to.as_deref().filter(|to| log(to).is_some()) {
            return fail(
                &["consumers", name, "forward_to"],
                format!("`{to}` is a log broker: forward_to names a queue broker"),
            );
        }
    }
    for (name, k) in &c.clients {
        for (field, b) in [("target", &k.target), ("responses", &k.responses)] {
            if log(b).is_some() {
                return fail(
                    &["clients", name, field],
                    format!("`{b}` is a log broker: clients talk to queue brokers"),
                );
            }
        }
    }
    let mut group_topics: BTreeMap<(&str, String), &str> = BTreeMap::new();
    // Members of one group must agree on what the group is.
    let mut group_settings: BTreeMap<(&str, String), (&str, String)> = BTreeMap::new();
    for (name, k) in &c.consumers {
        let Some(l) = log(&k.source) else {
            for (field, set) in [
                ("topic", k.topic.is_some()),
                ("group", k.group.is_some()),
                ("max_poll_records", k.max_poll_records.is_some()),
                ("auto_commit_interval_ms", k.auto_commit_interval_ms.is_some()),
                ("assignment", k.assignment.is_some()),
                ("output_topic", k.output_topic.is_some()),
                ("transactional", k.transactional),
                ("heartbeat_interval_ms", k.heartbeat_interval_ms.is_some()),
            ] {
                if set {
                    return fail(&["consumers", name, field], "applies only to consumers of a log broker");
                }
            }
            if k.ack == AckTiming::Auto {
                return fail(&["consumers", name, "ack"], "\"auto\" (auto-commit) applies only to log consumers");
            }
            continue;
        };
        for (field, set) in [
            ("forward_to", k.forward_to.is_some()),
            ("outbox", k.outbox),
            ("subscription", k.subscription.is_some()),
            ("ack", k.ack == AckTiming::AfterForward),
        ] {
            if set {
                return fail(
                    &["consumers", name, field],
                    "applies only to consumers of a queue broker (a log stage writes with output_topic)",
                );
            }
        }
        let Some(t) = &k.topic else {
            return fail(
                &["consumers", name, "topic"],
                format!("`{}` is a log broker: name the topic to read ({})", k.source, topics_of(l)),
            );
        };
        if !l.topics.contains_key(t) {
            return fail(&["consumers", name, "topic"], format!("no topic `{t}` (topics: {})", topics_of(l)));
        }
        let group = k.group.clone().unwrap_or_else(|| "group".into());
        if let Some(other) = group_topics.insert((k.source.as_str(), group.clone()), t) {
            if other != t {
                return fail(
                    &["consumers", name, "topic"],
                    format!("group `{group}` already reads topic `{other}`: one group reads one topic"),
                );
            }
        }
        let settings = format!(
            "domain {:?}, assignment {:?}, output_topic {:?}, transactional {}",
            k.domain,
            k.assignment.unwrap_or_default(),
            k.output_topic,
            k.transactional
        );
        if let Some((first, theirs)) = group_settings.get(&(k.source.as_str(), group.clone())) {
            if *theirs != settings {
                return fail(
                    &["consumers", name, "group"],
                    format!("members of group `{group}` must agree on domain, assignment, output_topic and transactional: `{first}` has {theirs}, this one {settings}"),
                );
            }
        } else {
            group_settings.insert((k.source.as_str(), group.clone()), (name.as_str(), settings));
        }
        if let Some(o) = &k.output_topic {
            if o == t {
                return fail(&["consumers", name, "output_topic"], "a stage cannot write to the topic it reads");
            }
            if !l.topics.contains_key(o) {
                return fail(
                    &["consumers", name, "output_topic"],
                    format!("no topic `{o}` (topics: {})", topics_of(l)),
                );
            }
        }
        if k.transactional {
            if k.output_topic.is_none() {
                return fail(
                    &["consumers", name, "transactional"],
                    "a transaction writes to an output topic: set output_topic",
                );
            }
            if k.ack != AckTiming::After {
                return fail(
                    &["consumers", name, "ack"],
                    "a transactional stage commits with its output: use ack = \"after\"",
                );
            }
        }
        if k.failure_probability.0 > 0.0 || k.poison_probability.0 > 0.0 {
            return fail(
                &["consumers", name, "failure_probability"],
                "log consumers do not model processing failures yet",
            );
        }
        if k.max_poll_records == Some(0) {
            return fail(&["consumers", name, "max_poll_records"], "expected at least 1");
        }
        if k.heartbeat_interval_ms.is_some_and(|h| h.0 <= 0.0) {
            return fail(&["consumers", name, "heartbeat_interval_ms"], "expected a duration above 0");
        }
    }
    for (i, f) in c.faults.iter().enumerate() {
        let i = i.to_string();
        let (broker, topic, partition, replica) = match f {
            FaultSpec::ReplicaCrash { broker, replica, .. } => (broker, None, None, Some(*replica)),
            FaultSpec::LeaderCrash { broker, topic, partition, .. } => (broker, Some(topic), Some(*partition), None),
            _ => continue,
        };
        let Some(l) = log(broker) else {
            return fail(&["faults", &i, "broker"], format!("no log broker named `{broker}`"));
        };
        if replica.is_some_and(|r| r >= l.replicas) {
            return fail(&["faults", &i, "replica"], format!("expected from 0 to {}", l.replicas - 1));
        }
        if let Some(t) = topic {
            let Some(spec) = l.topics.get(t) else {
                return fail(&["faults", &i, "topic"], format!("no topic `{t}` (topics: {})", topics_of(l)));
            };
            if partition.is_some_and(|p| p >= spec.partitions) {
                return fail(&["faults", &i, "partition"], format!("expected from 0 to {}", spec.partitions - 1));
            }
        }
    }
    Ok(())
}
