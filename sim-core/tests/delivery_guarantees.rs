//! What each delivery guarantee promises, checked over random fault
//! schedules: consumer and broker crashes, partitions, loss spikes, random
//! loss and transient processing failures. The drain heals every fault, so
//! "eventually" promises get their chance.
//!
//! - at-most-once (ack before processing) never applies an effect twice;
//! - at-least-once (ack after the effect, a producer that retries) never
//!   loses a message;
//! - an idempotent effect with ack after and retries does neither, even
//!   when the network duplicates messages.

use crate::common;

use common::run;
use proptest::prelude::*;
use sim_core::scenario::Scenario;

#[derive(Debug, Clone)]
struct Faults {
    loss: f64,
    duplicate: f64,
    failure: f64,
    crashes: Vec<(&'static str, u32, u32)>,
    partition: Option<(u32, u32)>,
}

fn faults() -> impl Strategy<Value = Faults> {
    let crash = (prop::sample::select(vec!["c1", "c2", "b"]), 0..2000u32, 1..800u32);
    (
        0.0..0.2f64,
        0.0..0.2f64,
        0.0..0.3f64,
        prop::collection::vec(crash, 0..4),
        prop::option::of((0..2000u32, 1..1000u32)),
    )
        .prop_map(|(loss, duplicate, failure, crashes, partition)| Faults {
            loss,
            duplicate,
            failure,
            crashes,
            partition,
        })
}

/// 300 messages at 200/s from p through broker b to consumers c1 and c2,
/// with `consumer` settings and `producer` settings added.
fn scenario(f: &Faults, producer: &str, consumer: &str) -> String {
    let mut s = format!(
        r#"
name = "guarantees"
concept = "test"
[run]
drain_ms = 120000
[network]
latency = {{ dist = "exponential", mean_ms = 2 }}
loss_probability = {loss}
duplicate_probability = {dup}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = 200 }}
messages = 300
keys = {{ distribution = "uniform", count = 5 }}
{producer}
[brokers.b]
kind = "queue"
redelivery_timeout_ms = 100
sync_interval_ms = 20
[consumers.c1]
source = "b"
processing = {{ dist = "exponential", mean_ms = 3 }}
concurrency = 2
resubscribe_ms = 50
failure_probability = {failure}
{consumer}
[consumers.c2]
source = "b"
processing = {{ dist = "exponential", mean_ms = 3 }}
resubscribe_ms = 50
failure_probability = {failure}
{consumer}
"#,
        loss = f.loss,
        dup = f.duplicate,
        failure = f.failure
    );
    for (node, at, len) in &f.crashes {
        s += &format!("[[faults]]\nkind = \"crash\"\nnode = \"{node}\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
    }
    if let Some((at, len)) = f.partition {
        s += &format!(
            "[[faults]]\nkind = \"partition\"\ngroups = [[\"c1\", \"c2\"]]\nat_ms = {at}\nuntil_ms = {}\n",
            at + len
        );
    }
    s
}

/// Waits for confirms and retries; persistent, so that a broker crash
/// does not lose what the durable queue confirmed.
const RETRYING: &str =
    "acks = \"broker\"\nack_timeout_ms = 50\nretries = 1000\nretry_backoff_ms = 10\npersistent = true";

proptest! {
    // 64 cases per property, or `PROPTEST_CASES`.
    #![proptest_config(common::proptest_config(64))]

    #[test]
    fn at_most_once_never_duplicates(mut f in faults(), seed in 0..1000u64) {
        // Fire-and-forget producer, ack on receipt. Network duplication is a
        // transport fault no consumer setting can hide, so it is off here.
        f.duplicate = 0.0;
        let out = run(&scenario(&f, "", "ack = \"before\""), seed);
        prop_assert_eq!(out.counts.duplicated, 0);
        let c = &out.counts;
        prop_assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed);
    }

    #[test]
    fn at_least_once_never_loses(f in faults(), seed in 0..1000u64) {
        let out = run(&scenario(&f, RETRYING, ""), seed);
        let c = &out.counts;
        prop_assert_eq!(c.lost, 0, "{:?}", c);
        prop_assert_eq!(c.send_failed, 0, "{:?}", c);
        prop_assert_eq!(c.in_flight, 0, "{:?}", c);
        prop_assert_eq!(c.processed, c.produced);
    }

    #[test]
    fn an_idempotent_effect_is_applied_exactly_once(f in faults(), seed in 0..1000u64) {
        let out = run(&scenario(&f, RETRYING, "effect = \"idempotent\""), seed);
        let c = &out.counts;
        prop_assert_eq!((c.lost, c.duplicated, c.in_flight, c.send_failed), (0, 0, 0, 0), "{:?}", c);
        prop_assert_eq!(c.processed, c.produced);
    }
}

#[test]
fn at_least_once_does_duplicate_under_faults() {
    // Not a property, a reminder of the price: with crashes and loss, some
    // effects are applied twice when the effect is not idempotent.
    let f = Faults { loss: 0.05, duplicate: 0.0, failure: 0.1, crashes: vec![("c1", 500, 300)], partition: None };
    let out = run(&scenario(&f, RETRYING, ""), 1);
    assert_eq!(out.counts.lost, 0);
    assert!(out.counts.duplicated > 0, "{:?}", out.counts);
}

#[test]
fn at_most_once_does_lose_under_faults() {
    let f = Faults { loss: 0.05, duplicate: 0.0, failure: 0.1, crashes: vec![("c1", 500, 300)], partition: None };
    let out = run(&scenario(&f, "", "ack = \"before\""), 1);
    assert!(out.counts.lost > 0, "{:?}", out.counts);
    assert_eq!(out.counts.duplicated, 0);
}

fn pipeline_with_dead_letters(consumer: &str, broker: &str) -> String {
    format!(
        r#"
name = "dlq"
concept = "test"
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 1000 }}
messages = 1000
[brokers.b]
kind = "queue"
dead_letter = "dlq"
{broker}
[brokers.dlq]
kind = "queue"
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 0.1 }}
prefetch = 10
{consumer}
"#
    )
}

#[test]
fn poison_messages_go_to_the_dead_letter_queue_and_others_get_through() {
    let out = run(&pipeline_with_dead_letters("poison_probability = 0.05", ""), 3);
    let c = &out.counts;
    let poisoned = out.errors.get("rejected-by-consumer").copied().unwrap_or(0);
    // Each poison message fails once and is dead-lettered at once.
    assert_eq!(out.errors.get("permanent-failure").copied().unwrap_or(0), poisoned);
    // 5% of 1,000: Binomial(1000, 0.05) has sd 6.9; allow 5 sd.
    assert!((poisoned as f64 - 50.0).abs() < 35.0, "{poisoned}");
    // They wait in the dead-letter queue, which nobody reads: in flight, not lost.
    assert_eq!(c.in_flight, poisoned);
    assert_eq!(c.processed + poisoned, c.produced);
    assert_eq!(c.lost, 0);
}

#[test]
fn a_message_that_keeps_failing_is_dead_lettered_past_its_delivery_limit() {
    // Every attempt fails transiently; at its 3rd return (delivery limit 2)
    // a message goes to the dead letters instead of round again: 3 deliveries.
    let out = run(&pipeline_with_dead_letters("failure_probability = 1", "delivery_limit = 2"), 1);
    assert_eq!(out.counts.processed, 0);
    assert_eq!(out.counts.in_flight, 1000, "all in the dead-letter queue");
    assert_eq!(out.errors.get("transient-failure").copied(), Some(3000));
    assert_eq!(out.errors.get("delivery-limit").copied(), Some(1000));
}

#[test]
fn messages_that_wait_longer_than_their_ttl_expire() {
    // The consumer takes 5 ms a message but they come every 1 ms: the queue
    // grows, and whatever waits more than 50 ms expires to the dead letters.
    let out = run(
        &pipeline_with_dead_letters("", "ttl_ms = 50").replace("ms = 0.1 }\nprefetch = 10", "ms = 5 }\nprefetch = 1"),
        1,
    );
    let expired = out.errors.get("expired").copied().unwrap_or(0);
    assert!(expired > 0);
    assert_eq!(out.counts.processed + expired, 1000);
    assert!(out.wait.max <= 50.0 + 1e-9, "no message started after its TTL: {}", out.wait.max);
    // Without a dead-letter queue, expired messages are gone: lost.
    let gone = run(
        &pipeline_with_dead_letters("", "ttl_ms = 50")
            .replace("ms = 0.1 }\nprefetch = 10", "ms = 5 }\nprefetch = 1")
            .replace("dead_letter = \"dlq\"\n", ""),
        1,
    );
    assert_eq!(gone.counts.lost, gone.errors.get("expired").copied().unwrap_or(0));
    assert!(gone.counts.lost > 0);
}

#[test]
fn a_consumer_slower_than_its_timeout_is_cancelled_and_the_delivery_limit_ends_the_loop() {
    // Processing takes 60 ms but the broker cancels a consumer that holds a
    // delivery for 50 ms: no ack can ever arrive in time. Each cancellation
    // is counted, and at its 3rd return each message is dead-lettered. The
    // work in progress still finishes, so every effect was applied, some
    // more than once: the acks were refused, not the work.
    let text = pipeline_with_dead_letters("", "redelivery_timeout_ms = 50\ndelivery_limit = 2")
        .replace("messages = 1000", "messages = 5")
        .replace("ms = 0.1 }\nprefetch = 10", "ms = 60 }\nprefetch = 1");
    let out = run(&text, 1);
    assert!(out.errors.get("consumer-timeout").copied().unwrap_or(0) >= 5);
    assert_eq!(out.errors.get("delivery-limit").copied(), Some(5));
    assert_eq!(out.counts.processed, 5);
    assert!(out.counts.duplicated > 0);
    assert!(out.last_event < 10 * sim_core::time::NS_PER_S, "the loop ends: {}", out.last_event);
}

#[test]
fn the_drain_does_not_wait_for_timers_guarding_nothing() {
    // A 10 s TTL and a 30 s redelivery timeout guard nothing once every
    // message is processed or dead-lettered: the run ends with its work.
    let text = pipeline_with_dead_letters("poison_probability = 0.05", "ttl_ms = 10000");
    let out = run(&text, 3);
    assert!(out.last_event < 2 * sim_core::time::NS_PER_S, "last event at {} ns", out.last_event);
}

#[test]
fn an_ack_that_comes_after_the_producer_gave_up_is_a_failed_send_not_a_loss() {
    // 5 ms links, a 1 ms ack timeout and no retries: the producer gives up
    // on every message before its ack arrives. The consumer is down, and the
    // non-durable broker crashes at 20 ms with what it had queued. Those
    // messages are gone, but the producer never considered them sent:
    // failed sends, not losses, even though their acks did arrive, late.
    let text = r#"
name = "late"
concept = "test"
[run]
duration_ms = 20
[network]
latency = { dist = "constant", ms = 5 }
[producers.p]
target = "b"
arrival = { process = "constant", rate_per_s = 1000 }
acks = "broker"
ack_timeout_ms = 1
retries = 0
[brokers.b]
kind = "queue"
durable = false
[consumers.c]
source = "b"
processing = { dist = "constant", ms = 1 }
[[faults]]
kind = "crash"
node = "c"
at_ms = 0
until_ms = 100
[[faults]]
kind = "crash"
node = "b"
at_ms = 20
"#;
    let out = run(text, 1);
    let c = &out.counts;
    assert_eq!(out.errors.get("ack-timeout").copied(), Some(c.produced), "the producer gave up on every send");
    assert!(c.send_failed > 0, "{c:?}");
    assert!(c.acked > c.processed, "acks came, late, for messages the crash then lost: {c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.processed + c.send_failed, c.produced);
}

#[test]
fn dead_letters_that_would_go_round_in_a_loop_are_refused() {
    let text = pipeline_with_dead_letters("", "")
        .replace("[brokers.dlq]\nkind = \"queue\"", "[brokers.dlq]\nkind = \"queue\"\ndead_letter = \"b\"");
    let err = Scenario::parse("loop.toml", &text).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("brokers.b.dead_letter"), "{err}");
    assert!(err.message.contains("loop"), "{err}");
}

#[test]
fn a_dedup_store_without_an_idempotent_effect_is_refused() {
    let text = pipeline_with_dead_letters("dedup_store = \"db\"", "");
    let err = Scenario::parse("store.toml", &text).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("consumers.c.dedup_store"), "{err}");
}

#[test]
fn a_stale_subscription_confirmation_does_not_strand_a_consumer() {
    // Found by at_least_once_never_loses: with 17% loss and some network
    // duplication, a consumer cancelled for a timeout took a duplicated or
    // late `subscribed` from its previous session as confirmation of its new
    // one, stopped asking, and the broker waited for it forever (21 of 300
    // processed). Confirmations and cancellations now carry their session.
    let f = Faults {
        loss: 0.17407717088558786,
        duplicate: 0.016620238175434284,
        failure: 0.0472985427420956,
        crashes: vec![],
        partition: None,
    };
    let out = run(&scenario(&f, RETRYING, ""), 957);
    assert_eq!(out.counts.processed, 300, "{:?}", out.counts);
    assert_eq!(out.counts.lost, 0);
}

/// One producer, one broker, one serial consumer, 1% loss and jitter on
/// every link, and a producer that retries; `producer` adds settings.
fn retrying_pipeline(producer: &str) -> String {
    format!(
        r#"
name = "order"
concept = "test"
[network]
latency = {{ dist = "uniform", min_ms = 1, max_ms = 9 }}
loss_probability = 0.05
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = 500 }}
messages = 2000
keys = {{ distribution = "uniform", count = 4 }}
acks = "broker"
ack_timeout_ms = 30
retries = 1000
retry_backoff_ms = 5
{producer}
[brokers.b]
kind = "queue"
redelivery_timeout_ms = 200
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 0.1 }}
prefetch = 1
"#
    )
}

#[test]
fn retries_with_many_in_flight_reorder_and_one_in_flight_does_not() {
    let many = run(&retrying_pipeline(""), 1);
    assert!(many.counts.reordered > 0, "a retried message lands after later ones: {:?}", many.counts);
    let one = run(&retrying_pipeline("max_in_flight = 1"), 1);
    assert_eq!(one.counts.reordered, 0, "{:?}", one.counts);
    for out in [&many, &one] {
        assert_eq!((out.counts.lost, out.counts.send_failed, out.counts.in_flight), (0, 0, 0), "{:?}", out.counts);
    }
}

#[test]
fn a_delivery_timeout_turns_a_long_outage_into_failed_sends() {
    // The producer is cut off for a second; it gives up on what it could
    // not deliver within 200 ms of producing it, instead of retrying on.
    let text = retrying_pipeline("delivery_timeout_ms = 200")
        + "[[faults]]\nkind = \"partition\"\ngroups = [[\"p\"]]\nat_ms = 1000\nuntil_ms = 2000\n";
    let out = run(&text, 1);
    let c = &out.counts;
    assert!(c.send_failed > 0, "{c:?}");
    // Every failed send was given up by the producer; but a message given up
    // may still have arrived (only its ack was lost): giving up is not proof
    // that it was not delivered.
    let gave_up = out.errors.get("delivery-timeout").copied().unwrap_or(0);
    assert!(gave_up >= c.send_failed, "{gave_up} {c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.processed + c.send_failed, c.produced, "{c:?}");
}

/// Loss and duplication only between producer and broker, many sends in
/// flight, a perfect consumer side: what reaches the effect is decided by
/// the producer and the broker alone.
fn lossy_publishing(producer: &str, loss: f64, dup: f64) -> String {
    format!(
        r#"
name = "idempotence"
concept = "test"
[network]
latency = {{ dist = "uniform", min_ms = 0, max_ms = 6 }}
[[network.links]]
from = "p"
to = "b"
loss_probability = {loss}
duplicate_probability = {dup}
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = 400 }}
messages = 400
keys = {{ distribution = "uniform", count = 3 }}
acks = "broker"
ack_timeout_ms = 20
{producer}
[brokers.b]
kind = "queue"
[consumers.c]
source = "b"
processing = {{ dist = "constant", ms = 0.1 }}
"#
    )
}

proptest! {
    // 64 cases per property, or `PROPTEST_CASES`.
    #![proptest_config(common::proptest_config(64))]

    /// A queue broker has no publisher deduplication (RabbitMQ has it on
    /// streams only): the remedy for a producer's resends and the
    /// network's copies is a consumer that deduplicates.
    #[test]
    fn resends_to_a_queue_are_made_harmless_by_an_idempotent_consumer(
        loss in 0.0..0.3f64, dup in 0.0..0.3f64, in_flight in 1..10u32, seed in 0..1000u64,
    ) {
        let mut text = lossy_publishing(&format!("retries = 1000\nmax_in_flight = {in_flight}"), loss, dup);
        text += "effect = \"idempotent\"\n";
        let out = run(&text, seed);
        let c = &out.counts;
        prop_assert_eq!((c.lost, c.duplicated, c.in_flight, c.send_failed), (0, 0, 0, 0), "{:?}", c);
        prop_assert_eq!(c.processed, c.produced);
    }
}

#[test]
fn without_an_idempotent_consumer_the_same_retries_duplicate_and_reorder() {
    let out = run(&lossy_publishing("retries = 1000\nmax_in_flight = 5", 0.2, 0.1), 1);
    assert!(out.counts.duplicated > 0 && out.counts.reordered > 0, "{:?}", out.counts);
    assert_eq!(out.counts.lost, 0);
}

#[test]
fn an_idempotent_producer_to_a_queue_broker_is_refused() {
    // Regression: it used to be accepted, its resends deduplicated by a
    // sequencer that RabbitMQ's queues do not have.
    let err = Scenario::parse("idem.toml", &lossy_publishing("idempotent = true", 0.0, 0.0)).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("producers.p.idempotent") && err.contains("streams only"), "{err}");
}

#[test]
fn a_refused_send_is_not_resent_in_the_same_instant() {
    // Zero latency, no backoff, a full queue nobody reads: resending a
    // refusal at once looped forever without time moving. A refused attempt
    // now fails at its ack deadline, so the run ends (its messages still
    // waiting at the producer when the drain runs out).
    let text = r#"
name = "spin"
concept = "test"
[run]
duration_ms = 1000
drain_ms = 1000
max_events = 1000000
[producers.p]
target = "b"
arrival = { process = "constant", rate_per_s = 100 }
messages = 5
acks = "broker"
retries = 2147483647
[brokers.b]
kind = "queue"
capacity = 1
overflow = "reject-publish"
"#;
    let out = run(text, 1);
    assert_eq!(out.counts.produced, 5);
    assert_eq!(out.counts.in_flight, 5, "one queued, four still being resent: {:?}", out.counts);
    assert!(out.events < 100_000, "{} events", out.events);
}
