//! Named regression tests of the partitioned log broker, its consumer
//! groups and its transactions: each is a small scenario (written here,
//! with variants where two settings are compared under the same faults)
//! that shows one behaviour a real Kafka-like deployment has, or one bug
//! that was found and fixed.

use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};
use std::collections::BTreeMap;

/// Runs every variant of `text` with `seed`, by variant name.
fn run_variants(text: &str, seed: u64) -> BTreeMap<String, RunOutput> {
    let scenario = Scenario::parse("log-broker.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let configs = scenario.configs().unwrap_or_else(|e| panic!("{e}\n{text}"));
    configs
        .into_iter()
        .map(|(v, config)| {
            let out = run_config(&config, seed, 0).unwrap_or_else(|e| panic!("{}: {e}\n{text}", v.name));
            (v.name.clone(), out)
        })
        .collect()
}

/// Runs the one variant of `text` with `seed`.
fn run(text: &str, seed: u64) -> RunOutput {
    let mut all = run_variants(text, seed);
    assert_eq!(all.len(), 1, "one variant expected");
    all.pop_first().expect("one variant").1
}

fn metric(out: &RunOutput, name: &str) -> f64 {
    out.metrics.get(name).copied().unwrap_or(0.0)
}

fn error(out: &RunOutput, kind: &str) -> u64 {
    out.errors.get(kind).copied().unwrap_or(0)
}

fn show(out: &RunOutput) -> String {
    format!("counts {:?}\nmetrics {:?}\nerrors {:?}\ndomains {:?}", out.counts, out.metrics, out.errors, out.domains)
}

// ---------------------------------------------------------------------------
// Bugs found by the property tests (tests/log_properties.rs)
// ---------------------------------------------------------------------------

/// With min ISR = replicas, the leader dies at once and returns 200 ms
/// later. Nothing could be written meanwhile (the ISR was too small), so
/// the returning replica is already caught up. It used to start no fetch
/// (there was nothing new to fetch), so it never rejoined the ISR and every
/// acks=all write was refused for the rest of the run (nothing acked, all
/// in flight at the end). A follower outside the ISR now fetches even when
/// caught up, and rejoins.
#[test]
fn a_caught_up_replica_back_from_a_crash_rejoins_the_isr() {
    let text = r#"
name = "isr-rejoin"
concept = "regression"
[run]
drain_ms = 10_000
[network]
latency = { dist = "constant", ms = 1 }
[producers.producer]
target = "kafka"
topic = "input"
arrival = { process = "constant", rate_per_s = 100 }
messages = 100
acks = "all"
ack_timeout_ms = 50
retries = 1_000_000
retry_backoff_ms = 10
[brokers.kafka]
kind = "log"
topics = { input = { partitions = 1 } }
replicas = 3
min_insync_replicas = 3
[consumers.reader]
source = "kafka"
topic = "input"
processing = { dist = "constant", ms = 0.1 }
[[faults]]
kind = "leader-crash"
broker = "kafka"
topic = "input"
partition = 0
at_ms = 0
until_ms = 200
"#;
    let out = run(text, 1);
    assert!(metric(&out, "isr_expands") >= 1.0, "{}", show(&out));
    assert!(error(&out, "not-enough-replicas") > 0, "refused while it was away: {}", show(&out));
    assert_eq!((out.counts.acked, out.counts.processed), (100, 100), "{}", show(&out));
    assert_eq!(out.counts.in_flight, 0, "{}", show(&out));
    // Refused only until it rejoined, not for the whole run.
    assert!(out.latency.max < 1_000.0, "{:?}", out.latency);
}

/// A member that heartbeats during a rebalance is told "rebalancing";
/// jittery latency (0.1 to 15 ms, against a 5 ms rebalance) can make that
/// notice arrive after the assignment that ends the same rebalance. The member used to take the late notice as a
/// new rebalance and drop its partitions, while the broker, already stable
/// in that generation, never told it anything again: the partitions were
/// read by nobody for the rest of the run. A notice for the generation the
/// member already holds is now ignored as stale.
#[test]
fn a_rebalance_notice_overtaken_by_its_assignment_does_not_strand_partitions() {
    let text = r#"
name = "late-notice"
concept = "regression"
[run]
duration_ms = 3_000
drain_ms = 10_000
[network]
latency = { dist = "uniform", min_ms = 0.1, max_ms = 15 }
[producers.producer]
target = "kafka"
topic = "input"
arrival = { process = "poisson", rate_per_s = 300 }
keys = { distribution = "uniform", count = 30 }
acks = "all"
ack_timeout_ms = 100
retries = 1_000_000
[brokers.kafka]
kind = "log"
topics = { input = { partitions = 6 } }
session_timeout_ms = 300
rebalance_delay_ms = 5
[consumers.a]
source = "kafka"
topic = "input"
processing = { dist = "exponential", mean_ms = 0.3 }
heartbeat_interval_ms = 50
[consumers.b]
source = "kafka"
topic = "input"
processing = { dist = "exponential", mean_ms = 0.3 }
heartbeat_interval_ms = 50
[consumers.c]
source = "kafka"
topic = "input"
processing = { dist = "exponential", mean_ms = 0.3 }
heartbeat_interval_ms = 50
[[faults]]
kind = "crash"
node = "c"
at_ms = 500
until_ms = 600
[[faults]]
kind = "crash"
node = "b"
at_ms = 1_200
until_ms = 1_300
[[faults]]
kind = "crash"
node = "c"
at_ms = 1_900
until_ms = 2_000
"#;
    // Only the last rebalance can strand anything (a later one hands out
    // the assignment again), and it does so in about half the seeds.
    for seed in 1..=10 {
        let out = run(text, seed);
        assert!(metric(&out, "rebalances") >= 4.0, "seed {seed}: {}", show(&out));
        assert_eq!(out.counts.processed, out.counts.produced, "seed {seed}: {}", show(&out));
        assert_eq!((out.counts.lost, out.counts.in_flight), (0, 0), "seed {seed}: {}", show(&out));
    }
}

/// A transactional stage whose input and output partitions are led by the
/// same replica, which dies; followers fetch about every 30 ms. A
/// transaction's output used to be written at the leader alone, so the
/// clean election that followed truncated committed output (its input
/// offsets committed too: lost for the downstream reader). A transaction
/// now commits with its output on every in-sync replica, as Kafka's
/// acks=all writes inside a transaction are.
#[test]
fn committed_transactional_output_survives_a_clean_failover() {
    let text = r#"
name = "txn-failover"
concept = "regression"
[run]
drain_ms = 30_000
[network]
latency = { dist = "exponential", mean_ms = 0.5 }
[producers.producer]
target = "kafka"
topic = "input"
arrival = { process = "poisson", rate_per_s = 300 }
messages = 600
keys = { distribution = "uniform", count = 10 }
acks = "all"
idempotent = true
ack_timeout_ms = 100
[brokers.kafka]
kind = "log"
topics = { input = { partitions = 1 }, output = { partitions = 1 } }
replicas = 2
replication = { dist = "exponential", mean_ms = 30 }
[consumers.stage]
source = "kafka"
topic = "input"
group = "stage"
domain = "email"
output_topic = "output"
transactional = true
processing = { dist = "constant", ms = 0.5 }
max_poll_records = 10
resubscribe_ms = 50
heartbeat_interval_ms = 100
[consumers.downstream]
source = "kafka"
topic = "output"
group = "downstream"
domain = "output"
processing = { dist = "constant", ms = 0.1 }
heartbeat_interval_ms = 100
[[faults]]
kind = "leader-crash"
broker = "kafka"
topic = "output"
partition = 0
at_ms = 700
until_ms = 1_200
[[faults]]
kind = "leader-crash"
broker = "kafka"
topic = "output"
partition = 0
at_ms = 1_500
until_ms = 1_800
"#;
    for seed in 1..=3 {
        let out = run(text, seed);
        assert!(metric(&out, "leader_elections") >= 2.0, "seed {seed}: {}", show(&out));
        assert!(metric(&out, "transactions_committed") > 0.0, "seed {seed}: {}", show(&out));
        let output = &out.domains["output"];
        assert_eq!((output.lost, output.duplicated, output.in_flight), (0, 0, 0), "seed {seed}: {}", show(&out));
        assert_eq!(out.inconsistent, 0, "seed {seed}: {}", show(&out));
    }
}

/// Replica 0 dies at once (its partitions fail over to replica 1); replica
/// 1 dies at 300 ms, before the leader noticed that replica 0 had fallen
/// behind (`replica_lag_max_ms`), so replica 0 was still in the ISR of the
/// partitions replica 1 led. Replica 0 comes back first and wins a "clean"
/// election there. Transactions used to commit with output the dead
/// in-sync replica lacked, and that election truncated it. A commit now
/// drops dead replicas from the ISR, as Kafka's leader would have before
/// the commit could complete: the partition waits offline for replica 1.
#[test]
fn a_transaction_does_not_commit_output_a_dead_in_sync_replica_lacks() {
    let text = r#"
name = "txn-dead-isr"
concept = "regression"
[run]
drain_ms = 30_000
[network]
latency = { dist = "exponential", mean_ms = 0.5 }
[producers.producer]
target = "kafka"
topic = "input"
arrival = { process = "poisson", rate_per_s = 200 }
messages = 200
keys = { distribution = "uniform", count = 10 }
acks = "all"
idempotent = true
ack_timeout_ms = 50
[brokers.kafka]
kind = "log"
topics = { input = { partitions = 1 }, output = { partitions = 2 } }
replicas = 2
replication = { dist = "exponential", mean_ms = 5 }
replica_lag_max_ms = 500
election_delay_ms = 10
[consumers.stage]
source = "kafka"
topic = "input"
group = "stage"
domain = "email"
output_topic = "output"
transactional = true
processing = { dist = "constant", ms = 0.5 }
max_poll_records = 10
resubscribe_ms = 50
heartbeat_interval_ms = 100
[consumers.downstream]
source = "kafka"
topic = "output"
group = "downstream"
domain = "output"
processing = { dist = "constant", ms = 0.1 }
heartbeat_interval_ms = 100
[[faults]]
kind = "replica-crash"
broker = "kafka"
replica = 0
at_ms = 0
until_ms = 600
[[faults]]
kind = "replica-crash"
broker = "kafka"
replica = 1
at_ms = 300
until_ms = 900
"#;
    for seed in 1..=3 {
        let out = run(text, seed);
        assert!(metric(&out, "transactions_committed") > 0.0, "seed {seed}: {}", show(&out));
        assert!(metric(&out, "offline_partitions") > 0.0, "seed {seed}: {}", show(&out));
        let output = &out.domains["output"];
        assert_eq!((output.lost, output.duplicated, output.in_flight), (0, 0, 0), "seed {seed}: {}", show(&out));
        assert_eq!(out.inconsistent, 0, "seed {seed}: {}", show(&out));
    }
}
