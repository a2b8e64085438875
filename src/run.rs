//! The `run` and `validate` commands, and the default job (every bundled
//! scenario).

use crate::table;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use reports::plots::PlotRun;
use sim_core::engine::RunOutput;
use sim_core::kind::KindPlot;
use sim_core::scenario::{build_engine, Config, Scenario, Variant};
use sim_core::summary::{Summary, VariantSummary};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `asyncsim run`.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Seed for every random draw (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Override a field for every variant, e.g. `--set network.loss_probability=0.1`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Run only this variant (repeatable).
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Also write trace-VARIANT.csv with every event (up to --trace-limit).
    #[arg(long)]
    pub trace: bool,
    /// Most events a trace keeps.
    #[arg(long, default_value_t = 5_000_000)]
    pub trace_limit: usize,
    /// Worker threads for running variants in parallel (default: one per core).
    /// Results are identical whatever the number. At least 1.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
    /// Write into --out even if it holds files asyncsim did not write.
    #[arg(long)]
    pub force: bool,
    /// Most memory, in MiB, a variant's run may hold (its event queue,
    /// ledger, queues and logs); overrides `run.max_memory_mb` (default
    /// 2048) for every variant. A run that reaches it stops, writes what it
    /// measured and exits 3. At least 1.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    pub max_memory_mb: Option<u64>,
    /// Write no plots (for benchmarks and scripts). Without it, a run
    /// writes its plots, SVG and PNG, beside summary.json, and the report
    /// page index.html shows them.
    #[arg(long)]
    pub no_plots: bool,
    /// The Perfetto trace (`--trace-json`, its window).
    #[command(flatten)]
    pub json: crate::trace_json::TraceJsonArgs,
}

impl RunArgs {
    /// How the default job runs a bundled scenario: with its own seed,
    /// into `out`.
    fn bundled(file: PathBuf, out: PathBuf) -> RunArgs {
        RunArgs {
            file,
            seed: None,
            out,
            set: Vec::new(),
            variants: Vec::new(),
            trace: false,
            trace_limit: 0,
            threads: None,
            force: false,
            max_memory_mb: None,
            no_plots: false,
            json: Default::default(),
        }
    }
}

/// How the variants of one file ended.
pub struct Ran {
    /// Every expectation held.
    pub all_held: bool,
    /// Some variant stopped at a bound (events, memory).
    pub stopped: bool,
}

/// How many notes of one kind a variant prints in full.
const NOTES_SHOWN: usize = 3;

/// Reads and parses a scenario file, with overrides; returns it and the
/// file's text. Input errors exit with status 2: they are returned as `Err`.
pub(crate) fn load(file: &Path, set: &[String]) -> Result<(Scenario, String)> {
    load_variants(file, set, &[])
}

/// [`load`] keeping only the variants named (all when none is): the
/// overrides are validated against the variants that will run. An unknown
/// name is an error that lists the variants.
pub(crate) fn load_variants(file: &Path, set: &[String], variants: &[String]) -> Result<(Scenario, String)> {
    let text = crate::input::read_scenario(file)?;
    let mut scenario = Scenario::parse(&file.display().to_string(), &text)?;
    let names: Vec<&str> = scenario.variants().iter().map(|v| v.name.as_str()).collect();
    if let Some(unknown) = variants.iter().find(|v| !names.contains(&v.as_str())) {
        bail!("{}: no variant named `{unknown}` (variants: {})", file.display(), names.join(", "));
    }
    scenario.keep_variants(variants);
    if !set.is_empty() {
        scenario.set_overrides(set)?;
    }
    Ok((scenario, text))
}

pub(crate) fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The files a run writes, each checked to lie inside `--out`.
struct OutFiles {
    summary: PathBuf,
    timeseries: PathBuf,
    /// The scenario's report page.
    page: PathBuf,
    /// One per chosen variant, in order, with `--trace`.
    traces: Vec<PathBuf>,
    /// One per chosen variant, in order, with `--trace-json`.
    json_traces: Vec<PathBuf>,
}

impl OutFiles {
    /// Before any simulation: makes `--out` ready, proves it writable,
    /// names every file to write there, and tidies it: removes what the
    /// last run wrote there that this one will not write again, and the
    /// temporary files of killed runs (see [`reports::tidy_dir`]).
    fn prepare<'a>(
        args: &RunArgs,
        variants: impl Iterator<Item = &'a str>,
        kind_plots: &[KindPlot],
    ) -> Result<OutFiles> {
        args.json.window()?;
        reports::prepare_dir(&args.out, args.force)?;
        reports::check_writable(&args.out)
            .with_context(|| format!("the output folder {} is not writable", args.out.display()))?;
        let mut names = vec!["summary.json".to_string(), "timeseries.csv".to_string(), "index.html".to_string()];
        let variants: Vec<&str> = variants.collect();
        if args.trace {
            names.extend(variants.iter().map(|v| format!("trace-{v}.csv")));
        }
        let csv = if args.trace { variants.len() } else { 0 };
        if args.json.trace_json {
            names.extend(variants.iter().map(|v| format!("trace-{v}.json")));
        }
        let json = names.len() - 3 - csv;
        if !args.no_plots {
            names.extend(reports::plots::plot_file_names(kind_plots, true));
        }
        let paths = names.iter().map(|n| reports::out_path(&args.out, n)).collect::<Result<Vec<_>, _>>()?;
        let tidied = reports::tidy_dir(&args.out, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
        for warning in &tidied.warnings {
            eprintln!("warning: {warning}");
        }
        let mut paths = paths.into_iter();
        let csv = if args.trace { variants.len() } else { 0 };
        Ok(OutFiles {
            summary: paths.next().expect("named above"),
            timeseries: paths.next().expect("named above"),
            page: paths.next().expect("named above"),
            traces: paths.by_ref().take(csv).collect(),
            json_traces: paths.by_ref().take(json).collect(),
        })
    }
}

/// Runs variant `i`; streams its traces to their files (the CSV one is
/// renamed into place by [`sim_core::trace::TraceSink::finish`] once all is
/// well, the Perfetto one, returned, by [`crate::trace_json::publish`]).
fn run_variant(
    watch: &crate::progress::Watch,
    slot: usize,
    i: usize,
    (variant, config): &(Variant, Config),
    seed: u64,
    args: &RunArgs,
    files: &OutFiles,
) -> Result<Simulated> {
    let limit = crate::trace_json::engine_limit(args.trace, args.json.trace_json, args.trace_limit);
    let mut engine = build_engine(config, seed, limit);
    let (csv, json) = (files.traces.get(i), files.json_traces.get(i));
    let perfetto = crate::trace_json::attach(&mut engine, csv, json, &args.json, args.trace_limit, &variant.name)?;
    Ok((watch.run_engine(slot, engine), perfetto))
}

/// Tells, on stderr, which variants a bound stopped, when, and how to
/// raise it.
fn report_stopped(runs: &[(String, RunOutput, VariantSummary)], chosen: &[(Variant, Config)]) {
    for ((name, out, _), (_, config)) in runs.iter().zip(chosen) {
        let Some(stopped) = out.stopped else { continue };
        let at = sim_core::time::ns_to_s(stopped.at);
        let (bound, raise) = match stopped.reason {
            "max_events" => (
                format!("run.max_events ({} events)", config.run.max_events),
                "raise run.max_events (--set run.max_events=N) or shorten the run".to_string(),
            ),
            _ => (
                format!("run.max_memory_mb ({} MiB)", config.run.max_memory_mb),
                "raise it with --max-memory-mb N (or run.max_memory_mb), or shorten the run".to_string(),
            ),
        };
        eprintln!(
            "error: `{name}`: the run stopped at its limit {bound} at t={at} s (simulated); summary.json holds what it measured until then (messages still held count as in flight); {raise}"
        );
    }
}

/// A scenario file ready to run: read, checked, its variants chosen and
/// its output folder prepared.
struct Prepared {
    args: RunArgs,
    scenario: Scenario,
    /// The comment the file opens with, for the report page.
    header: String,
    chosen: Vec<(Variant, Config)>,
    seed: u64,
    files: OutFiles,
    kind_plots: Vec<KindPlot>,
    /// What goes to standard output, in order (printed by the caller, so
    /// scenarios run in parallel still print one after the other).
    printed: String,
}

/// Reads, checks and prepares one scenario file (nothing is simulated).
fn prepare(args: &RunArgs) -> Result<Prepared> {
    // The budget from the command line is an override like any other, so
    // that validation (the pre-flight estimate) checks against it.
    let mut set = args.set.clone();
    if let Some(mb) = args.max_memory_mb {
        set.push(format!("run.max_memory_mb={mb}"));
    }
    let (scenario, text) = load_variants(&args.file, &set, &args.variants)?;
    let chosen = scenario.configs()?;
    report_estimates(&args.file, &chosen);
    let seed = args.seed.unwrap_or(scenario.config.seed);
    let from = if args.seed.is_some() { "from --seed" } else { "the scenario's; pass --seed N to change it" };
    let printed = format!("{}: {} (seed {seed}, {from})\n", scenario.config.name, scenario.config.concept);
    let mut kind_plots: Vec<KindPlot> = Vec::new();
    for (_, config) in &chosen {
        for p in sim_core::summary::kind_plots(config.topology()) {
            if !kind_plots.iter().any(|q| q.name == p.name) {
                kind_plots.push(p);
            }
        }
    }
    let files = OutFiles::prepare(args, chosen.iter().map(|(v, _)| v.name.as_str()), &kind_plots)?;
    let header = reports::html::header_comment(&text);
    Ok(Prepared { args: args.clone(), scenario, header, chosen, seed, files, kind_plots, printed })
}

/// What one variant's run gave: its output, and its Perfetto trace (with
/// `--trace-json`), to publish once the run is over.
type Simulated = (RunOutput, Option<reports::PerfettoTrace>);

/// Runs variant `i` of `p`, as run number `slot` of `watch`.
fn simulate(p: &Prepared, watch: &crate::progress::Watch, i: usize, slot: usize) -> Result<Simulated> {
    run_variant(watch, slot, i, &p.chosen[i], p.seed, &p.args, &p.files)
}

/// How one scenario ended, and its line in the report's index.
struct Concluded {
    ran: Ran,
    entry: reports::html::IndexEntry,
    printed: String,
}

/// The command that reproduces a run (every variant, or one).
fn reproduce(args: &RunArgs, seed: u64, variant: Option<&str>) -> String {
    let mut cmd = format!("asyncsim run {} --seed {seed}", shell_quote(&args.file.display().to_string()));
    if let Some(name) = variant {
        cmd.push_str(&format!(" --variant {}", shell_quote(name)));
    } else {
        for v in &args.variants {
            cmd.push_str(&format!(" --variant {}", shell_quote(v)));
        }
    }
    for s in &args.set {
        cmd.push_str(&format!(" --set {}", shell_quote(s)));
    }
    if let Some(mb) = args.max_memory_mb {
        cmd.push_str(&format!(" --max-memory-mb {mb}"));
    }
    cmd
}

/// Summarises a variant's run as `summary.json` holds it: expectations,
/// invariants, fingerprint and interval expectations over replications
/// (`explain` quotes the same figures through it).
pub(crate) fn summarise(variant: &Variant, config: &Config, out: &RunOutput, seed: u64) -> VariantSummary {
    let mut summary = VariantSummary::new(&variant.description, out, &config.expect, &config.alarms);
    summary.judge_invariants(&config.invariants);
    summary.scenario_hash = config.fingerprint();
    crate::replications::judge_intervals(&mut summary, config, seed);
    summary
}

/// Writes what the runs of `p` measured (summary, time series, traces,
/// plots, the report page) and tells how they went.
fn conclude(mut p: Prepared, simulated: Vec<Simulated>, up: Option<&str>) -> Result<Concluded> {
    let (outputs, json_traces): (Vec<RunOutput>, Vec<_>) = simulated.into_iter().unzip();
    let mut runs = Vec::with_capacity(outputs.len());
    for ((variant, config), out) in p.chosen.iter().zip(outputs) {
        let summary = summarise(variant, config, &out, p.seed);
        runs.push((variant.name.clone(), out, summary));
    }
    let summary = Summary {
        asyncsim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: p.scenario.config.name.clone(),
        concept: p.scenario.config.concept.clone(),
        seed: p.seed,
        overrides: p.scenario.overrides_json(),
        variants: runs.iter().map(|(n, _, s)| (n.clone(), s.clone())).collect(),
    };
    let args = &p.args;
    reports::write_atomic(&p.files.summary, reports::summary_json(&summary).as_bytes())?;
    let series: Vec<(&str, &[sim_core::metrics::Sample])> =
        runs.iter().map(|(n, o, _)| (n.as_str(), o.samples.as_slice())).collect();
    reports::write_atomic(&p.files.timeseries, reports::timeseries_csv(&series).as_bytes())?;
    finish_traces(args, &mut runs, &p.files.traces)?;
    let samples = runs.iter().map(|(_, o, _)| o.samples.as_slice());
    crate::trace_json::publish(json_traces, &p.files.json_traces, samples, args.trace_limit)?;
    let plots = if args.no_plots {
        Vec::new()
    } else {
        let plot_runs: Vec<PlotRun> = runs
            .iter()
            .zip(&p.chosen)
            .map(|((name, out, _), (_, config))| PlotRun { name, out, alarms: &config.alarms })
            .collect();
        reports::plots::write_plots(&args.out, &plot_runs, &p.kind_plots, true)?
    };
    let command = reproduce(args, p.seed, None);
    let chapter = crate::chapters::link(&summary.scenario, &args.file, &args.out);
    let page = reports::html::Page {
        summary: &summary,
        file: &args.file.display().to_string(),
        header: &p.header,
        plots: &plots,
        command: &command,
        up,
        chapter: chapter.as_ref(),
    };
    reports::write_atomic(&p.files.page, reports::html::scenario_page(&page).as_bytes())?;
    p.printed.push_str(&table::render(&summary));
    report_stopped(&runs, &p.chosen);
    report_notes(&runs);
    let mut all_held = true;
    for (name, _, s) in &runs {
        if !s.all_held() {
            all_held = false;
            p.printed.push_str(&format!("reproduce `{name}`: {}\n", reproduce(args, p.seed, Some(name))));
        }
    }
    p.printed.push_str(&format!("wrote {}\n", args.out.display()));
    let variants = runs.iter().map(|(n, _, _)| n.clone()).collect();
    let entry = index_entry(&summary, args, variants, all_held);
    let ran = Ran { all_held, stopped: runs.iter().any(|(_, o, _)| o.stopped.is_some()) };
    Ok(Concluded { ran, entry, printed: p.printed })
}

/// The scenario's line in the default job's index, which sits in the
/// folder above its page's (its `href` is set there).
fn index_entry(summary: &Summary, args: &RunArgs, variants: Vec<String>, held: bool) -> reports::html::IndexEntry {
    reports::html::IndexEntry {
        name: summary.scenario.clone(),
        concept: summary.concept.clone(),
        href: String::new(),
        variants,
        held,
        chapter: crate::chapters::link(&summary.scenario, &args.file, args.out.parent().unwrap_or(&args.out)),
    }
}

/// Finishes the streamed traces, and says which hit `--trace-limit`.
fn finish_traces(args: &RunArgs, runs: &mut [(String, RunOutput, VariantSummary)], paths: &[PathBuf]) -> Result<()> {
    if !args.trace {
        return Ok(());
    }
    for ((_, out, _), path) in runs.iter_mut().zip(paths) {
        if let Some(sink) = out.trace_sink.take() {
            sink.finish().with_context(|| format!("cannot write {}", path.display()))?;
        }
        if out.trace_truncated {
            eprintln!("warning: {} holds only the first {} events (--trace-limit)", path.display(), args.trace_limit);
        }
    }
    Ok(())
}

/// Warnings and notes on stderr: drains that ran out of time, and faults
/// that never happened (the first few of each kind in full, the rest
/// counted: a file with 100,000 faults must not print 100,000 lines).
fn report_notes(runs: &[(String, RunOutput, VariantSummary)]) {
    for (name, _, s) in runs.iter().filter(|(_, o, s)| !s.run.drain_complete && o.stopped.is_none()) {
        eprintln!(
            "warning: `{name}`: the drain ran out of time (run.drain_ms) with work left: {} messages still in flight; raise run.drain_ms to let them finish",
            s.counts.in_flight
        );
    }
    for (name, _, s) in runs {
        let skipped: Vec<_> = s.faults.iter().filter(|f| f.event == "skipped").collect();
        for f in skipped.iter().take(NOTES_SHOWN) {
            eprintln!(
                "note: `{name}`: fault `{}` never happened: the run phase ended at {} ms, before it was due",
                f.fault, f.time_ms
            );
        }
        if skipped.len() > NOTES_SHOWN {
            eprintln!("note: `{name}`: ... and {} more like this", skipped.len() - NOTES_SHOWN);
        }
    }
}

/// Runs `work` on `threads` worker threads, or on rayon's global pool.
fn on_threads<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> Result<T> {
    Ok(match threads {
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build()?.install(work),
        None => work(),
    })
}

/// `asyncsim run`: one scenario file, its variants in parallel.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let mut prepared = prepare(args)?;
    out!("{}", std::mem::take(&mut prepared.printed));
    let watch = crate::progress::Watch::start(&prepared.scenario.config.name, prepared.chosen.iter().map(|(_, c)| c));
    let p = &prepared;
    let outputs = on_threads(args.threads, || {
        (0..p.chosen.len()).into_par_iter().map(|i| simulate(p, &watch, i, i)).collect::<Result<Vec<_>>>()
    })??;
    watch.finish();
    let done = conclude(prepared, outputs, None)?;
    out!("{}", done.printed);
    let ran = done.ran;
    Ok(if ran.stopped {
        ExitCode::from(3)
    } else if ran.all_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where the bundled scenarios are: `./scenarios` when run from a checkout,
/// else the folder beside the sources this binary was built from.
pub fn bundled_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }
}

pub(crate) fn bundled_files() -> Result<Vec<PathBuf>> {
    let dir = bundled_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read the scenarios folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The default job: every bundled scenario, each into `out/NAME/`, with
/// the report's index at `out/index.html`. Every variant of every scenario
/// runs in one parallel pool (results do not depend on the threads);
/// scenarios print in file order.
pub fn run_bundled() -> Result<ExitCode> {
    let files = bundled_files()?;
    let root = PathBuf::from("out");
    reports::prepare_dir(&root, false)?;
    let stems: Vec<String> =
        files.iter().map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let mut invalid = Vec::new();
    let mut prepared = Vec::new();
    for (file, stem) in files.iter().zip(&stems) {
        let args = RunArgs::bundled(file.clone(), root.join(stem));
        match prepare(&args) {
            Ok(p) => prepared.push((stem.clone(), p)),
            Err(e) => {
                eprintln!("error: {e:#}");
                invalid.push(stem.clone());
            }
        }
    }
    let jobs: Vec<(usize, usize)> =
        prepared.iter().enumerate().flat_map(|(k, (_, p))| (0..p.chosen.len()).map(move |i| (k, i))).collect();
    let watch = crate::progress::Watch::start(
        "bundled scenarios",
        prepared.iter().flat_map(|(_, p)| p.chosen.iter().map(|(_, c)| c)),
    );
    let outputs: Vec<Simulated> = jobs
        .par_iter()
        .enumerate()
        .map(|(slot, &(k, i))| simulate(&prepared[k].1, &watch, i, slot))
        .collect::<Result<_>>()?;
    watch.finish();
    let mut outputs = outputs.into_iter();
    let grouped: Vec<(String, Prepared, Vec<Simulated>)> = prepared
        .into_iter()
        .map(|(stem, p)| {
            let outs = outputs.by_ref().take(p.chosen.len()).collect();
            (stem, p, outs)
        })
        .collect();
    let concluded: Vec<(String, Result<Concluded>)> =
        grouped.into_par_iter().map(|(stem, p, outs)| (stem, conclude(p, outs, Some("../index.html")))).collect();
    report_bundled(&root, files.len(), concluded, invalid)
}

/// Prints each scenario's results in file order, writes the report's
/// index and tells how the default job went.
fn report_bundled(
    root: &Path,
    count: usize,
    concluded: Vec<(String, Result<Concluded>)>,
    mut invalid: Vec<String>,
) -> Result<ExitCode> {
    let (mut failed, mut stopped, mut entries) = (Vec::new(), Vec::new(), Vec::new());
    for (stem, done) in concluded {
        outln!();
        match done {
            Ok(mut done) => {
                out!("{}", done.printed);
                if done.ran.stopped {
                    stopped.push(stem.clone());
                }
                if !done.ran.all_held {
                    failed.push(stem.clone());
                }
                done.entry.href = format!("{stem}/index.html");
                entries.push(done.entry);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                invalid.push(stem);
            }
        }
    }
    let index = reports::out_path(root, "index.html")?;
    reports::write_atomic(&index, reports::html::index_page(&entries, "cargo run --release").as_bytes())?;
    outln!();
    outln!(
        "{} scenarios run; expectations failed in {}; invalid: {}{}.",
        count,
        if failed.is_empty() { "none".to_string() } else { failed.join(", ") },
        if invalid.is_empty() { "none".to_string() } else { invalid.join(", ") },
        if stopped.is_empty() { String::new() } else { format!("; stopped at a limit: {}", stopped.join(", ")) },
    );
    outln!("report: {}", std::path::absolute(&index).unwrap_or(index).display());
    Ok(if !invalid.is_empty() {
        ExitCode::from(2)
    } else if !stopped.is_empty() {
        ExitCode::from(3)
    } else if !failed.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Tells, on stderr, what the pre-flight estimate foresees for each
/// variant (a run that will stop at a bound, take long, or outgrow the
/// memory budget), each warning once with the variants it concerns.
pub(crate) fn report_estimates(file: &Path, configs: &[(Variant, Config)]) {
    let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
    for (v, config) in configs {
        for w in sim_core::scenario::estimate::warnings(config) {
            match seen.iter_mut().find(|(text, _)| *text == w) {
                Some((_, names)) => names.push(&v.name),
                None => seen.push((w, vec![&v.name])),
            }
        }
    }
    for (text, names) in seen {
        let which = if configs.len() > 1 { format!(" ({})", names.join(", ")) } else { String::new() };
        eprintln!("warning: {}{which}: {text}", file.display());
    }
}

/// `asyncsim validate`.
pub fn validate(files: &[PathBuf], set: &[String]) -> Result<ExitCode> {
    let mut bad = false;
    for file in files {
        match load(file, set).and_then(|(s, _)| Ok(s.configs()?)) {
            Ok(configs) => {
                outln!("{}: ok ({} variants)", file.display(), configs.len());
                report_estimates(file, &configs);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                bad = true;
            }
        }
    }
    Ok(if bad { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
