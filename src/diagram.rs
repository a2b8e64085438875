//! `asyncsim diagram`: runs one variant of a scenario and draws a window of
//! it as a space-time (Lamport) diagram, `OUT/diagram-VARIANT.svg` (see
//! `reports::diagram` for what it shows). The trace goes to a collector that
//! keeps only what the diagram may draw, so a long run costs little memory.

use anyhow::{bail, Context, Result};
use reports::diagram::{self, Collector, Info, Window};
use sim_core::scenario::{build_engine, Scenario};
use sim_core::time::ms_to_ns;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `asyncsim diagram`.
#[derive(clap::Args)]
pub struct DiagramArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// The variant to draw (default: the first).
    #[arg(long)]
    pub variant: Option<String>,
    /// Seed (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Draw from this simulated time, in ms.
    #[arg(long, value_name = "T", default_value_t = 0.0)]
    pub from_ms: f64,
    /// Draw messages sent up to this simulated time, in ms (default: the
    /// end of the run; the drawing then ends with the last message shown).
    #[arg(long, value_name = "T")]
    pub to_ms: Option<f64>,
    /// Most produced messages shown (the first sent in the window, each
    /// with all its messages), and most messages without an id. At least 1.
    #[arg(long, value_name = "N", default_value_t = 40,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_messages: usize,
    /// Overrides, as in `run`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Write into --out even if it holds files asyncsim did not write.
    #[arg(long)]
    pub force: bool,
}

/// The window asked for, checked.
fn window(args: &DiagramArgs) -> Result<Window> {
    let check = |name: &str, v: f64| {
        if !v.is_finite() || v < 0.0 {
            bail!("--{name} must be a time in ms, 0 or more (was {v})");
        }
        Ok(ms_to_ns(v))
    };
    let from = check("from-ms", args.from_ms)?;
    let to = args.to_ms.map(|t| check("to-ms", t)).transpose()?;
    if let Some(to) = to {
        if to <= from {
            bail!(
                "--from-ms ({}) must be below --to-ms ({}): the window would be empty",
                args.from_ms,
                args.to_ms.unwrap_or_default()
            );
        }
    }
    Ok(Window { from, to, max_messages: args.max_messages })
}

/// Runs the command.
pub fn diagram(args: &DiagramArgs) -> Result<ExitCode> {
    let window = window(args)?;
    let text = crate::input::read_scenario(&args.file)?;
    let mut scenario = Scenario::parse(&args.file.display().to_string(), &text)?;
    if !args.set.is_empty() {
        scenario.set_overrides(&args.set)?;
    }
    let seed = args.seed.unwrap_or(scenario.config.seed);
    let mut configs = scenario.configs()?;
    let names: Vec<String> = configs.iter().map(|(v, _)| v.name.clone()).collect();
    let chosen = match &args.variant {
        Some(v) => names.iter().position(|n| n == v).with_context(|| {
            format!("{}: no variant named `{v}` (variants: {})", args.file.display(), names.join(", "))
        })?,
        None => 0,
    };
    let (variant, config) = configs.swap_remove(chosen);
    let file_name = format!("diagram-{}.svg", variant.name);
    reports::prepare_dir(&args.out, args.force)?;
    reports::check_writable(&args.out)
        .with_context(|| format!("the output folder {} is not writable", args.out.display()))?;
    let path = reports::out_path(&args.out, &file_name)?;
    for warning in reports::tidy_dir_adding(&args.out, &[&file_name])?.warnings {
        eprintln!("warning: {warning}");
    }

    let collector = Collector::new(window);
    let mut engine = build_engine(&config, seed, usize::MAX);
    engine.stream_trace(collector.sink());
    let watch = crate::progress::Watch::start(&format!("diagram {}", scenario.config.name), [&config]);
    let out = watch.run_engine(0, engine);
    watch.finish();
    let note = out.stopped.as_ref().map(|s| format!("the run stopped early: {s}"));
    let collected = collector.take();
    let svg = diagram::render(
        &collected,
        &Info {
            scenario: &scenario.config.name,
            variant: &variant.name,
            seed,
            names: &out.names,
            lost: &out.lost,
            note: note.clone(),
        },
    );
    reports::write_atomic(&path, svg.as_bytes())?;
    outln!("{}", path.display());
    if let Some(note) = note {
        eprintln!("{}: {note}; the diagram shows what it recorded", variant.name);
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
