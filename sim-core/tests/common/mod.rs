//! Helpers shared by the scenario tests of sim-core. A folder module, so
//! cargo does not build it as a test of its own.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use proptest::test_runner::Config as ProptestConfig;
use sim_core::engine::RunOutput;
use sim_core::scenario::{run_config, Scenario};

/// Parses `text`, a scenario the test wrote (a mistake in it shows the
/// text), and runs its first variant with `seed`, keeping no trace.
pub fn run(text: &str, seed: u64) -> RunOutput {
    run_keeping(text, seed, 0)
}

/// As [`run`], keeping the trace (up to ten million events).
pub fn run_traced(text: &str, seed: u64) -> RunOutput {
    run_keeping(text, seed, 10_000_000)
}

fn run_keeping(text: &str, seed: u64, trace_limit: usize) -> RunOutput {
    let s = Scenario::parse("test.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let config = s.configs().unwrap().remove(0).1;
    run_config(&config, seed, trace_limit).completed().unwrap()
}

/// Runs every variant of `text` (named `name` in errors) with `seed`, by
/// variant name.
pub fn run_variants(name: &str, text: &str, seed: u64) -> std::collections::BTreeMap<String, RunOutput> {
    let scenario = Scenario::parse(name, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let configs = scenario.configs().unwrap_or_else(|e| panic!("{e}\n{text}"));
    configs
        .into_iter()
        .map(|(v, config)| {
            let out = run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("{}: {e}\n{text}", v.name));
            (v.name.clone(), out)
        })
        .collect()
}

/// A run's counts, metrics, errors and domains, for a failure message.
pub fn show(out: &RunOutput) -> String {
    format!("counts {:?}\nmetrics {:?}\nerrors {:?}\ndomains {:?}", out.counts, out.metrics, out.errors, out.domains)
}

/// The metric `name` of a run (0 if nothing reported it).
pub fn metric(out: &RunOutput, name: &str) -> f64 {
    out.metrics.get(name).copied().unwrap_or(0.0)
}

/// The node number of the component `name` in a run's trace.
pub fn node(out: &RunOutput, name: &str) -> u32 {
    out.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no node {name}")) as u32
}

/// The settings of a property test: `default_cases` cases, or
/// `PROPTEST_CASES` when set (for a longer hunt), and no regression files
/// written into the source tree.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default_cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}
