//! The `run`, `list` and `validate` commands, and the default job (every
//! bundled scenario).

use crate::table;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use sim_core::engine::RunOutput;
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

/// Input errors exit with status 2: they are returned as `Err`.
pub(crate) fn load(file: &Path, set: &[String]) -> Result<Scenario> {
    let text = crate::input::read_scenario(file)?;
    let mut scenario = Scenario::parse(&file.display().to_string(), &text)?;
    if !set.is_empty() {
        scenario.set_overrides(set)?;
    }
    Ok(scenario)
}

fn shell_quote(s: &str) -> String {
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
    /// One per chosen variant, in order, with `--trace`.
    traces: Vec<PathBuf>,
}

impl OutFiles {
    /// Before any simulation: makes `--out` ready, proves it writable,
    /// names every file to write there, and tidies it: removes what the
    /// last run wrote there that this one will not write again, and the
    /// temporary files of killed runs (see [`reports::tidy_dir`]).
    fn prepare<'a>(args: &RunArgs, variants: impl Iterator<Item = &'a str>) -> Result<OutFiles> {
        reports::prepare_dir(&args.out, args.force)?;
        reports::check_writable(&args.out)
            .with_context(|| format!("the output folder {} is not writable", args.out.display()))?;
        let mut names = vec!["summary.json".to_string(), "timeseries.csv".to_string()];
        if args.trace {
            names.extend(variants.map(|v| format!("trace-{v}.csv")));
        }
        let paths = names.iter().map(|n| reports::out_path(&args.out, n)).collect::<Result<Vec<_>, _>>()?;
        let tidied = reports::tidy_dir(&args.out, &names.iter().map(String::as_str).collect::<Vec<_>>())?;
        for warning in &tidied.warnings {
            eprintln!("warning: {warning}");
        }
        let mut paths = paths.into_iter();
        Ok(OutFiles {
            summary: paths.next().expect("named above"),
            timeseries: paths.next().expect("named above"),
            traces: paths.collect(),
        })
    }
}

/// Runs one variant; with `trace`, streams its trace to that file (renamed
/// into place by [`sim_core::trace::TraceSink::finish`] once all is well).
fn run_variant(
    watch: &crate::progress::Watch,
    i: usize,
    config: &Config,
    seed: u64,
    trace_limit: usize,
    trace: Option<&PathBuf>,
) -> Result<RunOutput> {
    let mut engine = build_engine(config, seed, trace_limit);
    if let Some(path) = trace {
        let file = reports::TraceFile::create(path, engine.names().to_vec())
            .with_context(|| format!("cannot write {}", path.display()))?;
        engine.stream_trace(Box::new(file));
    }
    Ok(watch.run_engine(i, engine))
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

/// Runs one scenario file; returns whether every expectation held and
/// whether a bound stopped a variant.
fn run_one(args: &RunArgs, quiet_header: bool) -> Result<Ran> {
    // The budget from the command line is an override like any other, so
    // that validation (the pre-flight estimate) checks against it.
    let mut set = args.set.clone();
    if let Some(mb) = args.max_memory_mb {
        set.push(format!("run.max_memory_mb={mb}"));
    }
    let scenario = load(&args.file, &set)?;
    let mut chosen = scenario.configs()?;
    if !args.variants.is_empty() {
        let names: Vec<String> = chosen.iter().map(|(v, _)| v.name.clone()).collect();
        if let Some(unknown) = args.variants.iter().find(|v| !names.contains(v)) {
            bail!("{}: no variant named `{unknown}` (variants: {})", args.file.display(), names.join(", "));
        }
        chosen.retain(|(v, _)| args.variants.contains(&v.name));
    }
    report_estimates(&args.file, &chosen);
    let seed = args.seed.unwrap_or(scenario.config.seed);
    if !quiet_header {
        let from = if args.seed.is_some() { "from --seed" } else { "the scenario's; pass --seed N to change it" };
        outln!("{}: {} (seed {seed}, {from})", scenario.config.name, scenario.config.concept);
    }
    let files = OutFiles::prepare(args, chosen.iter().map(|(v, _)| v.name.as_str()))?;

    let trace_limit = if args.trace { args.trace_limit.max(1) } else { 0 };
    let watch = crate::progress::Watch::start(&scenario.config.name, chosen.iter().map(|(_, c)| c));
    let work = || -> Result<Vec<RunOutput>> {
        chosen
            .par_iter()
            .enumerate()
            .map(|(i, (_, config))| run_variant(&watch, i, config, seed, trace_limit, files.traces.get(i)))
            .collect()
    };
    let outputs = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build()?.install(work),
        None => work(),
    }?;
    watch.finish();
    let mut runs = Vec::with_capacity(outputs.len());
    for ((variant, config), out) in chosen.iter().zip(outputs) {
        let mut summary = VariantSummary::new(&variant.description, &out, &config.expect);
        summary.scenario_hash = config.fingerprint();
        runs.push((variant.name.clone(), out, summary));
    }

    let summary = Summary {
        asyncsim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: scenario.config.name.clone(),
        concept: scenario.config.concept.clone(),
        seed,
        overrides: scenario.overrides_json(),
        variants: runs.iter().map(|(n, _, s)| (n.clone(), s.clone())).collect(),
    };
    reports::write_atomic(&files.summary, reports::summary_json(&summary).as_bytes())?;
    let series: Vec<(&str, &[sim_core::metrics::Sample])> =
        runs.iter().map(|(n, o, _)| (n.as_str(), o.samples.as_slice())).collect();
    reports::write_atomic(&files.timeseries, reports::timeseries_csv(&series).as_bytes())?;
    if args.trace {
        for ((_, out, _), path) in runs.iter_mut().zip(&files.traces) {
            if let Some(sink) = out.trace_sink.take() {
                sink.finish().with_context(|| format!("cannot write {}", path.display()))?;
            }
            if out.trace_truncated {
                eprintln!(
                    "warning: {} holds only the first {} events (--trace-limit)",
                    path.display(),
                    args.trace_limit
                );
            }
        }
    }

    out!("{}", table::render(&summary));
    report_stopped(&runs, &chosen);
    for (name, _, s) in runs.iter().filter(|(_, o, s)| !s.run.drain_complete && o.stopped.is_none()) {
        eprintln!(
            "warning: `{name}`: the drain ran out of time (run.drain_ms) with work left: {} messages still in flight; raise run.drain_ms to let them finish",
            s.counts.in_flight
        );
    }
    // Notes go to stderr, the first few of each kind in full and the rest
    // counted: a file with 100,000 faults must not print 100,000 lines.
    for (name, _, s) in &runs {
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
    let mut all_held = true;
    for (name, _, s) in &runs {
        if !s.all_held() {
            all_held = false;
            let mut cmd = format!(
                "asyncsim run {} --seed {seed} --variant {}",
                shell_quote(&args.file.display().to_string()),
                shell_quote(name)
            );
            for s in &args.set {
                cmd.push_str(&format!(" --set {}", shell_quote(s)));
            }
            outln!("reproduce `{name}`: {cmd}");
        }
    }
    outln!("wrote {}", args.out.display());
    Ok(Ran { all_held, stopped: runs.iter().any(|(_, o, _)| o.stopped.is_some()) })
}

/// `asyncsim run`.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let ran = run_one(args, false)?;
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

fn bundled_files() -> Result<Vec<PathBuf>> {
    let dir = bundled_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read the scenarios folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The default job: every bundled scenario, each into `out/NAME/`.
pub fn run_bundled() -> Result<ExitCode> {
    let files = bundled_files()?;
    let root = PathBuf::from("out");
    reports::prepare_dir(&root, false)?;
    let (mut failed, mut invalid, mut stopped) = (Vec::new(), Vec::new(), Vec::new());
    for file in &files {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let args = RunArgs {
            file: file.clone(),
            seed: None,
            out: root.join(&stem),
            set: Vec::new(),
            variants: Vec::new(),
            trace: false,
            trace_limit: 0,
            threads: None,
            force: false,
            max_memory_mb: None,
        };
        outln!();
        match run_one(&args, false) {
            Ok(ran) => {
                if ran.stopped {
                    stopped.push(stem.clone());
                }
                if !ran.all_held {
                    failed.push(stem);
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                invalid.push(stem);
            }
        }
    }
    outln!();
    outln!(
        "{} scenarios run; expectations failed in {}; invalid: {}{}. Output under {}/",
        files.len(),
        if failed.is_empty() { "none".to_string() } else { failed.join(", ") },
        if invalid.is_empty() { "none".to_string() } else { invalid.join(", ") },
        if stopped.is_empty() { String::new() } else { format!("; stopped at a limit: {}", stopped.join(", ")) },
        root.display()
    );
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

/// `asyncsim list`.
pub fn list() -> Result<ExitCode> {
    for file in bundled_files()? {
        let scenario = load(&file, &[])?;
        let variants: Vec<String> = scenario.variants().iter().map(|v| v.name.clone()).collect();
        outln!("{:<28} {}", file.display(), scenario.config.concept);
        outln!("{:<28}   variants: {}", "", variants.join(", "));
    }
    Ok(ExitCode::SUCCESS)
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
        match load(file, set).and_then(|s| Ok(s.configs()?)) {
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
