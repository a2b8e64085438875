//! Retries and dead letters on a log broker: the bundled `retries-dlq`
//! scenario through the real command line (each policy's trade-off, with
//! bounds derived from the scenario's rates), its bad input, and a property
//! test: whatever the failure rates and the policy, every dead-lettered
//! message is accounted for (applied after a replay, or still held in the
//! dead-letter topic) and every loss has its cause.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, repo, run_summary, TempDir};
use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

const SCENARIO: &str = "scenarios/retries-dlq.toml";

/// The four policies at one seed: the dead letters add up in each, and each
/// shows its trade-off.
#[test]
fn each_policy_shows_its_trade_off_and_every_dead_letter_is_accounted_for() {
    let dir = TempDir::new("retries-dlq");
    let (summary, _) = run_summary(SCENARIO, "3", &dir.path().join("out"));
    let v = |name: &str| &summary["variants"][name];
    for name in ["retry-in-place", "retry-queue", "dlq-only", "drop"] {
        let s = v(name);
        let dead = num(s, "dead_lettered");
        assert_eq!(num(s, "dead_letters.applied") + num(s, "dead_letters.held"), dead, "{name}");
        assert_eq!(num(s, "duplicated"), 0.0, "{name}: nothing is processed twice");
        assert_eq!(num(s, "success_rate"), num(s, "processed") / num(s, "produced"), "{name}");
    }
    // In place: order kept, but the orders behind a failing one wait: the
    // median order, produced at about 30 s, waits at least until the
    // outage's first order has had its 35 s of retries (45 s).
    let in_place = v("retry-in-place");
    assert_eq!(num(in_place, "reordered"), 0.0);
    assert!(num(in_place, "latency_ms.p50") > 10_000.0);
    // Retry topics: healthy orders keep their milliseconds; retried ones
    // land after later orders of their customer.
    let queue = v("retry-queue");
    assert!(num(queue, "latency_ms.p50") < 100.0);
    assert!(num(queue, "reordered") > 0.0);
    assert_eq!(num(queue, "lost"), 0.0);
    // Straight to the dead-letter topic: everything that failed in the
    // outage (about 10 s x 50/s = 500, a Poisson count: sd 22) is there.
    let dlq = v("dlq-only");
    assert!(num(dlq, "dead_lettered") > num(queue, "dead_lettered") + 400.0);
    assert!(num(dlq, "dead_letters.applied") > 400.0, "the replay applies what failed only for the outage");
    assert!(num(dlq, "metrics.replayed") >= num(dlq, "dead_letters.applied"));
    // Drop: every failure is a loss, with its cause, and nothing else is
    // lost. Expected: the outage's 500, 1% of the other 2,500 attempts and
    // 0.2% poison: 530, sd about 23.
    let drop = v("drop");
    let lost = num(drop, "lost");
    assert_eq!(lost, num(drop, "metrics.skipped_failures"));
    assert_eq!(lost, num(drop, "lost_by_cause.skipped_after_failure"));
    assert!((lost - 530.0).abs() < 4.0 * 23.0, "lost {lost}, expected 530 +- 92");
    assert_eq!(num(drop, "dead_lettered"), 0.0);
}

/// A copy of the bundled scenario with `from` replaced by `to`, written to
/// `dir`, and the 1-based line where `to` now starts.
fn edited(dir: &TempDir, from: &str, to: &str) -> (std::path::PathBuf, usize) {
    let text = std::fs::read_to_string(repo().join(SCENARIO)).unwrap();
    assert!(text.contains(from), "the scenario has `{from}`");
    let bad = text.replacen(from, to, 1);
    let at = bad.find(to).unwrap();
    (dir.write("bad.toml", &bad), bad[..at].matches('\n').count() + 1)
}

#[test]
fn retry_and_dead_letter_mistakes_are_bad_input_that_name_the_field() {
    let dir = TempDir::new("retries-dlq-bad");
    let cases = [
        (
            "retry_delays_ms = [0, 5_000, 30_000]",
            "retry_delays_ms = [0, 5_000]",
            "retry_delays_ms",
            "one delay per retry topic",
        ),
        (
            "dead_letter_topic = \"orders-dlt\"",
            "dead_letter_topic = \"orders-dead\"",
            "dead_letter_topic",
            "no topic `orders-dead`",
        ),
        ("replay_at_ms = 45_000", "", "replay_at_ms", "start time"),
        ("on_failure = \"retry-queue\"", "on_failure = \"retry-later\"", "on_failure", "retry-in-place"),
    ];
    for (from, to, field, says) in cases {
        let (file, line) = edited(&dir, from, to);
        let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
        assert!(err.contains(field) && err.contains(says), "{err}");
        if !to.is_empty() {
            assert_names(&err, &file, line, field);
        }
    }
}

/// A small chain: a main consumer with `policy`, two retry topics (20 ms
/// and 100 ms), a dead-letter topic and a replay at 1.5 s.
fn chain(policy: &str, failure: f64, poison: f64, outage: bool) -> String {
    let failing = format!(
        "failure_probability = {failure}\npoison_probability = {poison}\n\
         retry_topics = [\"r1\", \"r2\"]\nretry_delays_ms = [20, 100]\ndead_letter_topic = \"dlt\"\n"
    );
    let mut text = format!(
        "name = \"p\"\nconcept = \"c\"\n[run]\nduration_ms = 1_000\ndrain_ms = 120_000\n\
         [network]\nlatency = {{ dist = \"constant\", ms = 1 }}\n\
         [producers.p]\ntarget = \"k\"\ntopic = \"main\"\narrival = {{ process = \"poisson\", rate_per_s = 200 }}\n\
         keys = {{ distribution = \"uniform\", count = 5 }}\nacks = \"all\"\n\
         [brokers.k]\nkind = \"log\"\ninitial_rebalance_delay_ms = 0\n\
         topics = {{ main = {{}}, r1 = {{}}, r2 = {{}}, dlt = {{}} }}\n\
         [consumers.c]\nsource = \"k\"\ntopic = \"main\"\ngroup = \"main\"\ndomain = \"d\"\n\
         processing = {{ dist = \"exponential\", mean_ms = 1 }}\nmax_poll_records = 20\non_failure = \"{policy}\"\n{failing}"
    );
    for (name, topic) in [("c1", "r1"), ("c2", "r2")] {
        text += &format!(
            "[consumers.{name}]\nsource = \"k\"\ntopic = \"{topic}\"\ngroup = \"{topic}\"\ndomain = \"d\"\n\
             processing = {{ dist = \"exponential\", mean_ms = 1 }}\non_failure = \"retry-queue\"\n{failing}"
        );
    }
    text += "[consumers.replay]\nsource = \"k\"\ntopic = \"dlt\"\ngroup = \"replay\"\n\
             processing = { dist = \"constant\", ms = 1 }\nreplay_to_topic = \"main\"\nreplay_at_ms = 1_500\n";
    if outage {
        for node in ["c", "c1", "c2"] {
            text += &format!("[[faults]]\nkind = \"errors\"\nnode = \"{node}\"\nat_ms = 200\nuntil_ms = 400\n");
        }
    }
    text
}

fn run(text: &str, seed: u64) -> RunOutput {
    let scenario = Scenario::parse("retries-property.toml", text)
        .unwrap_or_else(|e| panic!("a valid generated scenario was refused: {e}\n{text}"));
    let (_, config) = scenario.configs().unwrap_or_else(|e| panic!("configs() failed: {e}\n{text}")).remove(0);
    run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\n{text}"))
}

proptest! {
    #![proptest_config(common::proptest_config(32))]

    /// Every dead-lettered message is processed after the replay or still
    /// in the dead-letter topic; only `drop` loses, and every loss and
    /// duplicate has its cause.
    #[test]
    fn every_dead_letter_is_applied_after_replay_or_still_held(
        seed in 0u64..1_000_000,
        policy in prop::sample::select(vec!["retry-in-place", "retry-queue", "dlq-only", "drop"]),
        failure in 0.0f64..0.3,
        poison in 0.0f64..0.05,
        outage in any::<bool>(),
    ) {
        let text = chain(policy, failure, poison, outage);
        let out = run(&text, seed);
        let d = &out.dead_letters;
        prop_assert!(out.drain_complete, "the drain completes\n{text}");
        prop_assert_eq!(d.applied + d.held, d.dead_lettered, "{:?}\n{}", d, text);
        prop_assert_eq!(d.lost, 0);
        if policy == "drop" {
            prop_assert_eq!(d.dead_lettered, 0);
        } else {
            prop_assert_eq!(out.counts.lost, 0, "{:?}", out.counts.lost_by_cause);
        }
        prop_assert!(common::causes_add_up(&out).is_ok(), "{:?}", common::causes_add_up(&out));
        prop_assert!(common::nothing_unexplained(&out).is_ok(), "{:?}", common::nothing_unexplained(&out));
    }
}
