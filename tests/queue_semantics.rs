//! The queue broker's own semantics as RabbitMQ (3.13 and 4.x) has them,
//! run through the real CLI on small scenario files (issue 12): TTL 0 and
//! per-message TTL, the overflow modes, the delivery limit, and the
//! defaults. Each figure asserted follows from the scenario's arithmetic,
//! not from a stored run.

use crate::common::{self, num, TempDir};
use serde_json::Value;

/// A producer sending `messages` at `rate` a second to queue broker `b`
/// (extra `broker` lines), read by consumer `c` (extra `consumer` lines).
fn scenario(producer: &str, broker: &str, consumer: &str) -> String {
    format!(
        r#"
name = "queue-semantics"
concept = "test"
[run]
duration_ms = 60_000
[network]
latency = {{ dist = "constant", ms = 1 }}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 100 }}
{producer}
[brokers.b]
kind = "queue"
{broker}
[consumers.c]
source = "b"
{consumer}
"#
    )
}

/// Runs `text` at seed 1 and returns its only variant's summary.
fn run(name: &str, text: &str) -> Value {
    let dir = TempDir::new(name);
    let file = dir.write("s.toml", text);
    let out = dir.path().join("out");
    let (summary, _) = common::run_summary(file.to_str().unwrap(), "1", &out);
    summary["variants"].as_object().unwrap().values().next().unwrap().clone()
}

fn count(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for seg in path.split('.') {
        match x.get(seg) {
            Some(y) => x = y,
            None => return 0.0,
        }
    }
    x.as_f64().unwrap_or(0.0)
}

/// Issue 12, wrong item 1 (before: 99 of 99 expired, none delivered).
#[test]
fn ttl_zero_delivers_to_a_waiting_consumer() {
    // 100 messages, 10 ms apart; each is processed in 1 ms, so the consumer
    // always has room when the next arrives: every one is delivered at once.
    let text = scenario("messages = 100", "ttl_ms = 0", "prefetch = 1\nprocessing = { dist = \"constant\", ms = 1 }");
    let v = run("ttl0", &text);
    assert_eq!((num(&v, "produced"), num(&v, "processed")), (100.0, 100.0), "{v}");
    assert_eq!((count(&v, "errors_by_kind.expired"), num(&v, "lost")), (0.0, 0.0), "{v}");
}

#[test]
fn ttl_zero_expires_what_no_consumer_can_take_at_once() {
    // The consumer takes one message at a time for 25 ms: of the messages
    // arriving every 10 ms, only those arriving while it is idle go to it.
    // It is busy for 25 ms after each one it takes, so it takes the first of
    // every three (0, 30, 60 ms, ...): 34 of 100, and the 66 others expire.
    let text = scenario("messages = 100", "ttl_ms = 0", "prefetch = 1\nprocessing = { dist = \"constant\", ms = 25 }");
    let v = run("ttl0-busy", &text);
    assert_eq!(num(&v, "processed"), 34.0, "{v}");
    assert_eq!(count(&v, "errors_by_kind.expired"), 66.0, "{v}");
    assert_eq!(count(&v, "lost_by_cause.ttl"), 66.0, "{v}");
}

#[test]
fn a_per_message_ttl_expires_messages_that_wait_longer() {
    // The consumer is down for the first second (its processing is fine);
    // with prefetch 1 and 100 ms processing, a backlog builds; a message
    // TTL of 250 ms expires whatever waits longer than that, at the head.
    let text = scenario(
        "messages = 100\nmessage_ttl_ms = 250",
        "",
        "prefetch = 1\nprocessing = { dist = \"constant\", ms = 100 }",
    );
    let v = run("message-ttl", &text);
    let (processed, expired) = (num(&v, "processed"), count(&v, "errors_by_kind.expired"));
    assert_eq!(processed + expired, 100.0, "every message is processed or expired: {v}");
    // The consumer serves 10 a second for the second it takes the producer
    // to send 100: about 10 to 13 are served (those that waited < 250 ms).
    assert!((10.0..=14.0).contains(&processed), "{v}");
    assert_eq!(count(&v, "lost_by_cause.ttl"), expired, "{v}");
}

/// The acceptance point, and issue 12, wrong item 2 (before: every publish
/// to the full queue was refused with a nack and resent).
#[test]
fn a_full_queue_with_the_default_overflow_accepts_and_confirms_every_publish() {
    // 100 a second for a consumer that takes 50 a second, one at a time,
    // into a queue of 10: the queue is full after a fraction of a second,
    // and from then on each publish drops the oldest ready message.
    let text = scenario(
        "messages = 1000\nacks = \"broker\"\nretries = 5",
        "capacity = 10",
        "prefetch = 1\nprocessing = { dist = \"constant\", ms = 20 }",
    );
    let v = run("drop-head", &text);
    assert_eq!((num(&v, "produced"), num(&v, "acked")), (1000.0, 1000.0), "every publish confirmed: {v}");
    assert_eq!(count(&v, "errors_by_kind.rejected"), 0.0, "no nack: {v}");
    let dropped = count(&v, "lost_by_cause.dropped_head");
    assert_eq!(num(&v, "lost"), dropped, "every loss is a dropped head: {v}");
    assert_eq!(count(&v, "errors_by_kind.dropped-head"), dropped, "{v}");
    assert_eq!(count(&v, "metrics.dropped_head"), dropped, "{v}");
    // With prefetch 1, each delivery takes a cycle of 22 ms: 20 ms of
    // processing, 1 ms for the ack to reach the broker and 1 ms for the
    // next delivery. The queue is never empty from the first publish
    // (at 1 ms) to the last one (at 9.991 s) plus the 10 it then holds
    // (220 ms): 10.21 s / 22 ms = 464 cycles, and one delivered at once
    // at the start: 465 processed, the rest dropped.
    let processed = num(&v, "processed");
    assert_eq!(processed + dropped, 1000.0, "{v}");
    assert!((463.0..=467.0).contains(&processed), "{v}");
}

#[test]
fn reject_publish_nacks_and_the_producer_resends() {
    let text = scenario(
        "messages = 200\nacks = \"broker\"\nretries = 1000\nretry_backoff_ms = 50",
        "capacity = 10\noverflow = \"reject-publish\"",
        "prefetch = 1\nprocessing = { dist = \"constant\", ms = 20 }",
    );
    let v = run("reject-publish", &text);
    assert!(count(&v, "errors_by_kind.rejected") > 0.0, "{v}");
    assert_eq!((num(&v, "lost"), num(&v, "processed")), (0.0, 200.0), "refused, resent, none lost: {v}");
}

/// Issue 12, wrong item 3 (before: `max_deliveries = 3` delivered a failing
/// message 3 times; x-delivery-limit 3 delivers it 4 times).
#[test]
fn delivery_limit_allows_that_many_returns_then_dead_letters() {
    // Every processing attempt fails and nacks with requeue: each of the 20
    // messages is delivered once, returned 3 times and delivered again each
    // time, then dead-lettered at its 4th return.
    let text = scenario(
        "messages = 20",
        "delivery_limit = 3",
        "prefetch = 1\nprocessing = { dist = \"constant\", ms = 1 }\nfailure_probability = 1.0",
    );
    let v = run("delivery-limit", &text);
    assert_eq!(count(&v, "errors_by_kind.transient-failure"), 80.0, "{v}");
    assert_eq!(count(&v, "errors_by_kind.delivery-limit"), 20.0, "{v}");
    assert_eq!(count(&v, "lost_by_cause.dead_letter"), 20.0, "{v}");
}

#[test]
fn max_deliveries_is_refused_with_its_new_name_and_the_conversion() {
    let dir = TempDir::new("max-deliveries");
    let file = dir.write(
        "s.toml",
        &scenario("messages = 1", "max_deliveries = 5", "processing = { dist = \"constant\", ms = 1 }"),
    );
    let err = common::assert_bad_input(&common::asyncsim(&["run", file.to_str().unwrap()]));
    assert!(err.contains("delivery_limit = 4"), "{err}");
    assert!(err.contains("max_deliveries"), "{err}");
}

/// Issue 12, wrong item 7 (before: a consumer holding a delivery for 40 s
/// was cancelled at 30 s and the message redelivered).
#[test]
fn the_default_consumer_timeout_is_rabbitmqs_30_minutes() {
    let text = scenario("messages = 1", "", "processing = { dist = \"constant\", ms = 40_000 }")
        .replace("duration_ms = 60_000", "duration_ms = 1_000\ndrain_ms = 100_000");
    let v = run("consumer-timeout", &text);
    assert_eq!(count(&v, "errors_by_kind.consumer-timeout"), 0.0, "{v}");
    assert_eq!((num(&v, "processed"), num(&v, "duplicated")), (1.0, 0.0), "{v}");
}

mod overflow_property {
    use crate::common;
    use proptest::prelude::*;
    use sim_core::scenario::{run_config, Scenario};

    /// A producer with confirms and retries into a queue with
    /// `reject-publish`, random capacity, rate, consumers and processing.
    fn text(capacity: u64, rate: u32, consumers: u32, prefetch: u32, mean_ms: f64, ttl: bool) -> String {
        let ttl = if ttl { "message_ttl_ms = 60_000" } else { "" };
        let mut s = format!(
            r#"
name = "overflow-property"
concept = "test"
[run]
duration_ms = 2_000
[producers.p]
target = "b"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = 300
acks = "broker"
ack_timeout_ms = 100
retries = 1_000_000
retry_backoff_ms = 20
{ttl}
[brokers.b]
kind = "queue"
capacity = {capacity}
overflow = "reject-publish"
"#
        );
        for i in 0..consumers {
            s.push_str(&format!(
                "[consumers.c{i}]\nsource = \"b\"\nprefetch = {prefetch}\nprocessing = {{ dist = \"exponential\", mean_ms = {mean_ms} }}\n"
            ));
        }
        s
    }

    proptest! {
        #![proptest_config(common::proptest_config(24))]

        /// With `reject-publish` and confirms, a publish is confirmed only
        /// once its queue took it, and nothing takes it back out for
        /// overflow: no message the producer saw confirmed is lost, to
        /// overflow or anything else (no faults here), whatever the load.
        #[test]
        fn with_reject_publish_and_confirms_nothing_confirmed_is_lost_to_overflow(
            capacity in 0u64..20,
            rate in 20u32..800,
            consumers in 1u32..3,
            prefetch in 0u32..4,
            mean_ms in 1.0f64..40.0,
            ttl in any::<bool>(),
            seed in 1u64..1_000,
        ) {
            let text = text(capacity, rate, consumers, prefetch, mean_ms, ttl);
            let scenario = Scenario::parse("overflow.toml", &text).expect("valid");
            for (_, config) in scenario.configs().expect("resolves") {
                let out = run_config(&config, seed, 0).completed().expect("runs");
                let c = &out.counts;
                prop_assert_eq!(c.lost_by_cause.get("shed"), None, "{:?}", c);
                prop_assert_eq!(c.lost_by_cause.get("dropped_head"), None, "{:?}", c);
                prop_assert_eq!(c.lost, 0, "{:?}", c);
            }
        }
    }
}
