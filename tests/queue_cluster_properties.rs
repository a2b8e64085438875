//! Property test of a quorum queue (`kind = "queue"`, `nodes = 3` or `5`,
//! `queue_type = "quorum"`, replicated on every node): one publisher with
//! confirms and retries connected to each node, consumers on two nodes.
//! Each case draws a schedule of faults that may overlap: a node cut off
//! from the other nodes (with or without its clients), a node that
//! crashes and restarts (its Raft log, term and vote are on disk), and a
//! node lost with its disk (it comes back empty), at most a minority of
//! the replicas losing their disk over the whole run, so that a majority
//! of the replicas always keeps what it had. The network heals before the
//! drain. The scenario is written as TOML, run through the library and
//! judged by the ledger only.
//!
//! - **A quorum queue never loses a confirmed message while a majority of
//!   its replicas survives**: `lost` (messages a publisher was told were
//!   safe, and never applied) is 0. Not claimed: that everything is
//!   delivered by the end (a leader may still be being elected when the
//!   drain ends), nor anything when a majority loses its disks.
//!
//! 48 cases by default, in a few seconds in release (`PROPTEST_CASES=N`
//! searches harder; `PROPTEST_RNG_SEED=N` replays). A failing case shrinks
//! towards fewer and shorter faults, and prints its scenario file.

use crate::common;

use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};
use std::fmt::Write as _;

/// What happens to a node.
#[derive(Debug, Clone, Copy)]
enum Hit {
    /// Cut off from the other nodes; its clients stay with it (true) or
    /// with the others (false).
    Isolated(bool),
    /// Crashes; restarts when the fault ends.
    Crash,
    /// Lost with its disk; back empty when the fault ends.
    Loss,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    node: u32,
    hit: Hit,
    at_ms: u64,
    len_ms: u64,
}

#[derive(Debug, Clone)]
struct Case {
    nodes: u32,
    rate: u32,
    latency_ms: f64,
    faults: Vec<Fault>,
}

impl Case {
    fn toml(&self) -> String {
        let n = self.nodes;
        let end = self.faults.iter().map(|f| f.at_ms + f.len_ms).max().unwrap_or(0) + 3_000;
        let mut t = String::from("name = \"quorum-property\"\nconcept = \"property test\"\n\n[run]\n");
        writeln!(t, "duration_ms = {end}\ndrain_ms = 120_000\nsample_interval_ms = 1000\n").unwrap();
        let lat = self.latency_ms;
        writeln!(t, "[network]\nlatency = {{ dist = \"uniform\", min_ms = {}, max_ms = {lat} }}", lat / 2.0).unwrap();
        writeln!(t, "\n[brokers.q]\nkind = \"queue\"\nnodes = {n}\nqueue_type = \"quorum\"\ngroup_size = {n}").unwrap();
        for i in 1..=n {
            writeln!(t, "\n[producers.app-{i}]\ntarget = \"q-{i}\"").unwrap();
            writeln!(t, "arrival = {{ process = \"constant\", rate_per_s = {} }}", self.rate).unwrap();
            t.push_str("acks = \"broker\"\nack_timeout_ms = 500\nretries = 100000\nretry_backoff_ms = 200\n");
        }
        for i in [1, 2] {
            writeln!(t, "\n[consumers.worker-{i}]\nsource = \"q-{i}\"").unwrap();
            t.push_str("processing = { dist = \"constant\", ms = 1 }\nprefetch = 10\n");
        }
        for f in &self.faults {
            let me = format!("q-{}", f.node + 1);
            t.push_str("\n[[faults]]\n");
            match f.hit {
                Hit::Crash => writeln!(t, "kind = \"crash\"\nnode = \"{me}\"").unwrap(),
                Hit::Loss => writeln!(t, "kind = \"node-loss\"\nnode = \"{me}\"").unwrap(),
                Hit::Isolated(with_clients) => {
                    let others: Vec<String> =
                        (1..=n).filter(|&k| k != f.node + 1).map(|k| format!("\"q-{k}\"")).collect();
                    let mut side = vec![format!("\"{me}\"")];
                    if with_clients {
                        side.push(format!("\"app-{}\"", f.node + 1));
                        if f.node < 2 {
                            side.push(format!("\"worker-{}\"", f.node + 1));
                        }
                    }
                    writeln!(t, "kind = \"partition\"\ngroups = [[{}], [{}]]", side.join(", "), others.join(", "))
                        .unwrap();
                }
            }
            writeln!(t, "at_ms = {}\nuntil_ms = {}", f.at_ms, f.at_ms + f.len_ms).unwrap();
        }
        t
    }
}

fn hit() -> impl Strategy<Value = Hit> {
    prop_oneof![3 => any::<bool>().prop_map(Hit::Isolated), 2 => Just(Hit::Crash), 1 => Just(Hit::Loss)]
}

fn case() -> impl Strategy<Value = Case> {
    let fault = (0..5u32, hit(), 0..15_000u64, 200..8_000u64).prop_map(|(node, hit, at_ms, len_ms)| Fault {
        node,
        hit,
        at_ms,
        len_ms,
    });
    (prop_oneof![Just(3u32), Just(5u32)], 20..=80u32, 0.2..3.0f64, prop::collection::vec(fault, 0..=5)).prop_map(
        |(nodes, rate, latency, faults)| {
            // Nodes in range, and disks lost on a minority of the replicas only:
            // a node-loss beyond it becomes a crash.
            let mut lost: Vec<u32> = Vec::new();
            let faults = faults
                .into_iter()
                .map(|mut f| {
                    f.node %= nodes;
                    if matches!(f.hit, Hit::Loss) && !lost.contains(&f.node) {
                        if (lost.len() as u32) < (nodes - 1) / 2 {
                            lost.push(f.node);
                        } else {
                            f.hit = Hit::Crash;
                        }
                    }
                    f
                })
                .collect();
            Case { nodes, rate, latency_ms: (latency * 1000.0).round() / 1000.0, faults }
        },
    )
}

fn run(text: &str, seed: u64) -> RunOutput {
    let scenario = Scenario::parse("quorum-property.toml", text)
        .unwrap_or_else(|e| panic!("a valid generated scenario was refused: {e}\n{text}"));
    let mut configs = scenario.configs().unwrap_or_else(|e| panic!("configs() failed: {e}\n{text}"));
    let (_, config) = configs.remove(0);
    run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\nseed {seed}\n{text}"))
}

proptest! {
    #![proptest_config(common::proptest_config(48))]

    /// Whatever the partitions, crashes and minority disk losses, no
    /// confirmed message is lost, and the books balance.
    #[test]
    fn a_quorum_queue_never_loses_a_confirmed_message_while_a_majority_survives(c in case(), seed in 0..10_000u64) {
        let text = c.toml();
        let out = run(&text, seed);
        let why = format!("seed {seed}\ncounts {:?}\nmetrics {:?}\nerrors {:?}\n{text}", out.counts, out.metrics, out.errors);
        let k = &out.counts;
        prop_assert_eq!(k.produced, k.processed + k.lost + k.in_flight + k.send_failed, "totals\n{}", why);
        if let Err(e) = common::causes_add_up(&out) {
            prop_assert!(false, "the causes do not add up: {}\n{}", e, why);
        }
        prop_assert_eq!(k.lost, 0, "{}", why);
    }
}
