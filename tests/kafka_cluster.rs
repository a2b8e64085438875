//! Log clusters (`brokers = N`) through the CLI: the bundled scenarios of
//! what a network partition does to a Kafka cluster (to its partitions'
//! leaders, and to a group's coordinator), and the checks of a cluster's
//! fields.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, run_summary, TempDir};
use serde_json::Value;

/// Runs bundled `file` with `seed` (every expectation must hold).
fn run(file: &str, seed: &str) -> Value {
    let dir = TempDir::new(&format!("{}-{seed}", file.trim_end_matches(".toml")));
    run_summary(&format!("scenarios/{file}"), seed, &dir.path().join("out")).0
}

/// A number at a dotted path in a variant (absent metrics and causes count as 0).
fn num(s: &Value, variant: &str, path: &str) -> f64 {
    let mut x = &s["variants"][variant];
    assert!(!x.is_null(), "no variant `{variant}`");
    for seg in path.split('.') {
        x = match x.get(seg) {
            Some(v) => v,
            None if ["metrics.", "lost_by_cause.", "duplicated_by_cause."].iter().any(|p| path.starts_with(p)) => {
                return 0.0
            }
            None => panic!("no key `{path}` in variant `{variant}`"),
        };
    }
    x.as_f64().unwrap_or_else(|| panic!("`{path}` of `{variant}` is not a number"))
}

/// No fault of the variant crashed a node: what it lost, a network
/// partition lost.
fn only_partitions(s: &Value, variant: &str) {
    for f in s["variants"][variant]["faults"].as_array().expect("faults") {
        let label = f["fault"].as_str().expect("a label");
        assert!(label.starts_with("partition"), "{variant}: an unexpected fault {label}");
    }
}

#[test]
fn an_isolated_leader_with_min_isr_1_loses_acknowledged_writes_and_min_isr_2_does_not() {
    for seed in ["1", "2"] {
        let s = run("kafka-partition.toml", seed);
        for v in ["min-isr-1", "min-isr-2", "min-isr-1-clean"] {
            only_partitions(&s, v);
        }
        // Every loss is an acknowledged write the isolated leader truncated
        // when it rejoined.
        let lost = num(&s, "min-isr-1", "lost");
        assert!(lost > 0.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-1", "lost_by_cause.truncated_after_partition"), lost, "seed {seed}");
        assert!(num(&s, "min-isr-1", "metrics.acked_records_truncated") >= lost, "seed {seed}");
        // With min ISR 2 the isolated leader diverged too (it appended
        // what it could not acknowledge), but nothing acknowledged went.
        assert_eq!(num(&s, "min-isr-2", "lost"), 0.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-2", "metrics.acked_records_truncated"), 0.0, "seed {seed}");
        assert!(num(&s, "min-isr-2", "metrics.truncated_records") > 0.0, "seed {seed}: no divergence shown");
        // Without unclean election nothing is truncated: the partition
        // waits, offline, for its only in-sync replica.
        assert_eq!(num(&s, "min-isr-1-clean", "lost"), 0.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-1-clean", "metrics.truncated_records"), 0.0, "seed {seed}");
        assert!(num(&s, "min-isr-1-clean", "alarms.offline.active_s") > 0.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-1", "metrics.unclean_elections"), 1.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-1-clean", "metrics.unclean_elections"), 0.0, "seed {seed}");
    }
}

/// After the unclean election the new leader lacks the producer's
/// truncated batches, so it refuses the next numbers (`out-of-order`). As
/// since Kafka 2.5 (KIP-360), the idempotent producer starts the
/// partition's numbers again after an epoch bump instead of retrying until
/// its 120 s delivery timeout: it gives nothing up, and the records made
/// after the heal are written at once (before, half of all records waited
/// out the delivery timeout: a p50 of 113 s at seed 1).
#[test]
fn after_the_truncation_the_idempotent_producer_renumbers_instead_of_timing_out() {
    for seed in ["1", "2"] {
        let s = run("kafka-partition.toml", seed);
        assert!(num(&s, "min-isr-1", "errors_by_kind.out-of-order") > 0.0, "seed {seed}: no gap was refused");
        assert!(num(&s, "min-isr-1", "metrics.epoch_bumps") >= 1.0, "seed {seed}");
        assert_eq!(num(&s, "min-isr-1", "send_failed"), 0.0, "seed {seed}");
        assert!(s["variants"]["min-isr-1"]["errors_by_kind"].get("delivery-timeout").is_none(), "seed {seed}");
        // Far below the delivery timeout, and below the 35 s the leader
        // was cut off: nothing waited for the timeout.
        assert!(num(&s, "min-isr-1", "latency_ms.max") < 35_000.0, "seed {seed}");
    }
}

#[test]
fn a_stale_leader_loses_the_acks_1_writes_it_took_after_the_election() {
    for seed in ["1", "2"] {
        let s = run("kafka-stale-leader.toml", seed);
        only_partitions(&s, "acks-1");
        let lost = num(&s, "acks-1", "lost");
        assert!(lost > 0.0, "seed {seed}");
        assert_eq!(num(&s, "acks-1", "lost_by_cause.truncated_after_partition"), lost, "seed {seed}");
        // The election was clean: the loss is the stale leader's, not an
        // unclean election's.
        assert_eq!(num(&s, "acks-1", "metrics.unclean_elections"), 0.0, "seed {seed}");
        assert!(num(&s, "acks-1", "metrics.leader_elections") >= 1.0, "seed {seed}");
        // Only `near`, beside the stale leader, wrote there: at most its
        // 100 records a second for the 25 s partition are lost.
        assert!(lost <= 100.0 * 25.0 + 100.0, "seed {seed}: lost {lost}");
        assert_eq!(num(&s, "acks-all", "lost"), 0.0, "seed {seed}");
        // acks=all waited out the partition instead.
        assert!(num(&s, "acks-all", "latency_ms.max") > 20_000.0, "seed {seed}");
    }
}

#[test]
fn a_consumer_cut_off_from_its_coordinator_keeps_processing_what_the_group_gave_away() {
    for seed in ["1", "2"] {
        let s = run("kafka-coordinator-cut.toml", seed);
        let v = "consumer-cut";
        only_partitions(&s, v);
        // Nothing is lost: the group's new owner of the partition starts
        // from the last offset committed, and `c1` commits nothing it did
        // not process.
        assert_eq!(num(&s, v, "lost"), 0.0, "seed {seed}");
        // The coordinator expired `c1` (the session timeout passed without
        // a heartbeat it could hear) and gave its partition to `c2`, while
        // `c1`, still reaching the partition's leader, processed it too.
        assert_eq!(num(&s, v, "metrics.members_expired"), 1.0, "seed {seed}");
        let dup = num(&s, v, "duplicated");
        assert!(dup > 0.0, "seed {seed}");
        // Each extra processing is a record the leader sent the group
        // again, to the member the group gave the partition to.
        assert_eq!(num(&s, v, "duplicated_by_cause.redelivered"), dup, "seed {seed}");
        // At most what was produced from the cut (10 s) to the heal (35 s),
        // 100 records a second: what the two members both read.
        assert!(dup <= 100.0 * 25.0, "seed {seed}: {dup}");
        // `c1` saw its coordinator go (it never moved), its commits fail,
        // and was fenced once it reached the group again.
        assert!(num(&s, v, "metrics.coordinator_lost") >= 1.0, "seed {seed}");
        assert!(num(&s, v, "metrics.offset_commit_failures") > 0.0, "seed {seed}");
        assert!(num(&s, v, "metrics.commits_fenced") > 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.coordinator_moves"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.leader_elections"), 0.0, "seed {seed}: no broker was cut off");
    }
}

#[test]
fn a_coordinator_cut_off_moves_with_its_offsets_partition_and_nothing_is_lost_or_repeated() {
    for seed in ["1", "2"] {
        let s = run("kafka-coordinator-cut.toml", seed);
        let v = "coordinator-cut";
        only_partitions(&s, v);
        // The controller fenced the coordinator's broker and elected a new
        // leader of the offsets partition, which took the group over.
        assert_eq!(num(&s, v, "metrics.brokers_fenced"), 1.0, "seed {seed}");
        assert!(num(&s, v, "metrics.leader_elections") >= 1.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.coordinator_moves"), 1.0, "seed {seed}");
        assert!(num(&s, v, "metrics.coordinator_lost") >= 1.0, "seed {seed}: the members looked it up again");
        // It loaded the members, the assignment and the committed offsets
        // from its replica: the members kept their partitions and nobody
        // read anything again.
        assert_eq!(num(&s, v, "lost"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "duplicated"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.commits_fenced"), 0.0, "seed {seed}");
    }
}

/// Runs bundled `file`'s `variant` with `seed` and `--set` overrides
/// (expectations may fail: exit 0 or 1), and returns summary.json.
fn run_with(file: &str, variant: &str, seed: &str, sets: &[&str]) -> Value {
    let dir = TempDir::new(&format!("{}-{variant}-{seed}-set", file.trim_end_matches(".toml")));
    let out = dir.path().join("out");
    let path = format!("scenarios/{file}");
    let mut args = vec!["run", &path, "--variant", variant, "--seed", seed, "--no-plots", "--no-progress"];
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend(["--out", out.to_str().expect("a UTF-8 path")]);
    let o = asyncsim(&args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", common::describe(&o));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary.json")).expect("JSON")
}

#[test]
fn commit_before_members_of_a_cluster_group_lose_only_what_they_committed_unprocessed() {
    // At-most-once members wait for each batch's commit before processing
    // it. A commit's retry timer must be its own: one left by an answered
    // commit once resent the next batch's commit early, called the
    // coordinator lost, and then forgot every coordinator found, so the
    // members stopped for good and nearly everything was lost unexplained.
    let before = ["consumers.c1.ack=\"before\"", "consumers.c2.ack=\"before\""];
    let no_fault = ["faults.0.at_ms=200000", "faults.0.until_ms=200001"];
    for seed in ["1", "2"] {
        let sets: Vec<&str> = before.iter().chain(&no_fault).copied().collect();
        let s = run_with("kafka-coordinator-cut.toml", "consumer-cut", seed, &sets);
        let v = "consumer-cut";
        // No fault happened (it was due after the run): nothing is lost,
        // no commit fails, and the drain finishes.
        assert_eq!(num(&s, v, "lost"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "in_flight"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.offset_commit_failures"), 0.0, "seed {seed}");
        assert_eq!(num(&s, v, "metrics.coordinator_lost"), 0.0, "seed {seed}");
        assert_eq!(s["variants"][v]["run"]["drain_complete"], true, "seed {seed}");
        // With the coordinator cut off for 25 s, what is lost was
        // committed before it was processed, and nothing else.
        let s = run_with("kafka-coordinator-cut.toml", "consumer-cut", seed, &before);
        let lost = num(&s, v, "lost");
        assert_eq!(num(&s, v, "lost_by_cause.commit_before_process"), lost, "seed {seed}");
        assert_eq!(num(&s, v, "in_flight"), 0.0, "seed {seed}");
        assert_eq!(s["variants"][v]["run"]["drain_complete"], true, "seed {seed}: the members finished");
        assert!(num(&s, v, "processed") + lost >= num(&s, v, "produced"), "seed {seed}");
        // Kafka's commit-before-process (at-most-once) never processes a
        // record twice.
        assert_eq!(num(&s, v, "duplicated"), 0.0, "seed {seed}");
    }
}

/// A cluster's table, with `extra` lines added to it.
fn cluster(extra: &str, fault: &str) -> String {
    format!(
        r#"name = "bad-cluster"
concept = "checks"
[run]
duration_ms = 1_000
[producers.p]
target = "kafka"
topic = "t"
arrival = {{ process = "constant", rate_per_s = 10 }}
[brokers.kafka]
kind = "log"
topics = {{ t = {{ partitions = 1 }} }}
{extra}
{fault}
"#
    )
}

fn check_bad(name: &str, text: &str, needle: &str, field: &str) -> String {
    let line = text.lines().position(|l| l.contains(needle)).expect("the needle is in the scenario") + 1;
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().expect("UTF-8")]));
    assert_names(&err, &file, line, field);
    err
}

#[test]
fn a_wrong_cluster_is_refused_with_its_field() {
    check_bad("zero-brokers", &cluster("brokers = 0", ""), "brokers = 0", "brokers.kafka.brokers");
    // Counts far past the limits are refused, not allocated (the fuzz test
    // found the member list sized before validation).
    let huge = "brokers = 4000000000\ncontrollers = 4000000000";
    let err = check_bad("huge-brokers", &cluster(huge, ""), "brokers = 4000000000", "brokers.kafka.brokers");
    assert!(err.contains("from 1 to 64 brokers"), "{err}");
    let err =
        check_bad("more-replicas", &cluster("brokers = 3\nreplicas = 4", ""), "replicas = 4", "brokers.kafka.replicas");
    assert!(err.contains("at most the number of brokers (3)"), "{err}");
    check_bad("racks-alone", &cluster("racks = 2", ""), "racks = 2", "brokers.kafka.racks");
    let slow_heartbeat = cluster("brokers = 3\nheartbeat_interval_ms = 9000", "");
    check_bad("heartbeat", &slow_heartbeat, "heartbeat_interval_ms", "brokers.kafka.heartbeat_interval_ms");
    let leader_crash = "[[faults]]\nkind = \"leader-crash\"\nbroker = \"kafka\"\ntopic = \"t\"\nat_ms = 100";
    let err = check_bad("leader-crash", &cluster("brokers = 3", leader_crash), "leader-crash", "faults.0.kind");
    assert!(err.contains("`kafka-1`"), "the message names the broker nodes to crash instead: {err}");
    let partition = "[[faults]]\nkind = \"partition\"\nat_ms = 100\ngroups = [[\"kafka-4\"], [\"p\"]]";
    let err = check_bad("no-such-broker", &cluster("brokers = 3", partition), "kafka-4", "faults.0");
    assert!(err.contains("kafka-1") || err.contains("kafka-3"), "a did-you-mean among the brokers: {err}");
}

#[test]
fn a_log_broker_is_one_node_unless_it_says_brokers() {
    let dir = TempDir::new("one-node");
    for (extra, nodes) in [("", "kafka, p"), ("brokers = 3", "kafka, kafka-1, kafka-2, kafka-3, p")] {
        let file = dir.write("s.toml", &cluster(extra, ""));
        let o = asyncsim(&["validate", file.to_str().expect("UTF-8")]);
        assert_eq!(o.status.code(), Some(0), "{}", common::describe(&o));
        let bad = dir.write("bad.toml", &cluster(extra, "[[faults]]\nkind = \"crash\"\nnode = \"nobody\"\nat_ms = 1"));
        let err = assert_bad_input(&asyncsim(&["validate", bad.to_str().expect("UTF-8")]));
        for n in nodes.split(", ") {
            assert!(err.contains(&format!("`{n}`")), "the nodes listed must be {nodes}: {err}");
        }
        if extra.is_empty() {
            assert!(!err.contains("kafka-1"), "a single-node broker makes no broker nodes: {err}");
        }
    }
}

/// An exactly-once stage on a 3-broker cluster: `stage` reads `input` and
/// writes `output` in transactions, `downstream` reads `output`. The
/// transaction coordinator of input partition 0 (transactional id
/// `stage-0_0`: Java hashCode % 50 % 3 = 2) and the group's coordinator
/// live on `kafka-3`, which crashes for 3 s; the stage crashes twice
/// before, so transactions are aborted and redone.
const EXACTLY_ONCE_CLUSTER: &str = r#"name = "txn-cluster"
concept = "exactly-once on a cluster whose transaction coordinator crashes"
expect = ["in_flight == 0", "lost == 0"]
[run]
duration_ms = 12_000
[network]
latency = { dist = "lognormal", mean_ms = 1, stddev_ms = 0.5 }
[producers.producer]
target = "kafka"
topic = "input"
arrival = { process = "poisson", rate_per_s = 180 }
messages = 600
keys = { distribution = "uniform", count = 20 }
acks = "all"
idempotent = true
[brokers.kafka]
kind = "log"
brokers = 3
topics = { input = { partitions = 2 }, output = { partitions = 2 } }
replicas = 3
min_insync_replicas = 2
session_timeout_ms = 400
initial_rebalance_delay_ms = 0
[consumers.stage]
source = "kafka"
topic = "input"
group = "stage"
domain = "email"
output_topic = "output"
transactional = true
ack = "after"
processing = { dist = "exponential", mean_ms = 4.5 }
max_poll_records = 20
resubscribe_ms = 100
heartbeat_interval_ms = 100
[consumers.downstream]
source = "kafka"
topic = "output"
group = "downstream"
domain = "output"
processing = { dist = "constant", ms = 0.2 }
resubscribe_ms = 100
heartbeat_interval_ms = 100
isolation = "read_committed"
[[faults]]
kind = "crash"
node = "stage"
at_ms = 1000
until_ms = 1200
[[faults]]
kind = "crash"
node = "stage"
at_ms = 2000
until_ms = 2200
[[faults]]
kind = "crash"
node = "kafka-3"
at_ms = 3000
until_ms = 6000
[variants.read-committed]
description = "downstream reads committed output only"
[variants.read-uncommitted]
description = "downstream reads open and aborted output too"
set = { "consumers.downstream.isolation" = "read_uncommitted" }
"#;

#[test]
fn an_exactly_once_stage_survives_its_coordinators_crash_and_read_committed_sees_each_output_once() {
    let dir = TempDir::new("txn-cluster");
    let file = dir.write("txn-cluster.toml", EXACTLY_ONCE_CLUSTER);
    for seed in ["1", "2"] {
        let (s, _) = run_summary(file.to_str().expect("UTF-8"), seed, &dir.path().join(format!("out-{seed}")));
        for v in ["read-committed", "read-uncommitted"] {
            // Every input record reached `output`, committed once.
            assert_eq!(num(&s, v, "domains.output.lost"), 0.0, "{v}, seed {seed}");
            assert_eq!(num(&s, v, "domains.output.delivered"), 600.0, "{v}, seed {seed}");
            assert!(num(&s, v, "metrics.transactions_committed") > 0.0, "{v}, seed {seed}");
            assert!(num(&s, v, "metrics.transactions_aborted") > 0.0, "{v}, seed {seed}: nothing aborted");
        }
        assert_eq!(num(&s, "read-committed", "domains.output.duplicated"), 0.0, "seed {seed}");
        // read_uncommitted also applied aborted copies of redone output.
        let dup = num(&s, "read-uncommitted", "domains.output.duplicated");
        assert!(dup > 0.0, "seed {seed}");
        assert_eq!(num(&s, "read-uncommitted", "domains.output.duplicated_by_cause.aborted_transaction"), dup);
    }
}
#[test]
fn a_controller_quorum_elects_a_new_leader_while_a_single_controller_leaves_the_partition_waiting() {
    for seed in ["1", "2"] {
        let s = run("kafka-controller-failover.toml", seed);
        // Both variants crash the active controller and the partition's
        // leader at 5 s; acks=all with min ISR 2 loses nothing in either.
        for v in ["quorum-3", "single-controller"] {
            assert_eq!(num(&s, v, "lost"), 0.0, "seed {seed} {v}");
            assert_eq!(num(&s, v, "metrics.leader_elections"), 1.0, "seed {seed} {v}");
        }
        // A voter took over (after the 2 s fetch timeout and an election),
        // and fenced the dead leader one broker session (9 s) later: the
        // producer waited some 11 s to 20 s.
        assert_eq!(num(&s, "quorum-3", "metrics.controller_failovers"), 1.0, "seed {seed}");
        let quorum = num(&s, "quorum-3", "latency_ms.max");
        assert!((11_000.0..20_000.0).contains(&quorum), "seed {seed}: {quorum}");
        // One controller, down from 5 s to 40 s, then 9 s more of session:
        // no election before 49 s, so a write waited over 40 s.
        let single = num(&s, "single-controller", "latency_ms.max");
        assert!(single > 40_000.0, "seed {seed}: {single}");
        assert_eq!(num(&s, "single-controller", "metrics.controller_failovers"), 0.0, "seed {seed}");
    }
}

#[test]
fn controller_voters_are_nodes_of_their_own_and_a_wrong_count_is_refused() {
    let dir = TempDir::new("voters");
    let file = dir.write("s.toml", &cluster("brokers = 3\ncontrollers = 3", ""));
    let o = asyncsim(&["validate", file.to_str().expect("UTF-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", common::describe(&o));
    let crash = "[[faults]]\nkind = \"crash\"\nnode = \"kafka-controller-4\"\nat_ms = 1";
    let err =
        check_bad("no-such-voter", &cluster("brokers = 3\ncontrollers = 3", crash), "kafka-controller-4", "faults.0");
    assert!(err.contains("`kafka-controller-3`"), "did-you-mean names the voters: {err}");
    let err = check_bad(
        "eight",
        &cluster("brokers = 3\ncontrollers = 8", ""),
        "controllers = 8",
        "brokers.kafka.controllers",
    );
    assert!(err.contains("from 1 to 7"), "{err}");
    check_bad("zero", &cluster("brokers = 3\ncontrollers = 0", ""), "controllers = 0", "brokers.kafka.controllers");
    let err = check_bad("alone", &cluster("controllers = 3", ""), "controllers = 3", "brokers.kafka.controllers");
    assert!(err.contains("set `brokers` too"), "{err}");
}
