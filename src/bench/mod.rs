//! `asyncsim bench`: the engine's speed and memory, measured on the wall
//! clock (here in the CLI, never in sim-core).
//!
//! With no FILE it runs the suite of issue 17 ([`suite`]): (a) the peers'
//! M/M/1, (b) a faulted cluster pipeline, (c) the sync-versus-async
//! scenario, each variant, all in one thread, and (d) a fan-out of many
//! small runs on a pool of threads ([`fanout`]). Each gets its own peak
//! memory ([`measure`]). With FILE it runs that scenario's variants, as it
//! always did. Each run is repeated and the fastest kept, as the least
//! disturbed by the machine. `docs/benchmarks.md` says how to read it.
//!
//! Nothing here is timed by the tests: they check the output's shape and
//! that the fan-out's summaries do not depend on the number of jobs.

mod fanout;
mod measure;
mod suite;

use anyhow::{bail, Result};
use serde::Serialize;
use sim_core::producer::ProducerSpec;
use sim_core::scenario::{Config, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// A workload of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    /// (a) bench/workloads/mm1.toml: M/M/1 at utilisation 0.9.
    A,
    /// (b) bench/workloads/cluster.toml: a faulted cluster pipeline.
    B,
    /// (c) scenarios/sync-vs-async.toml, each variant.
    C,
    /// (d) a fan-out of many small runs on a pool of threads.
    D,
}

/// Arguments of `asyncsim bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The scenario to run (default: the suite: workloads a to d).
    pub file: Option<PathBuf>,
    /// The suite's workloads to run (comma-separated; default all).
    #[arg(long, value_delimiter = ',', value_enum, value_name = "a,b,c,d")]
    pub only: Vec<Workload>,
    /// Messages per producer (overrides the file; in the suite, workload
    /// (a)'s, default 1,000,000); at least 1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Seed (default: the scenario's; the fan-out uses seeds 1..=RUNS).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Repetitions; the fastest is reported, as the least disturbed by the machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Runs of the fan-out, workload (d).
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub runs: usize,
    /// Threads of the fan-out, workload (d) (default: one per core).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Also write the figures as JSON to PATH (whole or not at all).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Overrides, as in `run` (with FILE only).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// One row of figures: one variant of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The suite's workload ("a" to "d"), or "file".
    pub workload: String,
    /// What ran: the workload's name, `/variant` when it has several.
    pub name: String,
    /// The scenario file.
    pub file: String,
    /// Events dispatched (all runs, for the fan-out).
    pub events: u64,
    /// Messages processed (applied), the simulated messages.
    pub msgs: u64,
    /// Wall time of the fastest repetition, in seconds.
    pub wall_s: f64,
    /// Events per wall second.
    pub events_per_s: f64,
    /// Simulated messages per wall second.
    pub msgs_per_s: f64,
    /// Peak resident memory while it ran, MiB (None: not measurable here).
    pub peak_mib: Option<f64>,
    /// Resident memory when it began, MiB: the part of the peak that the
    /// process already held (the allocator keeps what earlier rows freed).
    pub resident_before_mib: Option<f64>,
    /// The fan-out's own figures, for workload (d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<fanout::Fanout>,
}

impl Row {
    fn new(workload: &str, name: String, file: &Path, events: u64, msgs: u64, wall_s: f64) -> Row {
        Row {
            workload: workload.to_string(),
            name,
            file: file.display().to_string(),
            events,
            msgs,
            wall_s,
            events_per_s: events as f64 / wall_s,
            msgs_per_s: msgs as f64 / wall_s,
            peak_mib: None,
            resident_before_mib: None,
            fanout: None,
        }
    }
}

/// Loads `file` with `sets_given`, and `messages` per producer when given
/// (with a bound on events raised to fit them).
fn load(file: &Path, messages: Option<u64>, sets_given: &[String]) -> Result<Scenario> {
    let text = crate::input::read_scenario(file)?;
    let mut scenario = Scenario::parse(&file.display().to_string(), &text)?;
    let mut sets = Vec::new();
    if let Some(n) = messages {
        let producers: Vec<String> = scenario.config.specs::<ProducerSpec>().map(|(p, _)| p.to_string()).collect();
        // A message costs about 5 events on the M/M/1 path: keep the bound
        // on events out of the way of a long run (a --set of it still wins,
        // being applied after).
        let bound = n.saturating_mul(10).saturating_mul(producers.len() as u64).max(scenario.config.run.max_events);
        sets.push(format!("run.max_events={bound}"));
        sets.extend(producers.iter().map(|p| format!("producers.{p}.messages={n}")));
    }
    sets.extend_from_slice(sets_given);
    scenario.set_overrides(&sets)?;
    Ok(scenario)
}

/// Runs `config` `repeat` times, in this thread; the fastest run's wall
/// time, events and messages processed.
fn fastest(label: &str, config: &Config, seed: u64, repeat: u32) -> Result<(f64, u64, u64)> {
    let mut best: Option<(f64, u64, u64)> = None;
    let repeat = repeat.max(1) as usize;
    let watch = crate::progress::Watch::start(label, vec![config; repeat]);
    for i in 0..repeat {
        let start = Instant::now();
        let out = watch.run(i, config, seed, 0).completed()?;
        let wall = start.elapsed().as_secs_f64();
        if best.is_none_or(|b| wall < b.0) {
            best = Some((wall, out.events, out.counts.processed));
        }
    }
    watch.finish();
    Ok(best.expect("at least one repetition"))
}

/// Runs the benchmark and prints its figures.
pub fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let rows = match &args.file {
        None => {
            if !args.set.is_empty() {
                bail!("--set needs FILE: the suite runs its own workloads (see docs/benchmarks.md)");
            }
            suite::run(args)?
        }
        Some(file) => {
            if !args.only.is_empty() || args.jobs.is_some() {
                bail!("--only and --jobs choose and shape the suite's workloads: leave out FILE to run the suite");
            }
            bench_file(args, file)?
        }
    };
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "asyncsim": env!("CARGO_PKG_VERSION"),
            "repeat": args.repeat,
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "workloads": rows,
        });
        let text = serde_json::to_string_pretty(&doc)? + "\n";
        reports::write_atomic(path, text.as_bytes()).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        outln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `asyncsim bench FILE`: every variant of FILE, one line each, and the
/// process's peak memory (since it started: FILE's variants share it).
fn bench_file(args: &BenchArgs, file: &Path) -> Result<Vec<Row>> {
    let scenario = load(file, args.messages, &args.set)?;
    let seed = args.seed.unwrap_or(scenario.config.seed);
    let rss_before = measure::peak_rss_mib();
    let mut rows = Vec::new();
    outln!("variant               events    processed     wall s    events/s      msgs/s");
    for (variant, config) in scenario.configs()? {
        let (wall, events, processed) = fastest(&format!("bench {}", variant.name), &config, seed, args.repeat)?;
        let mut row = Row::new("file", variant.name.clone(), file, events, processed, wall);
        row.peak_mib = measure::peak_rss_mib();
        outln!(
            "{:<16} {:>11} {:>12} {:>10.3} {:>11.0} {:>11.0}",
            variant.name,
            events,
            processed,
            wall,
            row.events_per_s,
            row.msgs_per_s
        );
        rows.push(row);
    }
    if let (Some(before), Some(after)) = (rss_before, measure::peak_rss_mib()) {
        outln!("peak resident memory: {after:.1} MiB (before the runs: {before:.1} MiB)");
    }
    Ok(rows)
}
