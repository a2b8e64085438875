//! A log producer batches (issue 10, "no batching; in-flight counts
//! messages"): small scenarios through the real command line, read back
//! from `summary.json`.
//!
//! Before batching, a producer with `max_in_flight = 1` at 2,000 msg/s sent
//! one message per round trip and fell behind without end (a 10.5 s mean
//! latency); an idempotent one with 5 in flight, 3.1 s. With batches the
//! load sets the batch size, and latency stays within a few round trips.
//!
//! The bounds below come from the scenario, not from a run. A record waits
//! at most one linger (5 ms) for its batch to be ready, then at most for
//! the request in flight before it (one produce round trip: 2 link
//! latencies of at most 1.5 ms, plus the followers' fetch of 1 ms, twice if
//! a fetch was under way: at most 5 ms), then its own round trip (5 ms):
//! 15 ms. A consumer parked on the partition is sent the records when the
//! high watermark passes them (1.5 ms) and processes them at 0.1 ms each,
//! at most a batch of a few tens of records: a few ms. So every latency is
//! under about 25 ms, far from seconds; the bounds assert that.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, run_summary, TempDir};
use serde_json::Value;

/// A log scenario: `rate` msg/s for `duration_ms` to one partition
/// replicated 3 times, with the producer lines `producer` added.
fn scenario(rate: u32, duration_ms: u32, producer: &str) -> String {
    format!(
        r#"
name = "batching"
concept = "a batching log producer"
seed = 1

[run]
duration_ms = {duration_ms}

[network]
latency = {{ dist = "uniform", min_ms = 0.5, max_ms = 1.5 }}

[producers.producer]
target = "kafka"
topic = "events"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
keys = {{ distribution = "uniform", count = 20 }}
{producer}

[brokers.kafka]
kind = "log"
topics = {{ events = {{ partitions = 1 }} }}
replicas = 3
min_insync_replicas = 2
replication = {{ dist = "constant", ms = 1 }}
# The group's first assignment takes no time: what is measured is the
# producer, not the consumer's join.
initial_rebalance_delay_ms = 0

[consumers.reader]
source = "kafka"
topic = "events"
group = "readers"
processing = {{ dist = "constant", ms = 0.1 }}
"#
    )
}

/// Runs `text` with seed `seed`; every expectation holds. Returns the one
/// variant's figures.
fn run(name: &str, text: &str, seed: &str) -> Value {
    let dir = TempDir::new(name);
    let file = dir.write("s.toml", text);
    let (summary, _) = run_summary(file.to_str().expect("UTF-8"), seed, &dir.path().join("out"));
    summary["variants"].as_object().expect("variants").values().next().expect("a variant").clone()
}

/// The reader's processing in `scenario`, and a faster one for runs at
/// tens of thousands of records a second.
const READER: &str = "processing = { dist = \"constant\", ms = 0.1 }";
const FAST_READER: &str = "processing = { dist = \"constant\", ms = 0.005 }";

/// Runs `text` (50,000 msg/s for 0.5 s): it keeps up, reaches its rate and
/// has a p99 under 50 ms.
fn reaches_fifty_thousand_with_a_p99_under_50_ms(name: &str, text: &str) {
    let v = run(name, text, "1");
    kept_up(&v);
    // 25,000 expected in 0.5 s, Poisson: the standard deviation is 158.
    let produced = num(&v, "produced");
    assert!((produced - 25_000.0).abs() < 5.0 * 158.0, "produced {produced}");
    let p99 = num(&v, "latency_ms.p99");
    assert!(p99 < 50.0, "p99 {p99} ms");
}

/// Nothing lost or stuck, and the consumer processed what was produced.
fn kept_up(v: &Value) {
    assert_eq!(num(v, "lost"), 0.0, "{v}");
    assert_eq!(num(v, "in_flight"), 0.0, "{v}");
    assert_eq!(num(v, "send_failed"), 0.0, "{v}");
    assert_eq!(num(v, "processed"), num(v, "produced"), "{v}");
}

#[test]
fn one_request_in_flight_at_2000_per_second_is_served_in_milliseconds_not_seconds() {
    for seed in ["1", "2"] {
        let v = run("in-flight-1", &scenario(2000, 2000, "acks = \"all\"\nmax_in_flight = 1"), seed);
        kept_up(&v);
        let (mean, p99) = (num(&v, "latency_ms.mean"), num(&v, "latency_ms.p99"));
        assert!(mean < 25.0, "seed {seed}: mean latency {mean} ms (10.5 s before batching)");
        assert!(p99 < 50.0, "seed {seed}: p99 {p99} ms");
    }
}

#[test]
fn an_idempotent_producer_with_5_in_flight_is_served_in_milliseconds() {
    let v = run("idempotent-5", &scenario(2000, 2000, "acks = \"all\"\nidempotent = true\nmax_in_flight = 5"), "1");
    kept_up(&v);
    assert_eq!(num(&v, "duplicated"), 0.0);
    let mean = num(&v, "latency_ms.mean");
    assert!(mean < 25.0, "mean latency {mean} ms (3.1 s before batching)");
}

#[test]
fn idempotence_set_explicitly_with_6_in_flight_is_bad_input() {
    let text = scenario(100, 100, "idempotent = true\nmax_in_flight = 6");
    let line = text.lines().position(|l| l.starts_with("max_in_flight")).expect("the line") + 1;
    let dir = TempDir::new("idempotent-6");
    let file = dir.write("s.toml", &text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().expect("UTF-8")]));
    assert_names(&err, &file, line, "producers.producer.max_in_flight");
    assert!(err.contains("at most 5"), "{err}");
}

#[test]
fn idempotence_on_by_default_turns_itself_off_with_6_in_flight() {
    // Kafka's rule since 3.2: a default that conflicts gives way. No
    // error; the producer is not idempotent (its sends carry no session).
    let v = run("default-6", &scenario(500, 500, "max_in_flight = 6"), "1");
    kept_up(&v);
}

/// The acceptance case of issue 10: 50,000 msg/s, acks=all, 5 requests in
/// flight, a 5 ms linger, three replicas over 1 ms links. Records of 200
/// bytes (a small event): a 16 KiB batch holds 81 of them, and 5 batches
/// per round trip of at most 5 ms carry 81,000 a second, above the rate.
/// (With 1 KiB records a single partition carries about 16 records a
/// batch: under 50,000 a second; the next test spreads them over
/// partitions, whose batches share a request.)
#[test]
fn fifty_thousand_per_second_with_acks_all_reaches_its_rate_with_a_p99_under_50_ms() {
    let producer = "acks = \"all\"\nmax_in_flight = 5\nlinger_ms = 5\nmessage_bytes = 200";
    let text = scenario(50_000, 500, producer)
        .replace(
            "latency = { dist = \"uniform\", min_ms = 0.5, max_ms = 1.5 }",
            "latency = { dist = \"constant\", ms = 1 }",
        )
        .replace(READER, FAST_READER);
    reaches_fifty_thousand_with_a_p99_under_50_ms("fifty-thousand", &text);
}

/// The acceptance case again with Kafka's default-sized records (1 KiB)
/// and batches (16 KiB), over links of 1 Gbit/s, to 8 partitions. A batch
/// holds 16 records, so one partition alone, at 5 requests per round trip
/// of at least 3 ms (2 link latencies and a replication), carries at most
/// 5 * 16 / 3 ms = 26,700 a second: under the rate. But a request carries
/// a batch for every partition (Kafka's sender drains them all), so 8
/// partitions carry up to 8 times that. With 1,000 keys the partitions
/// share the load about evenly, 6,250 a second each; a request of 8
/// batches is 128 KiB, 1 ms at 1 Gbit/s, so a round trip is under 5 ms and
/// each partition can carry 5 * 16 / 5 ms = 16,000 a second, well above
/// its share. A record waits at most a linger and a few round trips: p99
/// well under 50 ms.
#[test]
fn fifty_thousand_per_second_of_1_kib_records_to_8_partitions_reaches_its_rate_with_a_p99_under_50_ms() {
    let producer = "acks = \"all\"\nmax_in_flight = 5\nlinger_ms = 5";
    let text = scenario(50_000, 500, producer)
        .replace(
            "latency = { dist = \"uniform\", min_ms = 0.5, max_ms = 1.5 }",
            "latency = { dist = \"constant\", ms = 1 }\nbandwidth = \"1Gbps\"",
        )
        .replace("partitions = 1", "partitions = 8")
        .replace("count = 20", "count = 1000")
        .replace(READER, FAST_READER);
    reaches_fifty_thousand_with_a_p99_under_50_ms("fifty-thousand-1k", &text);
}

/// 8 partitions at 20,000 a second with one request in flight: only
/// because a request carries every partition's batch does the producer
/// keep up (the arithmetic is in the test).
#[test]
fn a_produce_request_carries_a_batch_for_every_partition_with_one_waiting() {
    let producer = "acks = \"all\"\nmax_in_flight = 1\nlinger_ms = 5";
    let text = scenario(20_000, 500, producer)
        .replace("partitions = 1", "partitions = 8")
        .replace("count = 20", "count = 1000")
        .replace(READER, FAST_READER);
    let v = run("one-request-many-batches", &text, "1");
    kept_up(&v);
    // One request in flight of one 16-record batch per round trip of at
    // least 2 ms (2 link latencies of at least 0.5 ms and a 1 ms
    // replication) would carry at most 8,000 a second, and 10,000 made in
    // 0.5 s would take over 1.2 s: a worst latency over 700 ms. With 8
    // batches a request the producer keeps up and the worst stays small.
    let max = num(&v, "latency_ms.max");
    assert!(max < 100.0, "max latency {max} ms");
}

/// A queue scenario: `messages` published fire-and-forget at `rate` a
/// second over 1 ms links, the producer's link with `bandwidth` (if any).
fn queue_over(rate: u32, messages: u32, bandwidth: &str) -> String {
    let link = if bandwidth.is_empty() {
        String::new()
    } else {
        format!("links = [{{ from = \"producer\", to = \"broker\", bandwidth = {bandwidth} }}]")
    };
    format!(
        r#"
name = "bandwidth"
concept = "a link of known bandwidth"
seed = 1

[network]
latency = {{ dist = "constant", ms = 1 }}
{link}

[producers.producer]
target = "broker"
arrival = {{ process = "poisson", rate_per_s = {rate} }}
messages = {messages}

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
# Enough deliveries unacked that the consumer's acks are no bottleneck.
prefetch = 1000
processing = {{ dist = "constant", ms = 0.001 }}
"#
    )
}

/// A publish of a 1,024-byte record weighs 1,064 bytes on the wire (a
/// 24-byte header and a 16-byte body, then the record), so a link of
/// 1,064,000 bytes a second transmits exactly 1,000 publishes a second,
/// one every 1 ms.
///
/// Offered 2,000 a second, the link is the bottleneck: the N publishes
/// leave one after the other, so the last arrives at least N ms after the
/// start, while it was produced by the end of production (about 1 s for
/// 2,000; its Poisson spread is 22 ms). So the largest latency is at least
/// N ms - 1 s (minus a margin of 5 spreads): throughput cannot pass the
/// bandwidth, and the wait grows with the backlog. Offered 500 a second
/// (an M/D/1 queue at load 0.5 before the link: a mean wait of 0.5 ms),
/// the link adds little more than its 1 ms of transmission. Without the
/// bandwidth, the same overload builds no backlog.
#[test]
fn a_link_of_known_bandwidth_saturates() {
    let over = run("bw-over", &queue_over(2000, 2000, "1064000"), "1");
    kept_up(&over);
    let max = num(&over, "latency_ms.max");
    assert!(max >= 2000.0 - 1000.0 - 5.0 * 22.0, "max latency {max} ms: throughput above the bandwidth?");
    assert!(num(&over, "latency_ms.p50") > 100.0, "the backlog delays most publishes: {over}");

    let under = run("bw-under", &queue_over(500, 1000, "\"8.512Mbps\""), "1");
    kept_up(&under);
    let (mean, p99) = (num(&under, "latency_ms.mean"), num(&under, "latency_ms.p99"));
    // 1 ms to transmit, 1 ms of latency to the broker and 1 ms to the
    // consumer, a mean wait of 0.5 ms.
    assert!(mean > 3.0 && mean < 5.0, "mean {mean} ms");
    assert!(p99 < 20.0, "p99 {p99} ms");
    let base = run("bw-under-none", &queue_over(500, 1000, ""), "1");
    // The same draws with and without the link's bandwidth: each publish
    // takes 1 ms more to transmit, plus its wait behind the one before
    // (0.5 ms on average at load 0.5), however the broker and the consumer
    // then delay it.
    let extra = num(&under, "latency_ms.mean") - num(&base, "latency_ms.mean");
    assert!((1.0..2.5).contains(&extra), "the bandwidth adds {extra} ms on average");
    let extra_p99 = num(&under, "latency_ms.p99") - num(&base, "latency_ms.p99");
    assert!(extra_p99 < 20.0, "the bandwidth adds {extra_p99} ms at the p99");

    let free = run("bw-none", &queue_over(2000, 2000, ""), "1");
    assert!(num(&free, "latency_ms.max") < max / 2.0, "no bandwidth, no backlog: {free}");
}

/// A fetch byte budget: with `max_partition_fetch_bytes = 1500` and
/// records of 1,024 bytes a fetch returns one record, so the reader needs a
/// fetch round trip (two link latencies, at least 1 ms) per record: the N
/// records produced in 0.5 s take at least N ms to read, and the largest
/// latency is at least N ms - 0.5 s (minus a margin for the spread of the
/// last production). With Kafka's default budget (1 MiB) the same reader
/// keeps up within milliseconds. And a record larger than the budget still
/// gets through, alone: nothing is stuck.
#[test]
fn a_fetch_byte_budget_limits_records_per_fetch_and_a_larger_record_still_gets_through() {
    let with = |consumer: &str, producer: &str| {
        scenario(2000, 500, producer).replace("group = \"readers\"", &format!("group = \"readers\"\n{consumer}"))
    };
    let small = run("budget-small", &with("max_partition_fetch_bytes = 1500", ""), "1");
    kept_up(&small);
    let n = num(&small, "processed");
    let max = num(&small, "latency_ms.max");
    // 1,000 produced in 0.5 s, Poisson: the last comes within 5 x 22 ms of 0.5 s.
    assert!(max >= n - 500.0 - 5.0 * 22.0, "max latency {max} ms for {n} records read one per fetch");

    let default = run("budget-default", &with("", ""), "1");
    kept_up(&default);
    assert!(num(&default, "latency_ms.p99") < 50.0, "{default}");

    let large = run("budget-large", &with("fetch_max_bytes = 1500", "message_bytes = 5000"), "1");
    kept_up(&large);
}

#[test]
fn record_sizes_may_be_drawn_and_bad_sizes_are_bad_input() {
    let drawn = "message_bytes = { dist = \"uniform\", min = 100, max = 3000 }";
    let v = run("sizes-drawn", &scenario(2000, 500, drawn), "1");
    kept_up(&v);
    for (bad, field) in [
        ("message_bytes = { dist = \"uniform\", min = 3000, max = 100 }", "producers.producer.message_bytes"),
        ("message_bytes = 0", "producers.producer.message_bytes"),
    ] {
        let dir = TempDir::new("sizes-bad");
        let file = dir.write("s.toml", &scenario(100, 100, bad));
        let err = assert_bad_input(&asyncsim(&["validate", file.to_str().expect("UTF-8")]));
        assert!(err.contains(field), "{err}");
    }
    let dir = TempDir::new("bandwidth-bad");
    let text = scenario(100, 100, "").replace("[network]", "[network]\nbandwidth = \"fast\"");
    let file = dir.write("s.toml", &text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().expect("UTF-8")]));
    assert!(err.contains("network.bandwidth") && err.contains("Gbps"), "{err}");
}
