//! Publish/subscribe fan-out on the queue broker: every subscription gets a
//! copy of every publish, consumers of one subscription compete for it, a
//! durable subscription keeps what is published while its consumers are
//! away, and a non-durable one is deleted when its last consumer goes.
//!
//! Named regression tests pin each behaviour on a small, loss-free
//! scenario (read through its trace); property tests check the guarantees
//! over random crashes and network loss.

use crate::common;

use common::{metric, node, run, run_traced};
use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::message::MsgId;
use sim_core::trace::{TraceEvent, TraceWhat};
use std::collections::BTreeMap;

/// Deliveries that reached consumer `name`: (time, message id).
fn deliveries_to(out: &RunOutput, name: &str) -> Vec<(u64, MsgId)> {
    let to = node(out, name);
    out.trace
        .iter()
        .filter_map(|TraceEvent { time, what }| match what {
            TraceWhat::Arrive(w) if w.to == to && w.msg == "deliver" => {
                Some((*time, w.id.expect("a delivery carries an id")))
            }
            _ => None,
        })
        .collect()
}

/// When each message was first sent by its producer.
fn first_sent(out: &RunOutput) -> BTreeMap<MsgId, u64> {
    let mut at = BTreeMap::new();
    for e in &out.trace {
        if let TraceWhat::Send(w, _) = &e.what {
            if w.msg == "publish" && out.names[w.from as usize] == "p" {
                at.entry(w.id.unwrap()).or_insert(e.time);
            }
        }
    }
    at
}

fn count(out: &RunOutput, msg: &str) -> usize {
    out.trace.iter().filter(|e| matches!(&e.what, TraceWhat::Arrive(w) if w.msg == msg)).count()
}

/// A loss-free network with a constant 1 ms latency, and producer `p`
/// sending `messages` at 100 a second to broker `b`, waiting for acks.
fn base(messages: u64) -> String {
    format!(
        r#"
name = "fanout"
concept = "test"
[run]
drain_ms = 20000
[network]
latency = {{ dist = "constant", ms = 1 }}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 100 }}
messages = {messages}
acks = "broker"
ack_timeout_ms = 1000
retries = 5
"#
    )
}

fn consumer(name: &str, subscription: &str, processing_ms: f64) -> String {
    format!(
        "[consumers.{name}]\nsource = \"b\"\nsubscription = \"{subscription}\"\nprocessing = {{ dist = \"constant\", ms = {processing_ms} }}\n"
    )
}

#[test]
fn every_publish_is_copied_to_every_subscription() {
    let text = base(200)
        + "[brokers.b]\nkind = \"queue\"\nsubscriptions = { x = {}, y = { durable = true }, z = { durable = false } }\n"
        + &consumer("cx", "x", 1.0)
        + &consumer("cy", "y", 1.0) + &consumer("cz", "z", 1.0);
    let out = run_traced(&text, 1);
    for d in ["x", "y", "z"] {
        let c = &out.domains[d];
        assert_eq!((c.delivered, c.processed, c.lost, c.duplicated, c.in_flight), (200, 200, 0, 0, 0), "{d}: {c:?}");
    }
    assert_eq!(out.counts.produced, 200);
    assert_eq!(out.counts.processed, 600, "one effect per message per subscription");
    assert_eq!(out.inconsistent, 0);
    assert_eq!(count(&out, "publish-ack"), 200, "one ack per publish, however many copies");
    assert_eq!(count(&out, "deliver"), 600);
    // The one figure left is how many deliveries waited for an ack at once.
    assert!(out.metrics.keys().all(|&k| k == "max_unacked"), "nothing dropped: {:?}", out.metrics);
}

#[test]
fn consumers_of_one_subscription_compete_for_its_messages() {
    let text = base(200)
        + "[brokers.b]\nkind = \"queue\"\nsubscriptions = { work = {}, audit = {} }\n"
        + &consumer("w1", "work", 5.0)
        + &consumer("w2", "work", 5.0)
        + &consumer("a", "audit", 1.0);
    let out = run_traced(&text, 1);
    let (w1, w2) = (deliveries_to(&out, "w1").len(), deliveries_to(&out, "w2").len());
    assert!(w1 > 0 && w2 > 0, "both workers get some: {w1} and {w2}");
    assert_eq!(w1 + w2, 200, "each message goes to one worker only");
    assert_eq!(deliveries_to(&out, "a").len(), 200, "the other subscription gets them all");
    let work = &out.domains["work"];
    assert_eq!((work.processed, work.duplicated, work.lost), (200, 0, 0), "{work:?}");
    assert_eq!(out.domains["audit"].processed, 200);
    assert_eq!(out.domains.len(), 2, "a domain per subscription: {:?}", out.domains.keys());
}

#[test]
fn a_durable_subscriber_gets_its_backlog_when_it_returns() {
    let text = base(200)
        + "[brokers.b]\nkind = \"queue\"\nsubscriptions = { fast = {}, slow = { durable = true } }\n"
        + &consumer("f", "fast", 1.0)
        + &consumer("s", "slow", 1.0)
        + "[[faults]]\nkind = \"crash\"\nnode = \"s\"\nat_ms = 500\nuntil_ms = 1500\n";
    let out = run_traced(&text, 1);
    let slow = &out.domains["slow"];
    assert_eq!((slow.processed, slow.lost, slow.in_flight), (200, 0, 0), "{slow:?}");
    assert!(slow.latency_ms.max > 900.0, "the backlog waited for its subscriber: {:?}", slow.latency_ms);
    assert!(out.domains["fast"].latency_ms.max < 10.0, "the other subscriber did not wait");
    let sent = first_sent(&out);
    let backlog = deliveries_to(&out, "s")
        .iter()
        .filter(|(t, id)| *t >= 1_500_000_000 && (500_000_000..1_500_000_000).contains(&sent[id]))
        .count();
    assert!(backlog >= 95, "what was published while it was down reached it after its return: {backlog}");
    assert!(!out.metrics.contains_key("dropped_no_subscriber"));
}

#[test]
fn a_non_durable_queue_is_deleted_when_its_consumer_goes_down() {
    // The live subscriber is slow (30 ms a message, 100 arrive a second), so
    // a backlog waits in its queue when it crashes at 1 s.
    let text = base(300)
        + "[brokers.b]\nkind = \"queue\"\nsubscriptions = { keep = {}, live = { durable = false } }\n"
        + &consumer("k", "keep", 1.0)
        + &consumer("l", "live", 30.0)
        + "[[faults]]\nkind = \"crash\"\nnode = \"l\"\nat_ms = 1000\nuntil_ms = 2000\n";
    let out = run_traced(&text, 1);
    let deleted = metric(&out, "deleted_with_subscription");
    let dropped = metric(&out, "dropped_no_subscriber");
    assert!(deleted >= 30.0, "the backlog went with the queue: {:?}", out.metrics);
    assert!((95.0..=105.0).contains(&dropped), "a second of publishes kept for nobody: {:?}", out.metrics);
    let live = &out.domains["live"];
    assert!(live.lost as f64 >= dropped + deleted - 2.0, "{live:?} {:?}", out.metrics);
    assert_eq!(live.in_flight, 0);
    assert_eq!(live.processed + live.lost, 300);
    let keep = &out.domains["keep"];
    assert_eq!((keep.processed, keep.lost), (300, 0), "the durable subscription is untouched");
    assert_eq!(out.inconsistent, live.lost);
    // Back at 2 s, it starts with an empty queue: nothing from before.
    let sent = first_sent(&out);
    let after: Vec<_> = deliveries_to(&out, "l").into_iter().filter(|(t, _)| *t >= 2_000_000_000).collect();
    assert!(!after.is_empty());
    for (t, id) in after {
        assert!(sent[&id] >= 1_990_000_000, "message {id}, sent at {} ns, delivered at {t} ns", sent[&id]);
    }
}

#[test]
fn a_broker_crash_keeps_durable_subscriptions_and_empties_non_durable_ones() {
    // Both subscribers are slow, so both queues hold a backlog when the
    // (durable) broker crashes. The messages are persistent: a durable
    // queue keeps only those.
    let text = base(200).replace("acks = \"broker\"", "acks = \"broker\"\npersistent = true")
        + "[brokers.b]\nkind = \"queue\"\nsubscriptions = { d = {}, n = { durable = false } }\n"
        + &consumer("cd", "d", 15.0)
        + "prefetch = 1\n" // the backlog waits in the broker, not in the consumer
        + &consumer("cn", "n", 15.0)
        + "prefetch = 1\n"
        + "[[faults]]\nkind = \"crash\"\nnode = \"b\"\nat_ms = 1500\nuntil_ms = 1600\n";
    let out = run(&text, 1);
    let (d, n) = (&out.domains["d"], &out.domains["n"]);
    assert_eq!((d.lost, d.in_flight, d.processed), (0, 0, 200), "{d:?}");
    assert!(n.lost > 0, "the non-durable queue was not persisted: {n:?}");
}

#[test]
fn a_consumer_timeout_of_the_last_consumer_deletes_a_non_durable_queue() {
    // Processing (300 ms) outlasts the consumer timeout (100 ms): the broker
    // cancels its only consumer, and with it the queue.
    let text = base(50)
        + "[brokers.b]\nkind = \"queue\"\nredelivery_timeout_ms = 100\nsubscriptions = { n = { durable = false } }\n"
        + &consumer("c", "n", 300.0);
    let out = run(&text, 1);
    assert!(out.errors.get("consumer-timeout").is_some_and(|&n| n > 0), "{:?}", out.errors);
    assert!(out.metrics.get("deleted_with_subscription").is_some_and(|&v| v > 0.0), "{:?}", out.metrics);
    assert!(out.domains["n"].lost > 0);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    /// Consumers per subscription (1 or 2), for subscriptions s0, s1, ...
    consumers: Vec<usize>,
    /// Which subscriptions are non-durable.
    non_durable: Vec<bool>,
    /// Loss and duplication on every link (durable case) or on the
    /// producer's link only (non-durable case).
    loss: f64,
    duplicate: f64,
    /// Crashes: (consumer index among all consumers, at ms, length ms).
    crashes: Vec<(usize, u32, u32)>,
    /// A crash of the (durable) broker: (at ms, length ms).
    broker_crash: Option<(u32, u32)>,
    prefetch: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(1..=2usize, 2..=3),
        prop::collection::vec(any::<bool>(), 3),
        0.0..0.15f64,
        0.0..0.1f64,
        prop::collection::vec((0..6usize, 0..1500u32, 1..800u32), 0..4),
        prop::option::of((0..1500u32, 1..500u32)),
        1..=4u32,
    )
        .prop_map(|(consumers, non_durable, loss, duplicate, crashes, broker_crash, prefetch)| Case {
            consumers,
            non_durable,
            loss,
            duplicate,
            crashes,
            broker_crash,
            prefetch,
        })
}

impl Case {
    fn consumer_names(&self) -> Vec<(String, usize)> {
        let mut v = Vec::new();
        for (s, &n) in self.consumers.iter().enumerate() {
            for k in 0..n {
                v.push((format!("c{s}-{k}"), s));
            }
        }
        v
    }

    /// 200 messages at 200 a second from p (acks, retries without end)
    /// through b to every subscription. `durable`: every subscription
    /// durable and loss on every link; else the subscriptions marked
    /// non-durable are, and only the producer's link is lossy (a lost
    /// delivery would make the broker cancel a consumer that never went
    /// down, and that deletes a non-durable queue too).
    fn toml(&self, durable: bool) -> String {
        let lossy_everywhere = if durable { self.loss } else { 0.0 };
        let dup_everywhere = if durable { self.duplicate } else { 0.0 };
        let subs: Vec<String> = (0..self.consumers.len())
            .map(|s| format!("s{s} = {{ durable = {} }}", durable || !self.non_durable[s]))
            .collect();
        let mut t = format!(
            r#"
name = "fanout-property"
concept = "test"
[run]
drain_ms = 120000
[network]
latency = {{ dist = "constant", ms = 1 }}
loss_probability = {lossy_everywhere}
duplicate_probability = {dup_everywhere}
[[network.links]]
from = "p"
to = "b"
latency = {{ dist = "uniform", min_ms = 1, max_ms = 3 }}
loss_probability = {loss}
duplicate_probability = {dup}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 200 }}
messages = 200
acks = "broker"
ack_timeout_ms = 50
retries = 1000
retry_backoff_ms = 10
persistent = true
[brokers.b]
kind = "queue"
redelivery_timeout_ms = 200
sync_interval_ms = 20
subscriptions = {{ {subs} }}
"#,
            loss = self.loss,
            dup = self.duplicate,
            subs = subs.join(", ")
        );
        let names = self.consumer_names();
        for (name, s) in &names {
            t += &format!(
                "[consumers.{name}]\nsource = \"b\"\nsubscription = \"s{s}\"\nprocessing = {{ dist = \"exponential\", mean_ms = 2 }}\nprefetch = {}\nresubscribe_ms = 50\n",
                self.prefetch
            );
        }
        for &(c, at, len) in &self.crashes {
            let name = &names[c % names.len()].0;
            t += &format!("[[faults]]\nkind = \"crash\"\nnode = \"{name}\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
        }
        if let (true, Some((at, len))) = (durable, self.broker_crash) {
            t += &format!("[[faults]]\nkind = \"crash\"\nnode = \"b\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
        }
        t
    }

    /// The subscriptions some of whose consumers crashed.
    fn crashed_subscriptions(&self) -> Vec<usize> {
        let names = self.consumer_names();
        let mut v: Vec<usize> = self.crashes.iter().map(|&(c, _, _)| names[c % names.len()].1).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

proptest! {
    // 128 cases per property, or `PROPTEST_CASES`.
    #![proptest_config(common::proptest_config(128))]

    /// Durable subscriptions, ack-after consumers, a producer that retries:
    /// whatever consumers (and the durable broker) crash and the network
    /// loses, every message takes effect in every subscription's domain.
    #[test]
    fn durable_subscriptions_lose_nothing_in_any_domain(c in case(), seed in 0..1000u64) {
        let text = c.toml(true);
        let out = run(&text, seed);
        prop_assert_eq!(out.domains.len(), c.consumers.len());
        for (name, d) in &out.domains {
            prop_assert_eq!((d.lost, d.in_flight, d.send_failed), (0, 0, 0), "domain {}: {:?}\n{}", name, d, text);
            prop_assert_eq!(d.processed, 200);
        }
        prop_assert_eq!(out.inconsistent, 0);
    }

    /// Non-durable subscriptions lose messages only in domains whose
    /// consumers went down; the durable ones, and the non-durable ones whose
    /// consumers stayed up, lose nothing.
    #[test]
    fn non_durable_subscriptions_lose_only_where_a_consumer_went_down(c in case(), seed in 0..1000u64) {
        let text = c.toml(false);
        let out = run(&text, seed);
        let crashed = c.crashed_subscriptions();
        for s in 0..c.consumers.len() {
            let d = &out.domains[&format!("s{s}")];
            prop_assert_eq!((d.in_flight, d.send_failed), (0, 0), "s{}: {:?}\n{}", s, d, text);
            prop_assert_eq!(d.processed + d.lost, 200);
            if !c.non_durable[s] || !crashed.contains(&s) {
                prop_assert_eq!(d.lost, 0, "s{} (crashed: {:?}): {:?}\n{}", s, crashed, d, text);
            }
        }
        let dropped = metric(&out, "dropped_no_subscriber") + metric(&out, "deleted_with_subscription");
        if out.counts.lost > 0 {
            prop_assert!(dropped > 0.0, "a loss the broker's metrics do not explain: {:?}\n{}", out.metrics, text);
        }
    }
}

/// The non-durable property is not vacuous: its generated cases do lose
/// messages (a subscriber that crashed while alone on its subscription).
#[test]
fn generated_non_durable_cases_do_lose_messages() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut losing = 0;
    for _ in 0..100 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        if run(&c.toml(false), 1).counts.lost > 0 {
            losing += 1;
        }
    }
    assert!(losing >= 10, "only {losing} of 100 generated cases lost anything");
}
