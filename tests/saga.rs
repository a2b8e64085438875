//! Sagas: `scenarios/saga.toml` through the real `asyncsim` binary (every
//! style ends every workflow, and the figures each style promises), exact
//! message counts on a clean network, bad saga settings refused with the
//! file, line and field, and the property that every saga ends completed
//! or fully compensated after the drain, never half-done, whatever fails.

use crate::common;

use common::{assert_bad_input, assert_names, asyncsim, num, run_summary, TempDir};
use proptest::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

const STEPS: f64 = 3.0;

/// Every workflow ended, none half-done: what the ledger and the metrics
/// of one variant must say after the drain.
fn ended_whole(name: &str, v: &serde_json::Value) {
    for key in ["metrics.sagas_stuck", "in_flight", "lost", "duplicated", "domains.workflows.lost"] {
        assert_eq!(num(v, key), 0.0, "{name}: {key}");
    }
    let (done, undone) = (num(v, "metrics.sagas_completed"), num(v, "metrics.sagas_compensated"));
    assert_eq!(done + undone, num(v, "produced"), "{name}: each workflow ended once");
    let net = num(v, "metrics.steps_applied") - num(v, "metrics.compensations_run");
    assert_eq!(net, STEPS * done, "{name}: steps left done are exactly those of completed workflows");
}

#[test]
fn the_saga_scenario_ends_every_workflow_in_every_style() {
    let dir = TempDir::new("saga");
    let (summary, _) = run_summary("scenarios/saga.toml", "4", &dir.path().join("out"));
    let v = &summary["variants"];
    let names = ["orchestration", "choreography", "hybrid", "compensation-fails"];
    for name in names {
        ended_whole(name, &v[name]);
        // Shipping refuses 20% of 2000 workflows: binomial, sd about 18;
        // a step given up after its retries adds a few.
        let undone = num(&v[name], "metrics.sagas_compensated");
        assert!((300.0..500.0).contains(&undone), "{name}: {undone} compensated");
        assert!(num(&v[name], "metrics.compensations_run") > undone, "{name}: most undo two steps");
    }
    let places = |n: &str| num(&v[n], "metrics.state_locations");
    assert_eq!(places("orchestration"), 1.0);
    assert_eq!(places("choreography"), STEPS);
    assert_eq!(places("hybrid"), 1.0 + 2.0, "the coordinator and the sub-flow's two steps");
    let retries = |n: &str| num(&v[n], "metrics.compensation_retries");
    assert!(retries("compensation-fails") > 2.0 * retries("orchestration"), "30% of compensations fail");
    // Retries and resends only add to the messages of a clean run.
    let lower = |n: &str, done: f64, undone: f64| {
        done * num(&v[n], "metrics.sagas_completed") + undone * num(&v[n], "metrics.sagas_compensated")
    };
    assert!(num(&v["orchestration"], "metrics.saga_messages") >= lower("orchestration", 6.0, 10.0));
    assert!(num(&v["choreography"], "metrics.saga_messages") >= lower("choreography", 8.0, 12.0));
}

const CLEAN: &str = r#"
name = "clean"
concept = "sagas on a network that loses nothing"
[network]
latency = { dist = "constant", ms = 1 }
[sagas.s]
steps = ["order", "payment", "shipping"]
arrival = { process = "poisson", rate_per_s = 500 }
messages = 2000
timeout_ms = 100
[participants.order]
processing = { dist = "constant", ms = 2 }
[participants.payment]
processing = { dist = "constant", ms = 2 }
[participants.shipping]
processing = { dist = "constant", ms = 2 }
failure_probability = 0.25
[variants.orchestration]
[variants.choreography]
set = { "sagas.s.style" = "choreography" }
[variants.hybrid]
set = { "sagas.s.style" = "hybrid", "sagas.s.subflow_from" = "payment" }
"#;

fn run(text: &str, seed: u64) -> Vec<(String, RunOutput)> {
    let scenario = Scenario::parse("saga-test.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    scenario
        .configs()
        .expect("valid variants")
        .into_iter()
        .map(|(variant, config)| {
            let out = run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("{e}\n{text}"));
            (variant.name.clone(), out)
        })
        .collect()
}

#[test]
fn on_a_clean_network_each_style_costs_its_exact_messages_per_workflow() {
    for (name, out) in run(CLEAN, 2) {
        let m = |k: &str| out.metrics.get(k).copied().unwrap_or(0.0);
        let (done, undone) = (m("sagas_completed"), m("sagas_compensated"));
        assert_eq!(done + undone, 2000.0, "{name}");
        // 25% refused: 500 expected, sd sqrt(2000 x 0.25 x 0.75) = 19.4.
        assert!((undone - 500.0).abs() < 5.0 * 19.4, "{name}: {undone} compensated");
        assert_eq!(m("compensation_retries"), 0.0, "{name}: nothing fails, nothing is retried");
        // A call and its reply per step (orchestration); an event and its
        // ack per hop, the saga's start and end included (choreography);
        // the hybrid's order is a call, the rest a sub-flow of events.
        let (per_done, per_undone) = match name.as_str() {
            "orchestration" => (2.0 * 3.0, 2.0 * 3.0 + 2.0 * 2.0),
            "choreography" => (2.0 * 4.0, 2.0 * 6.0),
            _ => (2.0 + 2.0 * 3.0, 2.0 + 2.0 * 4.0 + 2.0),
        };
        assert_eq!(m("saga_messages"), per_done * done + per_undone * undone, "{name}");
        assert_eq!(m("compensations_run"), 2.0 * undone, "{name}: the order and the payment undone");
        assert_eq!(out.domains["workflows"].processed, 2000, "{name}");
    }
}

/// Writes `text`, validates it, and checks the bad-input contract.
fn refused(name: &str, text: &str, needle: &str, field: &str) {
    let dir = TempDir::new(name);
    let file = dir.write(&format!("{name}.toml"), text);
    let line = text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1;
    let err = assert_bad_input(&asyncsim(&["validate", file.to_str().unwrap()]));
    assert_names(&err, &file, line, field);
}

#[test]
fn bad_saga_settings_are_refused_with_the_field() {
    let swap = |from: &str, to: &str| CLEAN.replacen(from, to, 1);
    let t = swap("failure_probability = 0.25", "compensation_failure_probability = 1.0");
    refused("saga-comp", &t, "compensation_failure_probability", "compensation_failure_probability");
    let t = swap("\"payment\", \"shipping\"]", "\"payment\", \"billing\"]");
    refused("saga-steps", &t, "billing", "steps");
    let t = swap("timeout_ms = 100", "timeout_ms = 100\nsubflow_from = \"payment\"");
    refused("saga-subflow", &t, "subflow_from", "subflow_from");
    let t = swap("failure_probability = 0.25", "failure_probability = 1.5");
    refused("saga-fail", &t, "failure_probability", "failure_probability");
}

/// A small saga under random failures, loss and a participant's crash.
fn hostile(style: &str, fail: f64, comp_fail: f64, loss: f64, retries: u32, crash: (usize, u64, u64)) -> String {
    let subflow = if style == "hybrid" { "subflow_from = \"payment\"\n" } else { "" };
    let victim = ["order", "payment", "shipping"][crash.0];
    format!(
        r#"name = "hostile"
concept = "sagas under failures"
[run]
drain_ms = 600_000
[network]
latency = {{ dist = "exponential", mean_ms = 1 }}
loss_probability = {loss}
[sagas.s]
style = "{style}"
{subflow}steps = ["order", "payment", "shipping"]
arrival = {{ process = "poisson", rate_per_s = 200 }}
messages = 200
timeout_ms = 20
retries = {retries}
resend_ms = 20
[participants.order]
processing = {{ dist = "exponential", mean_ms = 2 }}
failure_probability = {fail}
compensation_failure_probability = {comp_fail}
resend_ms = 20
[participants.payment]
processing = {{ dist = "exponential", mean_ms = 2 }}
failure_probability = {fail}
compensation_failure_probability = {comp_fail}
resend_ms = 20
[participants.shipping]
processing = {{ dist = "exponential", mean_ms = 2 }}
failure_probability = {fail}
compensation_failure_probability = {comp_fail}
resend_ms = 20
[[faults]]
kind = "crash"
node = "{victim}"
at_ms = {}
until_ms = {}
"#,
        crash.1,
        crash.1 + crash.2
    )
}

proptest! {
    #![proptest_config(common::proptest_config(64))]

    /// Whatever fails (steps refusing, compensations failing, the network
    /// losing messages, a participant crashing), every saga ends after the
    /// drain, completed or fully compensated, never half-done: the steps
    /// left done are exactly those of the completed workflows.
    #[test]
    fn every_saga_ends_completed_or_fully_compensated(
        style in prop::sample::select(vec!["orchestration", "choreography", "hybrid"]),
        fail in 0.0..0.6f64,
        comp_fail in 0.0..0.8f64,
        loss in 0.0..0.1f64,
        retries in 0u32..3,
        crash in (0usize..3, 0u64..1000, 1u64..500),
        seed in any::<u64>(),
    ) {
        let text = hostile(style, fail, comp_fail, loss, retries, crash);
        for (_, out) in run(&text, seed) {
            let m = |k: &str| out.metrics.get(k).copied().unwrap_or(0.0);
            prop_assert!(out.stopped.is_none() && out.drain_complete, "{}", text);
            prop_assert_eq!(m("sagas_stuck"), 0.0, "{}", text);
            prop_assert_eq!(out.counts.in_flight + out.counts.lost, 0, "{:?}\n{}", out.counts, text);
            prop_assert_eq!(m("sagas_completed") + m("sagas_compensated"), out.counts.produced as f64);
            prop_assert_eq!(m("steps_applied") - m("compensations_run"), STEPS * m("sagas_completed"), "{}", text);
            prop_assert_eq!(out.domains["workflows"].duplicated, 0);
        }
    }
}
