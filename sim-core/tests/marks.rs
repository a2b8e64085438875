//! Protocol moments marked in whole runs of the bundled scenarios: the
//! ones the guided fault search aims at (ISR changes, rebalances,
//! transaction commits, a queue cluster's candidacies), in the order the
//! protocols make them. Marks are read from `RunOutput::marks`.

use crate::common;

use common::metric;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

/// Runs variant `variant` of the bundled scenario `file` with seed 1.
fn bundled(file: &str, variant: &str) -> RunOutput {
    let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let scenario = Scenario::parse(file, &text).unwrap_or_else(|e| panic!("{e}"));
    let (_, config) = scenario.configs().unwrap().into_iter().find(|(v, _)| v.name == variant).expect("the variant");
    run_config(&config, 1, 0).completed().unwrap()
}

/// The times (ns) of the marks `what` at node `node`.
fn times(out: &RunOutput, node: &str, what: &str) -> Vec<u64> {
    let id = common::node(out, node);
    out.marks.iter().filter(|m| m.1 == id && m.2 == what).map(|m| m.0).collect()
}

#[test]
fn an_isolated_leaders_isr_shrinks_before_the_unclean_election_and_grows_after_the_heal() {
    let out = bundled("kafka-partition.toml", "min-isr-1");
    let shrunk = times(&out, "kafka", "isr shrunk");
    let unclean = times(&out, "kafka", "unclean leader election");
    let expanded = times(&out, "kafka", "isr expanded");
    assert!(!shrunk.is_empty() && !unclean.is_empty() && !expanded.is_empty(), "{:?}", out.marks);
    // The first cut (5 s) shrinks the ISR after replica_lag_max_ms (5 s);
    // the unclean election follows the second cut (15 s) and the fencing.
    assert!(shrunk[0] >= 10_000_000_000 && shrunk[0] < unclean[0], "{shrunk:?} {unclean:?}");
    // The followers rejoin after the heal at 40 s.
    assert!(expanded.iter().any(|&t| t >= 40_000_000_000), "{expanded:?}");
    assert!(shrunk.len() as f64 <= metric(&out, "isr_shrinks"), "a mark per decision, a count per partition");
}

#[test]
fn a_groups_rebalance_is_marked_when_it_begins_and_when_it_completes() {
    let out = bundled("kafka-partition.toml", "min-isr-2");
    let began: Vec<u64> = out.marks.iter().filter(|m| m.2 == "rebalance began").map(|m| m.0).collect();
    let completed: Vec<u64> = out.marks.iter().filter(|m| m.2 == "rebalance completed").map(|m| m.0).collect();
    assert_eq!(began.len() as f64, metric(&out, "rebalances"), "{:?}", out.marks);
    assert!(!completed.is_empty() && completed.len() <= began.len());
    assert!(began[0] <= completed[0]);
}

#[test]
fn every_transaction_commit_is_marked_up_to_the_cap_of_one_name() {
    let out = bundled("exactly-once-myth.toml", "transactional");
    let commits = out.marks.iter().filter(|m| m.2 == "transaction committed").count() as f64;
    let committed = metric(&out, "transactions_committed");
    assert!(committed > 0.0);
    assert_eq!(commits, committed.min(1_000.0));
}

#[test]
fn a_queue_clusters_candidacy_comes_before_its_election() {
    let out = bundled("rabbitmq-partition.toml", "quorum");
    let started: Vec<&(u64, u32, &str)> = out.marks.iter().filter(|m| m.2 == "election started").collect();
    assert!(!started.is_empty(), "{:?}", out.marks);
    // Every election won was stood for, by that node, at or before it.
    for m in out.marks.iter().filter(|m| m.2 == "leader elected" && m.0 > 0) {
        assert!(started.iter().any(|s| s.1 == m.1 && s.0 <= m.0), "{m:?} in {:?}", out.marks);
    }
}
