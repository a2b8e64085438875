//! `asyncsim sweep`: runs a scenario at many points of its parameters
//! (`--set PATH=A..B:N`), each with many seeds, in parallel, and reports
//! each point's mean and confidence interval over seeds for every metric
//! asked, with a table, CSV files and a plot per metric against the swept
//! parameter. With several variants, each is compared with the baseline
//! seed by seed: the runs of one seed share their random numbers wherever
//! the model allows (common random numbers), so the paired difference's
//! interval is much narrower than the unpaired one. `--precision` adds
//! seeds in batches until every interval is narrow enough.
//!
//! The work is split as every command of many runs splits it: a plan
//! ([`plan::Plan`], JSON), units numbered from 0 (one run each) whose
//! records carry their `index`, and a pure [`finish`] that turns the plan
//! and the records into every output. So one job or many, one machine or
//! shards joined by `asyncsim merge`, give the same bytes.
//!
//! Leaves out: expectations (the scenario's claims are about its own
//! parameters, not the swept ones: they are not judged), traces and the
//! per-run plots of `run` (reproduce one run with the command printed).

mod analysis;
mod exec;
mod grammar;
mod output;
mod plan;
mod render;
mod stub;

use stub::many;
use stub::stats;

pub use output::finish;

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `asyncsim sweep`.
#[derive(clap::Args, Clone)]
pub struct SweepArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// A swept parameter, `PATH=A..B:N` (N values evenly spaced from A to
    /// B, both included; integers when A, B and the step are whole), or a
    /// fixed override `PATH=VALUE`. Several ranges: every combination.
    #[arg(long = "set", value_name = "PATH=A..B:N|PATH=VALUE")]
    pub set: Vec<String>,
    /// Seeds per point and variant: S, S+1, ... (default 20; with
    /// --precision, the first batch: 10).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub seeds: Option<usize>,
    /// The first seed S (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A metric to report: a numeric dotted path of a variant's summary
    /// (repeatable; default throughput_per_s, latency_ms.p99 and lost).
    #[arg(long = "metric", value_name = "PATH")]
    pub metrics: Vec<String>,
    /// Run only this variant (repeatable; default every variant).
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// The variant the others are compared with (default the first run).
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Worker threads (default one per core). Results are identical
    /// whatever the number.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Output folder (default `out/sweep-NAME`, NAME the scenario's).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only the units of shard I of N, and write them as a partial
    /// result into --out, for `asyncsim merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Add seeds, 10 at a time, until every metric's interval at every
    /// point is within this much of its mean (`2%`), or --max-seeds.
    #[arg(long, value_name = "PERCENT")]
    pub precision: Option<String>,
    /// Most seeds per point and variant with --precision.
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_seeds: usize,
    /// The confidence level of the intervals, in percent.
    #[arg(long, default_value_t = 95.0)]
    pub level: f64,
    /// Write into --out even if it holds files asyncsim did not write.
    #[arg(long)]
    pub force: bool,
}

/// `asyncsim sweep`.
pub fn sweep(args: &SweepArgs) -> Result<ExitCode> {
    if !(args.level > 50.0 && args.level < 100.0) {
        bail!("--level {}: expected a confidence level in percent, above 50 and below 100 (95)", args.level);
    }
    let shard: Option<many::Shard> = match &args.shard {
        Some(s) => Some(s.parse().map_err(|e| anyhow::anyhow!("--shard {s}: {e}"))?),
        None => None,
    };
    if shard.is_some() && args.precision.is_some() {
        bail!("--precision decides how many seeds to run from the results so far: it cannot run in shards (drop --shard, or give --seeds)");
    }
    let prepared = exec::prepare(args)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("out/sweep-{}", prepared.plan.scenario)));
    output::prepare_out(&out, args.force)?;
    let pool = many::Pool::new(args.jobs)?;
    match shard {
        Some(shard) => output::run_shard(&prepared, &pool, shard, &out),
        None => {
            let (plan, runs) = output::run_all(prepared, &pool);
            let plan = serde_json::to_value(&plan)?;
            finish(&plan, &runs, &out)
        }
    }
}
