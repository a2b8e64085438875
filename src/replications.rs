//! Replications for interval expectations (`PATH within N% of X at 95%`):
//! a variant that claims one is run again at seeds S+1 .. S+R-1 (S the
//! run's seed, R its `run.replications`), in parallel, and each interval
//! expectation is judged over the R summaries
//! ([`sim_core::expect::evaluate_over`]). The run at S stays the one
//! reported; the others write nothing. A replication stopped by a bound
//! (events, memory) is left out of the interval, and its `n` says so.

use rayon::prelude::*;
use sim_core::expect;
use sim_core::scenario::{run_config, Config};
use sim_core::summary::VariantSummary;

/// Re-judges `summary`'s interval expectations (if any) over the run at
/// `seed` and `config.run.replications - 1` more, at the seeds after it.
pub fn judge_intervals(summary: &mut VariantSummary, config: &Config, seed: u64) {
    if !config.expect.iter().any(|e| expect::is_interval(e)) {
        return;
    }
    let first = serde_json::to_value(&*summary).unwrap_or_default();
    let more: Vec<serde_json::Value> = (1..config.run.replications.max(1))
        .into_par_iter()
        .filter_map(|k| {
            let out = run_config(config, seed.wrapping_add(k), 0).completed().ok()?;
            serde_json::to_value(VariantSummary::new("", &out, &[], &config.alarms)).ok()
        })
        .collect();
    let all: Vec<serde_json::Value> = std::iter::once(first).chain(more).collect();
    for (outcome, text) in summary.expectations.iter_mut().zip(&config.expect) {
        if expect::is_interval(text) {
            *outcome = expect::evaluate_over(text, &all);
        }
    }
}
