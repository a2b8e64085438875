//! Property tests of durability with `acks = "all"` and
//! `min_insync_replicas = 2` on three replicas (issue 10's property):
//!
//! - under any crash schedule in which at most one replica is down at a
//!   time (`replica-crash` and `leader-crash` faults with random times and
//!   lengths, in windows that never overlap), on a network with random
//!   latency and loss, with an idempotent producer or a plain one that
//!   retries, no acknowledged write is lost, and after the drain nothing
//!   is left in flight;
//! - with a flush at every append (`flush_interval_ms = 0`), even power
//!   losses of every replica at once lose no acknowledged write.
//!
//! The reader is often down from the start for part or all of the
//! production, so that an acknowledged record cut from the log would not
//! already have been applied: it would count as lost. The broker's own
//! `acked_records_truncated` must stay 0 too.
//!
//! A loss counts only what the producer considered sent: with acks=all,
//! what it was told was written (the ledger's `lost`); a write refused or
//! never answered is retried, and one given up would be `send_failed`.
//! Each scenario is written as TOML and run through `Scenario::parse` and
//! `run_config`. `PROPTEST_CASES=N` searches harder and
//! `PROPTEST_RNG_SEED=N` replays a run.

use crate::common;

use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};
use std::fmt::Write as _;

/// One fault window, in ms; at most one is in force at a time.
#[derive(Debug, Clone)]
enum Fault {
    /// Replica `r` crashes.
    Replica { r: u32, at: f64, until: f64 },
    /// Whichever replica leads the partition crashes.
    Leader { partition: u32, at: f64, until: f64 },
    /// Every replica loses power (only with a flush at every append).
    Power { at: f64, until: f64 },
}

#[derive(Debug, Clone)]
struct Case {
    idempotent: bool,
    partitions: u32,
    rate: f64,
    messages: u64,
    latency_ms: f64,
    loss: f64,
    replication_ms: f64,
    lag_max_ms: f64,
    election_ms: f64,
    ack_timeout_ms: f64,
    backoff_ms: f64,
    faults: Vec<Fault>,
    /// `flush_interval_ms`, if set.
    flush_ms: Option<f64>,
    /// The reader is down from the start until this many ms, so that a
    /// lost record is not one it had already applied.
    reader_until: Option<f64>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Case {
    fn toml(&self) -> String {
        let mut t = String::from("name = \"durability\"\nconcept = \"property test\"\n\n[run]\n");
        t.push_str("drain_ms = 300_000\nsample_interval_ms = 1000\nmax_events = 5_000_000\n\n[network]\n");
        writeln!(t, "latency = {{ dist = \"exponential\", mean_ms = {} }}", self.latency_ms).unwrap();
        writeln!(t, "loss_probability = {}", self.loss).unwrap();
        t.push_str("\n[producers.producer]\ntarget = \"kafka\"\ntopic = \"t\"\nacks = \"all\"\n");
        writeln!(t, "arrival = {{ process = \"poisson\", rate_per_s = {} }}", self.rate).unwrap();
        writeln!(t, "messages = {}\nkeys = {{ distribution = \"uniform\", count = 10 }}", self.messages).unwrap();
        writeln!(t, "ack_timeout_ms = {}\nretry_backoff_ms = {}", self.ack_timeout_ms, self.backoff_ms).unwrap();
        if self.idempotent {
            t.push_str("idempotent = true\n");
        } else {
            t.push_str("idempotent = false\nretries = 1_000_000\n");
        }
        t.push_str("\n[brokers.kafka]\nkind = \"log\"\nreplicas = 3\nmin_insync_replicas = 2\n");
        writeln!(t, "topics = {{ t = {{ partitions = {} }} }}", self.partitions).unwrap();
        writeln!(t, "replication = {{ dist = \"exponential\", mean_ms = {} }}", self.replication_ms).unwrap();
        // Set explicitly: the property must not depend on the defaults.
        writeln!(t, "replica_lag_max_ms = {}\nelection_delay_ms = {}", self.lag_max_ms, self.election_ms).unwrap();
        t.push_str("unclean_leader_election = false\ninitial_rebalance_delay_ms = 0\n");
        if let Some(f) = self.flush_ms {
            writeln!(t, "flush_interval_ms = {f}").unwrap();
        }
        t.push_str("\n[consumers.reader]\nsource = \"kafka\"\ntopic = \"t\"\ngroup = \"g\"\nack = \"after\"\n");
        t.push_str("processing = { dist = \"constant\", ms = 0.2 }\n");
        if let Some(until) = self.reader_until {
            writeln!(t, "\n[[faults]]\nkind = \"crash\"\nnode = \"reader\"\nat_ms = 0\nuntil_ms = {until}").unwrap();
        }
        for f in &self.faults {
            t.push_str("\n[[faults]]\n");
            let (at, until) = match *f {
                Fault::Replica { r, at, until } => {
                    writeln!(t, "kind = \"replica-crash\"\nbroker = \"kafka\"\nreplica = {r}").unwrap();
                    (at, until)
                }
                Fault::Leader { partition, at, until } => {
                    let p = partition % self.partitions;
                    writeln!(t, "kind = \"leader-crash\"\nbroker = \"kafka\"\ntopic = \"t\"\npartition = {p}").unwrap();
                    (at, until)
                }
                Fault::Power { at, until } => {
                    t.push_str("kind = \"power-loss\"\nbroker = \"kafka\"\n");
                    (at, until)
                }
            };
            writeln!(t, "at_ms = {at}\nuntil_ms = {until}").unwrap();
        }
        t
    }

    fn span_ms(&self) -> f64 {
        self.messages as f64 / self.rate * 1000.0
    }
}

fn ms(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (lo..hi).prop_map(round3)
}

/// A fault's kind (0..3: replica `k`, 3: the leader, 4: power), the gap
/// before it and its length, both as fractions of the production span.
type Window = (u32, f64, f64);

/// Windows laid end to end with a gap of at least 1 ms, so no two overlap.
fn lay_out(span: f64, windows: &[Window], power: bool) -> Vec<Fault> {
    let mut end = 0.0f64;
    let mut out = Vec::new();
    for &(kind, gap, len) in windows {
        let at = round3(end + 1.0 + gap * span);
        let until = round3(at + 1.0 + len * span);
        end = until;
        out.push(match kind {
            0..=2 => Fault::Replica { r: kind, at, until },
            4 if power => Fault::Power { at, until },
            _ => Fault::Leader { partition: kind, at, until },
        });
    }
    out
}

fn case(power: bool) -> impl Strategy<Value = Case> {
    (
        (any::<bool>(), 1..=3u32, ms(100.0, 1000.0), 50..=300u64),
        (ms(0.1, 3.0), prop_oneof![Just(0.0), ms(0.0, 0.05)], ms(0.2, 20.0)),
        (ms(50.0, 2000.0), ms(10.0, 500.0), ms(20.0, 300.0), ms(0.0, 100.0)),
        prop::collection::vec((0..5u32, 0.0..0.4f64, 0.0..0.5f64), 0..=5),
        prop::option::of(0.0..1.5f64),
    )
        .prop_map(
            move |(
                (idempotent, partitions, rate, messages),
                (latency_ms, loss, replication_ms),
                (lag_max_ms, election_ms, ack_timeout_ms, backoff_ms),
                windows,
                reader_until,
            )| {
                let mut c = Case {
                    idempotent,
                    partitions,
                    rate,
                    messages,
                    latency_ms,
                    loss,
                    replication_ms,
                    lag_max_ms,
                    election_ms,
                    ack_timeout_ms,
                    backoff_ms,
                    faults: Vec::new(),
                    flush_ms: power.then_some(0.0),
                    reader_until: None,
                };
                c.reader_until = reader_until.map(|f| round3(1.0 + f * c.span_ms()));
                c.faults = lay_out(c.span_ms(), &windows, power);
                c
            },
        )
}

fn run(c: &Case, seed: u64) -> (RunOutput, String) {
    let text = c.toml();
    let scenario = Scenario::parse("durability.toml", &text)
        .unwrap_or_else(|e| panic!("a valid generated scenario was refused: {e}\n{text}"));
    let (_, config) = scenario.configs().unwrap_or_else(|e| panic!("configs() failed: {e}\n{text}")).remove(0);
    let out = run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\n{text}"));
    let why =
        format!("seed {seed}\ncounts {:?}\nmetrics {:?}\nerrors {:?}\n{text}", out.counts, out.metrics, out.errors);
    (out, why)
}

fn nothing_acked_is_lost(out: &RunOutput, why: &str) -> Result<(), TestCaseError> {
    let c = &out.counts;
    prop_assert_eq!(c.produced, c.processed + c.lost + c.in_flight + c.send_failed, "the books balance\n{}", why);
    prop_assert_eq!(c.lost, 0, "acknowledged writes lost: {:?}\n{}", c.lost_by_cause, why);
    prop_assert_eq!(out.metrics.get("acked_records_truncated").copied().unwrap_or(0.0), 0.0, "{}", why);
    prop_assert!(out.drain_complete, "the drain ran out of time\n{}", why);
    prop_assert_eq!(c.in_flight, 0, "left in flight after the drain\n{}", why);
    // The producer retries without limit: every write is acked in the end.
    prop_assert_eq!((c.send_failed, c.acked), (0, c.produced), "{}", why);
    if let Err(e) = common::causes_add_up(out) {
        prop_assert!(false, "{}\n{}", e, why);
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(128))]

    /// acks=all, min ISR 2, three replicas, at most one replica down at a
    /// time: no acknowledged write is lost.
    #[test]
    fn acks_all_with_min_isr_2_never_loses_an_acked_write_when_one_replica_fails_at_a_time(
        c in case(false),
        seed in 0..10_000u64,
    ) {
        let (out, why) = run(&c, seed);
        nothing_acked_is_lost(&out, &why)?;
    }

    /// The same with a flush at every append, and power losses of every
    /// replica at once among the faults: each replica's disk has all it
    /// acknowledged.
    #[test]
    fn with_a_flush_at_every_append_a_power_loss_loses_no_acked_write(
        c in case(true),
        seed in 0..10_000u64,
    ) {
        let (out, why) = run(&c, seed);
        nothing_acked_is_lost(&out, &why)?;
        prop_assert_eq!(out.metrics.get("unflushed_records_dropped").copied().unwrap_or(0.0), 0.0, "{}", why);
    }
}
