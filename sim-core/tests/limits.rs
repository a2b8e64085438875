//! The engine stops at its bounds with a settled ledger.

use sim_core::scenario::{run_config, Scenario};

const OVERLOAD: &str = r#"
name = "overload"
concept = "a queue that grows"
seed = 1

[run]
duration_ms = 100_000_000
max_events = 20_000

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 1000 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 10 }
"#;

fn run(text: &str) -> sim_core::engine::RunOutput {
    let s = Scenario::parse("overload.toml", text).unwrap_or_else(|e| panic!("{e}"));
    run_config(&s.configs().unwrap().remove(0).1, 1, 0)
}

fn assert_settled(out: &sim_core::engine::RunOutput) {
    let c = &out.counts;
    assert_eq!(c.processed + c.lost + c.in_flight + c.send_failed, c.produced, "every message is settled: {c:?}");
}

#[test]
fn the_engine_stops_at_the_event_bound_with_a_settled_ledger() {
    let out = run(OVERLOAD);
    let stopped = out.stopped.expect("the run stopped at max_events");
    assert_eq!(stopped.reason, "max_events");
    assert_eq!(out.events, 20_000);
    assert!(stopped.at > 0 && stopped.at == out.run_end, "it stopped in the run phase");
    assert!(!out.drain_complete, "no drain ran");
    assert!(out.counts.produced > 1000 && out.counts.in_flight > 0 && out.counts.lost == 0, "{:?}", out.counts);
    assert_settled(&out);
    assert!(out.completed().is_err());
}

#[test]
fn the_engine_stops_at_the_memory_bound_with_a_settled_ledger() {
    let text = OVERLOAD.replace("max_events = 20_000", "max_memory_mb = 1");
    let out = run(&text);
    let stopped = out.stopped.expect("the run stopped at max_memory");
    assert_eq!(stopped.reason, "max_memory");
    assert_eq!(out.events % sim_core::engine::MEMORY_CHECK_EVERY, 0, "checked every few thousand events");
    assert!(out.counts.in_flight > 1000, "{:?}", out.counts);
    assert_settled(&out);
}

#[test]
fn a_run_within_its_bounds_is_not_stopped() {
    let text = OVERLOAD.replace("duration_ms = 100_000_000", "duration_ms = 1000");
    let out = run(&text);
    assert!(out.stopped.is_none());
    assert!(out.drain_complete);
    assert_settled(&out);
}
