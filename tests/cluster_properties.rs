//! Property tests of a log cluster (`brokers = 3`): a controller `kafka`
//! and brokers `kafka-1..3`, a topic of 1 to 3 partitions replicated on
//! all three, one producer `app` and one consumer group (`reader`,
//! committing after processing). Each case draws a schedule of faults that
//! do not overlap in time (each starts after the previous one ended, so at
//! most one node of the cluster is faulty at a time): one broker is cut off
//! from every other node, from the controller only, from one other broker
//! only, or from the clients only, or it crashes; or the controller itself
//! is cut off from everyone or crashes. Faults last from half a second to
//! 20 s (past the 3 s to 9 s broker session timeout, so the controller
//! fences and elects, and past the ISR lag limit, so ISRs shrink), and the
//! network heals before the drain. The scenario is written as TOML, run
//! through the library, and judged by the ledger only (what the reader
//! applied against what the producer was told was written), never by a
//! component's own counters.
//!
//! - **acks=all with min ISR 2 never loses an acknowledged write**
//!   (idempotent producer, unclean election off). An acknowledged batch
//!   is on every member of its leader's ISR (as the leader sees it), which
//!   has at least two; the controller elects only from its ISR, which
//!   always keeps a member holding every acknowledged write. A broker back
//!   from a fault may not have rejoined the ISR when the next fault
//!   begins, so the ISR can shrink to one: then writes are refused, not
//!   lost. What the property does not claim: anything about two faults at
//!   once (two brokers down, or a broker and the controller), nor about
//!   unclean election, acks=1 or min ISR 1, which lose by design.
//! - **an idempotent producer keeps per-partition order** (up to 5
//!   requests in flight, key-hash partitioning, so the ledger's per-key
//!   order is checked inside each partition) under the same schedules.
//!
//! That acks=1 or min ISR 1 can lose is not a property (a generator that
//! finds one loss proves nothing general): the named scenarios
//! `kafka-partition` and `kafka-stale-leader` and their tests in
//! `kafka_cluster.rs` show it.
//!
//! 64 cases per property by default: the file runs in under 10 s in
//! release on 2 cores (`PROPTEST_CASES=N` searches harder;
//! `PROPTEST_RNG_SEED=N` replays). A failing case shrinks towards fewer
//! and shorter faults, and prints its schedule and its scenario file.

use crate::common;

use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};
use std::fmt::Write as _;

/// Whom a faulty broker is cut off from, or whether it crashes.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Every other node (brokers, controller and clients).
    Everyone,
    /// The controller only: it keeps its followers and clients but is
    /// fenced after the session timeout (a stale leader).
    Controller,
    /// One other broker only (the `n`th after it, counting round).
    OneBroker(u32),
    /// The producer and the consumer only.
    Clients,
    /// The broker process crashes and restarts when the fault ends.
    Crash,
}

/// The node a fault hits.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Broker `kafka-{n+1}`.
    Broker(u32, Cut),
    /// The controller `kafka`, cut off from everyone (false) or crashed.
    Controller { crash: bool },
}

/// A fault: `gap_ms` after the previous one ended (or the start), for
/// `len_ms`.
#[derive(Debug, Clone, Copy)]
struct Fault {
    target: Target,
    gap_ms: u64,
    len_ms: u64,
}

#[derive(Debug, Clone)]
struct Case {
    partitions: u32,
    rate: u32,
    span_ms: u64,
    latency_ms: f64,
    lag_max_ms: u64,
    session_ms: u64,
    in_flight: u32,
    faults: Vec<Fault>,
}

/// How a property sets up delivery.
struct Settings {
    acks: &'static str,
    min_isr: u32,
    idempotent: bool,
    in_flight: bool,
}

const BROKERS: u32 = 3;

fn broker(n: u32) -> String {
    format!("kafka-{}", n % BROKERS + 1)
}

impl Case {
    /// The scenario file of this case with settings `s`.
    fn toml(&self, s: &Settings) -> String {
        let mut t = String::new();
        t.push_str("name = \"cluster-property\"\nconcept = \"property test\"\n\n[run]\n");
        writeln!(t, "duration_ms = {}\ndrain_ms = 400_000\nsample_interval_ms = 1000\n", self.span_ms).unwrap();
        let lat = self.latency_ms;
        writeln!(t, "[network]\nlatency = {{ dist = \"uniform\", min_ms = {}, max_ms = {} }}", lat / 2.0, lat).unwrap();
        t.push_str("\n[producers.app]\ntarget = \"kafka\"\ntopic = \"events\"\n");
        writeln!(t, "arrival = {{ process = \"constant\", rate_per_s = {} }}", self.rate).unwrap();
        t.push_str("keys = { distribution = \"uniform\", count = 40 }\npartitioner = \"key-hash\"\n");
        writeln!(t, "acks = \"{}\"\nidempotent = {}", s.acks, s.idempotent).unwrap();
        if s.in_flight {
            writeln!(t, "max_in_flight = {}", self.in_flight).unwrap();
        }
        t.push_str("\n[brokers.kafka]\nkind = \"log\"\nbrokers = 3\nreplicas = 3\n");
        writeln!(t, "topics = {{ events = {{ partitions = {} }} }}", self.partitions).unwrap();
        writeln!(t, "min_insync_replicas = {}\nunclean_leader_election = false", s.min_isr).unwrap();
        writeln!(t, "replica_lag_max_ms = {}\nelection_delay_ms = {}", self.lag_max_ms, self.session_ms).unwrap();
        t.push_str("initial_rebalance_delay_ms = 0\n");
        t.push_str("\n[consumers.reader]\nsource = \"kafka\"\ntopic = \"events\"\ngroup = \"readers\"\n");
        t.push_str("processing = { dist = \"constant\", ms = 0.1 }\nack = \"after\"\n");
        let mut at = 0;
        for f in &self.faults {
            at += f.gap_ms;
            t.push_str("\n[[faults]]\n");
            match f.target {
                Target::Broker(b, Cut::Crash) => writeln!(t, "kind = \"crash\"\nnode = \"{}\"", broker(b)).unwrap(),
                Target::Controller { crash: true } => t.push_str("kind = \"crash\"\nnode = \"kafka\"\n"),
                Target::Controller { crash: false } => t.push_str("kind = \"partition\"\ngroups = [[\"kafka\"]]\n"),
                Target::Broker(b, cut) => {
                    let me = broker(b);
                    let groups = match cut {
                        Cut::Everyone => format!("[[\"{me}\"]]"),
                        Cut::Controller => format!("[[\"{me}\"], [\"kafka\"]]"),
                        Cut::OneBroker(n) => format!("[[\"{me}\"], [\"{}\"]]", broker(b + 1 + n % (BROKERS - 1))),
                        Cut::Clients => format!("[[\"{me}\"], [\"app\", \"reader\"]]"),
                        Cut::Crash => unreachable!("handled above"),
                    };
                    writeln!(t, "kind = \"partition\"\ngroups = {groups}").unwrap();
                }
            }
            writeln!(t, "at_ms = {at}\nuntil_ms = {}", at + f.len_ms).unwrap();
            at += f.len_ms;
        }
        t
    }
}

fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        Just(Cut::Everyone),
        Just(Cut::Controller),
        (0..2u32).prop_map(Cut::OneBroker),
        Just(Cut::Clients),
        Just(Cut::Crash),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    let target = prop_oneof![
        4 => (0..BROKERS, cut()).prop_map(|(b, c)| Target::Broker(b, c)),
        1 => any::<bool>().prop_map(|crash| Target::Controller { crash }),
    ];
    // Gaps from none to 15 s: a broker may not have rejoined the ISR when
    // the next fault starts.
    (target, 0..15_000u64, 500..20_000u64).prop_map(|(target, gap_ms, len_ms)| Fault { target, gap_ms, len_ms })
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1..=3u32, 50..=300u32, 0.2..3.0f64),
        (2_000..=10_000u64, 3_000..=9_000u64, 1..=5u32),
        prop::collection::vec(fault(), 0..=4),
    )
        .prop_map(|((partitions, rate, latency), (lag_max_ms, session_ms, in_flight), faults)| {
            // Production lasts past the last fault, by 5 s.
            let end: u64 = faults.iter().map(|f| f.gap_ms + f.len_ms).sum();
            Case {
                partitions,
                rate,
                span_ms: end + 5_000,
                latency_ms: (latency * 1000.0).round() / 1000.0,
                lag_max_ms,
                session_ms,
                in_flight,
                faults,
            }
        })
}

fn run(text: &str, seed: u64) -> RunOutput {
    let scenario = Scenario::parse("cluster-property.toml", text)
        .unwrap_or_else(|e| panic!("a valid generated scenario was refused: {e}\n{text}"));
    let mut configs = scenario.configs().unwrap_or_else(|e| panic!("configs() failed: {e}\n{text}"));
    let (_, config) = configs.remove(0);
    run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\nseed {seed}\n{text}"))
}

/// Runs case `c` with settings `s`; returns the run and what a failure
/// prints (the schedule first, then the figures and the file).
fn run_case(c: &Case, s: &Settings, seed: u64) -> (RunOutput, String) {
    let text = c.toml(s);
    let out = run(&text, seed);
    let why = format!(
        "seed {seed}\nfaults {:#?}\ncounts {:?}\nmetrics {:?}\nerrors {:?}\n{text}",
        c.faults, out.counts, out.metrics, out.errors
    );
    (out, why)
}

/// The books balance and the causes add up. (Not checked: that no
/// duplicate is `unexplained`. A crash of the broker that hosts the
/// group's coordinator makes the reader's commits fenced and its records
/// read again, counted `unexplained`: a gap of the fixed coordinator, which
/// the coordinator on its offsets partition replaces.)
fn check_balance(out: &RunOutput, why: &str) -> Result<(), TestCaseError> {
    let c = &out.counts;
    prop_assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed, "totals\n{}", why);
    if let Err(e) = common::causes_add_up(out) {
        prop_assert!(false, "the causes do not add up: {}\n{}", e, why);
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(64))]

    /// acks=all, min ISR 2, an idempotent producer, no unclean election:
    /// whatever the schedule of one-at-a-time partitions and crashes,
    /// no acknowledged write is lost, and once the network heals every
    /// message is written and read (nothing is left in flight).
    #[test]
    fn acks_all_with_min_isr_2_never_loses_an_acknowledged_write(c in case(), seed in 0..10_000u64) {
        let s = Settings { acks: "all", min_isr: 2, idempotent: true, in_flight: false };
        let (out, why) = run_case(&c, &s, seed);
        check_balance(&out, &why)?;
        prop_assert_eq!(out.counts.lost, 0, "{}", why);
        prop_assert_eq!(out.counts.in_flight, 0, "{}", why);
    }

    /// An idempotent producer with 1 to 5 requests in flight: no record is
    /// applied out of its production order within its key (and so within
    /// its partition), under the same schedules.
    #[test]
    fn an_idempotent_producer_keeps_per_partition_order(c in case(), seed in 0..10_000u64) {
        let s = Settings { acks: "all", min_isr: 2, idempotent: true, in_flight: true };
        let (out, why) = run_case(&c, &s, seed);
        check_balance(&out, &why)?;
        prop_assert_eq!(out.counts.reordered, 0, "{}", why);
    }
}

/// The properties are not vacuous: over the generated schedules the cluster
/// really fences brokers, elects leaders, shrinks and expands ISRs, refuses
/// writes for want of replicas, and truncates diverged logs.
#[test]
fn generated_schedules_exercise_the_faults_the_properties_survive() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let s = Settings { acks: "all", min_isr: 2, idempotent: true, in_flight: true };
    let mut seen: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for seed in 0..24u64 {
        let c = strategy.new_tree(&mut runner).expect("a case").current();
        let (out, _) = run_case(&c, &s, seed);
        for m in ["brokers_fenced", "leader_elections", "isr_shrinks", "isr_expands", "truncated_records"] {
            *seen.entry(m).or_default() += out.metrics.get(m).copied().unwrap_or(0.0);
        }
        let refused = out.errors.get("not-enough-replicas").copied().unwrap_or(0);
        *seen.entry("not-enough-replicas").or_default() += refused as f64;
    }
    for (k, v) in &seen {
        assert!(*v > 0.0, "no generated schedule shows `{k}`: {seen:?}");
    }
}
