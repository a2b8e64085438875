//! Exchanges, routing keys and dead-letter exchanges through the real
//! command line: the bundled delayed-retry scenario (a dead-letter cycle
//! that a TTL breaks, and staged retries after 5 s and 30 s), and the bad
//! input a routed topology can bring, each naming its file, line and field.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, repo, run_summary, TempDir};

const SCENARIO: &str = "scenarios/rabbitmq-delayed-retry.toml";

/// Regression (issue 12, item 6): the delayed-retry pattern, a work queue
/// and a wait queue whose TTL dead-letters back to it, was refused as a
/// loop. It is a dead-letter cycle that RabbitMQ allows (a rejection on
/// every round), and it now runs: every order ends processed.
#[test]
fn the_delayed_retry_cycle_is_allowed_and_retries_until_success() {
    let dir = TempDir::new("retry-cycle");
    let (summary, _) = run_summary(SCENARIO, "1", &dir.path().join("out"));
    let cycle = &summary["variants"]["cycle"];
    let produced = num(cycle, "produced");
    assert!(produced > 600.0, "about 40 orders a second for 20 s");
    assert_eq!(num(cycle, "processed"), produced);
    assert_eq!(num(cycle, "lost"), 0.0);
    assert_eq!(num(cycle, "in_flight"), 0.0);
    // A failed attempt is rejected and waits 5 s: the tail is whole rounds.
    let rejected = num(cycle, "errors_by_kind.rejected-by-consumer");
    assert_eq!(rejected, num(cycle, "errors_by_kind.expired"), "every rejection waits out the TTL once");
    assert!(num(cycle, "latency_ms.p90") >= 5000.0);
}

/// Staged retries: after 5 s, then 30 s more, then parked. About 1 in 27
/// orders fails three times (a third each time): the parked count is
/// binomial, and must lie within 4 standard deviations of its mean.
#[test]
fn staged_retries_show_the_5_s_and_35_s_steps_and_park_what_fails_three_times() {
    let dir = TempDir::new("retry-staged");
    let (summary, _) = run_summary(SCENARIO, "2", &dir.path().join("out"));
    let staged = &summary["variants"]["staged"];
    let produced = num(staged, "produced");
    assert_eq!(num(staged, "lost"), 0.0);
    assert_eq!(num(staged, "duplicated"), 0.0);
    let parked = num(staged, "in_flight");
    assert_eq!(num(staged, "processed") + parked, produced, "processed, or waiting in `park`");
    let p = 0.333f64.powi(3);
    let (mean, sd) = (produced * p, (produced * p * (1.0 - p)).sqrt());
    assert!((parked - mean).abs() <= 4.0 * sd, "parked {parked}, expected {mean:.1} ± {:.1}", 4.0 * sd);
    // The latency distribution has its steps: most at once, the tail at
    // 5 s (second attempt) and 35 s (third).
    assert!(num(staged, "latency_ms.p50") < 100.0);
    assert!(num(staged, "latency_ms.p99") >= 35_000.0);
    assert!(num(staged, "latency_ms.max") < 36_000.0, "no attempt after the third");
}

/// A copy of the bundled scenario with `from` replaced by `to`, written to
/// `dir`, and the 1-based line where `to` now starts.
fn edited(dir: &TempDir, from: &str, to: &str) -> (std::path::PathBuf, usize) {
    let text = std::fs::read_to_string(repo().join(SCENARIO)).unwrap();
    assert!(text.contains(from), "the scenario has `{from}`");
    let bad = text.replacen(from, to, 1);
    let line = bad[..bad.find(to).unwrap()].lines().count().max(1);
    let line = if bad[..bad.find(to).unwrap()].ends_with('\n') { line + 1 } else { line };
    (dir.write("bad.toml", &bad), line)
}

#[test]
fn routing_mistakes_are_bad_input_that_name_the_field() {
    let dir = TempDir::new("routing-bad");
    let cases = [
        ("routing_key = \"work\"", "exchange = \"orderz\"", "producers.orders.exchange", "no exchange `orderz`"),
        ("queue = \"work-2\"", "queue = \"work2\"", "consumers.worker-2.queue", "no queue `work2`"),
        (
            "dead_letter_exchange = \"\"",
            "dead_letter_exchange = \"dlx\"",
            "brokers.rabbit.dead_letter_exchange",
            "no exchange `dlx`",
        ),
    ];
    for (from, to, field, says) in cases {
        let (file, line) = edited(&dir, from, to);
        let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
        assert_names(&err, &file, line, field);
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn a_producer_to_a_routed_broker_must_name_a_route_and_a_typo_gets_a_suggestion() {
    let dir = TempDir::new("routing-missing");
    let (file, _) = edited(&dir, "routing_key = \"work\"", "");
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert!(err.contains("producers.orders.routing_key") && err.contains("routes through exchanges"), "{err}");
    let (file, _) = edited(&dir, "routing_key = \"work\"", "routing_kye = \"work\"");
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert!(err.contains("routing_key"), "did you mean: {err}");
}

/// Dead letters between two brokers still may not loop (no history
/// travels with them): the refusal points to the routed form.
#[test]
fn a_dead_letter_loop_between_brokers_is_refused_and_points_to_exchanges() {
    let dir = TempDir::new("routing-loop");
    let text = "name = \"l\"\nconcept = \"c\"\nrun = { duration_ms = 10 }\n\
        [producers.p]\ntarget = \"a\"\narrival = { process = \"constant\", rate_per_s = 1 }\n\
        [brokers.a]\nkind = \"queue\"\ndead_letter = \"b\"\n\
        [brokers.b]\nkind = \"queue\"\nttl_ms = 5000\ndead_letter = \"a\"\n";
    let file = dir.write("loop.toml", text);
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert!(err.contains("loop") && err.contains("dead_letter_exchange"), "{err}");
}
