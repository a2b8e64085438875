//! The suite `asyncsim bench` runs with no FILE: workloads (a) to (d) of
//! issue 17, one table. (a) to (c) run in this thread, one variant at a
//! time; (d) on a pool. Before each row the allocator hands back what it
//! holds free and the process's peak memory is reset, so each row's peak is
//! its own, plus the little the process holds between rows (the binary,
//! the loaded scenarios: `resident_before_mib` in the JSON).

use super::fanout::{self, Fanout};
use super::{fastest, load, measure, BenchArgs, Row, Workload};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Workload (a)'s messages unless `--messages` says otherwise.
pub const MM1_MESSAGES: u64 = 1_000_000;

/// The folder of the benchmark workloads: `bench/workloads` here, else the
/// source tree's (as `run::bundled_dir` finds the scenarios).
fn workloads_dir() -> PathBuf {
    let local = PathBuf::from("bench/workloads");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/workloads")
    }
}

/// Runs the chosen workloads and prints the table; returns its rows.
pub fn run(args: &BenchArgs) -> Result<Vec<Row>> {
    let chosen = |w: Workload| args.only.is_empty() || args.only.contains(&w);
    let mut rows = Vec::new();
    let messages = args.messages.unwrap_or(MM1_MESSAGES);
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Each workload is read before anything runs, so bad input stops at once.
    let mut plans: Vec<(Workload, PathBuf, Option<u64>, Vec<String>)> = Vec::new();
    if chosen(Workload::A) {
        // About 5 events a message: keep the bound on events out of the way.
        let bound = format!("run.max_events={}", (messages * 10).max(100_000_000));
        plans.push((Workload::A, workloads_dir().join("mm1.toml"), Some(messages), vec![bound]));
    }
    if chosen(Workload::B) {
        plans.push((Workload::B, workloads_dir().join("cluster.toml"), None, Vec::new()));
    }
    if chosen(Workload::C) {
        plans.push((Workload::C, crate::run::bundled_dir().join("sync-vs-async.toml"), None, Vec::new()));
    }
    let loaded: Vec<_> =
        plans.iter().map(|(w, f, m, sets)| load(f, *m, sets).map(|s| (*w, f, s))).collect::<Result<_>>()?;
    let fan = if chosen(Workload::D) { Some(fanout::config()?) } else { None };
    print_header();
    for (w, file, scenario) in loaded {
        let seed = args.seed.unwrap_or(scenario.config.seed);
        let configs = scenario.configs()?;
        let several = configs.len() > 1;
        for (variant, config) in configs {
            let name = if several { format!("{}/{}", stem(file), variant.name) } else { stem(file) };
            measure::trim();
            let (reset, before) = (measure::reset_peak(), measure::rss_mib());
            let (wall, events, msgs) = fastest(&format!("bench {name}"), &config, seed, args.repeat)?;
            let mut row = Row::new(letter(w), name, file, events, msgs, wall);
            row.peak_mib = if reset { measure::peak_rss_mib() } else { None };
            row.resident_before_mib = before;
            print_row(&row);
            rows.push(row);
        }
    }
    if let Some((config, description)) = fan {
        let row = fan_out(&config, &description, args.runs, jobs, args.repeat)?;
        print_row(&row);
        rows.push(row);
    }
    print_legend(args, messages, &rows);
    Ok(rows)
}

/// Workload (d): the fastest of `repeat` fan-outs, with its own peak.
fn fan_out(
    config: &sim_core::scenario::Config,
    description: &str,
    runs: usize,
    jobs: usize,
    repeat: u32,
) -> Result<Row> {
    measure::trim();
    let (reset, before) = (measure::reset_peak(), measure::rss_mib());
    let mut best: Option<Fanout> = None;
    for _ in 0..repeat.max(1) {
        let f = fanout::run(config, description, runs, jobs)?;
        if best.as_ref().is_none_or(|b| f.wall_s < b.wall_s) {
            best = Some(f);
        }
    }
    let f = best.expect("at least one repetition");
    let name = format!("fan-out {runs} runs, {jobs} jobs");
    let mut row = Row::new("d", name, &fanout::file(), f.events, f.msgs, f.wall_s);
    row.peak_mib = if reset { measure::peak_rss_mib() } else { None };
    row.resident_before_mib = before;
    row.fanout = Some(f);
    Ok(row)
}

fn letter(w: Workload) -> &'static str {
    match w {
        Workload::A => "a",
        Workload::B => "b",
        Workload::C => "c",
        Workload::D => "d",
    }
}

/// A file's name without its extension.
fn stem(file: &Path) -> String {
    file.file_stem().map_or_else(|| file.display().to_string(), |s| s.to_string_lossy().into_owned())
}

fn print_header() {
    outln!(
        "{:<34} {:>11} {:>10} {:>8} {:>11} {:>10} {:>9}",
        "workload",
        "events",
        "msgs",
        "wall s",
        "events/s",
        "msgs/s",
        "peak MiB"
    );
}

fn print_row(r: &Row) {
    let peak = r.peak_mib.map_or_else(|| "n/a".to_string(), |p| format!("{p:.1}"));
    outln!(
        "{:<34} {:>11} {:>10} {:>8.3} {:>11.0} {:>10.0} {:>9}",
        format!("{} {}", r.workload, r.name),
        r.events,
        r.msgs,
        r.wall_s,
        r.events_per_s,
        r.msgs_per_s,
        peak
    );
}

/// What each row ran, and the fan-out's own figures.
fn print_legend(args: &BenchArgs, messages: u64, rows: &[Row]) {
    outln!("fastest of {}; peak memory: each row's own (VmHWM, reset before it)", args.repeat.max(1));
    let ran = |w: &str| rows.iter().any(|r| r.workload == w);
    if ran("a") {
        outln!("a: bench/workloads/mm1.toml at {messages} messages (M/M/1, utilisation 0.9), one thread");
    }
    if ran("b") {
        outln!(
            "b: bench/workloads/cluster.toml (3 brokers, rf 3, a group of 2, loss, a partition, a crash), one thread"
        );
    }
    if ran("c") {
        outln!("c: scenarios/sync-vs-async.toml, each variant, one thread");
    }
    for f in rows.iter().filter_map(|r| r.fanout.as_ref()) {
        let cpu = match (f.cpu_s, f.cpu_use()) {
            (Some(c), Some(u)) => format!("CPU {:.2} s per wall s, {:.0}% of {} jobs", c / f.wall_s, u * 100.0, f.jobs),
            _ => "CPU n/a".to_string(),
        };
        let busy = format!("threads inside runs {:.0}% of the time", f.busy() * 100.0);
        outln!(
            "d: scenarios/mm1.toml at {} messages, seeds 1..={}: {:.1} runs/s; {cpu}; {busy}; summaries {}",
            fanout::MESSAGES,
            f.runs,
            f.runs_per_s(),
            f.summaries_digest
        );
    }
}
