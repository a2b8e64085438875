//! `asyncsim explain`: runs a scenario the way `asyncsim run` does (same
//! loader, same engine, same summary, no output folder) and tells in plain
//! text, for each variant, what the concept is and where the guide teaches
//! it, what the variant does differently, what happened (this run's own
//! figures, exactly those of `summary.json`), why (the ledger's causes,
//! `lost_by_cause` and `duplicated_by_cause`, in plain words tied to the
//! scenario's faults and settings), and what to try next (runnable
//! commands, each checked through the scenario loader before it is
//! printed). `--message ID` tells one message's story instead, from the
//! run's trace (see [`story`]).
//!
//! What it leaves out: it explains the ledger's verdicts and causes, not
//! the state observer's (money, replicas, aggregates); those figures are
//! quoted only when an expectation names them.

mod happened;
mod next;
mod story;
mod words;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde_json::Value;
use sim_core::engine::RunOutput;
use sim_core::scenario::{build_engine, Config, Scenario, Variant};
use sim_core::summary::VariantSummary;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `asyncsim explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The scenario file (omit it with --causes).
    #[arg(required_unless_present = "causes")]
    pub file: Option<PathBuf>,
    /// Explain only this variant (repeatable).
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Seed for every random draw (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a field for every variant, as in `run`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Tell the story of one produced message (its id, from 0) instead.
    #[arg(long, value_name = "ID")]
    pub message: Option<u64>,
    /// Print every cause code the ledger records, in plain words, and stop.
    #[arg(long)]
    pub causes: bool,
}

/// The chapter that teaches scenario `name`: "Chapter 6, Title: docs/guide/06-slug.md".
fn chapter_of(name: &str) -> Option<String> {
    let (number, c) = crate::chapters::chapter_of(name)?;
    Some(format!("Chapter {number}, {}: {}", c.title, c.file(number)))
}

/// One variant, run and summarised.
pub(crate) struct Explained {
    pub variant: Variant,
    pub config: Config,
    pub out: RunOutput,
    pub summary: VariantSummary,
    /// The summary as `summary.json` writes it, for lookups by path.
    pub json: Value,
}

/// What every part of the explanation needs.
pub(crate) struct Ctx<'a> {
    pub args: &'a ExplainArgs,
    pub file: String,
    pub scenario: &'a Scenario,
    pub seed: u64,
    /// The scenario file's opening comment.
    pub header: String,
}

/// A loaded scenario, its file's text, and the variants chosen.
type Loaded = (Scenario, String, Vec<(Variant, Config)>);

/// Loads the scenario and picks the variants asked for.
fn load(args: &ExplainArgs, file: &std::path::Path) -> Result<Loaded> {
    let (scenario, text) = crate::run::load_variants(file, &args.set, &args.variants)?;
    let chosen = scenario.configs()?;
    crate::run::report_estimates(file, &chosen);
    Ok((scenario, text, chosen))
}

/// Runs every chosen variant in parallel; with `--message`, each run's
/// trace goes to a collector that keeps that message's events only.
fn simulate(ctx: &Ctx, chosen: Vec<(Variant, Config)>) -> Vec<(Explained, Option<story::Kept>)> {
    let watch = crate::progress::Watch::start(&ctx.scenario.config.name, chosen.iter().map(|(_, c)| c));
    let seed = ctx.seed;
    let message = ctx.args.message;
    let done = chosen
        .into_par_iter()
        .enumerate()
        .map(|(i, (variant, config))| {
            let (mut engine, kept) = match message {
                Some(id) => (build_engine(&config, seed, usize::MAX), Some(story::Kept::new(id))),
                None => (build_engine(&config, seed, 0), None),
            };
            if let Some(k) = &kept {
                engine.stream_trace(k.sink());
            }
            let out = watch.run_engine(i, engine);
            let summary = crate::run::summarise(&variant, &config, &out, seed);
            let json = serde_json::to_value(&summary).unwrap_or_default();
            (Explained { variant, config, out, summary, json }, kept)
        })
        .collect();
    watch.finish();
    done
}

/// `asyncsim explain`.
pub fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    if args.causes {
        out!("{}", words::glossary());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(file) = &args.file else { bail!("explain needs a scenario file (or --causes)") };
    let (scenario, text, chosen) = load(args, file)?;
    let seed = args.seed.unwrap_or(scenario.config.seed);
    let header = reports::html::header_comment(&text);
    let ctx = Ctx { args, file: file.display().to_string(), scenario: &scenario, seed, header };
    let runs = simulate(&ctx, chosen);
    let stopped = runs.iter().any(|(e, _)| e.out.stopped.is_some());
    let held = runs.iter().all(|(e, _)| e.summary.all_held());
    let mut text = concept(&ctx);
    if let Some(id) = args.message {
        for (e, kept) in &runs {
            let kept = kept.as_ref().expect("a collector with --message");
            match story::tell(e, kept, id) {
                Ok(s) => text.push_str(&s),
                Err(e) => {
                    out!("{text}");
                    return Err(e);
                }
            }
        }
    } else {
        let explained: Vec<&Explained> = runs.iter().map(|(e, _)| e).collect();
        for e in &explained {
            text.push_str(&happened::variant(&ctx, e, &explained));
        }
        text.push_str(&happened::contrast(&explained));
        text.push_str(&next::section(&ctx, &explained));
    }
    out!("{text}");
    Ok(if stopped {
        ExitCode::from(3)
    } else if held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first section: the scenario, the seed, the concept and its chapter.
fn concept(ctx: &Ctx) -> String {
    let c = &ctx.scenario.config;
    let from = if ctx.args.seed.is_some() { "from --seed" } else { "the scenario's; pass --seed N to change it" };
    let mut s = format!("{} ({}, seed {}, {from})\n", c.name, ctx.file, ctx.seed);
    for o in ctx.scenario.overrides() {
        s.push_str(&format!("  with --set {} = {}\n", o.0, o.1));
    }
    s.push_str("\nThe concept\n");
    s.push_str(&format!("  {}\n", c.concept));
    let stem = std::path::Path::new(&ctx.file).file_stem().map(|x| x.to_string_lossy().into_owned());
    match chapter_of(&c.name).or_else(|| stem.and_then(|s| chapter_of(&s))) {
        Some(ch) => s.push_str(&format!("  The guide teaches it in {ch}\n")),
        None => s.push_str("  (not a bundled scenario: no chapter of the guide is about it)\n"),
    }
    s
}
