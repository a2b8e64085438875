//! Dead-letter queues on a queue broker, and their replay: the bundled
//! `schema-evolution.toml` through the real command line, and a property
//! test that every dead-lettered message is accounted for (processed after
//! the replay, or still in the dead-letter queue) whatever the seed, the
//! failure rates and the failure policy.

use crate::common;

use common::{num, run_summary, TempDir};
use proptest::prelude::*;
use serde_json::Value;
use sim_core::scenario::{run_config, Scenario};

#[test]
fn schema_evolution_dead_letters_what_old_readers_cannot_read_and_the_replay_applies_it() {
    let dir = TempDir::new("schema-evolution");
    let (summary, _) = run_summary("scenarios/schema-evolution.toml", "1", &dir.path().join("out"));
    let variants = summary["variants"].as_object().expect("variants");
    assert_eq!(variants.keys().collect::<Vec<_>>(), ["backward-compatible", "breaking", "consumers-first"]);

    let breaking = &variants["breaking"];
    // Orders at 50/s: every one of version 2 from 20 s to 35 s (both readers
    // old), half of them from 35 s to 45 s (billing-2 still old): 1,000 on
    // average. The count is about Poisson: 5 standard deviations is 160.
    let dead = num(breaking, "dead_lettered");
    assert!((dead - 1000.0).abs() < 160.0, "dead_lettered {dead}");
    assert_eq!(num(breaking, "metrics.replayed"), dead, "the replay moved every dead letter, once");
    assert_eq!(num(breaking, "dead_letters.applied"), dead, "each applied after the replay");
    assert_eq!(num(breaking, "errors_by_kind.schema-mismatch"), dead, "each rejected once, then read");
    assert_eq!(num(breaking, "lost"), 0.0);
    // A replayed order is applied after the later orders of its customer.
    assert!(num(breaking, "reordered") > 0.0);

    for name in ["backward-compatible", "consumers-first"] {
        let v = &variants[name];
        assert_eq!(num(v, "dead_lettered"), 0.0, "{name}");
        // Two competing consumers with random processing times reorder a
        // customer's orders only when two of them are in flight at once
        // (a few in 1,000 at these rates); the replay reorders nearly every
        // dead letter.
        let reordered = num(v, "reordered");
        assert!(reordered < num(breaking, "reordered") / 10.0, "{name}: reordered {reordered}");
        assert_eq!(num(v, "processed"), num(v, "produced"), "{name}");
    }
    // The compatible change was read by old readers: what they read of
    // version 2 is what the breaking one dead-lettered (common random numbers).
    assert_eq!(num(&variants["backward-compatible"], "metrics.new_fields_ignored"), dead);
    for v in variants.values() {
        let held = v["expectations"].as_array().unwrap().iter().all(|e| e["held"] == Value::Bool(true));
        assert!(held, "{}", v["expectations"]);
    }
}

/// A work queue whose consumer fails with probability `p` (and during an
/// `errors` fault, its dependency down from 1 s to 3 s, with probability
/// `q`), with a policy, dead-lettering into `dlq`, which replays at
/// `replay_ms` (or never).
fn topology(p: f64, q: f64, poison: f64, policy: &str, replay_ms: Option<u64>) -> String {
    let replay = replay_ms.map(|ms| format!("replay_to = \"work\"\nreplay_at_ms = {ms}")).unwrap_or_default();
    format!(
        r#"
name = "dead-letters"
concept = "every dead letter is accounted for"
[run]
duration_ms = 5_000
drain_ms = 20_000
[network]
latency = {{ dist = "uniform", min_ms = 0.5, max_ms = 1.5 }}
[producers.p]
target = "work"
arrival = {{ process = "poisson", rate_per_s = 100 }}
keys = {{ distribution = "uniform", count = 10 }}
[brokers.work]
kind = "queue"
dead_letter = "dlq"
[brokers.dlq]
kind = "queue"
{replay}
[consumers.c]
source = "work"
processing = {{ dist = "exponential", mean_ms = 2 }}
concurrency = 2
failure_probability = {p}
poison_probability = {poison}
{policy}
[[faults]]
kind = "errors"
node = "c"
probability = {q}
at_ms = 1_000
until_ms = 3_000
"#
    )
}

const POLICIES: [&str; 3] =
    ["on_failure = \"reject\"", "on_failure = \"retry\"\nretry_attempts = 2\nretry_backoff_ms = 20", ""];

proptest! {
    #![proptest_config(common::proptest_config(24))]

    #[test]
    fn every_dead_lettered_message_is_accounted_for(
        seed in 1u64..10_000,
        p in prop_oneof![Just(0.0f64), 0.0f64..0.3],
        q in 0.0f64..1.0,
        poison in prop_oneof![Just(0.0f64), 0.0f64..0.05],
        policy in 0usize..POLICIES.len(),
        replay_ms in prop_oneof![Just(Some(4_000u64)), Just(None)],
    ) {
        let text = topology(p, q, poison, POLICIES[policy], replay_ms);
        let scenario = Scenario::parse("dead-letters.toml", &text).expect("a valid scenario");
        let (_, config) = scenario.configs().expect("one variant").remove(0);
        let out = run_config(&config, seed, 0).completed().expect("the run ends");
        let d = &out.dead_letters;
        prop_assert_eq!(d.applied + d.held, d.dead_lettered, "{:?}\n{}", d, text);
        prop_assert_eq!(d.lost, 0);
        match replay_ms {
            // After the dependency is back, a replayed message fails only
            // if it is poison (or by `p`): none fails when neither can.
            Some(_) if poison == 0.0 && p == 0.0 => prop_assert_eq!(d.held, 0, "{:?}", d),
            Some(_) => {}
            // Without a replay, every dead letter is still in the queue.
            None => prop_assert_eq!(d.held, d.dead_lettered, "{:?}", d),
        }
        prop_assert_eq!(out.counts.lost, 0);
    }
}
