//! Checks a configuration for what serde's types alone cannot see: names
//! that refer to nodes, relations between fields, a run that would never
//! end. Each failure names the field's path.

use super::schema::{Config, FaultSpec};
use crate::ledger::MAX_KEYS;
use std::collections::BTreeMap;

type Failure = (Vec<String>, String);

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn fail<T>(parts: &[&str], message: impl Into<String>) -> Result<T, Failure> {
    Err((path(parts), message.into()))
}

/// Validates `c`, returning the first problem found.
pub(super) fn validate(c: &Config) -> Result<(), Failure> {
    let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
    let named = c
        .producers
        .keys()
        .map(|n| ("producers", n))
        .chain(c.brokers.keys().map(|n| ("brokers", n)))
        .chain(c.consumers.keys().map(|n| ("consumers", n)))
        .chain(c.clients.keys().map(|n| ("clients", n)));
    for (kind, name) in named {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return fail(&[kind, name], "a node name must be non-empty and without spaces");
        }
        if let Some(other) = kinds.insert(name, kind) {
            return fail(
                &[kind, name],
                format!("the name `{name}` is already used in `{other}`: node names must be unique"),
            );
        }
    }
    if kinds.is_empty() {
        return fail(&["producers"], "the scenario has no nodes: add producers, brokers and consumers");
    }
    let list = |m: &mut dyn Iterator<Item = &String>| m.map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    let brokers = list(&mut c.brokers.keys());
    let is_broker = |n: &str| c.brokers.contains_key(n);
    let is_node = |n: &str| kinds.contains_key(n);
    let all_nodes = list(&mut kinds.keys().map(|s| s.to_string()).collect::<Vec<_>>().iter());

    if c.run.sample_interval_ms.0 <= 0.0 {
        return fail(&["run", "sample_interval_ms"], "expected a duration above 0");
    }
    if c.run.max_events == 0 {
        return fail(&["run", "max_events"], "expected at least 1");
    }
    if c.run.duration_ms.is_none() {
        if c.producers.is_empty() && c.clients.is_empty() {
            return fail(&["run", "duration_ms"], "the run never ends: with no producers, set run.duration_ms");
        }
        if let Some((name, _)) = c.producers.iter().find(|(_, p)| p.messages.is_none()) {
            return fail(
                &["producers", name, "messages"],
                "the run never ends: give every producer a `messages` count, or set run.duration_ms",
            );
        }
        if let Some((name, _)) = c.clients.iter().find(|(_, k)| k.messages.is_none()) {
            return fail(
                &["clients", name, "messages"],
                "the run never ends: give every client a `messages` count, or set run.duration_ms",
            );
        }
    }

    for (name, p) in &c.producers {
        if !is_broker(&p.target) {
            return fail(
                &["producers", name, "target"],
                format!("no broker named `{}` (brokers: {brokers})", p.target),
            );
        }
        p.arrival.check().or_else(|m| fail(&["producers", name, "arrival"], m))?;
        if p.idempotent {
            for (field, set) in
                [("retries", p.retries.is_some()), ("delivery_timeout_ms", p.delivery_timeout_ms.is_some())]
            {
                if set {
                    return fail(
                        &["producers", name, field],
                        "an idempotent producer resends until acked (giving up would leave a gap in its sequence): remove it",
                    );
                }
            }
        }
        if p.acks == crate::producer::AckMode::None {
            for (field, set) in [
                ("max_in_flight", p.max_in_flight.is_some()),
                ("delivery_timeout_ms", p.delivery_timeout_ms.is_some()),
                ("idempotent", p.idempotent),
            ] {
                if set {
                    return fail(
                        &["producers", name, field],
                        "applies only when the producer waits for acks: set acks = \"broker\"",
                    );
                }
            }
        }
        if p.max_in_flight == Some(0) {
            return fail(&["producers", name, "max_in_flight"], "expected at least 1");
        }
        if p.messages == Some(0) {
            return fail(&["producers", name, "messages"], "expected at least 1 (remove the producer to send nothing)");
        }
        let count = p.keys.count();
        if count == 0 || count > MAX_KEYS {
            return fail(
                &["producers", name, "keys", "count"],
                format!("expected from 1 to {MAX_KEYS} keys, got {count}"),
            );
        }
    }
    for (name, b) in &c.brokers {
        let crate::broker::BrokerSpec::Queue(q) = b else { continue };
        if let Some(dlq) = &q.dead_letter {
            if !is_broker(dlq) || dlq == name {
                return fail(
                    &["brokers", name, "dead_letter"],
                    format!("expected another broker (brokers: {brokers})"),
                );
            }
        }
        if q.max_deliveries == Some(0) {
            return fail(&["brokers", name, "max_deliveries"], "expected at least 1");
        }
        for sub in q.subscriptions.keys() {
            // The name becomes an effect domain, read in paths like `domains.NAME.lost`.
            if sub.is_empty() || sub.contains(char::is_whitespace) || sub.contains('.') {
                return fail(
                    &["brokers", name, "subscriptions", sub],
                    "a subscription name must be non-empty, without spaces or dots",
                );
            }
        }
        // Dead letters must end somewhere: follow the chain, refuse a loop.
        let mut seen = vec![name.as_str()];
        let mut next = q.dead_letter.as_deref();
        while let Some(b) = next {
            if seen.contains(&b) {
                return fail(
                    &["brokers", name, "dead_letter"],
                    format!("dead letters would go round in a loop: {} -> {b}", seen.join(" -> ")),
                );
            }
            seen.push(b);
            next = match c.brokers.get(b) {
                Some(crate::broker::BrokerSpec::Queue(q)) => q.dead_letter.as_deref(),
                _ => None,
            };
        }
    }
    for (name, k) in &c.consumers {
        if !is_broker(&k.source) {
            return fail(
                &["consumers", name, "source"],
                format!("no broker named `{}` (brokers: {brokers})", k.source),
            );
        }
        k.processing.check().or_else(|m| fail(&["consumers", name, "processing"], m))?;
        if !(1..=1_000_000).contains(&k.concurrency) {
            return fail(&["consumers", name, "concurrency"], "expected from 1 to 1000000");
        }
        if k.dedup_store.is_some() && k.effect != crate::consumer::Effect::Idempotent {
            return fail(
                &["consumers", name, "dedup_store"],
                "only an idempotent effect uses a dedup store: set effect = \"idempotent\"",
            );
        }
        if k.prefetch == Some(0) {
            return fail(&["consumers", name, "prefetch"], "expected at least 1");
        }
        forwarding(name, k, &brokers, &is_broker)?;
        let crate::broker::BrokerSpec::Queue(q) = &c.brokers[&k.source] else { continue };
        let subs = list(&mut q.subscriptions.keys());
        match &k.subscription {
            Some(sub) if q.subscriptions.is_empty() => {
                return fail(
                    &["consumers", name, "subscription"],
                    format!(
                        "the broker `{}` declares no subscriptions (it is point-to-point): remove `subscription = \"{sub}\"`, or declare it in brokers.{}.subscriptions",
                        k.source, k.source
                    ),
                );
            }
            Some(sub) if !q.subscriptions.contains_key(sub) => {
                return fail(
                    &["consumers", name, "subscription"],
                    format!("the broker `{}` has no subscription `{sub}` (subscriptions: {subs})", k.source),
                );
            }
            None if !q.subscriptions.is_empty() => {
                return fail(
                    &["consumers", name, "subscription"],
                    format!(
                        "the broker `{}` fans out to subscriptions: name the one this consumer reads, with subscription = \"NAME\" (subscriptions: {subs})",
                        k.source
                    ),
                );
            }
            _ => {}
        }
    }
    forward_loops(c)?;
    let mut responses: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, k) in &c.clients {
        for (field, b) in [("target", &k.target), ("responses", &k.responses)] {
            if !is_broker(b) {
                return fail(&["clients", name, field], format!("no broker named `{b}` (brokers: {brokers})"));
            }
        }
        if k.responses == k.target {
            return fail(
                &["clients", name, "responses"],
                "expected a broker other than `target`: responses need a queue of their own",
            );
        }
        if let Some(other) = responses.insert(&k.responses, name) {
            return fail(
                &["clients", name, "responses"],
                format!("client `{other}` already reads `{}`: each client needs its own response queue", k.responses),
            );
        }
        k.arrival.check().or_else(|m| fail(&["clients", name, "arrival"], m))?;
        if k.messages == Some(0) {
            return fail(&["clients", name, "messages"], "expected at least 1 (remove the client to send nothing)");
        }
        if k.prefetch == 0 {
            return fail(&["clients", name, "prefetch"], "expected at least 1");
        }
        let count = k.keys.count();
        if count == 0 || count > MAX_KEYS {
            return fail(
                &["clients", name, "keys", "count"],
                format!("expected from 1 to {MAX_KEYS} keys, got {count}"),
            );
        }
    }
    c.network.latency.check().or_else(|m| fail(&["network", "latency"], m))?;
    for (i, l) in c.network.links.iter().enumerate() {
        let i = i.to_string();
        for (field, n) in [("from", &l.from), ("to", &l.to)] {
            if !is_node(n) {
                return fail(&["network", "links", &i, field], format!("no node named `{n}` (nodes: {all_nodes})"));
            }
        }
        if let Some(d) = &l.latency {
            d.check().or_else(|m| fail(&["network", "links", &i, "latency"], m))?;
        }
    }
    for (i, f) in c.faults.iter().enumerate() {
        let i = i.to_string();
        let (at, until) = f.window_ms();
        if let Some(u) = until {
            if u < at {
                return fail(&["faults", &i, "until_ms"], format!("ends ({u} ms) before it begins ({at} ms)"));
            }
        }
        let check = |field: &str, names: &[String]| -> Result<(), Failure> {
            match names.iter().find(|n| !is_node(n)) {
                Some(n) => fail(&["faults", &i, field], format!("no node named `{n}` (nodes: {all_nodes})")),
                None => Ok(()),
            }
        };
        match f {
            FaultSpec::Partition { groups, .. } => {
                if groups.is_empty() || groups.iter().any(Vec::is_empty) {
                    return fail(&["faults", &i, "groups"], "expected one or more non-empty groups of node names");
                }
                check("groups", &groups.concat())?;
            }
            FaultSpec::OneWayPartition { from, to, .. } => {
                if from.is_empty() || to.is_empty() {
                    return fail(&["faults", &i, "from"], "expected non-empty `from` and `to` lists");
                }
                check("from", from)?;
                check("to", to)?;
            }
            FaultSpec::Crash { node, .. } => check("node", std::slice::from_ref(node))?,
            FaultSpec::Slow { node, factor, .. } => {
                check("node", std::slice::from_ref(node))?;
                if factor.0 < 1.0 {
                    return fail(
                        &["faults", &i, "factor"],
                        format!("expected a slowdown factor of 1 or more, got {}", factor.0),
                    );
                }
            }
            FaultSpec::LossSpike { nodes, .. } => check("nodes", nodes)?,
            FaultSpec::ReplicaCrash { .. } | FaultSpec::LeaderCrash { .. } => {}
        }
    }
    super::validate_log::validate_logs(c)
}

/// Checks a consumer's `forward_*`, `outbox` and `ack = "after-forward"`.
fn forwarding(
    name: &str,
    k: &crate::consumer::ConsumerSpec,
    brokers: &str,
    is_broker: &dyn Fn(&str) -> bool,
) -> Result<(), Failure> {
    use crate::consumer::{AckTiming, ForwardAcks};
    let at = |field: &str| path(&["consumers", name, field]);
    let acked = k.forward_acks == ForwardAcks::Broker;
    let Some(to) = &k.forward_to else {
        let set = [
            ("forward_acks", acked),
            ("forward_ack_timeout_ms", k.forward_ack_timeout_ms.is_some()),
            ("forward_retries", k.forward_retries.is_some()),
            ("forward_retry_backoff_ms", k.forward_retry_backoff_ms.is_some()),
            ("forward_delay", k.forward_delay != crate::dist::Dist::default()),
            ("outbox", k.outbox),
        ];
        if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
            return Err((at(field), "applies only to a consumer that forwards: set forward_to".into()));
        }
        if k.ack == AckTiming::AfterForward {
            return Err((at("ack"), "\"after-forward\" needs a forward: set forward_to".into()));
        }
        return Ok(());
    };
    if !is_broker(to) {
        return Err((at("forward_to"), format!("no broker named `{to}` (brokers: {brokers})")));
    }
    if *to == k.source {
        return Err((
            at("forward_to"),
            "expected a broker other than `source`: it would forward to itself forever".into(),
        ));
    }
    k.forward_delay.check().map_err(|m| (at("forward_delay"), m))?;
    if !acked {
        for (field, set) in [
            ("forward_ack_timeout_ms", k.forward_ack_timeout_ms.is_some()),
            ("forward_retries", k.forward_retries.is_some()),
            ("forward_retry_backoff_ms", k.forward_retry_backoff_ms.is_some()),
        ] {
            if set {
                return Err((
                    at(field),
                    "applies only when the forward waits for the broker's ack: set forward_acks = \"broker\"".into(),
                ));
            }
        }
        if k.ack == AckTiming::AfterForward {
            return Err((
                at("ack"),
                "\"after-forward\" acks the input when the forward is acked: set forward_acks = \"broker\"".into(),
            ));
        }
        if k.outbox {
            return Err((
                at("outbox"),
                "the outbox relay deletes an entry once the broker acks it: set forward_acks = \"broker\"".into(),
            ));
        }
    }
    if k.outbox {
        if k.forward_retries.is_some() {
            return Err((at("forward_retries"), "the outbox relay retries until acked: remove it".into()));
        }
        if k.ack == AckTiming::AfterForward {
            return Err((
                at("ack"),
                "with the outbox the forward is safe once committed: the input is acked then (ack = \"after\")".into(),
            ));
        }
    }
    Ok(())
}

/// Refuses forwards that go round in a loop (a consumer of `a` forwards
/// to `b`, whose consumer forwards back to `a`): a record would circulate
/// for ever.
fn forward_loops(c: &Config) -> Result<(), Failure> {
    let next = |broker: &str| -> Vec<&str> {
        c.consumers.values().filter(|k| k.source == broker).filter_map(|k| k.forward_to.as_deref()).collect()
    };
    for (name, k) in &c.consumers {
        let Some(first) = k.forward_to.as_deref() else { continue };
        // Every broker reachable from this forward, breadth first.
        let mut seen: Vec<&str> = vec![first];
        let mut i = 0;
        while i < seen.len() {
            for b in next(seen[i]) {
                if b == k.source {
                    return fail(
                        &["consumers", name, "forward_to"],
                        format!("forwards would go round in a loop: {} -> {first} -> ... -> {b}", k.source),
                    );
                }
                if !seen.contains(&b) {
                    seen.push(b);
                }
            }
            i += 1;
        }
    }
    Ok(())
}
