//! A cause for every loss and every duplicate (issue 8, point 8): the
//! ledger's `lost_by_cause` and `duplicated_by_cause` add up to `lost` and
//! `duplicated`, per variant and per effect domain, and name the cause a
//! scenario's design makes inevitable. Every bundled scenario's causes, at
//! seeds 1 to 5, are checked with its stored summary (`references.rs`).

use crate::common;

use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

/// Runs every variant of scenario `text` at `seed`, by variant name.
fn run_all(file: &str, text: &str, seed: u64) -> Vec<(String, RunOutput)> {
    let scenario = Scenario::parse(file, text).unwrap_or_else(|e| panic!("{file} is valid: {e}"));
    let configs = scenario.configs().unwrap_or_else(|e| panic!("{file} resolves: {e}"));
    configs
        .into_iter()
        .map(|(v, config)| {
            let out = run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("{file} runs: {e}"));
            (v.name.clone(), out)
        })
        .collect()
}

fn bundled(name: &str) -> String {
    std::fs::read_to_string(common::repo().join("scenarios").join(name)).expect("a bundled scenario")
}

/// The acceptance point: on `delivery-guarantees.toml`, for every variant
/// and seeds 1 to 20, the causes add up to `lost` and `duplicated` (per
/// variant and per domain), and none is unexplained.
#[test]
fn delivery_guarantees_causes_add_up_for_every_variant_and_seed_1_to_20() {
    let text = bundled("delivery-guarantees.toml");
    let mut cbp = 0;
    let mut losses = 0;
    for seed in 1..=20 {
        for (variant, out) in run_all("delivery-guarantees.toml", &text, seed) {
            let at = format!("{variant} at seed {seed}");
            common::causes_add_up(&out).unwrap_or_else(|e| panic!("{at}: {e}"));
            common::nothing_unexplained(&out).unwrap_or_else(|e| panic!("{at}: {e}"));
            if variant == "at-most-once" {
                cbp += out.counts.lost_by_cause.get("commit_before_process").copied().unwrap_or(0);
                losses += out.counts.lost;
            } else {
                // Acks after processing and retrying producers lose nothing
                // to the consumer: no offset is committed before processing.
                assert!(!out.counts.lost_by_cause.contains_key("commit_before_process"), "{at}");
            }
        }
    }
    assert!(losses > 0, "at-most-once loses messages in 20 seeds");
    // Its consumers crash after committing offsets they had not processed.
    assert!(cbp > 0, "at-most-once names commit_before_process in 20 seeds ({losses} lost)");
}

/// Processing as the small queue scenarios' consumer does by default.
const QUICK: &str = "processing = { dist = \"constant\", ms = 2 }";
/// Processing slower than the producer's 200 messages a second, one
/// unacked delivery at a time, so that the backlog waits in the broker
/// (RabbitMQ's default prefetch, no limit, would move it to the consumer).
const SLOW: &str = "processing = { dist = \"constant\", ms = 20 }\nprefetch = 1";

/// A small queue scenario (200 messages a second for 4 s, a constant 1 ms
/// network): each argument adds lines to its section.
fn queue_scenario(network: &str, producer: &str, broker: &str, consumer: &str, faults: &str) -> String {
    format!(
        r#"
name = "causes"
concept = "test"
[run]
duration_ms = 4_000
[network]
latency = {{ dist = "constant", ms = 1 }}
{network}
[producers.p]
target = "b"
arrival = {{ process = "constant", rate_per_s = 200 }}
{producer}
[brokers.b]
kind = "queue"
{broker}
[consumers.c]
source = "b"
{consumer}
{faults}
"#
    )
}

fn one(text: &str, seed: u64) -> RunOutput {
    let mut runs = run_all("causes.toml", text, seed);
    assert_eq!(runs.len(), 1);
    let (_, out) = runs.remove(0);
    common::causes_add_up(&out).unwrap_or_else(|e| panic!("{e}\n{text}"));
    out
}

#[test]
fn a_fire_and_forget_producer_over_a_lossy_link_loses_to_the_network() {
    let text = queue_scenario("loss_probability = 0.1", "acks = \"none\"", "", QUICK, "");
    let out = one(&text, 3);
    let c = &out.counts;
    assert!(c.lost > 0, "{c:?}");
    // Random loss of a publish, or of a delivery to the consumer, and nothing else.
    assert_eq!(c.lost_by_cause.keys().copied().collect::<Vec<_>>(), ["network_loss"], "{c:?}");
}

#[test]
fn a_crash_of_a_non_durable_queue_loses_its_contents_to_the_crash() {
    // A consumer slower than the producer keeps a backlog in the broker,
    // which crashes once; the network is perfect and nothing is sent to the
    // broker while it is down (the producer's target is up again first).
    let faults = "[[faults]]\nkind = \"crash\"\nnode = \"b\"\nat_ms = 2_000\nuntil_ms = 2_000";
    let text = queue_scenario("", "acks = \"none\"", "durable = false", SLOW, faults);
    let out = one(&text, 1);
    let c = &out.counts;
    assert!(c.lost > 0, "{c:?}");
    assert_eq!(c.lost_by_cause.get("crash"), Some(&c.lost), "{c:?}");
}

#[test]
fn a_network_that_duplicates_gives_network_copies() {
    let text = queue_scenario("duplicate_probability = 0.2", "acks = \"none\"", "", QUICK, "");
    let out = one(&text, 2);
    let c = &out.counts;
    assert!(c.duplicated > 0, "{c:?}");
    assert_eq!(c.duplicated_by_cause.get("network_copy"), Some(&c.duplicated), "{c:?}");
}

#[test]
fn a_full_queue_sheds_and_a_ttl_expires() {
    let broker = "capacity = 10\noverflow = \"reject-publish\"";
    let shed = one(&queue_scenario("", "acks = \"none\"", broker, SLOW, ""), 1);
    assert!(shed.counts.lost > 0, "{:?}", shed.counts);
    assert_eq!(shed.counts.lost_by_cause.get("shed"), Some(&shed.counts.lost), "{:?}", shed.counts);
    // The default overflow, drop-head, drops the oldest instead.
    let dropped = one(&queue_scenario("", "acks = \"none\"", "capacity = 10", SLOW, ""), 1);
    assert!(dropped.counts.lost > 0, "{:?}", dropped.counts);
    let by_cause = &dropped.counts.lost_by_cause;
    assert_eq!(by_cause.get("dropped_head"), Some(&dropped.counts.lost), "{:?}", dropped.counts);
    let ttl = one(&queue_scenario("", "acks = \"none\"", "ttl_ms = 50", SLOW, ""), 1);
    assert!(ttl.counts.lost > 0, "{:?}", ttl.counts);
    assert_eq!(ttl.counts.lost_by_cause.get("ttl"), Some(&ttl.counts.lost), "{:?}", ttl.counts);
}
