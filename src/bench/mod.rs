//! `asyncsim bench`: the engine's speed and memory on one scenario, in one
//! thread, measured on the wall clock (here in the CLI, never in sim-core).

use anyhow::Result;
use sim_core::producer::ProducerSpec;
use sim_core::scenario::Scenario;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `asyncsim bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The scenario to run (default: the bundled mm1.toml).
    pub file: Option<PathBuf>,
    /// Messages per producer (overrides the file); at least 1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Repetitions; the fastest is reported, as the least disturbed by the machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Overrides, as in `run`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

/// Peak resident memory of this process in MiB (Linux; None elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the benchmark and prints its figures.
pub fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let file = args.file.clone().unwrap_or_else(|| crate::run::bundled_dir().join("mm1.toml"));
    let text = crate::input::read_scenario(&file)?;
    let mut scenario = Scenario::parse(&file.display().to_string(), &text)?;
    let mut sets = args.set.clone();
    if let Some(n) = args.messages {
        sets.extend(scenario.config.specs::<ProducerSpec>().map(|(p, _)| format!("producers.{p}.messages={n}")));
    }
    scenario.set_overrides(&sets)?;
    let seed = args.seed.unwrap_or(scenario.config.seed);
    let rss_before = peak_rss_mib();
    outln!("variant               events    processed     wall s    events/s      msgs/s");
    for (variant, config) in scenario.configs()? {
        let mut best: Option<(f64, u64, u64)> = None;
        let repeat = args.repeat.max(1) as usize;
        let watch = crate::progress::Watch::start(&format!("bench {}", variant.name), vec![&config; repeat]);
        for i in 0..repeat {
            let start = Instant::now();
            let out = watch.run(i, &config, seed, 0).completed()?;
            let wall = start.elapsed().as_secs_f64();
            if best.is_none_or(|b| wall < b.0) {
                best = Some((wall, out.events, out.counts.processed));
            }
        }
        watch.finish();
        let (wall, events, processed) = best.expect("at least one repetition");
        outln!(
            "{:<16} {:>11} {:>12} {:>10.3} {:>11.0} {:>11.0}",
            variant.name,
            events,
            processed,
            wall,
            events as f64 / wall,
            processed as f64 / wall
        );
    }
    if let (Some(before), Some(after)) = (rss_before, peak_rss_mib()) {
        outln!("peak resident memory: {after:.1} MiB (before the runs: {before:.1} MiB)");
    }
    Ok(ExitCode::SUCCESS)
}
