//! `asyncsim check --determinism`: runs every variant twice, the second time on another
//! thread and in a different order, and compares digests, summaries and
//! traces. If the runs differ, that is the most serious bug asyncsim can
//! have, and it reports the first event where the histories part.

use anyhow::Result;
use rayon::prelude::*;
use sim_core::engine::RunOutput;
use sim_core::scenario::Scenario;
use sim_core::summary::VariantSummary;
use std::path::Path;
use std::process::ExitCode;

/// Where two runs of the same variant part, if they do.
pub fn first_divergence(a: &RunOutput, b: &RunOutput) -> Option<String> {
    let sa = serde_json::to_string(&VariantSummary::new("", a, &[], &[])).ok()?;
    let sb = serde_json::to_string(&VariantSummary::new("", b, &[], &[])).ok()?;
    if a.digest == b.digest && sa == sb && a.trace == b.trace {
        return None;
    }
    let at = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y);
    Some(match at {
        Some(i) => format!(
            "first divergence at event {i}, t = {} ns:\n  first run:  {:?}\n  second run: {:?}",
            a.trace[i].time, a.trace[i].what, b.trace[i].what
        ),
        None if a.trace.len() != b.trace.len() => {
            format!("traces agree for {} events, then one run has more", a.trace.len().min(b.trace.len()))
        }
        None => {
            format!("traces agree as far as recorded, but digests ({} / {}) or summaries differ", a.digest, b.digest)
        }
    })
}

/// Runs the check on `file` with `seed` and overrides `set`, comparing at
/// most `trace_limit` events of each run.
pub fn check(file: &Path, seed: Option<u64>, set: &[String], trace_limit: usize) -> Result<ExitCode> {
    let text = crate::input::read_scenario(file)?;
    let mut scenario = Scenario::parse(&file.display().to_string(), &text)?;
    scenario.set_overrides(set)?;
    let seed = seed.unwrap_or(scenario.config.seed);
    let configs = scenario.configs()?;
    let limit = trace_limit.max(1);
    // First pass: one thread, file order. Second: all threads, reverse order.
    let n = configs.len();
    let watch = crate::progress::Watch::start(&format!("check {}", scenario.config.name), {
        let each = configs.iter().map(|(_, c)| c);
        each.clone().chain(each)
    });
    let first: Vec<_> = configs.iter().enumerate().map(|(i, (_, c))| watch.run(i, c, seed, limit)).collect();
    let second: Vec<_> = {
        let mut out: Vec<_> =
            configs.par_iter().enumerate().rev().map(|(i, (_, c))| watch.run(n + i, c, seed, limit)).collect();
        out.reverse();
        out
    };
    watch.finish();
    let mut same = true;
    for (((variant, _), a), b) in configs.iter().zip(first).zip(second) {
        match first_divergence(&a, &b) {
            None => outln!("{}: identical ({} events, digest {})", variant.name, a.events, a.digest),
            Some(why) => {
                same = false;
                outln!("{}: NOT DETERMINISTIC with seed {seed}: {why}", variant.name);
            }
        }
    }
    Ok(if same { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::scenario::run_config;

    fn run(seed: u64) -> RunOutput {
        let path = format!("{}/scenarios/network-faults.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let s = Scenario::parse(&path, &text).unwrap();
        let config = s.configs().unwrap().remove(0).1;
        run_config(&config, seed, 1_000_000).completed().unwrap()
    }

    #[test]
    fn the_first_divergence_is_found_and_equal_runs_have_none() {
        let (a, b) = (run(1), run(1));
        assert_eq!(first_divergence(&a, &b), None);
        // Another seed stands in for a nondeterministic run: same start,
        // then the first random draw that differs.
        let c = run(2);
        let why = first_divergence(&a, &c).expect("different seeds diverge");
        let i: usize = why.split("event ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        assert_eq!(a.trace[..i], c.trace[..i], "the runs agree before the reported event");
        assert_ne!(a.trace[i], c.trace[i], "and differ at it: {why}");
    }
}
