//! Workload (d) of the suite: a fan-out of many small runs, what `check`
//! and `sweep` do. One small bundled scenario (`scenarios/mm1.toml` at
//! [`MESSAGES`] messages) runs at seeds 1..=R on a [`Pool`] of `--jobs`
//! threads, each run turned into its summary as `sweep` does. It reports
//! runs per second and how busy the threads were, twice: process CPU time
//! / wall time / jobs, near 100% when every thread works all the time on
//! an idle machine; and the threads' time inside runs / wall time / jobs,
//! which a loaded machine does not lower (a thread preempted inside a run
//! still counts as busy): it shows whether the pool leaves threads waiting.
//!
//! The runs' summaries are folded, in seed order, into one digest: it must
//! not depend on the number of jobs (the tests compare `--jobs 1` and
//! `--jobs 2`), as a sweep's output does not.

use super::measure;
use crate::many::{Meter, Pool};
use anyhow::Result;
use serde::Serialize;
use sim_core::scenario::{run_config, Config};
use sim_core::summary::VariantSummary;
use std::time::Instant;

/// Messages per run: small, as a sweep's or a search's runs are.
pub const MESSAGES: u64 = 20_000;

/// What one pass of the fan-out measured.
#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    /// Runs made.
    pub runs: usize,
    /// Worker threads.
    pub jobs: usize,
    /// Events over all runs.
    pub events: u64,
    /// Messages processed over all runs.
    pub msgs: u64,
    /// Wall time of the whole fan-out, in seconds.
    pub wall_s: f64,
    /// CPU time of the process during it (every thread), in seconds.
    pub cpu_s: Option<f64>,
    /// Wall time the threads spent inside runs, summed, in seconds.
    pub busy_s: f64,
    /// Runs stopped at a limit (none expected).
    pub stopped: usize,
    /// Every run's summary folded in seed order (hex).
    pub summaries_digest: String,
}

impl Fanout {
    /// Runs completed per wall second.
    pub fn runs_per_s(&self) -> f64 {
        self.runs as f64 / self.wall_s
    }

    /// CPU time over wall time over jobs: 1.0 when every thread was busy
    /// all the time.
    pub fn cpu_use(&self) -> Option<f64> {
        self.cpu_s.map(|c| c / self.wall_s / self.jobs as f64)
    }

    /// Time inside runs over wall time over jobs: 1.0 when no thread ever
    /// waited for work.
    pub fn busy(&self) -> f64 {
        self.busy_s / self.wall_s / self.jobs as f64
    }
}

/// The fan-out's scenario file, bundled.
pub fn file() -> std::path::PathBuf {
    crate::run::bundled_dir().join("mm1.toml")
}

/// The fan-out's run: the first variant of [`file`] at [`MESSAGES`]
/// messages, and the variant's description.
pub fn config() -> Result<(Config, String)> {
    let (scenario, _) = crate::run::load(&file(), &[format!("producers.producer.messages={MESSAGES}")])?;
    let (variant, config) = scenario.configs()?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no variant"))?;
    Ok((config, variant.description))
}

/// One run's figures.
struct OneRun {
    events: u64,
    msgs: u64,
    stopped: bool,
    /// Its summary's hash.
    hash: u64,
    /// Wall time inside it, in seconds.
    busy_s: f64,
}

fn one_run(config: &Config, description: &str, seed: u64) -> OneRun {
    let start = Instant::now();
    let out = run_config(config, seed, 0);
    let summary = VariantSummary::new(description, &out, &config.expect, &config.alarms);
    let json = serde_json::to_string(&summary).unwrap_or_default();
    OneRun {
        events: out.events,
        msgs: out.counts.processed,
        stopped: out.stopped.is_some(),
        hash: sim_core::rng::stable_hash(json.as_bytes()),
        busy_s: start.elapsed().as_secs_f64(),
    }
}

/// Runs seeds 1..=`runs` of `config` on `jobs` threads.
pub fn run(config: &Config, description: &str, runs: usize, jobs: usize) -> Result<Fanout> {
    let pool = Pool::new(Some(jobs))?;
    let meter = Meter::start(&format!("bench d: {runs} runs on {jobs} jobs"), Some(runs as u64));
    let cpu_before = measure::cpu_s();
    let start = Instant::now();
    let seeds: Vec<u64> = (1..=runs as u64).collect();
    let results = pool.map(seeds, |seed| {
        let r = one_run(config, description, seed);
        meter.tick(false);
        r
    });
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_s = cpu_before.zip(measure::cpu_s()).map(|(a, b)| b - a);
    meter.finish();
    let mut bytes = Vec::with_capacity(results.len() * 8);
    for r in &results {
        bytes.extend_from_slice(&r.hash.to_le_bytes());
    }
    Ok(Fanout {
        runs,
        jobs,
        events: results.iter().map(|r| r.events).sum(),
        msgs: results.iter().map(|r| r.msgs).sum(),
        wall_s,
        cpu_s,
        busy_s: results.iter().map(|r| r.busy_s).sum(),
        stopped: results.iter().filter(|r| r.stopped).count(),
        summaries_digest: format!("{:016x}", sim_core::rng::stable_hash(&bytes)),
    })
}
